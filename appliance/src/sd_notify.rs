//! systemd's readiness and watchdog protocol, without libsystemd.
//!
//! The image runs plugnode as a `Type=notify` service with `WatchdogSec=` (see
//! `systemd/plugnode.service`). systemd passes the address of a datagram socket in
//! `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) and, with a watchdog,
//! the interval in `WATCHDOG_USEC`. plugnode sends newline-separated `KEY=value`
//! datagrams there:
//!
//! - `READY=1` once the web page listens ([`Systemd::ready`]), so `systemctl start` and
//!   units ordered after plugnode wait for a box that answers;
//! - `STATUS=…`, a one-line summary `systemctl status plugnode` shows;
//! - `STOPPING=1` when the ordered stop begins;
//! - `WATCHDOG=1` every half interval from a task on the supervisor's runtime: when the
//!   runtime is wedged (every worker blocked, timers not firing), the pings stop and
//!   systemd restarts plugnode.
//!
//! Outside systemd (no `NOTIFY_SOCKET`, e.g. `plugnode demo` on a laptop) every call is a
//! no-op. Messages are best effort: a failed send is logged once and never stops plugnode.

use crate::status::{BitcoindState, Phase, Status, StatusHandle};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// A connection to systemd's notification socket.
#[derive(Clone, Debug)]
pub struct Notifier {
    inner: Arc<NotifierInner>,
}

#[derive(Debug)]
struct NotifierInner {
    socket: UnixDatagram,
    address: SocketAddr,
    /// Set after the first failed send, so a vanished socket is reported once.
    failed: AtomicBool,
}

impl Notifier {
    /// The notifier systemd asked for through the environment, if any.
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::connect(&socket.to_string_lossy()) {
            Ok(notifier) => Some(notifier),
            Err(err) => {
                warn!("NOTIFY_SOCKET is set but unusable ({err}); not reporting to systemd");
                None
            }
        }
    }

    /// A notifier sending to `address`: a socket path, or `@name` for a socket in the
    /// abstract namespace (how systemd passes it).
    pub fn connect(address: &str) -> std::io::Result<Notifier> {
        let address = socket_address(address)?;
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            inner: Arc::new(NotifierInner {
                socket,
                address,
                failed: AtomicBool::new(false),
            }),
        })
    }

    /// Sends one message (`KEY=value` lines). Errors are logged, not returned: systemd
    /// going away must not stop the node.
    pub fn notify(&self, message: &str) {
        match self
            .inner
            .socket
            .send_to_addr(message.as_bytes(), &self.inner.address)
        {
            Ok(_) => debug!(message, "sd_notify"),
            Err(err) => {
                if !self.inner.failed.swap(true, Ordering::Relaxed) {
                    warn!("cannot notify systemd: {err}");
                }
            }
        }
    }
}

fn socket_address(address: &str) -> std::io::Result<SocketAddr> {
    if let Some(name) = address.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if address.starts_with('/') {
        SocketAddr::from_pathname(address)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{address}` is neither an absolute path nor an @abstract name"),
        ))
    }
}

/// The watchdog interval systemd expects pings within, from the `WATCHDOG_USEC` and
/// `WATCHDOG_PID` values: `None` without a watchdog, or when the watchdog is meant for
/// another process (`WATCHDOG_PID` names a different PID).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// One line for `STATUS=`: the phase and what bitcoind is doing, no secrets.
pub fn status_line(status: &Status) -> String {
    let phase = match status.phase {
        Phase::Booting => "starting",
        Phase::Running => "running",
        Phase::Diagnostic => "cannot start (diagnostic mode, see the web page)",
        Phase::ShuttingDown => "shutting down",
        Phase::Stopped => "stopped",
    };
    let bitcoind = match &status.bitcoind.state {
        BitcoindState::NotStarted => "not started".to_string(),
        BitcoindState::Starting { .. } => "starting".to_string(),
        BitcoindState::Syncing => match &status.bitcoind.chain {
            Some(chain) => format!(
                "syncing {}% (block {})",
                chain.progress_percent(),
                chain.blocks
            ),
            None => "syncing".to_string(),
        },
        BitcoindState::Ready => match &status.bitcoind.chain {
            Some(chain) => format!("synced (block {})", chain.blocks),
            None => "synced".to_string(),
        },
        BitcoindState::Restarting { retry_in_secs, .. } => {
            format!("restarting in {retry_in_secs} s")
        }
        BitcoindState::CrashLoop { .. } => "keeps crashing, see the web page".to_string(),
        BitcoindState::InsufficientDisk { .. } => "not started: disk too small".to_string(),
        BitcoindState::Failed { .. } => "failed, see the web page".to_string(),
        BitcoindState::Stopping => "stopping".to_string(),
        BitcoindState::Stopped => "stopped".to_string(),
    };
    // STATUS is one line; keep it short for `systemctl status`.
    format!("plugnode {phase}; bitcoind {bitcoind}")
        .replace('\n', " ")
        .chars()
        .take(200)
        .collect()
}

/// plugnode's link to systemd while it runs: readiness, status line and watchdog.
/// Without `NOTIFY_SOCKET` it does nothing.
pub struct Systemd {
    notifier: Option<Notifier>,
    tasks: Vec<JoinHandle<()>>,
}

impl Systemd {
    /// Tells systemd plugnode is ready (call once the web page listens), then keeps the
    /// status line current and, when systemd asked for one, pings the watchdog. Must be
    /// called inside the tokio runtime.
    pub fn ready(status: StatusHandle) -> Systemd {
        let notifier = Notifier::from_env();
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Systemd::ready_with(notifier, watchdog, status)
    }

    /// [`Systemd::ready`] with the notifier and watchdog interval given (for tests).
    pub fn ready_with(
        notifier: Option<Notifier>,
        watchdog: Option<Duration>,
        status: StatusHandle,
    ) -> Systemd {
        let Some(notifier) = notifier else {
            return Systemd {
                notifier: None,
                tasks: Vec::new(),
            };
        };
        let mut receiver = status.subscribe();
        let line = status_line(&receiver.borrow_and_update());
        notifier.notify(&format!("READY=1\nSTATUS={line}"));
        let mut tasks = vec![tokio::spawn({
            let notifier = notifier.clone();
            async move {
                let mut last = line;
                while receiver.changed().await.is_ok() {
                    let line = status_line(&receiver.borrow_and_update());
                    if line != last {
                        notifier.notify(&format!("STATUS={line}"));
                        last = line;
                    }
                }
            }
        })];
        if let Some(interval) = watchdog {
            tasks.push(spawn_watchdog(notifier.clone(), interval));
        }
        Systemd {
            notifier: Some(notifier),
            tasks,
        }
    }

    /// Tells systemd the ordered stop has begun. The watchdog keeps pinging while
    /// bitcoind flushes (the stop can take minutes, `TimeoutStopSec` bounds it).
    pub fn stopping(&self) {
        if let Some(notifier) = &self.notifier {
            notifier.notify("STOPPING=1\nSTATUS=plugnode shutting down");
        }
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Pings `WATCHDOG=1` every half `interval` from a task on the current runtime. The task
/// only runs while the runtime's timers fire and a worker is free to poll it, so a wedged
/// runtime stops the pings and lets systemd restart plugnode.
pub fn spawn_watchdog(notifier: Notifier, interval: Duration) -> JoinHandle<()> {
    let period = (interval / 2).max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        // After a stall, ping once and go on at the normal pace; never burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // A round trip through the scheduler: proves the runtime still runs tasks
            // other than this one.
            if tokio::spawn(async {}).await.is_err() {
                continue;
            }
            notifier.notify("WATCHDOG=1");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ChainInfo;
    use std::time::Instant;

    /// A socket standing in for systemd's, bound in a fresh temp dir.
    struct FakeSystemd {
        _dir: tempfile::TempDir,
        socket: UnixDatagram,
        path: String,
    }

    impl FakeSystemd {
        fn bind() -> FakeSystemd {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notify");
            let socket = UnixDatagram::bind(&path).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            FakeSystemd {
                path: path.to_str().unwrap().to_string(),
                _dir: dir,
                socket,
            }
        }

        fn receive(&self) -> String {
            let mut buffer = [0u8; 4096];
            let len = self.socket.recv(&mut buffer).expect("a notification");
            String::from_utf8(buffer[..len].to_vec()).unwrap()
        }
    }

    #[test]
    fn sends_to_a_socket_path() {
        let systemd = FakeSystemd::bind();
        let notifier = Notifier::connect(&systemd.path).unwrap();
        notifier.notify("READY=1");
        assert_eq!(systemd.receive(), "READY=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "plugnode-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        );
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Notifier::connect(&format!("@{name}"))
            .unwrap()
            .notify("STATUS=hello");
        let mut buffer = [0u8; 64];
        let len = socket.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], b"STATUS=hello");
    }

    #[test]
    fn refuses_relative_addresses_and_survives_a_vanished_socket() {
        assert!(Notifier::connect("relative/notify").is_err());
        let systemd = FakeSystemd::bind();
        let notifier = Notifier::connect(&systemd.path).unwrap();
        drop(systemd);
        // systemd went away: sending is logged, never a panic or an error for the caller.
        notifier.notify("WATCHDOG=1");
        notifier.notify("WATCHDOG=1");
    }

    #[test]
    fn watchdog_interval_follows_systemds_variables() {
        let own = 4242;
        assert_eq!(
            watchdog_interval(Some("30000000"), None, own),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("4242"), own),
            Some(Duration::from_secs(30))
        );
        // Meant for another process (e.g. inherited by a child), or absent, or nonsense.
        assert_eq!(watchdog_interval(Some("30000000"), Some("1"), own), None);
        assert_eq!(watchdog_interval(None, None, own), None);
        assert_eq!(watchdog_interval(Some("0"), None, own), None);
        assert_eq!(watchdog_interval(Some("soon"), None, own), None);
    }

    #[test]
    fn status_line_says_phase_and_sync_progress() {
        let mut status = Status::default();
        assert_eq!(
            status_line(&status),
            "plugnode starting; bitcoind not started"
        );
        status.phase = Phase::Running;
        status.bitcoind.state = BitcoindState::Syncing;
        status.bitcoind.chain = Some(ChainInfo {
            blocks: 800_000,
            verification_progress: 0.456,
            ..ChainInfo::default()
        });
        assert_eq!(
            status_line(&status),
            "plugnode running; bitcoind syncing 45% (block 800000)"
        );
        status.bitcoind.state = BitcoindState::Failed {
            message: "line one\nline two".into(),
        };
        assert!(!status_line(&status).contains('\n'));
    }

    #[tokio::test]
    async fn ready_then_status_changes_then_stopping() {
        let systemd = FakeSystemd::bind();
        let status = StatusHandle::new();
        status.update(|s| s.phase = Phase::Running);
        let link = Systemd::ready_with(
            Some(Notifier::connect(&systemd.path).unwrap()),
            None,
            status.clone(),
        );
        let first = systemd.receive();
        assert!(
            first.starts_with("READY=1\nSTATUS=plugnode running"),
            "{first}"
        );

        status.update(|s| s.bitcoind.state = BitcoindState::Ready);
        let socket = systemd.socket.try_clone().unwrap();
        let update = tokio::task::spawn_blocking(move || {
            let mut buffer = [0u8; 4096];
            let len = socket.recv(&mut buffer).unwrap();
            String::from_utf8(buffer[..len].to_vec()).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(update, "STATUS=plugnode running; bitcoind synced");

        link.stopping();
        assert!(systemd.receive().starts_with("STOPPING=1\n"));
    }

    #[test]
    fn no_notify_socket_means_no_messages_and_no_tasks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let link =
                Systemd::ready_with(None, Some(Duration::from_millis(10)), StatusHandle::new());
            assert!(link.tasks.is_empty());
            link.stopping();
        });
    }

    #[test]
    fn watchdog_pings_at_half_the_interval_and_stops_while_the_runtime_is_wedged() {
        let systemd = FakeSystemd::bind();
        let notifier = Notifier::connect(&systemd.path).unwrap();
        // systemd's side: every ping with the time it arrived, from another thread.
        let socket = systemd.socket.try_clone().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let collector = std::thread::spawn({
            let done = done.clone();
            move || {
                let mut pings = Vec::new();
                let mut buffer = [0u8; 64];
                socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                while !done.load(Ordering::SeqCst) {
                    if let Ok(len) = socket.recv(&mut buffer) {
                        let message = String::from_utf8_lossy(&buffer[..len]).into_owned();
                        pings.push((Instant::now(), message));
                    }
                }
                pings
            }
        });
        // One worker thread: blocking it wedges the whole runtime, as a deadlock or a
        // blocking call on every worker would.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let interval = Duration::from_millis(200);
        let (started, wedged_at, unwedged_at) = runtime.block_on(async {
            let started = Instant::now();
            let _task = spawn_watchdog(notifier, interval);
            tokio::time::sleep(Duration::from_millis(650)).await;
            let wedged_at = Instant::now();
            std::thread::sleep(Duration::from_millis(1000));
            let unwedged_at = Instant::now();
            tokio::time::sleep(Duration::from_millis(350)).await;
            (started, wedged_at, unwedged_at)
        });
        drop(runtime);
        std::thread::sleep(Duration::from_millis(60));
        done.store(true, Ordering::SeqCst);
        let pings = collector.join().unwrap();
        assert!(pings.iter().all(|(_, m)| m == "WATCHDOG=1"), "{pings:?}");
        let count = |from: Instant, to: Instant| {
            pings
                .iter()
                .filter(|(at, _)| *at >= from && *at < to)
                .count()
        };
        // Healthy: one ping per half interval (100 ms), the first at once (about 7; fewer
        // on a loaded machine, where timers fire late).
        let healthy = count(started, wedged_at);
        assert!((3..=8).contains(&healthy), "pings while healthy: {healthy}");
        // Wedged for a second: not one ping, so systemd's watchdog would fire.
        let wedged = count(wedged_at + Duration::from_millis(20), unwedged_at);
        assert_eq!(wedged, 0, "pinged while the runtime was wedged");
        // Running again: pings resume at the normal pace, without a burst of missed ones.
        let resumed = count(unwedged_at, unwedged_at + Duration::from_millis(350));
        assert!(
            (1..=5).contains(&resumed),
            "pings after recovery: {resumed}"
        );
    }
}
