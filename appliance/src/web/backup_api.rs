//! The USB backup part of the JSON API: prepare an empty stick, eject, list the copies on a
//! stick, and restore a fresh box from one. In the demo, also plugging its stick (a
//! folder) in and pulling it out.

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::routes::{api_routes, json_body};
use super::WebContext;
use crate::backup::restore::{RestoreError, RestoreRequest};
use crate::secret::Secret;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

api_routes! { pub fn routes, const ROUTES;
    POST "/api/backup/prepare" => prepare;
    POST "/api/backup/eject" => eject;
    GET "/api/backup/copies" => copies;
    POST "/api/backup/restore" => restore;
}

#[cfg(feature = "demo")]
pub use demo_stick::demo_routes;
// Read by the OpenAPI test.
#[cfg(all(test, feature = "demo"))]
pub use demo_stick::DEMO_ROUTES;

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

/// [`RestoreRequest`] as the page sends it, with the password again; the words are wiped
/// from this copy when it is dropped.
#[derive(serde::Deserialize)]
struct RestoreBody {
    words: Secret,
    #[serde(default)]
    generation: Option<u64>,
    #[serde(default)]
    insist: bool,
    /// The web password again, unless the session typed it within 5 minutes.
    #[serde(default)]
    password: Option<Secret>,
}

async fn restore(
    session: Authenticated,
    http: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    request: Result<web::Json<RestoreBody>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(request, "{\"words\": \"24 words\", \"insist\": false}")?;
    auth.require_fresh(&session, auth::client_of(&http), body.password)
        .await?;
    let request = RestoreRequest {
        words: body.words.expose().to_string(),
        generation: body.generation,
        insist: body.insist,
    };
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

/// The demo's stick: only built into the demo (see [`WebContext::demo_stick`]), so a real
/// box's binary has no such route.
#[cfg(feature = "demo")]
mod demo_stick {
    use super::*;
    use std::path::{Path, PathBuf};

    api_routes! { pub fn demo_routes, const DEMO_ROUTES;
        GET "/api/demo/stick" => demo_stick_state;
        POST "/api/demo/stick" => demo_stick;
    }

    /// Where the demo's stick keeps its files while it is pulled out: beside the folder, so a
    /// stick plugged in again still holds its backups, as a real one would.
    fn unplugged(folder: &Path) -> PathBuf {
        let mut name = folder.file_name().unwrap_or_default().to_os_string();
        name.push(".unplugged");
        folder.with_file_name(name)
    }

    fn demo_folder(context: &WebContext) -> Result<&Path, ApiError> {
        context
            .demo_stick
            .as_deref()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "This box is not the demo."))
    }

    async fn demo_stick_state(
        _: Authenticated,
        context: web::Data<WebContext>,
    ) -> Result<HttpResponse, ApiError> {
        let folder = demo_folder(&context)?;
        Ok(HttpResponse::Ok().json(serde_json::json!({
            "inserted": folder.is_dir(),
            "folder": folder,
        })))
    }

    #[derive(serde::Deserialize)]
    struct DemoStickRequest {
        inserted: bool,
    }

    /// Plugs the demo's stick in (the folder appears) or pulls it out (the folder moves aside),
    /// without Eject: what the backup service then sees is what a real stick would cause.
    async fn demo_stick(
        _: Authenticated,
        context: web::Data<WebContext>,
        request: Result<web::Json<DemoStickRequest>, actix_web::Error>,
    ) -> Result<HttpResponse, ApiError> {
        let request = json_body(request, "{\"inserted\": true}")?;
        let folder = demo_folder(&context)?;
        let aside = unplugged(folder);
        let result = match (request.inserted, folder.is_dir()) {
            (true, false) if aside.is_dir() => std::fs::rename(&aside, folder),
            (true, false) => std::fs::create_dir_all(folder),
            (false, true) => std::fs::remove_dir_all(&aside)
                .or_else(|err| match err.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(err),
                })
                .and_then(|()| std::fs::rename(folder, &aside)),
            // Already as asked.
            _ => Ok(()),
        };
        result.map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "The demo could not {} its stick ({}): {err}",
                    if request.inserted {
                        "plug in"
                    } else {
                        "pull out"
                    },
                    folder.display()
                ),
            )
        })?;
        Ok(HttpResponse::Ok().json(serde_json::json!({
            "inserted": request.inserted,
            "message": if request.inserted {
                "The demo's stick is plugged in: the box notices it within a few seconds."
            } else {
                "The demo's stick is pulled out (without Eject)."
            },
        })))
    }
}
