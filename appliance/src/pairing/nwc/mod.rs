//! The Nostr Wallet Connect (NIP-47) service: listens for requests on the embedded relay
//! and on the public relays the owner listed, answers each one once, and tells apps about
//! their payments.
//!
//! - [`protocol`]: opening requests and sealing answers (pure).
//! - [`methods`]: what each method does, within the connection's permissions.
//! - [`relay`]: the embedded relay on the home network.
//!
//! Never miss or repeat a request: every relay is watched; when it (re)connects the info
//! event is published again and the subscription starts from the newest request handled
//! (minus a margin), so requests sent while the box or the relay was away are answered if
//! they are still young enough; handled request ids are stored before executing, so a
//! request that arrives twice (two relays, a replay) runs once.

pub mod methods;
pub mod protocol;
pub mod relay;

use super::connection::{Connection, Protocol};
use super::wallet::{Transaction, Wallet};
use crate::fsutil;
use crate::status::{unix_now, LightningState, RelayStatus as RelayView, StatusHandle};
use nostr_sdk::prelude::*;
use protocol::{Dropped, Encryption, NwcError, MAX_REQUEST_AGE_SECS};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

const SERVICE_KEY_FILE: &str = "nwc-service.key";
const SUBSCRIPTION: &str = "plugnode-nwc-requests";
/// Subscribe again from this long before the newest request handled: a request published
/// a moment before it may reach the relay after it.
const RESUBSCRIBE_MARGIN_SECS: u64 = 120;
/// Requests of one app handled at once; the rest wait their turn.
const PER_APP_AT_ONCE: usize = 8;
/// Requests of one app waiting at once; beyond that the app is told to slow down.
const PER_APP_WAITING: usize = 64;
/// How soon a lost relay is tried again (doubling while it stays away, up to a minute).
const RETRY_RELAY_EVERY: Duration = Duration::from_secs(3);
/// Relays drop even replaceable events after some days, and apps that cannot find the info
/// event refuse to talk (seen with Alby after a few days): publish it again this often.
const REPUBLISH_INFO_EVERY: Duration = Duration::from_secs(12 * 3600);

/// The box's key as a Nostr wallet service, created on first start (0600 in the secrets
/// directory). Apps know the box by its public key: it never changes.
pub fn load_or_create_service_keys(secrets_dir: &Path) -> anyhow::Result<Keys> {
    let path = secrets_dir.join(SERVICE_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Keys::parse(text.trim()).map_err(|_| {
            anyhow::anyhow!(
                "{} is damaged: paired NWC apps need it. Restore it from a backup of the data \
                 directory, or delete it and pair the apps again.",
                path.display()
            )
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let keys = Keys::generate();
            fsutil::ensure_private_dir(secrets_dir, 0o700)?;
            fsutil::write_atomic(
                &path,
                format!("{}\n", keys.secret_key().to_secret_hex()).as_bytes(),
                0o600,
            )?;
            Ok(keys)
        }
        Err(err) => Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
    }
}

/// What the NWC service needs.
pub struct NwcSettings {
    pub keys: Keys,
    /// The embedded relay's internal address (the service connects to it), if it runs.
    pub embedded_relay: Option<String>,
    /// Public relays from the config.
    pub public_relays: Vec<String>,
}

/// The running service.
pub struct NwcService {
    client: Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    publisher: Publisher,
}

/// Sends notifications; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    keys: Keys,
}

impl NwcService {
    pub async fn start(
        settings: NwcSettings,
        wallet: Wallet,
        status: StatusHandle,
    ) -> anyhow::Result<NwcService> {
        let keys = settings.keys.clone();
        let client = Client::builder().signer(keys.clone()).build();
        let mut relays = Vec::new();
        if let Some(url) = &settings.embedded_relay {
            relays.push((url.clone(), true));
        }
        relays.extend(
            settings
                .public_relays
                .iter()
                .map(|url| (url.clone(), false)),
        );
        let options = RelayOptions::new()
            .retry_interval(RETRY_RELAY_EVERY)
            .adjust_retry_interval(true);
        for (url, _) in &relays {
            client
                .pool()
                .add_relay(url.as_str(), options.clone())
                .await
                .map_err(|err| anyhow::anyhow!("cannot use the relay {url}: {err}"))?;
        }
        status.update(|s| {
            s.pairing.relays = relays
                .iter()
                .map(|(url, embedded)| RelayView {
                    url: url.clone(),
                    embedded: *embedded,
                    connected: false,
                })
                .collect();
        });
        // Listen before connecting: a relay answers the first subscription at once, and
        // what it sends before anyone listens is lost.
        let notifications = client.notifications();
        client.connect().await;

        let (stop, stopped) = watch::channel(false);
        let handler = Handler {
            keys: keys.clone(),
            client: client.clone(),
            wallet: wallet.clone(),
            queues: Default::default(),
        };
        let mut tasks = vec![tokio::spawn(receive_requests(
            handler.clone(),
            notifications,
            stopped.clone(),
        ))];
        for (url, _) in relays {
            tasks.push(tokio::spawn(watch_relay(
                handler.clone(),
                url,
                status.clone(),
                stopped.clone(),
            )));
        }
        info!(
            "Nostr Wallet Connect service {} listening",
            keys.public_key().to_hex()
        );
        Ok(NwcService {
            publisher: Publisher {
                client: client.clone(),
                keys,
            },
            client,
            stop,
            tasks,
        })
    }

    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.client.shutdown().await;
    }
}

impl Publisher {
    /// Tells `connection`'s app that one of its payments settled (both encryptions: the app
    /// listens for the one it speaks).
    pub async fn notify(&self, connection: &Connection, transaction: &Transaction) {
        if connection.protocol != Protocol::Nwc {
            return;
        }
        let Some(app) = connection
            .nwc_pubkey
            .as_deref()
            .and_then(|k| PublicKey::from_hex(k).ok())
        else {
            return;
        };
        let kind = if transaction.outgoing {
            "payment_sent"
        } else {
            "payment_received"
        };
        if !methods::notifications_for(connection).contains(&kind) {
            return;
        }
        let mut body = methods::transaction_json(transaction);
        // NIP-47 notifications always carry these, even for keysend.
        for key in ["invoice", "preimage"] {
            if body.get(key).is_none() {
                body[key] = "".into();
            }
        }
        for encryption in [Encryption::Nip44, Encryption::Nip04] {
            match protocol::notification(&self.keys, &app, encryption, kind, &body) {
                Ok(event) => {
                    if let Err(err) = self.client.send_event(&event).await {
                        debug!("a {kind} notification could not be sent: {err}");
                    }
                }
                Err(err) => warn!("cannot seal a {kind} notification: {err}"),
            }
        }
    }
}

/// What every request task shares.
#[derive(Clone)]
struct Handler {
    keys: Keys,
    client: Client,
    wallet: Wallet,
    /// Per app: how many of its requests run at once.
    queues: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// Takes every request event from every relay (duplicates included: the store decides).
async fn receive_requests(
    handler: Handler,
    mut notifications: tokio::sync::broadcast::Receiver<RelayPoolNotification>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            notification = notifications.recv() => match notification {
                Ok(RelayPoolNotification::Message {
                    message: RelayMessage::Event { event, .. },
                    ..
                }) if event.kind == Kind::WalletConnectRequest => {
                    let handler = handler.clone();
                    tokio::spawn(async move { handler.handle(event.into_owned()).await });
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // Ask every relay again: what was missed comes back, the store drops
                    // what was already handled.
                    warn!("the wallet service fell behind by {missed} relay messages; asking again");
                    if let Err(err) = handler.subscribe(None).await {
                        warn!("could not subscribe again: {err}");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = stopped.changed() => return,
        }
    }
}

/// Keeps one relay's state in the status; on each (re)connection publishes the info
/// event there and subscribes from the newest request handled.
async fn watch_relay(
    handler: Handler,
    url: String,
    status: StatusHandle,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(relay) = handler.client.relay(url.as_str()).await else {
        return;
    };
    // Requests are taken only once the Lightning node runs: until then they wait at the
    // relay (answering "not running yet" to what was sent while the box was away would
    // turn a late payment into a failed one).
    let mut lightning = status.subscribe();
    tokio::select! {
        _ = lightning.wait_for(|s| s.lightning.state == LightningState::Running) => {}
        _ = stopped.changed() => return,
    }
    let mut notifications = relay.notifications();
    let mut was_connected = false;
    let mut greeted_at = tokio::time::Instant::now();
    loop {
        let connected = relay.status() == nostr_sdk::RelayStatus::Connected;
        if connected && was_connected && greeted_at.elapsed() >= REPUBLISH_INFO_EVERY {
            greeted_at = tokio::time::Instant::now();
            if let Err(err) = handler.greet(&url).await {
                warn!("wallet relay {url}: {err}");
            }
        }
        if connected != was_connected {
            status.update(|s| {
                if let Some(view) = s.pairing.relays.iter_mut().find(|r| r.url == url) {
                    view.connected = connected;
                }
            });
            if connected {
                info!("wallet relay {url} connected");
                greeted_at = tokio::time::Instant::now();
                if let Err(err) = handler.greet(&url).await {
                    warn!("wallet relay {url}: {err}");
                }
            } else {
                info!("wallet relay {url} lost; trying again");
            }
            was_connected = connected;
        }
        tokio::select! {
            note = notifications.recv() => {
                if matches!(note, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
            }
            // Also look now and then: a status change may fall between two notifications.
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stopped.changed() => return,
        }
    }
}

impl Handler {
    /// Publishes the info event to `url` and subscribes there.
    async fn greet(&self, url: &str) -> Result<(), String> {
        let info = protocol::info_event(
            &self.keys,
            &methods::all_methods(),
            &methods::ALL_NOTIFICATIONS,
        )?;
        self.client
            .send_event_to([url], &info)
            .await
            .map_err(|err| format!("cannot publish the wallet's info event: {err}"))?;
        self.subscribe(Some(url)).await
    }

    /// Subscribes (again) to requests for the service, from the newest one handled minus
    /// a margin, at `url` or at every relay.
    async fn subscribe(&self, url: Option<&str>) -> Result<(), String> {
        let now = unix_now();
        let oldest_useful = now.saturating_sub(MAX_REQUEST_AGE_SECS);
        let since = match self.wallet.store().newest_request().await {
            Ok(Some(newest)) => newest
                .saturating_sub(RESUBSCRIBE_MARGIN_SECS)
                .max(oldest_useful),
            _ => oldest_useful,
        };
        let filter = Filter::new()
            .kind(Kind::WalletConnectRequest)
            .pubkey(self.keys.public_key())
            .since(Timestamp::from(since));
        let id = SubscriptionId::new(SUBSCRIPTION);
        let result = match url {
            Some(url) => self
                .client
                .subscribe_with_id_to([url], id, filter, None)
                .await
                .map(|_| ()),
            None => self
                .client
                .subscribe_with_id(id, filter, None)
                .await
                .map(|_| ()),
        };
        result.map_err(|err| format!("cannot subscribe to wallet requests: {err}"))
    }

    /// One request event: opened, checked, executed at most once, answered.
    async fn handle(&self, event: Event) {
        let started = std::time::Instant::now();
        let now = unix_now();
        let request = match protocol::open(&event, &self.keys, now) {
            Ok(request) => request,
            Err(Dropped::NotForUs) => return,
            Err(why) => {
                debug!("wallet request {} dropped: {why:?}", event.id);
                return;
            }
        };
        let store = self.wallet.store();
        let connection = match store.by_nwc_pubkey(&request.author.to_hex()).await {
            Ok(Some(connection)) => connection,
            // A key the box never paired gets no answer (nothing to learn, nothing to
            // amplify).
            Ok(None) => return,
            Err(err) => {
                warn!("cannot look up the app of a wallet request: {err}");
                return;
            }
        };
        match store
            .begin_request(&request.event_id.to_hex(), request.created_at, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                // Unsure whether it ran before: not running it is the safe side.
                warn!("cannot record a wallet request, so it is not executed: {err}");
                return;
            }
        }
        let result_type = request.method.clone().unwrap_or_else(|| "unknown".into());
        let queue = self.queue(&connection.id);
        let outcome = match queue {
            None => Err(NwcError::new(
                "RATE_LIMITED",
                "Too many requests at once from this app; try again in a moment.",
            )),
            Some(queue) => {
                let _turn = queue.acquire_owned().await;
                self.execute(&connection, &request).await
            }
        };
        if let Err(error) = &outcome {
            debug!(
                "wallet request {} ({result_type}) from {}: {} {}",
                request.event_id, connection.app, error.code, error.message
            );
        }
        match protocol::answer(&self.keys, &request, &result_type, outcome) {
            Ok(reply) => {
                let sealed = started.elapsed();
                if let Err(err) = self.client.send_event(&reply).await {
                    warn!("the answer to a wallet request could not be sent: {err}");
                }
                debug!(
                    "wallet request {result_type} answered: {} ms to carry out, {} ms to send",
                    sealed.as_millis(),
                    (started.elapsed() - sealed).as_millis()
                );
            }
            Err(err) => warn!("cannot seal the answer to a wallet request: {err}"),
        }
    }

    async fn execute(
        &self,
        connection: &Connection,
        request: &protocol::Request,
    ) -> Result<serde_json::Value, NwcError> {
        // Looked up again now: a revoke while the request waited takes effect.
        let connection = self
            .wallet
            .usable(&connection.id)
            .await
            .map_err(methods::error_of)?;
        let Some(method) = &request.method else {
            return Err(NwcError::new(
                "OTHER",
                "That is not a NIP-47 request: send {\"method\": …, \"params\": {…}}.",
            ));
        };
        methods::execute(&self.wallet, &connection, method, &request.params).await
    }

    /// The app's turn-taking, or `None` when too many of its requests already wait.
    fn queue(&self, connection_id: &str) -> Option<Arc<Semaphore>> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues
            .entry(connection_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_APP_AT_ONCE)));
        // Strong count: the map's, plus one per request holding or waiting for a turn.
        (Arc::strong_count(queue) <= PER_APP_WAITING).then(|| Arc::clone(queue))
    }
}
