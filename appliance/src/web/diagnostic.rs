//! The page of diagnostic mode: what stopped the box from starting, what to do, the last
//! lines of the log, and Retry and Shut down. It works without JavaScript (plain forms),
//! because it must work when everything else does not.
//!
//! Retry needs nothing: it only runs the start again. Shut down needs the web password
//! when the box has one and it can be read; the password is asked only over HTTPS or from
//! the box itself (never in clear over the network). Holding KEY4 on the box also shuts
//! it down.

use super::auth::{client_of, Auth};
use super::guard::{self, OwnNames};
use super::html::escape;
use super::tls::Https;
use crate::secret::Secret;
use crate::shutdown::Shutdown;
use crate::status::StartFailure;
use actix_web::http::header;
use actix_web::middleware;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use std::net::TcpListener;
use tokio::sync::mpsc;

/// What the page shows and what its buttons reach.
pub struct DiagnosticPage {
    pub failure: StartFailure,
    /// Failed starts so far (1: the first).
    pub attempt: u32,
    /// The password store, when it could be read and holds a password.
    pub auth: Option<Auth>,
    pub shutdown: Shutdown,
    /// Pressing Retry sends here.
    pub retry: mpsc::UnboundedSender<()>,
    /// Where the page answers over HTTPS, for the hint on plain HTTP.
    pub https_url: Option<String>,
}

/// The running diagnostic page.
pub struct DiagnosticServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DiagnosticServer {
    /// Serves `page` on whichever listeners could be bound (HTTPS with `https` when there).
    pub fn start(
        page: DiagnosticPage,
        names: OwnNames,
        plain: Option<TcpListener>,
        https: Option<(TcpListener, &Https)>,
    ) -> std::io::Result<DiagnosticServer> {
        let page = web::Data::new(page);
        let names = web::Data::new(names);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(guard::guard))
                .app_data(page.clone())
                .app_data(names.clone())
                .app_data(web::FormConfig::default().limit(4096))
                .route("/", web::get().to(show))
                .route("/api/health", web::get().to(health))
                .route("/api/diagnostic", web::get().to(as_json))
                .route("/api/diagnostic/retry", web::post().to(retry))
                .route("/api/diagnostic/shutdown", web::post().to(shut_down))
                .default_service(web::to(|| async {
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, "/"))
                        .finish()
                }))
        })
        .workers(1)
        .max_connections(guard::MAX_CONNECTIONS)
        .disable_signals()
        .shutdown_timeout(1);
        if let Some(plain) = plain {
            server = server.listen(plain)?;
        }
        if let Some((listener, https)) = https {
            server = server.listen_rustls_0_23(listener, https.server_config())?;
        }
        let server = server.run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(DiagnosticServer { handle, task })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

/// May this request carry the password? Over HTTPS, or from the box itself.
fn password_may_travel(request: &HttpRequest) -> bool {
    request.app_config().secure() || client_of(request).is_loopback()
}

fn needs_password(page: &DiagnosticPage) -> bool {
    page.auth.as_ref().is_some_and(Auth::is_claimed)
}

async fn health(page: web::Data<DiagnosticPage>) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "state": "diagnostic",
        "problem": page.failure.problem,
    }))
}

async fn as_json(page: web::Data<DiagnosticPage>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "state": "diagnostic",
            "problem": page.failure.problem,
            "detail": page.failure.detail,
            "attempt": page.attempt,
            "log": crate::log_tail::lines(),
            "shutdown_needs_password": needs_password(&page),
            "version": env!("CARGO_PKG_VERSION"),
        }))
}

async fn show(request: HttpRequest, page: web::Data<DiagnosticPage>) -> HttpResponse {
    let log = crate::log_tail::lines().join("\n");
    let shutdown_form = if !needs_password(&page) {
        "<form method=\"post\" action=\"/api/diagnostic/shutdown\">\
         <button type=\"submit\">Shut down</button></form>"
            .to_string()
    } else if password_may_travel(&request) {
        "<form method=\"post\" action=\"/api/diagnostic/shutdown\">\
         <label>Web password <input type=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required></label> \
         <button type=\"submit\">Shut down</button></form>"
            .to_string()
    } else {
        format!(
            "<p>To shut down from here, open {} (the password does not travel in clear), \
             or hold KEY4 on the box.</p>",
            escape(page.https_url.as_deref().unwrap_or("the page over HTTPS"))
        )
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>plugnode cannot start</title></head><body>\
         <h1>plugnode cannot start</h1>\
         <h2 id=\"problem\">{problem}</h2><p id=\"detail\">{detail}</p>\
         <p>Fix it, then press Retry. Your channels, wallet and settings are untouched: \
         nothing runs until the box starts.</p>\
         <form method=\"post\" action=\"/api/diagnostic/retry\">\
         <button type=\"submit\" id=\"retry\">Retry</button></form>\
         {shutdown_form}\
         <h2>The last lines of the log</h2><pre id=\"log\">{log}</pre>\
         <p>plugnode {version}; failed starts: {attempt}</p></body></html>",
        problem = escape(&page.failure.problem),
        detail = escape(&page.failure.detail),
        log = escape(&log),
        version = env!("CARGO_PKG_VERSION"),
        attempt = page.attempt,
    );
    html(HttpResponse::Ok(), body)
}

async fn retry(request: HttpRequest, page: web::Data<DiagnosticPage>) -> HttpResponse {
    let _ = page.retry.send(());
    answer(
        &request,
        HttpResponse::Accepted(),
        "Starting again",
        "plugnode is starting again. This page reloads in a few seconds.",
        true,
    )
}

#[derive(Deserialize)]
struct ShutdownForm {
    #[serde(default)]
    password: Option<String>,
}

async fn shut_down(
    request: HttpRequest,
    page: web::Data<DiagnosticPage>,
    form: Option<web::Form<ShutdownForm>>,
    json: Option<web::Json<ShutdownForm>>,
) -> HttpResponse {
    let given = form
        .map(|f| f.into_inner())
        .or(json.map(|j| j.into_inner()))
        .and_then(|f| f.password);
    if let Some(auth) = page.auth.as_ref().filter(|auth| auth.is_claimed()) {
        if !password_may_travel(&request) {
            return answer(
                &request,
                HttpResponse::Forbidden(),
                "Use HTTPS",
                "The password is asked only over HTTPS: open the page over HTTPS, or hold \
                 KEY4 on the box.",
                false,
            );
        }
        let Some(password) = given.filter(|p| !p.is_empty()) else {
            return answer(
                &request,
                HttpResponse::Unauthorized(),
                "Password needed",
                "Shutting the box down needs the web password.",
                false,
            );
        };
        match auth
            .login(client_of(&request), Secret::new(password), None)
            .await
        {
            Ok(session) => auth.logout(session.expose()),
            Err(err) => {
                return answer(
                    &request,
                    HttpResponse::build(err.status),
                    "Not shut down",
                    &err.message,
                    false,
                )
            }
        }
    }
    tracing::info!("shutdown asked from the diagnostic page");
    page.shutdown.power_off();
    answer(
        &request,
        HttpResponse::Accepted(),
        "Shutting down",
        "The box shuts down. Wait until its screen says it is safe to unplug.",
        false,
    )
}

/// An answer in the form the client asked for: JSON for scripts, a page for browsers.
fn answer(
    request: &HttpRequest,
    mut response: actix_web::HttpResponseBuilder,
    title: &str,
    message: &str,
    reload: bool,
) -> HttpResponse {
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        return response.json(serde_json::json!({ "message": message }));
    }
    let refresh = if reload {
        "<meta http-equiv=\"refresh\" content=\"5;url=/\">"
    } else {
        ""
    };
    html(
        response,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
             <title>{title} - plugnode</title></head><body><h1>{title}</h1><p>{message}</p>\
             <p><a href=\"/\">Back</a></p></body></html>",
            title = escape(title),
            message = escape(message),
        ),
    )
}

fn html(mut response: actix_web::HttpResponseBuilder, body: String) -> HttpResponse {
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}
