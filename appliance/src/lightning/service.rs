//! The Lightning node's life: wait for a seed and a synced bitcoind, build ldk-node on our
//! store and runtime, run its event loop, stop it before bitcoind stops.
//!
//! ```text
//! Waiting (no seed) → Waiting (bitcoind syncing) → Starting → Running → Stopping → Stopped
//!                                      └── Failed (RPC password refused, build error): retried
//! ```

use super::recovery;
use super::seed::Seed;
use super::shared::{Command, Shared};
use super::store::ChannelStore;
use super::summary;
use super::GossipChoice;
use crate::bitcoind::rpc::{RpcClient, RpcFailure};
use crate::status::{BitcoindState, LightningState};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::{Builder, Event, Node};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// How often the channel/balance summary is refreshed besides after each event; more
/// often while a channel is not usable (peers reconnecting raise no event).
const REFRESH_EVERY: Duration = Duration::from_secs(5);
const REFRESH_WHILE_RECONNECTING: Duration = Duration::from_secs(1);
const NODELAY_EVERY: Duration = Duration::from_secs(1);
/// How long to wait before trying again after a failed start.
const RETRY_AFTER: Duration = Duration::from_secs(30);

pub(super) async fn run(
    shared: Arc<Shared>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
) {
    if !shared.settings.enabled {
        shared.set_state(LightningState::Disabled);
        loop {
            match commands.recv().await {
                Some(Command::Restart) => continue,
                Some(Command::Stop(done)) => {
                    let _ = done.send(());
                    return;
                }
                None => return,
            }
        }
    }

    loop {
        let node = loop {
            // Kept across commands: a build under way is never dropped half-way (a started
            // node dropped unstopped would lose its last updates).
            let start = start_when_possible(&shared);
            tokio::pin!(start);
            let waited = loop {
                tokio::select! {
                    node = &mut start => break node,
                    command = commands.recv() => match command {
                        // Not built yet: the build under way reads the newest settings.
                        Some(Command::Restart) => continue,
                        Some(Command::Stop(done)) => {
                            // A build under way finishes, so its node is stopped in order,
                            // not dropped; a wait for a seed or for bitcoind just ends.
                            let building = matches!(
                                shared.status.snapshot().lightning.state,
                                LightningState::Starting
                            );
                            if building {
                                if let Some(node) = start.await {
                                    shared.set_node(None);
                                    let _ = tokio::task::spawn_blocking(move || node.stop()).await;
                                }
                            }
                            shared.set_state(LightningState::Stopped);
                            let _ = done.send(());
                            return;
                        }
                        None => {
                            shared.set_state(LightningState::Stopped);
                            return;
                        }
                    },
                }
            };
            if let Some(node) = waited {
                break node;
            }
        };

        let end = run_events(&shared, &node, &mut commands).await;

        shared.set_state(LightningState::Stopping);
        shared.set_node(None);
        let stopping = Arc::clone(&node);
        let result = tokio::task::spawn_blocking(move || stopping.stop()).await;
        match result {
            Ok(Ok(())) => info!("Lightning node stopped"),
            Ok(Err(err)) => warn!("Lightning node stopped with an error: {err}"),
            Err(err) => error!("Lightning node stop panicked: {err}"),
        }
        match end {
            EventsEnd::Stop(done) => {
                shared.set_state(LightningState::Stopped);
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            EventsEnd::Restart => info!("Lightning node restarting with new settings"),
            EventsEnd::ClaimFunds => {
                let storage = &shared.settings.storage_dir;
                let moved = recovery::unstash(&shared.store).and_then(|moved| {
                    recovery::set_phase(storage, recovery::Phase::ClaimFunds, "").map(|()| moved)
                });
                match moved {
                    Ok(moved) => info!(
                        "recovery: the peers have closed the channels; restarting with the {moved} \
                         restored channel monitor records to claim our side"
                    ),
                    Err(err) => {
                        let message = format!("recovery could not continue: {err}");
                        error!("{message}");
                        shared.set_state(LightningState::Failed { message });
                        return;
                    }
                }
            }
        }
    }
}

/// Why the event loop ended.
enum EventsEnd {
    Stop(Option<oneshot::Sender<()>>),
    /// Settings the node is built with changed: build it again.
    Restart,
    /// Recovery phase 1 is over: restart with the restored monitors.
    ClaimFunds,
}

/// Waits for a seed and a ready bitcoind, then builds and starts the node. `None` when the
/// start failed (the state says why; the caller tries again).
async fn start_when_possible(shared: &Shared) -> Option<Arc<Node>> {
    let seed = wait_for_seed(shared).await;
    wait_for_bitcoind(shared).await;

    shared.set_state(LightningState::Starting);
    if let Err(message) = check_rpc_credentials(shared).await {
        error!("{message}");
        shared.set_state(LightningState::Failed { message });
        tokio::time::sleep(RETRY_AFTER).await;
        return None;
    }
    let started = Instant::now();
    let mut settings = shared.settings.clone();
    settings.lsp = shared.lsp_settings();
    let store = shared.store.clone();
    let gossip = shared.gossip_choice();
    let built =
        tokio::task::spawn_blocking(move || build_and_start(&settings, &store, &seed, &gossip))
            .await
            .unwrap_or_else(|err| Err(format!("the Lightning node's start panicked: {err}")));
    match built {
        Ok(node) => {
            info!(
                "Lightning node {} running after {:.1?}",
                node.node_id(),
                started.elapsed()
            );
            shared.set_node(Some(Arc::clone(&node)));
            refresh_status(shared, &node);
            shared.set_state(LightningState::Running);
            Some(node)
        }
        Err(message) => {
            error!("{message}");
            shared.set_state(LightningState::Failed { message });
            tokio::time::sleep(RETRY_AFTER).await;
            None
        }
    }
}

/// Lightning's waiting reason on a box nobody has set a wallet up on yet.
pub const NO_WALLET_YET: &str =
    "No wallet yet: create a new one or restore yours from its 24 words on the web page.";

async fn wait_for_seed(shared: &Shared) -> Seed {
    loop {
        // Subscribe before looking, so a seed stored in between is not missed.
        let mut stored = shared.seed_stored.subscribe();
        match Seed::load(&shared.settings.secrets_dir) {
            Ok(Some(seed)) => return seed,
            Ok(None) => shared.set_state(LightningState::Waiting {
                reason: NO_WALLET_YET.into(),
            }),
            Err(err) => shared.set_state(LightningState::Failed {
                message: format!(
                    "The wallet seed cannot be read: {err}. Restore the data directory from \
                     a backup, or restore the wallet from its 24 words."
                ),
            }),
        }
        let _ = stored.changed().await;
    }
}

async fn wait_for_bitcoind(shared: &Shared) {
    let mut status = shared.status.subscribe();
    loop {
        let reason = {
            let current = status.borrow_and_update();
            match &current.bitcoind.state {
                BitcoindState::Ready => return,
                BitcoindState::Syncing => format!(
                    "Waiting for bitcoind to finish its initial sync ({}%).",
                    current
                        .bitcoind
                        .chain
                        .as_ref()
                        .map(|c| c.progress_percent())
                        .unwrap_or(0)
                ),
                _ => "Waiting for bitcoind to start.".to_string(),
            }
        };
        shared.set_state(LightningState::Waiting { reason });
        if status.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// ldk-node would retry a refused RPC password silently forever: check it once first.
async fn check_rpc_credentials(shared: &Shared) -> Result<(), String> {
    let settings = &shared.settings;
    let client = RpcClient::new(
        settings.rpc_port,
        &settings.rpc_user,
        Duration::from_secs(20),
    )
    .map_err(|err| err.to_string())?;
    match client.chain_info().await {
        Ok(_) | Err(RpcFailure::Timeout(_)) | Err(RpcFailure::WarmingUp(_)) => Ok(()),
        Err(RpcFailure::Unauthorized) => Err(format!(
            "bitcoind rejected the Lightning node's RPC password (user \"{}\"). Another \
             bitcoind may answer on port {}, or bitcoin.conf was changed by hand: restart \
             plugnode so it writes bitcoin.conf again.",
            settings.rpc_user.name, settings.rpc_port
        )),
        Err(other) => Err(format!("the Lightning node cannot reach bitcoind: {other}")),
    }
}

fn build_and_start(
    settings: &super::LightningSettings,
    store: &ChannelStore,
    seed: &Seed,
    gossip: &GossipChoice,
) -> Result<Arc<Node>, String> {
    let mut builder = Builder::new();
    builder.set_network(settings.network.to_bitcoin());
    builder.set_storage_dir_path(settings.storage_dir.display().to_string());
    builder.set_runtime(tokio::runtime::Handle::current());
    builder.set_log_facade_logger();
    builder.set_entropy_bip39_mnemonic(seed.mnemonic().clone(), None);
    builder.set_chain_source_bitcoind_rpc(
        "127.0.0.1".into(),
        settings.rpc_port,
        settings.rpc_user.name.clone(),
        settings.rpc_user.password.expose().to_string(),
    );
    let listen = SocketAddress::from(settings.listen_address);
    builder
        .set_listening_addresses(vec![listen])
        .map_err(|err| format!("invalid Lightning listening address: {err}"))?;
    if let Some(alias) = &settings.alias {
        builder
            .set_node_alias(alias.clone())
            .map_err(|err| format!("invalid lightning.alias: {err}"))?;
    }
    if let Some(lsp) = &settings.lsp {
        // Configured but unused until the owner agrees on the page and a payment needs a
        // channel: ldk-node contacts the provider only when asked for such an invoice.
        let node_id = lsp
            .node_id
            .parse()
            .map_err(|_| "invalid lightning.lsp.node_id".to_string())?;
        let address = SocketAddress::from_str(&lsp.address)
            .map_err(|_| format!("invalid lightning.lsp.address {:?}", lsp.address))?;
        builder.set_liquidity_source_lsps2(
            node_id,
            address,
            lsp.token.as_ref().map(|t| t.expose().to_string()),
        );
    }
    if let Some(service) = &settings.lsp_service {
        builder.set_liquidity_provider_lsps2(service.clone());
    }
    match gossip {
        GossipChoice::P2p => {
            builder.set_gossip_source_p2p();
        }
        GossipChoice::Rgs(url) => {
            builder.set_gossip_source_rgs(url.clone());
        }
    }
    let node = builder
        .build_with_store(Arc::new(store.clone()))
        .map_err(|err| format!("cannot set up the Lightning node: {err}"))?;
    node.start()
        .map_err(|err| format!("the Lightning node did not start: {err}"))?;
    Ok(Arc::new(node))
}

/// The running node's loop: events (acknowledged only after the status reflects them),
/// periodic refreshes, and the stop command.
async fn run_events(
    shared: &Shared,
    node: &Arc<Node>,
    commands: &mut tokio::sync::mpsc::UnboundedReceiver<Command>,
) -> EventsEnd {
    let mut progress = RecoveryProgress::default();
    let mut next_refresh = tokio::time::Instant::now();
    // New peer connections get TCP_NODELAY within a second (see `nodelay`).
    let mut nodelay = tokio::time::interval(NODELAY_EVERY);
    nodelay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = nodelay.tick() => {
                super::nodelay::set_on_every_tcp_socket();
            }
            event = node.next_event_async() => {
                log_event(&event);
                if matches!(
                    &event,
                    Event::ChannelClosed {
                        reason: Some(ldk_node::lightning::events::ClosureReason::OutdatedChannelManager),
                        ..
                    }
                ) {
                    shared.status.update(|s| s.lightning.force_closed_on_start += 1);
                }
                refresh_status(shared, node);
                shared.payment_events.send_modify(|n| *n += 1);
                if let Err(err) = node.event_handled() {
                    // The event stays queued and comes back: nothing is lost.
                    error!("could not acknowledge a Lightning event: {err}");
                }
            }
            _ = tokio::time::sleep_until(next_refresh) => {
                refresh_status(shared, node);
                if progress.advance(shared, node).await {
                    return EventsEnd::ClaimFunds;
                }
                let waiting = node.list_channels().iter().any(|c| c.is_channel_ready && !c.is_usable);
                next_refresh = tokio::time::Instant::now()
                    + if waiting { REFRESH_WHILE_RECONNECTING } else { REFRESH_EVERY };
            }
            command = commands.recv() => {
                return match command {
                    Some(Command::Stop(done)) => EventsEnd::Stop(Some(done)),
                    Some(Command::Restart) => EventsEnd::Restart,
                    None => EventsEnd::Stop(None),
                };
            }
        }
    }
}

/// Where a recovery from an older backup stands (see [`recovery`]).
#[derive(Default)]
struct RecoveryProgress {
    /// The height at which every old funding output was first seen spent in a block.
    all_closed_at_height: Option<u32>,
    /// The height at which phase 2 (claiming) started.
    claiming_since: Option<u32>,
}

impl RecoveryProgress {
    /// Moves recovery on; `true` when phase 1 is done and the node must restart.
    async fn advance(&mut self, shared: &Shared, node: &Node) -> bool {
        let storage = &shared.settings.storage_dir;
        let height = node.status().current_best_block.height;
        match recovery::phase(storage) {
            None => false,
            Some(recovery::Phase::AskPeersToClose) => {
                let outpoints = match recovery::stashed_funding_outpoints(&shared.store) {
                    Ok(outpoints) => outpoints,
                    Err(err) => {
                        warn!("recovery: cannot read the old channels: {err}");
                        return false;
                    }
                };
                let Ok(rpc) = RpcClient::new(
                    shared.settings.rpc_port,
                    &shared.settings.rpc_user,
                    Duration::from_secs(20),
                ) else {
                    return false;
                };
                for (txid, vout) in &outpoints {
                    match rpc.is_unspent_in_chain(txid, *vout).await {
                        Ok(false) => {}
                        // Still open (the peer has not closed yet), or bitcoind is busy.
                        _ => {
                            self.all_closed_at_height = None;
                            return false;
                        }
                    }
                }
                let since = *self.all_closed_at_height.get_or_insert_with(|| {
                    info!(
                        "recovery: the peers closed all {} old channels on-chain; claiming our \
                         side after {} more blocks",
                        outpoints.len(),
                        recovery::CONFIRMATIONS
                    );
                    height
                });
                height >= since + recovery::CONFIRMATIONS
            }
            Some(recovery::Phase::ClaimFunds) => {
                // The monitors find our outputs in the peers' confirmed commitments and hand
                // them to the sweeper; once it has nothing pending after a few more blocks,
                // everything that could be claimed is in the wallet. (The old monitors keep
                // listing their own never-confirmable commitment as a balance, so their
                // balances are no measure.)
                let since = *self.claiming_since.get_or_insert(height);
                let balances = node.list_balances();
                let swept = balances
                    .pending_balances_from_channel_closures
                    .iter()
                    .all(|b| {
                        matches!(
                            b,
                            ldk_node::PendingSweepBalance::AwaitingThresholdConfirmations {
                                confirmation_height, ..
                            } if confirmation_height + recovery::CONFIRMATIONS <= height
                        )
                    });
                let done = height >= since + 2 * recovery::CONFIRMATIONS && swept;
                if done {
                    info!(
                        "recovery finished: our side of every old channel is back in the wallet \
                         ({} sat on-chain)",
                        balances.total_onchain_balance_sats
                    );
                    let _ = recovery::finish(storage);
                    refresh_status(shared, node);
                }
                false
            }
        }
    }
}

/// One line per event; never secrets (preimages stay out).
fn log_event(event: &Event) {
    match event {
        Event::PaymentSuccessful {
            payment_id,
            fee_paid_msat,
            ..
        } => info!(
            "payment {} sent (fee {} msat)",
            payment_id.map(|id| hex::encode(id.0)).unwrap_or_default(),
            fee_paid_msat.unwrap_or(0)
        ),
        Event::PaymentFailed {
            payment_id, reason, ..
        } => warn!(
            "payment {} failed: {reason:?}",
            payment_id.map(|id| hex::encode(id.0)).unwrap_or_default()
        ),
        Event::PaymentReceived {
            payment_id,
            amount_msat,
            ..
        } => info!(
            "payment {} received: {amount_msat} msat",
            payment_id.map(|id| hex::encode(id.0)).unwrap_or_default()
        ),
        Event::ChannelPending {
            channel_id,
            counterparty_node_id,
            ..
        } => info!("channel {channel_id} with {counterparty_node_id} pending"),
        Event::ChannelReady {
            channel_id,
            counterparty_node_id,
            ..
        } => info!(
            "channel {channel_id} ready{}",
            counterparty_node_id
                .map(|id| format!(" with {id}"))
                .unwrap_or_default()
        ),
        Event::ChannelClosed {
            channel_id, reason, ..
        } => info!("channel {channel_id} closed: {reason:?}"),
        other => info!("Lightning event: {}", event_name(other)),
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::PaymentSuccessful { .. } => "payment successful",
        Event::PaymentFailed { .. } => "payment failed",
        Event::PaymentReceived { .. } => "payment received",
        Event::PaymentForwarded { .. } => "payment forwarded",
        Event::PaymentClaimable { .. } => "payment claimable",
        Event::ChannelPending { .. } => "channel pending",
        Event::ChannelReady { .. } => "channel ready",
        Event::ChannelClosed { .. } => "channel closed",
        _ => "other",
    }
}

/// The summary the screens and the web page show.
fn refresh_status(shared: &Shared, node: &Node) {
    let channels = node.list_channels();
    let lsp = shared.lsp_settings();
    let balances = summary::balances(&node.list_balances(), &channels);
    let summaries = channels
        .iter()
        .map(|c| summary::channel(c, shared.is_closing(c), lsp.as_ref()))
        .collect();
    let peers = node.list_peers().iter().filter(|p| p.is_connected).count() as u32;
    let payments = summary::recent_payments(node);
    let node_id = node.node_id().to_string();
    let port = shared.settings.listen_address.port();
    let recovery = shared.in_recovery_mode();
    shared.status.update(|s| {
        s.lightning.node_id = Some(node_id);
        s.lightning.listening_port = Some(port);
        s.lightning.peers = peers;
        s.lightning.channels = summaries;
        s.lightning.balances = balances;
        s.lightning.recent_payments = payments;
        s.lightning.recovery_mode = recovery;
    });
}
