//! Lightning figures (issue 3, "Figures"), measured on one regtest-sim chain on this
//! machine. Prints them; asserts no timings.
//!
//! 1. **Payments**: round-trip latency of a BOLT11 payment A→B over loopback (median, p90,
//!    p99, max) and payments per second in sequence, for four pairs of nodes in the same
//!    process and the same run, interleaved in blocks of 50 so that load from other
//!    programs falls on all of them alike:
//!    - *ldk-node → ldk-node*: both nodes used directly (`Builder::build`, ldk-node's own
//!      SQLite store, `Node::start`); the sender calls `bolt11_payment().send()` and waits
//!      for its `PaymentSuccessful` event (`wait_next_event`); the receiver acknowledges its
//!      events as they come.
//!    - *ldk-node+store → same*: the same, built with `build_with_store` over plugnode's
//!      `ChannelStore`: separates the store's cost from the handle's.
//!    - *plugnode → plugnode*: two `LightningHandle`s (plugnode's service, store, event
//!      loop and status refresh; each box on its own tokio runtime as in `plugnode run`);
//!      the sender calls `LightningHandle::pay_invoice`, which checks and waits for the
//!      outcome.
//!    - *plugnode → ldk+store*: plugnode's sender, a bare receiver on plugnode's store:
//!      the sender's side alone.
//!
//!    Latency is measured from the pay call to the known outcome; invoices are created
//!    outside it (by the receiver, through the same API as its kind). Payments per second
//!    counts the whole sequence: invoice, payment, acknowledgement. All nodes log through
//!    the `log` facade into one tracing subscriber at `info` (a file), as `plugnode run`
//!    does. It also counts the durable store updates one payment makes on each side, by
//!    namespace (a counting `Mirror` where the backup stick would be); and after the runs
//!    times, on the bare sender (same channel and payment count), each ldk-node call
//!    plugnode's event loop makes after every event (`refresh_status`), and one durable
//!    write in plugnode's store and in ldk-node's (interleaved, median).
//!    No backup stick is attached in this figure.
//! 2. **Memory**: a real `plugnode run` (this build's binary, `demo` feature, its bitcoind
//!    a regtest-sim proxy onto the shared chain) opens 10 channels to 10 ldk-node peers
//!    running in this process, pays 10 times over each through the web API, settles, and
//!    its `VmRSS`/`VmHWM` (and its bitcoind child's) are read from `/proc`; again after the
//!    last restart of 3, idle, and then after three more web logins (argon2).
//! 3. **Start-up**: that box (wallet and channels already there, chain synced) is stopped
//!    with SIGTERM and started again several times; from outside, spawn → web answers →
//!    bitcoind ready (`/api/health`) → `lightning.state == running` (`/api/status`, polled
//!    every 10 ms) → all channels usable again (`GET /api/lightning/channels`, asks the
//!    node) → the status shows them usable (what the screen and dashboard show).
//!
//! Run it (a release-profile build: `cargo bench` uses the `bench` profile, which inherits
//! the root `[profile.release]`: opt-level 3, fat LTO, one codegen unit; the `plugnode`
//! binary of figures 2 and 3 is built with it too). On 2 cores the first build takes
//! ~20 min, the run ~12 min; build niced, run the measurement itself at normal priority:
//!
//! ```sh
//! nice -n 10 cargo bench -p plugnode --bench lightning --no-run
//! cargo bench -p plugnode --bench lightning                  # everything
//! cargo bench -p plugnode --bench lightning -- payments      # only figure 1
//! cargo bench -p plugnode --bench lightning -- memory startup
//! ```
//!
//! Figures 2 and 3 drive the box with the end-to-end tests' helpers (`tests/common`).
//!
//! Environment: `PLUGNODE_BENCH_PAYMENTS` (per pair, default 1000),
//! `PLUGNODE_BENCH_CHANNELS` (default 10), `PLUGNODE_BENCH_RESTARTS` (default 5),
//! `PLUGNODE_BENCH_SETTLE_SECS` (before reading memory, default 30), `PLUGNODE_BENCH_KEEP=1`
//! keeps the working directory (logs of every node) and prints where it is.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::lightning::{Chain, LnBox, LN_TIMEOUT};
use common::{http, wait_for, Plugnode};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning_invoice::Bolt11Invoice;
use ldk_node::payment::{PaymentDirection, PaymentKind};
use ldk_node::{Event, Node};
use plugnode::lightning::store::{Change, ChannelStore, Mirror};
use plugnode::lightning::OpenChannel;
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Payments per pair before measuring (route finding and scorer warm up).
const WARMUP_PAYMENTS: usize = 20;
/// Pairs take turns in blocks of this many payments.
const BLOCK: usize = 50;
/// Channels opened by a box to its peers (figure 2) are this big.
const PEER_CHANNEL_SAT: u64 = 1_000_000;
/// Payments the box makes over each of its channels before its memory is read.
const PAYMENTS_PER_PEER: usize = 10;

fn main() {
    let wanted = Wanted::from_args();
    let want = |name: &str| wanted.has(name);
    let payments = env_usize("PLUGNODE_BENCH_PAYMENTS", 1000).max(1);
    let channels = env_usize("PLUGNODE_BENCH_CHANNELS", 10).max(1);
    let restarts = env_usize("PLUGNODE_BENCH_RESTARTS", 5).max(1);
    let settle = Duration::from_secs(env_usize("PLUGNODE_BENCH_SETTLE_SECS", 30) as u64);

    let work = tempfile::Builder::new()
        .prefix("plugnode-bench-ln-")
        .tempdir()
        .expect("a temporary directory");
    let dir = work.path().to_path_buf();
    let _log = init_logging(&dir);

    print_machine("plugnode Lightning figures");
    let chain = Chain::start(&dir);
    let cookie = RpcCookie::read(&chain);

    if want("payments") {
        payment_figures(&dir, &chain, &cookie, payments);
    }
    if want("memory") || want("startup") {
        box_figures(&dir, &chain, &cookie, channels, restarts, settle);
    }
    finish(work);
}

/// Counts the store's updates by namespace (attached where the backup stick would be).
#[derive(Default)]
struct CountingMirror {
    counts: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Mirror for CountingMirror {
    fn record(&self, _generation: u64, change: &Change) -> Result<(), String> {
        let (verb, primary, secondary, key) = match change {
            Change::Write(entry) => (
                "write",
                &entry.primary_namespace,
                &entry.secondary_namespace,
                &entry.key,
            ),
            Change::Remove {
                primary_namespace,
                secondary_namespace,
                key,
            } => ("remove", primary_namespace, secondary_namespace, key),
        };
        // Top-level keys by name ("manager", "scorer", …); namespaces without their
        // per-channel or per-payment parts.
        let name = match (primary.is_empty(), secondary.is_empty()) {
            (true, _) => format!("{verb} {key}"),
            (false, true) => format!("{verb} {primary}/…"),
            (false, false) => format!("{verb} {primary}/…/…"),
        };
        *self.counts.lock().unwrap().entry(name).or_default() += 1;
        Ok(())
    }
}

enum Sender {
    Bare(Arc<Node>),
    Plug(PlugBox),
}

enum Receiver {
    Bare(Arc<Node>),
    Plug(PlugBox),
}

impl Sender {
    fn new_address(&self) -> String {
        match self {
            Sender::Bare(node) => node.onchain_payment().new_address().unwrap().to_string(),
            Sender::Plug(b) => b.new_address(),
        }
    }

    fn spendable_sat(&self) -> u64 {
        match self {
            Sender::Bare(node) => {
                let _ = node.sync_wallets();
                node.list_balances().spendable_onchain_balance_sats
            }
            Sender::Plug(b) => b.spendable_sat(),
        }
    }

    fn open(&self, node_id: &str, address: &str, amount_sat: u64) {
        match self {
            Sender::Bare(node) => {
                let id = ldk_node::bitcoin::secp256k1::PublicKey::from_str(node_id).unwrap();
                let address = SocketAddress::from_str(address).unwrap();
                node.open_channel(id, address, amount_sat, None, None)
                    .expect("the channel opens");
            }
            Sender::Plug(b) => {
                b.runtime
                    .block_on(b.handle.open_channel(OpenChannel {
                        node_id: node_id.into(),
                        address: address.into(),
                        amount_sat,
                        push_msat: 0,
                        public: false,
                    }))
                    .expect("the channel opens");
            }
        }
    }

    fn usable(&self) -> bool {
        match self {
            Sender::Bare(node) => {
                drain(node);
                node.list_channels().iter().any(|c| c.is_usable)
            }
            Sender::Plug(b) => b.usable(),
        }
    }

    /// Pays `invoice`; the time from the call to the known outcome.
    fn pay(&self, invoice: &Bolt11Invoice) -> Result<Duration, String> {
        match self {
            Sender::Bare(node) => {
                drain(node);
                let start = Instant::now();
                let id = node
                    .bolt11_payment()
                    .send(invoice, None)
                    .map_err(|e| format!("send: {e}"))?;
                loop {
                    let event = node.wait_next_event();
                    let elapsed = start.elapsed();
                    node.event_handled().map_err(|e| format!("ack: {e}"))?;
                    match event {
                        Event::PaymentSuccessful {
                            payment_id: Some(p),
                            ..
                        } if p == id => return Ok(elapsed),
                        Event::PaymentFailed {
                            payment_id: Some(p),
                            reason,
                            ..
                        } if p == id => return Err(format!("failed: {reason:?}")),
                        _ => {}
                    }
                }
            }
            Sender::Plug(b) => {
                let text = invoice.to_string();
                let start = Instant::now();
                let result = b.runtime.block_on(b.handle.pay(&text, None, None, None));
                let elapsed = start.elapsed();
                match result {
                    Ok(p) if p.status == "succeeded" => Ok(elapsed),
                    Ok(p) => Err(format!("payment {}", p.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    fn stop(self) {
        match self {
            Sender::Bare(node) => {
                let _ = node.stop();
            }
            Sender::Plug(b) => b.stop(),
        }
    }
}

impl Receiver {
    fn node_id(&self) -> String {
        match self {
            Receiver::Bare(node) => node.node_id().to_string(),
            Receiver::Plug(b) => b.node_id(),
        }
    }

    fn address(&self) -> String {
        match self {
            Receiver::Bare(node) => bare_address(node),
            Receiver::Plug(b) => b.address(),
        }
    }

    fn usable(&self) -> bool {
        match self {
            Receiver::Bare(node) => node.list_channels().iter().any(|c| c.is_usable),
            Receiver::Plug(b) => b.usable(),
        }
    }

    fn invoice(&self) -> Bolt11Invoice {
        match self {
            Receiver::Bare(node) => node
                .bolt11_payment()
                .receive(AMOUNT_MSAT, &description(), 3600)
                .expect("an invoice"),
            Receiver::Plug(b) => {
                let invoice = b
                    .runtime
                    .block_on(b.handle.create_invoice(Some(AMOUNT_MSAT), "bench", 3600))
                    .expect("an invoice");
                Bolt11Invoice::from_str(&invoice.bolt11).unwrap()
            }
        }
    }

    fn stop(self) {
        match self {
            Receiver::Bare(node) => {
                let _ = node.stop();
            }
            Receiver::Plug(b) => b.stop(),
        }
    }
}

/// One sender/receiver pair and what was measured on it.
struct Pair {
    name: &'static str,
    sender: Sender,
    receiver: Receiver,
    latencies: Vec<Duration>,
    /// Whole sequence: invoice + payment + acknowledgement.
    wall: Duration,
    failures: Vec<String>,
}

impl Pair {
    /// `count` payments in sequence; measured ones are recorded.
    fn run(&mut self, count: usize, record: bool) {
        let start = Instant::now();
        for _ in 0..count {
            let invoice = self.receiver.invoice();
            match self.sender.pay(&invoice) {
                Ok(latency) if record => self.latencies.push(latency),
                Ok(_) => {}
                Err(err) => self.failures.push(err),
            }
        }
        if record {
            self.wall += start.elapsed();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Figure 1: payments

fn payment_figures(dir: &Path, chain: &Chain, rpc: &RpcCookie, payments: usize) {
    println!(
        "\n== 1. Payment round trip A→B over loopback: ldk-node directly vs plugnode's handle"
    );
    let setup_started = Instant::now();
    let mut pumps = Pumps::start();
    let d = |name: &str| dir.join(name);
    let (store_a, counter_a) = Store::plugnode(&d("direct-store-a"));
    let (store_b, counter_b) = Store::plugnode(&d("direct-store-b"));
    let (store_mixed, _) = Store::plugnode(&d("mixed-b"));
    let receivers = [
        bare_node(&d("direct-b"), rpc, Store::Ldk),
        bare_node(&d("direct-store-b"), rpc, store_b),
        bare_node(&d("mixed-b"), rpc, store_mixed),
    ];
    for receiver in &receivers {
        pumps.pump(receiver);
    }
    let [direct_b, direct_store_b, mixed_b] = receivers;
    let pair = |name, sender, receiver| Pair {
        name,
        sender,
        receiver,
        latencies: Vec::new(),
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    let mut pairs = vec![
        pair(
            "ldk-node → ldk-node",
            Sender::Bare(bare_node(&d("direct-a"), rpc, Store::Ldk)),
            Receiver::Bare(direct_b),
        ),
        pair(
            "ldk-node+store → same",
            Sender::Bare(bare_node(&d("direct-store-a"), rpc, store_a)),
            Receiver::Bare(direct_store_b),
        ),
        pair(
            "plugnode → plugnode",
            Sender::Plug(PlugBox::start(&d("plug-a"), rpc)),
            Receiver::Plug(PlugBox::start(&d("plug-b"), rpc)),
        ),
        pair(
            "plugnode → ldk+store",
            Sender::Plug(PlugBox::start(&d("mixed-a"), rpc)),
            Receiver::Bare(mixed_b),
        ),
    ];

    // Fund each sender with a coinbase, open one channel per pair, confirm.
    let needed_msat = (payments + WARMUP_PAYMENTS) as u64 * AMOUNT_MSAT;
    let channel_sat = (needed_msat / 1000 * 12 / 10 + 100_000).clamp(2_000_000, 16_000_000);
    for pair in &pairs {
        chain.mine_to(1, &pair.sender.new_address());
    }
    chain.mine(100);
    for pair in &pairs {
        wait_for("the sender's coinbase", LN_TIMEOUT, || {
            (pair.sender.spendable_sat() > channel_sat).then_some(())
        });
    }
    for pair in &pairs {
        pair.sender.open(
            &pair.receiver.node_id(),
            &pair.receiver.address(),
            channel_sat,
        );
    }
    wait_for("the funding transactions", LN_TIMEOUT, || {
        (chain.mempool_size() >= pairs.len()).then_some(())
    });
    chain.mine(6);
    for pair in &pairs {
        wait_for("the channel to be usable", LN_TIMEOUT, || {
            (pair.sender.usable() && pair.receiver.usable()).then_some(())
        });
    }
    println!(
        "  setup (6 nodes, 3 channels of {} sat): {:.1?}",
        channel_sat,
        setup_started.elapsed()
    );

    for pair in &mut pairs {
        pair.run(WARMUP_PAYMENTS, false);
    }
    let counts = [
        Arc::new(CountingMirror::default()),
        Arc::new(CountingMirror::default()),
    ];
    counter_a.attach_mirror(counts[0].clone());
    counter_b.attach_mirror(counts[1].clone());
    let updates_before = (counter_a.generation(), counter_b.generation());
    let mut done = 0;
    while done < payments {
        let count = BLOCK.min(payments - done);
        for pair in &mut pairs {
            pair.run(count, true);
        }
        done += count;
    }
    let updates = (
        counter_a.generation() - updates_before.0,
        counter_b.generation() - updates_before.1,
    );
    counter_a.detach_mirror();
    counter_b.detach_mirror();

    println!(
        "  {payments} payments of {} sat per pair (after {WARMUP_PAYMENTS} warm-up payments), \
         in sequence, pairs interleaved in blocks of {BLOCK}",
        AMOUNT_MSAT / 1000
    );
    println!(
        "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "pair (sender → recv.)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "mean ms",
        "paid/s",
        "failed"
    );
    let mut summaries = Vec::new();
    for pair in &pairs {
        let s = Summary::of(&pair.latencies, pair.wall);
        println!(
            "  {:<22} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.2} {:>7}",
            pair.name,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max),
            ms(s.mean),
            s.per_sec,
            pair.failures.len()
        );
        summaries.push(s);
    }
    // Time per payment (1 / paid/s) rather than paid/s, so every column reads "% slower".
    println!("  overhead, % (positive = slower; \"seq\" = time per payment in the sequence):");
    println!(
        "  {:<44} {:>7} {:>7} {:>7} {:>7}",
        "", "p50", "p99", "mean", "seq"
    );
    let comparisons = [
        (2, 0, "plugnode → plugnode  vs  ldk-node → ldk-node"),
        (2, 1, "  of which handle + event loop (same store)"),
        (3, 1, "  of which the sender's handle alone"),
        (1, 0, "  of which the store (ChannelStore vs Sqlite)"),
    ];
    for (ours, base, name) in comparisons {
        let (s, b) = (&summaries[ours], &summaries[base]);
        println!(
            "  {name:<44} {:>6.1}% {:>6.1}% {:>6.1}% {:>6.1}%",
            percent(ms(s.p50), ms(b.p50)),
            percent(ms(s.p99), ms(b.p99)),
            percent(ms(s.mean), ms(b.mean)),
            percent(b.per_sec, s.per_sec),
        );
    }
    for pair in &pairs {
        if let Some(first) = pair.failures.first() {
            println!(
                "  {}: {} failed payment(s), first: {first}",
                pair.name,
                pair.failures.len()
            );
        }
    }

    println!(
        "  durable store updates per payment (ldk-node on plugnode's store, counted by its \
         generation): sender {:.1}, receiver {:.1}; by namespace:",
        updates.0 as f64 / payments as f64,
        updates.1 as f64 / payments as f64
    );
    let names: std::collections::BTreeSet<String> = counts
        .iter()
        .flat_map(|c| c.counts.lock().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    println!("    {:<44} {:>8} {:>8}", "", "sender", "receiver");
    for name in names {
        let per = |c: &CountingMirror| {
            *c.counts.lock().unwrap().get(&name).unwrap_or(&0) as f64 / payments as f64
        };
        println!(
            "    {name:<44} {:>8.2} {:>8.2}",
            per(&counts[0]),
            per(&counts[1])
        );
    }

    refresh_costs(dir, &pairs);

    pumps.stop();
    for pair in pairs {
        pair.sender.stop();
        pair.receiver.stop();
    }
}

/// What plugnode's event loop does after every Lightning event (`refresh_status`) and
/// `pay_invoice` does before sending, timed call by call on the bare sender (same channel
/// and payment count as plugnode's), and one durable write of the channel store.
fn refresh_costs(dir: &Path, pairs: &[Pair]) {
    let Sender::Bare(node) = &pairs[1].sender else {
        return;
    };
    let payment_count = node.list_payments().len();
    println!(
        "\n  per-event work of plugnode's event loop (refresh_status), on a node with 1 channel \
         and {payment_count} payments (mean of 200 calls):"
    );
    let rows: Vec<(&str, Duration)> = vec![
        (
            "list_channels",
            mean_time(200, || {
                black_box(node.list_channels());
            }),
        ),
        (
            "list_balances",
            mean_time(200, || {
                black_box(node.list_balances());
            }),
        ),
        (
            "list_peers",
            mean_time(200, || {
                black_box(node.list_peers());
            }),
        ),
        (
            "recent payments (list all non-on-chain, sort, take 10)",
            mean_time(200, || {
                let mut p = node
                    .list_payments_with_filter(|p| !matches!(p.kind, PaymentKind::Onchain { .. }));
                p.sort_by_key(|p| std::cmp::Reverse(p.latest_update_timestamp));
                p.truncate(10);
                black_box(p);
            }),
        ),
    ];
    let total: Duration = rows.iter().map(|(_, d)| *d).sum();
    for (name, d) in &rows {
        println!("    {name:<64} {:>9.1} µs", us(*d));
    }
    println!(
        "    {:<64} {:>9.1} µs",
        "refresh_status total (ldk-node calls)",
        us(total)
    );

    let hash = [0u8; 32];
    let duplicate_scan = mean_time(200, || {
        black_box(node.list_payments_with_filter(|p| {
            p.direction == PaymentDirection::Outbound
                && matches!(&p.kind, PaymentKind::Bolt11 { hash: h, .. } if h.0 == hash)
        }));
    });
    println!(
        "    {:<64} {:>9.1} µs",
        "pay_invoice: already-paid scan over all payments",
        us(duplicate_scan)
    );
    if let Sender::Plug(b) = &pairs[2].sender {
        let handle = &b.handle;
        let balances = mean_time(200, || {
            black_box(handle.balances().unwrap());
        });
        let listing = mean_time(50, || {
            black_box(handle.list_payments().unwrap());
        });
        println!(
            "    {:<64} {:>9.1} µs",
            "LightningHandle::balances (plugnode sender)",
            us(balances)
        );
        println!(
            "    {:<64} {:>9.1} µs",
            "LightningHandle::list_payments, all (plugnode sender)",
            us(listing)
        );
    }

    // One durable write: what every channel update, payment record and event costs, in
    // plugnode's store and in the one ldk-node uses by default.
    use ldk_node::lightning::util::persist::KVStoreSync;
    let ours = ChannelStore::open(&dir.join("store-probe-plugnode")).expect("a channel store");
    let theirs = ldk_node::io::sqlite_store::SqliteStore::new(
        dir.join("store-probe-ldk"),
        Some("probe.sqlite".into()),
        None,
    )
    .expect("an ldk-node SQLite store");
    let stores: [(&str, &dyn KVStoreSync); 2] = [
        ("plugnode ChannelStore (WAL)", &ours),
        ("ldk-node SqliteStore (Builder::build)", &theirs),
    ];
    // Interleaved, so that other programs' disk traffic falls on both alike; median.
    let sizes = [256usize, 16 * 1024];
    let mut samples = vec![Vec::new(); stores.len() * sizes.len()];
    for round in 0..100 {
        for (s, (_, store)) in stores.iter().enumerate() {
            for (z, size) in sizes.iter().enumerate() {
                let value = vec![round as u8; *size];
                let t = Instant::now();
                store
                    .write("probe", "", &format!("key{size}"), value)
                    .unwrap();
                samples[s * sizes.len() + z].push(t.elapsed());
            }
        }
    }
    for (s, (name, _)) in stores.iter().enumerate() {
        for (z, size) in sizes.iter().enumerate() {
            let list = &mut samples[s * sizes.len() + z];
            list.sort();
            println!(
                "    {:<64} {:>9.1} µs",
                format!("durable {size} B write, {name}, median"),
                us(list[list.len() / 2])
            );
        }
    }
}

fn mean_time(iterations: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iterations.min(10) {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed() / iterations
}

// ---------------------------------------------------------------------------------------
// Figures 2 and 3: a real `plugnode run` with channels

fn box_figures(
    dir: &Path,
    chain: &Chain,
    rpc: &RpcCookie,
    channels: usize,
    restarts: usize,
    settle: Duration,
) {
    println!(
        "\n== 2. `plugnode run` resident memory with the Lightning node running and {channels} channels"
    );
    let setup_started = Instant::now();
    let mut pumps = Pumps::start();
    let peers = bare_peers(dir, rpc, channels, &mut pumps);

    let mut ln = LnBox::start(&dir.join("box"), chain);
    ln.fund(chain);
    open_channels(&ln, chain, &peers, PEER_CHANNEL_SAT);

    // Some traffic on every channel, through the web API as a wallet would pay.
    let mut api_latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..PAYMENTS_PER_PEER {
        for peer in &peers {
            let invoice = peer
                .bolt11_payment()
                .receive(AMOUNT_MSAT, &description(), 3600)
                .unwrap()
                .to_string();
            let t = Instant::now();
            let (code, answer) = ln.pay(&invoice, None);
            assert_eq!(code, 200, "a payment: {answer}");
            assert_eq!(answer["status"], "succeeded", "{answer}");
            api_latencies.push(t.elapsed());
        }
    }
    let api = Summary::of(&api_latencies, started.elapsed());
    println!(
        "  setup: wallet, {channels} channels of {PEER_CHANNEL_SAT} sat to {channels} ldk-node peers \
         in the bench process, {} payments: {:.1?}",
        api_latencies.len(),
        setup_started.elapsed()
    );
    println!(
        "  (payments through the web API, POST /api/lightning/pay: p50 {:.1} ms, p99 {:.1} ms, \
         {:.2}/s with invoice creation)",
        ms(api.p50),
        ms(api.p99),
        api.per_sec
    );

    println!("  settling {settle:?}, then 10 samples 1 s apart");
    std::thread::sleep(settle);
    print_memory_header();
    print_memory(&ln.node, "after setup and payments");

    // Figure 3.
    println!(
        "\n== 3. Start to \"Lightning ready\" on a synced chain, second start \
         (wallet and {channels} channels exist), {restarts} restarts"
    );
    let mut samples: Vec<StartSample> = Vec::new();
    for _ in 0..restarts {
        let stop_started = Instant::now();
        ln.node.signal(nix::sys::signal::Signal::SIGTERM);
        let exit = ln.node.wait_exit(Duration::from_secs(180));
        let stopped_in = stop_started.elapsed();
        assert!(exit.success(), "plugnode stopped with {exit}");
        // Let the peers notice the disconnection, as after a real reboot.
        std::thread::sleep(Duration::from_secs(2));
        let (node, sample) = timed_start(&ln, channels, stopped_in);
        ln.node = node;
        samples.push(sample);
    }
    print_start_samples(&samples);

    println!("\n  memory again after the last restart, idle ({settle:?} settle):");
    std::thread::sleep(settle);
    print_memory_header();
    print_memory(&ln.node, "after a restart, idle");
    // Each login hashes the password with argon2 (19 MiB of scratch memory): glibc keeps
    // that memory once its mmap threshold has grown past it. Show what a few logins leave.
    for _ in 0..3 {
        let body = json!({ "password": common::PASSWORD }).to_string();
        let _ = http(ln.node.web, "POST", "/api/login", Some(&body));
    }
    std::thread::sleep(Duration::from_secs(2));
    print_memory(&ln.node, "then 3 more web logins");

    drop(ln);
    pumps.stop();
    for peer in peers {
        let _ = peer.stop();
    }
}

struct StartSample {
    stop: Duration,
    web: Duration,
    bitcoind_ready: Duration,
    lightning_running: Duration,
    /// `GET /api/lightning/channels` (asks the node) says every channel is usable.
    channels_usable: Option<Duration>,
    /// `/api/status` (what the screen and the dashboard show) says so.
    status_usable: Option<Duration>,
    login: Duration,
}

/// Starts the box again and watches it from outside, as a monitoring script would.
fn timed_start(ln: &LnBox, channels: usize, stop: Duration) -> (Plugnode, StartSample) {
    let started = Instant::now();
    let node = Plugnode::start(&ln.config);
    let deadline = started + LN_TIMEOUT;
    let poll = Duration::from_millis(10);
    let mut web = None;
    let mut bitcoind_ready = None;
    let mut login = Duration::ZERO;
    let mut logged_in = false;
    let mut lightning_running = None;
    let mut channels_usable = None;
    let mut status_usable = None;
    let usable = |list: &Value| {
        list.as_array()
            .map(|c| c.iter().filter(|c| c["usable"] == true).count())
            .unwrap_or(0)
    };
    while Instant::now() < deadline {
        if bitcoind_ready.is_none() {
            if let Some((200, body)) = http(node.web, "GET", "/api/health", None) {
                web.get_or_insert(started.elapsed());
                let health: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if health["bitcoind"] == "ready" {
                    bitcoind_ready = Some(started.elapsed());
                }
            }
        }
        if web.is_some() {
            if !logged_in {
                let t = Instant::now();
                logged_in = node.token().is_some();
                login = t.elapsed();
            }
            if let Some(status) = node.status() {
                if bitcoind_ready.is_none() && common::state(&status) == "ready" {
                    bitcoind_ready = Some(started.elapsed());
                }
                if lightning_running.is_none() && status["lightning"]["state"]["state"] == "running"
                {
                    lightning_running = Some(started.elapsed());
                }
                if status_usable.is_none() && usable(&status["lightning"]["channels"]) >= channels {
                    status_usable = Some(started.elapsed());
                }
            }
            if lightning_running.is_some() && channels_usable.is_none() {
                if let Some((200, body)) = node.api("GET", "/api/lightning/channels", None) {
                    let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if usable(&list) >= channels {
                        channels_usable = Some(started.elapsed());
                    }
                }
            }
            if channels_usable.is_some() && status_usable.is_some() {
                break;
            }
        }
        std::thread::sleep(poll);
    }
    let lightning_running = lightning_running.unwrap_or_else(|| {
        panic!(
            "the Lightning node did not run within {LN_TIMEOUT:?}; log:\n{}",
            node.log()
        )
    });
    let sample = StartSample {
        stop,
        web: web.unwrap(),
        bitcoind_ready: bitcoind_ready.unwrap_or(lightning_running),
        lightning_running,
        channels_usable,
        status_usable,
        login,
    };
    (node, sample)
}

/// One column of the start-up table, from a sample.
type Column = dyn Fn(&StartSample) -> Option<Duration>;

fn print_start_samples(samples: &[StartSample]) {
    let column = |f: &dyn Fn(&StartSample) -> Option<Duration>| -> String {
        let mut values: Vec<Duration> = samples.iter().filter_map(f).collect();
        if values.is_empty() {
            return "—".into();
        }
        values.sort();
        format!(
            "{:>7.2} {:>7.2} {:>7.2}",
            secs(values[values.len() / 2]),
            secs(values[0]),
            secs(*values.last().unwrap())
        )
    };
    println!(
        "  {:<52} {:>7} {:>7} {:>7}",
        "seconds from spawning `plugnode run`", "median", "min", "max"
    );
    let rows: [(&str, &Column); 7] = [
        ("web page answers (/api/health)", &|s| Some(s.web)),
        ("bitcoind ready (regtest-sim, -simwarmup=300)", &|s| {
            Some(s.bitcoind_ready)
        }),
        ("LIGHTNING READY (lightning.state = running)", &|s| {
            Some(s.lightning_running)
        }),
        ("  of which after bitcoind ready", &|s| {
            Some(s.lightning_running.saturating_sub(s.bitcoind_ready))
        }),
        ("all channels usable (GET /api/lightning/channels)", &|s| {
            s.channels_usable
        }),
        ("  the status says so (screen, dashboard)", &|s| {
            s.status_usable
        }),
        ("(ordered stop before it, SIGTERM → exit)", &|s| {
            Some(s.stop)
        }),
    ];
    for (name, f) in rows {
        println!("  {name:<52} {}", column(f));
    }
    let logins: Vec<f64> = samples.iter().map(|s| ms(s.login)).collect();
    println!(
        "  ({} samples, polled every 10 ms; the status poll logs in once per start, \
         argon2: {:.0}–{:.0} ms, overlapping the start)",
        samples.len(),
        logins.iter().cloned().fold(f64::MAX, f64::min),
        logins.iter().cloned().fold(0.0, f64::max)
    );
}

/// A process's memory from /proc/<pid>/status, in KiB.
#[derive(Default, Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
    anon: u64,
    file: u64,
    threads: u64,
}

fn memory_of(pid: i32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = Memory::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match key {
            "VmRSS:" => m.rss = value,
            "VmHWM:" => m.hwm = value,
            "RssAnon:" => m.anon = value,
            "RssFile:" => m.file = value,
            "Threads:" => m.threads = value,
            _ => {}
        }
    }
    Some(m)
}

fn print_memory_header() {
    println!(
        "  {:<46} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "MiB (median of 10 samples)", "VmRSS", "RssAnon", "RssFile", "VmHWM", "threads"
    );
}

fn print_memory(node: &Plugnode, when: &str) {
    let mut supervisor = Vec::new();
    let mut bitcoind = Vec::new();
    for i in 0..10 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        if let Some(m) = memory_of(node.pid()) {
            supervisor.push(m);
        }
        if let Some(m) = node.bitcoind_pid().and_then(memory_of) {
            bitcoind.push(m);
        }
    }
    let line = |name: &str, samples: &mut Vec<Memory>| {
        if samples.is_empty() {
            println!("  {name:<46} (no process)");
            return;
        }
        samples.sort_by_key(|m| m.rss);
        let m = samples[samples.len() / 2];
        let max_hwm = samples.iter().map(|m| m.hwm).max().unwrap_or(0);
        println!(
            "  {name:<46} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8}",
            mib(m.rss),
            mib(m.anon),
            mib(m.file),
            mib(max_hwm),
            m.threads
        );
    };
    line(&format!("plugnode supervisor, {when}"), &mut supervisor);
    line("  its bitcoind (regtest-sim proxy)", &mut bitcoind);
}
