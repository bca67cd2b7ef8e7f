//! The tokens LNDHub apps carry after logging in: random (32 bytes, hex), each bound to one
//! connection, kept only as their SHA-256 and only in memory. A restart forgets them all;
//! the apps then get "bad auth" (code 1) and log in again on their own, as they do when a
//! token expires.
//!
//! An access token lasts 2 days, a refresh token 7 (BlueWallet refreshes after 2 hours
//! and logs in again after 7 days). Refreshing hands out a new pair and uses the refresh
//! token up. Each connection keeps a handful of live tokens of each kind; an app that logs
//! in again and again pushes its oldest out instead of growing the table.

use crate::secret::Secret;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ACCESS_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);
pub const REFRESH_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Live tokens of one kind a connection may hold (one per phone, and some to spare).
const PER_CONNECTION: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
}

struct Entry {
    connection_id: String,
    kind: Kind,
    issued_at: Instant,
    expires_at: Instant,
}

/// What a login or a refresh hands out.
#[derive(Debug)]
pub struct TokenPair {
    pub access: Secret,
    pub refresh: Secret,
}

/// The live tokens. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Tokens {
    by_hash: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Tokens {
    /// A new pair for `connection_id`.
    pub fn issue(&self, connection_id: &str, now: Instant) -> TokenPair {
        let mut table = self.lock();
        table.retain(|_, entry| entry.expires_at > now);
        TokenPair {
            access: insert(&mut table, connection_id, Kind::Access, now),
            refresh: insert(&mut table, connection_id, Kind::Refresh, now),
        }
    }

    /// The connection an access token was given to, while it is valid.
    pub fn access(&self, token: &str, now: Instant) -> Option<String> {
        let table = self.lock();
        table
            .get(&hash(token))
            .filter(|entry| entry.kind == Kind::Access && entry.expires_at > now)
            .map(|entry| entry.connection_id.clone())
    }

    /// Uses a refresh token up: its connection and a new pair, while it is valid.
    pub fn refresh(&self, token: &str, now: Instant) -> Option<(String, TokenPair)> {
        let connection_id = {
            let mut table = self.lock();
            let key = hash(token);
            match table.get(&key) {
                Some(entry) if entry.kind == Kind::Refresh && entry.expires_at > now => {
                    let id = entry.connection_id.clone();
                    table.remove(&key);
                    id
                }
                _ => return None,
            }
        };
        let pair = self.issue(&connection_id, now);
        Some((connection_id, pair))
    }

    /// Forgets every token of a connection (revoked, expired).
    pub fn forget(&self, connection_id: &str) {
        self.lock()
            .retain(|_, entry| entry.connection_id != connection_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.by_hash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn insert(
    table: &mut HashMap<[u8; 32], Entry>,
    connection_id: &str,
    kind: Kind,
    now: Instant,
) -> Secret {
    let mine = |entry: &Entry| entry.connection_id == connection_id && entry.kind == kind;
    while table.values().filter(|entry| mine(entry)).count() >= PER_CONNECTION {
        let oldest = table
            .iter()
            .filter(|(_, entry)| mine(entry))
            .min_by_key(|(_, entry)| entry.issued_at)
            .map(|(key, _)| *key);
        match oldest {
            Some(key) => table.remove(&key),
            None => break,
        };
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let lifetime = match kind {
        Kind::Access => ACCESS_LIFETIME,
        Kind::Refresh => REFRESH_LIFETIME,
    };
    table.insert(
        hash(&token),
        Entry {
            connection_id: connection_id.to_string(),
            kind,
            issued_at: now,
            expires_at: now + lifetime,
        },
    );
    Secret::new(token)
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn tokens_are_random_hex_and_bound_to_their_connection() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let pair = tokens.issue("c1", now);
        for token in [&pair.access, &pair.refresh] {
            assert_eq!(token.expose().len(), 64);
            assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(pair.access, pair.refresh);
        assert_eq!(
            tokens.access(pair.access.expose(), now).as_deref(),
            Some("c1")
        );
        // A refresh token is not an access token, and nothing else is either.
        assert_eq!(tokens.access(pair.refresh.expose(), now), None);
        assert_eq!(tokens.access("", now), None);
        assert_eq!(tokens.access(&"0".repeat(64), now), None);
        assert!(!format!("{pair:?}").contains(pair.access.expose()));
    }

    #[test]
    fn access_lasts_two_days_and_refresh_seven() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let pair = tokens.issue("c1", now);
        let access = pair.access.expose();
        assert!(tokens.access(access, now + 47 * HOUR).is_some());
        assert!(tokens.access(access, now + 48 * HOUR).is_none());
        assert!(tokens
            .refresh(pair.refresh.expose(), now + 7 * 24 * HOUR)
            .is_none());
        let (id, fresh) = tokens
            .refresh(pair.refresh.expose(), now + 6 * 24 * HOUR)
            .unwrap();
        assert_eq!(id, "c1");
        assert!(tokens
            .access(fresh.access.expose(), now + 6 * 24 * HOUR)
            .is_some());
    }

    #[test]
    fn a_refresh_token_works_once() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let pair = tokens.issue("c1", now);
        let (_, next) = tokens.refresh(pair.refresh.expose(), now).unwrap();
        assert!(tokens.refresh(pair.refresh.expose(), now).is_none());
        assert!(tokens.refresh(next.refresh.expose(), now).is_some());
        // The access token handed out before keeps working until it expires.
        assert!(tokens.access(pair.access.expose(), now).is_some());
    }

    #[test]
    fn forgetting_a_connection_ends_its_tokens_only() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let one = tokens.issue("c1", now);
        let two = tokens.issue("c2", now);
        tokens.forget("c1");
        assert!(tokens.access(one.access.expose(), now).is_none());
        assert!(tokens.refresh(one.refresh.expose(), now).is_none());
        assert!(tokens.access(two.access.expose(), now).is_some());
    }

    #[test]
    fn logging_in_again_and_again_does_not_grow_the_table() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let first = tokens.issue("c1", now);
        for i in 1..100 {
            tokens.issue("c1", now + Duration::from_millis(i));
        }
        assert_eq!(tokens.len(), 2 * PER_CONNECTION);
        // The oldest went first.
        assert!(tokens.access(first.access.expose(), now).is_none());
        // Expired tokens go at the next login.
        tokens.issue("c2", now + 8 * 24 * HOUR);
        assert_eq!(tokens.len(), 2);
    }
}
