//! The USB backup part of the JSON API: prepare an empty stick, eject, list the copies on a
//! stick, and restore a fresh box from one.

use super::auth::{ApiError, Authenticated};
use super::WebContext;
use crate::backup::restore::{RestoreError, RestoreRequest};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/backup/prepare", web::post().to(prepare))
        .route("/api/backup/eject", web::post().to(eject))
        .route("/api/backup/copies", web::get().to(copies))
        .route("/api/backup/restore", web::post().to(restore));
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, message)
}

async fn prepare(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    context.backup.confirm_format().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ok": true })))
}

async fn eject(_: Authenticated, context: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    context.backup.eject().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ok": true,
        "message": "The backup is complete and the stick is unmounted: you can pull it out.",
    })))
}

async fn copies(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let copies = context.backup.copies().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(copies))
}

async fn restore(
    _: Authenticated,
    context: web::Data<WebContext>,
    request: Result<web::Json<RestoreRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let request = request.map(web::Json::into_inner).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Send a JSON body like {{\"words\": \"24 words\", \"insist\": false}} ({err})."
            ),
        )
    })?;
    match context.backup.restore(request).await {
        Ok(outcome) => Ok(HttpResponse::Ok().json(outcome)),
        Err(err) => {
            let status = match &err {
                RestoreError::Words(_) | RestoreError::NoSuchCopy(_) => StatusCode::BAD_REQUEST,
                RestoreError::OtherNode { .. } => StatusCode::FORBIDDEN,
                RestoreError::Stale { .. }
                | RestoreError::NotFresh
                | RestoreError::Unavailable(_) => StatusCode::CONFLICT,
                RestoreError::NoBackup => StatusCode::NOT_FOUND,
                RestoreError::Damaged(_) => StatusCode::UNPROCESSABLE_ENTITY,
                RestoreError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(ApiError::new(status, err.to_string()).with_kind(err.kind()))
        }
    }
}
