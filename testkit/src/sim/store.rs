//! The chain on disk: one append-only file of framed raw blocks, `<datadir>/regtest/
//! sim-blocks.dat`.
//!
//! Each record is `"blk1"`, the payload length (u32 LE), the first 4 bytes of the payload's
//! SHA-256, then the consensus-serialized block. A record is synced before the RPC that
//! mined it answers. After a `kill -9` or a power cut the last record may be torn; loading
//! detects that (short read, bad frame or checksum) and cuts the file back to the last whole
//! record, so the chain restarts at the last durable block. The UTXO set is not stored: it
//! is rebuilt by replaying the blocks.

use bitcoin::consensus::encode;
use bitcoin::Block;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// First bytes of the file.
const FILE_MAGIC: &[u8; 8] = b"RSIMBLK1";
/// First bytes of each record.
const RECORD_MAGIC: &[u8; 4] = b"blk1";
const RECORD_HEADER: usize = 12;
/// Larger than any valid block (4 MB weight means at most 4 MB of bytes).
const MAX_RECORD: usize = 4_000_000;

/// Why the block file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the block file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a regtest-sim block file (its first bytes are not {magic:?}); move it away or use another -datadir")]
    NotOurs { path: PathBuf, magic: &'static str },
}

/// A block read back from the file and where its record starts.
pub struct StoredBlock {
    pub offset: u64,
    pub block: Block,
}

/// What loading found.
pub struct Loaded {
    pub blocks: Vec<StoredBlock>,
    /// Bytes dropped after the last whole record (a torn write), if any.
    pub torn_bytes: u64,
}

/// The open block file.
pub struct BlockStore {
    path: PathBuf,
    file: File,
    len: u64,
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(payload);
    [digest[0], digest[1], digest[2], digest[3]]
}

fn sync_dir(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

impl BlockStore {
    /// Opens (or creates) the file and reads every whole record. A torn tail is cut off and
    /// the file synced, so the next append starts at a record boundary.
    pub fn open(path: &Path) -> Result<(BlockStore, Loaded), StoreError> {
        let io = io_err(path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(&io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(&io)?;
        if bytes.len() < FILE_MAGIC.len() {
            if !bytes.is_empty() && !FILE_MAGIC.starts_with(&bytes) {
                return Err(StoreError::NotOurs {
                    path: path.to_path_buf(),
                    magic: "RSIMBLK1",
                });
            }
            // New (or torn while being created): start afresh.
            file.set_len(0).map_err(&io)?;
            file.seek(SeekFrom::Start(0)).map_err(&io)?;
            file.write_all(FILE_MAGIC).map_err(&io)?;
            file.sync_all().map_err(&io)?;
            sync_dir(path);
            let store = BlockStore {
                path: path.to_path_buf(),
                file,
                len: FILE_MAGIC.len() as u64,
            };
            return Ok((
                store,
                Loaded {
                    blocks: Vec::new(),
                    torn_bytes: 0,
                },
            ));
        }
        if &bytes[..FILE_MAGIC.len()] != FILE_MAGIC {
            return Err(StoreError::NotOurs {
                path: path.to_path_buf(),
                magic: "RSIMBLK1",
            });
        }
        let mut blocks = Vec::new();
        let mut pos = FILE_MAGIC.len();
        while let Some((block, next)) = parse_record(&bytes, pos) {
            blocks.push(StoredBlock {
                offset: pos as u64,
                block,
            });
            pos = next;
        }
        let torn_bytes = (bytes.len() - pos) as u64;
        let mut store = BlockStore {
            path: path.to_path_buf(),
            file,
            len: bytes.len() as u64,
        };
        if torn_bytes > 0 {
            store.truncate(pos as u64)?;
        }
        Ok((store, Loaded { blocks, torn_bytes }))
    }

    /// Cuts the file at `offset` (a record boundary) and syncs it.
    pub fn truncate(&mut self, offset: u64) -> Result<(), StoreError> {
        self.file.set_len(offset).map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        self.len = offset;
        Ok(())
    }

    /// Appends a block record (not yet durable: call [`BlockStore::sync`]).
    pub fn append(&mut self, block: &Block) -> Result<(), StoreError> {
        let payload = encode::serialize(block);
        let mut record = Vec::with_capacity(RECORD_HEADER + payload.len());
        record.extend_from_slice(RECORD_MAGIC);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(&payload));
        record.extend_from_slice(&payload);
        self.file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&record))
            .map_err(io_err(&self.path))?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Size of the file in bytes (`size_on_disk`).
    pub fn size(&self) -> u64 {
        self.len
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_record(bytes: &[u8], pos: usize) -> Option<(Block, usize)> {
    let header = bytes.get(pos..pos + RECORD_HEADER)?;
    if &header[..4] != RECORD_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(pos + RECORD_HEADER..pos + RECORD_HEADER + len)?;
    if checksum(payload) != header[8..12] {
        return None;
    }
    let block: Block = encode::deserialize(payload).ok()?;
    Some((block, pos + RECORD_HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::chain::Chain;
    use bitcoin::ScriptBuf;

    fn blocks(n: u32) -> Vec<Block> {
        let mut chain = Chain::new(false);
        let mut out = Vec::new();
        for i in 0..n {
            let block = chain.assemble_block(
                &ScriptBuf::from_bytes(vec![0x51]),
                Vec::new(),
                0,
                2_000_000_000 + i,
            );
            out.push(block.clone());
            chain.connect(block, None).unwrap();
        }
        out
    }

    #[test]
    fn blocks_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.dat");
        let written = blocks(3);
        {
            let (mut store, loaded) = BlockStore::open(&path).unwrap();
            assert!(loaded.blocks.is_empty());
            for b in &written {
                store.append(b).unwrap();
            }
            store.sync().unwrap();
        }
        let (_, loaded) = BlockStore::open(&path).unwrap();
        assert_eq!(loaded.torn_bytes, 0);
        let hashes: Vec<_> = loaded.blocks.iter().map(|b| b.block.block_hash()).collect();
        assert_eq!(
            hashes,
            written.iter().map(|b| b.block_hash()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.dat");
        let written = blocks(3);
        {
            let (mut store, _) = BlockStore::open(&path).unwrap();
            for b in &written {
                store.append(b).unwrap();
            }
            store.sync().unwrap();
        }
        let full = std::fs::metadata(&path).unwrap().len();
        // Tear the last record in the middle, as a crash during the write would.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 10).unwrap();
        drop(f);
        let (mut store, loaded) = BlockStore::open(&path).unwrap();
        assert_eq!(loaded.blocks.len(), 2);
        assert!(loaded.torn_bytes > 0);
        store.append(&written[2]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, loaded) = BlockStore::open(&path).unwrap();
        assert_eq!(loaded.blocks.len(), 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), full);
    }

    #[test]
    fn a_corrupted_record_is_detected_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.dat");
        {
            let (mut store, _) = BlockStore::open(&path).unwrap();
            for b in &blocks(2) {
                store.append(b).unwrap();
            }
            store.sync().unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, loaded) = BlockStore::open(&path).unwrap();
        assert_eq!(loaded.blocks.len(), 1);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.dat");
        std::fs::write(&path, b"something else entirely").unwrap();
        assert!(matches!(
            BlockStore::open(&path),
            Err(StoreError::NotOurs { .. })
        ));
    }
}
