//! The USB backup part of the JSON API: prepare an empty stick, eject, list the copies on a
//! stick, and restore a fresh box from one. In the demo, also plugging its stick (a
//! folder) in and pulling it out.

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::routes::{api_routes, json_body};
use super::WebContext;
use crate::backup::error::BackupError;
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

/// What the page and scripts get when a backup command fails: a stick that is missing or
/// holds nothing is 404, one in the wrong state 409, one that cannot be prepared 422, a
/// stick or service that fails 503, a stick that hangs 504.
fn status_of(err: &BackupError) -> StatusCode {
    match err {
        BackupError::NoStick | BackupError::NothingToRestore => StatusCode::NOT_FOUND,
        BackupError::NothingToPrepare | BackupError::Ejected | BackupError::Busy(_) => {
            StatusCode::CONFLICT
        }
        BackupError::NotEmpty(_) => StatusCode::UNPROCESSABLE_ENTITY,
        BackupError::StickFailed(_) | BackupError::NoAccess(_) | BackupError::Stopped => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        BackupError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

fn backup_error(err: BackupError) -> ApiError {
    ApiError::new(status_of(&err), err.to_string()).with_kind(err.kind())
}

async fn prepare(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    context
        .backup
        .confirm_format()
        .await
        .map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ok": true })))
}

async fn eject(_: Authenticated, context: web::Data<WebContext>) -> Result<HttpResponse, ApiError> {
    context.backup.eject().await.map_err(backup_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ok": true,
        "message": "The backup is complete and the stick is unmounted: you can pull it out.",
    })))
}

async fn copies(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let copies = context.backup.copies().await.map_err(backup_error)?;
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
        Err(err) => Err(restore_error(err)),
    }
}

fn restore_error(err: RestoreError) -> ApiError {
    let status = match err {
        RestoreError::Stick(stick) => return backup_error(stick),
        RestoreError::Words(_) | RestoreError::NoSuchCopy(_) => StatusCode::BAD_REQUEST,
        RestoreError::OtherNode { .. } => StatusCode::FORBIDDEN,
        RestoreError::Stale { .. } | RestoreError::NotFresh => StatusCode::CONFLICT,
        RestoreError::NoBackup => StatusCode::NOT_FOUND,
        RestoreError::Damaged(_) => StatusCode::UNPROCESSABLE_ENTITY,
        RestoreError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, err.to_string()).with_kind(err.kind())
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    async fn answer(error: ApiError) -> (u16, serde_json::Value) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn every_backup_error_has_its_status_and_kind() {
        let why = || "why".to_string();
        let cases = [
            (BackupError::NoStick, 404, "no_stick"),
            (BackupError::NothingToRestore, 404, "no_backup"),
            (BackupError::NothingToPrepare, 409, "nothing_to_prepare"),
            (BackupError::Ejected, 409, "ejected"),
            (BackupError::Busy(why()), 409, "stick_busy"),
            (BackupError::NotEmpty(why()), 422, "not_empty"),
            (BackupError::StickFailed(why()), 503, "stick_failed"),
            (BackupError::NoAccess(why()), 503, "cannot_mount"),
            (BackupError::Stopped, 503, "stopped"),
            (BackupError::TimedOut(why()), 504, "timed_out"),
        ];
        for (err, status, kind) in cases {
            let message = err.to_string();
            let (code, body) = answer(backup_error(err)).await;
            assert_eq!(
                (code, body["kind"].as_str()),
                (status, Some(kind)),
                "{body}"
            );
            assert_eq!(body["error"], message.as_str());
        }
    }

    #[tokio::test]
    async fn a_restore_without_a_stick_answers_as_the_other_commands() {
        let (code, body) = answer(restore_error(RestoreError::Stick(BackupError::NoStick))).await;
        assert_eq!((code, body["kind"].as_str()), (404, Some("no_stick")));
        let stopped = restore_error(RestoreError::Stick(BackupError::Stopped));
        assert_eq!(stopped.status, StatusCode::SERVICE_UNAVAILABLE);
        let (code, body) = answer(restore_error(RestoreError::NotFresh)).await;
        assert_eq!((code, body["kind"].as_str()), (409, Some("not_fresh")));
    }
}
