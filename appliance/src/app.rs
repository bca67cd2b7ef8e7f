//! The appliance as a whole: starts the services in order and stops them in the reverse,
//! written-down order.
//!
//! Start: data dir → status → bitcoind supervisor → system monitor → web page.
//! Stop (one [`Shutdown`] signal): web page → display → Lightning node → final backup flush
//! → bitcoind (stop RPC, SIGTERM, wait). bitcoind goes last because everything else may
//! still need it while it stops.

use crate::bitcoind::{BitcoindHandle, BitcoindSettings, RpcCredentials};
use crate::config::Config;
use crate::fsutil;
use crate::shutdown::Shutdown;
use crate::status::{Phase, StatusHandle};
use crate::system::monitor::SystemMonitor;
use crate::web::{WebContext, WebServer};
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};
use tracing::info;

/// A started appliance.
pub struct Appliance {
    pub status: StatusHandle,
    pub shutdown: Shutdown,
    pub bitcoind: BitcoindHandle,
    pub credentials: RpcCredentials,
    pub web_address: SocketAddr,
    rpc_port: u16,
    web: WebServer,
    monitor: SystemMonitor,
}

impl Appliance {
    /// Starts every service. The config must have been validated.
    pub async fn start(config: &Config, shutdown: Shutdown) -> anyhow::Result<Appliance> {
        let data_dir = &config.data.dir;
        fsutil::ensure_private_dir(data_dir, 0o700).with_context(|| {
            format!(
                "cannot create the data directory {} (data.dir): check the disk is mounted \
                 and plugnode may write there",
                data_dir.display()
            )
        })?;
        let secrets_dir = config.data.secrets_dir();
        let credentials = RpcCredentials::load_or_create(&secrets_dir).with_context(|| {
            format!(
                "cannot read or create the RPC credentials in {}",
                secrets_dir.display()
            )
        })?;

        // Bind the web port first: a port in use is a config error to report before
        // anything else starts.
        let listener = TcpListener::bind(config.web.listen).with_context(|| {
            format!(
                "cannot listen on {} (web.listen): another program may use the port, or binding \
                 a port below 1024 needs the CAP_NET_BIND_SERVICE capability",
                config.web.listen
            )
        })?;
        let web_address = listener.local_addr()?;

        let status = StatusHandle::new();
        let bitcoind = BitcoindHandle::spawn(
            BitcoindSettings {
                bitcoind: config.bitcoind.clone(),
                data: config.data.clone(),
                credentials: credentials.clone(),
            },
            status.clone(),
        );
        let monitor = SystemMonitor::spawn(config.data.dir.clone(), web_address, status.clone());
        let web = WebServer::start(
            listener,
            WebContext {
                status: status.clone(),
                bitcoind: bitcoind.clone(),
            },
        )
        .context("cannot start the web server")?;
        status.update(|s| s.phase = Phase::Running);
        info!("plugnode {} running", env!("CARGO_PKG_VERSION"));

        Ok(Appliance {
            status,
            shutdown,
            bitcoind,
            credentials,
            web_address,
            rpc_port: config.bitcoind.rpc_port(),
            web,
            monitor,
        })
    }

    /// The port bitcoind's RPC answers on (127.0.0.1).
    pub fn bitcoind_rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// Runs until the shutdown signal, then stops everything in order.
    pub async fn run_until_shutdown(self) {
        self.shutdown.wait().await;
        self.stop().await;
    }

    /// Stops every service in the written-down order.
    pub async fn stop(self) {
        info!("shutting down");
        self.status.update(|s| s.phase = Phase::ShuttingDown);
        self.web.stop().await;
        self.monitor.stop().await;
        self.bitcoind.stop().await;
        self.status.update(|s| s.phase = Phase::Stopped);
        info!("plugnode stopped; safe to unplug");
    }
}
