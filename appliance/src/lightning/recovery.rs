//! Recovering from an older backup, the way LDK prescribes.
//!
//! An old channel state must never be used as if it were current: broadcasting our own old
//! commitment hands the peer the whole channel as a penalty, and LDK stops the node
//! outright when a peer proves we are behind. So a stale copy is restored in two phases:
//!
//! 1. **Ask the peers to close.** The node starts with the restored on-chain wallet and
//!    peer list but *without* the channel manager and channel monitors (those are kept
//!    aside in the store under names ldk-node does not read). It does not know the old
//!    channels, so when a peer re-establishes one, LDK answers with a deliberately bogus
//!    re-establish that makes the peer force-close with *its* latest state. We wait until
//!    every old channel's funding output is spent by a confirmed transaction, and then
//!    [`CONFIRMATIONS`] more blocks.
//! 2. **Claim our funds.** The node restarts with an empty channel manager and the
//!    restored monitors: they see the peers' commitments on-chain and sweep our side of each
//!    channel to the wallet. Recovery ends when nothing is left to claim. (LDK also tries to
//!    broadcast the old commitment of a monitor it has no channel for; with the funding
//!    output already spent in a block, bitcoind refuses it and it can never confirm — that
//!    is why phase 2 waits for the confirmed spend, never just for time.)
//!
//! Throughout, the handle refuses payments, channel opening and force-closing.

use super::store::{ChannelStore, Entry};
use std::io;
use std::path::{Path, PathBuf};

/// Blocks to wait after the peers were reached, for their closing transactions.
pub const CONFIRMATIONS: u32 = 6;

const FLAG_FILE: &str = "recovery-mode";
/// ldk-node's names for the channel manager and monitors (lightning::util::persist).
const MANAGER_KEY: &str = "manager";
const MONITOR_NAMESPACES: [&str; 2] = ["monitors", "monitor_updates"];
/// Where phase 1 keeps the monitors (ldk-node never reads this namespace).
const STASH_PREFIX: &str = "plugnode-recovery-";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    AskPeersToClose,
    ClaimFunds,
}

fn flag(storage_dir: &Path) -> PathBuf {
    storage_dir.join(FLAG_FILE)
}

/// The recovery phase the node is in, if any.
pub fn phase(storage_dir: &Path) -> Option<Phase> {
    match std::fs::read_to_string(flag(storage_dir)) {
        Ok(text) if text.contains("phase=2") => Some(Phase::ClaimFunds),
        Ok(_) => Some(Phase::AskPeersToClose),
        Err(_) => None,
    }
}

pub fn set_phase(storage_dir: &Path, phase: Phase, note: &str) -> io::Result<()> {
    std::fs::create_dir_all(storage_dir)?;
    let number = match phase {
        Phase::AskPeersToClose => 1,
        Phase::ClaimFunds => 2,
    };
    crate::fsutil::write_atomic(
        &flag(storage_dir),
        format!("phase={number}\n{note}\n").as_bytes(),
        0o600,
    )
}

pub fn finish(storage_dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(flag(storage_dir)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Prepares an old copy for phase 1: the channel manager is left out, the monitors are
/// renamed out of ldk-node's sight.
pub fn stash(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| !(e.primary_namespace.is_empty() && e.key == MANAGER_KEY))
        .map(|mut entry| {
            if MONITOR_NAMESPACES.contains(&entry.primary_namespace.as_str()) {
                entry.primary_namespace = format!("{STASH_PREFIX}{}", entry.primary_namespace);
            }
            entry
        })
        .collect()
}

/// The funding outputs of the stashed channels (ldk-node names a monitor after its funding
/// outpoint, `<txid>_<index>`), so phase 2 can wait until each is spent by a confirmed
/// closing transaction: only then can no old commitment of ours ever confirm.
pub fn stashed_funding_outpoints(store: &ChannelStore) -> io::Result<Vec<(String, u32)>> {
    let (_, entries) = store.snapshot()?;
    Ok(entries
        .iter()
        .filter(|e| e.primary_namespace == format!("{STASH_PREFIX}monitors"))
        .filter_map(|e| {
            let (txid, index) = e.key.rsplit_once('_')?;
            (txid.len() == 64).then(|| Some((txid.to_string(), index.parse().ok()?)))?
        })
        .collect())
}

/// Phase 2: puts the monitors back where ldk-node reads them. Returns how many.
pub fn unstash(store: &ChannelStore) -> io::Result<usize> {
    use ldk_node::lightning::util::persist::KVStoreSync;
    let (_, entries) = store.snapshot()?;
    let mut moved = 0;
    for entry in entries {
        let Some(original) = entry.primary_namespace.strip_prefix(STASH_PREFIX) else {
            continue;
        };
        KVStoreSync::write(
            store,
            original,
            &entry.secondary_namespace,
            &entry.key,
            entry.value.clone(),
        )
        .map_err(io::Error::from)?;
        KVStoreSync::remove(
            store,
            &entry.primary_namespace,
            &entry.secondary_namespace,
            &entry.key,
            false,
        )
        .map_err(io::Error::from)?;
        moved += 1;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(primary: &str, key: &str) -> Entry {
        Entry {
            primary_namespace: primary.into(),
            secondary_namespace: "".into(),
            key: key.into(),
            value: vec![1],
        }
    }

    #[test]
    fn phase_one_hides_the_manager_and_monitors_and_phase_two_brings_monitors_back() {
        let dir = tempfile::tempdir().unwrap();
        let restored = stash(vec![
            entry("", "manager"),
            entry("monitors", "chan"),
            entry("monitor_updates", "chan-1"),
            entry("bdk_wallet", "descriptor"),
            entry("", "peers"),
        ]);
        let names: Vec<(String, String)> = restored
            .iter()
            .map(|e| (e.primary_namespace.clone(), e.key.clone()))
            .collect();
        assert!(!names.contains(&("".into(), "manager".into())));
        assert!(names.contains(&("plugnode-recovery-monitors".into(), "chan".into())));
        assert!(names.contains(&("bdk_wallet".into(), "descriptor".into())));

        let store = ChannelStore::open(dir.path()).unwrap();
        let mut with_funding = restored.clone();
        with_funding.push(entry(
            &format!("{STASH_PREFIX}monitors"),
            &format!("{}_1", "ab".repeat(32)),
        ));
        store.restore(10, &with_funding).unwrap();
        assert_eq!(
            stashed_funding_outpoints(&store).unwrap(),
            vec![("ab".repeat(32), 1)]
        );
        assert_eq!(unstash(&store).unwrap(), 3);
        let (_, entries) = store.snapshot().unwrap();
        let namespaces: Vec<&str> = entries
            .iter()
            .map(|e| e.primary_namespace.as_str())
            .collect();
        assert!(namespaces.contains(&"monitors") && namespaces.contains(&"monitor_updates"));
        assert!(!namespaces.iter().any(|n| n.starts_with(STASH_PREFIX)));

        assert_eq!(phase(dir.path()), None);
        set_phase(dir.path(), Phase::AskPeersToClose, "from generation 10").unwrap();
        assert_eq!(phase(dir.path()), Some(Phase::AskPeersToClose));
        set_phase(dir.path(), Phase::ClaimFunds, "").unwrap();
        assert_eq!(phase(dir.path()), Some(Phase::ClaimFunds));
        finish(dir.path()).unwrap();
        assert_eq!(phase(dir.path()), None);
    }
}
