//! The JSON API the web page (and scripts) use: access (setup, login, sessions, the
//! password), the box, and its screen. Everything but the health check, the OpenAPI
//! description, the page's own files and logging in needs a session (see `auth`).

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::routes::{api_routes, json_body, SMALL_JSON};
use super::WebContext;
use crate::display::{key_numbered, DisplayError};
use crate::secret::Secret;
use crate::status::{Alert, BitcoindState, Phase, Status};
use crate::text::capitalized;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

api_routes! { pub fn register, const ROUTES;
    GET "/api/health" => health;
    GET "/api/openapi.json" => super::openapi::serve;
    GET "/api/auth" => auth_state;
    POST "/api/setup/password" limit SMALL_JSON => claim;
    POST "/api/login" limit SMALL_JSON => login;
    POST "/api/login/unlock-code" limit SMALL_JSON => unlock_code;
    POST "/api/logout" => logout;
    POST "/api/logout-everywhere" => logout_everywhere;
    POST "/api/reauth" limit SMALL_JSON => reauth;
    POST "/api/password" limit SMALL_JSON => change_password;
    GET "/api/status" => status;
    POST "/api/bitcoind/retry" => retry_bitcoind;
    POST "/api/system/shutdown" => shutdown;
    GET "/api/display/frame.png" => display_frame;
    POST "/api/display/key" => display_key;
}

/// This module's routes, then the 404 for everything under no route.
pub fn routes(config: &mut web::ServiceConfig) {
    register(config);
    config.default_service(web::route().to(not_found));
}

/// What a monitoring script or the image's smoke test may see without logging in.
#[derive(Serialize)]
struct Health {
    phase: Phase,
    bitcoind: &'static str,
    alerts: usize,
    version: &'static str,
}

async fn health(context: web::Data<WebContext>) -> HttpResponse {
    let status = context.status.snapshot();
    HttpResponse::Ok()
        // Public and secret-free: the trust page on plain HTTP reads it across origins to
        // learn whether this device trusts the box's certificate yet.
        .insert_header(("cross-origin-resource-policy", "cross-origin"))
        .json(Health {
            phase: status.phase,
            bitcoind: bitcoind_state_name(&status.bitcoind.state),
            alerts: status.alerts().len(),
            version: env!("CARGO_PKG_VERSION"),
        })
}

fn bitcoind_state_name(state: &BitcoindState) -> &'static str {
    match state {
        BitcoindState::NotStarted => "not_started",
        BitcoindState::Starting { .. } => "starting",
        BitcoindState::Syncing => "syncing",
        BitcoindState::Ready => "ready",
        BitcoindState::Restarting { .. } => "restarting",
        BitcoindState::CrashLoop { .. } => "crash_loop",
        BitcoindState::InsufficientDisk { .. } => "insufficient_disk",
        BitcoindState::Failed { .. } => "failed",
        BitcoindState::Stopping => "stopping",
        BitcoindState::Stopped => "stopped",
    }
}

async fn auth_state(request: HttpRequest, auth: web::Data<Auth>) -> HttpResponse {
    let token = auth::request_token(&request).filter(|(t, _)| auth.check_session(t));
    HttpResponse::Ok().json(serde_json::json!({
        "claimed": auth.is_claimed(),
        "logged_in": token.is_some(),
        "fresh_for_secs": token.map_or(0, |(t, _)| auth.fresh_for(&t).as_secs()),
    }))
}

#[derive(Deserialize)]
struct ClaimRequest {
    setup_code: String,
    password: Secret,
}

async fn claim(
    request: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    body: Result<web::Json<ClaimRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"setup_code\": \"…\", \"password\": \"…\"}")?;
    let token = auth
        .claim(auth::client_of(&request), &body.setup_code, body.password)
        .await?;
    // The screen stops showing the setup code.
    context.status.update(|s| s.setup.password_set = true);
    Ok(logged_in(&request, &token))
}

#[derive(Deserialize)]
struct LoginRequest {
    password: Secret,
    /// From the box's screen: lets a throttled owner in (`/api/login/unlock-code`).
    #[serde(default)]
    unlock_code: Option<Secret>,
}

async fn login(
    request: HttpRequest,
    auth: web::Data<Auth>,
    body: Result<web::Json<LoginRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        password,
        unlock_code,
    } = json_body(body, "{\"password\": \"…\", \"unlock_code\": null}")?;
    let unlock = unlock_code.as_ref().map(Secret::expose);
    let token = auth
        .login(auth::client_of(&request), password, unlock)
        .await?;
    Ok(logged_in(&request, &token))
}

fn logged_in(request: &HttpRequest, token: &Secret) -> HttpResponse {
    let secure = auth::cookie_can_be_secure(request);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            auth::session_cookie(Some(token), secure),
        ))
        .json(serde_json::json!({ "token": token.expose() }))
}

/// Shows the unlock code on the box's screen (anyone may ask: only someone at the box
/// can read it). The same code until it expires or is used.
async fn unlock_code(
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let (code, left) = auth.unlock_code()?;
    let on_screen = match &context.display {
        Some(display) => match display.show_unlock_code(code).await {
            Ok(()) => true,
            Err(err @ DisplayError::Busy) => {
                return Err(
                    ApiError::new(StatusCode::CONFLICT, capitalized(&err.to_string()))
                        .with_kind(err.kind()),
                )
            }
            // A broken screen: the file still has it.
            Err(_) => false,
        },
        None => false,
    };
    let message = if on_screen {
        "The unlock code is on the box's screen for 2 minutes. Type it here with your \
         password."
    } else {
        "This box shows no screen: the unlock code is in the file secrets/unlock-code in \
         plugnode's data directory (needs a shell or the SD card)."
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "shown_on": if on_screen { "screen" } else { "file" },
        "expires_in_secs": left.as_secs(),
        "message": message,
    })))
}

async fn logout(request: HttpRequest, auth: web::Data<Auth>) -> HttpResponse {
    if let Some((token, _)) = auth::request_token(&request) {
        auth.logout(&token);
    }
    let secure = auth::cookie_can_be_secure(&request);
    HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, auth::session_cookie(None, secure)))
        .json(serde_json::json!({ "ok": true }))
}

/// Ends every session on every device (a lost phone, a shared computer).
async fn logout_everywhere(
    _: Authenticated,
    request: HttpRequest,
    auth: web::Data<Auth>,
) -> HttpResponse {
    let ended = auth.logout_everywhere();
    tracing::info!("logged out everywhere ({ended} sessions ended)");
    let secure = auth::cookie_can_be_secure(&request);
    HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, auth::session_cookie(None, secure)))
        .json(serde_json::json!({ "ok": true, "sessions_ended": ended }))
}

#[derive(Deserialize)]
struct ReauthRequest {
    password: Secret,
}

/// The password typed again: dangerous actions are allowed for the next 5 minutes.
async fn reauth(
    session: Authenticated,
    request: HttpRequest,
    auth: web::Data<Auth>,
    body: Result<web::Json<ReauthRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"password\": \"…\"}")?;
    auth.reauth(session.token(), auth::client_of(&request), body.password)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ok": true,
        "fresh_for_secs": auth::FRESH_FOR.as_secs(),
    })))
}

#[derive(Deserialize)]
struct PasswordChange {
    old_password: Secret,
    new_password: Secret,
}

/// Changes the password (the old one is the proof); other devices are logged out.
async fn change_password(
    session: Authenticated,
    request: HttpRequest,
    auth: web::Data<Auth>,
    body: Result<web::Json<PasswordChange>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(
        body,
        "{\"old_password\": \"…\", \"new_password\": \"at least 8 characters\"}",
    )?;
    auth.change_password(
        &session,
        auth::client_of(&request),
        body.old_password,
        body.new_password,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ok": true,
        "message": "The password is changed. Every other device was logged out.",
    })))
}

#[derive(Serialize)]
struct StatusView {
    #[serde(flatten)]
    status: Status,
    alerts: Vec<Alert>,
    display: Option<DisplayView>,
    version: &'static str,
}

#[derive(Serialize)]
struct DisplayView {
    panel: &'static str,
    width: u32,
    height: u32,
    has_keys: bool,
    screen: String,
}

async fn status(_: Authenticated, context: web::Data<WebContext>) -> HttpResponse {
    let status = context.status.snapshot();
    let display = context.display.as_ref().map(|display| {
        let state = display.state();
        DisplayView {
            panel: display.panel_name(),
            width: display.size().width,
            height: display.size().height,
            has_keys: state.has_keys,
            screen: format!("{:?}", state.screen),
        }
    });
    HttpResponse::Ok().json(StatusView {
        alerts: status.alerts(),
        status,
        display,
        version: env!("CARGO_PKG_VERSION"),
    })
}

async fn retry_bitcoind(_: Authenticated, context: web::Data<WebContext>) -> HttpResponse {
    context.bitcoind.retry();
    HttpResponse::Accepted().json(serde_json::json!({ "ok": true }))
}

#[derive(Deserialize)]
struct ShutdownRequest {
    /// Power the box off after the clean stop (default), or only stop plugnode.
    #[serde(default = "yes")]
    power_off: bool,
}

fn yes() -> bool {
    true
}

async fn shutdown(
    _: Authenticated,
    context: web::Data<WebContext>,
    body: Option<web::Json<ShutdownRequest>>,
) -> HttpResponse {
    let power_off = body.map(|b| b.power_off).unwrap_or(true);
    if power_off {
        context.shutdown.power_off();
    } else {
        context.shutdown.trigger();
    }
    HttpResponse::Accepted().json(serde_json::json!({
        "ok": true,
        "message": "plugnode is stopping bitcoind and the Lightning node cleanly. Unplug the \
                    box only when its screen says \"safe to unplug\"."
    }))
}

async fn display_frame(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let display = context.display.as_ref().ok_or_else(no_display)?;
    let png = display.latest_png().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The screen has not been drawn yet.",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(png))
}

#[derive(Deserialize)]
struct KeyRequest {
    /// 1..=4, as printed on the HAT.
    key: u8,
    /// Held for the long-press time (KEY4 = shutdown question).
    #[serde(default)]
    long: bool,
}

async fn display_key(
    _: Authenticated,
    context: web::Data<WebContext>,
    body: Result<web::Json<KeyRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"key\": 1..4, \"long\": false}")?;
    let display = context.display.as_ref().ok_or_else(no_display)?;
    let key = key_numbered(body.key).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("There is no KEY{}: keys are numbered 1 to 4.", body.key),
        )
    })?;
    let pressed = if body.long {
        display.long_press_key(key).await
    } else {
        display.press_key(key).await
    };
    pressed.map_err(key_refused)?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "ok": true })))
}

/// Why the screen did not take the page's key. A confirmation on a box with real keys
/// is forbidden, not broken: the page tells the user to press the key on the box.
fn key_refused(err: DisplayError) -> ApiError {
    let status = match err {
        DisplayError::NeedsKeyOnBox => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, err.to_string()).with_kind(err.kind())
}

fn no_display() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "This box has no screen configured ([display] panel = \"none\").",
    )
}

/// No route: 405 with `Allow` when the path exists with other methods, else 404.
async fn not_found(request: HttpRequest) -> HttpResponse {
    no_route(&request).error_response()
}

fn no_route(request: &HttpRequest) -> ApiError {
    #[allow(unused_mut)] // without the demo there is nothing to add
    let mut tables = vec![
        ROUTES,
        super::lightning_api::ROUTES,
        super::backup_api::ROUTES,
        super::pairing_api::ROUTES,
    ];
    #[cfg(feature = "demo")]
    tables.push(super::demo_api::ROUTES);
    let allowed = super::routes::methods_of(request.path(), &tables);
    if !allowed.is_empty() {
        let allowed = allowed.join(", ");
        let message = format!(
            "{} is not allowed on {}: use {allowed}.",
            request.method(),
            request.path()
        );
        let mut refusal =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).with_kind("method_not_allowed");
        // Method names only, so always a valid header value.
        if let Ok(value) = header::HeaderValue::from_str(&allowed) {
            refusal = refusal.with_header(header::ALLOW, value);
        }
        return refusal;
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "{} {} does not exist on this box. The web page is at /.",
            request.method(),
            request.path()
        ),
    )
    .with_kind("not_found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_confirmation_from_the_page_is_sent_to_the_box() {
        let response = key_refused(DisplayError::NeedsKeyOnBox).error_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Confirm this on the box itself: press KEY2 on the box.",
                "kind": "needs_key_on_box",
            })
        );
        let stopped = key_refused(DisplayError::Stopped);
        assert_eq!(stopped.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
