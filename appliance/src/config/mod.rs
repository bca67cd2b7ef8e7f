//! The configuration file (`/etc/plugnode/plugnode.toml`): types, defaults, loading and
//! validation.
//!
//! Every key is documented in `appliance/plugnode.example.toml`. The whole file is checked
//! before anything starts: unknown keys and wrong types are errors that name the key, the
//! line and what is allowed ([`ConfigError`]); checks that need the file system (does the
//! bitcoind binary exist?) run in [`Config::validate`] and never create or change anything.

mod error;
mod values;

pub use error::ConfigError;
pub use values::{GossipSetting, Network, PanelKind, SizeSetting, UnknownPanel};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where `plugnode run` looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/plugnode/plugnode.toml";

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    pub bitcoind: BitcoindConfig,
    pub lightning: LightningConfig,
    pub web: WebConfig,
    pub display: DisplayConfig,
    pub backup: BackupConfig,
    pub pairing: PairingConfig,
    pub update: UpdateConfig,
}

/// `[update]`: signed A/B system updates through the image's root helper (RAUC).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    /// On for the SD-card image (A/B system slots); off on a computer without them.
    pub enabled: bool,
    /// The root helper that checks and installs bundles (`plugnode-update.socket`).
    pub helper_socket: PathBuf,
    /// The running system's release file (version, architecture, data format).
    pub release_file: PathBuf,
    /// How long a new version has to prove itself (bitcoind, Lightning and the backup
    /// healthy) before the box goes back to the previous one.
    pub trial_limit_secs: u64,
    /// Where "Download the update" fetches a bundle from, for a box that may reach the
    /// internet. Bundles are signed, so the address needs no trust of its own.
    pub download_url: Option<String>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            enabled: false,
            helper_socket: PathBuf::from("/run/plugnode-update.sock"),
            release_file: PathBuf::from("/usr/lib/plugnode/release.json"),
            trial_limit_secs: 900,
            download_url: None,
        }
    }
}

impl UpdateConfig {
    /// The update service's settings.
    pub fn settings(&self, data: &DataConfig) -> crate::update::UpdateSettings {
        crate::update::UpdateSettings {
            enabled: self.enabled,
            helper_socket: self.helper_socket.clone(),
            release_file: self.release_file.clone(),
            trial_limit: std::time::Duration::from_secs(self.trial_limit_secs),
            download_url: self.download_url.clone(),
            data_dir: data.dir.clone(),
        }
    }
}

/// The shortest trial a new version gets: bitcoind and the Lightning node need a few
/// minutes to start on a Pi.
pub const MIN_TRIAL_LIMIT_SECS: u64 = 180;

/// `[data]`: where plugnode keeps its state.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Everything plugnode keeps: credentials, Lightning state, and (by default) the chain.
    pub dir: PathBuf,
    /// Where bitcoind keeps the block chain, when it should live on another disk (an SSD).
    /// The size of the disk holding it decides how much the node prunes.
    pub chain_dir: Option<PathBuf>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("/var/lib/plugnode"),
            chain_dir: None,
        }
    }
}

impl DataConfig {
    /// bitcoind's `-datadir`.
    pub fn bitcoind_dir(&self) -> PathBuf {
        self.chain_dir
            .clone()
            .unwrap_or_else(|| self.dir.join("bitcoind"))
    }

    /// Secrets plugnode generates (RPC passwords, …), in a 0700 directory.
    pub fn secrets_dir(&self) -> PathBuf {
        self.dir.join("secrets")
    }
}

/// `[bitcoind]`: the bitcoind child process.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BitcoindConfig {
    /// Path of the bitcoind executable.
    pub binary: PathBuf,
    pub network: Network,
    /// Block storage bitcoind keeps, in MiB: "auto" (from the disk size), 0 (keep every
    /// block) or at least 550.
    pub prune_mib: SizeSetting,
    /// bitcoind's UTXO cache in MiB: "auto" (from the RAM size) or 4..=16384.
    pub dbcache_mib: SizeSetting,
    /// RPC port on 127.0.0.1; defaults to the network's usual port.
    pub rpc_port: Option<u16>,
    /// Peer-to-peer port; defaults to the network's usual port.
    pub p2p_port: Option<u16>,
    /// More command-line options for bitcoind, e.g. ["-maxconnections=20"]. Options
    /// plugnode manages itself (datadir, conf, RPC binding and auth, wallet) and those that
    /// would open bitcoind up or act behind plugnode's back are refused (see
    /// `REFUSED_BITCOIND_OPTIONS`).
    pub extra_args: Vec<String>,
    /// How long a graceful stop may take before bitcoind is killed. Flushing a large
    /// cache to an SD card takes minutes.
    pub stop_timeout_secs: u64,
    /// The system user bitcoind runs as, so that a bitcoind exploit cannot read the seed
    /// or any other secret of plugnode's (the image: "bitcoind"). None: plugnode's own
    /// user (a laptop, the demo). See `bitcoind/run_as.rs` for what it takes.
    pub user: Option<String>,
}

impl Default for BitcoindConfig {
    fn default() -> Self {
        BitcoindConfig {
            binary: PathBuf::from("/usr/local/bin/bitcoind"),
            network: Network::Mainnet,
            prune_mib: SizeSetting::Auto,
            dbcache_mib: SizeSetting::Auto,
            rpc_port: None,
            p2p_port: None,
            extra_args: Vec::new(),
            stop_timeout_secs: 600,
            user: None,
        }
    }
}

impl BitcoindConfig {
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port.unwrap_or(self.network.default_rpc_port())
    }

    pub fn p2p_port(&self) -> u16 {
        self.p2p_port.unwrap_or(self.network.default_p2p_port())
    }
}

/// `[lightning]`: the embedded Lightning node.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LightningConfig {
    pub enabled: bool,
    /// TCP port the node accepts peers on.
    pub listen_port: u16,
    /// Name other nodes see (at most 32 bytes). Needed for public channels.
    pub alias: Option<String>,
    /// Where the channel graph comes from: "auto" (P2P gossip when bitcoind keeps every
    /// block, Rapid Gossip Sync from the network's public server when it prunes), "p2p",
    /// or the https:// address of a Rapid Gossip Sync server.
    pub gossip: GossipSetting,
    /// A liquidity provider (LSPS2) that opens a channel to the box when a payment arrives
    /// that the box's channels cannot take ("just-in-time" channels). None by default; the
    /// owner agrees on the web page before the box contacts it.
    pub lsp: Option<LspConfig>,
    /// The most a provider may keep of one payment for opening its channel, in sat, when
    /// paired apps and scripts ask for an invoice (the page asks the owner each time).
    pub max_lsp_fee_sat: u64,
    /// …and at most this share of the payment, in per mille.
    pub max_lsp_fee_permille: u32,
}

/// `[lightning.lsp]`: the liquidity provider.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LspConfig {
    /// Its node id (66 hex characters).
    pub node_id: String,
    /// Where it listens, `host:port`.
    pub address: String,
    /// A token some providers give their customers.
    #[serde(default)]
    pub token: Option<String>,
    /// How the page and the screens name it.
    #[serde(default)]
    pub name: Option<String>,
}

impl Default for LightningConfig {
    fn default() -> Self {
        LightningConfig {
            enabled: true,
            listen_port: 9735,
            alias: None,
            gossip: GossipSetting::Auto,
            lsp: None,
            max_lsp_fee_sat: 5_000,
            max_lsp_fee_permille: 50,
        }
    }
}

/// `[web]`: the local web page and API.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The plain-HTTP listener. On the network it only redirects to HTTPS and hands out
    /// the box's CA certificate; bound to loopback only, it serves the whole page.
    pub listen: SocketAddr,
    /// Where the page and the API answer over HTTPS (the box's own certificate).
    pub https_listen: SocketAddr,
    /// A file with the web password for a headless first boot (e.g. on the SD card's boot
    /// partition). Used only while the box has no password; plugnode deletes it after use.
    pub initial_password_file: Option<PathBuf>,
    /// Names and addresses the page also answers to (a VPN name, the owner's own DNS
    /// name), besides the box's own ones; any other `Host` is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            https_listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            initial_password_file: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[pairing]`: mobile wallets paired by QR code (Nostr Wallet Connect and LNDHub).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PairingConfig {
    pub enabled: bool,
    /// Run the box's own Nostr relay on the home network, so a phone on the home Wi-Fi
    /// needs nothing else.
    pub relay: bool,
    /// Where that relay listens.
    pub relay_listen: SocketAddr,
    /// Public relays (`wss://…`) the wallet service also listens on: they let a phone pay
    /// from outside the home network, end-to-end encrypted, with no port forwarding.
    pub relays: Vec<String>,
    /// Serve the LNDHub API (BlueWallet, Zeus).
    pub lndhub: bool,
    pub lndhub_listen: SocketAddr,
    /// The name or address phones reach the box at, when the automatic choice (its first
    /// address on the home network) is not the right one.
    pub advertise_host: Option<String>,
}

impl Default for PairingConfig {
    fn default() -> Self {
        PairingConfig {
            enabled: true,
            relay: true,
            relay_listen: SocketAddr::from(([0, 0, 0, 0], 4869)),
            relays: Vec::new(),
            lndhub: true,
            lndhub_listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            advertise_host: None,
        }
    }
}

impl PairingConfig {
    /// The pairing services' settings for this config.
    pub fn settings(&self, data: &DataConfig) -> crate::pairing::PairingSettings {
        crate::pairing::PairingSettings {
            enabled: self.enabled,
            data_dir: data.dir.clone(),
            secrets_dir: data.secrets_dir(),
            relay_listen: self.relay.then_some(self.relay_listen),
            public_relays: self.relays.clone(),
            lndhub_listen: self.lndhub.then_some(self.lndhub_listen),
            advertise_host: self.advertise_host.clone(),
        }
    }
}

/// `[display]`: the e-ink panel and its keys.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    /// "none", "simulated", "waveshare-2in7-v2" or "waveshare-2in13-v4".
    pub panel: PanelKind,
    pub spi_device: PathBuf,
    pub gpio_chip: PathBuf,
    /// BCM numbers of KEY1..KEY4 (2.7" HAT only).
    pub key_pins: [u32; 4],
    /// The HAT is mounted upside down (turns the picture).
    pub upside_down: bool,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            panel: PanelKind::Waveshare2in7V2,
            spi_device: PathBuf::from("/dev/spidev0.0"),
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            key_pins: [5, 6, 13, 19],
            upside_down: false,
        }
    }
}

/// `[backup]`: the USB backup stick.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    pub enabled: bool,
    /// "keep-attached" (the stick mirrors every channel update) or "snapshot" (write a
    /// verified snapshot on insertion, then "safe to remove").
    pub mode: BackupMode,
    /// Where plugnode mounts the stick itself when it may (running as root); on the image
    /// the mount helper decides.
    pub mount_dir: PathBuf,
    /// Block devices to treat as backup sticks besides USB ones (for testing with loop
    /// devices). Empty on a real box.
    pub extra_devices: Vec<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            mode: BackupMode::KeepAttached,
            mount_dir: PathBuf::from("/media/plugnode/backup"),
            extra_devices: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BackupMode {
    KeepAttached,
    Snapshot,
}

/// bitcoind options `bitcoind.extra_args` may not hold, and why (a user reads the reason).
/// A denylist, not an allowlist: the rest of bitcoind's options (peers, Tor, limits, indexes)
/// are the user's to tune.
const REFUSED_BITCOIND_OPTIONS: &[(OptionName, &str)] = &[
    (OptionName::Exact("datadir"), MANAGED),
    (OptionName::Exact("conf"), MANAGED),
    (OptionName::Exact("rpcauth"), MANAGED),
    (OptionName::Exact("rpcuser"), MANAGED),
    (OptionName::Exact("rpcpassword"), MANAGED),
    (OptionName::Exact("rpcbind"), MANAGED),
    (OptionName::Exact("rpcallowip"), MANAGED),
    (OptionName::Exact("rpcport"), MANAGED),
    (OptionName::Exact("server"), MANAGED),
    (OptionName::Exact("disablewallet"), MANAGED),
    (OptionName::Exact("daemon"), MANAGED),
    (OptionName::Exact("chain"), MANAGED),
    (OptionName::Exact("regtest"), MANAGED),
    (OptionName::Exact("testnet"), MANAGED),
    (OptionName::Exact("testnet4"), MANAGED),
    (OptionName::Exact("signet"), MANAGED),
    (OptionName::Exact("prune"), MANAGED),
    (OptionName::Exact("dbcache"), MANAGED),
    (
        OptionName::Exact("settings"),
        "it would let a file other than plugnode's bitcoin.conf add options behind its back \
         (plugnode starts bitcoind with -nosettings)",
    ),
    (
        OptionName::Exact("includeconf"),
        "it would let a file other than plugnode's bitcoin.conf add options behind its back",
    ),
    (
        OptionName::Prefix("rpcwhitelist"),
        "it changes which RPC calls bitcoind allows; plugnode keeps RPC to its own two users \
         on 127.0.0.1",
    ),
    (
        OptionName::Suffix("notify"),
        "it makes bitcoind run a shell command, outside plugnode's sandbox and control",
    ),
    (
        OptionName::Prefix("zmqpub"),
        "it opens a network socket that publishes every block and transaction",
    ),
];

const MANAGED: &str = "plugnode manages it; use the [bitcoind] and [data] keys instead";

/// How an entry of [`REFUSED_BITCOIND_OPTIONS`] matches an option's name.
enum OptionName {
    Exact(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
}

impl OptionName {
    fn matches(&self, name: &str) -> bool {
        match self {
            OptionName::Exact(exact) => name == *exact,
            OptionName::Prefix(prefix) => name.starts_with(prefix),
            OptionName::Suffix(suffix) => name.ends_with(suffix),
        }
    }
}

/// Why `arg` may not be in `bitcoind.extra_args`, if it may not.
fn refused_bitcoind_option(arg: &str) -> Option<String> {
    let Some(option) = arg.strip_prefix('-') else {
        return Some(format!(
            "{arg:?} is not an option: each entry starts with '-', e.g. \"-maxconnections=20\""
        ));
    };
    let key = option
        .trim_start_matches('-')
        .split('=')
        .next()
        .unwrap_or_default();
    // bitcoind reads "-section.name" as `name` in that section, and "-noname" negates it.
    let name = key.rsplit('.').next().unwrap_or(key);
    let positive = name.strip_prefix("no").unwrap_or(name);
    REFUSED_BITCOIND_OPTIONS
        .iter()
        .find(|(pattern, _)| pattern.matches(name) || pattern.matches(positive))
        .map(|(_, why)| format!("{arg:?} is refused: {why}"))
}

impl Config {
    /// Reads and parses a config file. A missing file is an error that says how to make one.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse(&text, path)
    }

    /// Parses config text; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|err| ConfigError::from_toml(origin, text, None, &err))?;
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            ConfigError::from_toml(origin, text, Some(key), err.inner())
        })
    }

    /// Checks across keys and against the file system, without changing anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };

        if !self.data.dir.is_absolute() {
            return Err(invalid(
                "data.dir",
                format!(
                    "must be an absolute path (got {:?}), e.g. \"/var/lib/plugnode\"",
                    self.data.dir
                ),
            ));
        }
        if let Some(chain_dir) = &self.data.chain_dir {
            if !chain_dir.is_absolute() {
                return Err(invalid(
                    "data.chain_dir",
                    format!("must be an absolute path (got {chain_dir:?})"),
                ));
            }
        }

        validate_executable(&self.bitcoind.binary).map_err(|why| {
            invalid(
                "bitcoind.binary",
                format!(
                    "{}: {why}. Install Bitcoin Core there or point bitcoind.binary at bitcoind.",
                    self.bitcoind.binary.display()
                ),
            )
        })?;

        match self.bitcoind.prune_mib {
            SizeSetting::Mib(mib) if (1..550).contains(&mib) => {
                return Err(invalid(
                    "bitcoind.prune_mib",
                    format!(
                        "{mib} is too small: bitcoind needs at least 550 MiB; use 0 to keep \
                         every block or \"auto\""
                    ),
                ))
            }
            _ => {}
        }
        if let SizeSetting::Mib(mib) = self.bitcoind.dbcache_mib {
            if !(4..=16384).contains(&mib) {
                return Err(invalid(
                    "bitcoind.dbcache_mib",
                    format!("{mib} is out of range: use \"auto\" or 4..=16384"),
                ));
            }
        }
        if self.bitcoind.rpc_port == Some(0) || self.bitcoind.p2p_port == Some(0) {
            let key = if self.bitcoind.rpc_port == Some(0) {
                "bitcoind.rpc_port"
            } else {
                "bitcoind.p2p_port"
            };
            return Err(invalid(key, "0 is not a port: use 1..=65535".into()));
        }
        for arg in &self.bitcoind.extra_args {
            if let Some(why) = refused_bitcoind_option(arg) {
                return Err(invalid("bitcoind.extra_args", why));
            }
        }
        if let Some(user) = &self.bitcoind.user {
            let name_like = user.len() <= 32
                && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && user.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !name_like {
                return Err(invalid(
                    "bitcoind.user",
                    format!(
                        "{:?} is not a user name: write a system user's name, like \"bitcoind\", \
                         or leave the key out to run bitcoind as plugnode's own user",
                        user.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
        if self.bitcoind.stop_timeout_secs < 10 {
            return Err(invalid(
                "bitcoind.stop_timeout_secs",
                format!(
                    "{} is too short for bitcoind to flush its cache: use at least 10 (default 600)",
                    self.bitcoind.stop_timeout_secs
                ),
            ));
        }

        if let Some(alias) = &self.lightning.alias {
            if alias.len() > 32 {
                return Err(invalid(
                    "lightning.alias",
                    format!("is {} bytes long; at most 32 are allowed", alias.len()),
                ));
            }
        }
        if let Some(lsp) = &self.lightning.lsp {
            let hex_key = lsp.node_id.len() == 66
                && lsp.node_id.bytes().all(|b| b.is_ascii_hexdigit())
                && (lsp.node_id.starts_with("02") || lsp.node_id.starts_with("03"));
            if !hex_key {
                return Err(invalid(
                    "lightning.lsp.node_id",
                    format!(
                        "{:?} is not a node id: it is 66 hex characters starting with 02 or 03",
                        lsp.node_id
                    ),
                ));
            }
            let address_ok = lsp.address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !address_ok {
                return Err(invalid(
                    "lightning.lsp.address",
                    format!(
                        "{:?} is not an address: write it as host:port, e.g. \"203.0.113.5:9735\"",
                        lsp.address
                    ),
                ));
            }
            if lsp
                .token
                .as_deref()
                .is_some_and(|t| t.is_empty() || t.len() > 256)
            {
                return Err(invalid(
                    "lightning.lsp.token",
                    "give the token the provider gave you (1 to 256 characters), or leave it out"
                        .into(),
                ));
            }
        }
        if self.lightning.max_lsp_fee_permille > 1000 {
            return Err(invalid(
                "lightning.max_lsp_fee_permille",
                format!(
                    "{} is more than the whole payment: use 0..=1000 (default 50, i.e. 5 %)",
                    self.lightning.max_lsp_fee_permille
                ),
            ));
        }
        if self.lightning.enabled && self.lightning.listen_port == 0 {
            return Err(invalid(
                "lightning.listen_port",
                "0 is not a port: use 1..=65535 (default 9735)".into(),
            ));
        }

        self.validate_web()?;
        self.validate_update()?;
        self.validate_pairing()?;

        let pins = self.display.key_pins;
        for (i, pin) in pins.iter().enumerate() {
            if pins[..i].contains(pin) {
                return Err(invalid(
                    "display.key_pins",
                    format!("pin {pin} is listed twice: each key needs its own GPIO line"),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_update(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        if self.update.trial_limit_secs < MIN_TRIAL_LIMIT_SECS {
            return Err(invalid(
                "update.trial_limit_secs",
                format!(
                    "{} s is too short for bitcoind and Lightning to start on a Pi: use at \
                     least {MIN_TRIAL_LIMIT_SECS} (default 900)",
                    self.update.trial_limit_secs
                ),
            ));
        }
        if let Some(url) = &self.update.download_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || reqwest::Url::parse(url).is_err() {
                return Err(invalid(
                    "update.download_url",
                    format!("{url:?} is not an http:// or https:// address of a bundle"),
                ));
            }
        }
        Ok(())
    }

    fn validate_web(&self) -> Result<(), ConfigError> {
        let (plain, https) = (self.web.listen, self.web.https_listen);
        // Port 0 (any free port) never collides; the same port on the same or on the
        // "any" address does.
        let overlap =
            plain.ip() == https.ip() || plain.ip().is_unspecified() || https.ip().is_unspecified();
        if plain.port() == https.port() && plain.port() != 0 && overlap {
            return Err(ConfigError::Invalid {
                key: "web.https_listen".into(),
                message: format!(
                    "{https} uses the port of web.listen ({plain}): HTTPS needs its own port \
                     (default 443)"
                ),
            });
        }
        for host in &self.web.allowed_hosts {
            let name = host.trim_start_matches('[').trim_end_matches(['.', ']']);
            let plain = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
                // A colon only inside an IPv6 address, never before a port.
                && (!name.contains(':') || name.parse::<std::net::Ipv6Addr>().is_ok());
            if !plain {
                return Err(ConfigError::Invalid {
                    key: "web.allowed_hosts".into(),
                    message: format!(
                        "{host:?} is not a host name or address: write names like \
                         \"node.example.org\" or \"100.64.0.9\", without http:// or a port"
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_pairing(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        let pairing = &self.pairing;
        if !pairing.enabled {
            return Ok(());
        }
        if pairing.relay && pairing.relay_listen.port() == 0 {
            return Err(invalid(
                "pairing.relay_listen",
                "0 is not a port: use 1..=65535 (default 4869)".into(),
            ));
        }
        if pairing.lndhub && pairing.lndhub_listen.port() == 0 {
            return Err(invalid(
                "pairing.lndhub_listen",
                "0 is not a port: use 1..=65535 (default 3000)".into(),
            ));
        }
        if pairing.relay && pairing.lndhub && pairing.relay_listen == pairing.lndhub_listen {
            return Err(invalid(
                "pairing.lndhub_listen",
                "is the same address as pairing.relay_listen: give each its own port".into(),
            ));
        }
        for relay in &pairing.relays {
            let host = relay
                .strip_prefix("wss://")
                .or_else(|| relay.strip_prefix("ws://"))
                .map(|rest| rest.split(['/', ':']).next().unwrap_or_default());
            let plausible = host.is_some_and(|h| !h.is_empty())
                && !relay.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plausible {
                return Err(invalid(
                    "pairing.relays",
                    format!(
                        "{relay:?} is not a relay address: write it as \"wss://relay.example.com\""
                    ),
                ));
            }
        }
        if pairing.relays.len() > 5 {
            return Err(invalid(
                "pairing.relays",
                "lists more than 5 relays: one or two well-run relays are enough".into(),
            ));
        }
        if let Some(host) = &pairing.advertise_host {
            if host.is_empty()
                || host.len() > 253
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || "/?#@".contains(c))
            {
                return Err(invalid(
                    "pairing.advertise_host",
                    format!("{host:?} is not a host name or address, e.g. \"192.168.1.20\""),
                ));
            }
        }
        Ok(())
    }
}

/// Why `path` cannot be run as a program, if it cannot.
fn validate_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => err.to_string(),
    })?;
    if !metadata.is_file() {
        return Err("not a file".into());
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err("not executable".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
