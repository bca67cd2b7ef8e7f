//! Bringing a stick up to the channel store: a verified snapshot at the store's generation
//! and, to keep it attached, a fresh journal that continues exactly there.
//!
//! The stick is never written under the store's lock, and never without a time limit: a
//! dying USB stick can block I/O for minutes, and the Lightning node's writes must not
//! wait for it. So the snapshot is read under the lock (memory only), written outside it
//! on a thread of its own, and the journal is attached only if the store is still at the
//! snapshot's generation — checked under the lock, with no I/O there. If the node wrote
//! meanwhile, the snapshot is taken again; a node that never pauses gets one last attempt
//! under the lock, whose time limit (the journal's, 5 s) is then all a write may wait.

use super::copies::{self, Identity};
use super::mirror::MirrorWriter;
use crate::lightning::store::ChannelStore;
use crate::status::unix_now;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Snapshots taken outside the lock when the node keeps writing meanwhile (then, for a
/// mirror, one last attempt under it).
const ATTEMPTS_OUTSIDE_THE_LOCK: usize = 3;
/// A mirror needs only the snapshot its journal continues.
const MIRROR_SNAPSHOTS_KEPT: usize = 1;

/// Writes snapshots and starts journals on one stick, one at a time, each within a limit.
#[derive(Clone)]
pub struct Resync {
    /// Held by the thread doing the stick's I/O. A thread left behind by a hung stick
    /// keeps it until the stick answers, so a retry never races it on the same files.
    busy: Arc<Mutex<()>>,
    /// For writing, reading back and checking a whole snapshot.
    snapshot_limit: Duration,
    /// For each journal append, and for a snapshot taken under the store's lock.
    append_limit: Duration,
}

impl Resync {
    pub fn new(snapshot_limit: Duration, append_limit: Duration) -> Resync {
        Resync {
            busy: Arc::new(Mutex::new(())),
            snapshot_limit,
            append_limit,
        }
    }

    /// Snapshot mode: a verified snapshot at the store's generation (keeping `keep`). If
    /// the node wrote while it was written, it is taken again (a few times at most: the
    /// stick is about to be pulled out, and should hold the latest state).
    pub fn snapshot(
        &self,
        store: &ChannelStore,
        backup_dir: &Path,
        identity: &Identity,
        keep: usize,
    ) -> io::Result<u64> {
        let mut attempts = 0;
        loop {
            let (generation, entries) = store.snapshot()?;
            let (dir, who) = (backup_dir.to_path_buf(), identity.clone());
            self.run(self.snapshot_limit, move || {
                copies::write_snapshot(&dir, &who, generation, unix_now(), &entries, keep)
            })?;
            attempts += 1;
            if store.generation() == generation || attempts == ATTEMPTS_OUTSIDE_THE_LOCK {
                return Ok(generation);
            }
        }
    }

    /// Keep-attached: a snapshot and a fresh journal, attached to the store at the
    /// snapshot's generation. Returns that generation and the live mirror.
    pub fn start_mirror(
        &self,
        store: &ChannelStore,
        backup_dir: &Path,
        identity: &Identity,
        mount_point: Option<PathBuf>,
    ) -> io::Result<(u64, Arc<MirrorWriter>)> {
        for _ in 0..ATTEMPTS_OUTSIDE_THE_LOCK {
            let (generation, entries) = store.snapshot()?;
            let (dir, who) = (backup_dir.to_path_buf(), identity.clone());
            let journal = self.run(self.snapshot_limit, move || {
                write_snapshot_and_journal(&dir, &who, generation, &entries)
            })?;
            let writer = MirrorWriter::with_journal(
                journal,
                identity.clone(),
                generation,
                mount_point.clone(),
                self.append_limit,
            )?;
            if store.attach_mirror_at(generation, writer.clone()) {
                return Ok((generation, writer));
            }
            // The node wrote meanwhile: the snapshot misses those updates.
            writer.close();
        }
        let attached = store.snapshot_then(|generation, entries| {
            let (dir, who, entries) =
                (backup_dir.to_path_buf(), identity.clone(), entries.to_vec());
            let journal = self.run(self.append_limit, move || {
                write_snapshot_and_journal(&dir, &who, generation, &entries)
            })?;
            let writer = MirrorWriter::with_journal(
                journal,
                identity.clone(),
                generation,
                mount_point.clone(),
                self.append_limit,
            )?;
            store.attach_mirror(writer.clone());
            Ok::<_, io::Error>((generation, writer))
        })??;
        Ok(attached)
    }

    /// Runs `work` (stick I/O) on a thread of its own and waits at most `limit` for it. A
    /// stick that hangs keeps that thread, blocked in the kernel until the stick answers or
    /// is gone; the caller goes on with an error.
    fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        if self.busy.try_lock().is_err() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the stick has still not finished an earlier write (it may be failing); \
                 plugnode tries again when it answers",
            ));
        }
        let busy = Arc::clone(&self.busy);
        let (done, result) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("backup-stick".into())
            .spawn(move || {
                let _held = busy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _ = done.send(work());
            })?;
        match result.recv_timeout(limit) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the stick did not finish writing within {}",
                    in_words(limit)
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other(
                "writing to the stick stopped unexpectedly (a bug: see the log)",
            )),
        }
    }
}

fn in_words(limit: Duration) -> String {
    if limit < Duration::from_secs(1) {
        format!("{} ms", limit.as_millis())
    } else {
        format!("{} s", limit.as_secs())
    }
}

fn write_snapshot_and_journal(
    dir: &Path,
    identity: &Identity,
    generation: u64,
    entries: &[super::format::Entry],
) -> io::Result<super::mirror::Journal> {
    copies::write_snapshot(
        dir,
        identity,
        generation,
        unix_now(),
        entries,
        MIRROR_SNAPSHOTS_KEPT,
    )?;
    MirrorWriter::create_journal(dir, identity, generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::format::BackupKey;
    use ldk_node::lightning::util::persist::KVStoreSync;

    fn identity() -> Identity {
        Identity {
            node_id: [2; 33],
            key: BackupKey::from_seed(&[4; 64]),
        }
    }

    #[test]
    fn the_mirror_is_attached_at_the_snapshots_generation_and_sees_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(&dir.path().join("store")).unwrap();
        for key in ["a", "b", "c"] {
            KVStoreSync::write(&store, "m", "", key, vec![1]).unwrap();
        }
        let stick = dir.path().join("stick");
        let resync = Resync::new(Duration::from_secs(30), Duration::from_secs(5));
        let (generation, writer) = resync
            .start_mirror(&store, &stick, &identity(), None)
            .unwrap();
        assert_eq!(generation, 3);
        assert!(store.has_mirror());
        KVStoreSync::write(&store, "m", "", "d", vec![2]).unwrap();
        assert_eq!(writer.last_generation(), 4);
        let copy = &copies::find_copies(&stick)[0];
        let verified = copies::verify_copy(copy, &identity().key).unwrap();
        assert_eq!((verified.generation, verified.incomplete), (4, None));
        assert_eq!(verified.entries, store.snapshot().unwrap().1);
    }

    #[test]
    fn a_stick_that_does_not_answer_fails_within_the_limit_and_blocks_the_next_try() {
        let resync = Resync::new(Duration::from_millis(200), Duration::from_millis(200));
        let (release, stuck) = mpsc::channel::<()>();
        let err = resync
            .run(Duration::from_millis(200), move || {
                let _ = stuck.recv();
                Ok(())
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the stick did not finish writing within 200 ms"
        );
        // The stuck write still holds the stick: the next one does not pile up behind it.
        let err = resync.run(Duration::from_secs(1), || Ok(())).unwrap_err();
        assert!(
            err.to_string().contains("not finished an earlier write"),
            "{err}"
        );
        release.send(()).unwrap();
    }
}
