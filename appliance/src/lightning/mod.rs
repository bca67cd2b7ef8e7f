//! The embedded Lightning node (ldk-node), fed by the bitcoind the supervisor runs.
//!
//! - [`seed`]: the 24-word wallet seed, created or restored, stored 0600.
//! - [`store`]: the channel-state store the node is built on (durable writes; the USB
//!   mirror plugs in there).
//! - [`handle`]: [`LightningHandle`], the API the web page, pairing and display use: the
//!   handle, starting and stopping, the seed, recovery mode, access to the running node.
//!   Its calls by concern, each file its own `impl LightningHandle`: `payments` (invoices,
//!   offers, paying, keysend, payment records), `channels` (peers, opening, closing),
//!   `onchain` (balances, addresses, withdrawals), [`liquidity`] (just-in-time channels).
//! - [`payment_request`]: the one reader of what users paste or scan to pay.
//! - `service`: the node's life (waits for a seed and a synced bitcoind, runs the event
//!   loop, stops before bitcoind).
//! - `shared`: the state the service and every handle share, and the service's commands.
//!   The handle starts the service; neither is imported by `shared`.

mod channels;
pub mod error;
pub mod handle;
pub mod liquidity;
pub mod nodelay;
mod onchain;
pub mod payment_request;
mod payments;
pub mod recovery;
pub mod seed;
mod service;
mod shared;
pub mod store;
mod summary;

pub use channels::OpenChannel;
pub use error::{ErrorKind, LightningError};
pub use handle::{LightningHandle, NodeInfo, RestoreError};
pub use payment_request::PaymentRequest;
pub use payments::{
    default_fee_limit_msat, Invoice, InvoiceDescription, PreparedKeysend, PreparedPayment,
    PAYMENT_WAIT,
};
pub use seed::{Seed, SeedError};
pub use service::NO_WALLET_YET;
pub use summary::PaymentRecord;

use crate::bitcoind::RpcUser;
use crate::config::{GossipSetting, Network};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What the Lightning service needs, filled from the config.
#[derive(Clone, Debug)]
pub struct LightningSettings {
    pub enabled: bool,
    pub network: Network,
    /// ldk-node's storage directory (channel store, wallet, graph, logs).
    pub storage_dir: PathBuf,
    /// Where the seed lives (0700).
    pub secrets_dir: PathBuf,
    /// Where the node accepts peers.
    pub listen_address: SocketAddr,
    pub alias: Option<String>,
    pub gossip: GossipSetting,
    /// bitcoind's RPC port on 127.0.0.1 and the Lightning node's own RPC user.
    pub rpc_port: u16,
    pub rpc_user: RpcUser,
    /// The liquidity provider just-in-time channels come from, if the owner named one.
    pub lsp: Option<LspSettings>,
    /// What a provider may keep of one payment when nobody confirms the fee by hand.
    pub lsp_fee_limit: LspFeeLimit,
    /// Run an LSPS2 service (the demo's peer and the tests' provider; never a real box).
    pub lsp_service: Option<ldk_node::liquidity::LSPS2ServiceConfig>,
}

/// A liquidity provider (LSPS2) the box buys just-in-time channels from.
#[derive(Clone, Debug)]
pub struct LspSettings {
    pub node_id: String,
    pub address: String,
    pub token: Option<crate::secret::Secret>,
    /// How the page names it.
    pub name: String,
}

/// The most a provider may keep of one payment for opening its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LspFeeLimit {
    pub max_msat: u64,
    /// Per mille of the payment.
    pub max_permille: u32,
}

impl Default for LspFeeLimit {
    /// `[lightning] max_lsp_fee_sat` and `max_lsp_fee_permille` as they come.
    fn default() -> Self {
        LspFeeLimit {
            max_msat: 5_000_000,
            max_permille: 50,
        }
    }
}

impl LspFeeLimit {
    /// The limit for a payment of `amount_msat`: the smaller of both.
    pub fn for_amount(&self, amount_msat: u64) -> u64 {
        let share = (amount_msat as u128 * self.max_permille as u128 / 1000) as u64;
        self.max_msat.min(share)
    }
}

/// Where gossip (the map of the network's channels) comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipChoice {
    /// From peers, each channel checked against the chain through bitcoind. Needs every
    /// block since the channel was funded: the choice for an unpruned node.
    P2p,
    /// A Rapid Gossip Sync snapshot from a server: the choice for a pruned node, whose
    /// bitcoind no longer has the old funding blocks P2P gossip would be checked against.
    Rgs(String),
}

/// The RGS server for a network, if there is a public one.
pub fn default_rgs_url(network: Network) -> Option<&'static str> {
    match network {
        Network::Mainnet => Some("https://rapidsync.lightningdevkit.org/snapshot"),
        Network::Testnet4 => Some("https://rapidsync.lightningdevkit.org/testnet4/snapshot"),
        Network::Signet | Network::Regtest => None,
    }
}

impl GossipSetting {
    /// The gossip source for a network, given whether bitcoind prunes.
    pub fn choose(&self, network: Network, pruned: bool) -> GossipChoice {
        match self {
            GossipSetting::P2p => GossipChoice::P2p,
            GossipSetting::Rgs { url } => GossipChoice::Rgs(url.clone()),
            GossipSetting::Auto => match (pruned, default_rgs_url(network)) {
                (true, Some(url)) => GossipChoice::Rgs(url.to_string()),
                _ => GossipChoice::P2p,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruned_mainnet_boxes_use_rapid_gossip_sync_and_full_nodes_p2p() {
        let auto = GossipSetting::Auto;
        assert_eq!(auto.choose(Network::Mainnet, false), GossipChoice::P2p);
        assert!(matches!(
            auto.choose(Network::Mainnet, true),
            GossipChoice::Rgs(url) if url.contains("rapidsync")
        ));
        // No public RGS server for regtest: P2P even when pruned.
        assert_eq!(auto.choose(Network::Regtest, true), GossipChoice::P2p);
        let forced = GossipSetting::Rgs {
            url: "https://example.org/snapshot".into(),
        };
        assert_eq!(
            forced.choose(Network::Mainnet, false),
            GossipChoice::Rgs("https://example.org/snapshot".into())
        );
    }
}
