//! ldk-node 0.7.1 on top of regtest-sim, with the bitcoind RPC chain source plugnode uses:
//! fund two nodes, open a channel, pay, close it cooperatively, open another and
//! force-close it, and let both sides sweep their funds.
//!
//! Run with `cargo test -p plugnode-testkit --features ldk-e2e --test ldk_node` (it builds
//! ldk-node and takes a few minutes, so it is not part of the default suite).

#[allow(dead_code)]
#[path = "regtest_sim/common.rs"]
mod common;

use common::*;
use ldk_node::bitcoin::Network;
use ldk_node::config::Config;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning_invoice::{Bolt11InvoiceDescription, Description};
use ldk_node::{Builder, Event, LightningBalance, Node, PendingSweepBalance};
use plugnode_testkit::sim::SimNode;
use plugnode_testkit::{free_port, wait_until};
use serde_json::json;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(180);

fn ldk(sim: &SimNode, dir: &Path, name: &str) -> Node {
    let config = Config {
        network: Network::Regtest,
        storage_dir_path: dir.join(name).display().to_string(),
        listening_addresses: Some(vec![SocketAddress::from_str(&format!(
            "127.0.0.1:{}",
            free_port()
        ))
        .unwrap()]),
        ..Config::default()
    };
    let mut builder = Builder::from_config(config);
    builder.set_chain_source_bitcoind_rpc(
        "127.0.0.1".into(),
        sim.rpc_port(),
        "ldk".into(),
        "pw".into(),
    );
    let node = builder.build().unwrap();
    node.start().unwrap();
    node
}

/// Waits for an event matching `wanted`, acknowledging (and printing) the others.
fn wait_event(node: &Node, what: &str, wanted: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(event) = node.next_event() {
            node.event_handled().unwrap();
            if wanted(&event) {
                return event;
            }
            println!("{what}: skipping {event:?}");
            continue;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mine_and_sync(sim: &SimNode, n: u32, nodes: &[&Node]) {
    mine(sim, n);
    let height = sim
        .rpc()
        .call("getblockcount", json!([]))
        .unwrap()
        .as_u64()
        .unwrap() as u32;
    for node in nodes {
        assert!(
            wait_until(TIMEOUT, || {
                let _ = node.sync_wallets();
                node.status().current_best_block.height >= height
            }),
            "ldk-node follows the chain to {height}"
        );
    }
}

fn wait_in_mempool(sim: &SimNode, count: usize) {
    let rpc = sim.rpc();
    assert!(
        wait_until(TIMEOUT, || {
            rpc.call("getrawmempool", json!([]))
                .unwrap()
                .as_array()
                .unwrap()
                .len()
                >= count
        }),
        "{count} transaction(s) reach the mempool"
    );
}

#[test]
fn ldk_node_opens_pays_closes_and_sweeps_on_regtest_sim() {
    let dir = tempfile::tempdir().unwrap();
    let sim = builder(dir.path())
        .credentials("ldk", "pw")
        .spawn()
        .unwrap();
    mine(&sim, 101);
    let a = ldk(&sim, dir.path(), "a");
    let b = ldk(&sim, dir.path(), "b");

    // Fund both on-chain wallets from an anyone-can-spend coinbase.
    let rpc = sim.rpc();
    let pay_a = a.onchain_payment().new_address().unwrap().script_pubkey();
    let pay_b = b.onchain_payment().new_address().unwrap().script_pubkey();
    let coin = coinbase_utxo(&rpc, 1);
    let funding = spend(
        &[coin],
        &[
            (pay_a, 10_000_000),
            (pay_b, 10_000_000),
            (p2wpkh(9), coin.value - 20_010_000),
        ],
    );
    send(&rpc, &funding).unwrap();
    mine_and_sync(&sim, 1, &[&a, &b]);
    assert_eq!(a.list_balances().spendable_onchain_balance_sats, 10_000_000);
    assert_eq!(b.list_balances().spendable_onchain_balance_sats, 10_000_000);

    // Open, confirm, pay.
    let b_address = b.listening_addresses().unwrap()[0].clone();
    a.open_channel(
        b.node_id(),
        b_address.clone(),
        1_000_000,
        Some(400_000_000),
        None,
    )
    .unwrap();
    wait_event(&a, "A ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    });
    wait_event(&b, "B ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    });
    wait_in_mempool(&sim, 1);
    mine_and_sync(&sim, 6, &[&a, &b]);
    let ready = wait_event(&a, "A ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    });
    let Event::ChannelReady {
        user_channel_id, ..
    } = ready
    else {
        unreachable!()
    };
    wait_event(&b, "B ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    });

    let description = Bolt11InvoiceDescription::Direct(Description::new("sim".into()).unwrap());
    let invoice = b
        .bolt11_payment()
        .receive(25_000_000, &description, 3600)
        .unwrap();
    a.bolt11_payment().send(&invoice, None).unwrap();
    wait_event(&a, "A PaymentSuccessful", |e| {
        matches!(e, Event::PaymentSuccessful { .. })
    });
    wait_event(&b, "B PaymentReceived", |e| {
        matches!(e, Event::PaymentReceived { .. })
    });

    // Cooperative close.
    a.close_channel(&user_channel_id, b.node_id()).unwrap();
    wait_event(&a, "A ChannelClosed", |e| {
        matches!(e, Event::ChannelClosed { .. })
    });
    wait_event(&b, "B ChannelClosed", |e| {
        matches!(e, Event::ChannelClosed { .. })
    });
    wait_in_mempool(&sim, 1);
    mine_and_sync(&sim, 1, &[&a, &b]);
    assert!(b.list_balances().total_onchain_balance_sats > 10_000_000 + 400_000);

    // A second channel, force-closed by A.
    a.open_channel(b.node_id(), b_address, 500_000, Some(100_000_000), None)
        .unwrap();
    wait_event(&a, "A ChannelPending (2)", |e| {
        matches!(e, Event::ChannelPending { .. })
    });
    wait_event(&b, "B ChannelPending (2)", |e| {
        matches!(e, Event::ChannelPending { .. })
    });
    wait_in_mempool(&sim, 1);
    mine_and_sync(&sim, 6, &[&a, &b]);
    let ready = wait_event(&a, "A ChannelReady (2)", |e| {
        matches!(e, Event::ChannelReady { .. })
    });
    let Event::ChannelReady {
        user_channel_id, ..
    } = ready
    else {
        unreachable!()
    };
    wait_event(&b, "B ChannelReady (2)", |e| {
        matches!(e, Event::ChannelReady { .. })
    });
    a.force_close_channel(&user_channel_id, b.node_id(), None)
        .unwrap();
    wait_event(&a, "A ChannelClosed (force)", |e| {
        matches!(e, Event::ChannelClosed { .. })
    });
    wait_event(&b, "B ChannelClosed (force)", |e| {
        matches!(e, Event::ChannelClosed { .. })
    });
    wait_in_mempool(&sim, 1);
    mine_and_sync(&sim, 1, &[&a, &b]);

    // Mine until both sides' claims (A's after its to_self_delay) are swept and the sweeps
    // are 6 blocks deep. (LDK keeps listing a confirmed sweep for thousands of blocks.)
    let deadline = Instant::now() + TIMEOUT * 4;
    loop {
        let tip = rpc
            .call("getblockcount", json!([]))
            .unwrap()
            .as_u64()
            .unwrap() as u32;
        let settled = [&a, &b].iter().all(|n| {
            let balances = n.list_balances();
            balances.lightning_balances.is_empty()
                && balances.pending_balances_from_channel_closures.iter().all(|p| {
                    matches!(p, PendingSweepBalance::AwaitingThresholdConfirmations { confirmation_height, .. }
                        if tip + 1 >= confirmation_height + 6)
                })
        });
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sweeps never settled: A {:?} B {:?}",
            a.list_balances(),
            b.list_balances()
        );
        let to_go = [&a, &b]
            .iter()
            .flat_map(|n| n.list_balances().lightning_balances)
            .filter_map(|balance| match balance {
                LightningBalance::ClaimableAwaitingConfirmations {
                    confirmation_height,
                    ..
                } => Some(confirmation_height),
                _ => None,
            })
            .min();
        let height = a.status().current_best_block.height;
        let step = to_go.map_or(1, |h| h.saturating_sub(height).clamp(1, 50));
        mine_and_sync(&sim, step, &[&a, &b]);
    }
    let a_total = a.list_balances().total_onchain_balance_sats;
    let b_total = b.list_balances().total_onchain_balance_sats;
    // Everything is back on chain, less fees: B got 400k + 25k sat from the first channel and
    // 100k from the force-closed one, A the rest (its to_local only after its to_self_delay).
    assert!(
        b_total > 10_000_000 + 525_000 - 25_000,
        "B on-chain: {b_total}"
    );
    assert!(
        a_total > 10_000_000 - 525_000 - 100_000,
        "A on-chain: {a_total}"
    );
    a.stop().unwrap();
    b.stop().unwrap();
    // Broadcasts the sim refused (Core refuses re-broadcasts of confirmed transactions too).
    for name in ["a", "b"] {
        let log =
            std::fs::read_to_string(dir.path().join(name).join("ldk_node.log")).unwrap_or_default();
        for line in log
            .lines()
            .filter(|l| l.contains("Failed to broadcast") || l.contains("RPC error"))
        {
            println!("{name}: {line}");
        }
    }
}
