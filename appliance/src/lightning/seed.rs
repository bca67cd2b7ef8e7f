//! The wallet seed: a BIP39 mnemonic of 24 words, created on first setup or restored from
//! the user's words, stored 0600 in the secrets directory, never logged.
//!
//! Both the on-chain wallet and the Lightning node keys derive from it (ldk-node's
//! `set_entropy_bip39_mnemonic`); the USB backups are encrypted with a key derived from it.

use crate::fsutil;
use ldk_node::bip39::{self, Language, Mnemonic};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const FILE_NAME: &str = "seed.txt";
pub const WORD_COUNT: usize = 24;

/// The wallet's mnemonic. `Debug` hides the words; the mnemonic is wiped from memory
/// when dropped (bip39's `zeroize`), and so is every copy of the words made here.
#[derive(Clone)]
pub struct Seed {
    mnemonic: Mnemonic,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Seed(***)")
    }
}

/// Why words are not a valid recovery phrase, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error(
        "a recovery phrase has 24 words; these are {0}. Check that none is missing or doubled."
    )]
    WrongWordCount(usize),
    #[error("word {position} ({word:?}) is not a recovery word{}", suggestion_text(.suggestion))]
    UnknownWord {
        /// 1-based, as the user counts.
        position: usize,
        word: String,
        suggestion: Option<String>,
    },
    #[error(
        "every word is a recovery word, but together they do not add up (the checksum is \
         wrong): one of them is mistyped or in the wrong place. Compare each word with your \
         backup."
    )]
    BadChecksum,
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(word) => format!(": did you mean {word:?}?"),
        None => ": check its spelling against your backup.".into(),
    }
}

/// Where the seed file lives.
pub fn seed_path(secrets_dir: &Path) -> PathBuf {
    secrets_dir.join(FILE_NAME)
}

impl Seed {
    /// A new random 24-word seed (from the OS's random source).
    pub fn generate() -> Seed {
        let mnemonic = Mnemonic::generate(WORD_COUNT).expect("24 is a valid word count");
        Seed { mnemonic }
    }

    /// Parses words the user typed: any case, extra spaces and line breaks are fine; every
    /// problem names the word.
    pub fn from_words(text: &str) -> Result<Seed, SeedError> {
        let words: Zeroizing<Vec<String>> = Zeroizing::new(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                        .to_lowercase()
                })
                .filter(|w| !w.is_empty())
                .collect(),
        );
        if words.len() != WORD_COUNT {
            return Err(SeedError::WrongWordCount(words.len()));
        }
        for (index, word) in words.iter().enumerate() {
            if Language::English.find_word(word).is_none() {
                return Err(SeedError::UnknownWord {
                    position: index + 1,
                    word: shown(word),
                    suggestion: suggest(word),
                });
            }
        }
        let joined = Zeroizing::new(words.join(" "));
        match Mnemonic::parse_in_normalized(Language::English, &joined) {
            Ok(mnemonic) => Ok(Seed { mnemonic }),
            Err(bip39::Error::InvalidChecksum) => Err(SeedError::BadChecksum),
            Err(bip39::Error::UnknownWord(index)) => Err(SeedError::UnknownWord {
                position: index + 1,
                word: shown(&words[index]),
                suggestion: suggest(&words[index]),
            }),
            Err(_) => Err(SeedError::WrongWordCount(words.len())),
        }
    }

    /// The 24 words, for showing once on the device (wiped when dropped).
    pub fn words(&self) -> Zeroizing<Vec<String>> {
        Zeroizing::new(self.mnemonic.words().map(String::from).collect())
    }

    pub fn mnemonic(&self) -> &Mnemonic {
        &self.mnemonic
    }

    /// The 64-byte BIP39 seed (no passphrase), for deriving other keys (backup encryption).
    pub fn to_bytes(&self) -> [u8; 64] {
        self.mnemonic.to_seed_normalized("")
    }

    /// Reads the stored seed, `Ok(None)` when the box has none yet.
    pub fn load(secrets_dir: &Path) -> std::io::Result<Option<Seed>> {
        let path = seed_path(secrets_dir);
        match std::fs::read_to_string(&path).map(Zeroizing::new) {
            Ok(text) => Seed::from_words(&text).map(Some).map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is damaged: {err}", path.display()),
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Stores the seed (0600, atomically). Refuses to replace a different stored seed: that
    /// would orphan the funds of the old one.
    pub fn store(&self, secrets_dir: &Path) -> std::io::Result<()> {
        if let Some(existing) = Seed::load(secrets_dir)? {
            if existing.mnemonic == self.mnemonic {
                return Ok(());
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "this box already has a wallet seed; plugnode never replaces it",
            ));
        }
        fsutil::ensure_private_dir(secrets_dir, 0o700)?;
        let text = Zeroizing::new(format!("{}\n", self.words().join(" ")));
        fsutil::write_atomic(&seed_path(secrets_dir), text.as_bytes(), 0o600)
    }
}

/// The longest English recovery word has 8 letters; a suggestion is at most 2 edits away.
const LONGEST_SUGGESTIBLE: usize = 8 + 2;
/// How much of an unknown word an error repeats (a pasted paragraph is not echoed whole).
const SHOWN_CHARS: usize = 20;

/// Shortens a word for an error message, on a character boundary (words may be any text).
fn shown(word: &str) -> String {
    match word.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &word[..end]),
        None => word.to_string(),
    }
}

/// The recovery word the user most likely meant.
fn suggest(word: &str) -> Option<String> {
    // BIP39 words are unique in their first four letters. Counted in characters: the user
    // may type any text ("café"), and a byte index inside a character would panic.
    let prefix: String = word.chars().take(4).collect();
    if prefix.chars().count() == 4 {
        if let [only] = Language::English.words_by_prefix(&prefix) {
            return Some(only.to_string());
        }
    }
    // Longer words are no typo of a recovery word; comparing them with all 2048 would
    // let one huge word keep the web page busy.
    if word.chars().count() > LONGEST_SUGGESTIBLE {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for candidate in Language::English.word_list() {
        let distance = edit_distance(word, candidate);
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, w)| w.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP39's own test vector (all-zero entropy).
    const ZERO: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
        abandon abandon abandon abandon abandon art";

    #[test]
    fn accepts_the_bip39_vector_in_any_layout() {
        let seed = Seed::from_words(ZERO).unwrap();
        assert_eq!(seed.words().len(), 24);
        let numbered: String = seed
            .words()
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}. {}\n", i + 1, w.to_uppercase()))
            .collect();
        assert_eq!(Seed::from_words(&numbered).unwrap().words(), seed.words());
    }

    #[test]
    fn names_the_wrong_word_and_suggests_one() {
        let typo = ZERO.replacen("art", "arr", 1);
        match Seed::from_words(&typo).unwrap_err() {
            SeedError::UnknownWord {
                position,
                word,
                suggestion,
            } => {
                assert_eq!(position, 24);
                assert_eq!(word, "arr");
                assert!(suggestion.is_some());
            }
            other => panic!("{other:?}"),
        }
        let err = Seed::from_words(&ZERO.replacen("abandon", "abandn", 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "word 1 (\"abandn\") is not a recovery word: did you mean \"abandon\"?"
        );
    }

    #[test]
    fn words_that_are_not_ascii_or_huge_are_named_without_a_panic() {
        for (word, position) in [("café", 24), ("naïve", 24), ("ñ", 24), ("🙂🙂🙂🙂🙂", 24)]
        {
            let text = ZERO.replacen("art", word, 1);
            match Seed::from_words(&text).unwrap_err() {
                SeedError::UnknownWord {
                    position: at,
                    word: named,
                    ..
                } => assert_eq!((at, named.as_str()), (position, word)),
                other => panic!("{word}: {other:?}"),
            }
        }
        // The first four letters are "abandon"'s: suggested even with an accent after them.
        let err = Seed::from_words(&ZERO.replacen("art", "abanné", 1)).unwrap_err();
        assert!(
            err.to_string().contains("did you mean \"abandon\""),
            "{err}"
        );

        // A megabyte-long word is named in short, at once.
        let huge = "é".repeat(1 << 19);
        let started = std::time::Instant::now();
        let err = Seed::from_words(&ZERO.replacen("art", &huge, 1)).unwrap_err();
        let message = err.to_string();
        assert!(message.chars().count() < 100, "{message:.100}");
        assert!(message.starts_with("word 24 (\"éééé"), "{message}");
        // (Compared with every recovery word, it took minutes and held the web page.)
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn a_wrong_but_valid_word_fails_the_checksum() {
        let swapped = ZERO.replacen("art", "zoo", 1);
        assert_eq!(
            Seed::from_words(&swapped).unwrap_err(),
            SeedError::BadChecksum
        );
    }

    #[test]
    fn wrong_word_counts_are_named() {
        let short = ZERO.rsplit_once(' ').unwrap().0;
        assert_eq!(
            Seed::from_words(short).unwrap_err(),
            SeedError::WrongWordCount(23)
        );
    }

    #[test]
    fn generated_seeds_store_private_load_back_and_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        assert!(Seed::load(&secrets).unwrap().is_none());
        let seed = Seed::generate();
        seed.store(&secrets).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(seed_path(&secrets))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Seed::load(&secrets).unwrap().unwrap().words(), seed.words());
        seed.store(&secrets).unwrap(); // the same seed again is fine
        let other = Seed::generate();
        assert_eq!(
            other.store(&secrets).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        assert!(!format!("{seed:?}").contains(&seed.words()[0]));
    }
}
