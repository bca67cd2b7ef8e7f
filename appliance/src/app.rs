//! The appliance as a whole: starts the services in order and stops them in the reverse,
//! written-down order.
//!
//! Start: data dir → web (plain and HTTPS) and pairing ports → HTTPS certificate →
//! status → bitcoind supervisor → Lightning → display → pairing (wallet apps) → system and
//! power monitors → web page.
//! Stop (one [`Shutdown`] signal): web page → its certificate renewal → display clears
//! secrets and says "shutting down" (on its own, at the signal) → pairing (no new app
//! requests) → Lightning node →
//! final backup flush → bitcoind (stop
//! RPC, SIGTERM, wait) → display says "safe to unplug". bitcoind goes last because
//! everything else may still need it while it stops; the display's last words come after
//! it, because only then is unplugging safe.

use crate::backup::mirror::MirrorWriter;
use crate::backup::mount::{DirectAccess, FolderAccess, HelperAccess, StickAccess};
use crate::backup::service::{BackupHandle, BackupSettings, StickSource};
use crate::bitcoind::{BitcoindHandle, BitcoindSettings, RpcCredentials};
use crate::config::Config;
use crate::display::{self, DisplayHandle, SimulatedDisplay};
use crate::fsutil;
use crate::lightning::store::ChannelStore;
use crate::lightning::{LightningHandle, LightningSettings};
use crate::pairing::{BoundPairing, Pairing, PairingHandle};
use crate::shutdown::Shutdown;
use crate::status::{Phase, StatusHandle};
use crate::system::monitor::{HostNames, SystemMonitor, WebAddresses};
use crate::web::tls::{CertificateAuthority, Https};
use crate::web::{Auth, Listeners, WebContext, WebServer};
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tracing::info;

/// A started appliance.
pub struct Appliance {
    pub status: StatusHandle,
    pub shutdown: Shutdown,
    pub bitcoind: BitcoindHandle,
    pub credentials: RpcCredentials,
    /// The plain-HTTP listener (`web.listen`).
    pub web_address: SocketAddr,
    /// The HTTPS listener (`web.https_listen`).
    pub https_address: SocketAddr,
    /// The box's certificate authority (what devices trust).
    pub ca: Arc<CertificateAuthority>,
    pub auth: Auth,
    pub lightning: LightningHandle,
    pub backup: BackupHandle,
    pub display: Option<DisplayHandle>,
    /// The simulated panel's picture and keys (demo and tests).
    pub simulated_display: Option<SimulatedDisplay>,
    /// Paired wallet apps (`None` when `[pairing]` is off).
    pub pairing: Option<PairingHandle>,
    /// The demo's Lightning peer, for the page's "an invoice to pay" (demo only).
    pub demo_peer: Arc<std::sync::OnceLock<LightningHandle>>,
    rpc_port: u16,
    pairing_services: Option<Pairing>,
    web: WebServer,
    https: Https,
    monitor: SystemMonitor,
    power: tokio::task::JoinHandle<()>,
    systemd: crate::sd_notify::Systemd,
}

impl Appliance {
    /// Starts every service. The config must have been validated.
    pub async fn start(config: &Config, shutdown: Shutdown) -> anyhow::Result<Appliance> {
        Self::start_with(config, shutdown, false, None).await
    }

    /// [`Appliance::start`] for the demo: secrets (seed words) may reach the screen mirror
    /// on the web page (on a laptop the simulated screen *is* the device), and a folder
    /// stands in for the USB stick.
    pub(crate) async fn start_with(
        config: &Config,
        shutdown: Shutdown,
        mirror_secrets: bool,
        stick_folder: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Appliance> {
        let demo_stick = stick_folder.clone();
        let backup_source = stick_folder;
        let data_dir = &config.data.dir;
        // bitcoind under its own user reaches its data directory and bitcoin.conf through
        // this one (0711: no listing; everything in it stays 0600/0700).
        let data_dir_mode = if config.bitcoind.user.is_some() {
            0o711
        } else {
            0o700
        };
        fsutil::ensure_private_dir(data_dir, data_dir_mode).with_context(|| {
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

        // Bind the web ports first: a port in use is a config error to report before
        // anything else starts.
        let bind = |address: SocketAddr, key: &str| {
            TcpListener::bind(address).with_context(|| {
                format!(
                    "cannot listen on {address} ({key}): another program may use the port, or \
                     binding a port below 1024 needs the CAP_NET_BIND_SERVICE capability"
                )
            })
        };
        let listener = bind(config.web.listen, "web.listen")?;
        let https_listener = bind(config.web.https_listen, "web.https_listen")?;
        let web_address = listener.local_addr()?;
        let https_address = https_listener.local_addr()?;
        // The names the certificate covers; the system monitor tells of changes.
        let (host_names, host_names_changed) = tokio::sync::watch::channel(HostNames::current());
        let https = Https::start(&secrets_dir, host_names_changed).with_context(|| {
            format!(
                "cannot set up HTTPS for the web page (its certificate authority lives in {})",
                secrets_dir.display()
            )
        })?;
        let ca = https.ca().clone();

        let auth = Auth::load(&secrets_dir, config.web.initial_password_file.as_deref())
            .context("cannot set up the web page's password store")?;
        let pairing = BoundPairing::bind(config.pairing.settings(&config.data))
            .await
            .context("cannot set up pairing with wallet apps")?;

        let status = StatusHandle::new();
        status.update(|s| {
            s.setup.password_set = auth.is_claimed();
            s.system.ca_fingerprint = Some(ca.fingerprint().to_string());
        });
        let bitcoind = BitcoindHandle::spawn(
            BitcoindSettings {
                bitcoind: config.bitcoind.clone(),
                data: config.data.clone(),
                credentials: credentials.clone(),
            },
            status.clone(),
            shutdown.clone(),
        );
        let lightning_dir = config.data.dir.join("lightning");
        let store = ChannelStore::open(&lightning_dir).with_context(|| {
            format!(
                "cannot open the channel store in {}: the SD card may be failing; restore \
                 from the USB backup on a new card",
                lightning_dir.display()
            )
        })?;
        let lightning = LightningHandle::spawn(
            LightningSettings {
                enabled: config.lightning.enabled,
                network: config.bitcoind.network,
                storage_dir: lightning_dir,
                secrets_dir: secrets_dir.clone(),
                listen_address: std::net::SocketAddr::from((
                    [0, 0, 0, 0],
                    config.lightning.listen_port,
                )),
                alias: config.lightning.alias.clone(),
                gossip: config.lightning.gossip.clone(),
                rpc_port: config.bitcoind.rpc_port(),
                rpc_user: credentials.lightning.clone(),
                lsp: config
                    .lightning
                    .lsp
                    .as_ref()
                    .map(|lsp| crate::lightning::LspSettings {
                        node_id: lsp.node_id.clone(),
                        address: lsp.address.clone(),
                        token: lsp.token.clone().map(crate::secret::Secret::new),
                        name: lsp
                            .name
                            .clone()
                            .unwrap_or_else(|| "the liquidity provider".into()),
                    }),
                lsp_fee_limit: crate::lightning::LspFeeLimit {
                    max_msat: config.lightning.max_lsp_fee_sat.saturating_mul(1000),
                    max_permille: config.lightning.max_lsp_fee_permille,
                },
                lsp_service: None,
            },
            status.clone(),
            store,
        );
        let backup = BackupHandle::spawn(
            backup_settings(config, &secrets_dir, backup_source),
            status.clone(),
            lightning.clone(),
        );
        // A broken or missing panel must not stop the node: it runs without a screen and
        // the web page says why.
        let (display, simulated_display) = match display::start(
            &crate::display::DisplaySettings {
                mirror_secrets,
                ..config.display.settings()
            },
            status.subscribe(),
            shutdown.clone(),
        ) {
            Ok(Some((handle, simulated))) => (Some(handle), simulated),
            Ok(None) => (None, None),
            Err(err) => {
                tracing::error!("the e-ink display does not work: {err}");
                status.update(|s| {
                    s.system.display_error = Some(format!(
                        "The e-ink display does not work: {err}. Check the HAT is seated \
                             and SPI is enabled, then restart the box."
                    ))
                });
                (None, None)
            }
        };
        if let (Some(display), Some(code)) = (&display, auth.setup_code()) {
            let _ = display.show_setup_code(Some(code));
        }
        if let Some(display) = &display {
            tokio::spawn(carry_out_device_requests(
                display.device_requests(),
                backup.clone(),
            ));
        }
        let pairing_services = match pairing {
            Some(bound) => Some(
                bound
                    .start(lightning.clone(), status.clone(), display.clone())
                    .await
                    .context("cannot start pairing with wallet apps")?,
            ),
            None => None,
        };
        let pairing = pairing_services.as_ref().map(Pairing::handle);
        let monitor = SystemMonitor::spawn(
            config.data.dir.clone(),
            WebAddresses {
                plain: web_address,
                https: https_address,
            },
            status.clone(),
            host_names,
        );
        let power = tokio::spawn(crate::system::power::watch(
            "/sys".into(),
            status.clone(),
            shutdown.clone(),
        ));
        let demo_peer = Arc::new(std::sync::OnceLock::new());
        let web = WebServer::start(
            Listeners {
                plain: listener,
                https: https_listener,
            },
            &https,
            WebContext {
                status: status.clone(),
                bitcoind: bitcoind.clone(),
                shutdown: shutdown.clone(),
                display: display.clone(),
                lightning: lightning.clone(),
                backup: backup.clone(),
                pairing: pairing.clone(),
                demo_stick,
                demo_peer: demo_peer.clone(),
                allowed_hosts: config.web.allowed_hosts.clone(),
            },
            auth.clone(),
        )
        .context("cannot start the web server")?;
        status.update(|s| s.phase = Phase::Running);
        // systemd (Type=notify): READY once the web page listens, then status and watchdog.
        let systemd = crate::sd_notify::Systemd::ready(status.clone());
        info!("plugnode {} running", env!("CARGO_PKG_VERSION"));

        Ok(Appliance {
            status,
            shutdown,
            bitcoind,
            credentials,
            web_address,
            https_address,
            ca,
            auth,
            lightning,
            backup,
            display,
            simulated_display,
            pairing,
            demo_peer,
            rpc_port: config.bitcoind.rpc_port(),
            pairing_services,
            web,
            https,
            monitor,
            power,
            systemd,
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
        self.systemd.stopping();
        self.status.update(|s| s.phase = Phase::ShuttingDown);
        // Views follow the shutdown signal on their own; make sure it is set even when
        // `stop` is called directly.
        self.shutdown.trigger();
        self.web.stop().await;
        self.https.stop().await;
        if let Some(pairing) = self.pairing_services {
            pairing.stop().await;
        }
        self.lightning.stop().await;
        // The final flush: the journal is closed and the stick unmounted.
        self.backup.stop().await;
        self.monitor.stop().await;
        self.bitcoind.stop().await;
        let _ = self.power.await;
        self.status.update(|s| s.phase = Phase::Stopped);
        if let Some(display) = &self.display {
            if let Err(err) = display.finish().await {
                tracing::warn!("could not draw the last screen: {err}");
            }
        }
        info!("plugnode stopped; safe to unplug");
    }
}

/// Does what the user asked for with the device's keys.
async fn carry_out_device_requests(
    mut requests: tokio::sync::broadcast::Receiver<display::DeviceRequest>,
    backup: BackupHandle,
) {
    while let Ok(request) = requests.recv().await {
        match request {
            display::DeviceRequest::PrepareStick => {
                if let Err(err) = backup.confirm_format().await {
                    tracing::warn!("could not prepare the stick: {err}");
                }
            }
        }
    }
}

/// The backup service's settings: how sticks are found and mounted on this box.
fn backup_settings(
    config: &Config,
    secrets_dir: &std::path::Path,
    stick_folder: Option<std::path::PathBuf>,
) -> BackupSettings {
    let (source, access): (StickSource, Result<Arc<dyn StickAccess>, String>) = match stick_folder {
        Some(folder) => (StickSource::Folder(folder), Ok(Arc::new(FolderAccess))),
        None => {
            let source = StickSource::Sysfs {
                root: "/sys".into(),
                extra_devices: config.backup.extra_devices.clone(),
            };
            let helper = std::path::Path::new(HelperAccess::SOCKET);
            let access: Result<Arc<dyn StickAccess>, String> = if helper.exists() {
                Ok(Arc::new(HelperAccess::new(helper.to_path_buf())))
            } else if nix::unistd::geteuid().is_root() {
                Ok(Arc::new(DirectAccess::new(config.backup.mount_dir.clone())))
            } else {
                Err(
                    "plugnode cannot mount USB sticks here: enable plugnode-mount.socket (the \
                     image does), or run plugnode as root"
                        .into(),
                )
            };
            (source, access)
        }
    };
    BackupSettings {
        enabled: config.backup.enabled,
        mode: config.backup.mode,
        source,
        access,
        secrets_dir: secrets_dir.to_path_buf(),
        history_file: config.data.dir.join("backup-history.json"),
        poll_every: std::time::Duration::from_secs(2),
        mirror_timeout: MirrorWriter::TIMEOUT,
    }
}
