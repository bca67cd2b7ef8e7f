//! ldk-node's view of channels, balances and payments, turned into the shared status
//! model's words.

use crate::status::{Balances, ChannelSummary, PaymentSummary};
use ldk_node::payment::{PaymentDetails, PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::{BalanceDetails, ChannelDetails, LightningBalance, Node, PendingSweepBalance};

/// How many payments the status keeps (newest first).
const RECENT_PAYMENTS: usize = 10;

/// A channel in the status's words; `closing` when this box asked to close it (ldk-node
/// does not say so itself); `lsp` the liquidity provider (its channels to us were opened
/// for a payment).
pub fn channel(
    details: &ChannelDetails,
    closing: bool,
    lsp: Option<&super::LspSettings>,
) -> ChannelSummary {
    let state = if closing {
        "closing".to_string()
    } else if details.is_usable {
        "open".to_string()
    } else if details.is_channel_ready {
        "open, peer offline".to_string()
    } else {
        match (details.confirmations, details.confirmations_required) {
            (Some(have), Some(need)) if have < need => {
                format!("waiting for {} more confirmation(s)", need - have)
            }
            (None, Some(need)) => {
                format!("waiting for the funding transaction ({need} confirmations)")
            }
            _ => "opening".to_string(),
        }
    };
    ChannelSummary {
        user_channel_id: details.user_channel_id.0.to_string(),
        channel_id: details.channel_id.to_string(),
        peer_id: details.counterparty_node_id.to_string(),
        capacity_sat: details.channel_value_sats,
        outbound_sat: details.outbound_capacity_msat / 1000,
        inbound_sat: details.inbound_capacity_msat / 1000,
        usable: details.is_usable,
        public: details.is_announced,
        funding_txid: details.funding_txo.map(|txo| txo.txid.to_string()),
        state,
        opened_by: lsp
            .filter(|lsp| {
                !details.is_outbound && details.counterparty_node_id.to_string() == lsp.node_id
            })
            .map(|lsp| lsp.name.clone()),
    }
}

/// The numbers the screens show, from ldk-node's balances and channel list.
///
/// - spendable: what the usable channels can send (balance above their reserve);
/// - reserve: kept back so channels can always be closed safely: the part of our channel
///   balance each channel must keep (1 %), and the on-chain amount ldk-node holds per
///   anchor channel to pay the fees of closing it; both come back when channels close;
/// - pending: channels opening or closing, closed-channel outputs not swept yet, and
///   unconfirmed on-chain funds. A sweep that already confirmed is in the on-chain
///   balance and not counted again.
pub fn balances(details: &BalanceDetails, channels: &[ChannelDetails]) -> Balances {
    let usable: Vec<&ChannelDetails> = channels.iter().filter(|c| c.is_usable).collect();
    let lightning_spendable_sat =
        usable.iter().map(|c| c.outbound_capacity_msat).sum::<u64>() / 1000;
    let lightning_receivable_sat =
        usable.iter().map(|c| c.inbound_capacity_msat).sum::<u64>() / 1000;
    let channel_reserve_sat: u64 = usable
        .iter()
        .map(|channel| {
            let ours = details
                .lightning_balances
                .iter()
                .find_map(|balance| match balance {
                    LightningBalance::ClaimableOnChannelClose {
                        channel_id,
                        amount_satoshis,
                        ..
                    } if *channel_id == channel.channel_id => Some(*amount_satoshis),
                    _ => None,
                })
                .unwrap_or(0);
            ours.saturating_sub(channel.outbound_capacity_msat / 1000)
        })
        .sum();
    let sweeping: u64 = details
        .pending_balances_from_channel_closures
        .iter()
        .map(unswept_amount)
        .sum();
    // What the wallet holds but may not spend: unconfirmed coins, and the reserve ldk-node
    // keeps on-chain per anchor channel to pay for closing it.
    // A wallet holding less than the reserve holds back all it has, not more.
    let held_back = details
        .total_onchain_balance_sats
        .saturating_sub(details.spendable_onchain_balance_sats);
    let anchor_reserve = details.total_anchor_channels_reserve_sats.min(held_back);
    let unconfirmed_onchain = held_back - anchor_reserve;
    Balances {
        onchain_sat: details.total_onchain_balance_sats,
        onchain_spendable_sat: details.spendable_onchain_balance_sats,
        lightning_spendable_sat,
        lightning_receivable_sat,
        channel_reserve_sat: channel_reserve_sat + anchor_reserve,
        pending_sat: details
            .total_lightning_balance_sats
            .saturating_sub(lightning_spendable_sat + channel_reserve_sat)
            + sweeping
            + unconfirmed_onchain,
    }
}

/// What a closed channel's output still adds beyond the on-chain balance.
fn unswept_amount(balance: &PendingSweepBalance) -> u64 {
    match balance {
        PendingSweepBalance::PendingBroadcast {
            amount_satoshis, ..
        }
        | PendingSweepBalance::BroadcastAwaitingConfirmation {
            amount_satoshis, ..
        } => *amount_satoshis,
        // Confirmed: the wallet counts it already.
        PendingSweepBalance::AwaitingThresholdConfirmations { .. } => 0,
    }
}

/// A Lightning payment that happened or is happening (not an open invoice of ours).
pub fn is_payment(details: &&PaymentDetails) -> bool {
    let onchain = matches!(details.kind, PaymentKind::Onchain { .. });
    let open_invoice = details.direction == PaymentDirection::Inbound
        && details.status != PaymentStatus::Succeeded;
    !onchain && !open_invoice
}

pub fn payment(details: &PaymentDetails) -> PaymentSummary {
    let (kind, payment_hash) = match &details.kind {
        PaymentKind::Onchain { txid, .. } => ("onchain", Some(txid.to_string())),
        PaymentKind::Bolt11 { hash, .. } => ("bolt11", Some(hash.to_string())),
        PaymentKind::Bolt11Jit { hash, .. } => ("bolt11", Some(hash.to_string())),
        PaymentKind::Bolt12Offer { hash, .. } => ("bolt12", hash.map(|h| h.to_string())),
        PaymentKind::Bolt12Refund { hash, .. } => ("bolt12", hash.map(|h| h.to_string())),
        PaymentKind::Spontaneous { hash, .. } => ("keysend", Some(hash.to_string())),
    };
    PaymentSummary {
        id: hex::encode(details.id.0),
        kind: kind.to_string(),
        payment_hash,
        inbound: details.direction == PaymentDirection::Inbound,
        amount_msat: details.amount_msat,
        fee_msat: details.fee_paid_msat,
        lsp_fee_msat: super::liquidity::skimmed_fee(details),
        status: match details.status {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
        }
        .to_string(),
        updated_at: details.latest_update_timestamp,
    }
}

/// A payment as paired apps are told about it: [`PaymentSummary`] plus the preimage (the
/// proof of payment; for an invoice of ours only once it was paid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_hash: String,
    pub inbound: bool,
    pub status: PaymentStatus,
    pub amount_msat: Option<u64>,
    pub fee_msat: Option<u64>,
    pub preimage: Option<String>,
    pub updated_at: u64,
}

pub fn record(details: &PaymentDetails) -> PaymentRecord {
    let (hash, preimage) = match &details.kind {
        PaymentKind::Bolt11 { hash, preimage, .. }
        | PaymentKind::Bolt11Jit { hash, preimage, .. }
        | PaymentKind::Spontaneous { hash, preimage } => (Some(*hash), *preimage),
        PaymentKind::Bolt12Offer { hash, preimage, .. }
        | PaymentKind::Bolt12Refund { hash, preimage, .. } => (*hash, *preimage),
        PaymentKind::Onchain { .. } => (None, None),
    };
    let settled = details.status == PaymentStatus::Succeeded;
    PaymentRecord {
        payment_hash: hash
            .map(|h| h.to_string())
            .unwrap_or_else(|| hex::encode(details.id.0)),
        inbound: details.direction == PaymentDirection::Inbound,
        status: details.status,
        amount_msat: details.amount_msat,
        fee_msat: details.fee_paid_msat,
        // Our own invoice's preimage would let anyone claim the payment: never before.
        preimage: preimage.filter(|_| settled).map(|p| hex::encode(p.0)),
        updated_at: details.latest_update_timestamp,
    }
}

/// Lightning payments, newest first: on-chain wallet transactions and invoices nobody
/// paid (yet) left out.
pub fn recent_payments(node: &Node) -> Vec<PaymentSummary> {
    let mut payments: Vec<PaymentDetails> = node.list_payments_with_filter(is_payment);
    payments.sort_by_key(|p| std::cmp::Reverse(p.latest_update_timestamp));
    payments.iter().take(RECENT_PAYMENTS).map(payment).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onchain(total: u64, spendable: u64, anchor_reserve: u64) -> BalanceDetails {
        BalanceDetails {
            total_onchain_balance_sats: total,
            spendable_onchain_balance_sats: spendable,
            total_anchor_channels_reserve_sats: anchor_reserve,
            total_lightning_balance_sats: 0,
            lightning_balances: Vec::new(),
            pending_balances_from_channel_closures: Vec::new(),
        }
    }

    #[test]
    fn the_anchor_reserve_is_reserve_not_pending() {
        let shown = balances(&onchain(100_000, 75_000, 25_000), &[]);
        assert_eq!(shown.channel_reserve_sat, 25_000);
        assert_eq!(shown.pending_sat, 0);
    }

    #[test]
    fn unconfirmed_coins_are_pending_next_to_the_reserve() {
        // 25 000 reserve held back, 10 000 more not confirmed yet.
        let shown = balances(&onchain(110_000, 75_000, 25_000), &[]);
        assert_eq!(shown.channel_reserve_sat, 25_000);
        assert_eq!(shown.pending_sat, 10_000);
    }

    #[test]
    fn a_wallet_below_the_reserve_holds_back_only_what_it_has() {
        let shown = balances(&onchain(10_000, 0, 25_000), &[]);
        assert_eq!(shown.channel_reserve_sat, 10_000);
        assert_eq!(shown.pending_sat, 0);
    }
}
