//! The bitcoind child process: spawning it in its own process group with a parent-death
//! signal, keeping the last lines it printed, and signalling it.

use super::run_as::RunAs;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// How many of bitcoind's last output lines are kept for the crash report.
const TAIL_LINES: usize = 40;

/// The last lines bitcoind printed (stdout and stderr interleaved), shared with the
/// readers that fill it.
#[derive(Clone, Default)]
pub struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl OutputTail {
    fn push(&self, line: String) {
        let mut lines = self.lines.lock().expect("tail lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The newest `count` lines, oldest first.
    pub fn last(&self, count: usize) -> Vec<String> {
        let lines = self.lines.lock().expect("tail lock");
        lines
            .iter()
            .skip(lines.len().saturating_sub(count))
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lines.lock().expect("tail lock").clear();
    }
}

/// A running bitcoind.
pub struct BitcoindProcess {
    child: Child,
    pid: Pid,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Set when the exit is first seen: how long its output may still take to be read.
    output_deadline: Option<tokio::time::Instant>,
}

/// Starts children from one thread that lives as long as the supervisor.
///
/// The parent-death signal fires when the *thread* that forked the child exits, not the
/// process. Tokio's threads come and go: blocking-pool threads end after 10 s idle, and a
/// worker thread that enters `block_in_place` (ldk-node does) becomes one of them. A child
/// forked from such a thread got SIGTERM seconds later. Forking from this thread ties the
/// signal to the supervisor's life, as intended.
pub struct Spawner {
    requests: Option<std::sync::mpsc::Sender<SpawnRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct SpawnRequest {
    binary: PathBuf,
    args: Vec<String>,
    run_as: Option<RunAs>,
    reply: tokio::sync::oneshot::Sender<io::Result<Child>>,
}

impl Spawner {
    /// Starts the spawner thread; children are registered with `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> io::Result<Spawner> {
        let (requests, incoming) = std::sync::mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("bitcoind-spawner".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                for request in incoming {
                    let child =
                        command(&request.binary, &request.args, request.run_as.as_ref()).spawn();
                    let _ = request.reply.send(child);
                }
            })?;
        Ok(Spawner {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    async fn spawn(
        &self,
        binary: &Path,
        args: &[String],
        run_as: Option<&RunAs>,
    ) -> io::Result<Child> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = SpawnRequest {
            binary: binary.to_path_buf(),
            args: args.to_vec(),
            run_as: run_as.cloned(),
            reply,
        };
        let gone = || io::Error::other("the process spawner thread has stopped");
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(request)
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `binary args…` in its own process group (so a Ctrl-C in plugnode's terminal reaches
/// only plugnode, which then stops bitcoind in order) and with a parent-death signal (if
/// plugnode is killed outright, the kernel sends bitcoind SIGTERM and it shuts down
/// cleanly). With `run_as`, as that user (see [`RunAs`]).
fn command(binary: &Path, args: &[String], run_as: Option<&RunAs>) -> Command {
    let parent = nix::unistd::getpid();
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // systemd's notify socket and watchdog are plugnode's, not bitcoind's.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .kill_on_drop(false);
    let run_as = run_as.cloned();
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid, prctl, getppid,
    // kill) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // First: a change of user clears the parent-death signal.
            if let Some(run_as) = &run_as {
                run_as.become_user()?;
            }
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl: then nobody will ever send
            // the signal, so act on it now.
            if nix::unistd::getppid() != parent {
                let _ = signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
            }
            Ok(())
        });
    }
    command
}

impl BitcoindProcess {
    /// Starts `binary args…` through `spawner` and collects its output into `tail`.
    pub async fn spawn(
        spawner: &Spawner,
        binary: &Path,
        args: &[String],
        run_as: Option<&RunAs>,
        tail: &OutputTail,
    ) -> io::Result<Self> {
        let mut child = spawner.spawn(binary, args, run_as).await?;
        let pid = Pid::from_raw(child.id().expect("a just-spawned child has a pid") as i32);
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect_lines(stdout, tail.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect_lines(stderr, tail.clone())));
        }
        Ok(BitcoindProcess {
            child,
            pid,
            readers,
            output_deadline: None,
        })
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits until the process exits, then until its output is read to the end (so the
    /// tail holds its last words). Cancel-safe: the supervisor waits in a `select!` beside
    /// its timers, and a wait cut short goes on where it stopped.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        // The pipes close when the process exits; a grandchild holding them open must not
        // keep us waiting for more than this, however often the wait is cut short.
        let deadline = *self
            .output_deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_secs(2));
        while let Some(reader) = self.readers.last_mut() {
            let _ = tokio::time::timeout_at(deadline, reader).await;
            self.readers.pop();
        }
        Ok(status)
    }

    /// Asks bitcoind to shut down (it treats SIGTERM like the `stop` RPC).
    pub fn terminate(&self) {
        let _ = signal::kill(self.pid, Signal::SIGTERM);
    }

    /// Last resort: kills bitcoind and anything it started.
    pub fn kill(&self) {
        let _ = signal::killpg(self.pid, Signal::SIGKILL);
    }
}

async fn collect_lines(stream: impl AsyncRead + Unpin, tail: OutputTail) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "bitcoind", "{line}");
        tail.push(line);
    }
}

/// "exit code 1", "killed by SIGKILL": how an exit reads in an alert.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {}", signal.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        }
    } else {
        status.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawner() -> Spawner {
        Spawner::new(tokio::runtime::Handle::current()).unwrap()
    }

    #[tokio::test]
    async fn keeps_the_last_lines_of_both_streams() {
        let tail = OutputTail::default();
        let script =
            "for i in $(seq 1 50); do echo out $i; done; echo 'Error: disk on fire' >&2; exit 3";
        let spawner = spawner();
        let mut process = BitcoindProcess::spawn(
            &spawner,
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            None,
            &tail,
        )
        .await
        .unwrap();
        let status = process.wait().await.unwrap();
        assert_eq!(describe_exit(&status), "exit code 3");
        let last = tail.last(100);
        assert_eq!(last.len(), TAIL_LINES);
        assert!(last.contains(&"Error: disk on fire".to_string()));
        assert!(last.contains(&"out 50".to_string()));
        assert!(!last.contains(&"out 1".to_string()));
    }

    #[tokio::test]
    async fn a_wait_cut_short_by_select_still_keeps_the_last_words() {
        // The supervisor's loop waits for the exit in a `select!` beside its timers: a
        // timer that fires while the output is still being read must not lose it.
        let tail = OutputTail::default();
        let spawner = spawner();
        let mut process = BitcoindProcess::spawn(
            &spawner,
            Path::new("/bin/sh"),
            // The last words come a moment after the exit (from a helper still holding the
            // pipe), so the output is surely still being read when the exit is seen.
            &[
                "-c".into(),
                "(sleep 0.3; echo 'Error: disk on fire' >&2) & exit 1".into(),
            ],
            None,
            &tail,
        )
        .await
        .unwrap();
        let status = loop {
            tokio::select! {
                biased;
                exit = process.wait() => break exit.unwrap(),
                _ = tokio::task::yield_now() => {}
            }
        };
        assert_eq!(describe_exit(&status), "exit code 1");
        assert_eq!(tail.last(10), vec!["Error: disk on fire".to_string()]);
    }

    #[tokio::test]
    async fn runs_in_its_own_process_group() {
        let tail = OutputTail::default();
        let spawner = spawner();
        let mut process = BitcoindProcess::spawn(
            &spawner,
            Path::new("/bin/sh"),
            &["-c".into(), "sleep 30".into()],
            None,
            &tail,
        )
        .await
        .unwrap();
        let pgid = nix::unistd::getpgid(Some(process.pid())).unwrap();
        assert_eq!(pgid, process.pid());
        process.terminate();
        let status = process.wait().await.unwrap();
        assert_eq!(describe_exit(&status), "killed by SIGTERM");
    }

    /// A child started from a short-lived blocking thread must outlive that thread (the
    /// parent-death signal is tied to the spawner thread, not the caller's).
    #[test]
    fn the_child_outlives_the_thread_that_asked_for_it() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_keep_alive(Duration::from_millis(50))
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let spawner = std::sync::Arc::new(spawner());
            let tail = OutputTail::default();
            let mut process = tokio::task::spawn_blocking({
                let handle = tokio::runtime::Handle::current();
                let spawner = std::sync::Arc::clone(&spawner);
                move || {
                    handle.block_on(BitcoindProcess::spawn(
                        &spawner,
                        Path::new("/bin/sh"),
                        &["-c".into(), "sleep 30".into()],
                        None,
                        &tail,
                    ))
                }
            })
            .await
            .unwrap()
            .unwrap();
            // The blocking thread that asked has long gone idle and exited.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let still_running =
                tokio::time::timeout(Duration::from_millis(10), process.wait()).await;
            assert!(still_running.is_err(), "the child must still be running");
            process.kill();
            let _ = process.wait().await;
        });
    }
}
