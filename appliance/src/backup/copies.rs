//! Backup copies on a stick: writing snapshots (and checking them by reading them back),
//! finding the copies that are there, and loading one.
//!
//! Layout: `plugnode-backup/<node id>/snapshot-<generation>.pnb` and, for a live mirror,
//! `journal-<base generation>.pnj` with every update after that snapshot.
//!
//! A copy is seen two ways. Its clear headers say whose it is and how new it claims to
//! be: enough to list the copies before the words are typed ([`survey`]). Its
//! authenticated content says what it really holds ([`verify_copy`], with the key): only
//! that decides which copy is the newest and whether one is stale. Every file is read
//! through [`stick_files`] (no links, plain files of bounded size only).

use super::format::{self, BackupKey, Entry, FormatError, Header, Kind};
use super::stick_files;
use crate::fsutil;
use std::io;
use std::path::{Path, PathBuf};

/// Who writes backups: the node id (in clear on the stick) and the key (from the seed).
#[derive(Clone, Debug)]
pub struct Identity {
    pub node_id: [u8; 33],
    pub key: BackupKey,
}

impl Identity {
    /// The node id and backup key of the wallet with this seed, exactly as ldk-node derives
    /// its keys (so a restore can check whose backup it is before starting anything).
    pub fn from_seed(seed: &crate::lightning::Seed) -> Identity {
        use ldk_node::bitcoin::bip32::Xpriv;
        use ldk_node::lightning::sign::{KeysManager, NodeSigner, Recipient};
        let seed_bytes = seed.to_bytes();
        // ldk-node: the master key of the BIP39 seed is the LDK seed (the network only
        // changes how keys are printed, not the keys).
        let master = Xpriv::new_master(ldk_node::bitcoin::Network::Bitcoin, &seed_bytes)
            .expect("a 64-byte seed always gives a master key");
        let keys = KeysManager::new(&master.private_key.secret_bytes(), 0, 0, true);
        let node_id = keys
            .get_node_id(Recipient::Node)
            .expect("the node key always exists")
            .serialize();
        Identity {
            node_id,
            key: BackupKey::from_seed(&seed_bytes),
        }
    }

    pub fn node_id_hex(&self) -> String {
        hex::encode(self.node_id)
    }
}

/// The folder of one node's copies.
pub fn node_dir(backup_dir: &Path, node_id: &[u8; 33]) -> PathBuf {
    backup_dir.join(hex::encode(node_id))
}

pub fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation:020}.pnb")
}

pub fn journal_name(base_generation: u64) -> String {
    format!("journal-{base_generation:020}.pnj")
}

/// Writes a snapshot of `entries` at `generation`, reads it back to check it, and keeps
/// only the newest `keep` snapshots (with their journals). Returns the snapshot's path.
pub fn write_snapshot(
    backup_dir: &Path,
    identity: &Identity,
    generation: u64,
    written_at: u64,
    entries: &[Entry],
    keep: usize,
) -> io::Result<PathBuf> {
    let dir = node_dir(backup_dir, &identity.node_id);
    stick_files::ensure_dir(&dir, 0o700)?;
    // Anything planted under plugnode's names (a link, a FIFO, a huge file) stops the
    // backup here, named in the alert, before anything is written or deleted.
    stick_files::check_folder(&dir)?;
    let header = Header {
        kind: Kind::Snapshot,
        node_id: identity.node_id,
        generation,
        written_at,
    };
    let bytes = format::encode_snapshot(&identity.key, &header, entries);
    let path = dir.join(snapshot_name(generation));
    fsutil::write_atomic(&path, &bytes, 0o600)?;

    // Read it back from the stick, not from memory: a stick that silently loses data is
    // caught here.
    drop_page_cache(&path);
    let read = stick_files::read(&path)?;
    let (read_header, read_entries) = format::decode_snapshot(&identity.key, &read)
        .map_err(|err| io::Error::other(format!("the snapshot did not read back: {err}")))?;
    if read_header != header || read_entries != entries {
        return Err(io::Error::other(
            "the snapshot read back differs from what was written: the stick is failing",
        ));
    }
    prune(&dir, generation, keep)?;
    Ok(path)
}

/// Asks the kernel to forget the cached pages of `path`, so the next read hits the stick.
fn drop_page_cache(path: &Path) {
    if let Ok(file) = stick_files::open(path, stick_files::MAX_SNAPSHOT_BYTES) {
        let _ = nix::fcntl::posix_fadvise(
            &file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
}

/// Keeps the snapshot just written (at `written`) and the newest `keep - 1` older ones,
/// with the journals that continue those older ones (a journal of `written` belonged to
/// the snapshot just replaced). Files named after a later generation are left alone: the
/// store never goes back, so they are not this box's to judge (and a name is only a claim:
/// keeping "the newest names" deleted the real snapshot when a stick held a bigger one).
fn prune(dir: &Path, written: u64, keep: usize) -> io::Result<()> {
    let mut older: Vec<u64> = generations(dir, "snapshot-", ".pnb")?
        .into_iter()
        .filter(|g| *g < written)
        .collect();
    older.sort_unstable();
    let kept: Vec<u64> = older
        .iter()
        .rev()
        .take(keep.saturating_sub(1))
        .copied()
        .collect();
    for generation in older.iter().filter(|g| !kept.contains(g)) {
        std::fs::remove_file(dir.join(snapshot_name(*generation)))?;
    }
    for base in generations(dir, "journal-", ".pnj")? {
        if base <= written && !kept.contains(&base) {
            std::fs::remove_file(dir.join(journal_name(base)))?;
        }
    }
    fsutil::sync_dir(dir)
}

fn generations(dir: &Path, prefix: &str, suffix: &str) -> io::Result<Vec<u64>> {
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse()
                .ok()
        })
        .collect())
}

/// One restorable copy, as its clear headers describe it (claims, until verified).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Copy {
    pub node_id: String,
    /// How many channel-store updates it claims to hold.
    pub generation: u64,
    /// When its newest part was written (Unix seconds).
    pub written_at: u64,
    /// "mirror" (a snapshot and a live journal) or "snapshot".
    pub kind: &'static str,
    #[serde(skip)]
    pub snapshot: PathBuf,
    #[serde(skip)]
    pub journal: Option<PathBuf>,
    /// Why its journal cannot be read (then the copy is its snapshot alone).
    #[serde(skip)]
    pub journal_problem: Option<String>,
}

/// What a look at a stick found: the copies, and the files plugnode refused to read.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    /// Newest first, by their claims.
    pub copies: Vec<Copy>,
    /// Each refused file, named, with what to do (for the backup alert).
    pub problems: Vec<String>,
}

/// Every copy on a stick (all nodes), newest first by their claims. Needs no key.
pub fn find_copies(backup_dir: &Path) -> Vec<Copy> {
    survey(backup_dir).copies
}

/// Every copy on a stick and every file that could not be read. Needs no key.
pub fn survey(backup_dir: &Path) -> Survey {
    let mut found = Survey::default();
    let Ok(nodes) = std::fs::read_dir(backup_dir) else {
        return found;
    };
    for node in nodes.flatten() {
        let dir = node.path();
        match node.file_type() {
            Ok(kind) if kind.is_dir() => {}
            // A link where a node's folder should be is not followed.
            Ok(kind) if kind.is_symlink() => {
                if let Err(err) = stick_files::ensure_dir(&dir, 0o700) {
                    found.problems.push(err.to_string());
                }
                continue;
            }
            _ => continue,
        }
        let Ok(snapshots) = generations(&dir, "snapshot-", ".pnb") else {
            continue;
        };
        for base in snapshots {
            let snapshot = dir.join(snapshot_name(base));
            let bytes = match stick_files::read_prefix(&snapshot, format::HEADER_LEN) {
                Ok(bytes) => bytes,
                Err(err) => {
                    found.problems.push(stick_files::describe(&snapshot, &err));
                    continue;
                }
            };
            let Ok(header) = Header::decode(&bytes) else {
                continue;
            };
            let journal = dir.join(journal_name(base));
            let mut copy = Copy {
                node_id: hex::encode(header.node_id),
                generation: header.generation,
                written_at: header.written_at,
                kind: "snapshot",
                snapshot,
                journal: None,
                journal_problem: None,
            };
            match stick_files::check(&journal).and_then(|_| stick_files::read(&journal)) {
                Ok(bytes) => {
                    copy.kind = "mirror";
                    // Claims only: consecutive updates of this node after the snapshot.
                    for record in format::journal_headers(&bytes) {
                        if record.node_id != header.node_id
                            || record.generation != copy.generation + 1
                        {
                            break;
                        }
                        copy.generation = record.generation;
                        copy.written_at = record.written_at;
                    }
                    copy.journal = Some(journal);
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    copy.kind = "mirror";
                    let why = stick_files::describe(&journal, &err);
                    found.problems.push(why.clone());
                    copy.journal_problem = Some(why);
                }
            }
            found.copies.push(copy);
        }
    }
    found
        .copies
        .sort_by_key(|c| std::cmp::Reverse((c.generation, c.written_at)));
    found
}

/// What a copy really holds, from its authenticated content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The generation its last authenticated update reaches.
    pub generation: u64,
    pub written_at: u64,
    pub entries: Vec<Entry>,
    /// Why updates after `generation` may be missing (the node went on without them): a
    /// torn or damaged tail, a gap, an unreadable journal. `None`: the copy is whole.
    pub incomplete: Option<String>,
}

/// Decrypts a copy: its snapshot, then its journal's updates in order, as far as they are
/// authentic and consecutive. A snapshot that does not decrypt is an error; a journal that
/// stops early makes the copy incomplete.
pub fn verify_copy(copy: &Copy, key: &BackupKey) -> Result<Verified, FormatError> {
    let bytes = stick_files::read(&copy.snapshot)
        .map_err(|err| FormatError::Unreadable(stick_files::describe(&copy.snapshot, &err)))?;
    let (header, entries) = format::decode_snapshot(key, &bytes)?;
    let mut state: std::collections::BTreeMap<(String, String, String), Vec<u8>> = entries
        .into_iter()
        .map(|e| ((e.primary_namespace, e.secondary_namespace, e.key), e.value))
        .collect();
    let mut generation = header.generation;
    let mut written_at = header.written_at;
    let mut incomplete = copy.journal_problem.clone();
    if let Some(journal) = &copy.journal {
        let decoded = stick_files::read(journal)
            .map_err(|err| stick_files::describe(journal, &err))
            .and_then(|bytes| {
                format::decode_journal(key, &bytes)
                    .map_err(|err| format!("its journal cannot be read ({err})"))
            });
        match decoded {
            Err(why) => incomplete = Some(why),
            Ok((records, torn)) => {
                let mut stopped = None;
                for (record, change) in records {
                    if record.node_id != header.node_id {
                        stopped = Some("its journal goes on with another node's updates".into());
                        break;
                    }
                    // Updates are numbered one by one; a gap means lost updates.
                    if record.generation != generation + 1 {
                        stopped = Some(format!(
                            "its journal skips from update {generation} to update {}",
                            record.generation
                        ));
                        break;
                    }
                    apply(&mut state, change);
                    generation = record.generation;
                    written_at = written_at.max(record.written_at);
                }
                if stopped.is_none() && torn {
                    stopped = Some(
                        "its journal ends in an update that was cut short (the stick was \
                         pulled out, or the power lost, while it was written)"
                            .into(),
                    );
                }
                if stopped.is_some() {
                    incomplete = stopped;
                }
            }
        }
    }
    let entries = state
        .into_iter()
        .map(
            |((primary_namespace, secondary_namespace, key), value)| Entry {
                primary_namespace,
                secondary_namespace,
                key,
                value,
            },
        )
        .collect();
    Ok(Verified {
        generation,
        written_at,
        entries,
        incomplete,
    })
}

fn apply(
    state: &mut std::collections::BTreeMap<(String, String, String), Vec<u8>>,
    change: format::Change,
) {
    match change {
        format::Change::Write(entry) => {
            state.insert(
                (
                    entry.primary_namespace,
                    entry.secondary_namespace,
                    entry.key,
                ),
                entry.value,
            );
        }
        format::Change::Remove {
            primary_namespace,
            secondary_namespace,
            key,
        } => {
            state.remove(&(primary_namespace, secondary_namespace, key));
        }
    }
}

/// Decrypts a copy as far as it is authentic: the generation reached and the store's
/// entries (see [`verify_copy`] for whether it is whole).
pub fn load_copy(copy: &Copy, key: &BackupKey) -> Result<(u64, Vec<Entry>), FormatError> {
    verify_copy(copy, key).map(|verified| (verified.generation, verified.entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            node_id: [3; 33],
            key: BackupKey::from_seed(&[5; 64]),
        }
    }

    fn entry(key: &str, value: u8) -> Entry {
        Entry {
            primary_namespace: "m".into(),
            secondary_namespace: "".into(),
            key: key.into(),
            value: vec![value],
        }
    }

    #[test]
    fn snapshots_are_found_loaded_and_pruned() {
        let stick = tempfile::tempdir().unwrap();
        let me = identity();
        for generation in [5, 9, 12, 20] {
            write_snapshot(
                stick.path(),
                &me,
                generation,
                1000 + generation,
                &[entry("a", generation as u8)],
                3,
            )
            .unwrap();
        }
        let copies = find_copies(stick.path());
        assert_eq!(
            copies.iter().map(|c| c.generation).collect::<Vec<_>>(),
            vec![20, 12, 9],
            "the oldest was pruned, newest first"
        );
        assert!(copies.iter().all(|c| c.kind == "snapshot"));
        assert_eq!(copies[0].node_id, hex::encode([3u8; 33]));
        let (generation, entries) = load_copy(&copies[1], &me.key).unwrap();
        assert_eq!((generation, entries), (12, vec![entry("a", 12)]));
        let stranger = BackupKey::from_seed(&[6; 64]);
        assert_eq!(
            load_copy(&copies[0], &stranger).unwrap_err(),
            FormatError::WrongKeyOrDamaged
        );
    }
}
