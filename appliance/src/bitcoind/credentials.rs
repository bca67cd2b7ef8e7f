//! Per-install RPC users for bitcoind: one for the supervisor, one for the Lightning node.
//!
//! Passwords are random, generated on first start, stored 0600 in the secrets directory and
//! handed to bitcoind only as salted `rpcauth` hashes, so `bitcoin.conf` holds no password.

use crate::fsutil;
use crate::secret::Secret;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "bitcoind-rpc.toml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcUser {
    pub name: String,
    pub password: Secret,
}

impl RpcUser {
    fn generate(name: &str) -> RpcUser {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        RpcUser {
            name: name.to_string(),
            password: Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)),
        }
    }

    /// The `rpcauth=` value for bitcoin.conf, as Bitcoin Core's `share/rpcauth/rpcauth.py`
    /// makes it: `user:salt$hex(HMAC-SHA256(key = salt, message = password))`.
    pub fn rpcauth(&self) -> String {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        self.rpcauth_with_salt(&hex::encode(salt))
    }

    fn rpcauth_with_salt(&self, salt: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key length");
        mac.update(self.password.expose().as_bytes());
        let hash = hex::encode(mac.finalize().into_bytes());
        format!("{}:{salt}${hash}", self.name)
    }
}

/// The two RPC users plugnode creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcCredentials {
    /// Health checks and `stop`.
    pub supervisor: RpcUser,
    /// The embedded Lightning node's chain source.
    pub lightning: RpcUser,
}

impl RpcCredentials {
    pub fn path(secrets_dir: &Path) -> PathBuf {
        secrets_dir.join(FILE_NAME)
    }

    /// Reads the stored credentials, or creates and stores new ones on first start.
    pub fn load_or_create(secrets_dir: &Path) -> io::Result<RpcCredentials> {
        let path = Self::path(secrets_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is damaged ({}); delete it and plugnode creates new RPC passwords",
                        path.display(),
                        err.message()
                    ),
                )
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let credentials = RpcCredentials {
                    supervisor: RpcUser::generate("plugnode"),
                    lightning: RpcUser::generate("lightning"),
                };
                fsutil::ensure_private_dir(secrets_dir, 0o700)?;
                let text = toml::to_string(&credentials).expect("credentials serialize");
                fsutil::write_atomic(&path, text.as_bytes(), 0o600)?;
                Ok(credentials)
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rpcauth_matches_bitcoin_cores_own_test_vector() {
        // From Bitcoin Core's test/functional/rpc_users.py.
        let user = RpcUser {
            name: "rt".into(),
            password: Secret::new("cA773lm788buwYe4g4WT+05pKyNruVKjQ25x3n0DQcM="),
        };
        assert_eq!(
            user.rpcauth_with_salt("93648e835a54c573682c2eb19f882535"),
            "rt:93648e835a54c573682c2eb19f882535$\
             7681e9c5b74bdd85e78166031d2058e1069b3ed7ed967c93fc63abba06f31144"
        );
    }

    #[test]
    fn created_once_stored_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        let first = RpcCredentials::load_or_create(&secrets).unwrap();
        let again = RpcCredentials::load_or_create(&secrets).unwrap();
        assert_eq!(first, again);
        assert_ne!(first.supervisor.password, first.lightning.password);
        let path = RpcCredentials::path(&secrets);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn the_salt_differs_every_time() {
        let user = RpcUser::generate("x");
        assert_ne!(user.rpcauth(), user.rpcauth());
        assert!(!format!("{user:?}").contains(user.password.expose()));
    }
}
