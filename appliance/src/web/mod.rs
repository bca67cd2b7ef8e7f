//! The local web page and its JSON API (actix-web).
//!
//! [`WebServer::start`] takes its listening socket from the caller (tests bind
//! `127.0.0.1:0`) and is stopped by the supervisor in its shutdown order.

mod api;
mod assets;
pub mod auth;
mod backup_api;
#[cfg(feature = "demo")]
mod demo_api;
mod guard;
mod lightning_api;
mod openapi;
mod pairing_api;
mod routes;
mod throttle;

pub use auth::Auth;

use crate::backup::service::BackupHandle;
use crate::bitcoind::BitcoindHandle;
use crate::display::DisplayHandle;
use crate::lightning::LightningHandle;
use crate::pairing::PairingHandle;
use crate::shutdown::Shutdown;
use crate::status::StatusHandle;
use actix_web::{web, App, HttpServer};
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
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl WebServer {
    /// Serves the web page on `listener` until [`WebServer::stop`].
    pub fn start(
        listener: TcpListener,
        context: WebContext,
        auth: Auth,
    ) -> std::io::Result<WebServer> {
        let address = listener.local_addr()?;
        let demo = context.demo_stick.is_some();
        let data = web::Data::new(context);
        let auth = web::Data::new(auth);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(guard::guard))
                .app_data(web::JsonConfig::default().limit(routes::JSON_LIMIT))
                .app_data(data.clone())
                .app_data(auth.clone())
                .configure(lightning_api::routes)
                .configure(backup_api::routes)
                .configure(pairing_api::routes)
                .configure(|config| {
                    if demo {
                        backup_api::demo_routes(config);
                        #[cfg(feature = "demo")]
                        demo_api::routes(config);
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
        // The supervisor owns the signals and the shutdown order.
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        info!("web page at http://{address}/");
        Ok(WebServer { handle, task })
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and returns.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
