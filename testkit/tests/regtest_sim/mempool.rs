//! The UTXO set and mempool rules: missing inputs, double spends, maturity, lock times,
//! fees, replacement, unconfirmed chains and mining.

use crate::common::*;
use bitcoin::{absolute, Sequence};
use serde_json::json;

/// A node with 120 blocks (coinbases 1..=20 are mature).
fn node_with_coins(dir: &std::path::Path) -> plugnode_testkit::sim::SimNode {
    let node = start(dir);
    mine(&node, 120);
    node
}

fn rejection(rpc: &plugnode_testkit::rpc::RpcClient, tx: &bitcoin::Transaction) -> (i64, String) {
    let err = send(rpc, tx).unwrap_err();
    (err.code().unwrap(), err.message().unwrap().to_string())
}

#[test]
fn missing_inputs_double_spends_and_replacements() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_coins(dir.path());
    let rpc = node.rpc();
    let coin = coinbase_utxo(&rpc, 1);

    let first = spend_one(coin, 1_000, 1);
    assert_eq!(
        send(&rpc, &first).unwrap(),
        first.compute_txid().to_string()
    );
    // Sending it again is fine (Core re-announces it), testing it is not.
    assert_eq!(
        send(&rpc, &first).unwrap(),
        first.compute_txid().to_string()
    );
    let tested = rpc
        .call("testmempoolaccept", json!([[hex(&first)]]))
        .unwrap();
    assert_eq!(tested[0]["allowed"], false);
    assert_eq!(tested[0]["reject-reason"], "txn-already-in-mempool");

    // A conflicting spend paying less is refused…
    let cheaper = spend_one(coin, 900, 2);
    let (code, message) = rejection(&rpc, &cheaper);
    assert_eq!(code, -26);
    assert_eq!(
        message,
        format!(
            "insufficient fee, rejecting replacement {}, less fees than conflicting txs; 0.000009 < 0.00001",
            cheaper.compute_txid()
        )
    );
    // …and one paying more replaces it (full RBF).
    let better = spend_one(coin, 5_000, 3);
    send(&rpc, &better).unwrap();
    assert_eq!(
        rpc.call("getrawmempool", json!([])).unwrap(),
        json!([better.compute_txid().to_string()])
    );

    // Inputs that do not exist.
    let mut ghost = coin;
    ghost.outpoint.vout = 7;
    let (code, message) = rejection(&rpc, &spend_one(ghost, 1_000, 4));
    assert_eq!(
        (code, message.as_str()),
        (-25, "bad-txns-inputs-missingorspent")
    );

    // Once mined, the coin is spent for good and the transaction is in the UTXO set.
    mine(&node, 1);
    assert_eq!(rpc.call("getrawmempool", json!([])).unwrap(), json!([]));
    let (code, message) = rejection(&rpc, &spend_one(coin, 10_000, 5));
    assert_eq!(
        (code, message.as_str()),
        (-25, "bad-txns-inputs-missingorspent")
    );
    let (code, message) = rejection(&rpc, &better);
    assert_eq!(
        (code, message.as_str()),
        (-27, "Transaction outputs already in utxo set")
    );
}

#[test]
fn coinbases_mature_after_100_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    mine(&node, 100);
    let rpc = node.rpc();
    // At tip 100 the next block is 101: block 1's coinbase is 100 deep, block 2's 99.
    send(&rpc, &spend_one(coinbase_utxo(&rpc, 1), 1_000, 2)).unwrap();
    let young = spend_one(coinbase_utxo(&rpc, 2), 1_000, 1);
    let (code, message) = rejection(&rpc, &young);
    assert_eq!(code, -26);
    assert_eq!(
        message,
        "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 99"
    );
    mine(&node, 1);
    send(&rpc, &young).unwrap();
}

#[test]
fn mining_takes_mempool_transactions_parents_first_and_collects_their_fees() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_coins(dir.path());
    let rpc = node.rpc();
    let parent = spend(
        &[coinbase_utxo(&rpc, 2)],
        &[(p2wpkh(1), 4_000_000_000), (p2wpkh(2), 999_990_000)],
    );
    let child = spend_one(output_of(&parent, 0), 20_000, 3);
    send(&rpc, &parent).unwrap();
    send(&rpc, &child).unwrap();

    let entry = rpc
        .call("getmempoolentry", json!([child.compute_txid().to_string()]))
        .unwrap();
    assert_eq!(entry["depends"], json!([parent.compute_txid().to_string()]));
    assert_eq!(entry["ancestorcount"], 2);
    assert_eq!(entry["bip125-replaceable"], true);
    let parent_entry = rpc
        .call(
            "getmempoolentry",
            json!([parent.compute_txid().to_string()]),
        )
        .unwrap();
    assert_eq!(
        parent_entry["spentby"],
        json!([child.compute_txid().to_string()])
    );
    assert_eq!(parent_entry["descendantcount"], 2);
    let info = rpc.call("getmempoolinfo", json!([])).unwrap();
    assert_eq!(info["size"], 2);
    assert_eq!(info["loaded"], true);

    let hash = mine(&node, 1).remove(0);
    let block = rpc.call("getblock", json!([hash, 2])).unwrap();
    let txids: Vec<&str> = block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["txid"].as_str().unwrap())
        .collect();
    assert_eq!(
        txids[1..],
        [
            parent.compute_txid().to_string(),
            child.compute_txid().to_string()
        ]
    );
    let coinbase_value =
        (block["tx"][0]["vout"][0]["value"].as_f64().unwrap() * 1e8).round() as u64;
    assert_eq!(
        coinbase_value, 5_000_030_000,
        "the coinbase collects the fees"
    );
    assert_eq!(block["tx"][2]["fee"], 20_000.0 / 1e8);
    assert_eq!(rpc.call("getrawmempool", json!([true])).unwrap(), json!({}));

    // Confirmed transactions: only with the block hash (no -txindex), like Core.
    let err = rpc
        .call(
            "getrawtransaction",
            json!([child.compute_txid().to_string()]),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(-5));
    let found = rpc
        .call(
            "getrawtransaction",
            json!([child.compute_txid().to_string(), 1, hash]),
        )
        .unwrap();
    assert_eq!(found["confirmations"], 1);
    assert_eq!(found["in_active_chain"], true);
    assert_eq!(found["hex"], hex(&child));
}

#[test]
fn fee_floor_value_and_dust_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_coins(dir.path());
    let rpc = node.rpc();
    let coin = coinbase_utxo(&rpc, 3);

    let free = spend_one(coin, 0, 1);
    let (code, message) = rejection(&rpc, &free);
    assert_eq!(code, -26);
    assert!(
        message.starts_with("min relay fee not met, 0 < "),
        "{message}"
    );

    let too_much = spend(&[coin], &[(p2wpkh(1), coin.value + 1)]);
    let (code, message) = rejection(&rpc, &too_much);
    assert_eq!(code, -26);
    assert_eq!(
        message,
        "bad-txns-in-belowout, value in (50.00) < value out (50.00000001)"
    );

    let dusty = spend(
        &[coin],
        &[(p2wpkh(1), 100), (p2wpkh(2), coin.value - 10_000)],
    );
    assert_eq!(
        rejection(&rpc, &dusty),
        (-26, "dust, tx with dust output must be 0-fee".into())
    );
    let dustier = spend(
        &[coin],
        &[
            (p2wpkh(1), 100),
            (p2wpkh(2), 100),
            (p2wpkh(3), coin.value - 10_000),
        ],
    );
    assert_eq!(rejection(&rpc, &dustier), (-26, "dust".into()));

    let rich = spend_one(coin, 2_000_000, 1);
    let err = send(&rpc, &rich).unwrap_err();
    assert_eq!(err.code(), Some(-25));
    assert_eq!(
        err.message(),
        Some("Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
    );
    rpc.call("sendrawtransaction", json!([hex(&rich), 0]))
        .expect("maxfeerate 0 accepts any fee");

    let err = rpc
        .call("sendrawtransaction", json!(["deadbeef"]))
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some("TX decode failed. Make sure the tx has at least one input.")
    );
}

#[test]
fn lock_times_and_relative_locks_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_coins(dir.path());
    let rpc = node.rpc();

    let mut later = spend_one(coinbase_utxo(&rpc, 4), 1_000, 1);
    // nLockTime is the last height that may NOT hold it: block 121 may not, 122 may.
    later.lock_time = absolute::LockTime::from_height(121).unwrap();
    assert_eq!(rejection(&rpc, &later), (-26, "non-final".into()));
    mine(&node, 1);
    send(&rpc, &later).unwrap();

    // BIP68: a 5-block relative lock on a coin confirmed in block 122 opens at block 127.
    let parent = spend_one(coinbase_utxo(&rpc, 5), 1_000, 2);
    send(&rpc, &parent).unwrap();
    mine(&node, 1);
    let mut child = spend_one(output_of(&parent, 0), 1_000, 3);
    child.input[0].sequence = Sequence::from_height(5);
    assert_eq!(rejection(&rpc, &child), (-26, "non-BIP68-final".into()));
    mine(&node, 3);
    assert_eq!(rejection(&rpc, &child), (-26, "non-BIP68-final".into()));
    mine(&node, 1);
    send(&rpc, &child).unwrap();
}

#[test]
fn unconfirmed_chains_conflicts_and_mining_clear_the_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_coins(dir.path());
    let rpc = node.rpc();
    let a = spend_one(coinbase_utxo(&rpc, 6), 1_000, 1);
    let b = spend_one(output_of(&a, 0), 1_000, 2);
    let c = spend_one(output_of(&b, 0), 1_000, 3);
    for tx in [&a, &b, &c] {
        send(&rpc, tx).unwrap();
    }
    // Replacing the root evicts the whole chain.
    let replacement = spend_one(coinbase_utxo(&rpc, 6), 100_000, 4);
    send(&rpc, &replacement).unwrap();
    assert_eq!(
        rpc.call("getrawmempool", json!([])).unwrap(),
        json!([replacement.compute_txid().to_string()])
    );
    // A child of an evicted transaction has no inputs any more.
    let (code, _) = rejection(&rpc, &spend_one(output_of(&c, 0), 1_000, 5));
    assert_eq!(code, -25);
    mine(&node, 1);
    assert_eq!(rpc.call("getmempoolinfo", json!([])).unwrap()["size"], 0);
}
