//! [`LightningHandle`]'s peers and channels: connecting, opening, closing, listing.

use super::error::{ErrorKind, LightningError, Result};
use super::handle::{parse_node_id, LightningHandle};
use super::summary;
use crate::status::ChannelSummary;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::UserChannelId;
use serde::Deserialize;
use std::str::FromStr;

#[derive(Clone, Debug, Deserialize)]
pub struct OpenChannel {
    /// The other node's id (hex public key).
    pub node_id: String,
    /// Where it listens, `host:port`.
    pub address: String,
    pub amount_sat: u64,
    /// Given to the other side at opening, in msat.
    #[serde(default)]
    pub push_msat: u64,
    /// Announce the channel to the network (needs `lightning.alias`).
    #[serde(default)]
    pub public: bool,
}

/// Smallest channel ldk-node opens.
const MIN_CHANNEL_SAT: u64 = 20_000;

impl LightningHandle {
    pub fn list_channels(&self) -> Result<Vec<ChannelSummary>> {
        Ok(self
            .node()?
            .list_channels()
            .iter()
            .map(|c| summary::channel(c, self.shared().is_closing(c), self.lsp_settings().as_ref()))
            .collect())
    }

    pub async fn connect_peer(&self, node_id: &str, address: &str) -> Result<()> {
        let node_id = parse_node_id(node_id)?;
        let address = parse_address(address)?;
        self.blocking(move |node| {
            node.connect(node_id, address, true)
                .map_err(|e| LightningError::node("Connecting to the peer failed", e))
        })
        .await
    }

    /// Opens a channel; returns its `user_channel_id`. It is usable after the funding
    /// transaction has its confirmations.
    pub async fn open_channel(&self, request: OpenChannel) -> Result<String> {
        self.refuse_in_recovery()?;
        let node_id = parse_node_id(&request.node_id)?;
        let address = parse_address(&request.address)?;
        if request.amount_sat < MIN_CHANNEL_SAT {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                format!("A channel needs at least {MIN_CHANNEL_SAT} sat."),
            ));
        }
        if request.push_msat > request.amount_sat * 1000 {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "The amount given to the other side cannot exceed the channel's size.",
            ));
        }
        if request.public && self.shared().settings.alias.is_none() {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "Public channels need a node name: set lightning.alias in the config, or \
                 open a private channel.",
            ));
        }
        let spendable = self.balances()?.onchain_spendable_sat;
        if spendable < request.amount_sat {
            return Err(LightningError::new(
                ErrorKind::InsufficientFunds,
                format!(
                    "The channel needs {} sat plus fees, but the on-chain wallet can spend \
                     {spendable} sat. Send bitcoin to the node's address first.",
                    request.amount_sat
                ),
            ));
        }
        self.blocking(move |node| {
            let push = (request.push_msat > 0).then_some(request.push_msat);
            let opened = if request.public {
                node.open_announced_channel(node_id, address, request.amount_sat, push, None)
            } else {
                node.open_channel(node_id, address, request.amount_sat, push, None)
            };
            opened
                .map(|id| id.0.to_string())
                .map_err(|e| LightningError::node("Opening the channel failed", e))
        })
        .await
    }

    /// Closes the channel named by `id` (its `channel_id` as the channel list shows it, 64
    /// hex digits, or LDK's `user_channel_id`, a decimal number, which the API took first):
    /// cooperatively, or by force (our last commitment goes on-chain; our funds come back
    /// after the channel's delay).
    pub async fn close_channel(&self, id: &str, force: bool) -> Result<()> {
        if force {
            // Our copy may be old: broadcasting it could hand the channel to the peer.
            self.refuse_in_recovery()?;
        }
        let by_channel_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let by_user_id: Option<u128> = id.parse().ok();
        if !by_channel_id && by_user_id.is_none() {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "That is not a channel id: use the channel_id the channel list shows (64 hex \
                 digits).",
            ));
        }
        let wanted_hex = id.to_ascii_lowercase();
        let node = self.node()?;
        let channel = node
            .list_channels()
            .into_iter()
            .find(|c| {
                if by_channel_id {
                    c.channel_id.to_string() == wanted_hex
                } else {
                    Some(c.user_channel_id.0) == by_user_id
                }
            })
            .ok_or_else(|| {
                LightningError::new(
                    ErrorKind::ChannelNotFound,
                    "There is no open channel with that id (it may be closed already).",
                )
            })?;
        let peer = channel.counterparty_node_id;
        let wanted = channel.user_channel_id.0;
        self.blocking(move |node| {
            let id = UserChannelId(wanted);
            let closed = if force {
                node.force_close_channel(&id, peer, Some("closed by the box's owner".into()))
            } else {
                node.close_channel(&id, peer)
            };
            closed.map_err(|e| LightningError::node("Closing the channel failed", e))
        })
        .await?;
        self.shared().mark_closing(wanted);
        Ok(())
    }
}

fn parse_address(text: &str) -> Result<SocketAddress> {
    SocketAddress::from_str(text.trim()).map_err(|_| {
        LightningError::new(
            ErrorKind::InvalidInput,
            format!("{text:?} is not an address: use host:port, e.g. 203.0.113.5:9735."),
        )
    })
}
