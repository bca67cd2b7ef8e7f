//! What the benches share: the machine and build header, logging, in-process Lightning
//! nodes (bare ldk-node and plugnode's `LightningHandle`) on the shared regtest-sim chain,
//! a box's channels to such peers, and percentiles. Included by `benches/lightning.rs` and
//! `benches/backup.rs` (each also includes `tests/common` as `common`).
#![allow(dead_code)] // each bench uses a different part

use crate::common;
use crate::common::lightning::{Chain, LnBox, LN_TIMEOUT};
use crate::common::wait_for;
use ldk_node::bitcoin::Network as BtcNetwork;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning_invoice::{Bolt11InvoiceDescription, Description};
use ldk_node::{Builder, Node};
use plugnode::bitcoind::RpcUser;
use plugnode::config::{GossipSetting, Network};
use plugnode::lightning::store::ChannelStore;
use plugnode::lightning::{LightningHandle, LightningSettings};
use plugnode::secret::Secret;
use plugnode::status::{BitcoindState, LightningState, StatusHandle};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Each payment: 1,000 sat, above the dust limit, so every HTLC is a real output.
pub const AMOUNT_MSAT: u64 = 1_000_000;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// The machine and the build

pub fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

pub fn print_machine(title: &str) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").or(l.strip_prefix("Model")))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "?".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    // target/<profile dir>/deps/<bench>-<hash>
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|| "?".into());
    let profile = match (profile_dir.as_str(), cfg!(debug_assertions)) {
        ("release", false) => {
            "optimised (`cargo bench`: release with thin LTO, see Cargo.toml)".to_string()
        }
        (dir, false) => format!("{dir} (optimised, debug assertions off)"),
        (dir, true) => format!("{dir} (DEBUG ASSERTIONS ON: not representative)"),
    };
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into());
    println!("{title}");
    println!("  machine:   {nproc} CPUs, {model}, {mem} RAM");
    println!(
        "  kernel:    {}",
        read_trimmed("/proc/sys/kernel/osrelease")
    );
    println!(
        "  load avg:  {} (at the start)",
        read_trimmed("/proc/loadavg")
    );
    println!("  build:     profile {profile}");
    println!("  binary:    {}", common::PLUGNODE);
    println!("  source:    {commit}, ldk-node 0.7.1, regtest-sim chain");
}

/// Every node's logs (ldk-node through the `log` facade, plugnode through `tracing`) go
/// to one file at `info`, like `plugnode run` sends them to the journal.
pub fn init_logging(dir: &Path) -> PathBuf {
    let path = dir.join("bench.log");
    let file = std::fs::File::create(&path).expect("the bench log");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .init();
    path
}

// ---------------------------------------------------------------------------------------
// Nodes in this process

/// The chain sim's cookie, as user and password for the in-process nodes.
pub struct RpcCookie {
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl RpcCookie {
    pub fn read(chain: &Chain) -> RpcCookie {
        let text = std::fs::read_to_string(chain.sim.cookie_path()).expect("the sim's cookie");
        let (user, password) = text.trim().split_once(':').expect("user:password");
        RpcCookie {
            port: chain.sim.rpc_port(),
            user: user.into(),
            password: password.into(),
        }
    }
}

/// Which key-value store a bare ldk-node is built on.
pub enum Store {
    /// `Builder::build`: ldk-node's own `SqliteStore`.
    Ldk,
    /// `Builder::build_with_store` over plugnode's `ChannelStore`, as plugnode builds it.
    Plugnode(ChannelStore),
}

impl Store {
    /// plugnode's store in `dir`; the clone counts its durable updates (`generation`).
    pub fn plugnode(dir: &Path) -> (Store, ChannelStore) {
        let store = ChannelStore::open(dir).expect("the channel store opens");
        (Store::Plugnode(store.clone()), store)
    }
}

/// ldk-node used directly: its own runtime, bitcoind RPC chain source, P2P gossip; logs
/// through the `log` facade like plugnode's node.
pub fn bare_node(dir: &Path, rpc: &RpcCookie, store: Store) -> Arc<Node> {
    let mut builder = Builder::new();
    builder.set_network(BtcNetwork::Regtest);
    builder.set_storage_dir_path(dir.display().to_string());
    builder.set_log_facade_logger();
    builder.set_chain_source_bitcoind_rpc(
        "127.0.0.1".into(),
        rpc.port,
        rpc.user.clone(),
        rpc.password.clone(),
    );
    builder.set_gossip_source_p2p();
    let address = SocketAddress::from_str(&format!("127.0.0.1:{}", common::free_port())).unwrap();
    builder.set_listening_addresses(vec![address]).unwrap();
    let node = match store {
        Store::Ldk => builder.build(),
        Store::Plugnode(store) => builder.build_with_store(Arc::new(store)),
    }
    .expect("ldk-node builds");
    node.start().expect("ldk-node starts");
    Arc::new(node)
}

pub fn bare_address(node: &Node) -> String {
    node.listening_addresses().unwrap()[0].to_string()
}

/// Acknowledges whatever events are queued (a sender between payments).
pub fn drain(node: &Node) {
    while node.next_event().is_some() {
        node.event_handled().expect("event acknowledged");
    }
}

/// Acknowledges nodes' events as they come, as any ldk-node application must, on a
/// runtime of its own.
pub struct Pumps {
    runtime: tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pumps {
    pub fn start() -> Pumps {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("pump")
            .build()
            .unwrap();
        Pumps {
            runtime,
            tasks: Vec::new(),
        }
    }

    pub fn pump(&mut self, node: &Arc<Node>) {
        let node = Arc::clone(node);
        self.tasks.push(self.runtime.spawn(async move {
            loop {
                let _event = node.next_event_async().await;
                if node.event_handled().is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    /// Keeps Nagle's algorithm off on this process's peer connections, as plugnode's node
    /// does (`lightning::nodelay`) and as LND's do (Go sets `TCP_NODELAY` by default), so
    /// the bench's peers add no delayed-ACK waits of their own to the box's figures.
    pub fn without_nagle(&mut self) {
        self.tasks.push(self.runtime.spawn(async {
            loop {
                plugnode::lightning::nodelay::set_on_every_tcp_socket();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// `count` bare ldk-node peers (`peer-0` …) for a box's channels, their events pumped.
pub fn bare_peers(dir: &Path, rpc: &RpcCookie, count: usize, pumps: &mut Pumps) -> Vec<Arc<Node>> {
    let peers: Vec<Arc<Node>> = (0..count)
        .map(|i| bare_node(&dir.join(format!("peer-{i}")), rpc, Store::Ldk))
        .collect();
    for peer in &peers {
        pumps.pump(peer);
    }
    peers
}

/// The figures named on the command line (`cargo bench … -- store snapshot`); none named
/// means all.
pub struct Wanted(Vec<String>);

impl Wanted {
    pub fn from_args() -> Wanted {
        // `cargo bench` passes `--bench`; anything else not starting with `-` picks figures.
        Wanted(
            std::env::args()
                .skip(1)
                .filter(|a| !a.starts_with('-'))
                .collect(),
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|w| w == name)
    }
}

/// The bench's last words: the load average (a busy machine skews every figure), and the
/// working directory kept when `PLUGNODE_BENCH_KEEP` is set.
pub fn finish(work: tempfile::TempDir) {
    println!(
        "\nload average at the end: {}",
        read_trimmed("/proc/loadavg")
    );
    if std::env::var_os("PLUGNODE_BENCH_KEEP").is_some() {
        println!("working directory kept: {}", work.keep().display());
    }
}

/// plugnode's Lightning service in this process, on its own runtime like a separate box.
pub struct PlugBox {
    pub runtime: tokio::runtime::Runtime,
    pub handle: LightningHandle,
    pub status: StatusHandle,
    pub port: u16,
}

impl PlugBox {
    pub fn start(dir: &Path, rpc: &RpcCookie) -> PlugBox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("plugbox")
            .build()
            .unwrap();
        let status = StatusHandle::new();
        // The bitcoind supervisor is not part of this figure: say bitcoind is ready.
        status.update(|s| s.bitcoind.state = BitcoindState::Ready);
        let port = common::free_port();
        let settings = LightningSettings {
            enabled: true,
            network: Network::Regtest,
            storage_dir: dir.join("lightning"),
            secrets_dir: dir.join("secrets"),
            listen_address: SocketAddr::from(([127, 0, 0, 1], port)),
            alias: None,
            gossip: GossipSetting::P2p,
            rpc_port: rpc.port,
            rpc_user: RpcUser {
                name: rpc.user.clone(),
                password: Secret::new(rpc.password.clone()),
            },
            lsp: None,
            lsp_fee_limit: Default::default(),
            lsp_service: None,
        };
        let store = ChannelStore::open(&settings.storage_dir).expect("the channel store opens");
        let handle = {
            let _context = runtime.enter();
            LightningHandle::spawn(settings, status.clone(), store)
        };
        handle.create_seed().expect("a new seed");
        let plug = PlugBox {
            runtime,
            handle,
            status,
            port,
        };
        wait_for(
            "plugnode's Lightning node to run",
            LN_TIMEOUT,
            || match plug.status.snapshot().lightning.state {
                LightningState::Running => Some(()),
                LightningState::Failed { message } => panic!("Lightning failed: {message}"),
                _ => None,
            },
        );
        plug
    }

    pub fn node_id(&self) -> String {
        self.handle.node_info().unwrap().node_id
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn new_address(&self) -> String {
        self.runtime
            .block_on(self.handle.new_onchain_address())
            .expect("an address")
    }

    /// The on-chain balance that can be spent, after a wallet sync.
    pub fn spendable_sat(&self) -> u64 {
        let _ = self.runtime.block_on(self.handle.sync_wallets());
        self.handle
            .balances()
            .map(|b| b.onchain_spendable_sat)
            .unwrap_or(0)
    }

    pub fn usable(&self) -> bool {
        self.handle
            .list_channels()
            .map(|c| c.iter().any(|c| c.usable))
            .unwrap_or(false)
    }

    pub fn stop(self) {
        self.runtime.block_on(self.handle.stop());
        self.runtime.shutdown_timeout(Duration::from_secs(10));
    }
}

pub fn description() -> Bolt11InvoiceDescription {
    Bolt11InvoiceDescription::Direct(Description::new("bench".into()).unwrap())
}

/// Opens a channel of `amount_sat` from the box to each peer, confirming each funding
/// transaction before the next, then waits until every channel is usable.
pub fn open_channels(ln: &LnBox, chain: &Chain, peers: &[Arc<Node>], amount_sat: u64) {
    let channels = peers.len();
    for peer in peers {
        let (code, answer) = ln.post(
            "/api/lightning/channels",
            json!({
                "node_id": peer.node_id().to_string(),
                "address": bare_address(peer),
                "amount_sat": amount_sat,
            }),
        );
        assert_eq!(code, 200, "opening a channel: {answer}");
        wait_for("the funding transaction", LN_TIMEOUT, || {
            (chain.mempool_size() > 0).then_some(())
        });
        // Confirm it, so the next channel is funded from confirmed coins.
        chain.mine(1);
        wait_for("the change to be spendable", LN_TIMEOUT, || {
            let _ = ln.node.api("POST", "/api/lightning/sync", Some("{}"));
            (ln.balances()["onchain_spendable_sat"].as_u64().unwrap_or(0) > 2 * amount_sat)
                .then_some(())
        });
    }
    chain.mine(6);
    wait_for("every channel to be usable", LN_TIMEOUT, || {
        let _ = ln.node.api("POST", "/api/lightning/sync", Some("{}"));
        (usable_channels(ln) == channels).then_some(())
    });
}

pub fn usable_channels(ln: &LnBox) -> usize {
    ln.channels().iter().filter(|c| c["usable"] == true).count()
}

// ---------------------------------------------------------------------------------------
// Numbers

pub struct Summary {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
    pub per_sec: f64,
}

impl Summary {
    pub fn of(latencies: &[Duration], wall: Duration) -> Summary {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        // Nearest rank.
        let at = |q: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        let total: Duration = sorted.iter().sum();
        Summary {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
            mean: if sorted.is_empty() {
                Duration::ZERO
            } else {
                total / sorted.len() as u32
            },
            per_sec: if wall.is_zero() {
                0.0
            } else {
                sorted.len() as f64 / wall.as_secs_f64()
            },
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// How much bigger `value` is than `base`, in percent.
pub fn percent(value: f64, base: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else {
        (value / base - 1.0) * 100.0
    }
}
