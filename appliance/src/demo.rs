//! `plugnode demo`: the whole appliance on a laptop.
//!
//! regtest-sim stands in for bitcoind (plugnode itself, called through a symlink named
//! `regtest-sim`), data lives in a temporary or given directory, the web page listens on
//! loopback, over plain HTTP (loopback traffic never leaves the laptop) and over HTTPS with
//! the demo's own certificate authority. `--report` prints start-up figures and exits.

use crate::app::Appliance;
use crate::config::PanelKind;
use crate::config::{Config, GossipSetting, Network};
use crate::lightning::store::ChannelStore;
use crate::lightning::{LightningHandle, LightningSettings, OpenChannel};
use crate::shutdown::Shutdown;
use crate::status::{BitcoindState, LightningState, StatusHandle};
use anyhow::Context;
use bitcoincore_rpc::RpcApi;
use plugnode_testkit::try_free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Blocks the demo chain starts with: coinbases mature after 100.
const DEMO_START_HEIGHT: u64 = 101;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's data in this directory (reused next time). Default: a temporary
    /// directory removed on exit.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where the web page listens over plain HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the web page listens over HTTPS.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub https_listen: SocketAddr,
    /// Seconds between blocks the simulated chain mines on its own (0 = never).
    #[arg(long, default_value_t = 30)]
    pub block_interval: u64,
    /// Print start-up figures (time to bitcoind RPC ready and to the web page answering,
    /// resident memory when idle), then shut down.
    #[arg(long)]
    pub report: bool,
}

/// Runs the demo until Ctrl-C (or, with `--report`, until the figures are printed).
pub async fn run(args: DemoArgs, shutdown: Shutdown, started: Instant) -> anyhow::Result<()> {
    let temp_dir;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp_dir = tempfile::Builder::new()
                .prefix("plugnode-demo-")
                .tempdir()
                .context("cannot create a temporary directory for the demo")?;
            temp_dir.path().to_path_buf()
        }
    };
    let dir = std::path::absolute(&dir)?;
    // The full log goes to a file, the terminal keeps what a newcomer needs. A temporary
    // directory is removed on exit, so its log sits beside it and stays.
    let log = if args.dir.is_some() {
        dir.join("demo.log")
    } else {
        let mut beside = dir.clone().into_os_string();
        beside.push(".log");
        PathBuf::from(beside)
    };
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    crate::logging::send_details_to(&log)
        .with_context(|| format!("cannot write the demo's log {}", log.display()))?;
    println!(
        "plugnode demo is starting; its full log goes to {}",
        log.display()
    );
    // The demo's USB stick is a folder; it starts plugged in (unless a previous demo in this
    // directory pulled it out: the page plugs it in again).
    let stick = dir.join("usb-stick");
    if !stick.exists() && !dir.join("usb-stick.unplugged").exists() {
        std::fs::create_dir_all(&stick)?;
    }
    let config = demo_config(&dir, &args)?;
    config.validate()?;

    let appliance =
        Appliance::start_with(&config, shutdown.clone(), true, Some(dir.join("usb-stick"))).await?;
    println!(
        "plugnode demo is running: open http://{}/ or https://{}/ (data in {}; Ctrl-C stops it)",
        appliance.web_address,
        appliance.https_address,
        dir.display()
    );
    println!(
        "HTTPS uses the demo's own certificate authority: trust {} in your browser (SHA-256 {}){}, \
         or accept the browser's warning.",
        config
            .data
            .secrets_dir()
            .join(crate::web::tls::ca::CERT_FILE)
            .display(),
        appliance.ca.fingerprint(),
        if args.dir.is_some() {
            ""
        } else {
            "; it is new in every temporary demo, --dir keeps it"
        }
    );
    match appliance.auth.setup_code() {
        Some(code) => println!(
            "First visit: set a password with the setup code {} (a real box shows it on its \
             screen).",
            code.expose()
        ),
        None => println!("Log in with the password you set in an earlier demo in this directory."),
    }

    // Measured side by side: the web page does not wait for bitcoind.
    let web_probe = args
        .report
        .then(|| tokio::spawn(wait_for_web(appliance.web_address, started)));
    let rpc_ready = wait_for_rpc(&appliance.status, &shutdown).await;
    let rpc_ready_after = rpc_ready.then(|| started.elapsed());
    if rpc_ready {
        if let Err(err) = mine_start_blocks(&appliance).await {
            warn!("could not mine the demo's first blocks: {err:#}");
        }
    }
    // The demo peer runs beside the box; it stops when the demo does.
    let peer = if rpc_ready && !args.report {
        match DemoPeer::start(&dir, &appliance).await {
            Ok(peer) => Some(peer),
            Err(err) => {
                warn!("the demo's Lightning peer could not start: {err:#}");
                None
            }
        }
    } else {
        None
    };

    if let Some(web_probe) = web_probe {
        let web_after = web_probe.await.ok().flatten();
        // Let the start-up churn settle before reading memory.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss = resident_memory_kib();
        print_report(rpc_ready_after, web_after, rss);
        shutdown.trigger();
    }
    shutdown.wait().await;
    println!("plugnode demo is stopping…");
    if let Some(peer) = peer {
        peer.stop().await;
    }
    appliance.stop().await;
    println!("plugnode demo stopped (its log: {})", log.display());
    Ok(())
}

/// The demo's other Lightning nodes on the same simulated chain, so a newcomer sees a
/// working node: a *peer* with a channel to the box (balances, payments both ways, an
/// invoice for a paired app to pay), and a *liquidity provider* running ldk-node's LSPS2
/// service with a channel from the peer, so asking for more than the box can receive
/// opens a just-in-time channel.
struct DemoPeer {
    peer: DemoNode,
    provider: DemoNode,
}

/// The channel the demo opens, and what it gives the peer at once so both can pay.
const DEMO_CHANNEL_SAT: u64 = 1_000_000;
const DEMO_PUSH_MSAT: u64 = 250_000_000;
/// The peer's channel to the provider, which carries payments into just-in-time channels.
const PROVIDER_CHANNEL_SAT: u64 = 5_000_000;

/// One of the demo's nodes: plugnode's Lightning service on its own, following the box's
/// bitcoind state (it has no supervisor of its own).
struct DemoNode {
    lightning: LightningHandle,
    status: StatusHandle,
    port: u16,
    mirror: tokio::task::JoinHandle<()>,
}

impl DemoNode {
    async fn start(
        dir: &Path,
        alias: &str,
        box_: &Appliance,
        lsp_service: Option<ldk_node::liquidity::LSPS2ServiceConfig>,
    ) -> anyhow::Result<DemoNode> {
        // The same port every run in a kept demo directory: the box reconnects to it.
        std::fs::create_dir_all(dir)?;
        let port_file = dir.join("port");
        let port = match std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        {
            Some(port) => port,
            None => {
                let port = try_free_port()?;
                std::fs::write(&port_file, port.to_string())?;
                port
            }
        };
        let status = StatusHandle::new();
        let mirror = tokio::spawn({
            let mut from = box_.status.subscribe();
            let to = status.clone();
            async move {
                loop {
                    let bitcoind = from.borrow_and_update().bitcoind.clone();
                    to.update(|s| s.bitcoind = bitcoind);
                    if from.changed().await.is_err() {
                        return;
                    }
                }
            }
        });
        let lightning = LightningHandle::spawn(
            LightningSettings {
                enabled: true,
                network: Network::Regtest,
                storage_dir: dir.join("lightning"),
                secrets_dir: dir.join("secrets"),
                listen_address: SocketAddr::from(([127, 0, 0, 1], port)),
                alias: Some(alias.into()),
                gossip: GossipSetting::P2p,
                rpc_port: box_.bitcoind_rpc_port(),
                rpc_user: box_.credentials.lightning.clone(),
                lsp: None,
                lsp_fee_limit: Default::default(),
                lsp_service,
            },
            status.clone(),
            ChannelStore::open(&dir.join("lightning"))?,
        );
        if !lightning.has_seed() {
            lightning.create_seed()?;
        }
        Ok(DemoNode {
            lightning,
            status,
            port,
            mirror,
        })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn stop(self) {
        self.lightning.stop().await;
        self.mirror.abort();
    }
}

/// The demo provider's terms: 1 % of the payment, at least 2 000 sat, for payments of
/// 10 000 sat to 4 million sat; the channel 10 % larger than the payment.
fn provider_terms() -> ldk_node::liquidity::LSPS2ServiceConfig {
    ldk_node::liquidity::LSPS2ServiceConfig {
        require_token: None,
        advertise_service: false,
        channel_opening_fee_ppm: 10_000,
        channel_over_provisioning_ppm: 100_000,
        min_channel_opening_fee_msat: 2_000_000,
        min_channel_lifetime: 100,
        max_client_to_self_delay: 1024,
        min_payment_size_msat: 10_000_000,
        max_payment_size_msat: 4_000_000_000,
        client_trusts_lsp: false,
    }
}

impl DemoPeer {
    async fn start(dir: &Path, box_: &Appliance) -> anyhow::Result<DemoPeer> {
        let peer = DemoNode::start(&dir.join("demo-peer"), "demo peer", box_, None).await?;
        let provider = DemoNode::start(
            &dir.join("demo-lsp"),
            "demo liquidity provider",
            box_,
            Some(provider_terms()),
        )
        .await?;
        wait_running(&provider.status).await;
        // The box learns of the provider before its node is built (or rebuilds it); the
        // page asks the owner before it is used, as on a real box.
        box_.lightning.set_lsp(Some(crate::lightning::LspSettings {
            node_id: provider.lightning.node_info()?.node_id,
            address: provider.address(),
            token: None,
            name: "the demo's liquidity provider".into(),
        }));
        if !box_.lightning.has_seed() {
            box_.lightning.create_seed()?;
            info!("demo: created the box's wallet (in a real box you write the words down)");
        }
        let _ = box_.demo_peer.set(peer.lightning.clone());
        let demo = DemoPeer { peer, provider };
        if let Err(err) = demo.open_demo_channels(box_).await {
            warn!("demo: could not set up the demo channels: {err:#}");
        }
        Ok(demo)
    }

    /// Funds the wallets and opens a channel from the box to the peer and one from the peer
    /// to the provider (once: a demo directory that has them keeps them).
    async fn open_demo_channels(&self, box_: &Appliance) -> anyhow::Result<()> {
        wait_running(&box_.status).await;
        wait_running(&self.peer.status).await;
        let rpc = demo_rpc(box_)?;
        let mine = |count: u64, address: String| {
            let rpc = rpc.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let _: serde_json::Value =
                    rpc.call("generatetoaddress", &[count.into(), address.into()])?;
                Ok(())
            })
        };
        let peer = &self.peer.lightning;
        let provider = &self.provider.lightning;
        let box_needs_channel = box_.lightning.list_channels()?.is_empty();
        let provider_needs_channel = provider.list_channels()?.is_empty();
        if !box_needs_channel && !provider_needs_channel {
            return Ok(());
        }
        // Coinbases for every wallet that opens a channel (and the provider's, which opens
        // the just-in-time ones); they mature after 100 blocks.
        if box_needs_channel {
            mine(1, box_.lightning.new_onchain_address().await?).await??;
        }
        if provider_needs_channel {
            mine(1, peer.new_onchain_address().await?).await??;
            mine(1, provider.new_onchain_address().await?).await??;
        }
        mine(100, demo_address().to_string()).await??;
        // A manual sync while ldk-node's background sync runs returns at once ("Sync in
        // progress, skipping"), so wait until each opener's wallet sees its coins.
        let mut openers = Vec::new();
        if box_needs_channel {
            openers.push((&box_.lightning, DEMO_CHANNEL_SAT));
        }
        if provider_needs_channel {
            openers.push((peer, PROVIDER_CHANNEL_SAT));
        }
        for (node, amount_sat) in openers {
            wait_for_spendable(node, amount_sat).await?;
        }
        provider.sync_wallets().await?;
        if box_needs_channel {
            box_.lightning
                .open_channel(OpenChannel {
                    node_id: peer.node_info()?.node_id,
                    address: self.peer.address(),
                    amount_sat: DEMO_CHANNEL_SAT,
                    push_msat: DEMO_PUSH_MSAT,
                    public: false,
                })
                .await?;
        }
        if provider_needs_channel {
            peer.open_channel(OpenChannel {
                node_id: provider.node_info()?.node_id,
                address: self.provider.address(),
                amount_sat: PROVIDER_CHANNEL_SAT,
                push_msat: 0,
                public: false,
            })
            .await?;
        }
        // Confirm the funding transactions once they reached the mempool (LDK broadcasts
        // them when the peer signed, moments after `open_channel` returns).
        let opened = usize::from(box_needs_channel) + usize::from(provider_needs_channel);
        let rpc_for_wait = rpc.clone();
        let in_mempool = tokio::task::spawn_blocking(move || {
            wait_for_mempool(&rpc_for_wait, opened, Duration::from_secs(120))
        })
        .await?;
        if !in_mempool {
            warn!("demo: the channels' funding transactions did not reach the mempool in time");
        }
        mine(6, demo_address().to_string()).await??;
        info!(
            "demo: opened a {DEMO_CHANNEL_SAT} sat channel to the demo peer, and the peer one to \
             the demo's liquidity provider"
        );
        Ok(())
    }

    async fn stop(self) {
        self.peer.stop().await;
        self.provider.stop().await;
    }
}

/// Waits until bitcoind's mempool holds at least `count` transactions (true), or `limit`
/// passed (false).
fn wait_for_mempool(rpc: &bitcoincore_rpc::Client, count: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let held: Result<Vec<String>, _> = rpc.call("getrawmempool", &[]);
        if held.is_ok_and(|txids| txids.len() >= count) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn wait_running(status: &StatusHandle) {
    let _ = status
        .subscribe()
        .wait_for(|s| s.lightning.state == LightningState::Running)
        .await;
}

fn demo_rpc(appliance: &Appliance) -> anyhow::Result<Arc<bitcoincore_rpc::Client>> {
    let user = &appliance.credentials.supervisor;
    Ok(Arc::new(bitcoincore_rpc::Client::new(
        &format!("http://127.0.0.1:{}", appliance.bitcoind_rpc_port()),
        bitcoincore_rpc::Auth::UserPass(user.name.clone(), user.password.expose().into()),
    )?))
}

fn demo_config(dir: &Path, args: &DemoArgs) -> anyhow::Result<Config> {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let sim = bin_dir.join("regtest-sim");
    let exe = std::env::current_exe().context("cannot find plugnode's own executable")?;
    // The symlink makes plugnode start as regtest-sim (see main.rs); refresh it in case the
    // binary moved since a previous demo in the same directory.
    let _ = std::fs::remove_file(&sim);
    std::os::unix::fs::symlink(&exe, &sim)
        .with_context(|| format!("cannot create {}", sim.display()))?;

    let mut config = Config::default();
    config.data.dir = dir.to_path_buf();
    config.bitcoind.binary = sim;
    config.bitcoind.network = Network::Regtest;
    // Free ports, so the demo runs beside a real regtest bitcoind or a second demo.
    config.bitcoind.rpc_port = Some(try_free_port()?);
    config.bitcoind.p2p_port = Some(try_free_port()?);
    config.bitcoind.extra_args = vec![format!("-simblockinterval={}", args.block_interval)];
    config.bitcoind.stop_timeout_secs = 60;
    config.web.listen = args.listen;
    config.web.https_listen = args.https_listen;
    config.lightning.listen_port = try_free_port()?;
    config.display.panel = PanelKind::Simulated;
    // Wallet apps on this computer reach the box on loopback.
    config.pairing.relay_listen = SocketAddr::from(([127, 0, 0, 1], try_free_port()?));
    config.pairing.lndhub_listen = SocketAddr::from(([127, 0, 0, 1], try_free_port()?));
    Ok(config)
}

/// Waits until bitcoind's RPC answers (or the demo is stopped first).
async fn wait_for_rpc(status: &StatusHandle, shutdown: &Shutdown) -> bool {
    let mut updates = status.subscribe();
    tokio::select! {
        result = updates.wait_for(|s| {
            matches!(s.bitcoind.state, BitcoindState::Syncing | BitcoindState::Ready)
        }) => result.is_ok(),
        _ = shutdown.wait() => false,
    }
}

/// A fresh regtest chain is in "initial block download" until a block is mined: mine the
/// demo's first blocks so the node looks like a synced one.
async fn mine_start_blocks(appliance: &Appliance) -> anyhow::Result<()> {
    let height = appliance
        .status
        .snapshot()
        .bitcoind
        .chain
        .map(|c| c.blocks)
        .unwrap_or(0);
    if height >= DEMO_START_HEIGHT {
        return Ok(());
    }
    let client = demo_rpc(appliance)?;
    let address = demo_address();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let _: serde_json::Value = client.call(
            "generatetoaddress",
            &[
                (DEMO_START_HEIGHT - height).into(),
                address.to_string().into(),
            ],
        )?;
        Ok(())
    })
    .await??;
    info!("mined the demo chain up to height {DEMO_START_HEIGHT}");
    Ok(())
}

/// Where the demo's own blocks pay: a fixed key, so nobody can mistake it for a real
/// wallet.
fn demo_address() -> bitcoin::Address {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[0x42; 32]).expect("valid key");
    let public = bitcoin::CompressedPublicKey(key.public_key(&secp));
    bitcoin::Address::p2wpkh(&public, bitcoin::Network::Regtest)
}

/// Time from start until `GET /api/health` answers 200.
async fn wait_for_web(address: SocketAddr, started: Instant) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..200 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
            // The box's own address as Host: the page refuses other names.
            let request = format!("GET /api/health HTTP/1.0\r\nHost: {address}\r\n\r\n");
            let _ = stream.write_all(request.as_bytes()).await;
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200") {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// VmRSS of this process, in KiB.
fn resident_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

fn print_report(rpc: Option<Duration>, web: Option<Duration>, rss_kib: Option<u64>) {
    let millis = |d: Option<Duration>| {
        d.map(|d| format!("{} ms", d.as_millis()))
            .unwrap_or_else(|| "not reached".into())
    };
    println!("plugnode demo report");
    println!("  start → bitcoind RPC ready   {}", millis(rpc));
    println!("  start → web page answering   {}", millis(web));
    println!(
        "  supervisor resident memory   {}",
        rss_kib
            .map(|kib| format!(
                "{:.1} MiB (idle, without the Lightning node)",
                kib as f64 / 1024.0
            ))
            .unwrap_or_else(|| "unknown".into())
    );
}

/// Syncs `node`'s wallet until it can spend `amount_sat` (plus fees), for up to two minutes.
async fn wait_for_spendable(node: &LightningHandle, amount_sat: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        node.sync_wallets().await?;
        let spendable = node.balances()?.onchain_spendable_sat;
        if spendable > amount_sat {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the wallet sees only {spendable} sat after two minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
