//! Who may use the web page: one admin password, set when the box is claimed, and login
//! sessions.
//!
//! - No default password. A new box is *unclaimed*: the first visitor sets the password,
//!   proving physical access with the one-time setup code shown on the box's screen (also
//!   in `secrets/setup-code`, 0600, for boxes without a screen), or the image's first-boot
//!   password file (`web.initial_password_file`) sets it for headless setups.
//! - The password is stored only as an Argon2id hash (0600), checked one at a time with a
//!   short queue; wrong ones slow down the client that sent them (see `throttle`, also
//!   for the owner's unlock code).
//! - Sessions are random tokens, accepted as an HttpOnly SameSite=Strict cookie (the web
//!   page) or as `Authorization: Bearer` (scripts); only their SHA-256 is kept in memory.
//!   A session ends after 7 days unused or 30 days in all, and "log out everywhere" ends
//!   them all.
//! - Dangerous actions need a *fresh* session: the password typed again within the last
//!   5 minutes (`POST /api/reauth`, or the password in the request itself).
//! - Cookie-authenticated changes must be JSON requests, which browsers never send across
//!   sites without asking: together with SameSite=Strict and the Origin check (`guard`)
//!   this shuts out CSRF.

use super::error::ApiError;
use super::throttle::{self, Throttle};
use crate::fsutil;
use crate::secret::Secret;
use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{FromRequest, HttpRequest};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

pub const SESSION_COOKIE: &str = "plugnode_session";
const SESSION_IDLE_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long typing the password again counts for dangerous actions.
pub const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;
/// Password checks waiting behind the one running; more are turned away at once.
const MAX_WAITING_HASHES: usize = 4;
const ADMIN_FILE: &str = "web-admin.toml";
const SETUP_CODE_FILE: &str = "setup-code";

#[derive(Serialize, Deserialize)]
struct AdminFile {
    password_hash: String,
}

struct Session {
    created: Instant,
    last_seen: Instant,
    /// Until when the password typed again counts (dangerous actions).
    fresh_until: Option<Instant>,
}

impl Session {
    fn new(now: Instant) -> Session {
        Session {
            created: now,
            last_seen: now,
            fresh_until: None,
        }
    }

    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) < SESSION_IDLE_LIMIT
            && now.duration_since(self.created) < SESSION_LIFETIME
    }
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
    throttle: Throttle,
    /// One password hash at a time: each takes 19 MiB, too much to run many at once on a
    /// 512 MB board.
    hashing: tokio::sync::Mutex<()>,
    /// Checks waiting for `hashing` (bounded: a flood is turned away, not queued).
    waiting: AtomicUsize,
}

/// Whether a password check skips the per-client wait and the queue (the owner's unlock
/// code from the box's screen).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Throttled,
    Unlocked,
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
                throttle: Throttle::new(secrets_dir),
                hashing: tokio::sync::Mutex::new(()),
                waiting: AtomicUsize::new(0),
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
            Ok(text) => zeroize::Zeroizing::new(text),
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
        let code = throttle::random_code();
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

    /// The owner's way past the wait after wrong passwords: the current unlock code (the
    /// same one until it expires or is used) and how long it stays valid. For the box's
    /// screen only; never logged, never in an answer.
    pub fn unlock_code(&self) -> Result<(Secret, Duration), ApiError> {
        if !self.is_claimed() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "This box has no password yet: set one with the setup code on its screen.",
            ));
        }
        self.inner.throttle.unlock_code().map_err(internal)
    }

    /// Claims the box: checks the setup code, stores the password, returns a session token
    /// (fresh: the password was just chosen).
    pub async fn claim(
        &self,
        client: IpAddr,
        setup_code: &str,
        password: Secret,
    ) -> Result<Secret, ApiError> {
        check_password_rules(&password)?;
        if self.is_claimed() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "This box already has a password: log in with it.",
            ));
        }
        self.inner.throttle.begin(client).map_err(throttled)?;
        let expected = self.setup_code();
        let given = throttle::normalize_code(setup_code);
        let matches =
            expected.is_some_and(|code| throttle::constant_time_eq(code.expose(), &given));
        if !matches {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "That setup code is wrong. Type the code shown on the box's screen (boxes \
                 without a screen: the file secrets/setup-code in plugnode's data directory).",
            ));
        }
        let hash = self.hash(password).await?;
        self.store_hash(&hash).map_err(internal)?;
        *self.inner.password_hash.lock().unwrap() = Some(hash);
        *self.inner.setup_code.lock().unwrap() = None;
        let _ = std::fs::remove_file(self.inner.secrets_dir.join(SETUP_CODE_FILE));
        info!("the box was claimed: web password set");
        self.inner.throttle.succeeded(client);
        let token = self.new_session();
        self.mark_fresh(token.expose());
        Ok(token)
    }

    /// Checks the password; returns a new session token. With the unlock code from the
    /// box's screen, the client's wait and the queue are skipped.
    pub async fn login(
        &self,
        client: IpAddr,
        password: Secret,
        unlock_code: Option<&str>,
    ) -> Result<Secret, ApiError> {
        let pass = match unlock_code.filter(|code| !code.trim().is_empty()) {
            Some(code) if self.inner.throttle.take_unlock_attempt(code) => Pass::Unlocked,
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "That unlock code is wrong or has expired. Ask the box for one again and \
                     type the code its screen shows.",
                )
                .with_kind("wrong_unlock_code"))
            }
            None => Pass::Throttled,
        };
        self.check_password(client, password, pass).await?;
        if pass == Pass::Unlocked {
            self.inner.throttle.unlock_code_used();
            info!("logged in with the unlock code from the box's screen");
        }
        Ok(self.new_session())
    }

    /// The password typed again: the session counts as fresh for [`FRESH_FOR`].
    pub async fn reauth(
        &self,
        token: &str,
        client: IpAddr,
        password: Secret,
    ) -> Result<(), ApiError> {
        self.check_password(client, password, Pass::Throttled)
            .await?;
        self.mark_fresh(token);
        Ok(())
    }

    /// Before a dangerous action: `Ok` when the session is fresh or `password` (from the
    /// request) is right (which also makes the session fresh); else 401 "reauth_required".
    pub async fn require_fresh(
        &self,
        session: &Authenticated,
        client: IpAddr,
        password: Option<Secret>,
    ) -> Result<(), ApiError> {
        if let Some(password) = password {
            return self.reauth(&session.token, client, password).await;
        }
        if self.is_fresh(&session.token) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "This needs your password again: type it and try once more (scripts: POST \
             /api/reauth, or \"password\" in this request).",
        )
        .with_kind("reauth_required"))
    }

    /// Changes the password after checking the old one. Every other session ends; this one
    /// stays, fresh.
    pub async fn change_password(
        &self,
        session: &Authenticated,
        client: IpAddr,
        old: Secret,
        new: Secret,
    ) -> Result<(), ApiError> {
        check_password_rules(&new)?;
        self.check_password(client, old, Pass::Throttled).await?;
        let hash = self.hash(new).await?;
        self.store_hash(&hash).map_err(internal)?;
        *self.inner.password_hash.lock().unwrap() = Some(hash);
        let keep = token_key(&session.token);
        self.inner
            .sessions
            .lock()
            .unwrap()
            .retain(|key, _| *key == keep);
        self.mark_fresh(&session.token);
        info!("web password changed; other sessions logged out");
        Ok(())
    }

    /// Checks the password, counted against `client` before it is hashed.
    async fn check_password(
        &self,
        client: IpAddr,
        password: Secret,
        pass: Pass,
    ) -> Result<(), ApiError> {
        if password.expose().len() > MAX_PASSWORD_BYTES {
            return Err(wrong_password());
        }
        if pass == Pass::Throttled {
            // A flood is turned away before it counts against anyone.
            if self.inner.waiting.load(Ordering::SeqCst) > MAX_WAITING_HASHES {
                return Err(busy());
            }
            self.inner.throttle.begin(client).map_err(throttled)?;
        }
        let Some(hash) = self.inner.password_hash.lock().unwrap().clone() else {
            return Err(setup_required());
        };
        let ok = self
            .run_hash(move || {
                PasswordHash::new(&hash).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(password.expose().as_bytes(), &parsed)
                        .is_ok()
                })
            })
            .await?;
        if !ok {
            return Err(wrong_password());
        }
        self.inner.throttle.succeeded(client);
        Ok(())
    }

    async fn hash(&self, password: Secret) -> Result<String, ApiError> {
        self.run_hash(move || hash_password(&password))
            .await?
            .map_err(internal)
    }

    /// Runs one Argon2 job, one at a time, counted in `waiting` while it waits or runs
    /// (checks beyond [`MAX_WAITING_HASHES`] are turned away before they get here; the
    /// unlock code and setting a password always queue).
    async fn run_hash<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.inner.waiting);
        let _one_at_a_time = self.inner.hashing.lock().await;
        tokio::task::spawn_blocking(job).await.map_err(internal)
    }

    pub fn logout(&self, token: &str) {
        self.inner
            .sessions
            .lock()
            .unwrap()
            .remove(&token_key(token));
    }

    /// Ends every session, on every device.
    pub fn logout_everywhere(&self) -> usize {
        let mut sessions = self.inner.sessions.lock().unwrap();
        let count = sessions.len();
        sessions.clear();
        count
    }

    /// Whether `token` is a live session (and marks it used).
    pub fn check_session(&self, token: &str) -> bool {
        let mut sessions = self.inner.sessions.lock().unwrap();
        let now = Instant::now();
        sessions.retain(|_, s| s.alive(now));
        match sessions.get_mut(&token_key(token)) {
            Some(session) => {
                session.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// How long the session's password typed again still counts (zero: not fresh).
    pub fn fresh_for(&self, token: &str) -> Duration {
        let now = Instant::now();
        self.inner
            .sessions
            .lock()
            .unwrap()
            .get(&token_key(token))
            .and_then(|s| s.fresh_until)
            .map(|until| until.saturating_duration_since(now))
            .unwrap_or_default()
    }

    fn is_fresh(&self, token: &str) -> bool {
        !self.fresh_for(token).is_zero()
    }

    fn mark_fresh(&self, token: &str) {
        if let Some(session) = self
            .inner
            .sessions
            .lock()
            .unwrap()
            .get_mut(&token_key(token))
        {
            session.fresh_until = Some(Instant::now() + FRESH_FOR);
        }
    }

    fn new_session(&self) -> Secret {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]);
        self.inner
            .sessions
            .lock()
            .unwrap()
            .insert(token_key(&token), Session::new(Instant::now()));
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
}

/// Decrements the waiting count however the check ends (also when its request is dropped).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn check_password_rules(password: &Secret) -> Result<(), ApiError> {
    let chars = password.expose().chars().count();
    if chars < MIN_PASSWORD_CHARS || password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "The password must have at least {MIN_PASSWORD_CHARS} characters (a few \
                 words make a good one) and at most {MAX_PASSWORD_BYTES} bytes."
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

fn wrong_password() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Wrong password. Forgot it? Delete secrets/web-admin.toml in plugnode's data \
         directory (needs the SD card or a shell) and set a new one.",
    )
    .with_kind("wrong_password")
}

/// The client must wait; the page then offers the unlock code.
fn throttled(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError {
        retry_after: Some(secs),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords from this device: wait {secs} s and try again. \
                 Locked out although your password is right? Ask the box for an unlock code \
                 (it appears on the box's screen) and log in with it."
            ),
        )
        .with_kind("throttled")
    }
}

fn busy() -> ApiError {
    ApiError {
        retry_after: Some(2),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "The box is busy checking other passwords: try again in a few seconds, or ask \
             the box for an unlock code (it appears on the box's screen) and log in with it.",
        )
        .with_kind("busy")
    }
}

fn setup_required() -> ApiError {
    ApiError {
        setup_required: true,
        ..ApiError::new(
            StatusCode::UNAUTHORIZED,
            "This box has no password yet: set one on the web page first.",
        )
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

/// The peer address the throttle counts attempts against.
pub fn client_of(request: &HttpRequest) -> IpAddr {
    request
        .peer_addr()
        .map(|address| address.ip())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// Whether the browser keeps a `Secure` cookie from this request: over TLS, and on
/// loopback (browsers treat http://localhost and 127.0.0.1 as secure). Over plain http
/// on the home network a `Secure` cookie would be dropped, and the page could not log in.
pub fn cookie_can_be_secure(request: &HttpRequest) -> bool {
    if request.app_config().secure() {
        return true;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `Set-Cookie` value for a new session (or, with `None`, for logging out).
pub fn session_cookie(token: Option<&Secret>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            token.expose(),
            SESSION_LIFETIME.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Extractor for handlers that need a logged-in user; carries the session's token (for
/// [`Auth::require_fresh`]).
pub struct Authenticated {
    token: String,
}

impl Authenticated {
    /// The session's token (never logged, never in an answer).
    pub fn token(&self) -> &str {
        &self.token
    }
}

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
    // Neither type is one a form on another site can send, nor one its scripts may send
    // here without a CORS preflight the box never grants: a cookie alone cannot change
    // anything. (JSON for every change; the raw bytes of an update bundle.)
    let not_sendable_cross_site = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/octet-stream")
        });
    if from_cookie && changes_something && !not_sendable_cross_site {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Changes must be sent as JSON (Content-Type: application/json).",
        ));
    }
    Ok(Authenticated { token })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 10));
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 66));

    fn session(token: &Secret) -> Authenticated {
        Authenticated {
            token: token.expose().to_string(),
        }
    }

    #[tokio::test]
    async fn claim_with_the_setup_code_then_login() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::load(dir.path(), None).unwrap();
        assert!(!auth.is_claimed());
        let code = auth.setup_code().unwrap();
        let on_disk = std::fs::read_to_string(dir.path().join(SETUP_CODE_FILE)).unwrap();
        assert_eq!(on_disk.trim(), code.expose());

        let err = auth
            .claim(HERE, "WRONGCODE", Secret::new("correct horse"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        // The wrong attempt makes this client wait a moment; another one may go on.
        let err = auth
            .claim(HERE, code.expose(), Secret::new("correct horse"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after, Some(1));

        let short = auth.claim(THERE, code.expose(), Secret::new("short")).await;
        assert_eq!(short.unwrap_err().status, StatusCode::BAD_REQUEST);

        let lowercase = code.expose().to_ascii_lowercase();
        let token = auth
            .claim(THERE, &lowercase, Secret::new("correct horse"))
            .await
            .unwrap();
        assert!(auth.check_session(token.expose()));
        assert!(
            auth.is_fresh(token.expose()),
            "the password was just chosen"
        );
        assert!(auth.setup_code().is_none());
        assert!(!dir.path().join(SETUP_CODE_FILE).exists());

        // The hash survives a restart; the password works, a wrong one does not.
        let auth = Auth::load(dir.path(), None).unwrap();
        assert!(auth.is_claimed());
        assert!(!auth.check_session(token.expose()), "sessions are per run");
        let wrong = auth.login(HERE, Secret::new("battery staple"), None).await;
        let wrong = wrong.unwrap_err();
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.kind.as_deref(), Some("wrong_password"));
        let token = auth
            .login(THERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        assert!(auth.check_session(token.expose()));
        assert!(
            !auth.is_fresh(token.expose()),
            "dangerous actions ask again after logging in"
        );
        auth.logout(token.expose());
        assert!(!auth.check_session(token.expose()));
    }

    async fn claimed(dir: &Path) -> Auth {
        std::fs::write(dir.join("pw"), "correct horse\n").unwrap();
        Auth::load(&dir.join("secrets"), Some(&dir.join("pw"))).unwrap()
    }

    /// A burst of wrong passwords from one client: only the first is checked, the owner
    /// elsewhere gets in at once. Failed on the old code (one global lockout, the attempt
    /// recorded after the hash): 24 of 30 parallel guesses were checked, and the owner got
    /// 429.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_guesses_is_checked_once_and_does_not_lock_the_owner_out() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        let guesses: Vec<_> = (0..30)
            .map(|i| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    auth.login(THERE, Secret::new(format!("guess number {i}")), None)
                        .await
                        .unwrap_err()
                        .status
                })
            })
            .collect();
        let mut checked = 0;
        for guess in guesses {
            match guess.await.unwrap() {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}"),
            }
        }
        assert_eq!(checked, 1, "one guess checked, the rest wait");
        auth.login(HERE, Secret::new("correct horse"), None)
            .await
            .expect("the owner is not locked out");
    }

    /// Many clients at once: one hash runs, a few wait, the rest are turned away at once,
    /// but the owner's unlock code always gets a turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_of_password_checks_is_bounded_but_the_unlock_code_gets_through() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        let guesses: Vec<_> = (0..20u8)
            .map(|i| {
                let auth = auth.clone();
                let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
                tokio::spawn(async move {
                    auth.login(ip, Secret::new("not the password"), None)
                        .await
                        .unwrap_err()
                })
            })
            .collect();
        let (code, _) = auth.unlock_code().unwrap();
        let owner = auth
            .login(HERE, Secret::new("correct horse"), Some(code.expose()))
            .await;
        assert!(owner.is_ok(), "{:?}", owner.err());
        let mut busy = 0;
        for guess in guesses {
            let err = guess.await.unwrap();
            if err.kind.as_deref() == Some("busy") {
                busy += 1;
            }
        }
        assert!(busy > 0, "a flood is turned away, not queued");
        assert!(
            auth.login(HERE, Secret::new("correct horse"), Some(code.expose()))
                .await
                .is_err(),
            "the unlock code works once"
        );
    }

    #[tokio::test]
    async fn the_unlock_code_lets_a_throttled_owner_in() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        for _ in 0..3 {
            let _ = auth.login(HERE, Secret::new("mistyped!"), None).await;
        }
        let err = auth
            .login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind.as_deref(), Some("throttled"));
        assert!(err.message.contains("unlock code"), "{}", err.message);
        let wrong = auth
            .login(HERE, Secret::new("correct horse"), Some("AAAA-AAAA"))
            .await
            .unwrap_err();
        assert_eq!(wrong.kind.as_deref(), Some("wrong_unlock_code"));
        let (code, _) = auth.unlock_code().unwrap();
        let token = auth
            .login(HERE, Secret::new("correct horse"), Some(code.expose()))
            .await
            .unwrap();
        assert!(auth.check_session(token.expose()));
        // The right password forgave the client's wrong ones.
        auth.login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
    }

    /// Failed on the old code: sessions slid forever while used.
    #[tokio::test(start_paused = true)]
    async fn sessions_end_after_a_week_unused_or_thirty_days_in_all() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        let daily = auth
            .login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        let idle = auth
            .login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        for day in 1..=29 {
            tokio::time::advance(Duration::from_secs(24 * 3600)).await;
            assert!(auth.check_session(daily.expose()), "day {day}");
        }
        assert!(!auth.check_session(idle.expose()), "a week unused");
        tokio::time::advance(Duration::from_secs(24 * 3600)).await;
        assert!(!auth.check_session(daily.expose()), "thirty days in all");
    }

    #[tokio::test(start_paused = true)]
    async fn the_password_typed_again_counts_for_five_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        let token = auth
            .login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        let me = session(&token);
        let err = auth.require_fresh(&me, HERE, None).await.unwrap_err();
        assert_eq!(
            (err.status, err.kind.as_deref()),
            (StatusCode::UNAUTHORIZED, Some("reauth_required"))
        );
        let wrong = auth
            .require_fresh(&me, HERE, Some(Secret::new("wrong one")))
            .await
            .unwrap_err();
        assert_eq!(wrong.kind.as_deref(), Some("wrong_password"));
        tokio::time::advance(Duration::from_secs(2)).await;
        auth.reauth(&me.token, HERE, Secret::new("correct horse"))
            .await
            .unwrap();
        auth.require_fresh(&me, HERE, None).await.unwrap();
        tokio::time::advance(FRESH_FOR - Duration::from_secs(1)).await;
        auth.require_fresh(&me, HERE, None).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(auth.require_fresh(&me, HERE, None).await.is_err());
        // The password in the request itself also does.
        auth.require_fresh(&me, HERE, Some(Secret::new("correct horse")))
            .await
            .unwrap();
        assert!(auth.is_fresh(&me.token));
    }

    #[tokio::test]
    async fn changing_the_password_needs_the_old_one_and_logs_out_everywhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let auth = claimed(dir.path()).await;
        let mine = auth
            .login(HERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        let other = auth
            .login(THERE, Secret::new("correct horse"), None)
            .await
            .unwrap();
        let me = session(&mine);
        let wrong = auth
            .change_password(
                &me,
                HERE,
                Secret::new("guessing"),
                Secret::new("new password"),
            )
            .await
            .unwrap_err();
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let short = auth
            .change_password(
                &me,
                HERE,
                Secret::new("correct horse"),
                Secret::new("short"),
            )
            .await
            .unwrap_err();
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        auth.change_password(
            &me,
            HERE,
            Secret::new("correct horse"),
            Secret::new("new password"),
        )
        .await
        .unwrap();
        assert!(auth.check_session(mine.expose()));
        assert!(!auth.check_session(other.expose()));
        assert!(auth
            .login(THERE, Secret::new("correct horse"), None)
            .await
            .is_err());
        let again = Auth::load(&dir.path().join("secrets"), None).unwrap();
        again
            .login(HERE, Secret::new("new password"), None)
            .await
            .unwrap();

        assert_eq!(auth.logout_everywhere(), 1);
        assert!(!auth.check_session(mine.expose()));
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
        let cookie = session_cookie(Some(&Secret::new("abc")), true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(cookie.contains("Max-Age=2592000"), "thirty days: {cookie}");
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "other=1; plugnode_session=abc"))
            .to_http_request();
        assert_eq!(request_token(&request), Some(("abc".into(), true)));
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer xyz"))
            .to_http_request();
        assert_eq!(request_token(&request), Some(("xyz".into(), false)));
    }

    #[test]
    fn cookies_are_secure_where_the_browser_keeps_them() {
        let secure = |host: &str| {
            let request = actix_web::test::TestRequest::default()
                .insert_header((header::HOST, host))
                .to_http_request();
            cookie_can_be_secure(&request)
        };
        assert!(secure("127.0.0.1:8080"));
        assert!(secure("localhost"));
        assert!(secure("[::1]:80"));
        assert!(!secure("plugnode.local"), "plain http on the home network");
        assert!(!secure("192.168.1.20:80"));
    }
}
