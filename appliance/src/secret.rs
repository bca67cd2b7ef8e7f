//! Secrets in a type whose `Debug` and `Display` hide them, so they cannot end up in logs
//! by accident, and whose memory is wiped when dropped, so they do not linger in a core
//! dump or in freed memory.

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroize;

/// A secret string (password, token). Read it with [`Secret::expose`] where it is really
/// needed, never in a log line.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret {
    /// Overwrites the whole buffer with zeros (what `drop` does).
    fn wipe(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn the_value_is_wiped_when_dropped() {
        let mut secret = Secret::new("hunter2");
        let (pointer, capacity) = (secret.0.as_ptr(), secret.0.capacity());
        // What `drop` does; the buffer stays allocated (cleared, not freed), so it can be
        // looked at.
        secret.wipe();
        // SAFETY: `secret` still owns the allocation of `capacity` bytes at `pointer`.
        let bytes = unsafe { std::slice::from_raw_parts(pointer, capacity) };
        assert!(bytes.iter().all(|b| *b == 0), "{bytes:?}");
    }
}
