//! A stand-in for a public Nostr Wallet Connect relay that, like Alby's NWC relay, keeps
//! events for a while, ephemeral ones (NIP-47 requests and answers) included, so a wallet
//! service that was away receives the requests sent meanwhile. (Relays that follow NIP-01
//! to the letter keep no ephemeral events: a request sent while the service is away is
//! lost there.) Test equipment: no limits, no persistence.

use async_wsocket::futures_util::{SinkExt, StreamExt};
use async_wsocket::native::{self, Message};
use nostr_sdk::prelude::*;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The running relay; stops when dropped.
pub struct KeepingRelay {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeepingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Event>>,
}

impl KeepingRelay {
    pub async fn start() -> KeepingRelay {
        let listener = TcpListener::bind(("127.0.0.1", super::free_port()))
            .await
            .expect("the test relay listens");
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let (new_events, _) = broadcast::channel(4096);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, new_events) = (Arc::clone(&shared), new_events.clone());
                tokio::spawn(async move {
                    if let Ok(socket) = native::accept(stream).await {
                        serve(socket, shared, new_events).await;
                    }
                });
            }
        });
        KeepingRelay { url, task }
    }
}

async fn serve(
    socket: native::WebSocketStream<tokio::net::TcpStream>,
    shared: Arc<Shared>,
    new_events: broadcast::Sender<Event>,
) {
    let (mut tx, mut rx) = socket.split();
    let mut live = new_events.subscribe();
    let mut subscriptions: Vec<(SubscriptionId, Vec<Filter>)> = Vec::new();
    let send = |message: RelayMessage| Message::Text(message.as_json().into());
    loop {
        tokio::select! {
            incoming = rx.next() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    if matches!(incoming, Some(Ok(_))) { continue } else { return }
                };
                let Ok(message) = ClientMessage::from_json(text.as_bytes()) else { continue };
                match message {
                    ClientMessage::Event(event) => {
                        let event = event.into_owned();
                        let ok = event.verify().is_ok();
                        if ok {
                            shared.events.lock().unwrap().push(event.clone());
                            let _ = new_events.send(event.clone());
                        }
                        let reply = RelayMessage::Ok {
                            event_id: event.id,
                            status: ok,
                            message: Cow::Borrowed(if ok { "" } else { "invalid: bad signature" }),
                        };
                        if tx.send(send(reply)).await.is_err() { return }
                    }
                    ClientMessage::Req { subscription_id, filters } => {
                        let id = subscription_id.into_owned();
                        let filters: Vec<Filter> = filters.into_iter().map(Cow::into_owned).collect();
                        let stored: Vec<Event> = shared.events.lock().unwrap().clone();
                        for event in stored.iter().filter(|e| matches(&filters, e)) {
                            let reply = RelayMessage::event(id.clone(), event.clone());
                            if tx.send(send(reply)).await.is_err() { return }
                        }
                        if tx.send(send(RelayMessage::eose(id.clone()))).await.is_err() { return }
                        subscriptions.retain(|(known, _)| *known != id);
                        subscriptions.push((id, filters));
                    }
                    ClientMessage::Close(id) => subscriptions.retain(|(known, _)| *known != *id),
                    _ => {}
                }
            }
            event = live.recv() => {
                let Ok(event) = event else { continue };
                for (id, filters) in &subscriptions {
                    if matches(filters, &event) {
                        let reply = RelayMessage::event(id.clone(), event.clone());
                        if tx.send(send(reply)).await.is_err() { return }
                    }
                }
            }
        }
    }
}

fn matches(filters: &[Filter], event: &Event) -> bool {
    filters
        .iter()
        .any(|f| f.match_event(event, MatchEventOptions::new()))
}
