//! Slows down password guessing on `/auth`: after a few wrong logins from one address, or
//! for one login name, further logins from there (or for it) are refused for a while
//! without looking at the password. Cheap on purpose: LNDHub passwords are 24 random
//! characters, so this keeps a misbehaving client from keeping the box busy rather than
//! protecting a weak secret.
//!
//! Both tables are bounded: a flood of made-up login names pushes out the oldest entries,
//! never grows memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong logins allowed per address or login name in one window.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Addresses and login names remembered at once, each.
const MAX_ENTRIES: usize = 1024;
/// Longer login names are cut: they are never right anyway.
const MAX_LOGIN_CHARS: usize = 64;

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Default)]
pub struct Throttle {
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    addresses: HashMap<IpAddr, Window>,
    logins: HashMap<String, Window>,
}

impl Throttle {
    /// `Err(wait)` while logins from `address` or for `login` are refused.
    pub fn check(
        &self,
        address: Option<IpAddr>,
        login: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let tables = self.lock();
        let blocked = |window: Option<&Window>| {
            window
                .filter(|w| now < w.started + WINDOW && w.failures >= MAX_FAILURES)
                .map(|w| w.started + WINDOW - now)
        };
        let by_address = address.and_then(|a| blocked(tables.addresses.get(&a)));
        let by_login = blocked(tables.logins.get(&key(login)));
        match by_address.max(by_login) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a wrong login.
    pub fn failed(&self, address: Option<IpAddr>, login: &str, now: Instant) {
        let mut tables = self.lock();
        if let Some(address) = address {
            count(&mut tables.addresses, address, now);
        }
        count(&mut tables.logins, key(login), now);
    }

    /// A right password: the login's own count starts again (its address's does not, so a
    /// guesser cannot reset it with a login of its own).
    pub fn succeeded(&self, login: &str) {
        self.lock().logins.remove(&key(login));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn key(login: &str) -> String {
    login.chars().take(MAX_LOGIN_CHARS).collect()
}

fn count<K: std::hash::Hash + Eq + Clone>(table: &mut HashMap<K, Window>, key: K, now: Instant) {
    if !table.contains_key(&key) && table.len() >= MAX_ENTRIES {
        table.retain(|_, w| now < w.started + WINDOW);
        if table.len() >= MAX_ENTRIES {
            let oldest = table
                .iter()
                .min_by_key(|(_, w)| w.started)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                table.remove(&oldest);
            }
        }
    }
    let window = table.entry(key).or_insert(Window {
        started: now,
        failures: 0,
    });
    if now >= window.started + WINDOW {
        *window = Window {
            started: now,
            failures: 0,
        };
    }
    window.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 168, 1, last]))
    }

    #[test]
    fn a_guesser_is_refused_for_the_rest_of_the_window() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(throttle.check(ip(9), "guess", now).is_ok());
            throttle.failed(ip(9), "guess", now);
        }
        let wait = throttle.check(ip(9), "someone", now).unwrap_err();
        assert_eq!(wait, WINDOW);
        // Other phones on the network still log in.
        assert!(throttle.check(ip(10), "someone", now).is_ok());
        // And so does the guesser once the window has passed.
        assert!(throttle.check(ip(9), "someone", now + WINDOW).is_ok());
    }

    #[test]
    fn guesses_at_one_login_from_many_addresses_are_refused_too() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            throttle.failed(ip(i as u8), "0123abcd", now);
        }
        assert!(throttle.check(ip(200), "0123abcd", now).is_err());
        assert!(throttle.check(ip(200), "another", now).is_ok());
    }

    #[test]
    fn a_right_password_clears_the_login_but_not_the_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(ip(9), "mine", now);
        }
        throttle.succeeded("mine");
        throttle.failed(ip(9), "mine", now);
        assert!(throttle.check(ip(9), "other", now).is_err());
        assert!(throttle.check(ip(10), "mine", now).is_ok());
    }

    #[test]
    fn made_up_logins_do_not_grow_memory() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for i in 0..3 * MAX_ENTRIES {
            throttle.failed(None, &format!("login{i}{}", "x".repeat(500)), now);
        }
        let tables = throttle.lock();
        assert!(tables.logins.len() <= MAX_ENTRIES);
        assert!(tables
            .logins
            .keys()
            .all(|k| k.chars().count() <= MAX_LOGIN_CHARS));
    }
}
