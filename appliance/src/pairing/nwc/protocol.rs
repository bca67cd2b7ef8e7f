//! NIP-47 on the wire: opening a request event (signature, addressee, age, encryption) and
//! sealing answers, notifications and the info event. Pure functions over events and keys.
//!
//! An answer the app cannot decrypt makes the app hang, so an answer always goes back in
//! the encryption the request came in, to the key that signed it; a request that cannot be
//! opened gets no answer at all.

use nostr_sdk::prelude::*;
use serde_json::{json, Value};

/// Requests older than this are not executed: the app gave up long ago, and a payment the
/// user has since retried elsewhere must not go out twice.
pub const MAX_REQUEST_AGE_SECS: u64 = 10 * 60;
/// Clocks differ: a request may claim to be this much from the future.
const MAX_CLOCK_SKEW_SECS: u64 = 10 * 60;

/// The NIP-44 notification kind (NIP-04 notifications are 23196).
pub const NOTIFICATION_NIP44: u16 = 23197;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    Nip04,
    Nip44,
}

/// A request that was addressed to us, signed by its author and decrypted.
#[derive(Clone, Debug)]
pub struct Request {
    pub event_id: EventId,
    pub author: PublicKey,
    pub created_at: u64,
    pub encryption: Encryption,
    /// `None` when the content was not a NIP-47 request (answered with an error).
    pub method: Option<String>,
    pub params: Value,
}

/// Why a request event is dropped without an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Not a request, or not to this box.
    NotForUs,
    /// Its id or signature does not match: forged or damaged.
    BadSignature,
    /// Past its NIP-40 expiration, or older than [`MAX_REQUEST_AGE_SECS`].
    TooOld,
    FromTheFuture,
    /// Asks for an encryption we do not speak, or does not decrypt with our key.
    Undecryptable(String),
}

/// Opens a request event sent to `service`.
pub fn open(event: &Event, service: &Keys, now: u64) -> Result<Request, Dropped> {
    if event.kind != Kind::WalletConnectRequest
        || !event.tags.public_keys().any(|p| *p == service.public_key())
    {
        return Err(Dropped::NotForUs);
    }
    if event.verify().is_err() {
        return Err(Dropped::BadSignature);
    }
    let created_at = event.created_at.as_secs();
    if event.is_expired_at(&Timestamp::from(now))
        || now.saturating_sub(created_at) > MAX_REQUEST_AGE_SECS
    {
        return Err(Dropped::TooOld);
    }
    if created_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(Dropped::FromTheFuture);
    }
    let declared = event
        .tags
        .find(TagKind::custom("encryption"))
        .and_then(Tag::content)
        .map(str::trim);
    let encryption = match declared {
        Some("nip44_v2") => Encryption::Nip44,
        Some("nip04") => Encryption::Nip04,
        Some(other) => return Err(Dropped::Undecryptable(format!("encryption {other:?}"))),
        // Apps that predate the tag use NIP-04, whose payload carries "?iv=".
        None if event.content.contains("?iv=") => Encryption::Nip04,
        None => Encryption::Nip44,
    };
    let plain = match encryption {
        Encryption::Nip04 => nip04::decrypt(service.secret_key(), &event.pubkey, &event.content)
            .map_err(|e| Dropped::Undecryptable(e.to_string()))?,
        Encryption::Nip44 => nip44::decrypt(service.secret_key(), &event.pubkey, &event.content)
            .map_err(|e| Dropped::Undecryptable(e.to_string()))?,
    };
    let parsed: Option<Value> = serde_json::from_str(&plain).ok();
    let method = parsed
        .as_ref()
        .and_then(|v| v.get("method"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let params = parsed
        .as_ref()
        .and_then(|v| v.get("params"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Request {
        event_id: event.id,
        author: event.pubkey,
        created_at,
        encryption,
        method,
        params,
    })
}

/// A NIP-47 error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NwcError {
    pub code: &'static str,
    pub message: String,
}

impl NwcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        NwcError {
            code,
            message: message.into(),
        }
    }
}

/// The answer to `request`, sealed for its author in its encryption.
pub fn answer(
    service: &Keys,
    request: &Request,
    result_type: &str,
    outcome: Result<Value, NwcError>,
) -> Result<Event, String> {
    let body = match outcome {
        Ok(result) => json!({ "result_type": result_type, "result": result }),
        Err(error) => json!({
            "result_type": result_type,
            "error": { "code": error.code, "message": error.message },
        }),
    };
    let content = seal(
        service,
        &request.author,
        request.encryption,
        &body.to_string(),
    )?;
    EventBuilder::new(Kind::WalletConnectResponse, content)
        .tags([
            Tag::public_key(request.author),
            Tag::event(request.event_id),
        ])
        .sign_with_keys(service)
        .map_err(|e| e.to_string())
}

/// A notification for `app`: NIP-04 (kind 23196) or NIP-44 (kind 23197).
pub fn notification(
    service: &Keys,
    app: &PublicKey,
    encryption: Encryption,
    notification_type: &str,
    notification: &Value,
) -> Result<Event, String> {
    let body = json!({
        "notification_type": notification_type,
        "notification": notification,
    });
    let kind = match encryption {
        Encryption::Nip04 => Kind::WalletConnectNotification,
        Encryption::Nip44 => Kind::Custom(NOTIFICATION_NIP44),
    };
    let content = seal(service, app, encryption, &body.to_string())?;
    EventBuilder::new(kind, content)
        .tag(Tag::public_key(*app))
        .sign_with_keys(service)
        .map_err(|e| e.to_string())
}

/// The info event (kind 13194): what the service can do. `@getalby/sdk` sends nothing
/// until it has found it, and picks NIP-44 only when `encryption` lists it.
pub fn info_event(
    service: &Keys,
    methods: &[&str],
    notifications: &[&str],
) -> Result<Event, String> {
    EventBuilder::new(Kind::WalletConnectInfo, methods.join(" "))
        .tags([
            Tag::custom(TagKind::custom("encryption"), ["nip44_v2 nip04"]),
            Tag::custom(TagKind::custom("notifications"), [notifications.join(" ")]),
        ])
        .sign_with_keys(service)
        .map_err(|e| e.to_string())
}

fn seal(
    service: &Keys,
    to: &PublicKey,
    encryption: Encryption,
    plain: &str,
) -> Result<String, String> {
    match encryption {
        Encryption::Nip04 => {
            nip04::encrypt(service.secret_key(), to, plain).map_err(|e| e.to_string())
        }
        Encryption::Nip44 => nip44::encrypt(service.secret_key(), to, plain, nip44::Version::V2)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_event(
        app: &Keys,
        to: &PublicKey,
        encryption: Option<Encryption>,
        body: &str,
        created_at: u64,
    ) -> Event {
        let (content, tag) = match encryption {
            Some(Encryption::Nip44) | None => (
                nip44::encrypt(app.secret_key(), to, body, nip44::Version::V2).unwrap(),
                encryption.map(|_| "nip44_v2"),
            ),
            Some(Encryption::Nip04) => (
                nip04::encrypt(app.secret_key(), to, body).unwrap(),
                Some("nip04"),
            ),
        };
        let mut tags = vec![Tag::public_key(*to)];
        if let Some(tag) = tag {
            tags.push(Tag::custom(TagKind::custom("encryption"), [tag]));
        }
        EventBuilder::new(Kind::WalletConnectRequest, content)
            .tags(tags)
            .custom_created_at(Timestamp::from(created_at))
            .sign_with_keys(app)
            .unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn both_encryptions_open_and_the_answer_uses_the_same_one() {
        let (service, app) = (Keys::generate(), Keys::generate());
        for encryption in [Encryption::Nip04, Encryption::Nip44] {
            let event = request_event(
                &app,
                &service.public_key(),
                Some(encryption),
                r#"{"method":"get_info","params":{}}"#,
                NOW,
            );
            let request = open(&event, &service, NOW).unwrap();
            assert_eq!(request.encryption, encryption);
            assert_eq!(request.method.as_deref(), Some("get_info"));
            let reply =
                answer(&service, &request, "get_info", Ok(json!({"alias": "box"}))).unwrap();
            assert_eq!(reply.kind, Kind::WalletConnectResponse);
            let plain = match encryption {
                Encryption::Nip04 => {
                    nip04::decrypt(app.secret_key(), &service.public_key(), &reply.content)
                        .expect("the app can read the answer")
                }
                Encryption::Nip44 => {
                    nip44::decrypt(app.secret_key(), &service.public_key(), &reply.content)
                        .expect("the app can read the answer")
                }
            };
            assert!(plain.contains("\"alias\":\"box\""));
            assert!(reply.tags.event_ids().any(|id| *id == event.id));
        }
    }

    #[test]
    fn an_untagged_request_is_read_from_its_payload() {
        let (service, app) = (Keys::generate(), Keys::generate());
        let nip04_body = nip04::encrypt(app.secret_key(), &service.public_key(), "{}").unwrap();
        let event = EventBuilder::new(Kind::WalletConnectRequest, nip04_body)
            .tag(Tag::public_key(service.public_key()))
            .custom_created_at(Timestamp::from(NOW))
            .sign_with_keys(&app)
            .unwrap();
        let request = open(&event, &service, NOW).unwrap();
        assert_eq!(request.encryption, Encryption::Nip04);
        assert_eq!(
            request.method, None,
            "not a NIP-47 body, answered with an error"
        );
        let untagged44 = request_event(&app, &service.public_key(), None, "{}", NOW);
        assert_eq!(
            open(&untagged44, &service, NOW).unwrap().encryption,
            Encryption::Nip44
        );
    }

    #[test]
    fn forged_old_foreign_and_unreadable_requests_are_dropped() {
        let (service, app) = (Keys::generate(), Keys::generate());
        let body = r#"{"method":"get_info"}"#;
        let good = request_event(
            &app,
            &service.public_key(),
            Some(Encryption::Nip44),
            body,
            NOW,
        );
        assert!(open(&good, &service, NOW).is_ok());

        let mut forged = good.clone();
        forged.content = nip44::encrypt(
            Keys::generate().secret_key(),
            &service.public_key(),
            body,
            nip44::Version::V2,
        )
        .unwrap();
        assert_eq!(
            open(&forged, &service, NOW).unwrap_err(),
            Dropped::BadSignature
        );

        let old = request_event(&app, &service.public_key(), None, body, NOW - 3600);
        assert_eq!(open(&old, &service, NOW).unwrap_err(), Dropped::TooOld);
        let future = request_event(&app, &service.public_key(), None, body, NOW + 3600);
        assert_eq!(
            open(&future, &service, NOW).unwrap_err(),
            Dropped::FromTheFuture
        );

        let other_box = Keys::generate();
        let foreign = request_event(&app, &other_box.public_key(), None, body, NOW);
        assert_eq!(
            open(&foreign, &service, NOW).unwrap_err(),
            Dropped::NotForUs
        );

        // Encrypted to another key but addressed to us: cannot be read, so no answer.
        let content = nip44::encrypt(
            app.secret_key(),
            &other_box.public_key(),
            body,
            nip44::Version::V2,
        )
        .unwrap();
        let wrong_key = EventBuilder::new(Kind::WalletConnectRequest, content)
            .tag(Tag::public_key(service.public_key()))
            .custom_created_at(Timestamp::from(NOW))
            .sign_with_keys(&app)
            .unwrap();
        assert!(matches!(
            open(&wrong_key, &service, NOW),
            Err(Dropped::Undecryptable(_))
        ));

        let expiring = EventBuilder::new(
            Kind::WalletConnectRequest,
            nip44::encrypt(
                app.secret_key(),
                &service.public_key(),
                body,
                nip44::Version::V2,
            )
            .unwrap(),
        )
        .tags([
            Tag::public_key(service.public_key()),
            Tag::expiration(Timestamp::from(NOW - 1)),
        ])
        .custom_created_at(Timestamp::from(NOW - 5))
        .sign_with_keys(&app)
        .unwrap();
        assert_eq!(open(&expiring, &service, NOW).unwrap_err(), Dropped::TooOld);
    }

    #[test]
    fn the_info_event_lists_methods_encryptions_and_notifications() {
        let service = Keys::generate();
        let event = info_event(
            &service,
            &["get_info", "pay_invoice"],
            &["payment_received"],
        )
        .unwrap();
        assert_eq!(event.kind, Kind::WalletConnectInfo);
        assert_eq!(event.content, "get_info pay_invoice");
        let encryption = event.tags.find(TagKind::custom("encryption")).unwrap();
        assert_eq!(encryption.content(), Some("nip44_v2 nip04"));
        event.verify().unwrap();
    }
}
