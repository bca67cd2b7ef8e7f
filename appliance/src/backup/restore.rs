//! Restoring a fresh box from a backup stick and the 24 words.
//!
//! The words give the node id and the backup key; the stick's clear headers say whose
//! copies it holds and how new they are. A copy of another node is refused. The newest
//! copy is restored; an older one ("stale": the node made updates after it) is refused
//! unless the user insists, and then the node starts in *recovery mode*: it makes no
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
    #[error("{0}")]
    Unavailable(String),
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
        "This copy (generation {chosen}) is older than the newest copy of this node \
         (generation {newest}): restoring it could lose the channels' funds. Restore the \
         newest copy, or insist to restore this one in recovery mode (your peers close the \
         channels; your balance returns on-chain)."
    )]
    Stale { chosen: u64, newest: u64 },
    #[error("The backup could not be read: {0}.")]
    Damaged(FormatError),
    #[error("The restored state could not be written to the SD card: {0}")]
    Store(String),
}

impl RestoreError {
    /// A stable kind for the web page.
    pub fn kind(&self) -> &'static str {
        match self {
            RestoreError::Unavailable(_) => "unavailable",
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
    let Some(newest) = mine.first() else {
        let mut found: Vec<String> = all.iter().map(|c| short_id(&c.node_id)).collect();
        found.dedup();
        return Err(RestoreError::OtherNode {
            ours: short_id(&ours),
            found: found.join(", "),
        });
    };
    let chosen = match request.generation {
        Some(generation) => *mine
            .iter()
            .find(|c| c.generation == generation)
            .ok_or(RestoreError::NoSuchCopy(generation))?,
        None => *newest,
    };
    let stale = chosen.generation < newest.generation;
    if stale && !request.insist {
        return Err(RestoreError::Stale {
            chosen: chosen.generation,
            newest: newest.generation,
        });
    }
    let (generation, mut entries) =
        copies::load_copy(chosen, &identity.key).map_err(RestoreError::Damaged)?;
    if stale {
        entries = crate::lightning::recovery::stash(entries);
    }
    // An older copy continues above every copy already on the stick: whatever the box
    // backs up from now on must count as newer than the state it gave up.
    let continue_at = if stale {
        newest.generation + 1
    } else {
        generation
    };
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
        written_at: chosen.written_at,
        recovery_mode: stale,
    })
}

fn short_id(node_id: &str) -> String {
    format!("{}…", &node_id[..node_id.len().min(16)])
}
