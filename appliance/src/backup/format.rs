//! What plugnode writes to a backup stick, byte for byte.
//!
//! Every file starts with a header in clear — magic, format version, kind, the Lightning
//! node id, the generation (how many channel-store updates it reflects) and when it was
//! written — so the box can tell whose and how new a backup is without the seed. The
//! content is encrypted with XChaCha20-Poly1305 under a key derived from the wallet seed
//! (HKDF-SHA256), with the header as associated data: a stick alone reveals only the node
//! id, and a header that was tampered with (say, a generation raised to pass a stale copy
//! off as new) fails authentication.
//!
//! Two kinds of files live in `<stick>/plugnode-backup/<node id>/`:
//! - `snapshot-<generation>.pnb`: the whole channel store at one generation;
//! - `journal-<generation>.pnj`: updates after the snapshot of the same base generation,
//!   one framed, encrypted record per store write, appended and synced before the write
//!   is acknowledged. A torn last record (the stick pulled mid-write) is detected; what
//!   comes before it is good, but the copy no longer holds the node's latest state.

pub use crate::lightning::store::{Change, Entry};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

pub const FORMAT_VERSION: u8 = 1;
const MAGIC: &[u8; 8] = b"PLUGNODE";
const NONCE_LEN: usize = 24;
/// magic 8 + version 1 + kind 1 + node id 33 + generation 8 + written_at 8
pub const HEADER_LEN: usize = 8 + 1 + 1 + 33 + 8 + 8;
/// A journal record: header, then its length (4 bytes), nonce and ciphertext.
const RECORD_LENGTH_LEN: usize = 4;
/// No single store value is anywhere near this; a larger length means a torn or bad frame.
const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// The key every backup of one wallet is encrypted with.
#[derive(Clone)]
pub struct BackupKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("BackupKey(***)")
    }
}

impl BackupKey {
    /// Derives the key from the 64-byte BIP39 seed.
    pub fn from_seed(seed: &[u8; 64]) -> BackupKey {
        let hkdf = Hkdf::<Sha256>::new(Some(b"plugnode backup"), seed);
        let mut key = [0u8; 32];
        hkdf.expand(b"channel state, format 1", &mut key)
            .expect("32 bytes is a valid HKDF length");
        BackupKey {
            cipher: XChaCha20Poly1305::new((&key).into()),
        }
    }

    fn seal(&self, header: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: header,
                },
            )
            .expect("encryption with a valid key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    fn open(&self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
        if sealed.len() < NONCE_LEN {
            return Err(FormatError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: header,
                },
            )
            .map_err(|_| FormatError::WrongKeyOrDamaged)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a plugnode backup file")]
    NotABackup,
    #[error("written by a newer plugnode (format {0}); update this box first")]
    NewerFormat(u8),
    #[error("the file is cut short (the stick was pulled while it was written?)")]
    Truncated,
    #[error(
        "the backup cannot be decrypted: these are not the words of this wallet, or the file \
         is damaged"
    )]
    WrongKeyOrDamaged,
    #[error("the backup's content does not match its header")]
    Inconsistent,
    /// The file was refused or could not be read (a link, a FIFO, too large, …).
    #[error("{0}")]
    Unreadable(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Snapshot = 1,
    JournalRecord = 2,
}

/// The clear-text header of a snapshot or journal record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// The Lightning node id (compressed public key).
    pub node_id: [u8; 33],
    pub generation: u64,
    /// Seconds since the Unix epoch.
    pub written_at: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8] = FORMAT_VERSION;
        out[9] = self.kind as u8;
        out[10..43].copy_from_slice(&self.node_id);
        out[43..51].copy_from_slice(&self.generation.to_be_bytes());
        out[51..59].copy_from_slice(&self.written_at.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Header, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
                FormatError::Truncated
            } else {
                FormatError::NotABackup
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(FormatError::NotABackup);
        }
        if bytes[8] > FORMAT_VERSION {
            return Err(FormatError::NewerFormat(bytes[8]));
        }
        let kind = match bytes[9] {
            1 => Kind::Snapshot,
            2 => Kind::JournalRecord,
            _ => return Err(FormatError::NotABackup),
        };
        let mut node_id = [0u8; 33];
        node_id.copy_from_slice(&bytes[10..43]);
        Ok(Header {
            kind,
            node_id,
            generation: u64::from_be_bytes(bytes[43..51].try_into().expect("8 bytes")),
            written_at: u64::from_be_bytes(bytes[51..59].try_into().expect("8 bytes")),
        })
    }
}

// --- snapshots ------------------------------------------------------------------------

/// A whole snapshot file.
pub fn encode_snapshot(key: &BackupKey, header: &Header, entries: &[Entry]) -> Vec<u8> {
    let header_bytes = header.encode();
    let mut plain = Vec::new();
    put_u32(&mut plain, entries.len() as u32);
    for entry in entries {
        put_entry(&mut plain, entry);
    }
    let mut out = header_bytes.to_vec();
    out.extend(key.seal(&header_bytes, &plain));
    out
}

/// Reads a snapshot file (checking its header against its content).
pub fn decode_snapshot(key: &BackupKey, bytes: &[u8]) -> Result<(Header, Vec<Entry>), FormatError> {
    let header = Header::decode(bytes)?;
    if header.kind != Kind::Snapshot {
        return Err(FormatError::NotABackup);
    }
    let plain = key.open(&bytes[..HEADER_LEN], &bytes[HEADER_LEN..])?;
    let mut reader = Reader(&plain);
    let count = reader.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        entries.push(reader.entry()?);
    }
    if !reader.0.is_empty() {
        return Err(FormatError::Inconsistent);
    }
    Ok((header, entries))
}

// --- journal records ------------------------------------------------------------------

/// One framed journal record: header, length of what follows, then nonce + ciphertext.
pub fn encode_record(key: &BackupKey, header: &Header, change: &Change) -> Vec<u8> {
    let header_bytes = header.encode();
    let mut plain = Vec::new();
    match change {
        Change::Write(entry) => {
            plain.push(1);
            put_entry(&mut plain, entry);
        }
        Change::Remove {
            primary_namespace,
            secondary_namespace,
            key,
        } => {
            plain.push(2);
            put_str(&mut plain, primary_namespace);
            put_str(&mut plain, secondary_namespace);
            put_str(&mut plain, key);
        }
    }
    let sealed = key.seal(&header_bytes, &plain);
    let mut out = header_bytes.to_vec();
    put_u32(&mut out, sealed.len() as u32);
    out.extend(sealed);
    out
}

/// Reads a journal: every whole record in order. A torn or damaged tail ends the journal
/// (`torn_tail` is then true); what came before it is good.
pub fn decode_journal(
    key: &BackupKey,
    mut bytes: &[u8],
) -> Result<(Vec<(Header, Change)>, bool), FormatError> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let Some(frame) = split_frame(bytes) else {
            return Ok((records, true));
        };
        let (header_bytes, sealed, rest) = frame;
        let header = Header::decode(header_bytes)?;
        let plain = match key.open(header_bytes, sealed) {
            Ok(plain) => plain,
            // The first record decides whether the key is right at all.
            Err(err) if records.is_empty() => return Err(err),
            Err(_) => return Ok((records, true)),
        };
        let mut reader = Reader(&plain);
        let change = match reader.u8()? {
            1 => Change::Write(reader.entry()?),
            2 => Change::Remove {
                primary_namespace: reader.string()?,
                secondary_namespace: reader.string()?,
                key: reader.string()?,
            },
            _ => return Err(FormatError::Inconsistent),
        };
        records.push((header, change));
        bytes = rest;
    }
    Ok((records, false))
}

/// Only the clear headers of a journal (no key needed): how far it goes.
pub fn journal_headers(mut bytes: &[u8]) -> Vec<Header> {
    let mut headers = Vec::new();
    while let Some((header_bytes, _, rest)) = split_frame(bytes) {
        match Header::decode(header_bytes) {
            Ok(header) => headers.push(header),
            Err(_) => break,
        }
        bytes = rest;
    }
    headers
}

fn split_frame(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if bytes.len() < HEADER_LEN + RECORD_LENGTH_LEN {
        return None;
    }
    let (header, rest) = bytes.split_at(HEADER_LEN);
    let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let rest = &rest[4..];
    if len > MAX_RECORD_LEN || rest.len() < len {
        return None;
    }
    let (sealed, rest) = rest.split_at(len);
    Some((header, sealed, rest))
}

// --- encoding helpers -----------------------------------------------------------------

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_u32(out, text.len() as u32);
    out.extend_from_slice(text.as_bytes());
}

fn put_entry(out: &mut Vec<u8>, entry: &Entry) {
    put_str(out, &entry.primary_namespace);
    put_str(out, &entry.secondary_namespace);
    put_str(out, &entry.key);
    put_u32(out, entry.value.len() as u32);
    out.extend_from_slice(&entry.value);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], FormatError> {
        if self.0.len() < len {
            return Err(FormatError::Inconsistent);
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self) -> Result<String, FormatError> {
        String::from_utf8(self.bytes()?).map_err(|_| FormatError::Inconsistent)
    }

    fn entry(&mut self) -> Result<Entry, FormatError> {
        Ok(Entry {
            primary_namespace: self.string()?,
            secondary_namespace: self.string()?,
            key: self.string()?,
            value: self.bytes()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &[u8]) -> Entry {
        Entry {
            primary_namespace: "monitors".into(),
            secondary_namespace: "".into(),
            key: key.into(),
            value: value.to_vec(),
        }
    }

    fn header(kind: Kind, generation: u64) -> Header {
        Header {
            kind,
            node_id: [2; 33],
            generation,
            written_at: 1_700_000_000,
        }
    }

    #[test]
    fn snapshots_round_trip_and_hide_their_content() {
        let key = BackupKey::from_seed(&[1; 64]);
        let entries = vec![entry("a", b"channel secret state"), entry("b", &[])];
        let bytes = encode_snapshot(&key, &header(Kind::Snapshot, 42), &entries);
        assert!(!bytes
            .windows(b"channel secret".len())
            .any(|w| w == b"channel secret"));
        let (read, back) = decode_snapshot(&key, &bytes).unwrap();
        assert_eq!(read.generation, 42);
        assert_eq!(back, entries);
        // Whose and how new, without the key:
        assert_eq!(Header::decode(&bytes).unwrap().node_id, [2; 33]);
    }

    #[test]
    fn the_wrong_seed_and_a_raised_generation_are_both_refused() {
        let key = BackupKey::from_seed(&[1; 64]);
        let bytes = encode_snapshot(&key, &header(Kind::Snapshot, 7), &[entry("a", b"x")]);
        let other = BackupKey::from_seed(&[9; 64]);
        assert_eq!(
            decode_snapshot(&other, &bytes).unwrap_err(),
            FormatError::WrongKeyOrDamaged
        );
        let mut tampered = bytes.clone();
        tampered[50] = 99; // generation's last byte
        assert_eq!(
            decode_snapshot(&key, &tampered).unwrap_err(),
            FormatError::WrongKeyOrDamaged
        );
        assert_eq!(
            decode_snapshot(&key, &bytes[..HEADER_LEN + 10]).unwrap_err(),
            FormatError::Truncated
        );
        assert_eq!(
            Header::decode(b"not a backup at all, clearly, definitely not one").unwrap_err(),
            FormatError::NotABackup
        );
    }

    #[test]
    fn journals_stop_cleanly_at_a_torn_record() {
        let key = BackupKey::from_seed(&[1; 64]);
        let mut journal = Vec::new();
        for generation in 1..=3 {
            journal.extend(encode_record(
                &key,
                &header(Kind::JournalRecord, generation),
                &Change::Write(entry(&format!("k{generation}"), b"v")),
            ));
        }
        journal.extend(encode_record(
            &key,
            &header(Kind::JournalRecord, 4),
            &Change::Remove {
                primary_namespace: "monitors".into(),
                secondary_namespace: "".into(),
                key: "k1".into(),
            },
        ));
        let (records, torn) = decode_journal(&key, &journal).unwrap();
        assert_eq!(records.len(), 4);
        assert!(!torn);
        assert_eq!(journal_headers(&journal).last().unwrap().generation, 4);

        // Pulled mid-write: the last record is cut.
        let cut = &journal[..journal.len() - 5];
        let (records, torn) = decode_journal(&key, cut).unwrap();
        assert_eq!(records.len(), 3);
        assert!(torn);
        assert_eq!(journal_headers(cut).len(), 3);
    }

    #[test]
    fn a_newer_format_is_named() {
        let mut bytes = header(Kind::Snapshot, 1).encode();
        bytes[8] = FORMAT_VERSION + 1;
        assert_eq!(
            Header::decode(&bytes).unwrap_err(),
            FormatError::NewerFormat(FORMAT_VERSION + 1)
        );
    }
}
