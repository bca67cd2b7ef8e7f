//! [`LightningHandle`]: what the web page, pairing and the display may ask of the
//! Lightning node. Every call checks its input first and answers with a
//! [`LightningError`] that says what to do; calls that block inside ldk-node run on the
//! blocking pool.
//!
//! This file holds the handle itself: starting and stopping the service, the seed,
//! recovery mode, and access to the running node. Its calls by concern live next to it,
//! each file its own `impl LightningHandle`: `payments`, `channels`, `onchain` and
//! `liquidity`.

use super::error::{ErrorKind, LightningError, Result};
use super::recovery;
use super::seed::{Seed, SeedError};
use super::service;
use super::shared::{Command, Shared};
use super::store::ChannelStore;
use super::{GossipChoice, LightningSettings};
use crate::status::{LightningState, StatusHandle};
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::Node;
use serde::Serialize;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The Lightning node's API. Cheap to clone.
#[derive(Clone)]
pub struct LightningHandle {
    shared: Arc<Shared>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub listening_addresses: Vec<String>,
    pub alias: Option<String>,
    pub network: String,
    pub block_height: u32,
}

impl LightningHandle {
    /// Starts the Lightning service: it waits for a seed and a synced bitcoind, then runs
    /// the node until [`LightningHandle::stop`].
    pub fn spawn(
        settings: LightningSettings,
        status: StatusHandle,
        store: ChannelStore,
    ) -> LightningHandle {
        let (shared, receiver) = Shared::new(settings, status, store);
        crate::essential::spawn(
            "Lightning node",
            shared.status.clone(),
            service::run(Arc::clone(&shared), receiver),
        );
        LightningHandle { shared }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The liquidity provider the node is (or will be) built with.
    pub fn lsp_settings(&self) -> Option<super::LspSettings> {
        self.shared.lsp_settings()
    }

    /// Uses another liquidity provider (or none). ldk-node takes it when the node is built:
    /// a running node restarts (a moment without Lightning, channels kept).
    pub fn set_lsp(&self, lsp: Option<super::LspSettings>) {
        *self.shared.lsp.write().expect("lsp lock") = lsp;
        self.shared.jit_quote.lock().expect("quote lock").take();
        if self.node().is_ok() {
            self.shared.send(Command::Restart);
        }
    }

    /// Stops the node (channel state flushed, peers disconnected) and returns once it has.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.shared.send(Command::Stop(done)) {
            let _ = stopped.await;
        }
    }

    /// The gossip source this box uses: `lightning.gossip`, or for "auto" P2P gossip on an
    /// unpruned node and Rapid Gossip Sync on a pruned one.
    pub fn gossip_choice(&self) -> GossipChoice {
        self.shared.gossip_choice()
    }

    /// The channel store the node runs on (the backup service mirrors it).
    pub fn store(&self) -> &ChannelStore {
        &self.shared.store
    }

    // --- the seed ----------------------------------------------------------------------

    /// Whether the box has a wallet seed.
    pub fn has_seed(&self) -> bool {
        matches!(Seed::load(&self.shared.settings.secrets_dir), Ok(Some(_)))
    }

    /// Creates a new wallet seed and stores it; returns the words to show once (on the
    /// device). Fails if the box already has one.
    pub fn create_seed(&self) -> Result<Seed> {
        let seed = Seed::generate();
        self.store_seed(&seed)?;
        Ok(seed)
    }

    /// The wallet's words, to show again on the box's own screen (never on a page).
    pub(crate) fn seed_words(&self) -> Result<zeroize::Zeroizing<Vec<String>>> {
        match Seed::load(&self.shared.settings.secrets_dir) {
            Ok(Some(seed)) => Ok(seed.words()),
            Ok(None) => Err(LightningError::new(
                ErrorKind::NoSeed,
                "This box has no wallet yet.",
            )),
            Err(err) => Err(LightningError::new(ErrorKind::Internal, err.to_string())),
        }
    }

    /// Restores the wallet from the user's words. Every problem names the word.
    pub fn restore_seed(&self, words: &str) -> std::result::Result<(), RestoreError> {
        let seed = Seed::from_words(words).map_err(RestoreError::Words)?;
        self.store_seed(&seed).map_err(RestoreError::Store)
    }

    /// Stores the seed of a restored wallet (the backup restore wrote its channel state).
    pub fn store_restored_seed(&self, seed: &Seed) -> Result<()> {
        self.store_seed(seed)
    }

    fn store_seed(&self, seed: &Seed) -> Result<()> {
        seed.store(&self.shared.settings.secrets_dir)
            .map_err(|err| {
                let kind = if err.kind() == std::io::ErrorKind::AlreadyExists {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::Internal
                };
                LightningError::new(kind, format!("The wallet seed was not stored: {err}."))
            })?;
        self.shared.seed_stored.send_modify(|n| *n += 1);
        Ok(())
    }

    // --- recovery mode (restored from an older backup) -----------------------------------

    /// Starts recovery from an older restored copy (see [`super::recovery`]).
    pub fn enter_recovery_mode(&self, generation: u64) -> std::io::Result<()> {
        recovery::set_phase(
            &self.shared.settings.storage_dir,
            recovery::Phase::AskPeersToClose,
            &format!("restored an older backup at generation {generation}"),
        )
    }

    pub fn in_recovery_mode(&self) -> bool {
        self.shared.in_recovery_mode()
    }

    pub(super) fn refuse_in_recovery(&self) -> Result<()> {
        if self.in_recovery_mode() {
            return Err(LightningError::new(
                ErrorKind::NotRunning,
                "This node was restored from an older backup and is in recovery mode: it lets \
                 its peers close the channels (your balance returns on-chain) and makes no \
                 payments until then.",
            ));
        }
        Ok(())
    }

    // --- reading -----------------------------------------------------------------------

    /// The running node, or why there is none.
    pub(super) fn node(&self) -> Result<Arc<Node>> {
        if let Some(node) = self.shared.node() {
            return Ok(node);
        }
        let message = match self.shared.status.snapshot().lightning.state {
            LightningState::Disabled => {
                "The Lightning node is turned off (lightning.enabled).".into()
            }
            LightningState::Waiting { reason } => {
                format!("The Lightning node is not running yet. {reason}")
            }
            LightningState::Failed { message } => {
                format!("The Lightning node is not running: {message}")
            }
            LightningState::Starting => {
                "The Lightning node is starting; try again in a moment.".into()
            }
            _ => "The Lightning node is not running.".into(),
        };
        Err(LightningError::new(ErrorKind::NotRunning, message))
    }

    /// Runs a blocking ldk-node call off the async threads.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(Arc<Node>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let node = self.node()?;
        tokio::task::spawn_blocking(move || call(node))
            .await
            .map_err(|err| LightningError::new(ErrorKind::Internal, err.to_string()))?
    }

    pub fn node_info(&self) -> Result<NodeInfo> {
        let node = self.node()?;
        let status = node.status();
        Ok(NodeInfo {
            node_id: node.node_id().to_string(),
            listening_addresses: node
                .listening_addresses()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            alias: self.shared.settings.alias.clone(),
            network: self.shared.settings.network.chain_name().to_string(),
            block_height: status.current_best_block.height,
        })
    }
}

/// Why restoring from words failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Words(SeedError),
    #[error(transparent)]
    Store(LightningError),
}

/// A node id as typed or pasted (peers to open channels with, keysend recipients).
pub(super) fn parse_node_id(text: &str) -> Result<PublicKey> {
    PublicKey::from_str(text.trim()).map_err(|_| {
        LightningError::new(
            ErrorKind::InvalidInput,
            "That is not a node id: it is 66 hex characters starting with 02 or 03.",
        )
    })
}
