//! Settles what apps started and did not see finish: a reservation whose payment was still
//! in flight when the app stopped waiting (or when the box restarted) becomes what was
//! spent or is released once the node knows the outcome; an app's invoice that got paid,
//! or its payment that went out, is told to the app (NWC notifications).
//!
//! Runs after every Lightning event and every half minute; every step is idempotent.

use super::nwc::Publisher;
use super::store::Reservation;
use super::wallet::{Transaction, TransactionState, Wallet};
use super::PairingHandle;
use crate::lightning::{ErrorKind as LightningKind, PaymentRecord};
use crate::status::unix_now;
use ldk_node::payment::PaymentStatus;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

const LOOK_EVERY: Duration = Duration::from_secs(30);

pub async fn run(
    handle: PairingHandle,
    publisher: Option<Publisher>,
    mut stopped: watch::Receiver<bool>,
) {
    let wallet = handle.wallet().clone();
    let mut events = wallet.lightning().payment_events();
    loop {
        settle_once(&wallet, publisher.as_ref()).await;
        // Connections expire on their own: the count follows.
        handle.refresh_count().await;
        tokio::select! {
            _ = events.changed() => {}
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// One pass over open reservations and untold outcomes.
pub async fn settle_once(wallet: &Wallet, publisher: Option<&Publisher>) {
    let store = wallet.store();
    match store.open_reservations().await {
        Ok(reservations) => {
            for reservation in reservations {
                settle_reservation(wallet, &reservation).await;
            }
        }
        Err(err) => warn!("cannot read the apps' open payments: {err}"),
    }
    let now = unix_now();
    let untold = match store.unnotified(now).await {
        Ok(untold) => untold,
        Err(err) => {
            warn!("cannot read the apps' unsettled payments: {err}");
            return;
        }
    };
    for record in untold {
        let node = match lookup(wallet, &record.payment_hash) {
            Lookup::Found(node) if node.inbound != record.outgoing => Some(node),
            Lookup::NodeDown => return,
            _ => None,
        };
        let transaction = Transaction::of(&record, node.as_ref(), now);
        match transaction.state {
            TransactionState::Settled => {
                // Marked first: a notification is sent at most once.
                if store
                    .mark_notified(&record.connection_id, &record.payment_hash, record.outgoing)
                    .await
                    .is_err()
                {
                    continue;
                }
                if let (Some(publisher), Ok(Some(connection))) =
                    (publisher, store.get(&record.connection_id).await)
                {
                    if connection.is_usable(now) {
                        publisher.notify(&connection, &transaction).await;
                    }
                }
            }
            TransactionState::Failed => {
                let _ = store
                    .mark_notified(&record.connection_id, &record.payment_hash, true)
                    .await;
            }
            TransactionState::Pending | TransactionState::Expired => {}
        }
    }
}

async fn settle_reservation(wallet: &Wallet, reservation: &Reservation) {
    let store = wallet.store();
    let now = unix_now();
    let result = match lookup(wallet, &reservation.payment_hash) {
        Lookup::Found(node) if !node.inbound => match node.status {
            PaymentStatus::Succeeded => {
                let spent = node.amount_msat.unwrap_or(reservation.reserved_msat)
                    + node.fee_msat.unwrap_or(0);
                store.settle(reservation.id, spent, now).await
            }
            PaymentStatus::Failed => store.release(reservation.id, now).await,
            PaymentStatus::Pending => return,
        },
        Lookup::NodeDown => return,
        // The node never heard of it (the box died between reserving and sending), or
        // only as an invoice of ours. After the grace time any payment LDK had started is
        // long decided: count the reservation as spent, the safe side for a budget.
        _ if now >= reservation.give_up_at => {
            info!(
                "a payment of {} sat an app reserved was never seen by the node; its \
                 reservation counts as spent",
                reservation.reserved_msat / 1000
            );
            store
                .settle(reservation.id, reservation.reserved_msat, now)
                .await
        }
        _ => return,
    };
    if let Err(err) = result {
        warn!("cannot settle an app's payment: {err}");
    }
}

enum Lookup {
    Found(PaymentRecord),
    Unknown,
    NodeDown,
}

fn lookup(wallet: &Wallet, payment_hash: &str) -> Lookup {
    match wallet.lightning().payment_record(payment_hash) {
        Ok(Some(record)) => Lookup::Found(record),
        Ok(None) => Lookup::Unknown,
        Err(err) if err.kind == LightningKind::NotRunning => Lookup::NodeDown,
        Err(_) => Lookup::Unknown,
    }
}
