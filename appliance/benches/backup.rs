//! Backup figures (issue 4, "Figures"), measured on this machine in one run. Prints them;
//! asserts no timings. Needs root: the sticks are ext4 images on loop devices, mounted by
//! plugnode's own `DirectAccess` (nosuid, nodev, noexec, noatime, errors=remount-ro), as
//! the end-to-end tests do (`tests/common/stick.rs`).
//!
//! The SD card's stand-in is this machine's disk: the primary stores live in the bench's
//! temporary directory, on the same file system as the tests' temp dirs (the bench prints
//! which). Each stick is an image file in that directory, on a loop device.
//!
//! 1. **Store write latency** (`store`): the writes two real plugnode nodes make for a
//!    payment (sender and receiver: channel manager, monitor updates, monitors, event
//!    queue, payment records …, with their real keys and sizes, recorded from the
//!    channel store's update stream) are replayed, write by write, into three
//!    `ChannelStore`s on the disk: *SD card only*, *+ mirror on the stick* (a
//!    `MirrorWriter` journal on a mounted ext4 loop stick, as keep-attached mode runs it),
//!    and *+ mirror on tmpfs* (the same journal in `/dev/shm`: the mirror's encryption and
//!    thread hand-off without any device sync). The three take turns on every write (order
//!    rotating), so load from other programs falls on all of them alike. Median and p99
//!    per kind of write and overall, and the durable time a payment spends in its writes.
//!    The writes are recorded on figure 2's no-stick pair (1 channel) after its warm-up,
//!    and go through `KVStoreSync::write`, the store's own path (ldk-node's async calls
//!    add the same hop to the blocking pool with or without a stick). Last, one 4 KiB
//!    append + `fdatasync` on each device alone, to scale the figures to a card or stick.
//! 2. **Payments per second** (`payments`): plugnode's `LightningHandle` on both sides
//!    (each box on its own tokio runtime, as in `plugnode run`; the same pair as the
//!    lightning bench's "plugnode → plugnode"), paying 1,000 sat invoices in sequence over
//!    one channel. Three pairs, interleaved in blocks of 50: no stick; a stick mirroring
//!    the sender; sticks mirroring both sides. Each stick is attached through plugnode's
//!    real backup service (`BackupHandle`: sysfs scan with the stick in
//!    `backup.extra_devices`, `DirectAccess`, a snapshot, then the live journal, its 5 s
//!    limit, its health checks every 2 s) before the channel is opened. Latency from the
//!    pay call to the known outcome; payments per second over the whole sequence
//!    (invoice + payment). At the end the stick's newest copy must hold the store's
//!    generation (read from the clear headers on the stick, like the tests'
//!    `wait_in_sync`).
//!    Why the in-process handle rather than a `plugnode run` box: the mirror sits in the
//!    channel store under the handle, and that path (ChannelStore → MirrorWriter → journal
//!    thread → sync on the stick) is the same code in both; the web layer would add the
//!    same HTTP, JSON and auth work to both columns and blur the difference; pairs in one
//!    process can take turns block by block; and the figures line up with the lightning
//!    bench's. Only the mount differs from the image (root helper there, direct here), and
//!    mounting is not on the payment path.
//! 3. **Stick in → "safe to remove"** (`snapshot`): a real `plugnode run` (this build's
//!    binary) in snapshot mode, with channels to ldk-node peers in this process (as the
//!    lightning bench's memory figure builds it) and payments over each. The stick is
//!    plugged in by creating the symlink named in `backup.extra_devices`, as the tests do;
//!    from that moment `/api/status` is polled every 10 ms until `backup.state` says
//!    `safe_to_remove`. The box's log splits it into detection (the service looks every
//!    2 s; the insertions are spread over that period) and the work (fsck, mount,
//!    snapshot, read back, verify, unmount). Several insertions, with a payment over each
//!    channel between them. Also the snapshot's size on the stick and the store's, key by
//!    key (a 10-channel node's channel manager and monitors).
//!
//! Run it as root (a release-profile build: `cargo bench` uses the `bench` profile, which
//! inherits the root `[profile.release]`, fat LTO; the `plugnode` binary of figure 3 is
//! built with it too). On 2 cores the first build takes ~20 min, the run ~10 min; build
//! niced, run the measurement itself at normal priority:
//!
//! ```sh
//! nice -n 10 cargo bench -p plugnode --bench backup --no-run
//! cargo bench -p plugnode --bench backup                     # everything
//! cargo bench -p plugnode --bench backup -- store payments   # figures 1 and 2
//! cargo bench -p plugnode --bench backup -- snapshot         # figure 3
//! ```
//!
//! Environment: `PLUGNODE_BENCH_PAYMENTS` (per pair, default 1000), `PLUGNODE_BENCH_WRITES`
//! (timed writes per store in figure 1, default 4000), `PLUGNODE_BENCH_CHANNELS` (figure 3,
//! default 10), `PLUGNODE_BENCH_INSERTIONS` (figure 3, default 5), `PLUGNODE_BENCH_KEEP=1`
//! keeps the working directory (logs of every node) and prints where it is.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::lightning::{Chain, LnBox, LN_TIMEOUT};
use common::stick::LoopStick;
use common::{wait_for, TestConfig};
use ldk_node::lightning::util::persist::KVStoreSync;
use plugnode::backup::copies::{self, Identity};
use plugnode::backup::mirror::MirrorWriter;
use plugnode::backup::mount::{DirectAccess, StickAccess};
use plugnode::backup::service::{BackupHandle, BackupSettings, StickSource};
use plugnode::backup::stick::StickDevice;
use plugnode::config::BackupMode;
use plugnode::lightning::store::{is_backed_up, Change, ChannelStore, Mirror};
use plugnode::lightning::{OpenChannel, Seed};
use plugnode::status::BackupState;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// Payments per pair before anything is recorded (route finding and scorer warm up).
const WARMUP_PAYMENTS: usize = 20;
/// Payments whose store writes are recorded for figure 1.
const TRACE_PAYMENTS: usize = 50;
/// Pairs take turns in blocks of this many payments.
const BLOCK: usize = 50;
/// Every test stick: an ext4 image of this size (sparse).
const STICK_MB: u32 = 256;
/// Channels of the figure-3 box to its peers.
const PEER_CHANNEL_SAT: u64 = 1_000_000;
/// Payments the figure-3 box makes over each channel before the first insertion.
const PAYMENTS_PER_PEER: usize = 10;

fn main() {
    let wanted = Wanted::from_args();
    let want = |name: &str| wanted.has(name);
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the backup bench mounts ext4 images on loop devices, as the backup tests do: \
             run it as root"
        );
        std::process::exit(2);
    }
    let payments = env_usize("PLUGNODE_BENCH_PAYMENTS", 1000).max(1);
    let writes = env_usize("PLUGNODE_BENCH_WRITES", 4000).max(1);
    let channels = env_usize("PLUGNODE_BENCH_CHANNELS", 10).max(1);
    let insertions = env_usize("PLUGNODE_BENCH_INSERTIONS", 5).max(1);

    let work = tempfile::Builder::new()
        .prefix("plugnode-bench-backup-")
        .tempdir()
        .expect("a temporary directory");
    let dir = work.path().to_path_buf();
    let log = init_logging(&dir);

    print_machine("plugnode backup figures");
    let (source, fstype) = file_system_of(&dir);
    println!(
        "  SD card:   stand-in: {} on {source} ({fstype}), the tests' temp-dir file system",
        dir.display()
    );
    println!(
        "  sticks:    ext4 images of {STICK_MB} MiB (files in that directory) on loop devices, \
         mounted by plugnode's DirectAccess"
    );
    let chain = Chain::start(&dir);
    let cookie = RpcCookie::read(&chain);

    if want("store") || want("payments") {
        store_and_payment_figures(
            &dir,
            &chain,
            &cookie,
            want("payments").then_some(payments),
            want("store").then_some(writes),
            &log,
        );
    }
    if want("snapshot") {
        snapshot_figures(&dir, &chain, &cookie, channels, insertions);
    }
    finish(work);
}

/// The device and type of the file system holding `path` (longest mount point above it).
fn file_system_of(path: &Path) -> (String, String) {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String, String)> = None;
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4) else { continue };
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(fstype), Some(source)) = (fields.get(dash + 1), fields.get(dash + 2)) else {
            continue;
        };
        if path.starts_with(point) && best.as_ref().is_none_or(|b| point.len() >= b.0) {
            best = Some((point.len(), source.to_string(), fstype.to_string()));
        }
    }
    best.map(|(_, s, t)| (s, t))
        .unwrap_or_else(|| ("?".into(), "?".into()))
}

/// Whether a loop device does direct I/O on its image (`losetup --direct-io`).
fn loop_direct_io(device: &Path) -> String {
    let real = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match read_trimmed(&format!("/sys/block/{name}/loop/dio")).as_str() {
        "1" => "direct I/O".into(),
        "0" => "buffered: a sync on the stick ends in an fsync of its image file".into(),
        other => format!("dio {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// In-process boxes with sticks

/// A stick plugnode's backup service mirrors to.
struct AttachedStick {
    /// Plugged in while the box runs; unmounted and detached when dropped.
    _stick: LoopStick,
    mount_dir: PathBuf,
    backup: BackupHandle,
}

/// A plugnode Lightning service, with or without a stick in keep-attached mode.
struct Side {
    plug: PlugBox,
    stick: Option<AttachedStick>,
}

impl Side {
    fn start(dir: &Path, rpc: &RpcCookie, with_stick: bool) -> Side {
        let plug = PlugBox::start(dir, rpc);
        let stick = with_stick.then(|| attach_stick(&plug, dir));
        Side { plug, stick }
    }

    fn store(&self) -> &ChannelStore {
        self.plug.handle.store()
    }

    fn backup_state(&self) -> BackupState {
        self.plug.status.snapshot().backup.state
    }

    /// Stops in `plugnode run`'s order: the Lightning node, then the backup's final flush.
    fn stop(self) {
        let runtime = &self.plug.runtime;
        runtime.block_on(self.plug.handle.stop());
        if let Some(stick) = &self.stick {
            runtime.block_on(stick.backup.stop());
        }
        self.plug.runtime.shutdown_timeout(Duration::from_secs(10));
        drop(self.stick);
    }
}

/// Plugs a fresh ext4 stick into `plug`'s box and starts plugnode's backup service on it,
/// set up as `plugnode run` sets it up as root; returns once it mirrors.
fn attach_stick(plug: &PlugBox, dir: &Path) -> AttachedStick {
    let stick = LoopStick::ext4(dir, "stick", STICK_MB, &[]);
    stick.plug_in();
    let mount_dir = dir.join("mnt");
    let settings = BackupSettings {
        enabled: true,
        mode: BackupMode::KeepAttached,
        source: StickSource::Sysfs {
            root: "/sys".into(),
            extra_devices: vec![stick.link.clone()],
        },
        access: Ok(Arc::new(DirectAccess::new(mount_dir.clone()))),
        secrets_dir: dir.join("secrets"),
        history_file: dir.join("backup-history.json"),
        poll_every: Duration::from_secs(2),
        mirror_timeout: MirrorWriter::TIMEOUT,
    };
    let backup = {
        let _context = plug.runtime.enter();
        BackupHandle::spawn(settings, plug.status.clone(), plug.handle.clone())
    };
    wait_for("the stick to mirror", LN_TIMEOUT, || {
        match plug.status.snapshot().backup.state {
            BackupState::Mirroring => Some(()),
            BackupState::Failed { message } => panic!("the stick failed: {message}"),
            _ => None,
        }
    });
    AttachedStick {
        _stick: stick,
        mount_dir,
        backup,
    }
}

/// One sender/receiver pair and what was measured on it.
struct Pair {
    name: &'static str,
    sender: Side,
    receiver: Side,
    /// Payments tried over the channel so far.
    made: usize,
    latencies: Vec<Duration>,
    /// Whole sequence: invoice + payment.
    wall: Duration,
    failures: Vec<String>,
    /// Store generations (durable updates) at the start of the measured payments.
    generations_before: (u64, u64),
}

impl Pair {
    /// `count` payments in sequence; measured ones are recorded.
    fn run(&mut self, count: usize, record: bool) {
        let (s, r) = (&self.sender.plug, &self.receiver.plug);
        let start = Instant::now();
        for _ in 0..count {
            self.made += 1;
            let invoice = r
                .runtime
                .block_on(r.handle.create_invoice(Some(AMOUNT_MSAT), "bench", 3600))
                .expect("an invoice");
            let t = Instant::now();
            let result = s
                .runtime
                .block_on(s.handle.pay(&invoice.bolt11, None, None, None));
            let elapsed = t.elapsed();
            match result {
                Ok(p) if p.status == "succeeded" => {
                    if record {
                        self.latencies.push(elapsed);
                    }
                }
                Ok(p) => self.failures.push(format!("payment {}", p.status)),
                Err(e) => self.failures.push(e.to_string()),
            }
        }
        if record {
            self.wall += start.elapsed();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The store's update stream, recorded

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Role {
    Sender,
    Receiver,
}

/// One update as the store committed it: a write (with its size) or a removal.
#[derive(Clone, Debug)]
struct Op {
    role: Role,
    primary: String,
    secondary: String,
    key: String,
    /// `None`: a removal.
    size: Option<usize>,
}

impl Op {
    fn kind(&self) -> &'static str {
        kind_of(&self.primary, &self.key)
    }
}

/// What a key holds, in words.
fn kind_of(primary: &str, key: &str) -> &'static str {
    match (primary, key) {
        ("", "manager") => "channel manager",
        ("", "events") => "event queue",
        ("", "peers") => "peer list",
        ("", "node_metrics") => "node metrics",
        ("", "output_sweeper") => "output sweeper",
        ("", "network_graph") => "network graph (not backed up)",
        ("", "scorer") => "scorer (not backed up)",
        ("", "external_pathfinding_scores_cache") => "pathfinding scores (not backed up)",
        ("monitors", _) => "channel monitor (full)",
        ("monitor_updates", _) => "monitor update",
        ("archived_monitors", _) => "archived monitor",
        ("payments", _) => "payment record",
        ("bdk_wallet", _) => "on-chain wallet (BDK)",
        ("", _) => "other top-level key",
        _ => "other",
    }
}

/// Records every update a store commits, in generation order (attached where the stick
/// would be, for the recorded payments only).
struct Recorder {
    role: Role,
    ops: Mutex<Vec<Op>>,
}

impl Mirror for Recorder {
    fn record(&self, _generation: u64, change: &Change) -> Result<(), String> {
        let op = match change {
            Change::Write(entry) => Op {
                role: self.role,
                primary: entry.primary_namespace.clone(),
                secondary: entry.secondary_namespace.clone(),
                key: entry.key.clone(),
                size: Some(entry.value.len()),
            },
            Change::Remove {
                primary_namespace,
                secondary_namespace,
                key,
            } => Op {
                role: self.role,
                primary: primary_namespace.clone(),
                secondary: secondary_namespace.clone(),
                key: key.clone(),
                size: None,
            },
        };
        self.ops.lock().unwrap().push(op);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Figures 1 and 2

fn store_and_payment_figures(
    dir: &Path,
    chain: &Chain,
    rpc: &RpcCookie,
    // Payments per pair for figure 2, writes per store for figure 1: `None` skips it.
    payments: Option<usize>,
    writes: Option<usize>,
    log: &Path,
) {
    let (want_payments, want_store) = (payments.is_some(), writes.is_some());
    let (payments, writes) = (payments.unwrap_or(0), writes.unwrap_or(0));
    let setup_started = Instant::now();
    let d = |name: &str| dir.join(name);
    let pair = |name, sender, receiver| Pair {
        name,
        sender,
        receiver,
        made: 0,
        latencies: Vec::new(),
        wall: Duration::ZERO,
        failures: Vec::new(),
        generations_before: (0, 0),
    };
    let mut pairs = vec![pair(
        "no stick",
        Side::start(&d("none-a"), rpc, false),
        Side::start(&d("none-b"), rpc, false),
    )];
    if want_payments {
        pairs.push(pair(
            "stick on the sender",
            Side::start(&d("sender-a"), rpc, true),
            Side::start(&d("sender-b"), rpc, false),
        ));
        pairs.push(pair(
            "sticks on both sides",
            Side::start(&d("both-a"), rpc, true),
            Side::start(&d("both-b"), rpc, true),
        ));
    }

    // Fund each sender with a coinbase, open one channel per pair, confirm.
    let total = if want_payments { payments } else { 0 };
    let needed_msat = (total + WARMUP_PAYMENTS + 2 * TRACE_PAYMENTS) as u64 * AMOUNT_MSAT;
    let channel_sat = (needed_msat / 1000 * 12 / 10 + 100_000).clamp(2_000_000, 16_000_000);
    for pair in &pairs {
        chain.mine_to(1, &pair.sender.plug.new_address());
    }
    chain.mine(100);
    for pair in &pairs {
        wait_for("the sender's coinbase", LN_TIMEOUT, || {
            (pair.sender.plug.spendable_sat() > channel_sat).then_some(())
        });
    }
    for pair in &pairs {
        let (s, r) = (&pair.sender.plug, &pair.receiver.plug);
        s.runtime
            .block_on(s.handle.open_channel(OpenChannel {
                node_id: r.node_id(),
                address: r.address(),
                amount_sat: channel_sat,
                push_msat: 0,
                public: false,
            }))
            .expect("the channel opens");
    }
    wait_for("the funding transactions", LN_TIMEOUT, || {
        (chain.mempool_size() >= pairs.len()).then_some(())
    });
    chain.mine(6);
    for pair in &pairs {
        wait_for("the channel to be usable", LN_TIMEOUT, || {
            (pair.sender.plug.usable() && pair.receiver.plug.usable()).then_some(())
        });
    }
    for pair in &mut pairs {
        pair.run(WARMUP_PAYMENTS, false);
    }

    // The writes of real payments, for figure 1, on the no-stick pair: a young channel now
    // (the other pairs make as many payments, so every node has the same history), and the
    // same channel again after figure 2's payments.
    let mut traces = Vec::new();
    if want_store {
        let first = pairs[0].made + 1;
        let trace = record_trace(&mut pairs[0], TRACE_PAYMENTS);
        for pair in pairs.iter_mut().skip(1) {
            pair.run(TRACE_PAYMENTS, false);
        }
        traces.push((first, trace));
    }
    let setup = setup_started.elapsed();
    let payment_report =
        want_payments.then(|| payment_figures(&mut pairs, payments, setup, channel_sat, log));
    if want_store {
        let first = pairs[0].made + 1;
        let trace = record_trace(&mut pairs[0], TRACE_PAYMENTS);
        traces.push((first, trace));
        let sizes = store_sizes(&pairs[0]);
        store_figures(dir, &traces, writes, &sizes);
    }
    if let Some(report) = payment_report {
        print!("{report}");
    }
    for pair in pairs {
        pair.sender.stop();
        pair.receiver.stop();
    }
}

/// The store updates both sides of `pair` commit during `count` payments.
fn record_trace(pair: &mut Pair, count: usize) -> Vec<Op> {
    let recorders = [Role::Sender, Role::Receiver].map(|role| {
        Arc::new(Recorder {
            role,
            ops: Mutex::new(Vec::new()),
        })
    });
    pair.sender.store().attach_mirror(recorders[0].clone());
    pair.receiver.store().attach_mirror(recorders[1].clone());
    pair.run(count, false);
    pair.sender.store().detach_mirror();
    pair.receiver.store().detach_mirror();
    recorders
        .iter()
        .flat_map(|r| r.ops.lock().unwrap().clone())
        .collect()
}

/// The sizes of the big keys of a pair's stores now, in words.
fn store_sizes(pair: &Pair) -> String {
    let of = |side: &Side| {
        let store = side.store();
        let manager = KVStoreSync::read(store, "", "", "manager")
            .map(|v| v.len())
            .unwrap_or(0);
        let monitors: usize = KVStoreSync::list(store, "monitors", "")
            .unwrap_or_default()
            .iter()
            .filter_map(|key| KVStoreSync::read(store, "monitors", "", key).ok())
            .map(|v| v.len())
            .max()
            .unwrap_or(0);
        format!(
            "channel manager {}, monitor {}",
            human(manager as u64),
            human(monitors as u64)
        )
    };
    format!(
        "sender: {}; receiver: {}",
        of(&pair.sender),
        of(&pair.receiver)
    )
}

/// A store with a live mirror to `backup_dir`, started as the backup service starts one: a
/// snapshot at the store's generation, then the journal, while no update can slip in.
fn mirror_to(
    store: &ChannelStore,
    backup_dir: &Path,
    identity: &Identity,
    mount_point: Option<PathBuf>,
) -> Arc<MirrorWriter> {
    store
        .snapshot_then(|generation, entries| {
            copies::write_snapshot(
                backup_dir,
                identity,
                generation,
                plugnode::status::unix_now(),
                entries,
                1,
            )?;
            let writer = MirrorWriter::start(
                backup_dir,
                identity.clone(),
                generation,
                mount_point,
                MirrorWriter::TIMEOUT,
            )?;
            store.attach_mirror(writer.clone());
            Ok::<_, std::io::Error>(writer)
        })
        .expect("the store reads")
        .expect("the mirror starts")
}

/// Bytes that do not compress or repeat (the stores do not care; the cipher does not either).
fn filler(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The three stores of figure 1, where the SD card would be.
struct Stores {
    only: ChannelStore,
    on_stick: ChannelStore,
    on_tmpfs: ChannelStore,
}

impl Stores {
    const NAMES: [&'static str; 3] = ["SD card only", "+ stick mirror", "+ tmpfs mirror"];

    fn all(&self) -> [&ChannelStore; 3] {
        [&self.only, &self.on_stick, &self.on_tmpfs]
    }

    fn apply(&self, store: usize, op: &Op, value: Option<Vec<u8>>) {
        let store = self.all()[store];
        match value {
            Some(value) => KVStoreSync::write(store, &op.primary, &op.secondary, &op.key, value)
                .expect("a write"),
            // Removals reach the store's update stream only when committed: LDK's lazy
            // removals of old monitor updates, riding with the next write, as in the node.
            None => KVStoreSync::remove(store, &op.primary, &op.secondary, &op.key, true)
                .expect("a removal"),
        }
    }
}

/// Timed writes: for each store, (index of the op in its trace, latency).
type Samples = [Vec<(usize, Duration)>; 3];

fn store_figures(dir: &Path, traces: &[(usize, Vec<Op>)], writes: usize, sizes_now: &str) {
    println!(
        "\n== 1. Channel-store write latency: SD card only vs SD card + live mirror on the stick"
    );
    let sd = dir.join("sd-card");
    let open = |name: &str| ChannelStore::open(&sd.join(name)).expect("a store");
    let stores = Stores {
        only: open("primary-only"),
        on_stick: open("mirror-stick"),
        on_tmpfs: open("mirror-tmpfs"),
    };
    // The stick, mounted as plugnode mounts it.
    let stick = LoopStick::ext4(dir, "store-stick", STICK_MB, &[]);
    let mount_point = dir.join("store-stick-mnt");
    let access = DirectAccess::new(mount_point.clone());
    let device = StickDevice {
        name: "store-stick".into(),
        path: stick.device(),
        description: "bench".into(),
        size_bytes: u64::from(STICK_MB) * 1024 * 1024,
        is_folder: false,
    };
    let stick_dir = access.mount(&device).expect("the stick mounts");
    let shm = tempfile::Builder::new()
        .prefix("plugnode-bench-")
        .tempdir_in("/dev/shm")
        .expect("a folder in /dev/shm");
    let identity = Identity::from_seed(&Seed::generate());
    let stick_writer = mirror_to(
        &stores.on_stick,
        &stick_dir,
        &identity,
        Some(mount_point.clone()),
    );
    let tmpfs_writer = mirror_to(&stores.on_tmpfs, shm.path(), &identity, None);
    println!(
        "  stores: {} (SQLite WAL, synchronous=FULL); mirrors: plugnode's MirrorWriter \
         (XChaCha20-Poly1305 record, append, fdatasync) on the stick {} ({}), ext4 at {}, and \
         in /dev/shm",
        sd.display(),
        stick.device().display(),
        loop_direct_io(&stick.device()),
        mount_point.display()
    );
    println!(
        "  each row: the writes two plugnode nodes committed during {TRACE_PAYMENTS} payments \
         over their channel (sender and receiver, real keys and sizes), replayed: at least \
         {writes} timed writes per store and the whole stream once, the three stores taking \
         turns on every write (order rotating)"
    );

    for (n, (first, trace)) in traces.iter().enumerate() {
        let what = if n == 0 {
            "a young channel".to_string()
        } else {
            format!("the same channel later, its big keys now: {sizes_now}")
        };
        println!(
            "\n  {}) payments {first}–{} of the channel's life ({what})",
            (b'a' + n as u8) as char,
            first + TRACE_PAYMENTS - 1
        );
        let samples = replay(&stores, trace, writes);
        print_replay(trace, &samples);
    }

    println!(
        "\n  {}) one key rewritten, by size alone",
        (b'a' + traces.len() as u8) as char
    );
    by_size(&stores);

    let mirrors_ok = stores.on_stick.has_mirror()
        && stores.on_tmpfs.has_mirror()
        && stick_writer.failure().is_none()
        && tmpfs_writer.failure().is_none();
    println!(
        "  mirrors attached to the end: {}",
        if mirrors_ok {
            "yes"
        } else {
            "NO (a mirror failed)"
        }
    );
    stores.on_stick.detach_mirror();
    stores.on_tmpfs.detach_mirror();
    stick_writer.close();
    tmpfs_writer.close();

    // The devices alone, to scale the figures to another SD card or stick.
    let [disk, stick_sync] = sync_costs([&sd, &stick_dir], 300);
    println!(
        "  the devices alone (4 KiB append + fdatasync, 300 each, interleaved): this disk p50 \
         {:.0} µs, p99 {:.0} µs; the stick p50 {:.0} µs, p99 {:.0} µs",
        us(disk.0),
        us(disk.1),
        us(stick_sync.0),
        us(stick_sync.1)
    );
    println!(
        "  on the box, a mirrored write syncs the SD card (SQLite's WAL), then the stick (the \
         journal), one after the other: its latency is the card's sync plus the stick's"
    );
    let _ = access.unmount(&device);
}

/// Replays `trace` until `writes` writes (at least the whole trace) were timed in each
/// store, after one untimed pass.
fn replay(stores: &Stores, trace: &[Op], writes: usize) -> Samples {
    let writes = writes.max(trace.iter().filter(|o| o.size.is_some()).count());
    for op in trace {
        for s in 0..3 {
            stores.apply(s, op, op.size.map(|size| filler(size, 1)));
        }
    }
    let mut samples: Samples = Default::default();
    let mut timed = 0;
    let mut i = 0;
    while timed < writes {
        let index = i % trace.len();
        let op = &trace[index];
        i += 1;
        let Some(size) = op.size else {
            for s in 0..3 {
                stores.apply(s, op, None);
            }
            continue;
        };
        let value = filler(size, i as u64);
        for turn in 0..3 {
            let s = (timed + turn) % 3;
            let value = value.clone();
            let t = Instant::now();
            stores.apply(s, op, Some(value));
            samples[s].push((index, t.elapsed()));
        }
        timed += 1;
    }
    samples
}

fn print_replay(trace: &[Op], samples: &Samples) {
    let payments = TRACE_PAYMENTS as f64;
    let mut kinds: Vec<&'static str> = trace.iter().map(Op::kind).collect();
    kinds.sort();
    kinds.dedup();
    println!(
        "  {:<24} {:>11} {:>16} {:>6} {:>17} {:>17} {:>17}",
        "write",
        "per payment",
        "size, bytes",
        "n",
        Stores::NAMES[0],
        Stores::NAMES[1],
        Stores::NAMES[2]
    );
    println!(
        "  {:<24} {:>5} {:>5} {:>16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "",
        "send",
        "recv",
        "median (max)",
        "",
        "p50 µs",
        "p99 µs",
        "p50 µs",
        "p99 µs",
        "p50 µs",
        "p99 µs"
    );
    let per_payment = |ops: &[&Op], role: Role, write: bool| {
        ops.iter()
            .filter(|o| o.role == role && o.size.is_some() == write)
            .count() as f64
            / payments
    };
    let size_cell = |sizes: &mut Vec<usize>| {
        sizes.sort();
        format!("{} ({})", sizes[sizes.len() / 2], sizes[sizes.len() - 1])
    };
    // Mean latency per kind and store, for the durable time per payment.
    let mut mean_of: BTreeMap<(usize, &'static str), Duration> = BTreeMap::new();
    let row = |name: &str, ops: &[&Op], filter: &dyn Fn(&Op) -> bool| -> (String, usize) {
        let mut cells = String::new();
        let mut n = 0;
        for column in samples {
            let list: Vec<Duration> = column
                .iter()
                .filter(|(index, _)| filter(&trace[*index]))
                .map(|(_, d)| *d)
                .collect();
            n = list.len();
            let s = Summary::of(&list, Duration::ZERO);
            cells += &format!(" {:>8.0} {:>8.0}", us(s.p50), us(s.p99));
        }
        let mut sizes: Vec<usize> = ops.iter().filter_map(|o| o.size).collect();
        (
            format!(
                "  {:<24} {:>5.2} {:>5.2} {:>16} {n:>6}{cells}",
                name,
                per_payment(ops, Role::Sender, true),
                per_payment(ops, Role::Receiver, true),
                size_cell(&mut sizes)
            ),
            n,
        )
    };
    for kind in &kinds {
        let ops: Vec<&Op> = trace.iter().filter(|o| o.kind() == *kind).collect();
        if ops.iter().any(|o| o.size.is_some()) {
            let (line, _) = row(kind, &ops, &|o: &Op| o.kind() == *kind);
            println!("{line}");
            for (s, column) in samples.iter().enumerate() {
                let list: Vec<Duration> = column
                    .iter()
                    .filter(|(index, _)| trace[*index].kind() == *kind)
                    .map(|(_, d)| *d)
                    .collect();
                mean_of.insert((s, *kind), Summary::of(&list, Duration::ZERO).mean);
            }
        }
        let removed = (
            per_payment(&ops, Role::Sender, false),
            per_payment(&ops, Role::Receiver, false),
        );
        if removed.0 + removed.1 > 0.0 {
            println!(
                "  {:<24} {:>5.2} {:>5.2} {:>16}",
                format!("{kind} removed"),
                removed.0,
                removed.1,
                "(lazy: rides with the next write)"
            );
        }
    }
    let all: Vec<&Op> = trace.iter().collect();
    let (line, _) = row("ALL WRITES", &all, &|_| true);
    println!("{line}");
    println!(
        "  (n: samples per store; network graph and scorer writes, kept on the SD card but not \
         backed up, are not in the stream: they cost the same with or without a stick)"
    );
    // The durable time of one payment's writes, side by side.
    for role in [Role::Sender, Role::Receiver] {
        let total = |s: usize| {
            trace
                .iter()
                .filter(|o| o.role == role && o.size.is_some())
                .map(|o| ms(mean_of[&(s, o.kind())]))
                .sum::<f64>()
                / payments
        };
        println!(
            "  time in one payment's writes (means), {:<9} {:>6.2} ms SD card only, {:>6.2} ms \
             with the stick ({:.2}x), {:>6.2} ms with tmpfs",
            match role {
                Role::Sender => "sender:",
                Role::Receiver => "receiver:",
            },
            total(0),
            total(1),
            total(1) / total(0),
            total(2)
        );
    }
    let overall: Vec<Summary> = samples
        .iter()
        .map(|column| {
            let list: Vec<Duration> = column.iter().map(|(_, d)| *d).collect();
            Summary::of(&list, Duration::ZERO)
        })
        .collect();
    println!(
        "  the stick adds per write: {:.0} µs at the median ({:.0} µs of it the mirror's CPU and \
         hand-off: the tmpfs column), {:.0} µs at p99",
        us(overall[1].p50.saturating_sub(overall[0].p50)),
        us(overall[2].p50.saturating_sub(overall[0].p50)),
        us(overall[1].p99.saturating_sub(overall[0].p99))
    );
}

/// One key rewritten at fixed sizes: how the cost grows with the value.
fn by_size(stores: &Stores) {
    const ROUNDS: usize = 200;
    let sizes = [256usize, 4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024];
    println!(
        "  {:<24} {:>6} {:>17} {:>17} {:>17}",
        "value size (p50, p99 µs)",
        "n",
        Stores::NAMES[0],
        Stores::NAMES[1],
        Stores::NAMES[2]
    );
    let mut samples: Vec<[Vec<Duration>; 3]> = vec![Default::default(); sizes.len()];
    for round in 0..ROUNDS {
        for (z, size) in sizes.iter().enumerate() {
            let op = Op {
                role: Role::Sender,
                primary: "size_probe".into(),
                secondary: String::new(),
                key: size.to_string(),
                size: Some(*size),
            };
            let value = filler(*size, round as u64);
            for turn in 0..3 {
                let s = (round + z + turn) % 3;
                let value = value.clone();
                let t = Instant::now();
                stores.apply(s, &op, Some(value));
                samples[z][s].push(t.elapsed());
            }
        }
    }
    for (z, size) in sizes.iter().enumerate() {
        let mut cells = String::new();
        for list in &samples[z] {
            let s = Summary::of(list, Duration::ZERO);
            cells += &format!(" {:>8.0} {:>8.0}", us(s.p50), us(s.p99));
        }
        println!(
            "  {:<24} {:>6}{cells}",
            match size {
                s if *s < 1024 => format!("{s} B"),
                s => format!("{} KiB", s / 1024),
            },
            ROUNDS
        );
    }
}

/// Median and p99 of one 4 KiB append + `fdatasync` in each folder, taking turns.
fn sync_costs(dirs: [&Path; 2], rounds: usize) -> [(Duration, Duration); 2] {
    use std::io::Write;
    let paths = dirs.map(|d| d.join("sync-probe"));
    let mut files = paths.clone().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("a probe file")
    });
    let block = vec![7u8; 4096];
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for turn in 0..2 {
            let f = (round + turn) % 2;
            let t = Instant::now();
            files[f].write_all(&block).expect("an append");
            files[f].sync_data().expect("a sync");
            samples[f].push(t.elapsed());
        }
    }
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
    samples.map(|list| {
        let s = Summary::of(&list, Duration::ZERO);
        (s.p50, s.p99)
    })
}

/// How many lines of the bench's log (every in-process node's) contain `needle`.
fn log_count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn payment_figures(
    pairs: &mut [Pair],
    payments: usize,
    setup: Duration,
    channel_sat: u64,
    log: &Path,
) -> String {
    // Printed after figure 1, which replays writes recorded after these payments.
    use std::fmt::Write;
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {
            writeln!(out, $($arg)*).unwrap()
        };
    }
    say!(
        "\n== 2. Payments A→B over one channel, plugnode's LightningHandle on both sides: \
         without and with the stick mirror (keep-attached)"
    );
    say!(
        "  setup (6 boxes, 3 sticks through plugnode's backup service, 3 channels of \
         {channel_sat} sat, warm-up, figure 1's recorded payments): {setup:.1?}"
    );
    for pair in pairs.iter_mut() {
        pair.generations_before = (
            pair.sender.store().generation(),
            pair.receiver.store().generation(),
        );
    }
    // The store logs every write a stick missed; the backup service every journal folded
    // into a new snapshot (past 32 MiB).
    const MISSED: &str = "the backup stick missed update";
    const FOLDED: &str = "folding the journal";
    let before = (log_count(log, MISSED), log_count(log, FOLDED));
    let mut done = 0;
    while done < payments {
        let count = BLOCK.min(payments - done);
        for pair in pairs.iter_mut() {
            pair.run(count, true);
        }
        done += count;
    }
    say!(
        "  {payments} payments of {} sat per pair (after {WARMUP_PAYMENTS} warm-up payments), in \
         sequence, pairs interleaved in blocks of {BLOCK}",
        AMOUNT_MSAT / 1000
    );
    say!(
        "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>13}",
        "pair (A → B)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "mean ms",
        "paid/s",
        "failed",
        "updates A/B"
    );
    let mut summaries = Vec::new();
    for pair in pairs.iter() {
        let s = Summary::of(&pair.latencies, pair.wall);
        let updates = (
            (pair.sender.store().generation() - pair.generations_before.0) as f64 / payments as f64,
            (pair.receiver.store().generation() - pair.generations_before.1) as f64
                / payments as f64,
        );
        say!(
            "  {:<22} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.2} {:>7} {:>13}",
            pair.name,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max),
            ms(s.mean),
            s.per_sec,
            pair.failures.len(),
            format!("{:.1} / {:.1}", updates.0, updates.1)
        );
        summaries.push(s);
    }
    say!(
        "  (\"updates\": durable store updates per payment, by the store's generation; with a \
         stick each one is also an encrypted append synced on the stick before the write returns)"
    );
    say!("  cost of the mirror, with ÷ without (target: under 2x):");
    say!(
        "  {:<34} {:>7} {:>7} {:>7} {:>18}",
        "",
        "p50",
        "p99",
        "mean",
        "time per payment"
    );
    for (i, summary) in summaries.iter().enumerate().skip(1) {
        let base = &summaries[0];
        say!(
            "  {:<34} {:>6.2}x {:>6.2}x {:>6.2}x {:>17.2}x",
            format!("{} vs no stick", pairs[i].name),
            ms(summary.p50) / ms(base.p50),
            ms(summary.p99) / ms(base.p99),
            ms(summary.mean) / ms(base.mean),
            base.per_sec / summary.per_sec
        );
    }
    for pair in pairs.iter() {
        if let Some(first) = pair.failures.first() {
            say!(
                "  {}: {} failed payment(s), first: {first}",
                pair.name,
                pair.failures.len()
            );
        }
    }

    say!(
        "  during the measured payments: {} write(s) the sticks missed (each drops the mirror \
         until a resync), {} journal(s) folded into a new snapshot (past 32 MiB)",
        log_count(log, MISSED) - before.0,
        log_count(log, FOLDED) - before.1
    );
    // Does each stick hold what the SD card holds?
    say!("  at the end, each stick against its box's store (newest copy's clear header):");
    for pair in pairs.iter() {
        for (role, side) in [("A", &pair.sender), ("B", &pair.receiver)] {
            let Some(stick) = &side.stick else { continue };
            let backup_dir = stick.mount_dir.join("plugnode-backup");
            let mut last = (0, None);
            let in_sync = (0..100).find_map(|_| {
                let primary = side.store().generation();
                let on_stick = copies::find_copies(&backup_dir)
                    .first()
                    .map(|c| c.generation);
                last = (primary, on_stick);
                std::thread::sleep(Duration::from_millis(300));
                (on_stick == Some(primary) && side.store().generation() == primary)
                    .then_some(primary)
            });
            let journal = copies::find_copies(&backup_dir)
                .first()
                .and_then(|c| c.journal.clone())
                .and_then(|j| std::fs::metadata(j).ok())
                .map(|m| m.len())
                .unwrap_or(0);
            let state = match side.backup_state() {
                BackupState::Mirroring => "mirroring".to_string(),
                other => format!("{other:?}"),
            };
            match in_sync {
                Some(generation) => say!(
                    "    {:<22} {role}: generation {generation} on the SD card and on the stick: \
                     IN SYNC; state {state}; journal {:.1} MiB",
                    pair.name,
                    journal as f64 / 1024.0 / 1024.0
                ),
                None => say!(
                    "    {:<22} {role}: SD card {}, stick {:?}: NOT IN SYNC; state {state}",
                    pair.name,
                    last.0,
                    last.1
                ),
            }
        }
    }
    say!(
        "  the big keys after the run (no-stick pair): {}",
        store_sizes(&pairs[0])
    );
    out
}

// ---------------------------------------------------------------------------------------
// Figure 3: a real `plugnode run` in snapshot mode

/// Seconds since midnight (UTC) of a log line's RFC 3339 timestamp (tracing's format, its
/// colour codes included: the box logs to a file with them).
fn log_time_of_day(line: &str) -> Option<f64> {
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let stamp = plain.split_whitespace().next()?;
    let time = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn time_of_day(t: SystemTime) -> f64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_secs() % 86_400) as f64 + f64::from(since.subsec_nanos()) / 1e9
}

struct Insertion {
    generation: u64,
    total: Duration,
    /// From the symlink to the log's "plugged in" (the service's next look).
    detected: Option<f64>,
    /// From "plugged in" to "written, verified, unmounted".
    work: Option<f64>,
}

fn backup_state_name(status: &Value) -> &str {
    status["backup"]["state"]["state"].as_str().unwrap_or("")
}

fn snapshot_figures(
    dir: &Path,
    chain: &Chain,
    rpc: &RpcCookie,
    channels: usize,
    insertions: usize,
) {
    println!(
        "\n== 3. Snapshot mode: stick plugged in → \"safe to remove\", a `plugnode run` box with \
         {channels} channels"
    );
    let setup_started = Instant::now();
    let mut pumps = Pumps::start();
    let peers = bare_peers(dir, rpc, channels, &mut pumps);

    let stick = LoopStick::ext4(dir, "snapshot-stick", STICK_MB, &[("notes.txt", b"mine")]);
    let mut config = TestConfig::lightning_box(&dir.join("snapshot-box"), &chain.sim);
    config.backup = Some(("snapshot", stick.link.clone()));
    let data_dir = config.data_dir();
    let (ln, _words) = LnBox::start_with(config);
    ln.fund(chain);
    open_channels(&ln, chain, &peers, PEER_CHANNEL_SAT);
    let pay_each = |count: usize| {
        for _ in 0..count {
            for peer in &peers {
                let invoice = peer
                    .bolt11_payment()
                    .receive(AMOUNT_MSAT, &description(), 3600)
                    .unwrap()
                    .to_string();
                let (code, answer) = ln.pay(&invoice, None);
                assert_eq!(code, 200, "a payment: {answer}");
                assert_eq!(answer["status"], "succeeded", "{answer}");
            }
        }
    };
    pay_each(PAYMENTS_PER_PEER);
    println!(
        "  setup: wallet, {channels} channels of {PEER_CHANNEL_SAT} sat to {channels} ldk-node \
         peers in the bench process, {} payments through the web API: {:.1?}",
        channels * PAYMENTS_PER_PEER,
        setup_started.elapsed()
    );
    println!(
        "  stick: {} ({}), ext4; the box mounts it by itself (root: DirectAccess)",
        stick.device().display(),
        loop_direct_io(&stick.device())
    );

    let mut samples = Vec::new();
    for n in 0..insertions {
        if n > 0 {
            pay_each(1); // a newer state for each snapshot, as between a user's backups
        }
        ln.node.wait_status("no stick plugged in", |s| {
            backup_state_name(s) == "no_stick"
        });
        // The service looks every 2 s: the insertions are spread over that period, so the
        // detection wait takes its whole range (1 s on average), as a user's would.
        let phase = 2000 * n as u64 / insertions as u64;
        std::thread::sleep(Duration::from_millis(500 + phase));
        let log_before = ln.node.log().len();
        let wall = SystemTime::now();
        let started = Instant::now();
        stick.plug_in();
        let mut done = None;
        while started.elapsed() < LN_TIMEOUT {
            if let Some(status) = ln.node.status() {
                match backup_state_name(&status) {
                    "safe_to_remove" => {
                        done = Some((started.elapsed(), status));
                        break;
                    }
                    "failed" => panic!(
                        "the snapshot failed: {}\nlog:\n{}",
                        status["backup"]["state"],
                        ln.node.log()
                    ),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (total, status) = done.unwrap_or_else(|| {
            panic!(
                "no \"safe to remove\" within {LN_TIMEOUT:?}; log:\n{}",
                ln.node.log()
            )
        });
        let log = ln.node.log();
        let new = log.get(log_before..).unwrap_or("");
        let at = |needle: &str| {
            new.lines()
                .find(|l| l.contains(needle))
                .and_then(log_time_of_day)
        };
        let plugged = at("plugged in");
        let written = at("written, verified, unmounted");
        let start = time_of_day(wall);
        samples.push(Insertion {
            generation: status["backup"]["generation"].as_u64().unwrap_or(0),
            total,
            detected: plugged.map(|p| (p - start).rem_euclid(86_400.0)),
            work: plugged
                .zip(written)
                .map(|(p, w)| (w - p).rem_euclid(86_400.0)),
        });
        stick.take_out();
    }
    let store_generation = common::stick::primary_generation(&data_dir);

    println!(
        "  {:<10} {:>11} {:>13} {:>26} {:>22}",
        "insertion", "generation", "detected, s", "fsck+mount+write+verify+", "TOTAL, s (symlink →"
    );
    println!(
        "  {:<10} {:>11} {:>13} {:>26} {:>22}",
        "", "", "(2 s polls)", "unmount, s", "safe_to_remove)"
    );
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into());
    for (n, s) in samples.iter().enumerate() {
        println!(
            "  {:<10} {:>11} {:>13} {:>26} {:>22.3}",
            n + 1,
            s.generation,
            cell(s.detected),
            cell(s.work),
            secs(s.total)
        );
    }
    let sorted = |values: Vec<f64>| {
        let mut v = values;
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    };
    let columns = [
        sorted(samples.iter().filter_map(|s| s.detected).collect()),
        sorted(samples.iter().filter_map(|s| s.work).collect()),
        sorted(samples.iter().map(|s| secs(s.total)).collect()),
    ];
    for (name, pick) in [
        ("median", (|v: &[f64]| v[v.len() / 2]) as fn(&[f64]) -> f64),
        ("min", |v: &[f64]| v[0]),
        ("max", |v: &[f64]| v[v.len() - 1]),
    ] {
        let cell = |v: &Vec<f64>| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.3}", pick(v))
            }
        };
        println!(
            "  {:<10} {:>11} {:>13} {:>26} {:>22}",
            name,
            "",
            cell(&columns[0]),
            cell(&columns[1]),
            cell(&columns[2])
        );
    }
    println!(
        "  ({} insertions; status polled every 10 ms over the web API; detection and work from \
         the box's log timestamps; the last snapshot's generation {} the store's ({store_generation}))",
        samples.len(),
        if samples.last().map(|s| s.generation) == Some(store_generation) {
            "equals"
        } else {
            "DIFFERS FROM"
        }
    );

    // What is on the stick, and what is in the store.
    let look = dir.join("snapshot-look");
    stick.mount_at(&look, true);
    let mut files: Vec<(String, u64)> = Vec::new();
    if let Ok(nodes) = std::fs::read_dir(look.join("plugnode-backup")) {
        for node in nodes.flatten() {
            for file in std::fs::read_dir(node.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                files.push((file.file_name().to_string_lossy().into_owned(), len));
            }
        }
    }
    files.sort();
    let _ = std::process::Command::new("umount").arg(&look).status();
    let newest = files.last().map(|(_, len)| *len).unwrap_or(0);
    println!(
        "  on the stick: {} snapshot file(s) kept, the newest {} ({}); the owner's notes.txt \
         untouched",
        files.len(),
        human(newest),
        files.last().map(|(n, _)| n.as_str()).unwrap_or("-")
    );
    print_store_size(&data_dir.join("lightning"), newest);

    drop(ln);
    pumps.stop();
    for peer in peers {
        let _ = peer.stop();
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The store on the SD card: files, and what its keys hold (backed up or not).
fn print_store_size(lightning_dir: &Path, snapshot_bytes: u64) {
    let file = |suffix: &str| {
        std::fs::metadata(lightning_dir.join(format!("channels.sqlite{suffix}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    println!(
        "  the store on the SD card: channels.sqlite {} + WAL {} (SQLite pages, free space \
         included)",
        human(file("")),
        human(file("-wal"))
    );
    let connection = rusqlite::Connection::open_with_flags(
        lightning_dir.join("channels.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens read-only");
    let mut statement = connection
        .prepare("SELECT primary_namespace, key, length(value) FROM kv")
        .unwrap();
    let rows: Vec<(String, String, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // kind → (keys, bytes, largest)
    let mut kinds: BTreeMap<&'static str, (u64, u64, u64)> = BTreeMap::new();
    let (mut backed, mut derived) = (0u64, 0u64);
    for (primary, key, len) in &rows {
        let len = *len as u64;
        let entry = kinds.entry(kind_of(primary, key)).or_default();
        entry.0 += 1;
        entry.1 += len;
        entry.2 = entry.2.max(len);
        if is_backed_up(primary, key) {
            backed += len;
        } else {
            derived += len;
        }
    }
    println!(
        "  its keys: {} values backed up (the snapshot: {} encrypted, {:.2}x), {} not backed \
         up (network graph, scorer):",
        human(backed),
        human(snapshot_bytes),
        snapshot_bytes as f64 / backed.max(1) as f64,
        human(derived)
    );
    println!(
        "    {:<36} {:>6} {:>12} {:>12}",
        "", "keys", "total", "largest"
    );
    for (kind, (count, bytes, largest)) in kinds {
        println!(
            "    {kind:<36} {count:>6} {:>12} {:>12}",
            human(bytes),
            human(largest)
        );
    }
}
