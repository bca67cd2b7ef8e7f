//! [`SimNode`]: a regtest-sim process for one test.
//!
//! The executable is either testkit's own `regtest-sim` binary
//! (`env!("CARGO_BIN_EXE_regtest-sim")` in testkit's tests) or any program that runs
//! [`crate::sim::main_with_args`] (plugnode's tests pass a `regtest-sim` symlink to their
//! plugnode binary). The process is killed when the `SimNode` is dropped.

use super::auth::rpcauth_line;
use crate::rpc::{Auth, RpcCallError, RpcClient};
use crate::util::{free_port, wait_until};
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a regtest-sim process could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SimNodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("regtest-sim exited with {status} before its RPC was ready; stderr: {stderr}")]
    Exited { status: ExitStatus, stderr: String },
    #[error("regtest-sim's RPC was not ready after {0:?}")]
    NotReady(Duration),
    #[error("regtest-sim did not exit within {0:?}")]
    StillRunning(Duration),
    #[error("regtest-sim is not running")]
    NotRunning,
    #[error(transparent)]
    Rpc(#[from] RpcCallError),
}

/// Options for starting a regtest-sim process.
#[derive(Clone, Debug)]
pub struct SimNodeBuilder {
    exe: PathBuf,
    datadir: PathBuf,
    rpc_port: Option<u16>,
    p2p_port: Option<u16>,
    regtest_flag: bool,
    port_flags: bool,
    warmup: Duration,
    credentials: Option<(String, String)>,
    /// Whether `credentials` are passed as `-rpcauth` (else the config file has them).
    pass_rpcauth: bool,
    extra_args: Vec<String>,
    ready_timeout: Option<Duration>,
}

impl SimNodeBuilder {
    /// regtest-sim at `exe` with its data in `datadir` (created if missing).
    pub fn new(exe: impl AsRef<Path>, datadir: impl AsRef<Path>) -> SimNodeBuilder {
        SimNodeBuilder {
            exe: exe.as_ref().to_path_buf(),
            datadir: datadir.as_ref().to_path_buf(),
            rpc_port: None,
            p2p_port: None,
            regtest_flag: true,
            port_flags: true,
            warmup: Duration::ZERO,
            credentials: None,
            pass_rpcauth: false,
            extra_args: Vec::new(),
            ready_timeout: Some(Duration::from_secs(60)),
        }
    }

    /// The RPC port (default: a free one).
    pub fn rpc_port(mut self, port: u16) -> Self {
        self.rpc_port = Some(port);
        self
    }

    /// The P2P port passed as `-port` (default: a free one; the sim does not listen).
    pub fn p2p_port(mut self, port: u16) -> Self {
        self.p2p_port = Some(port);
        self
    }

    /// Do not pass `-regtest` (when `bitcoin.conf` selects the chain: Core refuses both).
    pub fn no_regtest_flag(mut self) -> Self {
        self.regtest_flag = false;
        self
    }

    /// Do not pass `-rpcport`/`-port` (when `bitcoin.conf` sets them); set
    /// [`SimNodeBuilder::rpc_port`] to the port the config uses.
    pub fn no_port_flags(mut self) -> Self {
        self.port_flags = false;
        self
    }

    /// `-simwarmup` (default 0: RPC is ready as soon as the chain is loaded).
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.warmup = warmup;
        self
    }

    /// Authenticate with these credentials (passed as `-rpcauth`) instead of the cookie.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_string(), password.to_string()));
        self.pass_rpcauth = true;
        self
    }

    /// Authenticate with these credentials, which the config file already grants (an
    /// `rpcauth=` line in the `bitcoin.conf` given with [`SimNodeBuilder::arg`]).
    pub fn client_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_string(), password.to_string()));
        self.pass_rpcauth = false;
        self
    }

    /// An extra command-line argument (`-txindex`, `-simblockinterval=1`, …).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Upstream mode: this sim keeps no chain and forwards RPC to `upstream` (passes
    /// [`SimNode::upstream_args`]), so both see one chain, like two bitcoind peers. Its own
    /// RPC port, credentials and data directory stay its own. [`SimNodeBuilder::spawn`]
    /// waits for `getblockchaininfo` through it, so the upstream must be up.
    pub fn upstream(mut self, upstream: &SimNode) -> Self {
        self.extra_args.extend(upstream.upstream_args());
        self
    }

    /// How long [`SimNodeBuilder::spawn`] waits for RPC (default 60 s); `None` returns
    /// right after starting the process.
    pub fn ready_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The command line this builder runs (without the program).
    pub fn command_line(&self) -> Vec<String> {
        let mut args = vec![format!("-datadir={}", self.datadir.display())];
        if self.regtest_flag {
            args.push("-regtest".into());
        }
        if self.port_flags {
            if let Some(port) = self.rpc_port {
                args.push(format!("-rpcport={port}"));
            }
            if let Some(port) = self.p2p_port {
                args.push(format!("-port={port}"));
            }
        }
        args.push("-printtoconsole".into());
        args.push(format!("-simwarmup={}", self.warmup.as_millis()));
        if let (Some((user, password)), true) = (&self.credentials, self.pass_rpcauth) {
            args.push(format!("-rpcauth={}", rpcauth_line(user, password)));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Starts the process and (unless `ready_timeout(None)`) waits until RPC answers.
    pub fn spawn(mut self) -> Result<SimNode, SimNodeError> {
        std::fs::create_dir_all(&self.datadir).map_err(|source| SimNodeError::DataDir {
            path: self.datadir.clone(),
            source,
        })?;
        if self.rpc_port.is_none() {
            self.rpc_port = Some(free_port());
        }
        if self.p2p_port.is_none() {
            self.p2p_port = Some(free_port());
        }
        let mut node = SimNode {
            builder: self,
            child: None,
            stdout: Arc::new(Mutex::new(Vec::new())),
            stderr: Arc::new(Mutex::new(String::new())),
        };
        node.launch()?;
        Ok(node)
    }
}

/// A running regtest-sim process.
pub struct SimNode {
    builder: SimNodeBuilder,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl SimNode {
    /// Starts regtest-sim with default options and waits until its RPC answers.
    pub fn start(
        exe: impl AsRef<Path>,
        datadir: impl AsRef<Path>,
    ) -> Result<SimNode, SimNodeError> {
        SimNodeBuilder::new(exe, datadir).spawn()
    }

    /// Options for starting regtest-sim.
    pub fn builder(exe: impl AsRef<Path>, datadir: impl AsRef<Path>) -> SimNodeBuilder {
        SimNodeBuilder::new(exe, datadir)
    }

    fn launch(&mut self) -> Result<(), SimNodeError> {
        let builder = &self.builder;
        let mut child = Command::new(&builder.exe)
            .args(builder.command_line())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SimNodeError::Spawn {
                exe: builder.exe.clone(),
                source,
            })?;
        let echo = std::env::var_os("REGTEST_SIM_ECHO").is_some();
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&self.stdout);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[regtest-sim] {line}");
                    }
                    let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if lines.len() >= 20_000 {
                        lines.drain(..10_000);
                    }
                    lines.push(line);
                }
            });
        }
        if let Some(mut err) = child.stderr.take() {
            let text = Arc::clone(&self.stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    text.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        self.child = Some(child);
        if let Some(timeout) = self.builder.ready_timeout {
            self.wait_ready(timeout)?;
        }
        Ok(())
    }

    /// Waits until RPC answers `getblockchaininfo` (past the -28 warm-up).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), SimNodeError> {
        let rpc = self.rpc().with_timeout(Duration::from_secs(10));
        let mut exited = None;
        let ready = wait_until(timeout, || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                exited = Some(status);
                return true;
            }
            rpc.call("getblockchaininfo", json!([])).is_ok()
        });
        if let Some(status) = exited {
            // Give the stderr reader a moment to collect the error.
            std::thread::sleep(Duration::from_millis(100));
            return Err(SimNodeError::Exited {
                status,
                stderr: self.stderr(),
            });
        }
        if ready {
            Ok(())
        } else {
            Err(SimNodeError::NotReady(timeout))
        }
    }

    /// An RPC client with this node's credentials (the cookie by default).
    pub fn rpc(&self) -> RpcClient {
        let auth = match &self.builder.credentials {
            Some((user, password)) => Auth::UserPass(user.clone(), password.clone()),
            None => Auth::CookieFile(self.cookie_path()),
        };
        RpcClient::new(&self.rpc_url(), auth)
    }

    /// The arguments that make another regtest-sim forward its RPC to this one
    /// (`-simupstream=127.0.0.1:<rpc port>` and `-simupstreamauth=<user>:<password>` when
    /// this node has credentials, else `-simupstreamcookie=<cookie path>`). Pass them to a
    /// sim started by someone else, e.g. as plugnode's extra bitcoind arguments.
    pub fn upstream_args(&self) -> Vec<String> {
        let auth = match &self.builder.credentials {
            Some((user, password)) => format!("-simupstreamauth={user}:{password}"),
            None => format!("-simupstreamcookie={}", self.cookie_path().display()),
        };
        vec![format!("-simupstream=127.0.0.1:{}", self.rpc_port()), auth]
    }

    /// `http://127.0.0.1:<rpc port>/`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.rpc_port())
    }

    pub fn rpc_port(&self) -> u16 {
        self.builder.rpc_port.expect("set by spawn")
    }

    pub fn p2p_port(&self) -> u16 {
        self.builder.p2p_port.expect("set by spawn")
    }

    /// The data directory given with `-datadir`.
    pub fn datadir(&self) -> &Path {
        &self.builder.datadir
    }

    /// `<datadir>/regtest/.cookie`.
    pub fn cookie_path(&self) -> PathBuf {
        self.builder.datadir.join("regtest").join(".cookie")
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `generatetoaddress n address`: the new block hashes.
    pub fn mine_blocks(&self, n: u32, address: &str) -> Result<Vec<String>, RpcCallError> {
        let hashes = self.rpc().call("generatetoaddress", json!([n, address]))?;
        Ok(hashes
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A regtest address nobody needs a key for: P2WSH of `OP_TRUE` (spend it with the
    /// witness `[51]`; the sim does not check scripts anyway).
    pub fn anyone_can_spend_address() -> String {
        bitcoin::Address::from_script(
            &super::settings::default_mining_script(),
            bitcoin::Network::Regtest,
        )
        .expect("P2WSH has an address")
        .to_string()
    }

    /// Lines the process printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What the process printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the process to exit.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<ExitStatus, SimNodeError> {
        let child = self.child.as_mut().ok_or(SimNodeError::NotRunning)?;
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        match status {
            Some(status) => {
                self.child = None;
                Ok(status)
            }
            None => Err(SimNodeError::StillRunning(timeout)),
        }
    }

    /// The `stop` RPC, then waits (up to 60 s) for the process to exit.
    pub fn stop(&mut self) -> Result<ExitStatus, SimNodeError> {
        self.rpc().call("stop", json!([]))?;
        self.wait_for_exit(Duration::from_secs(60))
    }

    /// Sends SIGTERM and waits (up to 60 s) for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus, SimNodeError> {
        let pid = self.pid().ok_or(SimNodeError::NotRunning)?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.wait_for_exit(Duration::from_secs(60))
    }

    /// SIGKILL, like a crash or a power cut (nothing is flushed, the cookie stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same options (after `stop`, `terminate` or
    /// `kill`) and waits until RPC answers.
    pub fn restart(&mut self) -> Result<(), SimNodeError> {
        self.kill();
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.launch()
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.kill();
    }
}
