//! The JSON API the web page (and scripts) use. Everything but the health check, the
//! page's own files and logging in needs a session (see `auth`).

use super::auth::{self, ApiError, Auth, Authenticated};
use super::WebContext;
use crate::display::DisplayError;
use crate::secret::Secret;
use crate::status::{Alert, BitcoindState, Phase, Status};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use plugnode_hw::Key;
use serde::{Deserialize, Serialize};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/health", web::get().to(health))
        .route("/api/auth", web::get().to(auth_state))
        .route("/api/setup/password", web::post().to(claim))
        .route("/api/login", web::post().to(login))
        .route("/api/logout", web::post().to(logout))
        .route("/api/status", web::get().to(status))
        .route("/api/bitcoind/retry", web::post().to(retry_bitcoind))
        .route("/api/system/shutdown", web::post().to(shutdown))
        .route("/api/display/frame.png", web::get().to(display_frame))
        .route("/api/display/key", web::post().to(display_key))
        .default_service(web::route().to(not_found));
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
    HttpResponse::Ok().json(Health {
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
    let logged_in = auth::request_token(&request).is_some_and(|(t, _)| auth.check_session(&t));
    HttpResponse::Ok().json(serde_json::json!({
        "claimed": auth.is_claimed(),
        "logged_in": logged_in,
    }))
}

#[derive(Deserialize)]
struct ClaimRequest {
    setup_code: String,
    password: Secret,
}

async fn claim(
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    body: Result<web::Json<ClaimRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"setup_code\": \"…\", \"password\": \"…\"}")?;
    let token = auth.claim(&body.setup_code, body.password).await?;
    // The screen stops showing the setup code.
    context.status.update(|s| s.setup.password_set = true);
    Ok(logged_in(&token))
}

#[derive(Deserialize)]
struct LoginRequest {
    password: Secret,
}

async fn login(
    auth: web::Data<Auth>,
    body: Result<web::Json<LoginRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"password\": \"…\"}")?;
    let token = auth.login(body.password).await?;
    Ok(logged_in(&token))
}

fn logged_in(token: &Secret) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, auth::session_cookie(Some(token))))
        .json(serde_json::json!({ "token": token.expose() }))
}

async fn logout(request: HttpRequest, auth: web::Data<Auth>) -> HttpResponse {
    if let Some((token, _)) = auth::request_token(&request) {
        auth.logout(&token);
    }
    HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, auth::session_cookie(None)))
        .json(serde_json::json!({ "ok": true }))
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
    let key = match body.key {
        1 => Key::Key1,
        2 => Key::Key2,
        3 => Key::Key3,
        4 => Key::Key4,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("There is no KEY{other}: keys are numbered 1 to 4."),
            ))
        }
    };
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

/// Unwraps a JSON body, turning actix's parse errors into a message that shows the shape.
fn json_body<T>(body: Result<web::Json<T>, actix_web::Error>, shape: &str) -> Result<T, ApiError> {
    body.map(web::Json::into_inner).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Send a JSON body like {shape} ({err})."),
        )
    })
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": format!(
            "{} {} does not exist on this box. The web page is at /.",
            request.method(),
            request.path()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

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
