//! Who may try a password, how often, and the owner's way past a stranger who keeps
//! guessing.
//!
//! - Each client (peer IP address) waits after a wrong password: 1 s, doubling to 5
//!   minutes; a right one forgives it. The attempt is counted *before* the password is
//!   hashed, so guesses sent all at once wait their turn instead of slipping past.
//! - A stranger can slow down only themselves. If they make the box busy from many
//!   addresses, or the owner got their own device throttled, the owner asks for an
//!   **unlock code**: the box shows it on its screen (and writes it to
//!   `secrets/unlock-code`, 0600, for boxes without one). A login that carries it skips
//!   the wait and the queue. Asking again shows the same code until it has expired (10
//!   minutes) or been used, so a stranger who keeps asking cannot change it under the
//!   owner's feet.

use crate::fsutil;
use crate::secret::Secret;
use rand::RngCore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(5 * 60);
/// A client quiet this long starts again from the first wait.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Clients remembered at once; beyond, the one allowed soonest is forgotten first.
const MAX_CLIENTS: usize = 4096;
pub const UNLOCK_CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Password attempts one unlock code allows (the owner may mistype too).
const UNLOCK_CODE_USES: u32 = 5;
const UNLOCK_CODE_FILE: &str = "unlock-code";

struct Client {
    failures: u32,
    next_allowed: Instant,
    last_attempt: Instant,
}

struct UnlockCode {
    code: Secret,
    expires: Instant,
    uses_left: u32,
}

/// Per-client waits after wrong passwords, and the unlock code.
pub struct Throttle {
    secrets_dir: PathBuf,
    clients: Mutex<HashMap<IpAddr, Client>>,
    unlock: Mutex<Option<UnlockCode>>,
}

impl Throttle {
    pub fn new(secrets_dir: &Path) -> Throttle {
        // A code from a previous run is void: its lifetime was kept in memory.
        let _ = std::fs::remove_file(secrets_dir.join(UNLOCK_CODE_FILE));
        Throttle {
            secrets_dir: secrets_dir.to_path_buf(),
            clients: Mutex::new(HashMap::new()),
            unlock: Mutex::new(None),
        }
    }

    /// Counts an attempt by `client` as failed until [`Throttle::succeeded`] says
    /// otherwise; `Err` with the time left when the client must wait first.
    pub fn begin(&self, client: IpAddr) -> Result<(), Duration> {
        let client = client.to_canonical();
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap();
        if let Some(record) = clients.get(&client) {
            if record.next_allowed > now {
                return Err(record.next_allowed - now);
            }
        }
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, c| now.duration_since(c.last_attempt) < FORGET_AFTER);
            if clients.len() >= MAX_CLIENTS {
                if let Some(oldest) = clients
                    .iter()
                    .min_by_key(|(_, c)| c.next_allowed)
                    .map(|(ip, _)| *ip)
                {
                    clients.remove(&oldest);
                }
            }
        }
        let record = clients.entry(client).or_insert(Client {
            failures: 0,
            next_allowed: now,
            last_attempt: now,
        });
        if now.duration_since(record.last_attempt) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_attempt = now;
        record.next_allowed = now + wait_after(record.failures);
        Ok(())
    }

    /// The password was right: the client's wrong ones are forgiven.
    pub fn succeeded(&self, client: IpAddr) {
        self.clients.lock().unwrap().remove(&client.to_canonical());
    }

    /// The current unlock code and how long it stays valid; a new one (written to
    /// `secrets/unlock-code`) when there is none or it has expired or been used up.
    pub fn unlock_code(&self) -> std::io::Result<(Secret, Duration)> {
        let now = Instant::now();
        let mut unlock = self.unlock.lock().unwrap();
        if let Some(current) = unlock
            .as_ref()
            .filter(|u| u.expires > now && u.uses_left > 0)
        {
            return Ok((current.code.clone(), current.expires - now));
        }
        let code = Secret::new(random_code());
        fsutil::ensure_private_dir(&self.secrets_dir, 0o700)?;
        fsutil::write_atomic(
            &self.secrets_dir.join(UNLOCK_CODE_FILE),
            format!("{}\n", code.expose()).as_bytes(),
            0o600,
        )?;
        *unlock = Some(UnlockCode {
            code: code.clone(),
            expires: now + UNLOCK_CODE_LIFETIME,
            uses_left: UNLOCK_CODE_USES,
        });
        Ok((code, UNLOCK_CODE_LIFETIME))
    }

    /// Whether `given` is the current unlock code; a match uses one of its attempts.
    pub fn take_unlock_attempt(&self, given: &str) -> bool {
        let given = normalize_code(given);
        let now = Instant::now();
        let mut unlock = self.unlock.lock().unwrap();
        let Some(current) = unlock
            .as_mut()
            .filter(|u| u.expires > now && u.uses_left > 0)
        else {
            return false;
        };
        if !constant_time_eq(current.code.expose(), &given) {
            return false;
        }
        current.uses_left -= 1;
        true
    }

    /// The unlock code let the owner in: it is spent.
    pub fn unlock_code_used(&self) {
        *self.unlock.lock().unwrap() = None;
        let _ = std::fs::remove_file(self.secrets_dir.join(UNLOCK_CODE_FILE));
    }
}

fn wait_after(failures: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_WAIT)
}

/// 8 characters from an alphabet without look-alikes (0/O, 1/I/L).
pub fn random_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A code as people type it: any case, with spaces or dashes.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase().replace([' ', '-'], "")
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 66));
    const OWNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 10));

    #[tokio::test(start_paused = true)]
    async fn a_stranger_guessing_slows_down_only_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let throttle = Throttle::new(dir.path());
        // A burst: the first attempt is counted before it is checked, the rest wait.
        assert!(throttle.begin(STRANGER).is_ok());
        for _ in 0..29 {
            assert_eq!(throttle.begin(STRANGER), Err(Duration::from_secs(1)));
        }
        // The owner, elsewhere, is not affected.
        assert!(throttle.begin(OWNER).is_ok());
        throttle.succeeded(OWNER);
        // One guess whenever allowed: the wait doubles up to five minutes.
        let mut waits = Vec::new();
        for _ in 0..12 {
            let wait = throttle.begin(STRANGER).unwrap_err();
            waits.push(wait.as_secs());
            tokio::time::advance(wait).await;
            throttle.begin(STRANGER).unwrap();
        }
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300],
            "doubling to five minutes"
        );
        // The owner still gets in at once, and again after an hour of quiet.
        assert!(throttle.begin(OWNER).is_ok());
        throttle.succeeded(OWNER);
        tokio::time::advance(FORGET_AFTER).await;
        throttle.begin(STRANGER).unwrap();
        assert_eq!(throttle.begin(STRANGER), Err(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_unlock_code_stays_the_same_until_used_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let throttle = Throttle::new(dir.path());
        let (code, left) = throttle.unlock_code().unwrap();
        assert_eq!(left, UNLOCK_CODE_LIFETIME);
        let file = std::fs::read_to_string(dir.path().join(UNLOCK_CODE_FILE)).unwrap();
        assert_eq!(file.trim(), code.expose());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(UNLOCK_CODE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Asking again (anyone may) shows the same code.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(throttle.unlock_code().unwrap().0, code);
        assert!(!throttle.take_unlock_attempt("AAAAAAAA"));
        let typed = format!(
            " {}-{} ",
            &code.expose()[..4].to_lowercase(),
            &code.expose()[4..]
        );
        assert!(throttle.take_unlock_attempt(&typed), "typed as people do");
        throttle.unlock_code_used();
        assert!(!throttle.take_unlock_attempt(code.expose()), "one-time");
        assert!(!dir.path().join(UNLOCK_CODE_FILE).exists());

        // A code nobody used expires, and five attempts use it up.
        let (code, _) = throttle.unlock_code().unwrap();
        tokio::time::advance(UNLOCK_CODE_LIFETIME).await;
        assert!(!throttle.take_unlock_attempt(code.expose()));
        let (code, _) = throttle.unlock_code().unwrap();
        for _ in 0..UNLOCK_CODE_USES {
            assert!(throttle.take_unlock_attempt(code.expose()));
        }
        assert!(!throttle.take_unlock_attempt(code.expose()));
        assert_ne!(throttle.unlock_code().unwrap().0, code);
    }

    #[test]
    fn many_clients_are_remembered_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let throttle = Throttle::new(dir.path());
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            throttle.begin(ip).unwrap();
        }
        assert_eq!(throttle.clients.lock().unwrap().len(), MAX_CLIENTS);
    }
}
