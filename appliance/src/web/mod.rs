//! The local web page and its JSON API (actix-web).
//!
//! [`WebServer::start`] takes its listening sockets from the caller (tests bind
//! `127.0.0.1:0`) and is stopped by the supervisor in its shutdown order. The page and the
//! API are served over HTTPS with the box's own certificate ([`tls`]); the plain-HTTP
//! listener serves them only when bound to loopback, and otherwise leads to HTTPS
//! ([`trust`]).

mod api;
mod assets;
pub mod auth;
mod backup_api;
#[cfg(feature = "demo")]
mod demo_api;
pub mod diagnostic;
mod error;
pub mod guard;
mod html;
mod key_press;
mod lightning_api;
mod openapi;
mod pairing_api;
mod routes;
mod throttle;
pub mod tls;
pub mod trust;
mod update_api;

pub use auth::Auth;

use crate::backup::service::BackupHandle;
use crate::bitcoind::BitcoindHandle;
use crate::display::DisplayHandle;
use crate::lightning::LightningHandle;
use crate::pairing::PairingHandle;
use crate::shutdown::Shutdown;
use crate::status::StatusHandle;
use actix_web::{middleware, web, App, HttpServer};
use std::net::TcpListener;
use tracing::info;

/// What the handlers reach: the status to show, and the services to command.
#[derive(Clone)]
pub struct WebContext {
    pub status: StatusHandle,
    pub bitcoind: BitcoindHandle,
    pub shutdown: Shutdown,
    pub display: Option<DisplayHandle>,
    pub lightning: LightningHandle,
    pub backup: BackupHandle,
    /// Paired wallet apps (`None` when `[pairing]` is off).
    pub pairing: Option<PairingHandle>,
    /// System updates (System → Update).
    pub update: crate::update::UpdateHandle,
    /// The demo's folder standing in for the USB stick (`None` on a real box): the page
    /// may plug it in and pull it out (`/api/demo/stick`).
    pub demo_stick: Option<std::path::PathBuf>,
    /// The demo's Lightning peer, once it runs (demo only): the page may ask it for an
    /// invoice to try a paired app's payment (`/api/demo/peer/invoice`).
    pub demo_peer: std::sync::Arc<std::sync::OnceLock<LightningHandle>>,
    /// `[web] allowed_hosts`: names the page answers to besides the box's own.
    pub allowed_hosts: Vec<String>,
}

/// A running web server.
pub struct WebServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<()>,
}

/// The sockets the page is served on.
pub struct Listeners {
    /// Plain HTTP (`web.listen`): everything when bound to loopback, else only what
    /// leads to HTTPS (see [`trust`]).
    pub plain: TcpListener,
    /// HTTPS (`web.https_listen`).
    pub https: TcpListener,
}

impl WebServer {
    /// Serves the web page on `listeners` until [`WebServer::stop`], over HTTPS with
    /// `https`'s current certificate.
    pub fn start(
        listeners: Listeners,
        https: &tls::Https,
        context: WebContext,
        auth: Auth,
    ) -> std::io::Result<WebServer> {
        let plain_address = listeners.plain.local_addr()?;
        let https_address = listeners.https.local_addr()?;
        #[cfg(feature = "demo")]
        let demo = context.demo_stick.is_some();
        let status = context.status.clone();
        let own_names = web::Data::new(guard::OwnNames {
            status: status.clone(),
            allowed_hosts: context.allowed_hosts.clone(),
        });
        let data = web::Data::new(context);
        let auth = web::Data::new(auth);
        let trust_info = web::Data::new(trust::TrustInfo {
            ca_pem: https.ca().cert_pem().to_string(),
            ca_name: https.ca().name().to_string(),
            fingerprint: https.ca().fingerprint().to_string(),
            https_port: https_address.port(),
        });
        let server = HttpServer::new(move || {
            App::new()
                // The last wrap runs first: names and origins are checked before the
                // plain-HTTP gate decides what port 80 may serve.
                .wrap(middleware::from_fn(trust::plain_gate))
                .wrap(middleware::from_fn(guard::guard))
                .app_data(web::JsonConfig::default().limit(routes::JSON_LIMIT))
                .app_data(data.clone())
                .app_data(own_names.clone())
                .app_data(auth.clone())
                .app_data(trust_info.clone())
                .configure(trust::routes)
                .configure(lightning_api::routes)
                .configure(backup_api::routes)
                .configure(pairing_api::routes)
                .configure(update_api::routes)
                // Only a demo build has the demo's routes, and only the demo serves them.
                .configure(|_config| {
                    #[cfg(feature = "demo")]
                    if demo {
                        backup_api::demo_routes(_config);
                        demo_api::routes(_config);
                    }
                })
                .configure(api::routes)
                .configure(assets::routes)
        })
        // One worker is plenty for a handful of phones on the home network and keeps the
        // supervisor's memory small.
        .workers(1)
        // A handful of phones and browsers need a few dozen; more is someone flooding.
        .max_connections(guard::MAX_CONNECTIONS)
        // TLS handshakes in progress at once: each costs a signature, so a flood of them
        // cannot starve the page's one worker.
        .max_connection_rate(guard::MAX_HANDSHAKES)
        // The supervisor owns the signals and the shutdown order.
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listeners.plain)?
        .listen_rustls_0_23(listeners.https, https.server_config())?
        .run();
        let handle = server.handle();
        let task = crate::essential::spawn("web server", status.clone(), async move {
            // It ends only when stopped; an error end leaves the box without its page.
            if let Err(err) = server.await {
                tracing::error!("the web server stopped: {err}");
                crate::essential::report_stopped(&status, "web server");
            }
        });
        let plain_serves = if plain_address.ip().is_loopback() {
            "the page"
        } else {
            "the way to HTTPS and the CA certificate"
        };
        info!(
            "web page at https://{https_address}/; http://{plain_address}/ serves {plain_serves}"
        );
        Ok(WebServer { handle, task })
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and returns.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
