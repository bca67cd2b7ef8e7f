//! Config values with their own spelling rules and error messages.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The Bitcoin network the box runs on.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Mainnet,
    Testnet4,
    Signet,
    Regtest,
}

impl Network {
    /// The subdirectory of bitcoind's data directory this network's files (debug.log, the
    /// chain) live in; mainnet's are in the data directory itself.
    pub fn data_subdir(self) -> &'static str {
        match self {
            Network::Mainnet => "",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// bitcoind's `-chain=` value.
    pub fn chain_name(self) -> &'static str {
        match self {
            Network::Mainnet => "main",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// The `bitcoin.conf` section name for network-specific options.
    pub fn conf_section(self) -> &'static str {
        self.chain_name()
    }

    /// The same network in rust-bitcoin's words.
    pub fn to_bitcoin(self) -> bitcoin::Network {
        match self {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }

    pub fn default_rpc_port(self) -> u16 {
        match self {
            Network::Mainnet => 8332,
            Network::Testnet4 => 48332,
            Network::Signet => 38332,
            Network::Regtest => 18443,
        }
    }

    pub fn default_p2p_port(self) -> u16 {
        match self {
            Network::Mainnet => 8333,
            Network::Testnet4 => 48333,
            Network::Signet => 38333,
            Network::Regtest => 18444,
        }
    }
}

/// A size that is either computed by plugnode ("auto") or given in MiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SizeSetting {
    #[default]
    Auto,
    Mib(u64),
}

impl<'de> Deserialize<'de> for SizeSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = SizeSetting;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"auto\" or a whole number of MiB (0 or more)")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SizeSetting, E> {
                if value == "auto" {
                    Ok(SizeSetting::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(value), &self))
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SizeSetting, E> {
                u64::try_from(value)
                    .map(SizeSetting::Mib)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SizeSetting, E> {
                Ok(SizeSetting::Mib(value))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl Serialize for SizeSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SizeSetting::Auto => serializer.serialize_str("auto"),
            SizeSetting::Mib(mib) => serializer.serialize_u64(*mib),
        }
    }
}

/// Where the Lightning node learns the network's channel graph (`lightning.gossip`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum GossipSetting {
    /// P2P gossip on an unpruned node, Rapid Gossip Sync on a pruned one.
    #[default]
    Auto,
    P2p,
    Rgs {
        url: String,
    },
}

impl<'de> Deserialize<'de> for GossipSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "auto" => Ok(GossipSetting::Auto),
            "p2p" => Ok(GossipSetting::P2p),
            url if url.starts_with("https://") || url.starts_with("http://") => {
                Ok(GossipSetting::Rgs {
                    url: url.to_string(),
                })
            }
            other => Err(de::Error::invalid_value(
                de::Unexpected::Str(other),
                &"\"auto\", \"p2p\" or the https:// address of a Rapid Gossip Sync server",
            )),
        }
    }
}

impl Serialize for GossipSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GossipSetting::Auto => serializer.serialize_str("auto"),
            GossipSetting::P2p => serializer.serialize_str("p2p"),
            GossipSetting::Rgs { url } => serializer.serialize_str(url),
        }
    }
}

/// Which panel the box has (`[display] panel` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum PanelKind {
    /// No display.
    #[serde(rename = "none")]
    None,
    /// A panel in memory (and a PNG file): the demo, tests, the web mirror.
    #[serde(rename = "simulated")]
    Simulated,
    /// Waveshare 2.7" e-Paper HAT V2: 264×176, four keys.
    #[serde(rename = "waveshare-2in7-v2")]
    Waveshare2in7V2,
    /// Waveshare 2.13" e-Paper HAT V4: 250×122, no keys.
    #[serde(rename = "waveshare-2in13-v4")]
    Waveshare2in13V4,
}

impl PanelKind {
    /// The names the config accepts.
    pub const NAMES: [&'static str; 4] = [
        "none",
        "simulated",
        "waveshare-2in7-v2",
        "waveshare-2in13-v4",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PanelKind::None => "none",
            PanelKind::Simulated => "simulated",
            PanelKind::Waveshare2in7V2 => "waveshare-2in7-v2",
            PanelKind::Waveshare2in13V4 => "waveshare-2in13-v4",
        }
    }
}

impl fmt::Display for PanelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown panel name; the message lists the allowed ones.
#[derive(Debug, thiserror::Error)]
#[error("unknown display panel {0:?}: use one of none, simulated, waveshare-2in7-v2, waveshare-2in13-v4")]
pub struct UnknownPanel(pub String);

impl FromStr for PanelKind {
    type Err = UnknownPanel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(PanelKind::None),
            "simulated" => Ok(PanelKind::Simulated),
            "waveshare-2in7-v2" => Ok(PanelKind::Waveshare2in7V2),
            "waveshare-2in13-v4" => Ok(PanelKind::Waveshare2in13V4),
            other => Err(UnknownPanel(other.to_string())),
        }
    }
}
