//! Receiving from the first minute: when the channels cannot take a payment, an invoice
//! through a *just-in-time channel* from the liquidity provider the owner chose (LSPS2,
//! ldk-node's client side). The provider opens a channel to the box when the payment
//! arrives and keeps its fee from that payment.
//!
//! The owner stays in charge: the provider is contacted only after the owner agreed on the
//! page (`lsp-consent` in the Lightning directory names the provider agreed to), and an
//! invoice through a new channel is handed out only within a fee limit someone approved
//! (the owner on the page for each such invoice, or the configured limit for paired apps
//! and scripts). Asking the provider for its fee buys the channel's promise; the invoice so
//! made is kept for a few minutes, so approving the fee hands out that one invoice.

use super::error::{ErrorKind, LightningError, Result};
use super::handle::LightningHandle;
use super::payments::{Invoice, InvoiceDescription};
use crate::fsutil;
use crate::status::unix_now;
use ldk_node::lightning_invoice::Bolt11InvoiceDescription;
use ldk_node::payment::{PaymentDetails, PaymentKind};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The file (in the Lightning directory) that records the owner's agreement.
const CONSENT_FILE: &str = "lsp-consent";
/// A payment fits the channels when their inbound capacity exceeds it by this share
/// (per mille): balances move while the payer's route is found.
const MARGIN_PERMILLE: u64 = 10;

/// `amount_msat` plus the margin kept below the channels' inbound capacity; any amount an
/// API caller sends (up to `u64::MAX`) is fine.
fn with_margin(amount_msat: u64) -> u64 {
    let margin = amount_msat as u128 * MARGIN_PERMILLE as u128 / 1000;
    amount_msat.saturating_add(u64::try_from(margin).unwrap_or(u64::MAX))
}
/// How long a quoted just-in-time invoice waits for its fee to be approved.
const QUOTE_KEPT: Duration = Duration::from_secs(5 * 60);

/// Who approves a just-in-time channel's fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeeApproval {
    /// The owner, on the page: this much at most (`None`: not asked yet, so say the fee).
    Asked(Option<u64>),
    /// Nobody by hand (paired apps, scripts): the owner's configured limit.
    Configured,
}

/// The liquidity provider, as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LspView {
    pub name: String,
    pub node_id: String,
    pub address: String,
    /// The owner agreed to use it.
    pub agreed: bool,
    /// What paired apps and scripts accept at most, per the config.
    pub max_fee_sat: u64,
    pub max_fee_permille: u32,
}

/// A just-in-time invoice made to learn the provider's fee, not handed out yet.
pub struct Quote {
    amount_msat: u64,
    description: InvoiceDescription,
    expiry_secs: u32,
    invoice: Invoice,
    fee_msat: u64,
    made: Instant,
}

impl LightningHandle {
    /// What the usable channels can receive right now, msat.
    pub fn receivable_msat(&self) -> Result<u64> {
        let node = self.node()?;
        Ok(node
            .list_channels()
            .iter()
            .filter(|c| c.is_usable)
            .map(|c| c.inbound_capacity_msat)
            .sum())
    }

    /// What the open channels can take, counting those whose peer is reconnecting: an
    /// invoice is paid minutes later, by when a peer that blinked is back.
    fn invoiceable_msat(&self) -> Result<u64> {
        let node = self.node()?;
        Ok(node
            .list_channels()
            .iter()
            .filter(|c| c.is_channel_ready)
            .map(|c| c.inbound_capacity_msat)
            .sum())
    }

    /// The configured provider and whether the owner agreed to use it.
    pub fn lsp(&self) -> Option<LspView> {
        let settings = &self.shared().settings;
        let lsp = self.lsp_settings()?;
        Some(LspView {
            name: lsp.name.clone(),
            node_id: lsp.node_id.clone(),
            address: lsp.address.clone(),
            agreed: self.lsp_agreed(),
            max_fee_sat: settings.lsp_fee_limit.max_msat / 1000,
            max_fee_permille: settings.lsp_fee_limit.max_permille,
        })
    }

    fn lsp_agreed(&self) -> bool {
        let settings = &self.shared().settings;
        let Some(lsp) = self.lsp_settings() else {
            return false;
        };
        std::fs::read_to_string(settings.storage_dir.join(CONSENT_FILE))
            .is_ok_and(|agreed| agreed.trim() == lsp.node_id)
    }

    /// Records the owner's answer: use the provider for just-in-time channels, or not.
    pub fn agree_to_lsp(&self, agree: bool) -> Result<()> {
        let settings = &self.shared().settings;
        let path = settings.storage_dir.join(CONSENT_FILE);
        let Some(lsp) = self.lsp_settings() else {
            return Err(no_provider(0));
        };
        let written = if agree {
            fsutil::ensure_private_dir(&settings.storage_dir, 0o700)
                .and_then(|()| fsutil::write_atomic(&path, lsp.node_id.as_bytes(), 0o600))
        } else {
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            }
        };
        written.map_err(|err| {
            LightningError::new(
                ErrorKind::Internal,
                format!("The answer could not be stored: {err}."),
            )
        })
    }

    /// An invoice for `amount_msat`: a normal one when the channels can take it, else one
    /// through a just-in-time channel within an approved fee, else a refusal that says why
    /// and what to do. Nothing that cannot be paid is handed out.
    pub async fn receive(
        &self,
        amount_msat: Option<u64>,
        description: InvoiceDescription,
        expiry_secs: u32,
        approval: FeeApproval,
    ) -> Result<Invoice> {
        let receivable = self.invoiceable_msat()?;
        let Some(amount) = amount_msat else {
            if receivable == 0 {
                return Err(LightningError::new(
                    ErrorKind::NoInboundCapacity,
                    "This box cannot receive yet: no channel can take a payment to it. Ask for \
                     an amount, so a liquidity provider can open a channel for it, or open a \
                     channel from on-chain funds.",
                ));
            }
            return self
                .create_invoice_described(None, description, expiry_secs)
                .await;
        };
        if with_margin(amount) <= receivable {
            return self
                .create_invoice_described(Some(amount), description, expiry_secs)
                .await;
        }
        let Some(lsp) = self.lsp() else {
            // Seen once in CI: a channel just ready reported no inbound capacity. Say what
            // LDK reported, so the next occurrence can be told apart.
            if let Ok(node) = self.node() {
                for c in node.list_channels() {
                    tracing::info!(
                        "cannot receive {} msat: channel {} ready {} usable {} inbound {} msat",
                        amount,
                        c.channel_id,
                        c.is_channel_ready,
                        c.is_usable,
                        c.inbound_capacity_msat
                    );
                }
            }
            return Err(no_provider(receivable));
        };
        if !lsp.agreed {
            return Err(LightningError::new(
                ErrorKind::LspNotAgreed,
                format!(
                    "This box can receive {} sat right now. For more, {} would open a channel \
                     to it when the payment arrives and keep a fee from it; agree to use it on \
                     the box's web page first.",
                    receivable / 1000,
                    lsp.name
                ),
            ));
        }
        let limit = match approval {
            FeeApproval::Asked(limit) => limit,
            FeeApproval::Configured => {
                Some(self.shared().settings.lsp_fee_limit.for_amount(amount))
            }
        };
        let (invoice, fee) = self
            .quoted(amount, description, expiry_secs, &lsp.name)
            .await?;
        match limit {
            Some(limit) if fee <= limit => {
                self.shared().jit_quote.lock().expect("quote lock").take();
                Ok(invoice)
            }
            _ => Err(LightningError {
                lsp_fee_msat: Some(fee),
                ..LightningError::new(
                    ErrorKind::NeedsChannel,
                    match approval {
                        FeeApproval::Asked(_) => format!(
                            "This payment opens a channel: {} keeps at most {} sat of it.",
                            lsp.name,
                            fee.div_ceil(1000)
                        ),
                        FeeApproval::Configured => format!(
                            "This payment would open a channel, and {} would keep up to {} sat \
                             of it: more than the owner allows for apps ({} sat, or {} ‰ of the \
                             payment). Ask for a smaller amount, or make the invoice on the \
                             box's web page.",
                            lsp.name,
                            fee.div_ceil(1000),
                            lsp.max_fee_sat,
                            lsp.max_fee_permille
                        ),
                    },
                )
            }),
        }
    }

    /// A just-in-time invoice and the provider's fee for it: the one quoted a moment ago
    /// for the same payment, or a new one from the provider.
    async fn quoted(
        &self,
        amount: u64,
        description: InvoiceDescription,
        expiry_secs: u32,
        provider: &str,
    ) -> Result<(Invoice, u64)> {
        {
            let mut quote = self.shared().jit_quote.lock().expect("quote lock");
            if let Some(q) = quote.as_ref() {
                let same = q.amount_msat == amount
                    && q.description == description
                    && q.expiry_secs == expiry_secs;
                if same && q.made.elapsed() < QUOTE_KEPT && q.invoice.expires_at > unix_now() + 60 {
                    return Ok((q.invoice.clone(), q.fee_msat));
                }
            }
            *quote = None;
        }
        let ldk_description = to_ldk(&description)?;
        let provider = provider.to_string();
        let (invoice, fee) = self
            .blocking(move |node| {
                let invoice = node
                    .bolt11_payment()
                    .receive_via_jit_channel(amount, &ldk_description, expiry_secs, None)
                    .map_err(|e| explain_provider_failure(&provider, e))?;
                let hash: [u8; 32] = *invoice.payment_hash().as_ref();
                let fee = node
                    .payment(&ldk_node::lightning::ln::channelmanager::PaymentId(hash))
                    .as_ref()
                    .and_then(opening_fee_limit)
                    .unwrap_or(0);
                Ok((invoice, fee))
            })
            .await?;
        let invoice = Invoice::made(&invoice, expiry_secs).jit(fee);
        *self.shared().jit_quote.lock().expect("quote lock") = Some(Quote {
            amount_msat: amount,
            description,
            expiry_secs,
            invoice: invoice.clone(),
            fee_msat: fee,
            made: Instant::now(),
        });
        Ok((invoice, fee))
    }
}

/// The fee the provider may keep, as ldk-node recorded it with the invoice.
fn opening_fee_limit(details: &PaymentDetails) -> Option<u64> {
    match &details.kind {
        PaymentKind::Bolt11Jit { lsp_fee_limits, .. } => lsp_fee_limits.max_total_opening_fee_msat,
        _ => None,
    }
}

/// What the provider kept of a payment that opened a channel.
pub fn skimmed_fee(details: &PaymentDetails) -> Option<u64> {
    match &details.kind {
        PaymentKind::Bolt11Jit {
            counterparty_skimmed_fee_msat,
            ..
        } => *counterparty_skimmed_fee_msat,
        _ => None,
    }
}

fn no_provider(receivable_msat: u64) -> LightningError {
    LightningError::new(
        ErrorKind::NoInboundCapacity,
        format!(
            "This box can receive at most {} sat right now: that is what its channels can take. \
             To receive more, open a channel from on-chain funds, or add a liquidity provider \
             ([lightning.lsp] in the config): a provider opens a channel to the box when a \
             payment arrives and keeps a fee from that payment.",
            receivable_msat / 1000
        ),
    )
}

fn explain_provider_failure(provider: &str, error: ldk_node::NodeError) -> LightningError {
    use ldk_node::NodeError::*;
    let (kind, message) = match error {
        ConnectionFailed => (
            ErrorKind::PeerUnreachable,
            format!(
                "{provider} does not answer: it may be offline. Try again later, or open a \
                 channel from on-chain funds. No invoice was made."
            ),
        ),
        LiquidityRequestFailed => (
            ErrorKind::PeerUnreachable,
            format!(
                "{provider} offered no channel for this payment: the amount may be more (or \
                 less) than it accepts, or it refused the box's token ([lightning.lsp] token). \
                 No invoice was made."
            ),
        ),
        LiquiditySourceUnavailable => (
            ErrorKind::NoInboundCapacity,
            "No liquidity provider is set up on the running node: restart the box after \
             adding [lightning.lsp]."
                .to_string(),
        ),
        other => return LightningError::node("Asking the liquidity provider failed", other),
    };
    LightningError {
        source: Some(error),
        ..LightningError::new(kind, message)
    }
}

fn to_ldk(description: &InvoiceDescription) -> Result<Bolt11InvoiceDescription> {
    super::payments::ldk_description(description)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's huge amount overflowed `amount * 10` and panicked a web worker.
    #[test]
    fn the_margin_never_overflows() {
        assert_eq!(with_margin(100_000), 101_000);
        assert_eq!(with_margin(u64::MAX), u64::MAX);
        assert_eq!(with_margin(u64::MAX / 5), u64::MAX / 5 + u64::MAX / 500);
    }
}
