//! The live mirror: every channel-store update appended to a journal on the stick and
//! synced before the store's write returns.
//!
//! The appends run on the mirror's own thread and the store waits for each at most
//! [`MirrorWriter::TIMEOUT`]: a stick that hangs (a dying USB device can block I/O for
//! minutes) makes the mirror fail and be dropped, it never stalls the Lightning node.
//! Before each append the thread checks the stick is still mounted where it was: after a
//! lazy unmount the open journal would keep accepting writes that reach no stick.
//!
//! Every mirror starts a fresh journal: appending to an old one (whose tail may be torn,
//! or planted) would put new updates behind a record a restore stops at.

use super::copies::{journal_name, node_dir, Identity};
use super::format::{self, Change, Header, Kind};
use super::stick_files;
use crate::lightning::store::Mirror;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

struct Job {
    bytes: Vec<u8>,
    reply: mpsc::SyncSender<io::Result<()>>,
}

/// A journal file just created on the stick, not written to yet.
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// Appends updates to one journal on one stick.
pub struct MirrorWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Disconnected once the writer thread has ended (see [`MirrorWriter::close`]).
    ended: Mutex<Option<mpsc::Receiver<()>>>,
    identity: Identity,
    timeout: Duration,
    /// Why the mirror stopped, once it did.
    failure: Mutex<Option<String>>,
    /// The newest generation that is durable on the stick.
    last_generation: AtomicU64,
    journal: PathBuf,
}

impl MirrorWriter {
    /// How long one append may take before the stick counts as failed.
    pub const TIMEOUT: Duration = Duration::from_secs(5);

    /// Starts a fresh journal that continues the snapshot at `base_generation`.
    /// `mount_point`, when the stick is a real mount, is checked before every append.
    pub fn start(
        backup_dir: &Path,
        identity: Identity,
        base_generation: u64,
        mount_point: Option<PathBuf>,
        timeout: Duration,
    ) -> io::Result<Arc<MirrorWriter>> {
        let journal = MirrorWriter::create_journal(backup_dir, &identity, base_generation)?;
        MirrorWriter::with_journal(journal, identity, base_generation, mount_point, timeout)
    }

    /// The stick's part of [`Self::start`]: a new, empty, synced journal file (an old one of
    /// the same name is replaced; a link or anything else there is refused).
    pub fn create_journal(
        backup_dir: &Path,
        identity: &Identity,
        base_generation: u64,
    ) -> io::Result<Journal> {
        let dir = node_dir(backup_dir, &identity.node_id);
        let path = dir.join(journal_name(base_generation));
        let file = stick_files::create_new_for_append(&path)?;
        file.sync_all()?;
        crate::fsutil::sync_dir(&dir)?;
        Ok(Journal { file, path })
    }

    /// The rest of [`Self::start`]: the writer thread for a journal already created.
    pub fn with_journal(
        journal: Journal,
        identity: Identity,
        base_generation: u64,
        mount_point: Option<PathBuf>,
        timeout: Duration,
    ) -> io::Result<Arc<MirrorWriter>> {
        let Journal {
            file,
            path: journal,
        } = journal;
        let mount_device = match &mount_point {
            Some(point) => Some(std::fs::metadata(point)?.dev()),
            None => None,
        };
        let (jobs, incoming) = mpsc::channel::<Job>();
        // Dropped when the thread ends, that is when it has let go of the journal.
        let (finished, ended) = mpsc::sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("backup-mirror".into())
            .spawn(move || {
                let _finished = finished;
                write_loop(file, mount_point, mount_device, incoming)
            })?;
        Ok(Arc::new(MirrorWriter {
            jobs: Mutex::new(Some(jobs)),
            ended: Mutex::new(Some(ended)),
            identity,
            timeout,
            failure: Mutex::new(None),
            last_generation: AtomicU64::new(base_generation),
            journal,
        }))
    }

    /// Why it failed, if it did (the backup service turns this into the alert).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    pub fn last_generation(&self) -> u64 {
        self.last_generation.load(Ordering::Acquire)
    }

    pub fn journal(&self) -> &Path {
        &self.journal
    }

    /// Closes the journal and waits (at most the append limit) until its thread has let
    /// go of the file: the stick can be unmounted right after (an open journal made Eject
    /// answer "busy").
    pub fn close(&self) {
        self.jobs.lock().expect("jobs lock").take();
        if let Some(ended) = self.ended.lock().expect("ended lock").take() {
            let _ = ended.recv_timeout(self.timeout);
        }
    }

    fn fail(&self, why: String) -> String {
        let mut failure = self.failure.lock().expect("failure lock");
        failure.get_or_insert(why).clone()
    }
}

impl Mirror for MirrorWriter {
    fn record(&self, generation: u64, change: &Change) -> Result<(), String> {
        if let Some(why) = self.failure() {
            return Err(why);
        }
        let header = Header {
            kind: Kind::JournalRecord,
            node_id: self.identity.node_id,
            generation,
            written_at: crate::status::unix_now(),
        };
        let bytes = format::encode_record(&self.identity.key, &header, change);
        let (reply, answer) = mpsc::sync_channel(1);
        let sent = match self.jobs.lock().expect("jobs lock").as_ref() {
            Some(jobs) => jobs.send(Job { bytes, reply }).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.fail("the backup journal was closed".into()));
        }
        match answer.recv_timeout(self.timeout) {
            Ok(Ok(())) => {
                self.last_generation.store(generation, Ordering::Release);
                Ok(())
            }
            Ok(Err(err)) => Err(self.fail(describe_io_error(&err))),
            Err(_) => Err(self.fail(format!(
                "the stick did not finish writing within {} s",
                self.timeout.as_secs()
            ))),
        }
    }
}

fn write_loop(
    mut file: File,
    mount_point: Option<PathBuf>,
    mount_device: Option<u64>,
    jobs: mpsc::Receiver<Job>,
) {
    for job in jobs {
        let result = (|| {
            if let (Some(point), Some(device)) = (&mount_point, mount_device) {
                let still_there = std::fs::metadata(point).map(|m| m.dev() == device);
                if !matches!(still_there, Ok(true)) {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the stick is no longer mounted",
                    ));
                }
            }
            file.write_all(&job.bytes)?;
            file.sync_data()
        })();
        let failed = result.is_err();
        let _ = job.reply.send(result);
        if failed {
            // Nothing more goes to a stick that failed once: it is resynced when it heals.
            return;
        }
    }
}

/// Stick errors in a user's words.
pub fn describe_io_error(err: &io::Error) -> String {
    // A file refused on the stick, or a time limit: already in the user's words.
    if stick_files::refusal(err).is_some() || err.kind() == io::ErrorKind::TimedOut {
        return err.to_string();
    }
    match err.raw_os_error() {
        Some(code) if code == nix::libc::ENOSPC => {
            "the backup stick is full: use a larger stick or free space on it".into()
        }
        Some(code) if code == nix::libc::EROFS => {
            "the backup stick became read-only (its file system has errors, or its write-lock \
             switch is on)"
                .into()
        }
        Some(code) if code == nix::libc::EIO || code == nix::libc::ENODEV => {
            "the backup stick stopped answering (pulled out, or failing)".into()
        }
        _ if err.kind() == io::ErrorKind::NotFound => {
            "the backup stick was unmounted or pulled out".into()
        }
        _ => format!("writing to the backup stick failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::copies::{find_copies, load_copy, write_snapshot};
    use crate::backup::format::{BackupKey, Entry};

    fn identity() -> Identity {
        Identity {
            node_id: [2; 33],
            key: BackupKey::from_seed(&[4; 64]),
        }
    }

    fn write(key: &str, value: u8) -> Change {
        Change::Write(Entry {
            primary_namespace: "m".into(),
            secondary_namespace: "".into(),
            key: key.into(),
            value: vec![value],
        })
    }

    #[test]
    fn updates_after_a_snapshot_replay_to_the_same_state() {
        let stick = tempfile::tempdir().unwrap();
        let me = identity();
        write_snapshot(stick.path(), &me, 10, 1, &[], 2).unwrap();
        let mirror =
            MirrorWriter::start(stick.path(), me.clone(), 10, None, MirrorWriter::TIMEOUT).unwrap();
        mirror.record(11, &write("a", 1)).unwrap();
        mirror.record(12, &write("b", 2)).unwrap();
        mirror
            .record(
                13,
                &Change::Remove {
                    primary_namespace: "m".into(),
                    secondary_namespace: "".into(),
                    key: "a".into(),
                },
            )
            .unwrap();
        assert_eq!(mirror.last_generation(), 13);
        let copies = find_copies(stick.path());
        assert_eq!(copies[0].kind, "mirror");
        assert_eq!(copies[0].generation, 13);
        let (generation, entries) = load_copy(&copies[0], &me.key).unwrap();
        assert_eq!(generation, 13);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key, "b");
    }

    #[test]
    fn a_mirror_starts_a_fresh_journal_and_never_appends_behind_a_torn_record() {
        let stick = tempfile::tempdir().unwrap();
        let me = identity();
        write_snapshot(stick.path(), &me, 10, 1, &[], 2).unwrap();
        let first =
            MirrorWriter::start(stick.path(), me.clone(), 10, None, MirrorWriter::TIMEOUT).unwrap();
        first.record(11, &write("a", 1)).unwrap();
        first.close();
        // The stick was pulled mid-write: the journal ends in half a record.
        let journal = first.journal().to_path_buf();
        let mut bytes = std::fs::read(&journal).unwrap();
        bytes.extend_from_slice(&bytes.clone()[..30]);
        std::fs::write(&journal, &bytes).unwrap();

        // The box starts mirroring from the same snapshot again (nothing new meanwhile).
        let again =
            MirrorWriter::start(stick.path(), me.clone(), 10, None, MirrorWriter::TIMEOUT).unwrap();
        again.record(11, &write("b", 2)).unwrap();
        again.record(12, &write("c", 3)).unwrap();
        let copy = &find_copies(stick.path())[0];
        let verified = crate::backup::copies::verify_copy(copy, &me.key).unwrap();
        assert_eq!(verified.generation, 12, "the new updates are all readable");
        assert_eq!(verified.incomplete, None);
        let keys: Vec<&str> = verified.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
    }

    #[test]
    fn a_closed_mirror_holds_no_file_on_the_stick() {
        let stick = tempfile::tempdir().unwrap();
        let me = identity();
        write_snapshot(stick.path(), &me, 0, 1, &[], 2).unwrap();
        let mirror = MirrorWriter::start(stick.path(), me, 0, None, MirrorWriter::TIMEOUT).unwrap();
        mirror.record(1, &write("a", 1)).unwrap();
        mirror.close();
        // What the process has open (a file open on the stick keeps it from unmounting).
        let open: Vec<PathBuf> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .collect();
        assert!(!open.contains(&mirror.journal().to_path_buf()), "{open:?}");
    }

    #[test]
    fn a_vanished_mount_fails_the_mirror_instead_of_writing_nowhere() {
        let stick = tempfile::tempdir().unwrap();
        let point = stick.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        let me = identity();
        write_snapshot(stick.path(), &me, 0, 1, &[], 2).unwrap();
        let mirror = MirrorWriter::start(
            stick.path(),
            me,
            0,
            Some(point.clone()),
            MirrorWriter::TIMEOUT,
        )
        .unwrap();
        mirror.record(1, &write("a", 1)).unwrap();
        std::fs::remove_dir(&point).unwrap();
        let err = mirror.record(2, &write("a", 2)).unwrap_err();
        assert!(err.contains("unmounted"), "{err}");
        assert_eq!(mirror.failure().as_deref(), Some(err.as_str()));
        assert!(mirror.record(3, &write("a", 3)).is_err(), "stays failed");
        assert_eq!(mirror.last_generation(), 1);
    }
}
