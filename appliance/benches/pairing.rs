//! Pairing figures (issue 9, "Figures"), on one regtest-sim chain on this machine. Prints
//! them; asserts no timings.
//!
//! 1. **Payments by a paired app**: a real `plugnode run` box pays a bare ldk-node peer
//!    over one channel, `PLUGNODE_BENCH_PAYMENTS` times (default 200) each way:
//!    - *web API*: `POST /api/lightning/pay` with a session (the baseline: the box's own
//!      payment path with nothing of pairing in it);
//!    - *NWC*: `pay_invoice` from rust-nostr's NWC client through the box's embedded relay
//!      (encryption both ways, the relay twice, the connection store's reservation and
//!      settlement);
//!    - *LNDHub*: `POST /payinvoice` with an access token (the same reservation path).
//!
//!    Latency runs from the request to its answer; the peer's invoices are made outside
//!    it. The three are interleaved in blocks of 20 so that load from other programs falls
//!    on all of them alike.
//! 2. **Memory**: the box's `VmRSS` before and after 20 connections (10 NWC, 10 LNDHub)
//!    were made and each was used once, after `PLUGNODE_BENCH_SETTLE_SECS` (default 10).
//!
//! ```sh
//! nice -n 10 cargo bench -p plugnode --bench pairing --no-run
//! cargo bench -p plugnode --bench pairing                 # both figures
//! cargo bench -p plugnode --bench pairing -- payments     # only figure 1
//! ```
//!
//! `PLUGNODE_BENCH_KEEP=1` keeps the working directory (the box's log, the bench log).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::lightning::{Chain, LnBox};
use common::pairing::{nwc_client, pair, pair_spender};
use common::{http_with_token, TestConfig, TestPairing};
use ldk_node::Node;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const BLOCK: usize = 20;

fn main() {
    let wanted = Wanted::from_args();
    print_machine("plugnode pairing figures");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let log = init_logging(dir);
    println!("  logs:      {}", log.display());

    let chain = Chain::start(dir);
    let rpc = RpcCookie::read(&chain);
    let mut pumps = Pumps::start();
    pumps.without_nagle();
    let peers = bare_peers(dir, &rpc, 1, &mut pumps);
    let mut config = TestConfig::lightning_box(&dir.join("box"), &chain.sim);
    config.pairing = Some(TestPairing::both());
    let lndhub_port = config.pairing.as_ref().unwrap().lndhub_port.unwrap();
    let ln = LnBox::start_with(config).0;
    ln.fund(&chain);
    open_channels(&ln, &chain, &peers, 5_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    if wanted.has("payments") {
        payments(&ln, &peers[0], lndhub_port, &runtime);
    }
    if wanted.has("memory") {
        memory(&ln, lndhub_port, &runtime);
    }
    drop(runtime);
    drop(ln);
    for peer in &peers {
        let _ = peer.stop();
    }
    pumps.stop();
    finish(work);
}

/// An LNDHub login's URI, logged in: its address and access token.
fn lndhub_login(uri: &str, port: u16) -> (SocketAddr, String) {
    let credentials = uri
        .strip_prefix("lndhub://")
        .and_then(|rest| rest.split_once('@'))
        .map(|(credentials, _)| credentials)
        .expect("an lndhub:// URI");
    let (login, password) = credentials.split_once(':').unwrap();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let body = json!({"login": login, "password": password}).to_string();
    let (code, answer) = http_with_token(address, "POST", "/auth?type=auth", Some(&body), None)
        .expect("LNDHub answers");
    assert_eq!(code, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    (
        address,
        answer["access_token"].as_str().unwrap().to_string(),
    )
}

fn invoice(peer: &Node) -> String {
    peer.bolt11_payment()
        .receive(AMOUNT_MSAT, &description(), 3600)
        .expect("the peer makes an invoice")
        .to_string()
}

fn payments(ln: &LnBox, peer: &Arc<Node>, lndhub_port: u16, runtime: &tokio::runtime::Runtime) {
    let count = env_usize("PLUGNODE_BENCH_PAYMENTS", 200).div_ceil(BLOCK) * BLOCK;
    let budget = (count as u64 + 10) * (AMOUNT_MSAT / 1000 + 100);
    let nwc = pair_spender(ln, budget, "never");
    let app = nwc_client(&nwc.uri);
    let hub = pair(
        ln,
        json!({
            "app": "BlueWallet", "protocol": "lndhub", "permissions": ["receive", "spend"],
            "budget_sat": budget, "renewal": "never",
        }),
    );
    let (hub_address, token) = lndhub_login(&hub.uri, lndhub_port);
    // Warm up each path once (connections, the relay subscription, the route).
    runtime
        .block_on(app.get_balance())
        .expect("the NWC client is paired");

    let mut api = Vec::new();
    let mut nostr = Vec::new();
    let mut lndhub = Vec::new();
    let started = Instant::now();
    let mut walls = [Duration::ZERO; 3];
    for _ in 0..count / BLOCK {
        let t = Instant::now();
        for _ in 0..BLOCK {
            let invoice = invoice(peer);
            let t0 = Instant::now();
            let (code, answer) = ln.post("/api/lightning/pay", json!({ "invoice": invoice }));
            api.push(t0.elapsed());
            assert_eq!(code, 200, "{answer}");
        }
        walls[0] += t.elapsed();
        let t = Instant::now();
        for _ in 0..BLOCK {
            let invoice = invoice(peer);
            let t0 = Instant::now();
            runtime
                .block_on(app.pay_invoice(nostr_sdk::nips::nip47::PayInvoiceRequest::new(invoice)))
                .expect("the NWC payment goes through");
            nostr.push(t0.elapsed());
        }
        walls[1] += t.elapsed();
        let t = Instant::now();
        for _ in 0..BLOCK {
            let body = json!({ "invoice": invoice(peer) }).to_string();
            let t0 = Instant::now();
            let (code, answer) = http_with_token(
                hub_address,
                "POST",
                "/payinvoice",
                Some(&body),
                Some(&token),
            )
            .expect("LNDHub answers");
            lndhub.push(t0.elapsed());
            assert!(code == 200 && !answer.contains("\"error\""), "{answer}");
        }
        walls[2] += t.elapsed();
    }
    println!(
        "\n1. {count} payments of {} sat each way, box → peer over one channel ({:.0} s)",
        AMOUNT_MSAT / 1000,
        secs(started.elapsed())
    );
    println!(
        "   {:<34} {:>8} {:>8} {:>8} {:>8} {:>10} {:>14}",
        "path", "p50 ms", "p90 ms", "p99 ms", "max ms", "payments/s", "p50 vs web API"
    );
    let base = Summary::of(&api, walls[0]);
    for (name, latencies, wall) in [
        ("web API  POST /api/lightning/pay", &api, walls[0]),
        ("NWC      pay_invoice via the relay", &nostr, walls[1]),
        ("LNDHub   POST /payinvoice", &lndhub, walls[2]),
    ] {
        let s = Summary::of(latencies, wall);
        println!(
            "   {:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.2} {:>13.2}x",
            name,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max),
            s.per_sec,
            ms(s.p50) / ms(base.p50)
        );
    }
    runtime.block_on(app.shutdown());
}

fn memory(ln: &LnBox, lndhub_port: u16, runtime: &tokio::runtime::Runtime) {
    let settle = Duration::from_secs(env_usize("PLUGNODE_BENCH_SETTLE_SECS", 10) as u64);
    std::thread::sleep(settle);
    let before = resident_kib(ln.node.pid());
    for i in 0..10 {
        let nwc = pair_spender(ln, 10_000, "daily");
        let app = nwc_client(&nwc.uri);
        runtime
            .block_on(app.get_balance())
            .unwrap_or_else(|err| panic!("NWC connection {i}: {err}"));
        runtime.block_on(app.shutdown());
        let hub = pair(
            ln,
            json!({"app": format!("BlueWallet {i}"), "protocol": "lndhub", "permissions": ["receive"]}),
        );
        let (address, token) = lndhub_login(&hub.uri, lndhub_port);
        let (code, _) = http_with_token(address, "GET", "/getinfo", None, Some(&token)).unwrap();
        assert_eq!(code, 200);
    }
    std::thread::sleep(settle);
    let after = resident_kib(ln.node.pid());
    println!(
        "\n2. supervisor memory (VmRSS), idle, {} s after the last request",
        settle.as_secs()
    );
    println!(
        "   before the 20 connections          {:>8.1} MiB",
        mib(before)
    );
    println!(
        "   with 20 connections, each used     {:>8.1} MiB ({:+.1} MiB)",
        mib(after),
        mib(after) - mib(before)
    );
}

fn resident_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
