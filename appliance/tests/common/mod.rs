//! Helpers for end-to-end tests: run the real `plugnode` binary with regtest-sim as its
//! bitcoind, in a temporary directory with free ports, and look at it from outside (web
//! API, /proc, RPC) as a user or an operator would.
#![allow(dead_code)] // each test file uses a different part

pub mod browser;
pub mod lightning;
pub mod lndhub;
pub mod lsp;
pub mod pairing;
pub mod relay;
pub mod stick;
pub mod tls;
pub mod update_helper;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const PLUGNODE: &str = env!("CARGO_BIN_EXE_plugnode");

/// Generous: CI machines are slow and shared.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub use plugnode_testkit::free_port;

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

/// The web password the test configs give their boxes (through the first-boot file).
pub const PASSWORD: &str = "correct horse battery";

/// One HTTP/1.0 request; returns the status code and the body.
pub fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    http_with_token(address, method, path, body, None)
}

/// One HTTP/1.0 request, with `Authorization: Bearer <token>` when given. It names the
/// box as a browser would (`Host: 127.0.0.1:<port>`).
pub fn http_with_token(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Option<(u16, String)> {
    let mut headers = vec![format!("Host: {address}")];
    if let Some(token) = token {
        headers.push(format!("Authorization: Bearer {token}"));
    }
    http_raw(address, method, path, &headers, body).map(|answer| (answer.code, answer.body))
}

/// An answer as [`http_raw`] reads it.
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    /// Header lines as sent, `Name: value`.
    pub head: Vec<String>,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.0 request with exactly these header lines (plus a JSON content type and
/// length); `None` when the box does not answer.
pub fn http_raw(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Option<Answer> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    exchange(stream, method, path, headers, body)
}

/// [`http_raw`] from another loopback address (127.0.0.2, …): another client, as far as
/// the box can tell.
pub fn http_from(
    source: std::net::Ipv4Addr,
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<Answer> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    let local = SockaddrIn::from(std::net::SocketAddrV4::new(source, 0));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &local).ok()?;
    let SocketAddr::V4(remote) = address else {
        return None;
    };
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(remote),
    )
    .ok()?;
    let stream = TcpStream::from(fd);
    exchange(stream, method, path, &[format!("Host: {address}")], body)
}

fn exchange(
    mut stream: TcpStream,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Option<Answer> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let body = body.unwrap_or("");
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    for header in headers {
        head += header;
        head += "\r\n";
    }
    write!(
        stream,
        "{head}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        code,
        head: lines.map(str::to_string).collect(),
        body: body.to_string(),
    })
}

/// A config file for a test appliance on regtest.
pub struct TestConfig {
    pub dir: PathBuf,
    pub binary: PathBuf,
    pub rpc_port: u16,
    /// `[web] listen`'s port, on [`TestConfig::web_ip`].
    pub web_port: u16,
    /// `[web] listen`'s address: loopback (the whole page over plain HTTP, as the tests
    /// speak it) unless a test wants the network's view (only the way to HTTPS).
    pub web_ip: std::net::IpAddr,
    /// `[web] https_listen`'s port, on 127.0.0.1: every test box serves HTTPS.
    pub https_port: u16,
    pub extra_args: Vec<String>,
    pub prune_mib: Option<u64>,
    pub stop_timeout_secs: u64,
    /// `[bitcoind] user`: the system user bitcoind runs as.
    pub bitcoind_user: Option<String>,
    /// Give the box its web password through the first-boot file (else it is unclaimed).
    pub first_boot_password: bool,
    /// `[display] panel`: "none" or "simulated".
    pub panel: &'static str,
    /// `[lightning] listen_port`, when the Lightning node runs.
    pub lightning_port: Option<u16>,
    /// `[backup]`: (mode, the device standing in for a stick); off when `None`.
    pub backup: Option<(&'static str, PathBuf)>,
    /// `[pairing]`: off when `None`.
    pub pairing: Option<TestPairing>,
    /// More TOML at the end of the file (e.g. a `[lightning.lsp]` table).
    pub extra_toml: String,
}

/// The pairing services of a test box, on loopback.
#[derive(Clone, Debug, Default)]
pub struct TestPairing {
    /// The embedded relay's port (off when `None`).
    pub relay_port: Option<u16>,
    /// LNDHub's port (off when `None`).
    pub lndhub_port: Option<u16>,
    /// Public relays (`ws://…` relays the test runs).
    pub relays: Vec<String>,
}

impl TestPairing {
    /// Both the embedded relay and LNDHub, on free ports.
    pub fn both() -> TestPairing {
        TestPairing {
            relay_port: Some(free_port()),
            lndhub_port: Some(free_port()),
            relays: Vec::new(),
        }
    }

    fn toml(&self) -> String {
        let mut text = String::from("enabled = true\n");
        match self.relay_port {
            Some(port) => text += &format!("relay = true\nrelay_listen = \"127.0.0.1:{port}\"\n"),
            None => text += "relay = false\n",
        }
        match self.lndhub_port {
            Some(port) => text += &format!("lndhub = true\nlndhub_listen = \"127.0.0.1:{port}\"\n"),
            None => text += "lndhub = false\n",
        }
        text += &format!("relays = {:?}\n", self.relays);
        text
    }
}

impl TestConfig {
    pub fn new(dir: &Path) -> TestConfig {
        TestConfig {
            dir: dir.to_path_buf(),
            binary: regtest_sim(dir),
            rpc_port: free_port(),
            web_port: free_port(),
            web_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            https_port: free_port(),
            extra_args: vec!["-simwarmup=300".into()],
            prune_mib: None,
            stop_timeout_secs: 60,
            bitcoind_user: None,
            first_boot_password: true,
            panel: "none",
            lightning_port: None,
            backup: None,
            pairing: None,
            extra_toml: String::new(),
        }
    }

    /// Where plugnode mounts the test's stick.
    pub fn mount_dir(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    /// A box with a Lightning node whose bitcoind is a proxy onto `chain`, so several
    /// boxes share one chain as real bitcoinds on one network would.
    pub fn lightning_box(dir: &Path, chain: &plugnode_testkit::sim::SimNode) -> TestConfig {
        let mut config = TestConfig::new(dir);
        config.extra_args.extend(chain.upstream_args());
        config.lightning_port = Some(free_port());
        config
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The first-boot password file; plugnode deletes it once it has taken the password.
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("initial-password")
    }

    pub fn write(&self) -> PathBuf {
        if self.first_boot_password && !self.data_dir().join("secrets/web-admin.toml").exists() {
            std::fs::write(self.password_file(), PASSWORD).unwrap();
        }
        let prune = self
            .prune_mib
            .map(|mib| format!("prune_mib = {mib}\n"))
            .unwrap_or_default();
        let text = format!(
            "[data]\ndir = {data:?}\n\n[bitcoind]\nbinary = {binary:?}\nnetwork = \"regtest\"\n\
             rpc_port = {rpc}\np2p_port = {p2p}\nextra_args = {args:?}\nstop_timeout_secs = {stop}\n{prune}{user}\n\
             [lightning]\n{lightning}\n[web]\nlisten = \"{web}\"\nhttps_listen = \"127.0.0.1:{https}\"\n\
             initial_password_file = {password:?}\n\n\
             [display]\npanel = {panel:?}\n\n[backup]\n{backup}\n[pairing]\n{pairing}\n{extra}",
            data = self.data_dir(),
            binary = self.binary,
            rpc = self.rpc_port,
            p2p = free_port(),
            args = self.extra_args,
            stop = self.stop_timeout_secs,
            user = self
                .bitcoind_user
                .as_ref()
                .map(|user| format!("user = {user:?}\n"))
                .unwrap_or_default(),
            web = SocketAddr::new(self.web_ip, self.web_port),
            https = self.https_port,
            password = self.password_file(),
            panel = self.panel,
            backup = match &self.backup {
                Some((mode, device)) => format!(
                    "enabled = true\nmode = {mode:?}\nmount_dir = {:?}\nextra_devices = [{device:?}]\n",
                    self.mount_dir()
                ),
                None => "enabled = false\n".into(),
            },
            extra = self.extra_toml,
            pairing = match &self.pairing {
                Some(pairing) => pairing.toml(),
                None => "enabled = false\n".into(),
            },
            lightning = match self.lightning_port {
                Some(port) => format!("enabled = true\nlisten_port = {port}\n"),
                None => "enabled = false\n".into(),
            },
        );
        let path = self.dir.join("plugnode.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `plugnode demo` in a directory of its own; stopped (SIGTERM) when dropped.
pub struct Demo {
    pub child: Child,
    pub web: SocketAddr,
    pub dir: PathBuf,
}

impl Demo {
    pub fn start(dir: &Path) -> Demo {
        let port = free_port();
        let log = std::fs::File::create(dir.join("demo.log")).unwrap();
        let child = Command::new(PLUGNODE)
            .args(["demo", "--block-interval", "0", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--dir")
            .arg(dir.join("demo"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Demo {
            child,
            web: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.join("demo"),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `plugnode run`.
pub struct Plugnode {
    pub child: Child,
    /// The plain-HTTP listener, reached on 127.0.0.1.
    pub web: SocketAddr,
    /// The HTTPS listener (127.0.0.1).
    pub https: SocketAddr,
    pub rpc_port: u16,
    pub data_dir: PathBuf,
    log: PathBuf,
    password: std::sync::Mutex<String>,
    token: std::sync::Mutex<Option<String>>,
}

impl Plugnode {
    pub fn start(config: &TestConfig) -> Plugnode {
        Self::start_with(config, Command::new(PLUGNODE))
    }

    /// `plugnode run` started by `command`: plugnode itself, or a wrapper (such as
    /// setpriv) whose last argument is plugnode's path.
    pub fn start_with(config: &TestConfig, mut command: Command) -> Plugnode {
        let config_path = config.write();
        let log = config.dir.join(format!("plugnode-{}.log", free_port()));
        let child = command
            .args(["run", "--config"])
            .arg(&config_path)
            .env(
                "RUST_LOG",
                std::env::var("PLUGNODE_TEST_LOG").unwrap_or("info,bitcoind=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Plugnode {
            child,
            web: SocketAddr::from(([127, 0, 0, 1], config.web_port)),
            https: SocketAddr::from(([127, 0, 0, 1], config.https_port)),
            rpc_port: config.rpc_port,
            data_dir: config.data_dir(),
            log,
            password: std::sync::Mutex::new(PASSWORD.to_string()),
            token: std::sync::Mutex::new(None),
        }
    }

    /// The web password the API helpers log in with (when a test set another one).
    pub fn set_password(&self, password: &str) {
        *self.password.lock().unwrap() = password.to_string();
        *self.token.lock().unwrap() = None;
    }

    /// A session token (logs in on first use).
    pub fn token(&self) -> Option<String> {
        let mut token = self.token.lock().unwrap();
        if token.is_none() {
            let password = self.password.lock().unwrap().clone();
            let body = serde_json::json!({ "password": password }).to_string();
            let (code, body) = http(self.web, "POST", "/api/login", Some(&body))?;
            if code != 200 {
                return None;
            }
            let answer: Value = serde_json::from_str(&body).ok()?;
            *token = Some(answer["token"].as_str()?.to_string());
        }
        token.clone()
    }

    /// An API call as the logged-in admin.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        let token = self.token()?;
        http_with_token(self.web, method, path, body, Some(&token))
    }

    /// Types the password again: the session may do dangerous things for 5 minutes.
    pub fn reauth(&self) {
        let password = self.password.lock().unwrap().clone();
        let body = serde_json::json!({ "password": password }).to_string();
        let (code, answer) = self
            .api("POST", "/api/reauth", Some(&body))
            .expect("the box answers");
        assert_eq!(code, 200, "{answer}");
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `GET /api/status`, once the web page answers.
    pub fn status(&self) -> Option<Value> {
        let (code, body) = self.api("GET", "/api/status", None)?;
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
                    last.map(|s| serde_json::json!({
                        "phase": s["phase"],
                        "bitcoind": s["bitcoind"]["state"],
                        "lightning": s["lightning"]["state"],
                        "backup": s["backup"],
                        "alerts": s["alerts"],
                    })
                    .to_string())
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
