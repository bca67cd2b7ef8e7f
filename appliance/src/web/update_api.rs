//! System → Update in the JSON API: the running version and the update's progress, a
//! bundle uploaded (or downloaded from `update.download_url`) and checked before anything
//! is written, Install (the password again and, on a box with keys, KEY2), and dismissing
//! the last result.

use super::auth::{self, Auth, Authenticated};
use super::error::ApiError;
use super::key_press::{self, Asked};
use super::routes::{api_routes, json_body};
use super::WebContext;
use crate::display::UpdateQuestion;
use crate::secret::Secret;
use crate::update::{HelperError, UpdateError, MAX_BUNDLE_BYTES};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

api_routes! { pub fn routes, const ROUTES;
    GET "/api/system/update" => state;
    POST "/api/system/update/bundle" => upload;
    POST "/api/system/update/download" => download;
    POST "/api/system/update/install" limit super::routes::SMALL_JSON => install;
    POST "/api/system/update/dismiss" => dismiss;
}

impl From<UpdateError> for ApiError {
    fn from(err: UpdateError) -> Self {
        let (status, kind) = match &err {
            // The system cannot do this (no A/B slots, no download address): a state of
            // the box, not a failure of the server.
            UpdateError::Unavailable(_) => (StatusCode::CONFLICT, "unavailable"),
            UpdateError::Busy(_) | UpdateError::Helper(HelperError::Busy) => {
                (StatusCode::CONFLICT, "busy")
            }
            UpdateError::NoBundle => (StatusCode::CONFLICT, "no_bundle"),
            UpdateError::Helper(HelperError::NotABundle(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "not_a_bundle")
            }
            UpdateError::Helper(HelperError::BadSignature(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature")
            }
            UpdateError::Helper(HelperError::Incompatible(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "incompatible")
            }
            UpdateError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            UpdateError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            UpdateError::Helper(HelperError::Unreachable(_) | HelperError::TimedOut(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "helper_unavailable")
            }
            UpdateError::Helper(HelperError::Failed(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "failed")
            }
            UpdateError::Storage(_) => (StatusCode::INSUFFICIENT_STORAGE, "storage"),
            UpdateError::Download(_) => (StatusCode::BAD_GATEWAY, "download_failed"),
        };
        ApiError::new(status, err.to_string()).with_kind(kind)
    }
}

async fn state(_: Authenticated, context: web::Data<WebContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(context.status.snapshot().update)
}

/// The bundle file as the request body (any content type), streamed to the data disk.
async fn upload(
    _: Authenticated,
    request: HttpRequest,
    context: web::Data<WebContext>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let announced = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_BUNDLE_BYTES) {
        return Err(UpdateError::TooLarge.into());
    }
    let update = &context.update;
    let path = update.begin_receiving()?;
    let received = async {
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|err| storage(&err))?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| {
                UpdateError::Helper(HelperError::NotABundle(format!(
                    "the upload broke off: {err}"
                )))
            })?;
            size += chunk.len() as u64;
            if size > MAX_BUNDLE_BYTES {
                return Err(UpdateError::TooLarge);
            }
            file.write_all(&chunk).await.map_err(|err| storage(&err))?;
        }
        if size == 0 {
            return Err(UpdateError::Helper(HelperError::NotABundle(
                "the upload was empty".into(),
            )));
        }
        file.sync_all().await.map_err(|err| storage(&err))
    }
    .await;
    if let Err(err) = received {
        update.receive_failed(&err.to_string());
        return Err(err.into());
    }
    let summary = update.check_received().await?;
    Ok(HttpResponse::Ok().json(summary))
}

fn storage(err: &std::io::Error) -> UpdateError {
    UpdateError::Storage(if err.raw_os_error() == Some(nix::libc::ENOSPC) {
        "The data disk has no room for the bundle: free up space (or lower \
         bitcoind.prune_mib), then try again."
            .into()
    } else {
        format!("cannot store the bundle on the data disk: {err}")
    })
}

async fn download(
    _: Authenticated,
    context: web::Data<WebContext>,
) -> Result<HttpResponse, ApiError> {
    let summary = context.update.download().await?;
    Ok(HttpResponse::Ok().json(summary))
}

#[derive(Deserialize)]
struct InstallRequest {
    #[serde(default)]
    password: Option<Secret>,
}

/// Installs the checked bundle: the password again and, on a box with keys, KEY2 on the
/// box (nothing sent over the network stands in for it). 202: the page follows the
/// progress in GET /api/system/update; the box restarts by itself.
async fn install(
    session: Authenticated,
    http: HttpRequest,
    auth: web::Data<Auth>,
    context: web::Data<WebContext>,
    body: Result<web::Json<InstallRequest>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(body, "{\"password\": \"…\"}")?;
    // Mistakes first: no password and no key press for what cannot be installed.
    let version = context.update.checked_version()?;
    auth.require_fresh(&session, auth::client_of(&http), body.password)
        .await?;
    if let Some(display) = context.display.as_ref().filter(|d| d.state().has_keys) {
        let question = UpdateQuestion {
            version: version.clone(),
            running: context.status.snapshot().update.running_version,
        };
        context.update.waiting_for_key(&version);
        let answer = key_press::confirmed(
            display.confirm(question).await,
            Asked {
                what: "the update",
                nothing_done: "nothing was installed",
            },
        );
        if answer.is_err() {
            context.update.key_not_pressed();
        }
        answer?;
    }
    let version = context.update.install()?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "ok": true,
        "version": version,
        "message": "Installing. When it is written the box stops in order and restarts into \
                    the new version by itself; this page follows it.",
    })))
}

async fn dismiss(_: Authenticated, context: web::Data<WebContext>) -> HttpResponse {
    context.update.dismiss_result();
    HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
}
