//! [`LightningHandle`]: what the web page, pairing and the display may ask of the
//! Lightning node. Every call checks its input first and answers with a
//! [`LightningError`] that says what to do; calls that block inside ldk-node run on the
//! blocking pool.

use super::error::{ErrorKind, LightningError, Result};
use super::payment_request::{offer_amount_msat, PaymentRequest};
use super::recovery;
use super::seed::{Seed, SeedError};
use super::service;
use super::shared::{Command, Shared};
use super::store::ChannelStore;
use super::summary;
use super::{GossipChoice, LightningSettings};
use crate::status::{
    unix_now, Balances, ChannelSummary, LightningState, PaymentSummary, StatusHandle, UnixTime,
};
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::offers::offer::Offer;
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescription, Bolt11InvoiceDescriptionRef, Description,
};
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
use ldk_node::payment::{PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::{Node, UserChannelId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long a payment call waits for the outcome before answering "pending".
pub const PAYMENT_WAIT: Duration = Duration::from_secs(60);

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

#[derive(Clone, Debug, Serialize)]
pub struct Invoice {
    pub bolt11: String,
    pub payment_hash: String,
    pub amount_msat: Option<u64>,
    pub expires_at: UnixTime,
    /// Paying it opens a channel from the liquidity provider (a just-in-time channel).
    pub jit: bool,
    /// For such an invoice: the most the provider keeps of the payment, in sat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lsp_fee_sat: Option<u64>,
}

/// A BOLT11 payment that passed every check; nothing has been sent yet.
pub struct PreparedPayment {
    invoice: Bolt11Invoice,
    /// The invoice as text (normalised: no `lightning:` prefix).
    pub bolt11: String,
    /// What the payment sends, without fees.
    pub amount_msat: u64,
    /// Also the payment's id in the node (hex).
    pub payment_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<UnixTime>,
}

/// A keysend payment that passed every check, with the preimage it will carry.
pub struct PreparedKeysend {
    node_id: PublicKey,
    preimage: PaymentPreimage,
    pub amount_msat: u64,
    /// Also the payment's id in the node (hex).
    pub payment_hash: String,
}

/// What an invoice says it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceDescription {
    Text(String),
    /// The SHA-256 (hex) of a longer description the payer has (LNURL, zaps).
    Hash(String),
}

/// The fee limit LDK applies when none is given (1 % plus 50 sat): paired apps reserve
/// their budget for it and pass it explicitly, so what is reserved is what may be spent.
pub fn default_fee_limit_msat(amount_msat: u64) -> u64 {
    amount_msat / 100 + 50_000
}

/// Smallest channel ldk-node opens.
const MIN_CHANNEL_SAT: u64 = 20_000;
const MAX_DESCRIPTION_BYTES: usize = 639;

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

    fn refuse_in_recovery(&self) -> Result<()> {
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

    pub fn balances(&self) -> Result<Balances> {
        let node = self.node()?;
        Ok(summary::balances(
            &node.list_balances(),
            &node.list_channels(),
        ))
    }

    pub fn list_channels(&self) -> Result<Vec<ChannelSummary>> {
        Ok(self
            .node()?
            .list_channels()
            .iter()
            .map(|c| summary::channel(c, self.shared.is_closing(c), self.lsp_settings().as_ref()))
            .collect())
    }

    /// Lightning payments, newest first.
    pub fn list_payments(&self) -> Result<Vec<PaymentSummary>> {
        let node = self.node()?;
        let mut payments = node.list_payments_with_filter(summary::is_payment);
        payments.sort_by_key(|p| std::cmp::Reverse(p.latest_update_timestamp));
        Ok(payments.iter().map(summary::payment).collect())
    }

    pub fn payment(&self, id: &str) -> Result<Option<PaymentSummary>> {
        let id = parse_payment_id(id)?;
        Ok(self.node()?.payment(&id).as_ref().map(summary::payment))
    }

    /// A payment with what paired apps are told about it (its preimage once settled), by
    /// its id (for BOLT11 and keysend: the payment hash). `None` when the node has no such
    /// payment.
    pub fn payment_record(&self, id: &str) -> Result<Option<summary::PaymentRecord>> {
        let id = parse_payment_id(id)?;
        Ok(self.node()?.payment(&id).as_ref().map(summary::record))
    }

    /// Bumped after every Lightning event (a payment settled or failed, a channel moved):
    /// a cue to look again at payments one waits for.
    pub fn payment_events(&self) -> watch::Receiver<u64> {
        self.shared.payment_events.subscribe()
    }

    /// A fresh on-chain address of the node's wallet, to fund it.
    pub async fn new_onchain_address(&self) -> Result<String> {
        self.blocking(|node| {
            node.onchain_payment()
                .new_address()
                .map(|a| a.to_string())
                .map_err(|e| LightningError::node("Creating an address failed", e))
        })
        .await
    }

    /// Sends on-chain funds out of the wallet (to withdraw them); `None` sends everything
    /// that is not kept back as the reserve for closing channels. Returns the txid.
    pub async fn send_onchain(&self, address: &str, amount_sat: Option<u64>) -> Result<String> {
        let address = self.check_withdrawal(address, amount_sat)?;
        self.blocking(move |node| {
            let payments = node.onchain_payment();
            match amount_sat {
                Some(amount) => payments.send_to_address(&address, amount, None),
                None => payments.send_all_to_address(&address, true, None),
            }
            .map(|txid| txid.to_string())
            .map_err(|e| LightningError::node("Sending on-chain failed", e))
        })
        .await
    }

    /// What [`LightningHandle::send_onchain`] checks before sending (an address of this
    /// network, more than 0 sat), for asking the user to confirm only what can be sent.
    pub fn check_withdrawal(
        &self,
        address: &str,
        amount_sat: Option<u64>,
    ) -> Result<ldk_node::bitcoin::Address> {
        let network = self.shared.settings.network.to_bitcoin();
        let address = ldk_node::bitcoin::Address::from_str(address.trim())
            .map_err(|_| {
                LightningError::new(ErrorKind::InvalidInput, "That is not a Bitcoin address.")
            })?
            .require_network(network)
            .map_err(|_| {
                LightningError::new(
                    ErrorKind::InvalidInput,
                    format!("That address is for another network; this box runs on {network}."),
                )
            })?;
        if amount_sat == Some(0) {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "Send more than 0 sat.",
            ));
        }
        Ok(address)
    }

    /// Makes the on-chain wallet look at the chain now (it also does so on its own).
    pub async fn sync_wallets(&self) -> Result<()> {
        self.blocking(|node| {
            node.sync_wallets()
                .map_err(|e| LightningError::node("Syncing the wallets failed", e))
        })
        .await
    }

    // --- peers and channels --------------------------------------------------------------

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
        if request.public && self.shared.settings.alias.is_none() {
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
        self.shared.mark_closing(wanted);
        Ok(())
    }

    // --- receiving -----------------------------------------------------------------------

    /// A BOLT11 invoice for `amount_msat` (or any amount when `None`).
    pub async fn create_invoice(
        &self,
        amount_msat: Option<u64>,
        description: &str,
        expiry_secs: u32,
    ) -> Result<Invoice> {
        self.create_invoice_described(
            amount_msat,
            InvoiceDescription::Text(description.to_string()),
            expiry_secs,
        )
        .await
    }

    /// A BOLT11 invoice with a description or a description hash.
    pub async fn create_invoice_described(
        &self,
        amount_msat: Option<u64>,
        description: InvoiceDescription,
        expiry_secs: u32,
    ) -> Result<Invoice> {
        if amount_msat == Some(0) {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "An invoice amount must be more than 0 (leave it empty for any amount).",
            ));
        }

        if !(60..=31 * 24 * 3600).contains(&expiry_secs) {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "An invoice should expire after 1 minute to 31 days.",
            ));
        }
        let description = ldk_description(&description)?;
        let invoice = self
            .blocking(move |node| {
                let payments = node.bolt11_payment();
                match amount_msat {
                    Some(amount) => payments.receive(amount, &description, expiry_secs),
                    None => payments.receive_variable_amount(&description, expiry_secs),
                }
                .map_err(|e| LightningError::node("Creating the invoice failed", e))
            })
            .await?;
        Ok(Invoice {
            bolt11: invoice.to_string(),
            payment_hash: invoice.payment_hash().to_string(),
            amount_msat: invoice.amount_milli_satoshis(),
            expires_at: invoice
                .expires_at()
                .map(|d| d.as_secs())
                .unwrap_or(unix_now() + expiry_secs as u64),
            jit: false,
            max_lsp_fee_sat: None,
        })
    }

    /// A BOLT12 offer (reusable), for `amount_msat` or any amount.
    pub async fn create_offer(
        &self,
        amount_msat: Option<u64>,
        description: &str,
    ) -> Result<String> {
        let description = description.to_string();
        self.blocking(move |node| {
            let payments = node.bolt12_payment();
            match amount_msat {
                Some(amount) => payments.receive(amount, &description, None, None),
                None => payments.receive_variable_amount(&description, None),
            }
            .map(|offer| offer.to_string())
            .map_err(|e| LightningError::node("Creating the offer failed", e))
        })
        .await
    }

    // --- paying --------------------------------------------------------------------------

    /// Reads an invoice or offer as pasted or scanned (see [`super::payment_request`]) and
    /// refuses one for another network. Needs no running node: the page shows what a
    /// request asks for while the node starts.
    pub fn read_payment_request(&self, text: &str) -> Result<PaymentRequest> {
        PaymentRequest::parse(text)?.require_network(self.shared.settings.network.to_bitcoin())
    }

    /// [`LightningHandle::read_payment_request`] for the paired apps' protocols, which pay
    /// BOLT11 invoices only.
    pub fn read_invoice(&self, text: &str) -> Result<Bolt11Invoice> {
        match self.read_payment_request(text)? {
            PaymentRequest::Bolt11(invoice) => Ok(invoice),
            PaymentRequest::Bolt12(_) => Err(LightningError::new(
                ErrorKind::InvalidInvoice,
                "That is a Lightning offer (lno…), and this way of paying takes invoices \
                 only: ask the recipient for an invoice (lnbc…), or pay the offer on the \
                 box's web page.",
            )),
        }
    }

    /// Pays what the user pasted, an invoice or an offer, and waits (up to
    /// [`PAYMENT_WAIT`]) for the outcome. Either is refused before anything is sent when it
    /// is malformed, for another network, expired or unaffordable (an invoice also when it
    /// was paid already). `payer_note` travels with an offer only: BOLT11 has no room for it.
    pub async fn pay(
        &self,
        text: &str,
        amount_msat: Option<u64>,
        max_fee_msat: Option<u64>,
        payer_note: Option<String>,
    ) -> Result<PaymentSummary> {
        let sent = match self.read_payment_request(text)? {
            PaymentRequest::Bolt11(invoice) => {
                let prepared = self.prepare_bolt11(invoice, amount_msat).await?;
                self.send_invoice_payment(prepared, max_fee_msat).await?
            }
            PaymentRequest::Bolt12(offer) => {
                let amount = self.check_offer(&offer, amount_msat).await?;
                self.send_offer_payment(*offer, amount, max_fee_msat, payer_note)
                    .await?
            }
        };
        self.wait_for_payment(sent, PAYMENT_WAIT).await
    }

    /// Checks a BOLT11 invoice as [`LightningHandle::pay`] does, without sending anything:
    /// the caller may reserve a budget for it first (paired apps do).
    pub async fn prepare_invoice_payment(
        &self,
        text: &str,
        amount_msat: Option<u64>,
    ) -> Result<PreparedPayment> {
        let invoice = self.read_invoice(text)?;
        self.prepare_bolt11(invoice, amount_msat).await
    }

    /// The checks on an invoice already read (its network too) before paying it.
    async fn prepare_bolt11(
        &self,
        invoice: Bolt11Invoice,
        amount_msat: Option<u64>,
    ) -> Result<PreparedPayment> {
        self.refuse_in_recovery()?;
        if self
            .node()
            .is_ok_and(|node| invoice.recover_payee_pub_key() == node.node_id())
        {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "This invoice was made by this box: it cannot pay itself. Pay it from another \
                 wallet.",
            ));
        }
        if invoice.is_expired() {
            return Err(LightningError::new(
                ErrorKind::InvoiceExpired,
                "This invoice has expired: ask the recipient for a new one. Nothing was sent.",
            ));
        }
        let amount = match (invoice.amount_milli_satoshis(), amount_msat) {
            (Some(fixed), Some(given)) if fixed != given => {
                return Err(LightningError::new(
                    ErrorKind::InvalidInput,
                    format!("This invoice asks for {fixed} msat; do not give another amount."),
                ))
            }
            (Some(fixed), _) => fixed,
            (None, Some(given)) if given > 0 => given,
            (None, _) => {
                return Err(LightningError::new(
                    ErrorKind::InvalidInput,
                    "This invoice has no amount: say how much to pay.",
                ))
            }
        };
        let node = self.node()?;
        let hash: &[u8] = invoice.payment_hash().as_ref();
        let earlier = node.list_payments_with_filter(|p| {
            p.direction == PaymentDirection::Outbound
                && p.status != PaymentStatus::Failed
                && matches!(&p.kind, PaymentKind::Bolt11 { hash: h, .. } if h.0 == hash)
        });
        if let Some(existing) = earlier.first() {
            let what = if existing.status == PaymentStatus::Succeeded {
                "was already paid"
            } else {
                "is being paid right now"
            };
            return Err(LightningError::new(
                ErrorKind::AlreadyPaid,
                format!("This invoice {what}; nothing was sent again."),
            ));
        }
        self.check_can_send(&node, amount).await?;
        Ok(PreparedPayment {
            payment_hash: invoice.payment_hash().to_string(),
            description: match invoice.description() {
                Bolt11InvoiceDescriptionRef::Direct(d) => Some(d.to_string()),
                Bolt11InvoiceDescriptionRef::Hash(_) => None,
            },
            expires_at: invoice.expires_at().map(|d| d.as_secs()),
            bolt11: invoice.to_string(),
            amount_msat: amount,
            invoice,
        })
    }

    /// Sends a payment checked by [`LightningHandle::prepare_invoice_payment`]; returns at
    /// once with its id (the payment hash).
    pub async fn send_invoice_payment(
        &self,
        prepared: PreparedPayment,
        max_fee_msat: Option<u64>,
    ) -> Result<PaymentId> {
        let route = route_parameters(max_fee_msat);
        let amount = prepared.amount_msat;
        let invoice = prepared.invoice;
        self.blocking(move |node| {
            let payments = node.bolt11_payment();
            if invoice.amount_milli_satoshis().is_some() {
                payments.send(&invoice, route)
            } else {
                payments.send_using_amount(&invoice, amount, route)
            }
            .map_err(|e| explain_send_failure(&node, amount, "Paying the invoice failed", e))
        })
        .await
    }

    /// Sends `amount_msat` to a node without an invoice (keysend).
    pub async fn keysend(&self, node_id: &str, amount_msat: u64) -> Result<PaymentSummary> {
        let prepared = self.prepare_keysend(node_id, amount_msat).await?;
        let sent = self.send_keysend(prepared, None).await?;
        self.wait_for_payment(sent, PAYMENT_WAIT).await
    }

    /// Checks a keysend payment and picks its preimage, without sending anything: its
    /// payment hash is known before it leaves (for budget reservations).
    pub async fn prepare_keysend(
        &self,
        node_id: &str,
        amount_msat: u64,
    ) -> Result<PreparedKeysend> {
        self.refuse_in_recovery()?;
        let node_id = parse_node_id(node_id)?;
        if amount_msat == 0 {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "Send more than 0 msat.",
            ));
        }
        let node = self.node()?;
        if node.node_id() == node_id {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "That is this box's own node id: it cannot pay itself.",
            ));
        }
        self.check_can_send(&node, amount_msat).await?;
        let mut preimage = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut preimage);
        let preimage = PaymentPreimage(preimage);
        Ok(PreparedKeysend {
            node_id,
            amount_msat,
            payment_hash: PaymentHash::from(preimage).to_string(),
            preimage,
        })
    }

    /// Sends a keysend payment checked by [`LightningHandle::prepare_keysend`].
    pub async fn send_keysend(
        &self,
        prepared: PreparedKeysend,
        max_fee_msat: Option<u64>,
    ) -> Result<PaymentId> {
        let route = route_parameters(max_fee_msat);
        let PreparedKeysend {
            node_id,
            amount_msat,
            preimage,
            ..
        } = prepared;
        self.blocking(move |node| {
            node.spontaneous_payment()
                .send_with_preimage(amount_msat, node_id, preimage, route)
                .map_err(|e| {
                    explain_send_failure(&node, amount_msat, "The keysend payment failed", e)
                })
        })
        .await
    }

    /// The checks on an offer of this network before paying it, as an invoice gets them;
    /// returns the amount to send. LDK would also refuse an expired offer, but only after
    /// recording a failed payment, and with no word the user could act on.
    async fn check_offer(&self, offer: &Offer, amount_msat: Option<u64>) -> Result<u64> {
        self.refuse_in_recovery()?;
        if offer.is_expired() {
            return Err(LightningError::new(
                ErrorKind::InvoiceExpired,
                "This offer has expired: ask the recipient for a new one. Nothing was sent.",
            ));
        }
        let amount = match (offer_amount_msat(offer), amount_msat) {
            // An offer may be paid more than it asks (a tip), never less.
            (Some(fixed), Some(given)) if given < fixed => {
                return Err(LightningError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "This offer asks for {fixed} msat: give at least that much, or no amount."
                    ),
                ))
            }
            (_, Some(given)) if given > 0 => given,
            (Some(fixed), _) => fixed,
            (None, _) => {
                return Err(LightningError::new(
                    ErrorKind::InvalidInput,
                    "This offer has no amount: say how much to pay.",
                ))
            }
        };
        let node = self.node()?;
        self.check_can_send(&node, amount).await?;
        Ok(amount)
    }

    /// Sends a payment for an offer checked by [`LightningHandle::check_offer`]; returns at
    /// once with its id.
    async fn send_offer_payment(
        &self,
        offer: Offer,
        amount_msat: u64,
        max_fee_msat: Option<u64>,
        payer_note: Option<String>,
    ) -> Result<PaymentId> {
        let route = route_parameters(max_fee_msat);
        self.blocking(move |node| {
            let payments = node.bolt12_payment();
            // The offer's own amount goes as "no amount", so LDK pays exactly what it asks.
            if offer_amount_msat(&offer) == Some(amount_msat) {
                payments.send(&offer, None, payer_note, route)
            } else {
                payments.send_using_amount(&offer, amount_msat, None, payer_note, route)
            }
            .map_err(|e| explain_send_failure(&node, amount_msat, "Paying the offer failed", e))
        })
        .await
    }

    /// Refuses a payment the channels cannot carry, before anything is sent. A payment
    /// received a moment ago counts only once both peers have signed the new channel
    /// state, so a shortfall is re-checked for a few seconds before refusing.
    async fn check_can_send(&self, node: &Node, amount_msat: u64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let room = sendable(node);
            match room {
                Some(room) if amount_msat <= room.now_msat => return Ok(()),
                _ if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => {
                    return Err(LightningError::new(
                        ErrorKind::InsufficientFunds,
                        "No usable channel: open one (or wait for its confirmations, or for \
                         the peer to come online). Nothing was sent.",
                    ))
                }
                Some(room) if amount_msat <= room.balance_msat => {
                    return Err(LightningError::new(
                        ErrorKind::InsufficientFunds,
                        format!(
                            "Your channels accept at most {} sat in one payment right now (the \
                             peers limit what may be in flight at once); send a smaller \
                             amount. Nothing was sent.",
                            room.now_msat / 1000
                        ),
                    ))
                }
                Some(room) => {
                    return Err(LightningError::new(
                        ErrorKind::InsufficientFunds,
                        format!(
                            "Your channels can send at most {} sat right now; this payment \
                             needs {} sat plus fees. Nothing was sent.",
                            room.balance_msat / 1000,
                            amount_msat.div_ceil(1000)
                        ),
                    ))
                }
            }
        }
    }

    /// Waits until a payment succeeded or failed (or `timeout`, then it is "pending").
    pub async fn wait_for_payment(
        &self,
        id: PaymentId,
        timeout: Duration,
    ) -> Result<PaymentSummary> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.shared.payment_events.subscribe();
        loop {
            let node = self.node()?;
            let details = node.payment(&id).ok_or_else(|| {
                LightningError::new(ErrorKind::Internal, "the payment vanished from the store")
            })?;
            match details.status {
                PaymentStatus::Succeeded => return Ok(summary::payment(&details)),
                PaymentStatus::Failed => {
                    return Err(LightningError::new(
                        ErrorKind::PaymentFailed,
                        "The payment failed: no route to the recipient had enough capacity, \
                         or the recipient refused it. No money left your channels.",
                    ))
                }
                PaymentStatus::Pending => {}
            }
            if tokio::time::timeout_at(deadline, events.changed())
                .await
                .is_err()
            {
                return Ok(summary::payment(&details));
            }
        }
    }
}

/// The invoice description in ldk-node's words, checked.
pub(super) fn ldk_description(
    description: &InvoiceDescription,
) -> Result<Bolt11InvoiceDescription> {
    Ok(match description.clone() {
        InvoiceDescription::Text(text) if text.len() > MAX_DESCRIPTION_BYTES => {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                format!("The description is too long (at most {MAX_DESCRIPTION_BYTES} bytes)."),
            ))
        }
        InvoiceDescription::Text(text) => Bolt11InvoiceDescription::Direct(
            Description::new(text)
                .map_err(|e| LightningError::new(ErrorKind::InvalidInput, e.to_string()))?,
        ),
        InvoiceDescription::Hash(hex_hash) => {
            use ldk_node::bitcoin::hashes::{sha256, Hash};
            let bytes: [u8; 32] = hex::decode(hex_hash.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    LightningError::new(
                        ErrorKind::InvalidInput,
                        "A description hash is 64 hex characters (a SHA-256).",
                    )
                })?;
            Bolt11InvoiceDescription::Hash(ldk_node::lightning_invoice::Sha256(
                sha256::Hash::from_byte_array(bytes),
            ))
        }
    })
}

/// A send refused outright is most often a payment bigger than the peers accept in one
/// piece (each side limits what may be in flight at once): say so with the number.
fn explain_send_failure(
    node: &Node,
    amount_msat: u64,
    doing: &str,
    error: ldk_node::NodeError,
) -> LightningError {
    let largest_piece = node
        .list_channels()
        .iter()
        .filter(|c| c.is_usable)
        .map(|c| c.next_outbound_htlc_limit_msat)
        .max()
        .unwrap_or(0);
    if error == ldk_node::NodeError::PaymentSendingFailed && amount_msat > largest_piece {
        return LightningError::new(
            ErrorKind::InsufficientFunds,
            format!(
                "{doing}: your channels accept at most {} sat in one payment right now (the \
                 peers limit what may be in flight at once); send a smaller amount. Nothing was \
                 sent.",
                largest_piece / 1000
            ),
        );
    }
    LightningError::node(doing, error)
}

/// What the usable channels can carry.
struct Room {
    /// Our balance above each channel's reserve.
    balance_msat: u64,
    /// What may go out right now: also within what the peers accept in flight at once
    /// (a payment that just settled still counts against that for a moment).
    now_msat: u64,
}

/// `None` when no channel is usable.
fn sendable(node: &Node) -> Option<Room> {
    let channels = node.list_channels();
    let usable: Vec<_> = channels.iter().filter(|c| c.is_usable).collect();
    (!usable.is_empty()).then(|| Room {
        balance_msat: usable.iter().map(|c| c.outbound_capacity_msat).sum(),
        now_msat: usable.iter().map(|c| c.next_outbound_htlc_limit_msat).sum(),
    })
}

/// Why restoring from words failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Words(SeedError),
    #[error(transparent)]
    Store(LightningError),
}

fn route_parameters(max_fee_msat: Option<u64>) -> Option<RouteParametersConfig> {
    max_fee_msat.map(|fee| RouteParametersConfig {
        max_total_routing_fee_msat: Some(fee),
        ..RouteParametersConfig::default()
    })
}

fn parse_node_id(text: &str) -> Result<PublicKey> {
    PublicKey::from_str(text.trim()).map_err(|_| {
        LightningError::new(
            ErrorKind::InvalidInput,
            "That is not a node id: it is 66 hex characters starting with 02 or 03.",
        )
    })
}

fn parse_address(text: &str) -> Result<SocketAddress> {
    SocketAddress::from_str(text.trim()).map_err(|_| {
        LightningError::new(
            ErrorKind::InvalidInput,
            format!("{text:?} is not an address: use host:port, e.g. 203.0.113.5:9735."),
        )
    })
}

fn parse_payment_id(text: &str) -> Result<PaymentId> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| LightningError::new(ErrorKind::InvalidInput, "That is not a payment id."))?;
    Ok(PaymentId(bytes))
}
