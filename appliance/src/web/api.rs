//! The JSON API the web page (and scripts) use.

use super::WebContext;
use crate::status::{Alert, Status};
use actix_web::{web, HttpResponse, Responder};
use serde::Serialize;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/status", web::get().to(status))
        .route("/api/bitcoind/retry", web::post().to(retry_bitcoind))
        .default_service(web::route().to(not_found));
}

#[derive(Serialize)]
struct StatusView {
    #[serde(flatten)]
    status: Status,
    alerts: Vec<Alert>,
    version: &'static str,
}

async fn status(context: web::Data<WebContext>) -> impl Responder {
    let status = context.status.snapshot();
    HttpResponse::Ok().json(StatusView {
        alerts: status.alerts(),
        status,
        version: env!("CARGO_PKG_VERSION"),
    })
}

async fn retry_bitcoind(context: web::Data<WebContext>) -> impl Responder {
    context.bitcoind.retry();
    HttpResponse::Accepted().json(serde_json::json!({"ok": true}))
}

/// Errors the API returns: always JSON with a message saying what to do.
pub fn error(status: actix_web::http::StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"error": message.into()}))
}

async fn not_found(request: actix_web::HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        format!(
            "{} {} does not exist on this box. The web page is at /.",
            request.method(),
            request.path()
        ),
    )
}
