//! The Lightning node's key-value store: every channel state update goes through here.
//!
//! Today it has one backing store, ldk-node's SQLite store in the data directory. That
//! store runs SQLite in its default rollback-journal mode with `synchronous=FULL`, so a
//! write has reached the disk when it returns: ldk-node acknowledges a channel update only
//! after that. The USB backup adds a mirror behind this same interface.

use ldk_node::io::sqlite_store::SqliteStore;
use ldk_node::lightning::io;
use ldk_node::lightning::util::persist::{KVStore, KVStoreSync};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

type AsyncResult<T> = Pin<Box<dyn Future<Output = Result<T, io::Error>> + Send + 'static>>;

/// File name of the database under the Lightning directory.
pub const DB_FILE: &str = "channels.sqlite";

/// The store the Lightning node is built with.
pub struct ChannelStore {
    primary: SqliteStore,
}

impl ChannelStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<ChannelStore> {
        std::fs::create_dir_all(dir)?;
        let primary = SqliteStore::new(dir.to_path_buf(), Some(DB_FILE.to_string()), None)?;
        Ok(ChannelStore { primary })
    }
}

impl KVStoreSync for ChannelStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        KVStoreSync::read(&self.primary, primary, secondary, key)
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        KVStoreSync::write(&self.primary, primary, secondary, key, buf)
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> io::Result<()> {
        KVStoreSync::remove(&self.primary, primary, secondary, key, lazy)
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        KVStoreSync::list(&self.primary, primary, secondary)
    }
}

impl KVStore for ChannelStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> AsyncResult<Vec<u8>> {
        KVStore::read(&self.primary, primary, secondary, key)
    }

    // The inner store orders concurrent writes by when they were *called*, so the call is
    // made here, synchronously, not inside the returned future.
    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> AsyncResult<()> {
        KVStore::write(&self.primary, primary, secondary, key, buf)
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> AsyncResult<()> {
        KVStore::remove(&self.primary, primary, secondary, key, lazy)
    }

    fn list(&self, primary: &str, secondary: &str) -> AsyncResult<Vec<String>> {
        KVStore::list(&self.primary, primary, secondary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ChannelStore::open(dir.path()).unwrap();
            KVStoreSync::write(&store, "monitors", "", "chan1", vec![1, 2, 3]).unwrap();
            KVStoreSync::write(&store, "monitors", "", "chan2", vec![4]).unwrap();
            KVStoreSync::remove(&store, "monitors", "", "chan2", false).unwrap();
        }
        let store = ChannelStore::open(dir.path()).unwrap();
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

    /// Durability rests on SQLite's defaults: a rollback journal (not WAL, whose commits
    /// only reach the disk at checkpoints under synchronous=NORMAL).
    #[test]
    fn the_database_uses_a_rollback_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        KVStoreSync::write(&store, "a", "", "k", vec![1]).unwrap();
        let mut header = [0u8; 20];
        use std::io::Read;
        std::fs::File::open(dir.path().join(DB_FILE))
            .unwrap()
            .read_exact(&mut header)
            .unwrap();
        // Bytes 18 and 19 of the header are 1 for rollback journals, 2 for WAL.
        assert_eq!(&header[..16], b"SQLite format 3\0");
        assert_eq!((header[18], header[19]), (1, 1));
    }
}
