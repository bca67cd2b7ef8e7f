//! The connection store: paired apps, what they spent, the invoices and payments they
//! made, and the Nostr requests already handled. Its own SQLite file in the data directory
//! (WAL, `synchronous=FULL`: a commit is on disk when it returns), apart from the channel
//! store: it is not channel state and never goes onto the backup stick.
//!
//! Budgets cannot be overspent: a payment's amount plus its fee limit is *reserved* in the
//! same transaction that checks the budget, before anything is handed to the Lightning
//! node; the reservation later becomes what was really spent, or is released.
//!
//! Every call runs on the blocking pool: a durable commit waits for the SD card.

use super::budget;
use super::connection::{Connection, ConnectionState, Protocol, Renewal};
use super::error::{ErrorKind, PairingError, Result};
use crate::status::UnixTime;
use rusqlite::{params, Connection as Db, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "pairing.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    protocol TEXT NOT NULL,
    spend INTEGER NOT NULL,
    budget_msat INTEGER NOT NULL,
    renewal TEXT NOT NULL,
    max_payment_msat INTEGER NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_used_at INTEGER,
    nwc_pubkey TEXT UNIQUE,
    lndhub_login TEXT UNIQUE,
    lndhub_password_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS spending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT NOT NULL,
    payment_hash TEXT NOT NULL,
    reserved_msat INTEGER NOT NULL,
    spent_msat INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    settled_at INTEGER,
    give_up_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS spending_by_connection ON spending (connection_id, state, created_at);
CREATE TABLE IF NOT EXISTS transactions (
    connection_id TEXT NOT NULL,
    payment_hash TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    bolt11 TEXT,
    description TEXT,
    description_hash TEXT,
    amount_msat INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    notified INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, payment_hash, outgoing)
);
CREATE INDEX IF NOT EXISTS transactions_by_hash ON transactions (payment_hash);
CREATE TABLE IF NOT EXISTS handled_requests (
    event_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    handled_at INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// A payment's budget reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: i64,
    pub connection_id: String,
    pub payment_hash: String,
    pub reserved_msat: u64,
    /// When a reservation the Lightning node has never heard of is counted as spent.
    pub give_up_at: UnixTime,
}

/// An invoice a connection made or a payment it sent: what the node does not keep itself
/// (the invoice text, its description), for listing and looking up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRecord {
    pub connection_id: String,
    pub payment_hash: String,
    pub outgoing: bool,
    pub bolt11: Option<String>,
    pub description: Option<String>,
    pub description_hash: Option<String>,
    pub amount_msat: Option<u64>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    /// The app was told the outcome (NWC notification).
    pub notified: bool,
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct PairingStore {
    db: Arc<Mutex<Db>>,
}

impl PairingStore {
    /// Opens (or creates) the store in `dir`, 0600.
    pub fn open(dir: &Path) -> Result<PairingStore> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(DB_FILE);
        let db = Db::open(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| PairingError::internal(format!("cannot protect {DB_FILE}: {err}")))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(SCHEMA)?;
        Ok(PairingStore {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `work` on the blocking pool with the database.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut db)
        })
        .await
        .map_err(|err| PairingError::internal(format!("the connection store stopped: {err}")))?
    }

    // --- connections ---------------------------------------------------------------------

    /// Stores a new connection (with the SHA-256 of its LNDHub password, if any).
    pub async fn insert(
        &self,
        connection: Connection,
        lndhub_password_sha256: Option<String>,
    ) -> Result<()> {
        self.run(move |db| {
            let c = &connection;
            db.execute(
                "INSERT INTO connections (id, app, protocol, spend, budget_msat, renewal, \
                 max_payment_msat, expires_at, created_at, state, last_used_at, nwc_pubkey, \
                 lndhub_login, lndhub_password_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    c.id,
                    c.app,
                    c.protocol.as_str(),
                    c.spend,
                    c.budget_msat as i64,
                    c.renewal.as_str(),
                    c.max_payment_msat as i64,
                    c.expires_at.map(|t| t as i64),
                    c.created_at as i64,
                    c.state.as_str(),
                    c.last_used_at.map(|t| t as i64),
                    c.nwc_pubkey,
                    c.lndhub_login,
                    lndhub_password_sha256,
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Connection>> {
        let id = id.to_string();
        self.run(move |db| Ok(select_one(db, "id = ?1", &id)?))
            .await
    }

    pub async fn by_nwc_pubkey(&self, pubkey_hex: &str) -> Result<Option<Connection>> {
        let key = pubkey_hex.to_string();
        self.run(move |db| Ok(select_one(db, "nwc_pubkey = ?1", &key)?))
            .await
    }

    /// The connection with this LNDHub login, and the SHA-256 of its password.
    pub async fn by_lndhub_login(&self, login: &str) -> Result<Option<(Connection, String)>> {
        let login = login.to_string();
        self.run(move |db| {
            let Some(connection) = select_one(db, "lndhub_login = ?1", &login)? else {
                return Ok(None);
            };
            let hash: Option<String> = db.query_row(
                "SELECT lndhub_password_sha256 FROM connections WHERE id = ?1",
                [&connection.id],
                |row| row.get(0),
            )?;
            Ok(hash.map(|hash| (connection, hash)))
        })
        .await
    }

    /// Every connection that was not revoked or refused, newest first, with what it used in
    /// its current budget period.
    pub async fn list(&self, now: UnixTime) -> Result<Vec<(Connection, u64)>> {
        self.run(move |db| {
            let mut statement = db.prepare(&format!(
                "SELECT {COLUMNS} FROM connections WHERE state IN ('active', 'waiting_for_key', \
                 'expired') ORDER BY created_at DESC, id"
            ))?;
            let connections: Vec<Connection> = statement
                .query_map([], read_connection)?
                .collect::<rusqlite::Result<_>>()?;
            drop(statement);
            connections
                .into_iter()
                .map(|c| {
                    let used = used_msat(db, &c, now)?;
                    Ok((c, used))
                })
                .collect()
        })
        .await
    }

    /// What `connection` used in its current period (spent plus in flight), msat.
    pub async fn used_msat(&self, connection: &Connection, now: UnixTime) -> Result<u64> {
        let connection = connection.clone();
        self.run(move |db| Ok(used_msat(db, &connection, now)?))
            .await
    }

    /// Moves a connection from one of `from` to `to`; `false` when it was in none of them.
    pub async fn set_state(
        &self,
        id: &str,
        from: &[ConnectionState],
        to: ConnectionState,
    ) -> Result<bool> {
        let id = id.to_string();
        let from: Vec<&'static str> = from.iter().map(|s| s.as_str()).collect();
        self.run(move |db| {
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<String> = tx
                .query_row(
                    "SELECT state FROM connections WHERE id = ?1",
                    [&id],
                    |row| row.get(0),
                )
                .optional()?;
            let moved = match current {
                Some(state) if from.contains(&state.as_str()) => {
                    tx.execute(
                        "UPDATE connections SET state = ?2 WHERE id = ?1",
                        params![id, to.as_str()],
                    )?;
                    true
                }
                _ => false,
            };
            tx.commit()?;
            Ok(moved)
        })
        .await
    }

    /// Notes that the app used the connection (shown on the page). Not durable on purpose:
    /// a lost "last used" costs nothing, a sync per request would.
    pub async fn touch(&self, id: &str, now: UnixTime) -> Result<()> {
        let id = id.to_string();
        self.run(move |db| {
            db.execute(
                "UPDATE connections SET last_used_at = ?2 WHERE id = ?1",
                params![id, now as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// How many connections may be used now.
    pub async fn active_count(&self, now: UnixTime) -> Result<u32> {
        self.run(move |db| {
            let count: i64 = db.query_row(
                "SELECT COUNT(*) FROM connections WHERE state = 'active' \
                 AND (expires_at IS NULL OR expires_at > ?1)",
                [now as i64],
                |row| row.get(0),
            )?;
            Ok(count as u32)
        })
        .await
    }

    /// The public keys of the NWC connections that may be used now (for the relay's write
    /// policy and the request filter).
    pub async fn active_nwc_keys(&self, now: UnixTime) -> Result<Vec<String>> {
        self.run(move |db| {
            let mut statement = db.prepare(
                "SELECT nwc_pubkey FROM connections WHERE state = 'active' AND \
                 nwc_pubkey IS NOT NULL AND (expires_at IS NULL OR expires_at > ?1)",
            )?;
            let keys = statement
                .query_map([now as i64], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(keys)
        })
        .await
    }

    // --- budgets -------------------------------------------------------------------------

    /// Reserves `amount_msat + fee_limit_msat` for a payment of `connection_id`, in one
    /// transaction with the budget check, and records the payment for the app's list.
    /// Refuses (nothing reserved) when the connection may not spend now, the payment is
    /// above its per-payment maximum, or the budget would be exceeded.
    pub async fn reserve(
        &self,
        connection_id: &str,
        payment: TransactionRecord,
        fee_limit_msat: u64,
        now: UnixTime,
        give_up_at: UnixTime,
    ) -> Result<Reservation> {
        let connection_id = connection_id.to_string();
        self.run(move |db| {
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let connection = select_one(&tx, "id = ?1", &connection_id)?
                .ok_or_else(|| PairingError::unauthorized("This connection does not exist."))?;
            check_may_spend(&connection, now)?;
            let amount = payment.amount_msat.unwrap_or(0);
            let needed = amount.saturating_add(fee_limit_msat);
            if needed > connection.max_payment_msat {
                return Err(PairingError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "This payment needs up to {} sat (amount and fee limit), more than the \
                         {} sat one payment of this app may take. Nothing was sent.",
                        needed.div_ceil(1000),
                        connection.max_payment_msat / 1000
                    ),
                ));
            }
            let used = used_msat(&tx, &connection, now)?;
            let left = connection.budget_msat.saturating_sub(used);
            if needed > left {
                return Err(PairingError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "This payment needs up to {} sat (amount and fee limit), but only {} \
                         sat of this app's budget ({}) are left{}. Nothing was sent; raise the \
                         budget on the box's web page.",
                        needed.div_ceil(1000),
                        left / 1000,
                        connection.budget_text(),
                        match budget::next_renewal(connection.renewal, now) {
                            Some(_) => " until it renews",
                            None => "",
                        }
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO spending (connection_id, payment_hash, reserved_msat, state, \
                 created_at, give_up_at) VALUES (?1, ?2, ?3, 'reserved', ?4, ?5)",
                params![
                    connection_id,
                    payment.payment_hash,
                    needed as i64,
                    now as i64,
                    give_up_at as i64
                ],
            )?;
            let id = tx.last_insert_rowid();
            insert_transaction(&tx, &payment)?;
            tx.commit()?;
            Ok(Reservation {
                id,
                connection_id,
                payment_hash: payment.payment_hash,
                reserved_msat: needed,
                give_up_at,
            })
        })
        .await
    }

    /// The payment went out: `spent_msat` (amount + fee) counts against the budget instead
    /// of the reservation. Settling twice changes nothing.
    pub async fn settle(&self, reservation: i64, spent_msat: u64, now: UnixTime) -> Result<()> {
        self.run(move |db| {
            db.execute(
                "UPDATE spending SET state = 'spent', spent_msat = ?2, settled_at = ?3 \
                 WHERE id = ?1 AND state = 'reserved'",
                params![reservation, spent_msat as i64, now as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// The payment failed or never started: its reservation is given back.
    pub async fn release(&self, reservation: i64, now: UnixTime) -> Result<()> {
        self.run(move |db| {
            db.execute(
                "UPDATE spending SET state = 'released', settled_at = ?2 \
                 WHERE id = ?1 AND state = 'reserved'",
                params![reservation, now as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// Reservations whose payment has no outcome yet (also after a restart).
    pub async fn open_reservations(&self) -> Result<Vec<Reservation>> {
        self.run(|db| {
            let mut statement = db.prepare(
                "SELECT id, connection_id, payment_hash, reserved_msat, give_up_at FROM spending \
                 WHERE state = 'reserved' ORDER BY id",
            )?;
            let reservations = statement
                .query_map([], |row| {
                    Ok(Reservation {
                        id: row.get(0)?,
                        connection_id: row.get(1)?,
                        payment_hash: row.get(2)?,
                        reserved_msat: row.get::<_, i64>(3)? as u64,
                        give_up_at: row.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(reservations)
        })
        .await
    }

    // --- the apps' invoices and payments ---------------------------------------------------

    /// Records an invoice a connection made.
    pub async fn record_invoice(&self, invoice: TransactionRecord) -> Result<()> {
        self.run(move |db| Ok(insert_transaction(db, &invoice)?))
            .await
    }

    /// A connection's invoices and payments, newest first.
    pub async fn transactions(
        &self,
        connection_id: &str,
        from: Option<UnixTime>,
        until: Option<UnixTime>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<TransactionRecord>> {
        let connection_id = connection_id.to_string();
        self.run(move |db| {
            let mut statement = db.prepare(&format!(
                "SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE connection_id = ?1 \
                 AND created_at >= ?2 AND created_at <= ?3 \
                 ORDER BY created_at DESC, payment_hash LIMIT ?4 OFFSET ?5"
            ))?;
            let records = statement
                .query_map(
                    params![
                        connection_id,
                        from.unwrap_or(0) as i64,
                        until.map(|t| t as i64).unwrap_or(i64::MAX),
                        limit,
                        offset
                    ],
                    read_transaction,
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(records)
        })
        .await
    }

    /// One of a connection's invoices or payments by its payment hash (the invoice if it
    /// has both).
    pub async fn transaction(
        &self,
        connection_id: &str,
        payment_hash: &str,
    ) -> Result<Option<TransactionRecord>> {
        let (connection_id, hash) = (connection_id.to_string(), payment_hash.to_string());
        self.run(move |db| {
            Ok(db
                .query_row(
                    &format!(
                        "SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE connection_id = ?1 \
                         AND payment_hash = ?2 ORDER BY outgoing LIMIT 1"
                    ),
                    params![connection_id, hash],
                    read_transaction,
                )
                .optional()?)
        })
        .await
    }

    /// Invoices and payments whose app has not been told the outcome yet (invoices expired
    /// more than a day ago are left out: nobody will pay them).
    pub async fn unnotified(&self, now: UnixTime) -> Result<Vec<TransactionRecord>> {
        self.run(move |db| {
            let mut statement = db.prepare(&format!(
                "SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE notified = 0 \
                 AND (outgoing = 1 OR expires_at IS NULL OR expires_at > ?1) ORDER BY created_at"
            ))?;
            let records = statement
                .query_map([now.saturating_sub(24 * 3600) as i64], read_transaction)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(records)
        })
        .await
    }

    pub async fn mark_notified(
        &self,
        connection_id: &str,
        payment_hash: &str,
        outgoing: bool,
    ) -> Result<()> {
        let (connection_id, hash) = (connection_id.to_string(), payment_hash.to_string());
        self.run(move |db| {
            db.execute(
                "UPDATE transactions SET notified = 1 WHERE connection_id = ?1 \
                 AND payment_hash = ?2 AND outgoing = ?3",
                params![connection_id, hash, outgoing],
            )?;
            Ok(())
        })
        .await
    }

    // --- Nostr requests --------------------------------------------------------------------

    /// Records that the request `event_id` is being handled. `false` when it was already:
    /// a replayed request is never executed twice (recorded *before* executing, so a crash
    /// in the middle cannot execute it again either).
    pub async fn begin_request(
        &self,
        event_id: &str,
        created_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool> {
        let event_id = event_id.to_string();
        self.run(move |db| {
            let inserted = db.execute(
                "INSERT OR IGNORE INTO handled_requests (event_id, created_at, handled_at) \
                 VALUES (?1, ?2, ?3)",
                params![event_id, created_at as i64, now as i64],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    /// The `created_at` of the newest request handled (where to subscribe from again).
    pub async fn newest_request(&self) -> Result<Option<UnixTime>> {
        self.run(|db| {
            let newest: Option<i64> =
                db.query_row("SELECT MAX(created_at) FROM handled_requests", [], |row| {
                    row.get(0)
                })?;
            Ok(newest.map(|t| t.max(0) as u64))
        })
        .await
    }

    /// Forgets handled requests older than `before` (they are refused by age anyway).
    pub async fn prune_requests(&self, before: UnixTime) -> Result<()> {
        self.run(move |db| {
            db.execute(
                "DELETE FROM handled_requests WHERE created_at < ?1 AND created_at < \
                 (SELECT MAX(created_at) FROM handled_requests)",
                [before as i64],
            )?;
            Ok(())
        })
        .await
    }
}

const COLUMNS: &str = "id, app, protocol, spend, budget_msat, renewal, max_payment_msat, \
                       expires_at, created_at, state, last_used_at, nwc_pubkey, lndhub_login";

const TRANSACTION_COLUMNS: &str = "connection_id, payment_hash, outgoing, bolt11, description, \
                                   description_hash, amount_msat, created_at, expires_at, notified";

fn select_one(db: &Db, condition: &str, value: &str) -> rusqlite::Result<Option<Connection>> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM connections WHERE {condition}"),
        [value],
        read_connection,
    )
    .optional()
}

fn read_connection(row: &Row) -> rusqlite::Result<Connection> {
    let protocol: String = row.get(2)?;
    let renewal: String = row.get(5)?;
    let state: String = row.get(9)?;
    Ok(Connection {
        id: row.get(0)?,
        app: row.get(1)?,
        protocol: if protocol == "lndhub" {
            Protocol::Lndhub
        } else {
            Protocol::Nwc
        },
        spend: row.get(3)?,
        budget_msat: row.get::<_, i64>(4)?.max(0) as u64,
        renewal: Renewal::parse(&renewal).unwrap_or(Renewal::Never),
        max_payment_msat: row.get::<_, i64>(6)?.max(0) as u64,
        expires_at: row.get::<_, Option<i64>>(7)?.map(|t| t.max(0) as u64),
        created_at: row.get::<_, i64>(8)?.max(0) as u64,
        state: ConnectionState::parse(&state),
        last_used_at: row.get::<_, Option<i64>>(10)?.map(|t| t.max(0) as u64),
        nwc_pubkey: row.get(11)?,
        lndhub_login: row.get(12)?,
    })
}

fn read_transaction(row: &Row) -> rusqlite::Result<TransactionRecord> {
    Ok(TransactionRecord {
        connection_id: row.get(0)?,
        payment_hash: row.get(1)?,
        outgoing: row.get(2)?,
        bolt11: row.get(3)?,
        description: row.get(4)?,
        description_hash: row.get(5)?,
        amount_msat: row.get::<_, Option<i64>>(6)?.map(|a| a.max(0) as u64),
        created_at: row.get::<_, i64>(7)?.max(0) as u64,
        expires_at: row.get::<_, Option<i64>>(8)?.map(|t| t.max(0) as u64),
        notified: row.get(9)?,
    })
}

fn insert_transaction(db: &Db, record: &TransactionRecord) -> rusqlite::Result<()> {
    db.execute(
        "INSERT OR IGNORE INTO transactions (connection_id, payment_hash, outgoing, bolt11, \
         description, description_hash, amount_msat, created_at, expires_at, notified) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.connection_id,
            record.payment_hash,
            record.outgoing,
            record.bolt11,
            record.description,
            record.description_hash,
            record.amount_msat.map(|a| a as i64),
            record.created_at as i64,
            record.expires_at.map(|t| t as i64),
            record.notified,
        ],
    )?;
    Ok(())
}

/// Spent in the current period plus every open reservation (a payment in flight counts
/// whatever period it started in).
fn used_msat(db: &Db, connection: &Connection, now: UnixTime) -> rusqlite::Result<u64> {
    let since = budget::period_start(connection.renewal, now);
    let used: i64 = db.query_row(
        "SELECT COALESCE(SUM(CASE WHEN state = 'reserved' THEN reserved_msat \
         WHEN state = 'spent' AND created_at >= ?2 THEN spent_msat ELSE 0 END), 0) \
         FROM spending WHERE connection_id = ?1",
        params![connection.id, since as i64],
        |row| row.get(0),
    )?;
    Ok(used.max(0) as u64)
}

fn check_may_spend(connection: &Connection, now: UnixTime) -> Result<()> {
    match connection.state_at(now) {
        ConnectionState::Active => {}
        ConnectionState::WaitingForKey => {
            return Err(PairingError::unauthorized(
                "This connection is not confirmed yet: press KEY2 on the box.",
            ))
        }
        ConnectionState::Expired => {
            return Err(PairingError::unauthorized(
                "This connection has expired: make a new one on the box's web page.",
            ))
        }
        ConnectionState::Refused | ConnectionState::Revoked => {
            return Err(PairingError::unauthorized(
                "This connection was revoked on the box.",
            ))
        }
    }
    if !connection.spend {
        return Err(PairingError::new(
            ErrorKind::Restricted,
            "This connection may only receive; allow spending for a new connection on the \
             box's web page.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_796_830_200; // a Wednesday, 15:30 UTC

    fn spender(id: &str, budget_sat: u64, renewal: Renewal) -> Connection {
        Connection {
            id: id.into(),
            app: "Zeus".into(),
            protocol: Protocol::Nwc,
            spend: true,
            budget_msat: budget_sat * 1000,
            renewal,
            max_payment_msat: budget_sat * 1000,
            expires_at: None,
            created_at: NOW,
            state: ConnectionState::Active,
            last_used_at: None,
            nwc_pubkey: Some(format!("key-{id}")),
            lndhub_login: None,
        }
    }

    fn payment(connection: &str, hash: &str, amount_sat: u64) -> TransactionRecord {
        TransactionRecord {
            connection_id: connection.into(),
            payment_hash: hash.into(),
            outgoing: true,
            bolt11: None,
            description: None,
            description_hash: None,
            amount_msat: Some(amount_sat * 1000),
            created_at: NOW,
            expires_at: None,
            notified: false,
        }
    }

    async fn store_with(connection: Connection) -> (tempfile::TempDir, PairingStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = PairingStore::open(dir.path()).unwrap();
        store.insert(connection, None).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn reservations_count_until_settled_or_released() {
        let (_dir, store) = store_with(spender("a", 10_000, Renewal::Daily)).await;
        let first = store
            .reserve("a", payment("a", "h1", 6_000), 100_000, NOW, NOW + 60)
            .await
            .unwrap();
        assert_eq!(first.reserved_msat, 6_100_000);
        // 3 900 sat left: a 4 000 sat payment is refused before anything is sent.
        let err = store
            .reserve("a", payment("a", "h2", 4_000), 0, NOW, NOW + 60)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::QuotaExceeded);
        assert!(err.message.contains("3900 sat"), "{}", err.message);
        // The real fee was lower: what is left grows.
        store.settle(first.id, 6_010_000, NOW).await.unwrap();
        let connection = store.get("a").await.unwrap().unwrap();
        assert_eq!(store.used_msat(&connection, NOW).await.unwrap(), 6_010_000);
        let second = store
            .reserve("a", payment("a", "h2", 3_000), 0, NOW, NOW + 60)
            .await
            .unwrap();
        store.release(second.id, NOW).await.unwrap();
        // Settling or releasing again changes nothing.
        store.settle(second.id, 3_000_000, NOW).await.unwrap();
        assert_eq!(store.used_msat(&connection, NOW).await.unwrap(), 6_010_000);
        assert!(store.open_reservations().await.unwrap().is_empty());
        // The next day the budget is whole again.
        assert_eq!(store.used_msat(&connection, NOW + 86_400).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn parallel_reservations_never_exceed_the_budget() {
        let (_dir, store) = store_with(spender("a", 10_000, Renewal::Never)).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .reserve("a", payment("a", &format!("h{i}"), 1_000), 0, NOW, NOW)
                        .await
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                granted += 1;
            }
        }
        assert_eq!(granted, 10);
        assert_eq!(store.open_reservations().await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn only_active_spending_connections_may_reserve() {
        let mut receive_only = spender("r", 0, Renewal::Never);
        receive_only.spend = false;
        let (_dir, store) = store_with(receive_only).await;
        let err = store
            .reserve("r", payment("r", "h", 1), 0, NOW, NOW)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Restricted);

        store
            .insert(spender("s", 1_000, Renewal::Never), None)
            .await
            .unwrap();
        let revoked = store
            .set_state("s", &[ConnectionState::Active], ConnectionState::Revoked)
            .await
            .unwrap();
        assert!(revoked);
        let err = store
            .reserve("s", payment("s", "h", 1), 0, NOW, NOW)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(store
            .list(NOW)
            .await
            .unwrap()
            .iter()
            .all(|(c, _)| c.id != "s"));
    }

    #[tokio::test]
    async fn a_payment_above_the_per_payment_maximum_is_refused() {
        let mut capped = spender("a", 10_000, Renewal::Never);
        capped.max_payment_msat = 2_000_000;
        let (_dir, store) = store_with(capped).await;
        let err = store
            .reserve("a", payment("a", "h", 2_000), 1_000, NOW, NOW)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::QuotaExceeded);
        assert!(err.message.contains("one payment"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_request_is_handled_once_and_survives_a_reopen() {
        let (dir, store) = store_with(spender("a", 1, Renewal::Never)).await;
        assert!(store.begin_request("e1", NOW - 5, NOW).await.unwrap());
        assert!(!store.begin_request("e1", NOW - 5, NOW).await.unwrap());
        drop(store);
        let store = PairingStore::open(dir.path()).unwrap();
        assert!(!store.begin_request("e1", NOW - 5, NOW).await.unwrap());
        assert_eq!(store.newest_request().await.unwrap(), Some(NOW - 5));
        let reservation = store
            .reserve("a", payment("a", "h", 0), 1, NOW, NOW)
            .await
            .unwrap();
        drop(store);
        let store = PairingStore::open(dir.path()).unwrap();
        assert_eq!(store.open_reservations().await.unwrap(), vec![reservation]);
    }

    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        PairingStore::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
