//! The box's own Nostr relay on the home network (`[pairing] relay_listen`, port 4869): a
//! phone on the home Wi-Fi needs nothing else to reach the wallet service. It carries only
//! Nostr Wallet Connect traffic for this box, keeps it in memory, and limits connections
//! and rates so a misbehaving app on the network cannot take it down for the others.

use nostr_relay_builder::prelude::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// At most this many apps (and the service itself) connected at once.
const MAX_CONNECTIONS: usize = 64;
/// Events one connection may publish per minute: an app paying 200 invoices in a row
/// stays well below; a flood does not.
const EVENTS_PER_MINUTE: u32 = 1200;
/// Events kept in memory (requests, answers, notifications all expire within minutes).
const MAX_EVENTS: usize = 20_000;

/// The running relay. Stops when dropped (or on [`EmbeddedRelay::stop`]).
pub struct EmbeddedRelay {
    relay: LocalRelay,
    listen: SocketAddr,
}

impl EmbeddedRelay {
    /// Binds `listen` and starts serving; fails when the port is taken.
    pub async fn start(listen: SocketAddr, service: PublicKey) -> Result<EmbeddedRelay, String> {
        let builder = RelayBuilder::default()
            .addr(listen.ip())
            .port(listen.port())
            .database(MemoryDatabase::with_opts(MemoryDatabaseOptions {
                events: true,
                max_events: Some(MAX_EVENTS),
            }))
            .max_connections(MAX_CONNECTIONS)
            .rate_limit(RateLimit {
                max_reqs: 20,
                notes_per_minute: EVENTS_PER_MINUTE,
            })
            .write_policy(WalletConnectOnly { service });
        let relay = LocalRelay::new(builder);
        relay.run().await.map_err(|err| {
            format!(
                "cannot listen on {listen} (pairing.relay_listen): {err}. Another program may \
                 use the port; choose another one or turn the embedded relay off."
            )
        })?;
        Ok(EmbeddedRelay { relay, listen })
    }

    /// Where the wallet service itself connects (loopback when listening everywhere).
    pub fn internal_url(&self) -> String {
        let ip = match self.listen.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("ws://{}", SocketAddr::new(ip, self.listen.port()))
    }

    pub fn port(&self) -> u16 {
        self.listen.port()
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    pub fn stop(&self) {
        self.relay.shutdown();
    }
}

/// Accepts only NIP-47 events that concern this box's wallet service.
#[derive(Debug)]
struct WalletConnectOnly {
    service: PublicKey,
}

impl WritePolicy for WalletConnectOnly {
    fn admit_event<'a>(
        &'a self,
        event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        let from_service = event.pubkey == self.service;
        let to_service = event.tags.public_keys().any(|p| *p == self.service);
        let admitted = match event.kind.as_u16() {
            // Info, answers and notifications come from the service.
            13194 | 23195 | 23196 | 23197 => from_service,
            // Requests go to it.
            23194 => to_service,
            _ => false,
        };
        Box::pin(async move {
            if admitted {
                PolicyResult::Accept
            } else {
                PolicyResult::Reject(
                    "blocked: this relay only carries Nostr Wallet Connect messages for its box"
                        .into(),
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_this_boxs_wallet_traffic_is_admitted() {
        let service = Keys::generate();
        let stranger = Keys::generate();
        let policy = WalletConnectOnly {
            service: service.public_key(),
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let admitted = |event: Event| {
            let policy = &policy;
            async move {
                matches!(
                    policy.admit_event(&event, &addr).await,
                    PolicyResult::Accept
                )
            }
        };
        let note = EventBuilder::text_note("hello")
            .sign_with_keys(&stranger)
            .unwrap();
        assert!(!admitted(note).await);
        let request = EventBuilder::new(Kind::WalletConnectRequest, "x")
            .tag(Tag::public_key(service.public_key()))
            .sign_with_keys(&stranger)
            .unwrap();
        assert!(admitted(request).await);
        let elsewhere = EventBuilder::new(Kind::WalletConnectRequest, "x")
            .tag(Tag::public_key(stranger.public_key()))
            .sign_with_keys(&stranger)
            .unwrap();
        assert!(!admitted(elsewhere).await);
        let fake_answer = EventBuilder::new(Kind::WalletConnectResponse, "x")
            .sign_with_keys(&stranger)
            .unwrap();
        assert!(!admitted(fake_answer).await);
        let answer = EventBuilder::new(Kind::WalletConnectResponse, "x")
            .sign_with_keys(&service)
            .unwrap();
        assert!(admitted(answer).await);
    }
}
