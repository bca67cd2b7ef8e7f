//! The Lightning node's key-value store: every channel state update goes through here.
//!
//! One SQLite database on the SD card (WAL, `synchronous=FULL`: a commit is on disk when
//! it returns) holds the keys and a *generation*, the number of updates so far, bumped in
//! the same transaction as each update. When a backup stick is attached, a [`Mirror`]
//! records each update on the stick too, before the write returns: ldk-node acknowledges
//! a channel update only after both copies are durable. A mirror that fails is dropped on
//! the spot (the write still succeeds on the SD card) and the backup service raises the
//! alert and later heals it with a full resync.
//!
//! Why not ldk-node's own `SqliteStore`: the generation must commit in the same
//! transaction as the data it counts, or a power cut between the two would leave the SD
//! card and the stick disagreeing about how new they are.

use ldk_node::lightning::io;
use ldk_node::lightning::util::persist::{KVStore, KVStoreSync};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

type AsyncResult<T> = Pin<Box<dyn Future<Output = Result<T, io::Error>> + Send + 'static>>;

/// File name of the database under the Lightning directory.
pub const DB_FILE: &str = "channels.sqlite";

/// One key of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub primary_namespace: String,
    pub secondary_namespace: String,
    pub key: String,
    pub value: Vec<u8>,
}

/// One update of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Write(Entry),
    Remove {
        primary_namespace: String,
        secondary_namespace: String,
        key: String,
    },
}

/// A second, durable copy of every update (the backup stick).
pub trait Mirror: Send + Sync {
    /// Records `change`, which made the store's generation `generation`. Durable before
    /// it returns `Ok`; must give up (with an error) rather than block for long.
    fn record(&self, generation: u64, change: &Change) -> Result<(), String>;
}

/// The store the Lightning node is built with. Cheap to clone (shared).
#[derive(Clone)]
pub struct ChannelStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Db>,
    mirror: RwLock<Option<Arc<dyn Mirror>>>,
    /// Async writes take a version when they are *called*; a write that reaches the
    /// database after a newer one for the same key is dropped (LDK's ordering rule).
    next_version: AtomicU64,
}

struct Db {
    connection: Connection,
    generation: u64,
    applied_versions: HashMap<(String, String, String), u64>,
    /// Lazy removals not committed yet (see `remove_lazily`).
    pending_removals: Vec<(String, String, String)>,
}

impl ChannelStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<ChannelStore> {
        std::fs::create_dir_all(dir)?;
        let connection = Connection::open(dir.join(DB_FILE)).map_err(sql)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 CREATE TABLE IF NOT EXISTS kv (
                     primary_namespace TEXT NOT NULL,
                     secondary_namespace TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value BLOB NOT NULL,
                     PRIMARY KEY (primary_namespace, secondary_namespace, key)
                 );
                 CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
            )
            .map_err(sql)?;
        let generation: u64 = connection
            .query_row(
                "SELECT value FROM meta WHERE name = 'generation'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map_err(sql)?
            .unwrap_or(0) as u64;
        Ok(ChannelStore {
            inner: Arc::new(Inner {
                db: Mutex::new(Db {
                    connection,
                    generation,
                    applied_versions: HashMap::new(),
                    pending_removals: Vec::new(),
                }),
                mirror: RwLock::new(None),
                next_version: AtomicU64::new(1),
            }),
        })
    }

    /// Updates so far.
    pub fn generation(&self) -> u64 {
        self.inner.db.lock().expect("store lock").generation
    }

    /// Whether the store holds anything (a fresh box holds nothing).
    pub fn is_empty(&self) -> io::Result<bool> {
        let db = self.inner.db.lock().expect("store lock");
        let count: i64 = db
            .connection
            .query_row("SELECT COUNT(*) FROM kv", [], |row| row.get(0))
            .map_err(sql)?;
        Ok(count == 0)
    }

    /// Every key and the generation they are at, read consistently; with `then`, runs it
    /// while no update can slip in (to attach a mirror exactly at this generation).
    pub fn snapshot_then<T>(&self, then: impl FnOnce(u64, &[Entry]) -> T) -> io::Result<T> {
        let db = self.inner.db.lock().expect("store lock");
        let mut statement = db
            .connection
            .prepare(
                "SELECT primary_namespace, secondary_namespace, key, value FROM kv \
                 ORDER BY primary_namespace, secondary_namespace, key",
            )
            .map_err(sql)?;
        let entries = statement
            .query_map([], |row| {
                Ok(Entry {
                    primary_namespace: row.get(0)?,
                    secondary_namespace: row.get(1)?,
                    key: row.get(2)?,
                    value: row.get(3)?,
                })
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        // The backup's view: derived data left out, lazy removals already applied.
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| is_backed_up(&e.primary_namespace, &e.key))
            .filter(|e| {
                !db.pending_removals.iter().any(|(p, s, k)| {
                    *p == e.primary_namespace && *s == e.secondary_namespace && *k == e.key
                })
            })
            .collect();
        Ok(then(db.generation, &entries))
    }

    /// Every key and the store's generation.
    pub fn snapshot(&self) -> io::Result<(u64, Vec<Entry>)> {
        self.snapshot_then(|generation, entries| (generation, entries.to_vec()))
    }

    /// Fills an empty store from a backup (restore), at the backup's generation.
    pub fn restore(&self, generation: u64, entries: &[Entry]) -> io::Result<()> {
        let mut db = self.inner.db.lock().expect("store lock");
        let transaction = db.connection.transaction().map_err(sql)?;
        let existing: i64 = transaction
            .query_row("SELECT COUNT(*) FROM kv", [], |row| row.get(0))
            .map_err(sql)?;
        if existing != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the channel store is not empty; a restore needs a fresh box",
            ));
        }
        for entry in entries {
            transaction
                .execute(
                    "INSERT INTO kv VALUES (?1, ?2, ?3, ?4)",
                    params![
                        entry.primary_namespace,
                        entry.secondary_namespace,
                        entry.key,
                        entry.value
                    ],
                )
                .map_err(sql)?;
        }
        set_generation(&transaction, generation)?;
        transaction.commit().map_err(sql)?;
        db.generation = generation;
        Ok(())
    }

    /// Starts mirroring every update to `mirror`. Call it inside [`Self::snapshot_then`]'s
    /// closure's aftermath only if the mirror holds that snapshot: the backup service does.
    pub fn attach_mirror(&self, mirror: Arc<dyn Mirror>) {
        *self.inner.mirror.write().expect("mirror lock") = Some(mirror);
    }

    /// Starts mirroring every update to `mirror` if the store is still at `generation`,
    /// the generation the mirror's copy holds; `false` (nothing attached) when updates came
    /// in meanwhile. Only memory under the lock: no stick I/O ever holds up a write.
    pub fn attach_mirror_at(&self, generation: u64, mirror: Arc<dyn Mirror>) -> bool {
        let db = self.inner.db.lock().expect("store lock");
        if db.generation != generation {
            return false;
        }
        // Still under the store's lock: the next update goes to this mirror.
        *self.inner.mirror.write().expect("mirror lock") = Some(mirror);
        true
    }

    /// Stops mirroring (eject, or the stick failed).
    pub fn detach_mirror(&self) {
        *self.inner.mirror.write().expect("mirror lock") = None;
    }

    pub fn has_mirror(&self) -> bool {
        self.inner.mirror.read().expect("mirror lock").is_some()
    }

    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        let db = self.inner.db.lock().expect("store lock");
        let removed = db
            .pending_removals
            .iter()
            .any(|(p, s, k)| p == primary && s == secondary && k == key);
        if removed {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no key {primary}/{secondary}/{key}"),
            ));
        }
        db.connection
            .query_row(
                "SELECT value FROM kv WHERE primary_namespace = ?1 AND secondary_namespace = ?2 \
                 AND key = ?3",
                params![primary, secondary, key],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql)?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no key {primary}/{secondary}/{key}"),
                )
            })
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        let db = self.inner.db.lock().expect("store lock");
        let mut statement = db
            .connection
            .prepare_cached(
                "SELECT key FROM kv WHERE primary_namespace = ?1 AND secondary_namespace = ?2",
            )
            .map_err(sql)?;
        let keys = statement
            .query_map(params![primary, secondary], |row| row.get(0))
            .map_err(sql)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sql)?;
        Ok(keys
            .into_iter()
            .filter(|key| {
                !db.pending_removals
                    .iter()
                    .any(|(p, s, k)| p == primary && s == secondary && k == key)
            })
            .collect())
    }

    fn new_version(&self) -> u64 {
        self.inner.next_version.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies one update (unless a newer one for the same key got there first), commits
    /// it with the next generation, and mirrors it.
    fn apply(&self, version: u64, change: Change) -> io::Result<()> {
        let slot = slot_of(&change);
        if slot.2.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty store key",
            ));
        }
        let mut db = self.inner.db.lock().expect("store lock");
        if db
            .applied_versions
            .get(&slot)
            .is_some_and(|applied| *applied > version)
        {
            return Ok(());
        }
        // A write cancels a lazy removal of the same key still waiting (LDK's rule); lazy
        // removals waiting for other keys ride along in this transaction.
        db.pending_removals.retain(|pending| *pending != slot);
        let mut changes: Vec<Change> = std::mem::take(&mut db.pending_removals)
            .into_iter()
            .map(
                |(primary_namespace, secondary_namespace, key)| Change::Remove {
                    primary_namespace,
                    secondary_namespace,
                    key,
                },
            )
            .collect();
        changes.push(change);

        let mut generation = db.generation;
        let mut recorded = Vec::new();
        let transaction = db.connection.transaction().map_err(sql)?;
        for change in changes {
            let (primary, secondary, key) = slot_of(&change);
            match &change {
                Change::Write(entry) => transaction.execute(
                    "INSERT OR REPLACE INTO kv VALUES (?1, ?2, ?3, ?4)",
                    params![primary, secondary, key, entry.value],
                ),
                Change::Remove { .. } => transaction.execute(
                    "DELETE FROM kv WHERE primary_namespace = ?1 AND secondary_namespace = ?2 \
                     AND key = ?3",
                    params![primary, secondary, key],
                ),
            }
            .map_err(sql)?;
            if is_backed_up(&primary, &key) {
                generation += 1;
                recorded.push((generation, change));
            }
        }
        set_generation(&transaction, generation)?;
        transaction.commit().map_err(sql)?;
        db.generation = generation;
        db.applied_versions.insert(slot, version);

        // Still under the lock: the mirror sees updates in generation order.
        let mirror = self.inner.mirror.read().expect("mirror lock").clone();
        if let Some(mirror) = mirror {
            for (generation, change) in &recorded {
                if let Err(err) = mirror.record(*generation, change) {
                    tracing::error!(
                        "the backup stick missed update {generation}: {err}; the channel state \
                         is on the SD card only until the stick is healed"
                    );
                    self.detach_mirror();
                    break;
                }
            }
        }
        Ok(())
    }

    /// A removal LDK allows to be lost in a crash (old monitor updates it ignores anyway):
    /// kept in memory and committed with the next write, saving a sync of its own.
    fn remove_lazily(&self, version: u64, slot: (String, String, String)) {
        let mut db = self.inner.db.lock().expect("store lock");
        if db
            .applied_versions
            .get(&slot)
            .is_some_and(|applied| *applied > version)
        {
            return;
        }
        db.applied_versions.insert(slot.clone(), version);
        if !db.pending_removals.contains(&slot) {
            db.pending_removals.push(slot);
        }
    }

    fn apply_async(&self, change: Change) -> AsyncResult<()> {
        let version = self.new_version();
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.apply(version, change))
                .await
                .unwrap_or_else(|err| {
                    Err(io::Error::new(
                        io::ErrorKind::Other,
                        format!("store task failed: {err}"),
                    ))
                })
        })
    }
}

fn slot_of(change: &Change) -> (String, String, String) {
    match change {
        Change::Write(entry) => (
            entry.primary_namespace.clone(),
            entry.secondary_namespace.clone(),
            entry.key.clone(),
        ),
        Change::Remove {
            primary_namespace,
            secondary_namespace,
            key,
        } => (
            primary_namespace.clone(),
            secondary_namespace.clone(),
            key.clone(),
        ),
    }
}

/// Keys that are not channel state: the network graph and the pathfinding scores (tens of
/// megabytes on mainnet, rebuilt from gossip after a restore). They are kept on the SD
/// card but neither counted in the generation nor backed up.
const DERIVED_KEYS: [&str; 3] = [
    "network_graph",
    "scorer",
    "external_pathfinding_scores_cache",
];

pub fn is_backed_up(primary: &str, key: &str) -> bool {
    !(primary.is_empty() && DERIVED_KEYS.contains(&key))
}

fn set_generation(transaction: &rusqlite::Transaction, generation: u64) -> io::Result<()> {
    transaction
        .execute(
            "INSERT OR REPLACE INTO meta VALUES ('generation', ?1)",
            params![generation as i64],
        )
        .map(|_| ())
        .map_err(sql)
}

fn sql(err: rusqlite::Error) -> io::Error {
    io::Error::new(io::ErrorKind::Other, format!("channel store: {err}"))
}

fn write_change(primary: &str, secondary: &str, key: &str, value: Vec<u8>) -> Change {
    Change::Write(Entry {
        primary_namespace: primary.to_string(),
        secondary_namespace: secondary.to_string(),
        key: key.to_string(),
        value,
    })
}

fn remove_change(primary: &str, secondary: &str, key: &str) -> Change {
    Change::Remove {
        primary_namespace: primary.to_string(),
        secondary_namespace: secondary.to_string(),
        key: key.to_string(),
    }
}

impl KVStoreSync for ChannelStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        ChannelStore::read(self, primary, secondary, key)
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        let version = self.new_version();
        self.apply(version, write_change(primary, secondary, key, buf))
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> io::Result<()> {
        let version = self.new_version();
        if lazy {
            self.remove_lazily(version, slot_of(&remove_change(primary, secondary, key)));
            return Ok(());
        }
        self.apply(version, remove_change(primary, secondary, key))
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        ChannelStore::list(self, primary, secondary)
    }
}

impl KVStore for ChannelStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> AsyncResult<Vec<u8>> {
        let (store, primary, secondary, key) = (
            self.clone(),
            primary.to_string(),
            secondary.to_string(),
            key.to_string(),
        );
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.read(&primary, &secondary, &key))
                .await
                .unwrap_or_else(|err| {
                    Err(io::Error::new(
                        io::ErrorKind::Other,
                        format!("store task failed: {err}"),
                    ))
                })
        })
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> AsyncResult<()> {
        self.apply_async(write_change(primary, secondary, key, buf))
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> AsyncResult<()> {
        if lazy {
            let version = self.new_version();
            self.remove_lazily(version, slot_of(&remove_change(primary, secondary, key)));
            return Box::pin(async { Ok(()) });
        }
        self.apply_async(remove_change(primary, secondary, key))
    }

    fn list(&self, primary: &str, secondary: &str) -> AsyncResult<Vec<String>> {
        let (store, primary, secondary) =
            (self.clone(), primary.to_string(), secondary.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.list(&primary, &secondary))
                .await
                .unwrap_or_else(|err| {
                    Err(io::Error::new(
                        io::ErrorKind::Other,
                        format!("store task failed: {err}"),
                    ))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_after_reopening_with_its_generation() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ChannelStore::open(dir.path()).unwrap();
            assert!(store.is_empty().unwrap());
            KVStoreSync::write(&store, "monitors", "", "chan1", vec![1, 2, 3]).unwrap();
            KVStoreSync::write(&store, "monitors", "", "chan2", vec![4]).unwrap();
            KVStoreSync::remove(&store, "monitors", "", "chan2", false).unwrap();
            assert_eq!(store.generation(), 3);
        }
        let store = ChannelStore::open(dir.path()).unwrap();
        assert_eq!(store.generation(), 3);
        assert_eq!(
            KVStoreSync::read(&store, "monitors", "", "chan1").unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            KVStoreSync::list(&store, "monitors", "").unwrap(),
            vec!["chan1".to_string()]
        );
        let missing = KVStoreSync::read(&store, "monitors", "", "chan2").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    struct Recorder(Mutex<Vec<(u64, Change)>>, bool);

    impl Mirror for Recorder {
        fn record(&self, generation: u64, change: &Change) -> Result<(), String> {
            if self.1 {
                return Err("stick gone".into());
            }
            self.0.lock().unwrap().push((generation, change.clone()));
            Ok(())
        }
    }

    #[test]
    fn the_mirror_sees_every_update_in_order_and_a_failing_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        KVStoreSync::write(&store, "a", "", "before", vec![0]).unwrap();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new()), false));
        store.attach_mirror(recorder.clone());
        KVStoreSync::write(&store, "a", "", "k", vec![1]).unwrap();
        KVStoreSync::remove(&store, "a", "", "k", false).unwrap();
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].0, seen[1].0), (2, 3));
        assert!(matches!(&seen[1].1, Change::Remove { key, .. } if key == "k"));

        store.attach_mirror(Arc::new(Recorder(Mutex::new(Vec::new()), true)));
        // The stick fails: the write still succeeds on the SD card, the mirror is gone.
        KVStoreSync::write(&store, "a", "", "k2", vec![2]).unwrap();
        assert!(!store.has_mirror());
        assert_eq!(KVStoreSync::read(&store, "a", "", "k2").unwrap(), vec![2]);
    }

    #[test]
    fn lazy_removals_ride_with_the_next_write_and_a_write_cancels_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new()), false));
        store.attach_mirror(recorder.clone());
        KVStoreSync::write(&store, "updates", "m", "1", vec![1]).unwrap();
        KVStoreSync::write(&store, "updates", "m", "2", vec![2]).unwrap();
        assert_eq!(store.generation(), 2);
        KVStoreSync::remove(&store, "updates", "m", "1", true).unwrap();
        KVStoreSync::remove(&store, "updates", "m", "2", true).unwrap();
        // Gone for readers at once, committed later.
        assert!(KVStoreSync::read(&store, "updates", "m", "1").is_err());
        assert!(KVStoreSync::list(&store, "updates", "m")
            .unwrap()
            .is_empty());
        assert_eq!(store.generation(), 2);
        // A write to one of them cancels its removal.
        KVStoreSync::write(&store, "updates", "m", "2", vec![3]).unwrap();
        assert_eq!(store.generation(), 4, "the removal of 1 and the write of 2");
        assert_eq!(
            KVStoreSync::read(&store, "updates", "m", "2").unwrap(),
            vec![3]
        );
        let seen: Vec<u64> = recorder.0.lock().unwrap().iter().map(|(g, _)| *g).collect();
        assert_eq!(seen, vec![1, 2, 3, 4], "the mirror gets them in order");
        drop(store);
        let store = ChannelStore::open(dir.path()).unwrap();
        assert!(KVStoreSync::read(&store, "updates", "m", "1").is_err());
    }

    #[test]
    fn the_network_graph_is_kept_but_not_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new()), false));
        store.attach_mirror(recorder.clone());
        KVStoreSync::write(&store, "", "", "network_graph", vec![0; 1000]).unwrap();
        KVStoreSync::write(&store, "", "", "manager", vec![1]).unwrap();
        assert_eq!(store.generation(), 1);
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
        assert_eq!(store.snapshot().unwrap().1.len(), 1);
        assert_eq!(
            KVStoreSync::read(&store, "", "", "network_graph")
                .unwrap()
                .len(),
            1000
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_async_write_never_overwrites_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        // Versions are taken at call time: the first call is older even if it lands last.
        let old = store.new_version();
        let new = store.new_version();
        store
            .apply(new, write_change("m", "", "k", vec![2]))
            .unwrap();
        store
            .apply(old, write_change("m", "", "k", vec![1]))
            .unwrap();
        assert_eq!(ChannelStore::read(&store, "m", "", "k").unwrap(), vec![2]);
        KVStore::write(&store, "m", "", "k", vec![3]).await.unwrap();
        assert_eq!(ChannelStore::read(&store, "m", "", "k").unwrap(), vec![3]);
    }

    #[test]
    fn restore_fills_only_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        let entries = vec![Entry {
            primary_namespace: "m".into(),
            secondary_namespace: "".into(),
            key: "k".into(),
            value: vec![7],
        }];
        store.restore(41, &entries).unwrap();
        assert_eq!(store.generation(), 41);
        assert_eq!(store.snapshot().unwrap(), (41, entries.clone()));
        assert_eq!(
            store.restore(1, &entries).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }
}
