//! RPC authentication as Bitcoin Core's `httprpc.cpp` and `rpc/request.cpp` do it: `rpcauth`
//! entries (`user:salt$hmac`, HMAC-SHA256 keyed with the salt *string*, as
//! `share/rpcauth/rpcauth.py` writes them), `rpcuser`/`rpcpassword`, and the cookie file
//! `<datadir>/regtest/.cookie` (`__cookie__:<64 hex>`) deleted on shutdown.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// User name of the cookie credentials (Core's `COOKIEAUTH_USER`).
pub const COOKIE_USER: &str = "__cookie__";

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// An `rpcauth` value is not `user:salt$hash`.
    #[error("Invalid -rpcauth argument.")]
    InvalidRpcAuth,
    #[error("Unable to open cookie authentication file {path} for writing: {source}")]
    Cookie {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One accepted credential: user, salt, hex HMAC of the password.
#[derive(Clone, Debug)]
struct Entry {
    user: String,
    salt: String,
    hash: String,
}

/// The credentials the RPC server accepts.
#[derive(Clone, Debug, Default)]
pub struct Authenticator {
    entries: Vec<Entry>,
    /// The cookie file this process wrote (deleted on shutdown).
    pub cookie_path: Option<PathBuf>,
}

fn hmac_hex(salt: &str, password: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes any key length");
    mac.update(password.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares without an early exit, like Core's `TimingResistantEqual`.
fn timing_resistant_eq(a: &[u8], b: &[u8]) -> bool {
    if b.is_empty() {
        return a.is_empty();
    }
    let mut acc = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        acc |= usize::from(x ^ b[i % b.len()]);
    }
    acc == 0
}

/// Builds an `rpcauth=` value for `user`/`password` with a random salt (what Core's
/// `rpcauth.py` prints).
pub fn rpcauth_line(user: &str, password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = hex::encode(salt);
    format!("{user}:{salt}${}", hmac_hex(&salt, password))
}

impl Authenticator {
    /// Core's `InitRPCAuthentication`: a cookie unless `rpcpassword` is set (and unless
    /// `-norpccookiefile`), plus every `rpcauth` line.
    pub fn init(
        rpc_user: Option<&str>,
        rpc_password: Option<&str>,
        rpc_auth: &[String],
        cookie_file: Option<&Path>,
        log: &dyn Fn(String),
    ) -> Result<Authenticator, AuthSetupError> {
        let mut auth = Authenticator::default();
        let mut plain: Option<(String, String)> = None;
        match rpc_password {
            None => match cookie_file {
                None => log("RPC authentication cookie file generation is disabled.".into()),
                Some(path) => {
                    let mut secret = [0u8; 32];
                    rand::thread_rng().fill_bytes(&mut secret);
                    let password = hex::encode(secret);
                    write_cookie(path, &password).map_err(|source| AuthSetupError::Cookie {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    log("Using random cookie authentication.".into());
                    log(format!(
                        "Generated RPC authentication cookie {}",
                        path.display()
                    ));
                    auth.cookie_path = Some(path.to_path_buf());
                    plain = Some((COOKIE_USER.into(), password));
                }
            },
            Some(password) => {
                log("Using rpcuser/rpcpassword authentication.".into());
                log("Warning: The use of rpcuser/rpcpassword is less secure, because credentials are configured in plain text. It is recommended that locally-run instances switch to cookie-based auth, or otherwise to use hashed rpcauth credentials. See share/rpcauth in the source directory for more information.".into());
                plain = Some((rpc_user.unwrap_or("").to_string(), password.to_string()));
            }
        }
        if let Some((user, password)) = plain {
            let mut salt = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut salt);
            let salt = hex::encode(salt);
            let hash = hmac_hex(&salt, &password);
            auth.entries.push(Entry { user, salt, hash });
        }
        if !rpc_auth.is_empty() {
            log("Using rpcauth authentication.".into());
        }
        for line in rpc_auth {
            let fields: Vec<&str> = line.split(':').collect();
            let salt_hmac: Vec<&str> = fields.last().unwrap_or(&"").split('$').collect();
            if fields.len() == 2 && salt_hmac.len() == 2 {
                auth.entries.push(Entry {
                    user: fields[0].to_string(),
                    salt: salt_hmac[0].to_string(),
                    hash: salt_hmac[1].to_string(),
                });
            } else {
                log("Invalid -rpcauth argument.".into());
                return Err(AuthSetupError::InvalidRpcAuth);
            }
        }
        Ok(auth)
    }

    /// Checks an `Authorization` header value; the user name when it is accepted.
    pub fn check(&self, header: &str) -> Option<String> {
        let encoded = header.strip_prefix("Basic ")?.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let text = String::from_utf8_lossy(&decoded);
        let (user, password) = text.split_once(':')?;
        let ok = self.entries.iter().any(|e| {
            timing_resistant_eq(e.user.as_bytes(), user.as_bytes())
                && timing_resistant_eq(hmac_hex(&e.salt, password).as_bytes(), e.hash.as_bytes())
        });
        ok.then(|| user.to_string())
    }

    /// Deletes the cookie file this process wrote.
    pub fn delete_cookie(&self) {
        if let Some(path) = &self.cookie_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `__cookie__:<password>` through a temporary file and a rename, owner-only.
fn write_cookie(path: &Path, password: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(format!("{COOKIE_USER}:{password}").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn rpcauth_matches_core_test_vector() {
        // From Bitcoin Core's test/functional/rpc_users.py.
        let line = "rt:93648e835a54c573682c2eb19f882535$7681e9c5b74bdd85e78166031d2058e1069b3ed7ed967c93fc63abba06f31144";
        let auth = Authenticator::init(None, None, &[line.to_string()], None, &|_| {}).unwrap();
        assert_eq!(
            auth.check(&basic("rt", "cA773lm788buwYe4g4WT+05pKyNruVKjQ25x3n0DQcM=")),
            Some("rt".into())
        );
        assert_eq!(auth.check(&basic("rt", "wrong")), None);
        assert_eq!(
            auth.check(&basic(
                "other",
                "cA773lm788buwYe4g4WT+05pKyNruVKjQ25x3n0DQcM="
            )),
            None
        );
        assert_eq!(auth.check("Bearer x"), None);
    }

    #[test]
    fn generated_rpcauth_lines_verify() {
        let line = rpcauth_line("alice", "secret");
        let auth = Authenticator::init(None, None, &[line], None, &|_| {}).unwrap();
        assert!(auth.check(&basic("alice", "secret")).is_some());
    }

    #[test]
    fn malformed_rpcauth_is_refused() {
        for bad in ["nouser", "a:b", "a:b:c$d", "a:b$c$d"] {
            assert!(
                Authenticator::init(None, None, &[bad.to_string()], None, &|_| {}).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn cookie_file_holds_the_password_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        let auth = Authenticator::init(None, None, &[], Some(&path), &|_| {}).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let (user, password) = text.split_once(':').unwrap();
        assert_eq!(user, COOKIE_USER);
        assert_eq!(password.len(), 64);
        assert!(auth.check(&basic(user, password)).is_some());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        auth.delete_cookie();
        assert!(!path.exists());
    }

    #[test]
    fn rpcpassword_replaces_the_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        let auth = Authenticator::init(Some("u"), Some("p"), &[], Some(&path), &|_| {}).unwrap();
        assert!(!path.exists());
        assert!(auth.check(&basic("u", "p")).is_some());
    }
}
