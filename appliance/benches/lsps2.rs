//! Just-in-time channel figures (issue 11, "Figures"), on one regtest-sim chain on this
//! machine. Prints them; asserts no timings.
//!
//! For each of `PLUGNODE_BENCH_BOXES` (default 20) fresh boxes (a real `plugnode run`, a new
//! wallet, no channel), configured with a liquidity provider (ldk-node's LSPS2 service in
//! this process) that a payer box has a channel to:
//! - **through a new channel**: the box makes an invoice beyond its (zero) inbound capacity,
//!   which routes through the provider; the payer pays it; timed from the pay call to the
//!   box's status listing the payment as received (the provider opened the channel, the
//!   channel became usable, the payment arrived);
//! - **over that channel**: the next payment, which fits, timed the same way.
//!
//! Invoices are made outside the timing. The boxes run one after the other, so the two
//! kinds alternate and load from other programs falls on both alike.
//!
//! ```sh
//! nice -n 10 cargo bench -p plugnode --bench lsps2 --no-run
//! cargo bench -p plugnode --bench lsps2
//! ```
//!
//! `PLUGNODE_BENCH_KEEP=1` keeps the working directory (every box's log).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::lightning::{Chain, LnBox, LN_TIMEOUT};
use common::lsp::Lsp;
use common::{wait_for, TestConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

const FIRST_SAT: u64 = 100_000;
const NEXT_SAT: u64 = 2_000;

fn main() {
    let boxes = env_usize("PLUGNODE_BENCH_BOXES", 20);
    print_machine("plugnode just-in-time channel figures");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let log = init_logging(dir);
    println!("  logs:      {}", log.display());

    let chain = Chain::start(dir);
    let lsp = Lsp::start(dir, &chain, None);
    let payer = LnBox::start(&dir.join("payer"), &chain);
    payer.fund(&chain);
    let (code, answer) = payer.post(
        "/api/lightning/channels",
        json!({"node_id": lsp.node_id(), "address": lsp.address, "amount_sat": 8_000_000}),
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("the funding transaction", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    chain.mine(6);
    payer.wait_channel_usable();

    let mut through_new = Vec::new();
    let mut over_it = Vec::new();
    let started = Instant::now();
    for i in 0..boxes {
        let mut config = TestConfig::lightning_box(&dir.join(format!("box-{i}")), &chain.sim);
        config.extra_toml = lsp.config(None);
        let (ln, _) = LnBox::start_with(config);
        let (code, _) = ln.post("/api/lightning/lsp", json!({"agree": true}));
        assert_eq!(code, 200);
        let fee = Lsp::fee_sat(FIRST_SAT);
        through_new.push(receive(&ln, &payer, FIRST_SAT, Some(fee), true));
        ln.wait_channel_usable();
        over_it.push(receive(&ln, &payer, NEXT_SAT, None, false));
        // The box's channel stays behind on the provider; the box itself stops.
        drop(ln);
    }
    println!(
        "\n{boxes} fresh boxes, pay call → received on the box ({:.0} s)",
        secs(started.elapsed())
    );
    println!(
        "   {:<44} {:>8} {:>8} {:>8} {:>8}",
        "payment", "p50 ms", "p90 ms", "max ms", "vs over"
    );
    let over = Summary::of(&over_it, Duration::ZERO);
    for (name, latencies) in [
        ("through a new channel (100 000 sat)", &through_new),
        ("over that channel afterwards (2 000 sat)", &over_it),
    ] {
        let s = Summary::of(latencies, Duration::ZERO);
        println!(
            "   {:<44} {:>8.0} {:>8.0} {:>8.0} {:>7.1}x",
            name,
            ms(s.p50),
            ms(s.p90),
            ms(s.max),
            ms(s.p50) / ms(over.p50)
        );
    }
    drop(payer);
    lsp.stop();
    finish(work);
}

/// Makes an invoice of `amount_sat` on `ln`, has the payer pay it, and times the pay call
/// to the box listing it as received.
fn receive(
    ln: &LnBox,
    payer: &LnBox,
    amount_sat: u64,
    max_fee: Option<u64>,
    jit: bool,
) -> Duration {
    let (code, invoice) = ln.post(
        "/api/lightning/invoices",
        json!({"amount_msat": amount_sat * 1000, "max_lsp_fee_sat": max_fee}),
    );
    assert_eq!(code, 200, "{invoice}");
    assert_eq!(invoice["jit"], jit, "{invoice}");
    let hash = invoice["payment_hash"].as_str().unwrap().to_string();
    let bolt11 = invoice["bolt11"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let body = json!({ "invoice": bolt11 }).to_string();
            payer.node.api("POST", "/api/lightning/pay", Some(&body))
        });
        loop {
            // Timed when the box lists it; the payer's answer comes a little later.
            if received(ln, &hash) {
                break t0.elapsed();
            }
            assert!(t0.elapsed() < LN_TIMEOUT, "the payment never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

fn received(ln: &LnBox, hash: &str) -> bool {
    let (_, payments) = ln.get("/api/lightning/payments");
    payments.as_array().is_some_and(|list: &Vec<Value>| {
        list.iter().any(|p| {
            p["payment_hash"] == hash && p["inbound"] == true && p["status"] == "succeeded"
        })
    })
}
