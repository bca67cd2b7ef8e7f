//! The chain: mining, persistence across restarts and crashes, coinbase payouts.

use crate::common::*;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

#[test]
fn generatetoaddress_pays_the_address_and_fresh_chains_leave_ibd() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let rpc = node.rpc();
    let info = rpc.call("getblockchaininfo", json!([])).unwrap();
    assert_eq!(info["blocks"], 0);
    assert_eq!(
        info["initialblockdownload"], true,
        "a fresh regtest chain is in IBD"
    );

    let address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let hashes = node.mine_blocks(3, address).unwrap();
    assert_eq!(hashes.len(), 3);
    let info = rpc.call("getblockchaininfo", json!([])).unwrap();
    assert_eq!(info["blocks"], 3);
    assert_eq!(info["bestblockhash"], hashes[2]);
    assert_eq!(info["initialblockdownload"], false);
    assert_eq!(info["verificationprogress"], 1.0);

    let block = rpc.call("getblock", json!([hashes[0], 2])).unwrap();
    let payout = &block["tx"][0]["vout"][0];
    assert_eq!(payout["scriptPubKey"]["address"], address);
    assert_eq!(payout["value"], 50.0);
    assert_eq!(block["height"], 1);
    assert_eq!(
        block["tx"][0]["vin"][0]["coinbase"], "5100",
        "BIP34 height 1 then OP_0"
    );
    let header = rpc.call("getblockheader", json!([hashes[1]])).unwrap();
    assert_eq!(header["previousblockhash"], hashes[0]);
    assert_eq!(header["nextblockhash"], hashes[2]);
    assert_eq!(header["chainwork"], format!("{:064x}", 6));

    // The raw block is a real block: rust-bitcoin checks its proof of work and merkle root.
    let raw = rpc.call("getblock", json!([hashes[2], 0])).unwrap();
    let block: bitcoin::Block =
        bitcoin::consensus::encode::deserialize_hex(raw.as_str().unwrap()).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    // BIP34 height 3 as Core writes small heights: OP_3, then OP_0.
    assert_eq!(block.txdata[0].input[0].script_sig.as_bytes(), [0x53, 0x00]);
    block.header.validate_pow(block.header.target()).unwrap();
    assert_eq!(block.block_hash().to_string(), hashes[2]);

    let err = node
        .mine_blocks(1, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
        .unwrap_err();
    assert_eq!(err.code(), Some(-5));
    assert_eq!(err.message(), Some("Error: Invalid address"));

    // generatetodescriptor with a raw script (checksum optional, checked when given).
    let hashes = rpc
        .call("generatetodescriptor", json!([1, "raw(51)"]))
        .unwrap();
    let block = rpc.call("getblock", json!([hashes[0], 2])).unwrap();
    assert_eq!(block["tx"][0]["vout"][0]["scriptPubKey"]["hex"], "51");
    assert_eq!(
        block["tx"][0]["vout"][0]["scriptPubKey"]["type"],
        "nonstandard"
    );
    let err = rpc
        .call("generatetodescriptor", json!([1, "raw(51)#00000000"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(-5));
}

#[test]
fn txindex_finds_confirmed_transactions_without_a_block_hash() {
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path()).arg("-txindex").spawn().unwrap();
    mine(&node, 101);
    let rpc = node.rpc();
    let tx = spend_one(coinbase_utxo(&rpc, 1), 1_000, 1);
    send(&rpc, &tx).unwrap();
    let hash = mine(&node, 1).remove(0);
    let found = rpc
        .call(
            "getrawtransaction",
            json!([tx.compute_txid().to_string(), true]),
        )
        .unwrap();
    assert_eq!(found["blockhash"], hash);
    assert_eq!(found["confirmations"], 1);
    let err = rpc
        .call("getrawtransaction", json!(["11".repeat(32)]))
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some("No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
    );
    assert_eq!(
        rpc.call("getindexinfo", json!([])).unwrap()["txindex"]["synced"],
        true
    );
}

#[test]
fn the_subsidy_halves_every_150_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    mine(&node, 151);
    let rpc = node.rpc();
    assert_eq!(coinbase_utxo(&rpc, 149).value, 5_000_000_000);
    assert_eq!(coinbase_utxo(&rpc, 150).value, 2_500_000_000);
}

#[test]
fn the_chain_survives_stop_and_restart_with_its_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path());
    mine(&node, 110);
    let rpc = node.rpc();
    let mined = spend_one(coinbase_utxo(&rpc, 2), 1_000, 3);
    send(&rpc, &mined).unwrap();
    let hashes = mine(&node, 1);
    let tx = spend_one(coinbase_utxo(&rpc, 1), 1_000, 1);
    send(&rpc, &tx).unwrap();
    let status = node.stop().unwrap();
    assert!(status.success(), "stop exits 0: {status}");
    assert!(
        !node.cookie_path().exists(),
        "the cookie is deleted on shutdown"
    );
    let log = node.stdout_lines().join("\n");
    assert!(log.contains("Shutdown: done"), "{log}");

    node.restart().unwrap();
    let rpc = node.rpc();
    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 111);
    assert_eq!(rpc.call("getbestblockhash", json!([])).unwrap(), hashes[0]);
    assert_eq!(
        rpc.call("getrawmempool", json!([])).unwrap(),
        json!([tx.compute_txid().to_string()]),
        "a clean shutdown keeps the mempool"
    );
    // The UTXO set was rebuilt from the blocks: the coinbase spent in block 111 stays spent.
    let err = send(&rpc, &spend_one(coinbase_utxo(&rpc, 2), 5_000, 2)).unwrap_err();
    assert_eq!(err.message(), Some("bad-txns-inputs-missingorspent"));
    // The reloaded mempool still guards its spend of coinbase 1.
    let err = send(&rpc, &spend_one(coinbase_utxo(&rpc, 1), 500, 2)).unwrap_err();
    assert!(
        err.message().unwrap().starts_with("insufficient fee"),
        "{err}"
    );
    mine(&node, 1);
    assert_eq!(rpc.call("getrawmempool", json!([])).unwrap(), json!([]));
}

#[test]
fn a_kill_9_keeps_every_block_that_was_reported_and_a_torn_record_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path());
    let hashes = mine(&node, 5);
    node.kill();
    assert!(
        node.cookie_path().exists(),
        "a crash leaves the cookie behind, like Core"
    );

    // Simulate a write torn by the crash: half a record at the end of the block file.
    let blocks = node.datadir().join("regtest").join("sim-blocks.dat");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&blocks)
        .unwrap();
    file.write_all(b"blk1\x10\x27\x00\x00garbage").unwrap();
    drop(file);

    node.restart().unwrap();
    let rpc = node.rpc();
    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 5);
    assert_eq!(rpc.call("getbestblockhash", json!([])).unwrap(), hashes[4]);
    let log = node.stdout_lines().join("\n");
    assert!(log.contains("torn block record"), "{log}");
    // Mining continues on top of the recovered chain and that survives too.
    let more = mine(&node, 2);
    node.kill();
    node.restart().unwrap();
    assert_eq!(
        node.rpc().call("getbestblockhash", json!([])).unwrap(),
        more[1]
    );
}

#[test]
fn interval_mining_makes_blocks_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path())
        .arg("-simblockinterval=1")
        .spawn()
        .unwrap();
    let rpc = node.rpc();
    assert!(plugnode_testkit::wait_until(
        Duration::from_secs(60),
        || {
            rpc.call("getblockcount", json!([]))
                .unwrap()
                .as_u64()
                .unwrap()
                >= 2
        }
    ));
}

#[test]
fn pruned_nodes_report_prune_fields() {
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path()).arg("-prune=550").spawn().unwrap();
    let info = node.rpc().call("getblockchaininfo", json!([])).unwrap();
    assert_eq!(info["pruned"], true);
    assert_eq!(info["pruneheight"], 0);
    assert_eq!(info["automatic_pruning"], true);
    assert_eq!(info["prune_target_size"], 550 * 1024 * 1024);
    let net = node.rpc().call("getnetworkinfo", json!([])).unwrap();
    assert_eq!(
        net["localservicesnames"],
        json!(["WITNESS", "NETWORK_LIMITED", "P2P_V2"])
    );
}
