//! Paired wallet apps for the tests: connections made through the box's API, and a raw
//! Nostr client that sends NIP-47 requests exactly as the test words them (the `nwc` crate
//! is the well-behaved client; this one is for the bad cases and for NIP-44).

use super::lightning::LnBox;
use super::PASSWORD;
use nostr_sdk::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A connection made on the box: its id and the URI shown once.
pub struct Paired {
    pub id: String,
    pub uri: String,
}

/// Makes a connection through `POST /api/pairing/connections` (spending connections on a
/// box without keys carry the web password, as the page asks for it).
pub fn pair(ln: &LnBox, mut request: Value) -> Paired {
    if request["permissions"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p == "spend"))
    {
        request["password"] = PASSWORD.into();
    }
    let (code, answer) = ln.post("/api/pairing/connections", request);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["state"], "active", "{answer}");
    Paired {
        id: answer["id"].as_str().unwrap().to_string(),
        uri: answer["uri"].as_str().unwrap().to_string(),
    }
}

/// A spending NWC connection with `budget_sat` per `renewal`.
pub fn pair_spender(ln: &LnBox, budget_sat: u64, renewal: &str) -> Paired {
    pair(
        ln,
        json!({
            "app": "Test wallet",
            "protocol": "nwc",
            "permissions": ["receive", "spend"],
            "budget_sat": budget_sat,
            "renewal": renewal,
            "expires_at": null,
        }),
    )
}

/// The connection as the page lists it.
pub fn connection(ln: &LnBox, id: &str) -> Value {
    let (code, answer) = ln.get(&format!("/api/pairing/connections/{id}"));
    assert_eq!(code, 200, "{answer}");
    answer
}

/// The `nwc` crate's client for a URI.
pub fn nwc_client(uri: &str) -> nwc::NWC {
    let uri = NostrWalletConnectURI::parse(uri).expect("the box's URI parses");
    nwc::NWC::with_opts(
        uri,
        nwc::NostrWalletConnectOptions::new().timeout(Duration::from_secs(150)),
    )
}

/// A hand-made NIP-47 client.
pub struct RawApp {
    pub keys: Keys,
    pub service: PublicKey,
    pub client: Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Nip04,
    Nip44,
}

impl RawApp {
    /// Connects to every relay of `uri` with the app secret it carries.
    pub async fn from_uri(uri: &str) -> RawApp {
        let uri = NostrWalletConnectURI::parse(uri).expect("the box's URI parses");
        RawApp::with_keys(Keys::new(uri.secret.clone()), uri.public_key, &uri.relays).await
    }

    /// An app with its own keys (e.g. one the box never paired).
    pub async fn with_keys(keys: Keys, service: PublicKey, relays: &[RelayUrl]) -> RawApp {
        let client = Client::builder().signer(keys.clone()).build();
        for relay in relays {
            client.add_relay(relay.clone()).await.unwrap();
        }
        client.connect().await;
        client.wait_for_connection(Duration::from_secs(20)).await;
        RawApp {
            keys,
            service,
            client,
        }
    }

    /// A signed request event (not sent).
    pub fn request(&self, cipher: Cipher, body: &Value, extra_tags: Vec<Tag>) -> Event {
        let text = body.to_string();
        let (content, tag) = match cipher {
            Cipher::Nip04 => (
                nip04::encrypt(self.keys.secret_key(), &self.service, text).unwrap(),
                "nip04",
            ),
            Cipher::Nip44 => (
                nip44::encrypt(
                    self.keys.secret_key(),
                    &self.service,
                    text,
                    nip44::Version::V2,
                )
                .unwrap(),
                "nip44_v2",
            ),
        };
        let mut tags = vec![
            Tag::public_key(self.service),
            Tag::custom(TagKind::custom("encryption"), [tag]),
        ];
        tags.extend(extra_tags);
        EventBuilder::new(Kind::WalletConnectRequest, content)
            .tags(tags)
            .sign_with_keys(&self.keys)
            .unwrap()
    }

    /// Publishes `event` and waits (up to `timeout`) for the answer to it, decrypted with
    /// `cipher`. `None` when no answer came.
    pub async fn send(&self, event: &Event, cipher: Cipher, timeout: Duration) -> Option<Value> {
        let filter = Filter::new()
            .kind(Kind::WalletConnectResponse)
            .author(self.service)
            .event(event.id);
        let mut answers = self
            .client
            .pool()
            .stream_events(filter, timeout, ReqExitPolicy::WaitForEvents(1))
            .await
            .expect("the relay takes the subscription");
        self.client
            .send_event(event)
            .await
            .expect("the relay takes the request");
        let answer = tokio_stream_next(&mut answers).await?;
        Some(self.open(&answer, cipher))
    }

    /// Sends a request and waits for its answer.
    pub async fn call(&self, cipher: Cipher, method: &str, params: Value) -> Value {
        let event = self.request(cipher, &json!({"method": method, "params": params}), vec![]);
        self.send(&event, cipher, Duration::from_secs(150))
            .await
            .unwrap_or_else(|| panic!("no answer to {method}"))
    }

    /// Decrypts an event of the service.
    pub fn open(&self, event: &Event, cipher: Cipher) -> Value {
        let text = match cipher {
            Cipher::Nip04 => {
                nip04::decrypt(self.keys.secret_key(), &self.service, &event.content).unwrap()
            }
            Cipher::Nip44 => {
                nip44::decrypt(self.keys.secret_key(), &self.service, &event.content).unwrap()
            }
        };
        serde_json::from_str(&text).unwrap()
    }

    /// Every answer the service published to `request` so far.
    pub async fn answers_to(&self, request: &EventId) -> Vec<Event> {
        let filter = Filter::new()
            .kind(Kind::WalletConnectResponse)
            .author(self.service)
            .event(*request);
        self.client
            .fetch_events(filter, Duration::from_secs(5))
            .await
            .map(|events| events.into_iter().collect())
            .unwrap_or_default()
    }
}

async fn tokio_stream_next(stream: &mut BoxedStream<Event>) -> Option<Event> {
    use nostr_sdk::async_utility::futures_util::StreamExt;
    stream.next().await
}
