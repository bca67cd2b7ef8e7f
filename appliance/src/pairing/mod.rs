//! Pairing mobile wallets: Nostr Wallet Connect (Zeus, Alby Go, Amethyst, Damus, …) and
//! LNDHub (BlueWallet, Zeus), each connection with its permissions, budget and expiry,
//! revocable at once.
//!
//! - [`connection`]: what a connection is, and the checks on a new one.
//! - [`budget`]: budget periods.
//! - [`store`]: the connection store (its own SQLite file), budgets reserved before paying.
//! - [`wallet`]: what one app may do with the node, shared by both protocols.
//! - [`nwc`]: the NIP-47 service and the embedded relay.
//! - [`lndhub`]: the LNDHub API on its own listener.
//! - `settle`: outcomes that arrive after the app stopped waiting; notifications.
//!
//! Secrets: the box keeps only the app's public key (NWC) or a hash of its password
//! (LNDHub). The secret exists once, in the URI returned by [`PairingHandle::create`],
//! which the page and the e-ink show and then forget.

pub mod budget;
pub mod connection;
pub mod error;
pub mod lndhub;
pub mod nwc;
mod settle;
pub mod store;
pub mod wallet;

pub use connection::{ConnectionState, ConnectionView, NewConnection, Protocol};
pub use error::{ErrorKind, PairingError};

use crate::display::{DisplayHandle, PairingAnswer, PairingQuestion};
use crate::lightning::LightningHandle;
use crate::secret::Secret;
use crate::status::{unix_now, Status, StatusHandle};
use connection::{Connection, ConnectionRequest};
use error::Result;
use nostr_sdk::prelude::{Keys, NostrWalletConnectURI, RelayUrl};
use nwc::relay::EmbeddedRelay;
use nwc::{NwcService, NwcSettings};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use store::PairingStore;
use tokio::sync::watch;
use tracing::{info, warn};
use wallet::Wallet;

/// What pairing needs, filled from the config.
#[derive(Clone, Debug)]
pub struct PairingSettings {
    pub enabled: bool,
    /// Where `pairing.sqlite` lives.
    pub data_dir: PathBuf,
    /// Where the NWC service key lives (0600).
    pub secrets_dir: PathBuf,
    /// The embedded relay (`None`: off).
    pub relay_listen: Option<SocketAddr>,
    /// Public relays (`wss://…`) the service also listens on.
    pub public_relays: Vec<String>,
    /// The LNDHub API (`None`: off).
    pub lndhub_listen: Option<SocketAddr>,
    /// The name or address phones use to reach the box, when the automatic choice (its
    /// first address on the home network) is wrong.
    pub advertise_host: Option<String>,
}

/// Pairing's ports and keys, taken before any service starts (a port in use is a config
/// error to report first).
pub struct BoundPairing {
    settings: PairingSettings,
    store: PairingStore,
    keys: Keys,
    relay: Option<EmbeddedRelay>,
    lndhub: Option<TcpListener>,
}

impl BoundPairing {
    pub async fn bind(settings: PairingSettings) -> anyhow::Result<Option<BoundPairing>> {
        use anyhow::Context;
        if !settings.enabled {
            return Ok(None);
        }
        let store = PairingStore::open(&settings.data_dir).map_err(|err| {
            anyhow::anyhow!(
                "{err} ({}): the SD card may be failing",
                settings.data_dir.join(store::DB_FILE).display()
            )
        })?;
        let keys = nwc::load_or_create_service_keys(&settings.secrets_dir)?;
        let lndhub = match settings.lndhub_listen {
            Some(address) => Some(TcpListener::bind(address).with_context(|| {
                format!(
                    "cannot listen on {address} (pairing.lndhub_listen): another program may \
                     use the port; choose another one or turn LNDHub off"
                )
            })?),
            None => None,
        };
        let relay = match settings.relay_listen {
            Some(address) => Some(
                EmbeddedRelay::start(address, keys.public_key())
                    .await
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        Ok(Some(BoundPairing {
            settings,
            store,
            keys,
            relay,
            lndhub,
        }))
    }

    /// Where LNDHub answers (tests bind port 0).
    pub fn lndhub_address(&self) -> Option<SocketAddr> {
        self.lndhub.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts the services: NWC on its relays, LNDHub, and the settler.
    pub async fn start(
        self,
        lightning: LightningHandle,
        status: StatusHandle,
        display: Option<DisplayHandle>,
    ) -> anyhow::Result<Pairing> {
        let wallet = Wallet::new(self.store.clone(), lightning, status.clone());
        let nwc = if self.relay.is_some() || !self.settings.public_relays.is_empty() {
            Some(
                NwcService::start(
                    NwcSettings {
                        keys: self.keys.clone(),
                        embedded_relay: self.relay.as_ref().map(EmbeddedRelay::internal_url),
                        public_relays: self.settings.public_relays.clone(),
                    },
                    wallet.clone(),
                    status.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let lndhub_address = self.lndhub_address();
        let handle = PairingHandle {
            inner: Arc::new(Inner {
                settings: self.settings,
                wallet: wallet.clone(),
                status: status.clone(),
                display,
                service_key: self.keys.public_key(),
                relay: self.relay.as_ref().map(EmbeddedRelay::listen),
                nwc_running: nwc.is_some(),
                lndhub_address,
            }),
        };
        let lndhub = match self.lndhub {
            Some(listener) => Some(lndhub::LndhubServer::start(listener, wallet.clone())?),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let settler = tokio::spawn(settle::run(
            handle.clone(),
            nwc.as_ref().map(NwcService::publisher),
            stopped,
        ));
        handle.refresh_count().await;
        Ok(Pairing {
            handle,
            nwc,
            relay: self.relay,
            lndhub,
            settler,
            stop,
        })
    }
}

/// The running pairing services.
pub struct Pairing {
    handle: PairingHandle,
    nwc: Option<NwcService>,
    relay: Option<EmbeddedRelay>,
    lndhub: Option<lndhub::LndhubServer>,
    settler: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Pairing {
    pub fn handle(&self) -> PairingHandle {
        self.handle.clone()
    }

    /// Stops taking requests (LNDHub, NWC, the relay), then the settler. Payments in
    /// flight keep their reservations; the next start settles them.
    pub async fn stop(self) {
        if let Some(lndhub) = self.lndhub {
            lndhub.stop().await;
        }
        if let Some(nwc) = self.nwc {
            nwc.stop().await;
        }
        if let Some(relay) = &self.relay {
            relay.stop();
        }
        let _ = self.stop.send(true);
        let _ = self.settler.await;
    }
}

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Protocols {
    pub nwc: bool,
    pub lndhub: bool,
}

/// A connection just made: its URI is shown once and never again.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub uri: Secret,
    pub state: ConnectionState,
}

/// What the web page asks of pairing. Cheap to clone.
#[derive(Clone)]
pub struct PairingHandle {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PairingSettings,
    wallet: Wallet,
    status: StatusHandle,
    display: Option<DisplayHandle>,
    service_key: nostr_sdk::PublicKey,
    /// Where the embedded relay listens.
    relay: Option<SocketAddr>,
    nwc_running: bool,
    lndhub_address: Option<SocketAddr>,
}

impl PairingHandle {
    pub fn wallet(&self) -> &Wallet {
        &self.inner.wallet
    }

    /// Which protocols this box serves.
    pub fn protocols(&self) -> Protocols {
        Protocols {
            nwc: self.inner.nwc_running,
            lndhub: self.inner.lndhub_address.is_some(),
        }
    }

    /// Where LNDHub answers, if it runs.
    pub fn lndhub_address(&self) -> Option<SocketAddr> {
        self.inner.lndhub_address
    }

    /// Where the embedded relay listens, if it runs.
    pub fn relay_address(&self) -> Option<SocketAddr> {
        self.inner.relay
    }

    /// Whether allowing an app to spend takes the web password (no keys on the box to
    /// press) rather than KEY2.
    pub fn spending_needs_password(&self) -> bool {
        !self
            .inner
            .display
            .as_ref()
            .is_some_and(|display| display.state().has_keys)
    }

    /// Makes a connection. One that may spend waits for KEY2 on a box with keys (the
    /// e-ink asks; KEY3 or two minutes refuse), or needs `password_confirmed` on a box
    /// without. The URI is in the answer, once.
    pub async fn create(&self, new: NewConnection, password_confirmed: bool) -> Result<Created> {
        let now = unix_now();
        let request = new.check(now)?;
        let keys_on_box = !self.spending_needs_password();
        let state = match (request.spend, keys_on_box, password_confirmed) {
            (false, _, _) => ConnectionState::Active,
            (true, true, _) => ConnectionState::WaitingForKey,
            (true, false, true) => ConnectionState::Active,
            (true, false, false) => {
                return Err(PairingError::new(
                    ErrorKind::NeedsConfirmation,
                    "This box has no keys to press: type the web password again to allow an \
                     app to spend.",
                ))
            }
        };
        let id = random_string(b"0123456789abcdef", 16);
        let (connection, uri, password_hash) =
            self.credentials(&request, id.clone(), state, now)?;
        self.inner
            .wallet
            .store()
            .insert(connection.clone(), password_hash)
            .await?;
        info!(
            "paired {} ({}, {})",
            connection.app,
            connection.protocol.as_str(),
            connection.permissions_text()
        );
        if state == ConnectionState::WaitingForKey {
            tokio::spawn(self.clone().ask_on_the_box(connection, uri.clone()));
        } else {
            self.show_qr(&connection, &uri);
        }
        self.refresh_count().await;
        Ok(Created {
            id,
            uri: Secret::new(uri),
            state,
        })
    }

    /// The app's identity and the URI that carries its secret.
    fn credentials(
        &self,
        request: &ConnectionRequest,
        id: String,
        state: ConnectionState,
        now: u64,
    ) -> Result<(Connection, String, Option<String>)> {
        let mut connection = Connection {
            id,
            app: request.app.clone(),
            protocol: request.protocol,
            spend: request.spend,
            budget_msat: request.budget_msat,
            renewal: request.renewal,
            max_payment_msat: request.max_payment_msat,
            expires_at: request.expires_at,
            created_at: now,
            state,
            last_used_at: None,
            nwc_pubkey: None,
            lndhub_login: None,
        };
        let status = self.inner.status.snapshot();
        match request.protocol {
            Protocol::Nwc => {
                if !self.inner.nwc_running {
                    return Err(PairingError::invalid(
                        "Nostr Wallet Connect is off on this box: set [pairing] relay_listen or \
                         relays in the config.",
                    ));
                }
                let app_keys = Keys::generate();
                let mut relays = Vec::new();
                if let Some(listen) = self.inner.relay {
                    let host = lan_host(
                        listen,
                        self.inner.settings.advertise_host.as_deref(),
                        &status,
                    );
                    relays.push(format!("ws://{}:{}", bracket(&host), listen.port()));
                }
                relays.extend(self.inner.settings.public_relays.iter().cloned());
                let relays = relays
                    .iter()
                    .map(|url| RelayUrl::parse(url))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|err| {
                        PairingError::internal(format!("a relay address is wrong: {err}"))
                    })?;
                let uri = NostrWalletConnectURI::new(
                    self.inner.service_key,
                    relays,
                    app_keys.secret_key().clone(),
                    None,
                );
                connection.nwc_pubkey = Some(app_keys.public_key().to_hex());
                Ok((connection, uri.to_string(), None))
            }
            Protocol::Lndhub => {
                let Some(listen) = self.inner.lndhub_address else {
                    return Err(PairingError::invalid(
                        "LNDHub is off on this box: set [pairing] lndhub_listen in the config.",
                    ));
                };
                // Zeus accepts only these characters in an LNDHub password.
                const PASSWORD: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
                let login = random_string(b"0123456789abcdef", 20);
                let password = random_string(PASSWORD, 24);
                let host = lan_host(
                    listen,
                    self.inner.settings.advertise_host.as_deref(),
                    &status,
                );
                let uri = format!(
                    "lndhub://{login}:{password}@http://{}:{}",
                    bracket(&host),
                    listen.port()
                );
                connection.lndhub_login = Some(login);
                Ok((connection, uri, Some(password_sha256(&password))))
            }
        }
    }

    /// KEY2 on the box makes a spending connection active (and shows its code there);
    /// KEY3 or no answer refuse it.
    async fn ask_on_the_box(self, connection: Connection, uri: String) {
        let Some(display) = self.inner.display.clone() else {
            return;
        };
        let question = PairingQuestion {
            app: connection.label(),
            permissions: connection.permissions_text().to_string(),
            budget: budget_question(&connection),
        };
        let answer = display.confirm(question).await;
        let store = self.inner.wallet.store();
        let waiting = [ConnectionState::WaitingForKey];
        let result = match answer {
            Ok(PairingAnswer::Confirmed) => {
                let moved = store
                    .set_state(&connection.id, &waiting, ConnectionState::Active)
                    .await;
                if matches!(moved, Ok(true)) {
                    info!("{} may spend: confirmed on the box", connection.app);
                    self.show_qr(&connection, &uri);
                }
                moved
            }
            other => {
                info!(
                    "{} may not spend: {}",
                    connection.app,
                    match other {
                        Ok(PairingAnswer::TimedOut) => "nobody pressed KEY2 in time",
                        Ok(_) => "refused on the box",
                        Err(_) => "the screen could not ask",
                    }
                );
                store
                    .set_state(&connection.id, &waiting, ConnectionState::Refused)
                    .await
            }
        };
        if let Err(err) = result {
            warn!(
                "cannot record the box's answer for {}: {err}",
                connection.app
            );
        }
        self.refresh_count().await;
    }

    fn show_qr(&self, connection: &Connection, uri: &str) {
        if let Some(display) = self.inner.display.clone() {
            let (label, uri) = (connection.label(), uri.to_string());
            tokio::spawn(async move {
                if let Err(err) = display.show_pairing_qr(label, uri).await {
                    warn!("the pairing code could not be shown on the screen: {err}");
                }
            });
        }
    }

    pub async fn list(&self) -> Result<Vec<ConnectionView>> {
        let now = unix_now();
        Ok(self
            .inner
            .wallet
            .store()
            .list(now)
            .await?
            .iter()
            .map(|(connection, used)| ConnectionView::of(connection, *used))
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<ConnectionView> {
        let store = self.inner.wallet.store();
        let connection = store.get(id).await?.ok_or_else(not_found)?;
        let used = store.used_msat(&connection, unix_now()).await?;
        Ok(ConnectionView::of(&connection, used))
    }

    /// Revokes a connection: every request from it, also one already waiting, is refused
    /// from now on.
    pub async fn revoke(&self, id: &str) -> Result<()> {
        use ConnectionState::*;
        let store = self.inner.wallet.store();
        if store.get(id).await?.is_none() {
            return Err(not_found());
        }
        store
            .set_state(id, &[Active, WaitingForKey, Expired, Refused], Revoked)
            .await?;
        info!("connection {id} revoked");
        self.refresh_count().await;
        Ok(())
    }

    /// Keeps `status.pairing.active_connections` true (also as connections expire).
    pub(crate) async fn refresh_count(&self) {
        if let Ok(count) = self.inner.wallet.store().active_count(unix_now()).await {
            self.inner
                .status
                .update(|s| s.pairing.active_connections = count);
        }
    }
}

fn not_found() -> PairingError {
    PairingError::new(ErrorKind::NotFound, "There is no connection with that id.")
}

/// "50 000 sat per day, until 31 Dec 2026" for the question on the e-ink.
fn budget_question(connection: &Connection) -> String {
    let mut text = connection.budget_text();
    if let Some(at) = connection.expires_at {
        use chrono::TimeZone;
        if let Some(date) = chrono::Utc.timestamp_opt(at as i64, 0).single() {
            text.push_str(&format!(", until {}", date.format("%-d %b %Y")));
        }
    }
    text
}

/// The name or address phones reach the box at, for a service listening on `listen`.
pub fn lan_host(listen: SocketAddr, advertise: Option<&str>, status: &Status) -> String {
    if let Some(host) = advertise.filter(|h| !h.is_empty()) {
        return host.to_string();
    }
    if !listen.ip().is_unspecified() {
        return listen.ip().to_string();
    }
    if let Some(ip) = status.system.ip_addresses.first() {
        return ip.clone();
    }
    if !status.system.hostname.is_empty() {
        return format!("{}.local", status.system.hostname);
    }
    "plugnode.local".into()
}

/// IPv6 addresses go in brackets in URLs.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn random_string(alphabet: &[u8], length: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..length)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// LNDHub passwords are long and random: a plain SHA-256 is enough to keep them.
pub fn password_sha256(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_host_prefers_what_the_owner_said_then_the_listen_address_then_the_lan() {
        let mut status = Status::default();
        let everywhere: SocketAddr = "0.0.0.0:4869".parse().unwrap();
        assert_eq!(lan_host(everywhere, None, &status), "plugnode.local");
        status.system.hostname = "mybox".into();
        assert_eq!(lan_host(everywhere, None, &status), "mybox.local");
        status.system.ip_addresses = vec!["192.168.1.20".into()];
        assert_eq!(lan_host(everywhere, None, &status), "192.168.1.20");
        let loopback: SocketAddr = "127.0.0.1:4869".parse().unwrap();
        assert_eq!(lan_host(loopback, None, &status), "127.0.0.1");
        assert_eq!(
            lan_host(everywhere, Some("node.home"), &status),
            "node.home"
        );
        assert_eq!(bracket("fe80::1"), "[fe80::1]");
    }

    #[test]
    fn random_strings_use_only_their_alphabet() {
        let s = random_string(b"ab", 64);
        assert_eq!(s.len(), 64);
        assert!(s.chars().all(|c| c == 'a' || c == 'b'));
    }
}
