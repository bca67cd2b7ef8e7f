//! The bitcoind supervisor: a task that owns the child process and drives the state machine
//! others watch through `status.bitcoind`:
//!
//! ```text
//! NotStarted → Starting (warm-up, -28) → Syncing → Ready
//!      ↑             │ unexpected exit
//!      └─ Restarting ┘ (backoff 1 s … 5 min) ── 5 exits in 10 min ──→ CrashLoop (until Retry)
//! InsufficientDisk / Failed: not started until Retry (disk space is re-checked every minute)
//! any state ── stop() ──→ Stopping → Stopped
//! ```
//!
//! Stopping is always graceful first: the `stop` RPC (SIGTERM when RPC cannot be reached),
//! then waiting up to `stop_timeout` for bitcoind to flush and exit; SIGKILL only after that,
//! logged loudly. A slow RPC answer while bitcoind flushes is never taken for a hang.

use super::conf::{self, ConfSettings};
use super::credentials::RpcCredentials;
use super::process::{describe_exit, BitcoindProcess, OutputTail, Spawner};
use super::restart::{RestartDecision, RestartPolicy};
use super::rpc::{RpcClient, RpcFailure};
use super::run_as::RunAs;
use super::sizing::{self, DiskSpace, Resources};
use crate::config::{BitcoindConfig, DataConfig};
use crate::fsutil;
use crate::shutdown::Shutdown;
use crate::status::{unix_now, BitcoindState, ChainInfo, StatusHandle};
use crate::system::disk;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// How often health is checked while bitcoind starts or syncs, and once it is ready.
const POLL_WHILE_STARTING: Duration = Duration::from_millis(250);
const POLL_WHEN_READY: Duration = Duration::from_secs(5);
/// An RPC answer may take this long before the check counts as "busy" (not failed).
const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the `stop` RPC may take before SIGTERM is sent as well.
const STOP_RPC_GRACE: Duration = Duration::from_secs(30);
/// How often a refused start (disk too small) is re-checked on its own.
const RECHECK_REFUSED_START: Duration = Duration::from_secs(60);
/// Lines of bitcoind's output shown with a crash-loop alert.
const CRASH_REPORT_LINES: usize = 12;

/// What the supervisor needs to run bitcoind.
#[derive(Clone, Debug)]
pub struct BitcoindSettings {
    pub bitcoind: BitcoindConfig,
    pub data: DataConfig,
    pub credentials: RpcCredentials,
}

impl BitcoindSettings {
    pub fn datadir(&self) -> PathBuf {
        self.data.bitcoind_dir()
    }

    /// plugnode's `bitcoin.conf`: in bitcoind's data directory, or, when bitcoind runs as
    /// its own user (whose the directory is), in plugnode's data directory beside it.
    pub fn conf_path(&self) -> PathBuf {
        match self.bitcoind.user {
            None => self.datadir().join("bitcoin.conf"),
            Some(_) => self.data.dir.join("bitcoin.conf"),
        }
    }

    /// The conf's mode: bitcoind must read it when it runs as its own user. It holds ports,
    /// sizes and salted RPC hashes, no password.
    fn conf_mode(&self) -> u32 {
        match self.bitcoind.user {
            None => 0o600,
            Some(_) => 0o644,
        }
    }
}

enum Command {
    Retry,
    Stop(oneshot::Sender<()>),
}

/// Commands for the bitcoind supervisor. Cheap to clone.
#[derive(Clone)]
pub struct BitcoindHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// bitcoind's pid while it runs, so a stop can wait for the process itself when the
    /// supervisor task is gone.
    child: Arc<Mutex<Option<i32>>>,
}

impl BitcoindHandle {
    /// Starts the supervisor task. It starts bitcoind at once.
    pub fn spawn(
        settings: BitcoindSettings,
        status: StatusHandle,
        shutdown: Shutdown,
    ) -> BitcoindHandle {
        let (commands, receiver) = mpsc::unbounded_channel();
        let child = Arc::new(Mutex::new(None));
        let supervisor = Supervisor {
            settings,
            status: status.clone(),
            shutdown,
            child: child.clone(),
            checked_last_stop: false,
            commands: receiver,
            policy: RestartPolicy::default(),
            tail: OutputTail::default(),
            spawner: Spawner::new(tokio::runtime::Handle::current())
                .expect("a thread for starting bitcoind"),
        };
        // If the supervisor panics, its spawner thread ends and bitcoind gets its SIGTERM
        // from the kernel; the box stops in order and `stop` waits for bitcoind's process.
        crate::essential::spawn("bitcoind supervisor", status, supervisor.run());
        BitcoindHandle { commands, child }
    }

    /// Leaves a crash loop, a refused start or a failure and starts bitcoind again.
    pub fn retry(&self) {
        let _ = self.commands.send(Command::Retry);
    }

    /// Stops bitcoind gracefully and returns once its process is gone, also when the
    /// supervisor task is gone.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() && stopped.await.is_ok() {
            return;
        }
        let pid = *self.child.lock().expect("child lock");
        if let Some(pid) = pid {
            warn!("the bitcoind supervisor is gone: waiting for bitcoind (pid {pid}) to exit");
            wait_until_gone(pid).await;
        }
    }
}

/// How a wait for the user ended.
enum Wake {
    Retry,
    Recheck,
    Stop(oneshot::Sender<()>),
}

/// How a run of the child ended.
enum RunEnd {
    Exited(std::process::ExitStatus, Duration),
    Stop(oneshot::Sender<()>),
}

struct Supervisor {
    settings: BitcoindSettings,
    status: StatusHandle,
    /// Shared with the handle: bitcoind's pid while it runs.
    child: Arc<Mutex<Option<i32>>>,
    /// The box's stop: once it began, an exit of bitcoind is not restarted (systemd may
    /// have sent bitcoind its own SIGTERM).
    shutdown: Shutdown,
    /// Whether bitcoind's debug.log was read for how its previous run ended.
    checked_last_stop: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    policy: RestartPolicy,
    tail: OutputTail,
    spawner: Spawner,
}

type HealthCheck = Pin<Box<dyn Future<Output = Result<ChainInfo, RpcFailure>> + Send>>;

impl Supervisor {
    async fn run(mut self) {
        let network = self.settings.bitcoind.network.chain_name().to_string();
        self.status.update(|s| s.bitcoind.network = network);
        let rpc = match RpcClient::new(
            self.settings.bitcoind.rpc_port(),
            &self.settings.credentials.supervisor,
            RPC_TIMEOUT,
        ) {
            Ok(rpc) => rpc,
            Err(err) => {
                self.set_state(BitcoindState::Failed {
                    message: format!("cannot set up the RPC client: {err}"),
                });
                let done = self.wait_for_stop().await;
                return self.finish(done);
            }
        };

        loop {
            // Never (re)start bitcoind while the box stops: systemd may have sent it its own
            // SIGTERM, and the ordered stop will come to it.
            if self.shutdown.is_triggered() {
                let done = self.wait_for_stop().await;
                return self.finish(done);
            }
            let process = match self.prepare_and_spawn().await {
                Ok(process) => process,
                Err(refusal) => {
                    self.set_state(refusal);
                    match self.wait_for_user(Some(RECHECK_REFUSED_START)).await {
                        Wake::Retry | Wake::Recheck => continue,
                        Wake::Stop(done) => return self.finish(done),
                    }
                }
            };

            let ended = self.supervise(process, &rpc).await;
            *self.child.lock().expect("child lock") = None;
            match ended {
                RunEnd::Stop(done) => return self.finish(done),
                RunEnd::Exited(exit, _) if self.shutdown.is_triggered() => {
                    info!(
                        "bitcoind exited ({}) while the box is stopping: not restarting it",
                        describe_exit(&exit)
                    );
                    let done = self.wait_for_stop().await;
                    return self.finish(done);
                }
                RunEnd::Exited(exit, ran_for) => {
                    let last_exit = describe_exit(&exit);
                    let last_lines = self.tail.last(CRASH_REPORT_LINES);
                    warn!(
                        "bitcoind exited unexpectedly ({last_exit}) after {ran_for:?}; its last \
                         lines:\n{}",
                        last_lines.join("\n")
                    );
                    self.status.update(|s| s.bitcoind.restarts += 1);
                    match self.policy.on_exit(Instant::now(), ran_for) {
                        RestartDecision::RestartAfter(delay) => {
                            self.set_state(BitcoindState::Restarting {
                                last_exit,
                                retry_in_secs: delay.as_secs(),
                            });
                            if let Wake::Stop(done) = self.wait_for_user(Some(delay)).await {
                                return self.finish(done);
                            }
                        }
                        RestartDecision::GiveUp { exits, window } => {
                            error!(
                                "bitcoind exited {exits} times within {window:?}: not restarting \
                                 it until the user retries"
                            );
                            self.set_state(BitcoindState::CrashLoop {
                                exits,
                                window_secs: window.as_secs(),
                                last_exit,
                                last_lines,
                            });
                            match self.wait_for_user(None).await {
                                Wake::Retry | Wake::Recheck => self.policy.reset(),
                                Wake::Stop(done) => return self.finish(done),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Checks the disk, writes `bitcoin.conf` and starts the child; on refusal returns the
    /// state that explains why.
    async fn prepare_and_spawn(&mut self) -> Result<BitcoindProcess, BitcoindState> {
        let settings = &self.settings;
        let datadir = settings.datadir();
        let failed = |message: String| BitcoindState::Failed { message };

        let run_as = match &settings.bitcoind.user {
            Some(name) => {
                let run_as = RunAs::lookup(name).map_err(failed)?;
                run_as.prepare_datadir(&datadir).map_err(failed)?;
                Some(run_as)
            }
            None => {
                fsutil::ensure_private_dir(&datadir, 0o700).map_err(|err| {
                    failed(format!(
                        "cannot create bitcoind's data directory {}: {err}. Check that the data \
                         disk is mounted and writable.",
                        datadir.display()
                    ))
                })?;
                None
            }
        };
        let (total_bytes, free_bytes) = disk::space(&datadir).map_err(|err| {
            failed(format!(
                "cannot read the size of the disk holding {}: {err}",
                datadir.display()
            ))
        })?;
        self.status.update(|s| {
            s.system.data_disk_total_bytes = Some(total_bytes);
            s.system.data_disk_free_bytes = Some(free_bytes);
        });
        let disk_space = DiskSpace {
            total_bytes,
            free_bytes,
            chain_dir_bytes: disk::dir_size(&datadir),
        };
        let ram = disk::total_memory().unwrap_or(2 * sizing::GIB);
        let resources: Resources = sizing::plan(
            settings.bitcoind.network,
            settings.bitcoind.prune_mib,
            settings.bitcoind.dbcache_mib,
            disk_space,
            ram,
        )
        .map_err(|refused| {
            error!(
                "not starting bitcoind: it needs {} bytes free in {} but only {} are free",
                refused.needed_bytes,
                datadir.display(),
                refused.free_bytes
            );
            BitcoindState::InsufficientDisk {
                needed_bytes: refused.needed_bytes,
                free_bytes: refused.free_bytes,
                path: datadir.display().to_string(),
            }
        })?;

        if !self.checked_last_stop {
            self.checked_last_stop = true;
            let log = datadir
                .join(settings.bitcoind.network.data_subdir())
                .join("debug.log");
            if last_run_ended_cleanly(&log) == Some(false) {
                warn!(
                    "bitcoind's last run ended without its clean shutdown ({} does not end with \
                     \"Shutdown: done\"): it will fetch and check its recent blocks again",
                    log.display()
                );
                self.status.update(|s| s.bitcoind.unclean_last_stop = true);
            }
        }

        let conf_text = conf::render(&ConfSettings {
            network: settings.bitcoind.network,
            rpc_port: settings.bitcoind.rpc_port(),
            p2p_port: settings.bitcoind.p2p_port(),
            resources,
            credentials: &settings.credentials,
        });
        let conf_path = settings.conf_path();
        fsutil::write_atomic(&conf_path, conf_text.as_bytes(), settings.conf_mode())
            .map_err(|err| failed(format!("cannot write {}: {err}", conf_path.display())))?;

        let args = conf::command_line(&datadir, &conf_path, &settings.bitcoind.extra_args);
        self.tail.clear();
        info!(
            "starting bitcoind ({}, prune={} MiB, dbcache={} MiB)",
            settings.bitcoind.binary.display(),
            resources.prune_mib,
            resources.dbcache_mib
        );
        let binary = settings.bitcoind.binary.clone();
        let process =
            BitcoindProcess::spawn(&self.spawner, &binary, &args, run_as.as_ref(), &self.tail)
                .await
                .map_err(|err| {
                    failed(format!(
                        "cannot start {}: {err}. Check bitcoind.binary in the config.",
                        binary.display()
                    ))
                })?;
        *self.child.lock().expect("child lock") = Some(process.pid().as_raw());
        self.set_state(BitcoindState::Starting {
            message: "starting bitcoind".into(),
        });
        Ok(process)
    }

    /// Watches a running child until it exits or a stop is requested.
    async fn supervise(&mut self, mut process: BitcoindProcess, rpc: &RpcClient) -> RunEnd {
        let started = Instant::now();
        let mut check: Option<HealthCheck> = None;
        let mut next_check = tokio::time::Instant::now();
        loop {
            tokio::select! {
                exit = process.wait() => {
                    let ran_for = started.elapsed();
                    return match exit {
                        Ok(status) => RunEnd::Exited(status, ran_for),
                        Err(err) => {
                            // Waiting on our own child cannot fail short of a kernel bug; treat
                            // it like an exit so the restart logic still applies.
                            error!("lost track of bitcoind: {err}");
                            process.kill();
                            RunEnd::Exited(std::process::ExitStatus::default(), ran_for)
                        }
                    };
                }
                command = self.commands.recv() => match command {
                    Some(Command::Retry) => {}
                    Some(Command::Stop(done)) => {
                        self.stop_gracefully(process, rpc).await;
                        return RunEnd::Stop(done);
                    }
                    None => {
                        // Every handle is gone: nobody can stop us later, so stop now.
                        self.stop_gracefully(process, rpc).await;
                        let (done, _) = oneshot::channel();
                        return RunEnd::Stop(done);
                    }
                },
                _ = tokio::time::sleep_until(next_check), if check.is_none() => {
                    let rpc = rpc.clone();
                    check = Some(Box::pin(async move { rpc.chain_info().await }));
                }
                result = async { check.as_mut().expect("guarded").await }, if check.is_some() => {
                    check = None;
                    let ready = self.on_health(result);
                    let interval = if ready { POLL_WHEN_READY } else { POLL_WHILE_STARTING };
                    next_check = tokio::time::Instant::now() + interval;
                }
            }
        }
    }

    /// Applies a health check result; returns whether bitcoind is ready.
    fn on_health(&mut self, result: Result<ChainInfo, RpcFailure>) -> bool {
        let current = self.status.snapshot().bitcoind.state;
        let was_up = matches!(current, BitcoindState::Ready | BitcoindState::Syncing);
        match result {
            Ok(info) => {
                let synced = !info.initial_block_download && info.blocks >= info.headers;
                let state = if synced {
                    BitcoindState::Ready
                } else {
                    BitcoindState::Syncing
                };
                if !was_up {
                    info!("bitcoind RPC is ready at height {}", info.blocks);
                }
                self.status.update(|s| {
                    s.bitcoind.state = state;
                    s.bitcoind.chain = Some(info);
                    s.bitcoind.last_checked = Some(unix_now());
                });
                synced
            }
            Err(RpcFailure::WarmingUp(message)) => {
                self.set_state(BitcoindState::Starting { message });
                false
            }
            Err(RpcFailure::Unauthorized) => {
                let port = self.settings.bitcoind.rpc_port();
                let message = format!(
                    "The bitcoind answering on 127.0.0.1:{port} rejected plugnode's RPC password. \
                     Another bitcoind may be running on this port: stop it or set \
                     bitcoind.rpc_port to a free port, then restart plugnode."
                );
                if !matches!(current, BitcoindState::Failed { .. }) {
                    error!("{message}");
                }
                self.set_state(BitcoindState::Failed { message });
                false
            }
            Err(failure @ (RpcFailure::Timeout(_) | RpcFailure::Unreachable(_))) if was_up => {
                // Busy (flushing, validating a big block) or briefly away: not a failure.
                // If the process really died, its exit is noticed on its own.
                info!("bitcoind is slow to answer: {failure}");
                false
            }
            Err(RpcFailure::Unreachable(_)) => {
                self.set_state(BitcoindState::Starting {
                    message: "waiting for bitcoind's RPC port".into(),
                });
                false
            }
            Err(failure) => {
                warn!("bitcoind health check failed: {failure}");
                false
            }
        }
    }

    /// The graceful stop: `stop` RPC, SIGTERM, wait, and SIGKILL only as a last resort.
    async fn stop_gracefully(&mut self, mut process: BitcoindProcess, rpc: &RpcClient) {
        self.set_state(BitcoindState::Stopping);
        let timeout = Duration::from_secs(self.settings.bitcoind.stop_timeout_secs);
        info!("stopping bitcoind (waiting up to {timeout:?} for it to flush and exit)");
        let started = Instant::now();

        let stop_call = tokio::time::timeout(STOP_RPC_GRACE, rpc.stop());
        let exited_early = tokio::select! {
            result = stop_call => {
                match result {
                    Ok(Ok(())) => info!("bitcoind accepted the stop request"),
                    Ok(Err(err)) => {
                        info!("stop RPC failed ({err}); sending SIGTERM");
                        process.terminate();
                    }
                    Err(_) => {
                        info!("stop RPC got no answer in {STOP_RPC_GRACE:?}; sending SIGTERM");
                        process.terminate();
                    }
                }
                None
            }
            exit = process.wait() => Some(exit),
        };
        let exit = match exited_early {
            Some(exit) => exit,
            None => {
                let remaining = timeout.saturating_sub(started.elapsed());
                match tokio::time::timeout(remaining, process.wait()).await {
                    Ok(exit) => exit,
                    Err(_) => {
                        error!(
                            "bitcoind did not stop within {timeout:?}: KILLING it with SIGKILL. It \
                             will re-check its database at the next start, which can take long. \
                             Raise bitcoind.stop_timeout_secs if this box is slow."
                        );
                        process.kill();
                        process.wait().await
                    }
                }
            }
        };
        match exit {
            Ok(status) => info!(
                "bitcoind stopped ({}) after {:.1?}",
                describe_exit(&status),
                started.elapsed()
            ),
            Err(err) => error!("lost track of bitcoind while stopping it: {err}"),
        }
    }

    /// Waits for Retry or Stop; with `recheck`, also wakes after that long.
    async fn wait_for_user(&mut self, recheck: Option<Duration>) -> Wake {
        let sleep = async {
            match recheck {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = self.commands.recv() => match command {
                Some(Command::Retry) => Wake::Retry,
                Some(Command::Stop(done)) => Wake::Stop(done),
                None => Wake::Stop(oneshot::channel().0),
            },
            _ = sleep => Wake::Recheck,
        }
    }

    async fn wait_for_stop(&mut self) -> oneshot::Sender<()> {
        loop {
            match self.commands.recv().await {
                Some(Command::Stop(done)) => return done,
                Some(Command::Retry) => continue,
                None => return oneshot::channel().0,
            }
        }
    }

    fn finish(&self, done: oneshot::Sender<()>) {
        self.set_state(BitcoindState::Stopped);
        let _ = done.send(());
    }

    fn set_state(&self, state: BitcoindState) {
        self.status.update(|s| s.bitcoind.state = state);
    }
}

/// Whether bitcoind's previous run, as its debug.log tells, ended with its clean shutdown:
/// "Shutdown: done" is the last line it writes. None: no log yet (a first start).
fn last_run_ended_cleanly(debug_log: &std::path::Path) -> Option<bool> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL_BYTES: u64 = 16 * 1024;
    let mut file = std::fs::File::open(debug_log).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    let last = tail.lines().rev().find(|line| !line.trim().is_empty())?;
    Some(last.contains("Shutdown: done") || last.contains("Shutdown done"))
}

/// Waits until process `pid` has exited (gone, or a zombie nobody reaped yet).
async fn wait_until_gone(pid: i32) {
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses, which may hold spaces.
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        if state.is_none_or(|rest| rest.starts_with('Z') || rest.starts_with('X')) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the supervisor task gone (its command receiver dropped), `stop` still returns
    /// only once bitcoind's process has exited.
    #[tokio::test]
    async fn stop_waits_for_the_process_when_the_supervisor_is_gone() {
        let mut process = std::process::Command::new("sleep")
            .arg("1")
            .spawn()
            .expect("sleep runs");
        let (commands, receiver) = mpsc::unbounded_channel();
        drop(receiver);
        let handle = BitcoindHandle {
            commands,
            child: Arc::new(Mutex::new(Some(process.id() as i32))),
        };
        handle.stop().await;
        // Exited (a zombie until reaped here), not merely signalled.
        assert!(process.try_wait().expect("wait").is_some());
    }

    #[test]
    fn a_debug_log_that_ends_in_shutdown_done_was_a_clean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        assert_eq!(last_run_ended_cleanly(&log), None);
        std::fs::write(
            &log,
            "2026-12-07T10:00:00Z Shutdown: In progress...\n2026-12-07T10:00:01Z Shutdown done\n\n",
        )
        .unwrap();
        assert_eq!(last_run_ended_cleanly(&log), Some(true));
        std::fs::write(&log, "2026-12-07T10:00:00Z UpdateTip: new best=...\n").unwrap();
        assert_eq!(last_run_ended_cleanly(&log), Some(false));
    }
}
