//! Who may use the web page: one admin password, set when the box is claimed, and login
//! sessions.
//!
//! - No default password. A new box is *unclaimed*: the first visitor sets the password,
//!   proving physical access with the one-time setup code shown on the box's screen (also
//!   in `secrets/setup-code`, 0600, for boxes without a screen), or the image's first-boot
//!   password file (`web.initial_password_file`) sets it for headless setups.
//! - The password is stored only as an Argon2id hash (0600). Sessions are random tokens,
//!   accepted as an HttpOnly SameSite=Strict cookie (the web page) or as
//!   `Authorization: Bearer` (scripts); only their SHA-256 is kept in memory.
//! - Wrong passwords slow the next attempt down (doubling up to a minute).
//! - Cookie-authenticated changes must be JSON requests, which browsers never send across
//!   sites without asking: together with SameSite=Strict this shuts out CSRF.

use crate::fsutil;
use crate::secret::Secret;
use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::{ready, Ready};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub const SESSION_COOKIE: &str = "plugnode_session";
const SESSION_IDLE_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);
const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_LOCKOUT: Duration = Duration::from_secs(60);
const ADMIN_FILE: &str = "web-admin.toml";
const SETUP_CODE_FILE: &str = "setup-code";

/// An error the API returns as JSON `{"error": …}` with a status code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Lets the web page show the right form.
    pub setup_required: bool,
    /// A stable error kind (e.g. "already_paid") for pages and scripts.
    pub kind: Option<String>,
    /// More fields for the page (e.g. the fee a liquidity provider asks).
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            setup_required: false,
            kind: None,
            extra: Vec::new(),
        }
    }

    /// Adds a field to the JSON body.
    pub fn with_extra(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// Adds a stable kind (anything that serializes to a string).
    pub fn with_kind(mut self, kind: impl Serialize) -> Self {
        self.kind = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        self
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({ "error": self.message });
        if self.setup_required {
            body["setup_required"] = true.into();
        }
        if let Some(kind) = &self.kind {
            body["kind"] = kind.clone().into();
        }
        for (key, value) in &self.extra {
            body[*key] = value.clone();
        }
        HttpResponse::build(self.status).json(body)
    }
}

#[derive(Serialize, Deserialize)]
struct AdminFile {
    password_hash: String,
}

struct Session {
    last_seen: Instant,
}

struct Lockout {
    failures: u32,
    until: Option<Instant>,
}

/// The web page's authentication state. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    secrets_dir: PathBuf,
    password_hash: Mutex<Option<String>>,
    setup_code: Mutex<Option<Secret>>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    lockout: Mutex<Lockout>,
    /// One password hash at a time: each takes 19 MiB, too much to run many at once on a
    /// 512 MB board.
    hashing: tokio::sync::Mutex<()>,
}

impl Auth {
    /// Loads the admin password hash; on an unclaimed box, takes the first-boot password
    /// file if there is one, or else makes a setup code.
    pub fn load(secrets_dir: &Path, initial_password_file: Option<&Path>) -> anyhow::Result<Auth> {
        let admin_path = secrets_dir.join(ADMIN_FILE);
        let mut password_hash = match std::fs::read_to_string(&admin_path) {
            Ok(text) => Some(
                toml::from_str::<AdminFile>(&text)
                    .map_err(|err| {
                        anyhow::anyhow!(
                            "{} is damaged ({}): delete it to set a new web password",
                            admin_path.display(),
                            err.message()
                        )
                    })?
                    .password_hash,
            ),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err.into()),
        };
        let auth = Auth {
            inner: Arc::new(AuthInner {
                secrets_dir: secrets_dir.to_path_buf(),
                password_hash: Mutex::new(None),
                setup_code: Mutex::new(None),
                sessions: Mutex::new(HashMap::new()),
                lockout: Mutex::new(Lockout {
                    failures: 0,
                    until: None,
                }),
                hashing: tokio::sync::Mutex::new(()),
            }),
        };
        if password_hash.is_none() {
            if let Some(file) = initial_password_file {
                password_hash = auth.take_initial_password(file)?;
            }
        }
        let claimed = password_hash.is_some();
        *auth.inner.password_hash.lock().unwrap() = password_hash;
        if claimed {
            let _ = std::fs::remove_file(secrets_dir.join(SETUP_CODE_FILE));
        } else {
            auth.make_setup_code()?;
        }
        Ok(auth)
    }

    /// Sets the password from the image's first-boot file and deletes the file.
    fn take_initial_password(&self, file: &Path) -> anyhow::Result<Option<String>> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                warn!(
                    "cannot read the first-boot password file {}: {err}",
                    file.display()
                );
                return Ok(None);
            }
        };
        let password = Secret::new(text.lines().next().unwrap_or_default().trim());
        if let Err(err) = check_password_rules(&password) {
            warn!(
                "ignoring the first-boot password file {}: {}",
                file.display(),
                err.message
            );
            return Ok(None);
        }
        let hash = hash_password(&password)?;
        self.store_hash(&hash)?;
        if let Err(err) = std::fs::remove_file(file) {
            warn!(
                "the web password was set from {}, but the file could not be deleted ({err}): \
                 delete it yourself",
                file.display()
            );
        }
        info!("web password set from the first-boot password file");
        Ok(Some(hash))
    }

    fn make_setup_code(&self) -> std::io::Result<()> {
        // 8 characters from an alphabet without look-alikes (0/O, 1/I/L).
        const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
        let mut bytes = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let code: String = bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        fsutil::ensure_private_dir(&self.inner.secrets_dir, 0o700)?;
        fsutil::write_atomic(
            &self.inner.secrets_dir.join(SETUP_CODE_FILE),
            format!("{code}\n").as_bytes(),
            0o600,
        )?;
        *self.inner.setup_code.lock().unwrap() = Some(Secret::new(code));
        Ok(())
    }

    pub fn is_claimed(&self) -> bool {
        self.inner.password_hash.lock().unwrap().is_some()
    }

    /// The one-time code that proves physical access while the box is unclaimed (for the
    /// screen and the demo's console; never logged).
    pub fn setup_code(&self) -> Option<Secret> {
        self.inner.setup_code.lock().unwrap().clone()
    }

    /// Claims the box: checks the setup code, stores the password, returns a session token.
    pub async fn claim(&self, setup_code: &str, password: Secret) -> Result<Secret, ApiError> {
        check_password_rules(&password)?;
        self.check_lockout()?;
        if self.is_claimed() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "This box already has a password: log in with it.",
            ));
        }
        let expected = self.setup_code();
        let given = setup_code
            .trim()
            .to_ascii_uppercase()
            .replace([' ', '-'], "");
        let matches = expected.is_some_and(|code| constant_time_eq(code.expose(), &given));
        if !matches {
            self.record_failure();
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "That setup code is wrong. Type the code shown on the box's screen (boxes \
                 without a screen: the file secrets/setup-code in plugnode's data directory).",
            ));
        }
        let _one_at_a_time = self.inner.hashing.lock().await;
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        self.store_hash(&hash).map_err(internal)?;
        *self.inner.password_hash.lock().unwrap() = Some(hash);
        *self.inner.setup_code.lock().unwrap() = None;
        let _ = std::fs::remove_file(self.inner.secrets_dir.join(SETUP_CODE_FILE));
        info!("the box was claimed: web password set");
        self.reset_lockout();
        Ok(self.new_session())
    }

    /// Checks the password; returns a new session token.
    pub async fn login(&self, password: Secret) -> Result<Secret, ApiError> {
        self.verify_password(password).await?;
        Ok(self.new_session())
    }

    /// Checks the password again before a dangerous action (same throttling as logging in).
    pub async fn verify_password(&self, password: Secret) -> Result<(), ApiError> {
        self.check_lockout()?;
        let Some(hash) = self.inner.password_hash.lock().unwrap().clone() else {
            return Err(setup_required());
        };
        let _one_at_a_time = self.inner.hashing.lock().await;
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(internal)?;
        if !ok {
            self.record_failure();
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Wrong password. Forgot it? Delete secrets/web-admin.toml in plugnode's data \
                 directory (needs the SD card or a shell) and set a new one.",
            ));
        }
        self.reset_lockout();
        Ok(())
    }

    pub fn logout(&self, token: &str) {
        self.inner
            .sessions
            .lock()
            .unwrap()
            .remove(&token_key(token));
    }

    /// Whether `token` is a live session (and marks it used).
    pub fn check_session(&self, token: &str) -> bool {
        let mut sessions = self.inner.sessions.lock().unwrap();
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.last_seen) < SESSION_IDLE_LIMIT);
        match sessions.get_mut(&token_key(token)) {
            Some(session) => {
                session.last_seen = now;
                true
            }
            None => false,
        }
    }

    fn new_session(&self) -> Secret {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.inner.sessions.lock().unwrap().insert(
            token_key(&token),
            Session {
                last_seen: Instant::now(),
            },
        );
        Secret::new(token)
    }

    fn store_hash(&self, hash: &str) -> std::io::Result<()> {
        fsutil::ensure_private_dir(&self.inner.secrets_dir, 0o700)?;
        let text = toml::to_string(&AdminFile {
            password_hash: hash.to_string(),
        })
        .expect("admin file serializes");
        fsutil::write_atomic(
            &self.inner.secrets_dir.join(ADMIN_FILE),
            text.as_bytes(),
            0o600,
        )
    }

    fn check_lockout(&self) -> Result<(), ApiError> {
        let lockout = self.inner.lockout.lock().unwrap();
        if let Some(until) = lockout.until {
            let now = Instant::now();
            if until > now {
                let wait = (until - now).as_secs() + 1;
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many wrong attempts: wait {wait} s and try again."),
                ));
            }
        }
        Ok(())
    }

    fn record_failure(&self) {
        let mut lockout = self.inner.lockout.lock().unwrap();
        lockout.failures += 1;
        let delay = Duration::from_millis(500)
            .saturating_mul(1 << lockout.failures.min(16))
            .min(MAX_LOCKOUT);
        lockout.until = Some(Instant::now() + delay);
    }

    fn reset_lockout(&self) {
        let mut lockout = self.inner.lockout.lock().unwrap();
        lockout.failures = 0;
        lockout.until = None;
    }
}

fn check_password_rules(password: &Secret) -> Result<(), ApiError> {
    let chars = password.expose().chars().count();
    if chars < MIN_PASSWORD_CHARS || password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "The password must have at least {MIN_PASSWORD_CHARS} characters (a few \
                 words make a good one)."
            ),
        ));
    }
    Ok(())
}

fn hash_password(password: &Secret) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("cannot hash the password: {err}"))?
        .to_string())
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn setup_required() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: "This box has no password yet: set one on the web page first.".into(),
        setup_required: true,
        kind: None,
        extra: Vec::new(),
    }
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

/// The session token a request carries: the `Authorization: Bearer` header or the cookie.
/// The second value says whether it came from the cookie.
pub fn request_token(request: &HttpRequest) -> Option<(String, bool)> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .map(|token| (token.trim().to_string(), false));
    }
    let cookies = request.headers().get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| (value.to_string(), true))
    })
}

/// The `Set-Cookie` value for a new session (or, with `None`, for logging out).
pub fn session_cookie(token: Option<&Secret>) -> String {
    match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            token.expose(),
            SESSION_IDLE_LIMIT.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// Extractor for handlers that need a logged-in user.
pub struct Authenticated;

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Authenticated, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<Authenticated, ApiError> {
    let auth = request
        .app_data::<actix_web::web::Data<Auth>>()
        .expect("Auth is registered with the app");
    if !auth.is_claimed() {
        return Err(setup_required());
    }
    let Some((token, from_cookie)) = request_token(request) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Log in first: open the web page and enter the box's password.",
        ));
    };
    if !auth.check_session(&token) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Your login has expired: log in again.",
        ));
    }
    let changes_something = !matches!(*request.method(), Method::GET | Method::HEAD);
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if from_cookie && changes_something && !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Changes must be sent as JSON (Content-Type: application/json).",
        ));
    }
    Ok(Authenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claim_with_the_setup_code_then_login() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::load(dir.path(), None).unwrap();
        assert!(!auth.is_claimed());
        let code = auth.setup_code().unwrap();
        let on_disk = std::fs::read_to_string(dir.path().join(SETUP_CODE_FILE)).unwrap();
        assert_eq!(on_disk.trim(), code.expose());

        let err = auth
            .claim("WRONGCODE", Secret::new("correct horse"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        // The wrong attempt locks out the next one for a moment.
        let err = auth
            .claim(code.expose(), Secret::new("correct horse"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        auth.reset_lockout();

        let short = auth.claim(code.expose(), Secret::new("short")).await;
        assert_eq!(short.unwrap_err().status, StatusCode::BAD_REQUEST);

        let lowercase = code.expose().to_ascii_lowercase();
        let token = auth
            .claim(&lowercase, Secret::new("correct horse"))
            .await
            .unwrap();
        assert!(auth.check_session(token.expose()));
        assert!(auth.setup_code().is_none());
        assert!(!dir.path().join(SETUP_CODE_FILE).exists());

        // The hash survives a restart; the password works, a wrong one does not.
        let auth = Auth::load(dir.path(), None).unwrap();
        assert!(auth.is_claimed());
        assert!(!auth.check_session(token.expose()), "sessions are per run");
        let wrong = auth.login(Secret::new("battery staple")).await;
        assert_eq!(wrong.unwrap_err().status, StatusCode::UNAUTHORIZED);
        auth.reset_lockout();
        let token = auth.login(Secret::new("correct horse")).await.unwrap();
        assert!(auth.check_session(token.expose()));
        auth.logout(token.expose());
        assert!(!auth.check_session(token.expose()));
    }

    #[test]
    fn the_first_boot_file_sets_the_password_and_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugnode-password.txt");
        std::fs::write(&file, "first boot pass\n").unwrap();
        let secrets = dir.path().join("secrets");
        let auth = Auth::load(&secrets, Some(&file)).unwrap();
        assert!(auth.is_claimed());
        assert!(!file.exists());
        let stored = std::fs::read_to_string(secrets.join(ADMIN_FILE)).unwrap();
        assert!(stored.contains("$argon2id$") && !stored.contains("first boot pass"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(secrets.join(ADMIN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_too_short_first_boot_password_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw.txt");
        std::fs::write(&file, "short").unwrap();
        let auth = Auth::load(&dir.path().join("secrets"), Some(&file)).unwrap();
        assert!(!auth.is_claimed());
        assert!(auth.setup_code().is_some());
    }

    #[test]
    fn cookies_carry_the_session_safely() {
        let cookie = session_cookie(Some(&Secret::new("abc")));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "other=1; plugnode_session=abc"))
            .to_http_request();
        assert_eq!(request_token(&request), Some(("abc".into(), true)));
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer xyz"))
            .to_http_request();
        assert_eq!(request_token(&request), Some(("xyz".into(), false)));
    }
}
