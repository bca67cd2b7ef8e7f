//! How much disk and memory bitcoind may use: `prune`, `dbcache`, `maxmempool`, and the
//! free space it needs before it may start.
//!
//! The rules, for a chain directory on a disk of `total` bytes:
//!
//! * usable = 90 % of the disk (file-system overhead, room to breathe), minus a 4 GiB reserve
//!   (the OS when the chain is on the SD card, the Lightning state, logs) and minus the
//!   chain-state estimate of the network;
//! * if usable covers the whole block chain plus a year of growth, keep every block
//!   (`prune=0`);
//! * otherwise prune to `usable`, but never below four weeks of blocks: a pruned node can
//!   only hand the Lightning node blocks it still has, and the box must be able to catch up
//!   after a month unplugged. A disk too small for that is refused.
//!
//! Memory, for `ram` bytes: bitcoind's cache gets half of what is left after 1 GiB for the
//! OS, the supervisor, the Lightning node and bitcoind's own baseline; at least 100 MiB, at
//! most 4 GiB (beyond that initial sync on a Pi is limited by the disk, not the cache).
//! The mempool is capped lower on small boards.

use crate::config::{Network, SizeSetting};

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// Core refuses smaller prune targets.
pub const CORE_MIN_PRUNE_MIB: u64 = 550;

/// Space beyond the chain itself: the OS (when on the same disk), Lightning state, logs.
const RESERVE_BYTES: u64 = 4 * GIB;

/// What a network's chain needs on disk (estimates as of late 2026).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainFootprint {
    /// All blocks plus undo data.
    pub full_chain_bytes: u64,
    /// One year of growth of `full_chain_bytes`.
    pub yearly_growth_bytes: u64,
    /// The UTXO database (`chainstate/`).
    pub chainstate_bytes: u64,
    /// Four weeks of blocks plus undo data: the least a pruned node keeps.
    pub four_weeks_bytes: u64,
}

impl ChainFootprint {
    pub fn of(network: Network) -> ChainFootprint {
        match network {
            Network::Mainnet => ChainFootprint {
                full_chain_bytes: 700 * GIB,
                yearly_growth_bytes: 80 * GIB,
                chainstate_bytes: 12 * GIB,
                // 4 × 1008 blocks × ~2 MiB (block + undo).
                four_weeks_bytes: 8064 * MIB,
            },
            Network::Testnet4 | Network::Signet => ChainFootprint {
                full_chain_bytes: 40 * GIB,
                yearly_growth_bytes: 20 * GIB,
                chainstate_bytes: 2 * GIB,
                four_weeks_bytes: 4 * GIB,
            },
            Network::Regtest => ChainFootprint {
                full_chain_bytes: GIB,
                yearly_growth_bytes: GIB,
                chainstate_bytes: 64 * MIB,
                four_weeks_bytes: CORE_MIN_PRUNE_MIB * MIB,
            },
        }
    }
}

/// The disk the chain lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// What the chain directory already holds (it may grow into its own space).
    pub chain_dir_bytes: u64,
}

/// What bitcoind gets on this box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// 0 = keep every block.
    pub prune_mib: u64,
    pub dbcache_mib: u64,
    pub maxmempool_mib: u64,
}

/// The disk cannot hold what bitcoind needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bitcoind needs {needed_bytes} bytes free but only {free_bytes} are free")]
pub struct InsufficientDisk {
    pub needed_bytes: u64,
    pub free_bytes: u64,
}

/// The prune target "auto" picks for a disk of `total_bytes`, or `None` when the disk
/// cannot hold even four weeks of blocks.
pub fn auto_prune_mib(network: Network, total_bytes: u64) -> Option<u64> {
    let chain = ChainFootprint::of(network);
    let usable = (total_bytes / 10 * 9)
        .checked_sub(RESERVE_BYTES)?
        .checked_sub(chain.chainstate_bytes)?;
    if usable >= chain.full_chain_bytes + chain.yearly_growth_bytes {
        return Some(0);
    }
    if usable < chain.four_weeks_bytes {
        return None;
    }
    Some((usable / MIB).max(CORE_MIN_PRUNE_MIB))
}

/// dbcache "auto" for a box with `ram_bytes` of memory.
pub fn auto_dbcache_mib(ram_bytes: u64) -> u64 {
    let spare_mib = ram_bytes.saturating_sub(GIB) / MIB;
    (spare_mib / 2).clamp(100, 4096)
}

/// bitcoind's mempool cap: its default of 300 MiB would crowd a 1 or 2 GB board.
pub fn maxmempool_mib(ram_bytes: u64) -> u64 {
    if ram_bytes <= GIB {
        50
    } else if ram_bytes <= 2 * GIB {
        150
    } else {
        300
    }
}

/// Decides prune/dbcache/mempool from the config and the machine, and checks that the disk
/// has room for the chain bitcoind will keep.
pub fn plan(
    network: Network,
    prune: SizeSetting,
    dbcache: SizeSetting,
    disk: DiskSpace,
    ram_bytes: u64,
) -> Result<Resources, InsufficientDisk> {
    let chain = ChainFootprint::of(network);
    let prune_mib = match prune {
        SizeSetting::Mib(mib) => mib,
        SizeSetting::Auto => match auto_prune_mib(network, disk.total_bytes) {
            Some(mib) => mib,
            None => {
                return Err(InsufficientDisk {
                    needed_bytes: required_bytes(&chain, chain.four_weeks_bytes, disk),
                    free_bytes: disk.free_bytes,
                })
            }
        },
    };
    let blocks_bytes = if prune_mib == 0 {
        chain.full_chain_bytes
    } else {
        prune_mib * MIB
    };
    let needed_bytes = required_bytes(&chain, blocks_bytes, disk);
    if needed_bytes > disk.free_bytes {
        return Err(InsufficientDisk {
            needed_bytes,
            free_bytes: disk.free_bytes,
        });
    }
    Ok(Resources {
        prune_mib,
        dbcache_mib: match dbcache {
            SizeSetting::Mib(mib) => mib,
            SizeSetting::Auto => auto_dbcache_mib(ram_bytes),
        },
        maxmempool_mib: maxmempool_mib(ram_bytes),
    })
}

/// Free bytes needed for blocks + chain state, minus what the chain directory already
/// holds, plus 1 GiB so a full disk never stops bitcoind mid-write.
fn required_bytes(chain: &ChainFootprint, blocks_bytes: u64, disk: DiskSpace) -> u64 {
    (blocks_bytes + chain.chainstate_bytes + GIB).saturating_sub(disk.chain_dir_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;
    /// A "32 GB" SD card as the kernel sees it, with the OS and some chain on it.
    const SD_32GB: u64 = 31_914_983_424;

    fn empty_disk(total: u64) -> DiskSpace {
        DiskSpace {
            total_bytes: total,
            free_bytes: total - 2 * GIB, // the OS
            chain_dir_bytes: 0,
        }
    }

    #[test]
    fn a_32gb_sd_card_prunes_but_keeps_four_weeks() {
        let prune = auto_prune_mib(Network::Mainnet, SD_32GB).unwrap();
        // 90 % of 29.7 GiB − 4 GiB − 12 GiB ≈ 10.75 GiB.
        assert_eq!(prune, 11_008);
        assert!(prune * MIB >= ChainFootprint::of(Network::Mainnet).four_weeks_bytes);
        let plan = plan(
            Network::Mainnet,
            SizeSetting::Auto,
            SizeSetting::Auto,
            empty_disk(SD_32GB),
            4 * GIB,
        )
        .unwrap();
        assert_eq!(plan.prune_mib, 11_008);
    }

    #[test]
    fn a_1tb_ssd_keeps_every_block() {
        assert_eq!(auto_prune_mib(Network::Mainnet, 1000 * GB), Some(0));
        let plan = plan(
            Network::Mainnet,
            SizeSetting::Auto,
            SizeSetting::Auto,
            empty_disk(1000 * GB),
            8 * GIB,
        )
        .unwrap();
        assert_eq!(plan.prune_mib, 0);
    }

    #[test]
    fn a_500gb_ssd_prunes_to_most_of_it() {
        let prune = auto_prune_mib(Network::Mainnet, 500 * GB).unwrap();
        assert!(prune > 400 * 1024 && prune < 420 * 1024, "{prune}");
    }

    #[test]
    fn a_16gb_card_is_too_small_for_mainnet() {
        let total = 15_931_539_456;
        assert_eq!(auto_prune_mib(Network::Mainnet, total), None);
        let err = plan(
            Network::Mainnet,
            SizeSetting::Auto,
            SizeSetting::Auto,
            empty_disk(total),
            4 * GIB,
        )
        .unwrap_err();
        assert!(err.needed_bytes > err.free_bytes);
    }

    #[test]
    fn a_prune_target_larger_than_the_free_space_is_refused() {
        let err = plan(
            Network::Mainnet,
            SizeSetting::Mib(100_000),
            SizeSetting::Auto,
            empty_disk(SD_32GB),
            4 * GIB,
        )
        .unwrap_err();
        assert_eq!(err.needed_bytes, 100_000 * MIB + 12 * GIB + GIB);
    }

    #[test]
    fn what_the_chain_already_holds_counts_as_available() {
        let disk = DiskSpace {
            total_bytes: SD_32GB,
            free_bytes: 3 * GIB,
            chain_dir_bytes: 22 * GIB,
        };
        assert!(plan(
            Network::Mainnet,
            SizeSetting::Auto,
            SizeSetting::Auto,
            disk,
            4 * GIB
        )
        .is_ok());
    }

    #[test]
    fn dbcache_for_2_4_8_gb_of_ram() {
        assert_eq!(auto_dbcache_mib(2 * GIB), 512);
        assert_eq!(auto_dbcache_mib(4 * GIB), 1536);
        assert_eq!(auto_dbcache_mib(8 * GIB), 3584);
        // A Pi Zero 2 W (512 MB) still gets a working cache; huge boxes are capped.
        assert_eq!(auto_dbcache_mib(512 * MIB), 100);
        assert_eq!(auto_dbcache_mib(64 * GIB), 4096);
    }

    #[test]
    fn the_mempool_shrinks_on_small_boards() {
        assert_eq!(maxmempool_mib(512 * MIB), 50);
        assert_eq!(maxmempool_mib(2 * GIB), 150);
        assert_eq!(maxmempool_mib(4 * GIB), 300);
        assert_eq!(maxmempool_mib(8 * GIB), 300);
    }

    #[test]
    fn explicit_settings_win() {
        let plan = plan(
            Network::Regtest,
            SizeSetting::Mib(0),
            SizeSetting::Mib(64),
            empty_disk(100 * GB),
            2 * GIB,
        )
        .unwrap();
        assert_eq!(plan.prune_mib, 0);
        assert_eq!(plan.dbcache_mib, 64);
    }
}
