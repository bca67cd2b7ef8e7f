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
pub use values::{GossipSetting, Network, SizeSetting};

use crate::display::{DisplaySettings, PanelKind};

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
}

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
    /// plugnode manages itself (datadir, conf, RPC binding and auth, wallet) are refused.
    pub extra_args: Vec<String>,
    /// How long a graceful stop may take before bitcoind is killed. Flushing a large
    /// cache to an SD card takes minutes.
    pub stop_timeout_secs: u64,
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
}

impl Default for LightningConfig {
    fn default() -> Self {
        LightningConfig {
            enabled: true,
            listen_port: 9735,
            alias: None,
            gossip: GossipSetting::Auto,
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
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            https_listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            initial_password_file: None,
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

impl DisplayConfig {
    /// The display service's settings for this config.
    pub fn settings(&self) -> DisplaySettings {
        DisplaySettings {
            panel: self.panel,
            spi_device: self.spi_device.clone(),
            gpio_chip: self.gpio_chip.clone(),
            key_pins: self.key_pins,
            upside_down: self.upside_down,
            ..DisplaySettings::default()
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

/// Options in `bitcoind.extra_args` that would fight plugnode's own management of bitcoind.
const MANAGED_BITCOIND_OPTIONS: &[&str] = &[
    "datadir",
    "conf",
    "rpcauth",
    "rpcuser",
    "rpcpassword",
    "rpcbind",
    "rpcallowip",
    "rpcport",
    "server",
    "disablewallet",
    "daemon",
    "chain",
    "regtest",
    "testnet",
    "testnet4",
    "signet",
    "prune",
    "dbcache",
];

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
            let Some(option) = arg.strip_prefix('-') else {
                return Err(invalid(
                    "bitcoind.extra_args",
                    format!("{arg:?} is not an option: each entry starts with '-', e.g. \"-maxconnections=20\""),
                ));
            };
            let name = option
                .trim_start_matches('-')
                .split('=')
                .next()
                .unwrap_or_default();
            let negated = name.strip_prefix("no").unwrap_or(name);
            if MANAGED_BITCOIND_OPTIONS.contains(&name)
                || MANAGED_BITCOIND_OPTIONS.contains(&negated)
            {
                return Err(invalid(
                    "bitcoind.extra_args",
                    format!(
                        "{arg:?} is managed by plugnode; use the [bitcoind] and [data] keys instead"
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
        if self.lightning.enabled && self.lightning.listen_port == 0 {
            return Err(invalid(
                "lightning.listen_port",
                "0 is not a port: use 1..=65535 (default 9735)".into(),
            ));
        }

        self.validate_web()?;
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
