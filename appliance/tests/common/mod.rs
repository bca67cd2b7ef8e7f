//! Helpers for end-to-end tests: run the real `plugnode` binary with regtest-sim as its
//! bitcoind, in a temporary directory with free ports, and look at it from outside (web
//! API, /proc, RPC) as a user or an operator would.
#![allow(dead_code)] // each test file uses a different part

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PLUGNODE: &str = env!("CARGO_BIN_EXE_plugnode");

/// Generous: CI machines are slow and shared.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `regtest-sim` executable: plugnode itself through a symlink of that name.
pub fn regtest_sim(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sim = bin.join("regtest-sim");
    if !sim.exists() {
        std::os::unix::fs::symlink(PLUGNODE, &sim).unwrap();
    }
    sim
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One HTTP/1.0 request; returns the status code and the body.
pub fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A config file for a test appliance on regtest.
pub struct TestConfig {
    pub dir: PathBuf,
    pub binary: PathBuf,
    pub rpc_port: u16,
    pub web_port: u16,
    pub extra_args: Vec<String>,
    pub prune_mib: Option<u64>,
    pub stop_timeout_secs: u64,
}

impl TestConfig {
    pub fn new(dir: &Path) -> TestConfig {
        TestConfig {
            dir: dir.to_path_buf(),
            binary: regtest_sim(dir),
            rpc_port: free_port(),
            web_port: free_port(),
            extra_args: vec!["-simwarmup=300".into()],
            prune_mib: None,
            stop_timeout_secs: 60,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn write(&self) -> PathBuf {
        let prune = self
            .prune_mib
            .map(|mib| format!("prune_mib = {mib}\n"))
            .unwrap_or_default();
        let text = format!(
            "[data]\ndir = {data:?}\n\n[bitcoind]\nbinary = {binary:?}\nnetwork = \"regtest\"\n\
             rpc_port = {rpc}\np2p_port = {p2p}\nextra_args = {args:?}\nstop_timeout_secs = {stop}\n{prune}\n\
             [lightning]\nenabled = false\n\n[web]\nlisten = \"127.0.0.1:{web}\"\n\n[display]\npanel = \"none\"\n",
            data = self.data_dir(),
            binary = self.binary,
            rpc = self.rpc_port,
            p2p = free_port(),
            args = self.extra_args,
            stop = self.stop_timeout_secs,
            web = self.web_port,
        );
        let path = self.dir.join("plugnode.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A running `plugnode run`.
pub struct Plugnode {
    pub child: Child,
    pub web: SocketAddr,
    pub rpc_port: u16,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Plugnode {
    pub fn start(config: &TestConfig) -> Plugnode {
        let config_path = config.write();
        let log = config.dir.join(format!("plugnode-{}.log", free_port()));
        let child = Command::new(PLUGNODE)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info,bitcoind=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Plugnode {
            child,
            web: SocketAddr::from(([127, 0, 0, 1], config.web_port)),
            rpc_port: config.rpc_port,
            data_dir: config.data_dir(),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `GET /api/status`, once the web page answers.
    pub fn status(&self) -> Option<Value> {
        let (code, body) = http(self.web, "GET", "/api/status", None)?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// Waits until the status satisfies `check`; panics with the last status otherwise.
    pub fn wait_status(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.wait_status_for(what, TIMEOUT, check)
    }

    pub fn wait_status_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(status) = self.status() {
                if check(&status) {
                    return status;
                }
                last = Some(status);
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last status: {}\nplugnode log:\n{}",
                    last.map(|s| serde_json::to_string_pretty(&s["bitcoind"]).unwrap())
                        .unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The running bitcoind child, from /proc.
    pub fn bitcoind_pid(&self) -> Option<i32> {
        children_of(self.pid()).into_iter().next()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_for("plugnode to exit", timeout, || {
            self.child.try_wait().unwrap()
        })
    }

    /// A JSON-RPC client for the sim, with the supervisor's own credentials.
    pub fn rpc(&self) -> bitcoincore_rpc::Client {
        let secrets: toml::Table = toml::from_str(
            &std::fs::read_to_string(self.data_dir.join("secrets/bitcoind-rpc.toml")).unwrap(),
        )
        .unwrap();
        let user = &secrets["supervisor"];
        bitcoincore_rpc::Client::new(
            &format!("http://127.0.0.1:{}", self.rpc_port),
            bitcoincore_rpc::Auth::UserPass(
                user["name"].as_str().unwrap().into(),
                user["password"].as_str().unwrap().into(),
            ),
        )
        .unwrap()
    }

    /// Mines `count` blocks to a throwaway address.
    pub fn mine(&self, count: u64) {
        use bitcoincore_rpc::RpcApi;
        let _: Value = self
            .rpc()
            .call(
                "generatetoaddress",
                &[
                    count.into(),
                    "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into(),
                ],
            )
            .unwrap();
    }
}

impl Drop for Plugnode {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let children = children_of(self.pid());
            let _ = self.child.kill();
            let _ = self.child.wait();
            for pid in children {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Child process ids of `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    children
}

/// Whether a process exists (and is not a zombie).
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

pub fn state(status: &Value) -> &str {
    status["bitcoind"]["state"]["state"].as_str().unwrap_or("")
}

pub fn height(status: &Value) -> Option<u64> {
    status["bitcoind"]["chain"]["blocks"].as_u64()
}
