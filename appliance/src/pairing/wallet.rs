//! What one paired app may do with the box's Lightning node: receive, and spend within its
//! budget. Nostr Wallet Connect and LNDHub both go through here, so an app gets the same
//! checks and the same budget whichever protocol it speaks.
//!
//! A payment is reserved against the budget (amount plus fee limit) in the store before
//! it is handed to the node; its outcome turns the reservation into what was really spent
//! or releases it. An outcome that arrives later (a payment still in flight when the app
//! stopped waiting, or across a restart) is settled by [`super::settle`].

use super::connection::{Connection, ConnectionState};
use super::error::{ErrorKind, PairingError, Result};
use super::store::{PairingStore, TransactionRecord};
use crate::lightning::{
    default_fee_limit_msat, ErrorKind as LightningKind, InvoiceDescription, LightningHandle,
    NodeInfo, PaymentRecord,
};
use crate::status::{unix_now, StatusHandle, UnixTime};
use ldk_node::lightning_invoice::Bolt11Invoice;
use ldk_node::payment::PaymentStatus;
use std::time::Duration;

/// How long after an invoice's expiry a payment the node has never heard of (the box died
/// between reserving and sending) is counted as spent: by then LDK would have settled or
/// failed any payment it had started.
const GIVE_UP_AFTER_EXPIRY: u64 = 3600;

/// What happened to a payment an app made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentPayment {
    pub payment_hash: String,
    /// The proof of payment, once it succeeded.
    pub preimage: Option<String>,
    pub amount_msat: u64,
    pub fee_msat: u64,
    /// Still on its way when the app stopped waiting (its budget stays reserved until the
    /// outcome is known).
    pub pending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionState {
    Pending,
    Settled,
    Expired,
    Failed,
}

/// An invoice an app made or a payment it sent, as the app is told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub outgoing: bool,
    pub state: TransactionState,
    pub bolt11: Option<String>,
    pub description: Option<String>,
    pub description_hash: Option<String>,
    pub preimage: Option<String>,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub settled_at: Option<UnixTime>,
}

impl Transaction {
    /// Joins what the store kept with what the node knows now.
    pub fn of(record: &TransactionRecord, node: Option<&PaymentRecord>, now: UnixTime) -> Self {
        let state = match node.map(|n| n.status) {
            Some(PaymentStatus::Succeeded) => TransactionState::Settled,
            Some(PaymentStatus::Failed) if record.outgoing => TransactionState::Failed,
            _ if !record.outgoing && record.expires_at.is_some_and(|at| at <= now) => {
                TransactionState::Expired
            }
            Some(PaymentStatus::Failed) => TransactionState::Expired,
            _ => TransactionState::Pending,
        };
        let settled = state == TransactionState::Settled;
        Transaction {
            outgoing: record.outgoing,
            state,
            bolt11: record.bolt11.clone(),
            description: record.description.clone(),
            description_hash: record.description_hash.clone(),
            preimage: node.and_then(|n| n.preimage.clone()).filter(|_| settled),
            payment_hash: record.payment_hash.clone(),
            amount_msat: node
                .and_then(|n| n.amount_msat)
                .filter(|_| settled)
                .or(record.amount_msat)
                .unwrap_or(0),
            fee_msat: node.and_then(|n| n.fee_msat).unwrap_or(0),
            created_at: record.created_at,
            expires_at: record.expires_at,
            settled_at: node.filter(|_| settled).map(|n| n.updated_at),
        }
    }
}

/// Which of an app's transactions to list.
#[derive(Clone, Debug, Default)]
pub struct TransactionFilter {
    pub from: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// Also invoices nobody paid (yet).
    pub unpaid: bool,
    /// Only incoming (`Some(false)`) or outgoing (`Some(true)`).
    pub outgoing: Option<bool>,
}

/// An app's budget right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub total_msat: u64,
    pub used_msat: u64,
    pub renews_at: Option<UnixTime>,
    pub renewal: super::connection::Renewal,
}

/// The wallet paired apps see. Cheap to clone.
#[derive(Clone)]
pub struct Wallet {
    store: PairingStore,
    lightning: LightningHandle,
    status: StatusHandle,
}

impl Wallet {
    pub fn new(store: PairingStore, lightning: LightningHandle, status: StatusHandle) -> Self {
        Wallet {
            store,
            lightning,
            status,
        }
    }

    pub fn store(&self) -> &PairingStore {
        &self.store
    }

    pub fn lightning(&self) -> &LightningHandle {
        &self.lightning
    }

    /// The connection `id` if it may be used now; a clear refusal otherwise. Every request
    /// looks again, so a revoke takes effect for requests already waiting.
    pub async fn usable(&self, id: &str) -> Result<Connection> {
        let connection = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| PairingError::unauthorized("This connection does not exist."))?;
        let now = unix_now();
        match connection.state_at(now) {
            ConnectionState::Active => {
                // "Last used" to the minute is enough, and spares a write per request.
                if connection.last_used_at.is_none_or(|at| now >= at + 60) {
                    let _ = self.store.touch(&connection.id, now).await;
                }
                Ok(connection)
            }
            ConnectionState::WaitingForKey => Err(PairingError::unauthorized(
                "This connection is not confirmed yet: press KEY2 on the box.",
            )),
            ConnectionState::Expired => Err(PairingError::unauthorized(
                "This connection has expired: make a new one on the box's web page.",
            )),
            ConnectionState::Refused | ConnectionState::Revoked => Err(PairingError::unauthorized(
                "This connection was revoked on the box.",
            )),
        }
    }

    /// The node's facts (alias, id, network, height).
    pub fn info(&self) -> Result<NodeInfo> {
        Ok(self.lightning.node_info()?)
    }

    /// The tip bitcoind knows (hash), for apps that want it beside the height.
    pub fn best_block_hash(&self) -> Option<String> {
        self.status
            .snapshot()
            .bitcoind
            .chain
            .map(|c| c.best_block_hash)
    }

    /// What this app can spend now: the channels' sendable balance, capped by what is left
    /// of its budget (0 for a receive-only app).
    pub async fn balance_msat(&self, connection: &Connection) -> Result<u64> {
        require_spend(connection)?;
        let spendable = self.lightning.balances()?.lightning_spendable_sat * 1000;
        let left = connection
            .budget_msat
            .saturating_sub(self.store.used_msat(connection, unix_now()).await?);
        Ok(spendable.min(left))
    }

    pub async fn budget(&self, connection: &Connection) -> Result<Budget> {
        let now = unix_now();
        Ok(Budget {
            total_msat: connection.budget_msat,
            used_msat: self.store.used_msat(connection, now).await?,
            renews_at: connection
                .spend
                .then(|| super::budget::next_renewal(connection.renewal, now))
                .flatten(),
            renewal: connection.renewal,
        })
    }

    /// Reads an invoice an app sent (as the box reads any, see
    /// [`crate::lightning::payment_request`]), refusing one for another network.
    pub fn read_invoice(&self, text: &str) -> Result<Bolt11Invoice> {
        Ok(self.lightning.read_invoice(text)?)
    }

    /// Pays a BOLT11 invoice within the app's budget; waits up to `wait` for the outcome.
    pub async fn pay_invoice(
        &self,
        connection: &Connection,
        bolt11: &str,
        amount_msat: Option<u64>,
        wait: Duration,
    ) -> Result<SentPayment> {
        require_spend(connection)?;
        let prepared = self
            .lightning
            .prepare_invoice_payment(bolt11, amount_msat)
            .await?;
        let now = unix_now();
        let fee_limit = default_fee_limit_msat(prepared.amount_msat);
        let reservation = self
            .store
            .reserve(
                &connection.id,
                TransactionRecord {
                    connection_id: connection.id.clone(),
                    payment_hash: prepared.payment_hash.clone(),
                    outgoing: true,
                    bolt11: Some(prepared.bolt11.clone()),
                    description: prepared.description.clone(),
                    description_hash: None,
                    amount_msat: Some(prepared.amount_msat),
                    created_at: now,
                    expires_at: prepared.expires_at,
                    notified: false,
                },
                fee_limit,
                now,
                prepared.expires_at.unwrap_or(now).max(now) + GIVE_UP_AFTER_EXPIRY,
            )
            .await?;
        let amount = prepared.amount_msat;
        let hash = prepared.payment_hash.clone();
        match self
            .lightning
            .send_invoice_payment(prepared, Some(fee_limit))
            .await
        {
            Ok(id) => self.outcome(reservation.id, id, hash, amount, wait).await,
            Err(err) => {
                // Refused before it left: nothing was sent, the budget comes back.
                self.store.release(reservation.id, unix_now()).await?;
                Err(err.into())
            }
        }
    }

    /// Sends a keysend payment within the app's budget.
    pub async fn pay_keysend(
        &self,
        connection: &Connection,
        node_id: &str,
        amount_msat: u64,
        wait: Duration,
    ) -> Result<SentPayment> {
        require_spend(connection)?;
        let prepared = self.lightning.prepare_keysend(node_id, amount_msat).await?;
        let now = unix_now();
        let fee_limit = default_fee_limit_msat(amount_msat);
        let reservation = self
            .store
            .reserve(
                &connection.id,
                TransactionRecord {
                    connection_id: connection.id.clone(),
                    payment_hash: prepared.payment_hash.clone(),
                    outgoing: true,
                    bolt11: None,
                    description: None,
                    description_hash: None,
                    amount_msat: Some(amount_msat),
                    created_at: now,
                    expires_at: None,
                    notified: false,
                },
                fee_limit,
                now,
                now + GIVE_UP_AFTER_EXPIRY,
            )
            .await?;
        let hash = prepared.payment_hash.clone();
        match self.lightning.send_keysend(prepared, Some(fee_limit)).await {
            Ok(id) => {
                self.outcome(reservation.id, id, hash, amount_msat, wait)
                    .await
            }
            Err(err) => {
                self.store.release(reservation.id, unix_now()).await?;
                Err(err.into())
            }
        }
    }

    /// Waits for a sent payment's outcome and settles its reservation from it.
    async fn outcome(
        &self,
        reservation: i64,
        id: ldk_node::lightning::ln::channelmanager::PaymentId,
        payment_hash: String,
        amount_msat: u64,
        wait: Duration,
    ) -> Result<SentPayment> {
        match self.lightning.wait_for_payment(id, wait).await {
            Ok(summary) if summary.status == "succeeded" => {
                let record = self.lightning.payment_record(&payment_hash).ok().flatten();
                let fee = summary.fee_msat.unwrap_or(0);
                self.store
                    .settle(reservation, amount_msat + fee, unix_now())
                    .await?;
                Ok(SentPayment {
                    payment_hash,
                    preimage: record.and_then(|r| r.preimage),
                    amount_msat,
                    fee_msat: fee,
                    pending: false,
                })
            }
            // Still on its way: the reservation stays until the settler sees the outcome.
            Ok(_) => Ok(SentPayment {
                payment_hash,
                preimage: None,
                amount_msat,
                fee_msat: 0,
                pending: true,
            }),
            Err(err) if err.kind == LightningKind::PaymentFailed => {
                self.store.release(reservation, unix_now()).await?;
                Err(err.into())
            }
            // The node stopped while we waited: the settler decides after the restart.
            Err(err) => Err(err.into()),
        }
    }

    /// Makes an invoice for the app and remembers it as the app's.
    pub async fn make_invoice(
        &self,
        connection: &Connection,
        amount_msat: Option<u64>,
        description: InvoiceDescription,
        expiry_secs: u32,
    ) -> Result<Transaction> {
        // Beyond the channels' inbound capacity, a just-in-time channel within the fee the
        // owner allows apps; else a refusal that says why.
        let invoice = self
            .lightning
            .receive(
                amount_msat,
                description.clone(),
                expiry_secs,
                crate::lightning::liquidity::FeeApproval::Configured,
            )
            .await?;
        let (text, hash) = match description {
            InvoiceDescription::Text(text) => (Some(text).filter(|t| !t.is_empty()), None),
            InvoiceDescription::Hash(hash) => (None, Some(hash)),
        };
        let record = TransactionRecord {
            connection_id: connection.id.clone(),
            payment_hash: invoice.payment_hash.clone(),
            outgoing: false,
            bolt11: Some(invoice.bolt11.clone()),
            description: text,
            description_hash: hash,
            amount_msat: invoice.amount_msat,
            created_at: unix_now(),
            expires_at: Some(invoice.expires_at),
            notified: false,
        };
        self.store.record_invoice(record.clone()).await?;
        Ok(Transaction::of(&record, None, unix_now()))
    }

    /// One of the app's invoices or payments, by payment hash or by its invoice. Another
    /// app's (or the box owner's) payments are not found.
    pub async fn lookup(&self, connection: &Connection, payment_hash: &str) -> Result<Transaction> {
        let record = self
            .store
            .transaction(&connection.id, payment_hash.trim())
            .await?
            .ok_or_else(|| {
                PairingError::new(
                    ErrorKind::NotFound,
                    "This app made no invoice or payment with that payment hash.",
                )
            })?;
        Ok(self.current(&record))
    }

    /// The app's invoices and payments, newest first.
    pub async fn transactions(
        &self,
        connection: &Connection,
        filter: TransactionFilter,
    ) -> Result<Vec<Transaction>> {
        const MAX: u32 = 200;
        // Filtering happens after reading, so read enough to fill the page.
        let records = self
            .store
            .transactions(
                &connection.id,
                filter.from,
                filter.until,
                MAX * 4,
                filter.offset.unwrap_or(0),
            )
            .await?;
        let limit = filter.limit.unwrap_or(MAX).min(MAX) as usize;
        Ok(records
            .iter()
            .map(|record| self.current(record))
            .filter(|t| filter.outgoing.is_none_or(|out| t.outgoing == out))
            .filter(|t| filter.unpaid || t.outgoing || t.state == TransactionState::Settled)
            .take(limit)
            .collect())
    }

    fn current(&self, record: &TransactionRecord) -> Transaction {
        let node = self
            .lightning
            .payment_record(&record.payment_hash)
            .ok()
            .flatten()
            .filter(|n| n.inbound != record.outgoing);
        Transaction::of(record, node.as_ref(), unix_now())
    }
}

fn require_spend(connection: &Connection) -> Result<()> {
    if connection.spend {
        Ok(())
    } else {
        Err(PairingError::new(
            ErrorKind::Restricted,
            "This connection may only receive; allow spending for a new connection on the \
             box's web page.",
        ))
    }
}

/// Parses a payment hash as apps send it (64 hex characters).
pub fn parse_payment_hash(text: &str) -> Result<String> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text)
    } else {
        Err(PairingError::invalid(
            "A payment hash is 64 hex characters.",
        ))
    }
}
