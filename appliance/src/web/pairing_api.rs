//! "Connect a wallet": the connections paired apps use, over the JSON API. A thin layer
//! over [`PairingHandle`] that turns its errors into HTTP answers with the same words.

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::routes::{api_routes, json_body};
use super::WebContext;
use crate::pairing::{ErrorKind, NewConnection, PairingError, PairingHandle};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

api_routes! { pub fn routes, const ROUTES;
    GET "/api/pairing" => overview;
    GET "/api/pairing/connections" => list;
    POST "/api/pairing/connections" => create;
    GET "/api/pairing/connections/{id}" => get;
    DELETE "/api/pairing/connections/{id}" => revoke;
}

impl From<PairingError> for ApiError {
    fn from(err: PairingError) -> Self {
        let status = match err.kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::QuotaExceeded => StatusCode::CONFLICT,
            ErrorKind::Restricted | ErrorKind::Unauthorized => StatusCode::FORBIDDEN,
            ErrorKind::NeedsConfirmation => StatusCode::FORBIDDEN,
            ErrorKind::Lightning(kind) => {
                return crate::lightning::LightningError::new(kind, err.message).into()
            }
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let kind = match err.kind {
            ErrorKind::NeedsConfirmation => "needs_password".to_string(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        };
        ApiError::new(status, err.message).with_kind(kind)
    }
}

fn pairing(context: &WebContext) -> Result<&PairingHandle, ApiError> {
    context.pairing.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Pairing wallet apps is turned off on this box ([pairing] enabled = false).",
        )
        .with_kind("pairing_off")
    })
}

/// What the card needs besides the list: whether allowing spending takes the password
/// (a box without keys), which relays the wallet service reaches.
async fn overview(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let pairing = pairing(&context)?;
    let status = context.status.snapshot();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "spending_needs_password": pairing.spending_needs_password(),
        "relays": status.pairing.relays,
        "network": status.bitcoind.network,
        "protocols": pairing.protocols(),
    })))
}

async fn list(_: Authenticated, context: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    let connections = pairing(&context)?.list().await?;
    Ok(HttpResponse::Ok().json(connections))
}

async fn get(
    _: Authenticated,
    context: web::Data<WebContext>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let connection = pairing(&context)?.get(&id).await?;
    Ok(HttpResponse::Ok().json(connection))
}

/// Makes a connection; the answer carries its URI, the only time it is shown. One that
/// may spend needs the password again (in the body, or typed within 5 minutes), and on
/// a box with keys also KEY2 there.
async fn create(
    session: Authenticated,
    http: HttpRequest,
    context: web::Data<WebContext>,
    auth: web::Data<Auth>,
    body: Result<web::Json<NewConnection>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let mut new = json_body(
        body,
        "{\"app\": \"Zeus\", \"protocol\": \"nwc\", \"permissions\": [\"receive\", \
         \"spend\"], \"budget_sat\": 50000, \"renewal\": \"daily\", \"expires_at\": null}",
    )?;
    let pairing = pairing(&context)?;
    let spends = new.permissions.iter().any(|p| p == "spend");
    let password = new.password.take();
    let password_confirmed = if spends {
        auth.require_fresh(&session, auth::client_of(&http), password)
            .await?;
        true
    } else {
        false
    };
    let created = pairing.create(new, password_confirmed).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "id": created.id,
            "uri": created.uri.expose(),
            "state": created.state,
        })))
}

async fn revoke(
    _: Authenticated,
    context: web::Data<WebContext>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pairing(&context)?.revoke(&id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ok": true })))
}
