//! [`LightningHandle`]'s payments: invoices and offers to receive, paying invoices,
//! offers and keysend (each checked before anything is sent), and the records and
//! waits that follow a payment.

use super::error::{ErrorKind, LightningError, Result};
use super::handle::{parse_node_id, LightningHandle};
use super::payment_request::{offer_amount_msat, PaymentRequest};
use super::summary;
use crate::status::{unix_now, PaymentSummary, UnixTime};
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::offers::offer::Offer;
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescription, Bolt11InvoiceDescriptionRef, Description,
};
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
use ldk_node::payment::{PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::Node;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::watch;

/// How long a payment call waits for the outcome before answering "pending".
pub const PAYMENT_WAIT: Duration = Duration::from_secs(60);

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

impl Invoice {
    /// A plain invoice the node made (valid `expiry_secs` when it names no expiry);
    /// [`Invoice::jit`] marks one that opens a channel.
    pub(super) fn made(invoice: &Bolt11Invoice, expiry_secs: u32) -> Invoice {
        Invoice {
            bolt11: invoice.to_string(),
            payment_hash: invoice.payment_hash().to_string(),
            amount_msat: invoice.amount_milli_satoshis(),
            expires_at: invoice
                .expires_at()
                .map(|d| d.as_secs())
                .unwrap_or(unix_now() + expiry_secs as u64),
            jit: false,
            max_lsp_fee_sat: None,
        }
    }

    /// This invoice opens a just-in-time channel; the provider keeps at most `fee_msat`.
    pub(super) fn jit(self, fee_msat: u64) -> Invoice {
        Invoice {
            jit: true,
            max_lsp_fee_sat: Some(fee_msat.div_ceil(1000)),
            ..self
        }
    }
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

const MAX_DESCRIPTION_BYTES: usize = 639;

impl LightningHandle {
    // --- records -------------------------------------------------------------------------

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
        self.shared().payment_events.subscribe()
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
        Ok(Invoice::made(&invoice, expiry_secs))
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
        PaymentRequest::parse(text)?.require_network(self.shared().settings.network.to_bitcoin())
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
        let mut events = self.shared().payment_events.subscribe();
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

fn route_parameters(max_fee_msat: Option<u64>) -> Option<RouteParametersConfig> {
    max_fee_msat.map(|fee| RouteParametersConfig {
        max_total_routing_fee_msat: Some(fee),
        ..RouteParametersConfig::default()
    })
}

fn parse_payment_id(text: &str) -> Result<PaymentId> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| LightningError::new(ErrorKind::InvalidInput, "That is not a payment id."))?;
    Ok(PaymentId(bytes))
}
