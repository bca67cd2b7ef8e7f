//! The appliance as a whole: starts the services in order and stops them in the reverse,
//! written-down order.
//!
//! Before anything: the [`Face`] (status and screen), which outlives each start attempt.
//! Start: the fallible steps that need nothing running ([`prepare`]: data dir, RPC
//! credentials, web ports, password store, pairing store and ports, channel store) →
//! HTTPS certificate → bitcoind supervisor → Lightning → backup → pairing (wallet apps) →
//! system and power monitors → web page. A failure after the first service started stops
//! what had started through the same ordered stop (`Running::stop`), and `main` shows it
//! in diagnostic mode.
//! Stop (one [`Shutdown`] signal): web page → its certificate renewal → display clears
//! secrets and says "shutting down" (on its own, at the signal) → pairing (no new app
//! requests) → Lightning node → final backup flush → bitcoind (stop RPC, SIGTERM, wait
//! until its process is gone) → display says "safe to unplug". bitcoind goes last because
//! everything else may still need it while it stops; the display's last words come after
//! it, because only then is unplugging safe. An essential task that ends while the box
//! runs ([`crate::essential`]) is an alert and triggers the same stop.

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
use crate::update::UpdateHandle;
use crate::web::tls::{CertificateAuthority, Https};
use crate::web::{Auth, Listeners, WebContext, WebServer};
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tracing::info;

/// What the user sees of the box, whether it runs, starts or cannot start: the status and
/// the screen. It outlives each start attempt, so diagnostic mode and its Retry keep the
/// same screen (an e-ink panel is opened once).
pub struct Face {
    pub status: StatusHandle,
    pub display: Option<DisplayHandle>,
    /// The simulated panel's picture and keys (demo and tests).
    pub simulated_display: Option<SimulatedDisplay>,
}

impl Face {
    /// Opens the display (a broken or missing panel is reported, not fatal) and follows
    /// `shutdown` on it. `mirror_secrets`: the demo, where the simulated screen *is* the
    /// device, may show seed words on the page's mirror.
    pub fn start(config: &Config, shutdown: &Shutdown, mirror_secrets: bool) -> Face {
        let status = StatusHandle::new();
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
        Face {
            status,
            display,
            simulated_display,
        }
    }

    /// The last screen, once everything is stopped: "safe to unplug".
    pub async fn finish(&self) {
        if let Some(display) = &self.display {
            if let Err(err) = display.finish().await {
                tracing::warn!("could not draw the last screen: {err}");
            }
        }
    }

    /// A new start attempt begins from a clean status (what the screen knows stays).
    fn begin_attempt(&self) {
        self.status.update(|s| {
            *s = crate::status::Status {
                system: crate::status::SystemStatus {
                    display_error: s.system.display_error.take(),
                    ..Default::default()
                },
                ..Default::default()
            }
        });
    }
}

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
    running: Running,
    systemd: crate::sd_notify::Systemd,
}

/// The services started so far, stopped in the one written-down order: by
/// [`Appliance::stop`], and by a start that fails after its first service started.
#[derive(Default)]
struct Running {
    web: Option<WebServer>,
    https: Option<Https>,
    pairing: Option<Pairing>,
    lightning: Option<LightningHandle>,
    backup: Option<BackupHandle>,
    monitor: Option<SystemMonitor>,
    bitcoind: Option<BitcoindHandle>,
    power: Option<tokio::task::JoinHandle<()>>,
    /// Helpers that end with the services they serve.
    helpers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        if let Some(web) = self.web {
            web.stop().await;
        }
        if let Some(https) = self.https {
            https.stop().await;
        }
        if let Some(pairing) = self.pairing {
            pairing.stop().await;
        }
        if let Some(lightning) = self.lightning {
            lightning.stop().await;
        }
        // The final flush: the journal is closed and the stick unmounted.
        if let Some(backup) = self.backup {
            backup.stop().await;
        }
        if let Some(monitor) = self.monitor {
            monitor.stop().await;
        }
        // Last: everything else may need bitcoind while it stops. Returns once its
        // process is gone.
        if let Some(bitcoind) = self.bitcoind {
            bitcoind.stop().await;
        }
        if let Some(power) = self.power {
            let _ = power.await;
        }
        for helper in self.helpers {
            helper.abort();
        }
    }
}

/// What stopped a start, in a few words for the page and the screen: the outermost
/// context of a start error (the causes below it say why and what to do).
#[derive(Debug)]
pub struct StartProblem(pub &'static str);

impl std::fmt::Display for StartProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// What the fallible steps before the first service produce.
struct Prepared {
    credentials: RpcCredentials,
    listener: TcpListener,
    https_listener: TcpListener,
    web_address: SocketAddr,
    https_address: SocketAddr,
    auth: Auth,
    pairing: Option<BoundPairing>,
    store: ChannelStore,
}

impl Appliance {
    /// Starts every service on `face`. The config must have been validated. On an error
    /// nothing of this attempt runs any more (what had started was stopped in order) and
    /// `face` is left for diagnostic mode.
    pub async fn start(
        config: &Config,
        shutdown: Shutdown,
        face: &Face,
    ) -> anyhow::Result<Appliance> {
        Self::start_on(config, shutdown, face, None).await
    }

    /// [`Appliance::start`] for the demo: secrets (seed words) may reach the screen mirror
    /// on the web page (on a laptop the simulated screen *is* the device), and a folder
    /// stands in for the USB stick.
    #[cfg(feature = "demo")]
    pub(crate) async fn start_with(
        config: &Config,
        shutdown: Shutdown,
        mirror_secrets: bool,
        stick_folder: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Appliance> {
        let face = Face::start(config, &shutdown, mirror_secrets);
        Self::start_on(config, shutdown, &face, stick_folder).await
    }

    async fn start_on(
        config: &Config,
        shutdown: Shutdown,
        face: &Face,
        stick_folder: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Appliance> {
        face.begin_attempt();
        // Everything that can fail and needs nothing running comes first.
        let prepared = prepare(config).await?;
        let mut running = Running::default();
        match Self::start_services(config, shutdown, face, stick_folder, prepared, &mut running)
            .await
        {
            Ok(appliance) => Ok(Appliance {
                running,
                ..appliance
            }),
            Err(err) => {
                tracing::error!("plugnode could not start: {err:#}; stopping what had started");
                running.stop().await;
                Err(err)
            }
        }
    }

    /// Starts the services in order, each recorded in `running` as soon as it runs.
    async fn start_services(
        config: &Config,
        shutdown: Shutdown,
        face: &Face,
        stick_folder: Option<std::path::PathBuf>,
        prepared: Prepared,
        running: &mut Running,
    ) -> anyhow::Result<Appliance> {
        let Prepared {
            credentials,
            listener,
            https_listener,
            web_address,
            https_address,
            auth,
            pairing,
            store,
        } = prepared;
        let demo_stick = stick_folder.clone();
        let backup_source = stick_folder;
        let secrets_dir = config.data.secrets_dir();
        let status = face.status.clone();
        let display = face.display.clone();

        // The names the certificate covers; the system monitor tells of changes.
        let (host_names, host_names_changed) = tokio::sync::watch::channel(HostNames::current());
        let https =
            running
                .https
                .insert(
                    Https::start(&secrets_dir, host_names_changed).with_context(|| {
                        format!(
                    "cannot set up HTTPS for the web page (its certificate authority lives in \
                     {})",
                    secrets_dir.display()
                )
                    })?,
                );
        let ca = https.ca().clone();
        status.update(|s| {
            s.setup.password_set = auth.is_claimed();
            s.system.ca_fingerprint = Some(ca.fingerprint().to_string());
        });
        running
            .helpers
            .push(tokio::spawn(crate::essential::stop_when_one_stops(
                status.clone(),
                shutdown.clone(),
            )));
        let bitcoind = running
            .bitcoind
            .insert(BitcoindHandle::spawn(
                BitcoindSettings {
                    bitcoind: config.bitcoind.clone(),
                    data: config.data.clone(),
                    credentials: credentials.clone(),
                },
                status.clone(),
                shutdown.clone(),
            ))
            .clone();
        let lightning = running
            .lightning
            .insert(LightningHandle::spawn(
                lightning_settings(config, &secrets_dir, &credentials),
                status.clone(),
                store,
            ))
            .clone();
        let backup = running
            .backup
            .insert(BackupHandle::spawn(
                backup_settings(config, &secrets_dir, backup_source),
                status.clone(),
                lightning.clone(),
            ))
            .clone();
        let update = UpdateHandle::start(
            config.update.settings(&config.data),
            status.clone(),
            shutdown.clone(),
        )
        .await;
        if let (Some(display), Some(code)) = (&display, auth.setup_code()) {
            let _ = display.show_setup_code(Some(code));
        }
        if let Some(display) = &display {
            running.helpers.push(tokio::spawn(carry_out_device_requests(
                display.device_requests(),
                backup.clone(),
            )));
        }
        let pairing = match pairing {
            Some(bound) => Some(
                running
                    .pairing
                    .insert(
                        bound
                            .start(lightning.clone(), status.clone(), display.clone())
                            .await
                            .context("cannot start pairing with wallet apps")?,
                    )
                    .handle(),
            ),
            None => None,
        };
        running.monitor = Some(SystemMonitor::spawn(
            config.data.dir.clone(),
            WebAddresses {
                plain: web_address,
                https: https_address,
            },
            status.clone(),
            host_names,
        ));
        running.power = Some(tokio::spawn(crate::system::power::watch(
            "/sys".into(),
            status.clone(),
            shutdown.clone(),
        )));
        let demo_peer = Arc::new(std::sync::OnceLock::new());
        let web = WebServer::start(
            Listeners {
                plain: listener,
                https: https_listener,
            },
            running.https.as_ref().expect("HTTPS started above"),
            WebContext {
                status: status.clone(),
                bitcoind: bitcoind.clone(),
                shutdown: shutdown.clone(),
                display: display.clone(),
                lightning: lightning.clone(),
                backup: backup.clone(),
                pairing: pairing.clone(),
                update,
                demo_stick,
                demo_peer: demo_peer.clone(),
                allowed_hosts: config.web.allowed_hosts.clone(),
            },
            auth.clone(),
        )
        .context("cannot start the web server")?;
        running.web = Some(web);
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
            simulated_display: face.simulated_display.clone(),
            pairing,
            demo_peer,
            rpc_port: config.bitcoind.rpc_port(),
            running: Running::default(),
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
        self.running.stop().await;
        self.status.update(|s| s.phase = Phase::Stopped);
        if let Some(display) = &self.display {
            if let Err(err) = display.finish().await {
                tracing::warn!("could not draw the last screen: {err}");
            }
        }
        info!("plugnode stopped; safe to unplug");
    }
}

/// The fallible steps that need nothing running: the data directory, the RPC
/// credentials, the web ports, the password store, the pairing store and ports, and the
/// channel store. A failure here leaves nothing to stop.
async fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    let data_dir = &config.data.dir;
    // bitcoind under its own user reaches its data directory and bitcoin.conf through
    // this one (0711: no listing; everything in it stays 0600/0700).
    let data_dir_mode = if config.bitcoind.user.is_some() {
        0o711
    } else {
        0o700
    };
    fsutil::ensure_private_dir(data_dir, data_dir_mode)
        .with_context(|| {
            format!(
                "cannot create the data directory {} (data.dir): check the disk is mounted \
                 and plugnode may write there",
                data_dir.display()
            )
        })
        .context(StartProblem(
            "The data disk is missing or cannot be written",
        ))?;
    // Data a newer version wrote (a rollback after its migration) is never run on.
    crate::update::data_format::check(data_dir, crate::update::DATA_FORMAT)
        .context(StartProblem("The data is from a newer plugnode"))?;
    let secrets_dir = config.data.secrets_dir();
    let credentials = RpcCredentials::load_or_create(&secrets_dir)
        .with_context(|| {
            format!(
                "cannot read or create the RPC credentials in {}",
                secrets_dir.display()
            )
        })
        .context(StartProblem("The data disk cannot be written"))?;
    // A port in use is a config error to report before anything else starts.
    let bind = |address: SocketAddr, key: &str| {
        TcpListener::bind(address)
            .with_context(|| {
                format!(
                    "cannot listen on {address} ({key}): another program may use the port, or \
                 binding a port below 1024 needs the CAP_NET_BIND_SERVICE capability"
                )
            })
            .context(StartProblem("A network port plugnode needs is taken"))
    };
    let listener = bind(config.web.listen, "web.listen")?;
    let https_listener = bind(config.web.https_listen, "web.https_listen")?;
    let web_address = listener.local_addr()?;
    let https_address = https_listener.local_addr()?;
    let auth = Auth::load(&secrets_dir, config.web.initial_password_file.as_deref())
        .context("cannot set up the web page's password store")
        .context(StartProblem("The web password store does not open"))?;
    let pairing = BoundPairing::bind(config.pairing.settings(&config.data))
        .await
        .context("cannot set up pairing with wallet apps")
        .context(StartProblem("Pairing with wallet apps cannot start"))?;
    let lightning_dir = config.data.dir.join("lightning");
    let store = ChannelStore::open(&lightning_dir)
        .with_context(|| {
            format!(
                "cannot open the channel store in {}: the SD card may be failing; restore \
             from the USB backup on a new card",
                lightning_dir.display()
            )
        })
        .context(StartProblem("The channel store does not open"))?;
    Ok(Prepared {
        credentials,
        listener,
        https_listener,
        web_address,
        https_address,
        auth,
        pairing,
        store,
    })
}

/// The Lightning service's settings from the config.
fn lightning_settings(
    config: &Config,
    secrets_dir: &std::path::Path,
    credentials: &RpcCredentials,
) -> LightningSettings {
    LightningSettings {
        enabled: config.lightning.enabled,
        network: config.bitcoind.network,
        storage_dir: config.data.dir.join("lightning"),
        secrets_dir: secrets_dir.to_path_buf(),
        listen_address: SocketAddr::from(([0, 0, 0, 0], config.lightning.listen_port)),
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
