//! Start-up and shutdown, in Bitcoin Core's order: lock the data directory, start the RPC
//! server answering the -28 warm-up error, load the chain, finish warm-up; on `stop` or
//! SIGTERM/SIGINT close RPC, flush, delete the cookie and exit 0.

use super::auth::Authenticator;
use super::http::{self, ServerConfig};
use super::log::Logger;
use super::node::{Node, NodeState, MEMPOOL_FILE};
use super::settings::Settings;
use super::upstream::Upstream;
use super::{CLIENT_NAME, CLIENT_VERSION_STRING};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// The start-up messages Core shows as -28 answers while it starts (in this order).
const WARMUP_STEPS: &[&str] = &[
    "Loading P2P addresses…",
    "Loading banlist…",
    "Loading block index…",
    "Verifying blocks…",
    "Starting network threads…",
    "Done loading",
];

/// Prints an init error like Core (`Error: …` on stderr, and in the log).
fn init_error(log: Option<&Logger>, message: &str) -> i32 {
    eprintln!("Error: {message}");
    if let Some(log) = log {
        log.log(format!("Error: {message}"));
    }
    1
}

/// Core's `LockDirectory`: an exclusive `flock` on `<dir>/.lock`, held until exit.
fn lock_directory(dir: &Path) -> Result<Flock<File>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(".lock"))
        .map_err(|_| {
            format!(
                "Cannot write to directory '{}'; check permissions.",
                dir.display()
            )
        })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        format!(
            "Cannot obtain a lock on directory {}. {CLIENT_NAME} is probably already running.",
            dir.display()
        )
    })
}

async fn bind(settings: &Settings, log: &Logger) -> Vec<TcpListener> {
    let mut listeners = Vec::new();
    for (host, port) in &settings.rpc_bind {
        log.log(format!("Binding RPC on address {host} port {port}"));
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match TcpListener::bind(&addr).await {
            Ok(listener) => listeners.push(listener),
            Err(_) => log.log(format!("Binding RPC on address {host} port {port} failed.")),
        }
    }
    listeners
}

/// Runs the node until it is asked to stop; the process exit code.
pub async fn run(settings: Settings) -> i32 {
    // Signal handlers first, so a SIGTERM at any moment ends in a clean shutdown.
    let sigterm = signal(SignalKind::terminate());
    let sigint = signal(SignalKind::interrupt());
    let sighup = signal(SignalKind::hangup());

    if let Err(err) = std::fs::create_dir_all(&settings.net_dir) {
        return init_error(
            None,
            &format!(
                "Cannot write to directory '{}'; check permissions. ({err})",
                settings.net_dir.display()
            ),
        );
    }
    let lock = match lock_directory(&settings.net_dir) {
        Ok(lock) => lock,
        Err(message) => return init_error(None, &message),
    };

    let log = Logger::new(settings.print_to_console, settings.debug_log.as_deref());
    log.log(format!(
        "{CLIENT_NAME} version v{CLIENT_VERSION_STRING} (release build)"
    ));
    log.log(format!(
        "regtest-sim {}: a simulated regtest node for tests and demos. It checks no scripts and no signatures and has no P2P network.",
        env!("CARGO_PKG_VERSION")
    ));
    for line in &settings.parse_log {
        log.log(line);
    }
    log.log(format!(
        "Using data directory {}",
        settings.net_dir.display()
    ));
    log.log(format!(
        "regtest-sim: RPC port {}; P2P port {} is not opened (the sim has no P2P network)",
        settings.rpc_port, settings.p2p_port
    ));
    match &settings.config_path {
        Some(path) => log.log(format!("Config file: {}", path.display())),
        None => log.log("Config file: (none)"),
    }
    for line in &settings.described_args {
        log.log(line);
    }
    for warning in &settings.init_warnings {
        eprintln!("Warning: {warning}");
        log.log(format!("Warning: {warning}"));
    }

    let node = Arc::new(Node::new(settings.clone(), log));
    let log = &node.log;
    {
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (sigterm, sigint, sighup) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    // Core reopens debug.log on SIGHUP; the sim keeps it open.
                    _ = hup.recv() => continue,
                }
            }
            node.request_shutdown();
        });
    }

    if let Some(pid_file) = &settings.pid_file {
        let _ = std::fs::write(pid_file, format!("{}\n", std::process::id()));
    }

    let log_line = |line: String| log.log(line);
    let auth = match Authenticator::init(
        settings.rpc_user.as_deref(),
        settings.rpc_password.as_deref(),
        &settings.rpc_auth,
        settings.cookie_file.as_deref(),
        &log_line,
    ) {
        Ok(auth) => auth,
        Err(err) => {
            log.log(err.to_string());
            cleanup(&settings, None);
            return init_error(
                Some(log),
                "Unable to start HTTP server. See debug log for details.",
            );
        }
    };
    let listeners = bind(&settings, log).await;
    if listeners.is_empty() {
        auth.delete_cookie();
        cleanup(&settings, None);
        return init_error(
            Some(log),
            "Unable to start HTTP server. See debug log for details.",
        );
    }
    let config = Arc::new(ServerConfig {
        auth: auth.clone(),
        allow: settings.rpc_allow.clone(),
        idle_timeout: settings.rpc_server_timeout,
        wallet_paths: !settings.wallet_disabled,
        upstream: settings.upstream.clone().map(Upstream::new),
    });
    let server = tokio::spawn(http::serve(Arc::clone(&node), config, listeners));

    let exit_code = match warm_up(&node).await {
        Ok(()) => {
            if let Some(interval) = settings.block_interval {
                tokio::spawn(mine_periodically(Arc::clone(&node), interval));
            }
            let mut shutdown = node.shutdown_signal();
            let _ = shutdown.wait_for(|stop| *stop).await;
            0
        }
        Err(message) => {
            node.request_shutdown();
            init_error(Some(log), &message)
        }
    };

    log.log("Shutdown: In progress...");
    let _ = server.await;
    auth.delete_cookie();
    if !settings.stop_delay.is_zero() {
        // Pretend to flush a large cache; RPC is already closed.
        tokio::time::sleep(settings.stop_delay).await;
    }
    let node_for_flush = Arc::clone(&node);
    let _ = tokio::task::spawn_blocking(move || flush(&node_for_flush)).await;
    cleanup(&settings, Some(log));
    drop(lock);
    log.log("Shutdown: done");
    exit_code
}

/// Steps through Core's start-up messages over `-simwarmup`, loading the chain and the
/// mempool on the way. Returns early (Ok) when shutdown is requested meanwhile.
async fn warm_up(node: &Arc<Node>) -> Result<(), String> {
    let step = node.settings.warmup / WARMUP_STEPS.len() as u32;
    let mut shutdown = node.shutdown_signal();
    tokio::select! {
        _ = tokio::time::sleep(step) => {}
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    }
    for message in WARMUP_STEPS {
        node.set_warmup_status(message);
        if let (Some(upstream), "Loading block index…") = (&node.settings.upstream, *message) {
            node.log.log(format!(
                "regtest-sim: upstream mode: no chain of its own; RPC is forwarded to the regtest-sim at {}",
                upstream.address()
            ));
        } else if *message == "Loading block index…" {
            let loader = Arc::clone(node);
            let state = tokio::task::spawn_blocking(move || {
                let mut state = NodeState::load(&loader.settings, &loader.log)?;
                if loader.settings.persist_mempool {
                    let path = loader.settings.net_path(MEMPOOL_FILE);
                    let (accepted, failed) = state.load_mempool(&path, &loader.settings);
                    loader.log.log(format!(
                        "Imported mempool transactions from disk: {accepted} succeeded, {failed} failed, 0 expired, 0 already there, {} waiting for initial broadcast",
                        state.mempool.unbroadcast_count()
                    ));
                } else {
                    state.mempool_loaded = true;
                }
                Ok::<_, super::store::StoreError>(state)
            })
            .await
            .map_err(|e| format!("loading the chain failed: {e}"))?
            .map_err(|e| e.to_string())?;
            node.set_state(state);
        }
        if *message != "Done loading" {
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }
    node.finish_warmup();
    Ok(())
}

/// `-simblockinterval`: mines a block every `interval` until shutdown.
async fn mine_periodically(node: Arc<Node>, interval: Duration) {
    let mut shutdown = node.shutdown_signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let miner = Arc::clone(&node);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(mut state) = miner.state() {
                if let Err(err) = state.mine(
                    1,
                    &miner.settings.mining_script,
                    miner.max_tip_age(),
                    &miner.log,
                ) {
                    miner
                        .log
                        .log(format!("regtest-sim: interval mining failed: {err}"));
                }
            }
        })
        .await;
    }
}

/// Saves the mempool and syncs the block file.
fn flush(node: &Node) {
    let Some(mut state) = node.state() else {
        return;
    };
    if node.settings.persist_mempool {
        let path = node.settings.net_path(MEMPOOL_FILE);
        match state.save_mempool(&path) {
            Ok(count) => node.log.log(format!(
                "Dumped mempool: {count} transactions to {}",
                path.display()
            )),
            Err(err) => node
                .log
                .log(format!("Failed to dump mempool: {err}. Continuing anyway.")),
        }
    }
    if let Err(err) = state.flush() {
        node.log.log(format!(
            "regtest-sim: flushing the block file failed: {err}"
        ));
    }
}

fn cleanup(settings: &Settings, log: Option<&Logger>) {
    if let Some(pid) = &settings.pid_file {
        if let Err(err) = std::fs::remove_file(pid) {
            if err.kind() != std::io::ErrorKind::NotFound {
                if let Some(log) = log {
                    log.log(format!(
                        "Unable to remove PID file ({}): {err}",
                        pid.display()
                    ));
                }
            }
        }
    }
}
