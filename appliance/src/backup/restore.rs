//! Restoring a fresh box from a backup stick and the 24 words.
//!
//! The words give the node id and the backup key; the stick's clear headers say whose
//! copies it holds and how new they claim to be. A copy of another node is refused. Which
//! copy is the newest, and whether the chosen one is whole, is decided from the decrypted,
//! authenticated content only: a header can claim anything. The newest copy is restored;
//! an older one, or one whose journal ends in a torn record or skips an update ("stale":
//! the node made updates it does not hold), is refused unless the user insists, and then
//! the node starts in *recovery mode*: it makes no
//! payments, opens and force-closes nothing, and lets its peers close the channels. When a
//! peer shows it holds a newer channel state (the channel re-establishment every
//! reconnection starts with), LDK closes the channel without broadcasting our own old
//! commitment (which would hand the peer the whole channel as a penalty); the peer
//! broadcasts its latest commitment and our side of it comes back to the on-chain wallet.
//! Recovery mode ends when no channel is left.
//!
//! What recovery mode cannot rule out: a copy taken while a payment was in flight holds
//! an HTLC whose timeout LDK acts on by itself if the peer stays away until it expires.

use super::copies::{self, Identity};
use super::error::BackupError;
use super::format::FormatError;
use crate::lightning::{LightningHandle, Seed, SeedError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize)]
pub struct RestoreRequest {
    /// The 24 words.
    pub words: String,
    /// Which copy (by generation); the newest when absent.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Restore an older copy anyway, in recovery mode.
    #[serde(default)]
    pub insist: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoreOutcome {
    pub node_id: String,
    pub generation: u64,
    pub written_at: u64,
    pub recovery_mode: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// No stick to restore from, or the service cannot read it.
    #[error(transparent)]
    Stick(BackupError),
    #[error(
        "This box already has a wallet or channel state: restoring would overwrite it. \
         Restore only onto a fresh SD card."
    )]
    NotFresh,
    #[error("{0}")]
    Words(SeedError),
    #[error("The stick holds no plugnode backup.")]
    NoBackup,
    #[error(
        "The stick holds backups of another node ({found}), not of the wallet these words \
         belong to ({ours}). Check that this is the right stick and the right words."
    )]
    OtherNode { ours: String, found: String },
    #[error("There is no copy with generation {0} on the stick.")]
    NoSuchCopy(u64),
    #[error(
        "This copy (generation {chosen}) is not the node's latest state: {why}. Restoring it \
         could lose the channels' funds. Restore the newest whole copy if there is one, or \
         insist to restore this one in recovery mode (your peers close the channels; your \
         balance returns on-chain)."
    )]
    Stale { chosen: u64, why: String },
    #[error("The backup could not be read: {0}.")]
    Damaged(FormatError),
    #[error("The restored state could not be written to the SD card: {0}")]
    Store(String),
}

impl RestoreError {
    /// A stable kind for the web page.
    pub fn kind(&self) -> &'static str {
        match self {
            RestoreError::Stick(err) => err.kind(),
            RestoreError::NotFresh => "not_fresh",
            RestoreError::Words(_) => "wrong_words",
            RestoreError::NoBackup => "no_backup",
            RestoreError::OtherNode { .. } => "other_node",
            RestoreError::NoSuchCopy(_) => "no_such_copy",
            RestoreError::Stale { .. } => "stale",
            RestoreError::Damaged(_) => "damaged",
            RestoreError::Store(_) => "store",
        }
    }
}

/// Restores from the copies in `backup_dir` (plugnode's folder on the mounted stick).
pub fn restore(
    backup_dir: &std::path::Path,
    request: RestoreRequest,
    lightning: &LightningHandle,
) -> Result<RestoreOutcome, RestoreError> {
    let store = lightning.store();
    let fresh = !lightning.has_seed() && store.is_empty().unwrap_or(false);
    if !fresh {
        return Err(RestoreError::NotFresh);
    }
    let seed = Seed::from_words(&request.words).map_err(RestoreError::Words)?;
    let identity = Identity::from_seed(&seed);
    let ours = identity.node_id_hex();
    let all = copies::find_copies(backup_dir);
    if all.is_empty() {
        return Err(RestoreError::NoBackup);
    }
    let mine: Vec<&copies::Copy> = all.iter().filter(|c| c.node_id == ours).collect();
    if mine.is_empty() {
        let mut found: Vec<String> = all.iter().map(|c| short_id(&c.node_id)).collect();
        found.dedup();
        return Err(RestoreError::OtherNode {
            ours: short_id(&ours),
            found: found.join(", "),
        });
    }
    let decision = decide(&mine, &identity.key, request.generation)?;
    let Decision {
        verified,
        newest,
        stale,
    } = decision;
    if let Some(why) = &stale {
        if !request.insist {
            return Err(RestoreError::Stale {
                chosen: verified.generation,
                why: why.clone(),
            });
        }
    }
    let stale = stale.is_some();
    let (generation, written_at) = (verified.generation, verified.written_at);
    let mut entries = verified.entries;
    if stale {
        entries = crate::lightning::recovery::stash(entries);
    }
    // An older copy continues above every copy already on the stick: whatever the box
    // backs up from now on must count as newer than the state it gave up.
    let continue_at = if stale { newest + 1 } else { generation };
    store
        .restore(continue_at, &entries)
        .map_err(|err| RestoreError::Store(err.to_string()))?;
    if stale {
        lightning
            .enter_recovery_mode(generation)
            .map_err(|err| RestoreError::Store(err.to_string()))?;
    }
    lightning
        .store_restored_seed(&seed)
        .map_err(|err| RestoreError::Store(err.to_string()))?;
    tracing::info!(
        "restored node {} at generation {generation} from the backup stick{}",
        short_id(&ours),
        if stale {
            " (an older copy: recovery mode)"
        } else {
            ""
        }
    );
    Ok(RestoreOutcome {
        node_id: ours,
        generation,
        written_at,
        recovery_mode: stale,
    })
}

/// Which copy to restore, and whether it is stale, from authenticated content.
#[derive(Debug)]
struct Decision {
    verified: copies::Verified,
    /// The highest generation any of this node's copies really reaches.
    newest: u64,
    /// Why the chosen copy is not the node's latest state, if it is not.
    stale: Option<String>,
}

/// Decrypts every copy of this node and picks the one asked for (by the generation the
/// list showed) or the newest. A copy whose header claims more than its content holds
/// counts for what it holds; one that does not decrypt counts for nothing.
fn decide(
    mine: &[&copies::Copy],
    key: &super::format::BackupKey,
    requested: Option<u64>,
) -> Result<Decision, RestoreError> {
    let mut verified: Vec<(&copies::Copy, copies::Verified)> = Vec::new();
    let mut first_error = None;
    for copy in mine {
        match copies::verify_copy(copy, key) {
            Ok(v) => verified.push((copy, v)),
            Err(err) => {
                tracing::warn!(
                    "restore: the copy {} does not decrypt ({err}); it is not considered",
                    copy.snapshot.display()
                );
                first_error.get_or_insert(err);
            }
        }
    }
    let newest = verified.iter().map(|(_, v)| v.generation).max();
    let chosen = match requested {
        Some(generation) => {
            let Some(copy) = mine.iter().find(|c| c.generation == generation) else {
                return Err(RestoreError::NoSuchCopy(generation));
            };
            match verified.iter().position(|(c, _)| std::ptr::eq(*c, *copy)) {
                Some(at) => verified.swap_remove(at),
                None => {
                    let err = copies::verify_copy(copy, key).err();
                    return Err(RestoreError::Damaged(
                        err.unwrap_or(super::format::FormatError::Inconsistent),
                    ));
                }
            }
        }
        None => {
            // The highest authentic generation; a whole copy before an incomplete one.
            let best = verified
                .iter()
                .enumerate()
                .max_by_key(|(_, (_, v))| (v.generation, v.incomplete.is_none(), v.written_at))
                .map(|(at, _)| at);
            match best {
                Some(at) => verified.swap_remove(at),
                None => {
                    return Err(RestoreError::Damaged(
                        first_error.unwrap_or(super::format::FormatError::Inconsistent),
                    ))
                }
            }
        }
    };
    let (_, verified) = chosen;
    let newest = newest.unwrap_or(verified.generation);
    let stale = if verified.generation < newest {
        Some(format!(
            "it is older than the newest copy of this node (generation {newest})"
        ))
    } else {
        verified.incomplete.clone()
    };
    Ok(Decision {
        verified,
        newest,
        stale,
    })
}

fn short_id(node_id: &str) -> String {
    format!("{}…", &node_id[..node_id.len().min(16)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::copies::{journal_name, node_dir, write_snapshot};
    use crate::backup::format::{self, Change, Entry, Header, Kind};
    use crate::bitcoind::credentials::RpcUser;
    use crate::config::{GossipSetting, Network};
    use crate::lightning::store::ChannelStore;
    use crate::lightning::LightningSettings;
    use crate::secret::Secret;
    use crate::status::StatusHandle;

    /// BIP39's all-zero vector: the words of the wallet whose copies the stick holds.
    const WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon art";

    /// A fresh box (no seed, an empty store) without a Lightning node.
    fn fresh_box(dir: &std::path::Path) -> LightningHandle {
        LightningHandle::spawn(
            LightningSettings {
                enabled: false,
                network: Network::Regtest,
                storage_dir: dir.join("lightning"),
                secrets_dir: dir.join("secrets"),
                listen_address: "127.0.0.1:9735".parse().unwrap(),
                alias: None,
                gossip: GossipSetting::Auto,
                rpc_port: 18443,
                rpc_user: RpcUser {
                    name: "ldk".into(),
                    password: Secret::new("unused"),
                },
                lsp: None,
                lsp_fee_limit: Default::default(),
                lsp_service: None,
            },
            StatusHandle::new(),
            ChannelStore::open(&dir.join("lightning")).unwrap(),
        )
    }

    fn identity() -> Identity {
        Identity::from_seed(&Seed::from_words(WORDS).unwrap())
    }

    fn entry(key: &str) -> Entry {
        Entry {
            primary_namespace: "monitors".into(),
            secondary_namespace: "".into(),
            key: key.into(),
            value: key.as_bytes().to_vec(),
        }
    }

    fn record(me: &Identity, generation: u64, key: &str) -> Vec<u8> {
        let header = Header {
            kind: Kind::JournalRecord,
            node_id: me.node_id,
            generation,
            written_at: 1_700_000_000 + generation,
        };
        format::encode_record(&me.key, &header, &Change::Write(entry(key)))
    }

    /// A snapshot at `base` and a journal holding `journal` (raw bytes).
    fn copy(stick: &std::path::Path, base: u64, journal: Option<Vec<u8>>) {
        let me = identity();
        write_snapshot(
            stick,
            &me,
            base,
            1_700_000_000 + base,
            &[entry(&format!("s{base}"))],
            9,
        )
        .unwrap();
        if let Some(bytes) = journal {
            let path = node_dir(stick, &me.node_id).join(journal_name(base));
            std::fs::write(path, bytes).unwrap();
        }
    }

    fn request(generation: Option<u64>, insist: bool) -> RestoreRequest {
        RestoreRequest {
            words: WORDS.into(),
            generation,
            insist,
        }
    }

    #[tokio::test]
    async fn the_newest_copy_is_what_decrypts_not_what_a_header_claims() {
        let dir = tempfile::tempdir().unwrap();
        let stick = dir.path().join("plugnode-backup");
        let me = identity();
        // B: a whole snapshot at 20.
        copy(&stick, 20, None);
        // A: a snapshot at 10, updates 11 and 12, then frames whose clear headers claim
        // updates 13 to 30 but whose content is not sealed with the key.
        let mut journal = [record(&me, 11, "a11"), record(&me, 12, "a12")].concat();
        for generation in 13..=30 {
            let mut forged = record(&me, generation, "forged");
            let len = forged.len();
            forged[len - 20..].fill(0);
            journal.extend(forged);
        }
        copy(&stick, 10, Some(journal));
        // C: B's snapshot under a header raised to 40 (the name says 40 too).
        let dir_of_node = node_dir(&stick, &me.node_id);
        let mut raised = std::fs::read(dir_of_node.join(copies::snapshot_name(20))).unwrap();
        raised[43..51].copy_from_slice(&40u64.to_be_bytes());
        std::fs::write(dir_of_node.join(copies::snapshot_name(40)), raised).unwrap();

        let claims: Vec<u64> = copies::find_copies(&stick)
            .iter()
            .map(|c| c.generation)
            .collect();
        assert_eq!(claims, [40, 30, 20], "what the clear headers claim");

        let lightning = fresh_box(&dir.path().join("box"));
        let restored = restore(&stick, request(None, false), &lightning).unwrap();
        assert_eq!(restored.generation, 20);
        assert!(!restored.recovery_mode);
        assert_eq!(lightning.store().generation(), 20);

        // Chosen by the generation the list showed, A is what it holds: 12, stale.
        let other = fresh_box(&dir.path().join("other"));
        let err = restore(&stick, request(Some(30), false), &other).unwrap_err();
        assert!(
            matches!(&err, RestoreError::Stale { chosen: 12, why } if why.contains("generation 20")),
            "{err}"
        );
        let err = restore(&stick, request(Some(40), false), &other).unwrap_err();
        assert_eq!(err.kind(), "damaged", "{err}");
    }

    #[tokio::test]
    async fn a_torn_tail_or_a_gap_is_stale_and_restored_only_in_recovery_mode() {
        let me = identity();
        let whole = [record(&me, 11, "k11"), record(&me, 12, "k12")].concat();
        let mut torn = whole.clone();
        torn.extend_from_slice(&record(&me, 13, "k13")[..40]);
        let gap = [record(&me, 11, "k11"), record(&me, 13, "k13")].concat();
        for (journal, stale) in [
            (torn, Some((12, "cut short"))),
            (gap, Some((11, "skips from update 11 to update 13"))),
            (whole, None),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let stick = dir.path().join("plugnode-backup");
            copy(&stick, 10, Some(journal));
            let lightning = fresh_box(&dir.path().join("box"));
            let result = restore(&stick, request(None, false), &lightning);
            let Some((generation, why)) = stale else {
                let restored = result.unwrap();
                assert_eq!((restored.generation, restored.recovery_mode), (12, false));
                continue;
            };
            let err = result.unwrap_err();
            assert_eq!(err.kind(), "stale", "{err}");
            assert!(err.to_string().contains(why), "{err}");
            // Insisting restores it in recovery mode, counted above what it lost.
            let restored = restore(&stick, request(None, true), &lightning).unwrap();
            assert_eq!(
                (restored.generation, restored.recovery_mode),
                (generation, true)
            );
            assert_eq!(lightning.store().generation(), generation + 1);
        }
    }
}
