//! [`Shared`]: the state the service task and every [`super::LightningHandle`] hold
//! together (settings, status, store, the running node, what the owner changed since the
//! start), and the [`Command`]s a handle sends the service. Both sides depend on this
//! file; it depends on neither.

use super::recovery;
use super::store::ChannelStore;
use super::{GossipChoice, LightningSettings, LspSettings};
use crate::status::{LightningState, StatusHandle};
use ldk_node::Node;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot, watch};

/// What a handle asks of the service task.
pub(super) enum Command {
    Stop(oneshot::Sender<()>),
    /// Build the node again (its liquidity provider changed).
    Restart,
}

/// State shared by the service task and every handle.
pub(super) struct Shared {
    pub settings: LightningSettings,
    pub status: StatusHandle,
    pub store: ChannelStore,
    node: RwLock<Option<Arc<Node>>>,
    commands: mpsc::UnboundedSender<Command>,
    /// Bumped when a seed is stored, to wake the waiting service.
    pub seed_stored: watch::Sender<u64>,
    /// Bumped after every Lightning event, to wake payment waiters.
    pub payment_events: watch::Sender<u64>,
    /// Channels this box asked to close (cooperatively), until they are gone.
    closing: Mutex<HashSet<u128>>,
    /// The last just-in-time invoice quoted and not handed out yet (see `liquidity`).
    pub(super) jit_quote: Mutex<Option<super::liquidity::Quote>>,
    /// The liquidity provider the node is built with (the config's, or one set later).
    pub(super) lsp: RwLock<Option<LspSettings>>,
}

impl Shared {
    /// The state for a new service, and the receiving end of its commands.
    pub fn new(
        settings: LightningSettings,
        status: StatusHandle,
        store: ChannelStore,
    ) -> (Arc<Shared>, mpsc::UnboundedReceiver<Command>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let lsp = RwLock::new(settings.lsp.clone());
        let shared = Arc::new(Shared {
            settings,
            status,
            store,
            node: RwLock::new(None),
            commands,
            seed_stored: watch::channel(0).0,
            payment_events: watch::channel(0).0,
            closing: Default::default(),
            jit_quote: Default::default(),
            lsp,
        });
        (shared, receiver)
    }

    pub fn set_node(&self, node: Option<Arc<Node>>) {
        *self.node.write().expect("node lock") = node;
    }

    /// The running node, if there is one.
    pub fn node(&self) -> Option<Arc<Node>> {
        self.node.read().expect("node lock").clone()
    }

    /// Hands the service a command; `false` when the service has ended.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    pub fn set_state(&self, state: LightningState) {
        self.status.update(|s| s.lightning.state = state);
    }

    /// The liquidity provider the node is (or will be) built with.
    pub fn lsp_settings(&self) -> Option<LspSettings> {
        self.lsp.read().expect("lsp lock").clone()
    }

    /// `lightning.gossip`, or for "auto" P2P gossip on an unpruned node and Rapid Gossip
    /// Sync on a pruned one.
    pub fn gossip_choice(&self) -> GossipChoice {
        let settings = &self.settings;
        let pruned = self
            .status
            .snapshot()
            .bitcoind
            .chain
            .is_some_and(|c| c.pruned);
        settings.gossip.choose(settings.network, pruned)
    }

    pub fn in_recovery_mode(&self) -> bool {
        recovery::phase(&self.settings.storage_dir).is_some()
    }

    /// Whether this box asked to close the channel (cooperatively).
    pub fn is_closing(&self, channel: &ldk_node::ChannelDetails) -> bool {
        self.closing
            .lock()
            .expect("closing lock")
            .contains(&channel.user_channel_id.0)
    }

    /// Remembers that this box asked to close the channel `user_channel_id`.
    pub fn mark_closing(&self, user_channel_id: u128) {
        self.closing
            .lock()
            .expect("closing lock")
            .insert(user_channel_id);
    }
}
