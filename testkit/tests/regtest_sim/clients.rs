//! The clients plugnode and ldk-node use parse the sim's answers: `bitcoincore-rpc` 0.19
//! (plugnode's supervisor, JSON-RPC 2.0) and `lightning-block-sync` 0.2 (ldk-node's chain
//! source, JSON-RPC 1.0 style).

use crate::common::*;
use base64::Engine;
use bitcoincore_rpc::{Auth as CoreAuth, Client, RpcApi};
use lightning_block_sync::gossip::UtxoSource;
use lightning_block_sync::http::HttpEndpoint;
use lightning_block_sync::rpc::{RpcClient as LdkRpcClient, RpcError as LdkRpcError};
use lightning_block_sync::{BlockData, BlockSource};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn bitcoincore_rpc_parses_the_answers_plugnode_needs() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = builder(dir.path())
        .credentials("plugnode", "pw")
        .spawn()
        .unwrap();
    let hashes = mine(&node, 101);
    let client = Client::new(
        &node.rpc_url(),
        CoreAuth::UserPass("plugnode".into(), "pw".into()),
    )
    .unwrap();

    let info = client.get_blockchain_info().unwrap();
    assert_eq!(info.chain, bitcoin::Network::Regtest);
    assert_eq!(info.blocks, 101);
    assert!(!info.initial_block_download);
    let network = client.get_network_info().unwrap();
    assert_eq!(network.connections, 0);
    assert!(network.subversion.starts_with("/Satoshi:30."));

    let best = client.get_best_block_hash().unwrap();
    assert_eq!(best.to_string(), hashes[100]);
    let header = client.get_block_header(&best).unwrap();
    assert_eq!(header.block_hash(), best);
    let header_info = client.get_block_header_info(&best).unwrap();
    assert_eq!(header_info.height, 101);
    assert_eq!(header_info.confirmations, 1);
    let block = client.get_block(&best).unwrap();
    assert_eq!(block.block_hash(), best);
    assert_eq!(client.get_block_hash(1).unwrap().to_string(), hashes[0]);

    let tx = spend_one(coinbase_utxo(&node.rpc(), 1), 500, 9);
    let txid = client.send_raw_transaction(&tx).unwrap();
    assert_eq!(txid, tx.compute_txid());
    assert_eq!(client.get_raw_mempool().unwrap(), vec![txid]);
    let entry = client.get_mempool_entry(&txid).unwrap();
    assert_eq!(entry.fees.base.to_sat(), 500);
    let mempool = client.get_mempool_info().unwrap();
    assert_eq!(mempool.size, 1);
    assert_eq!(mempool.min_relay_tx_fee.to_sat(), 100);
    let fee = client.estimate_smart_fee(6, None).unwrap();
    assert!(fee.fee_rate.is_none());
    assert_eq!(
        fee.errors,
        Some(vec!["Insufficient data or no feerate found".to_string()])
    );

    match client.get_block_hash(999).unwrap_err() {
        bitcoincore_rpc::Error::JsonRpc(bitcoincore_rpc::jsonrpc::Error::Rpc(e)) => {
            assert_eq!(
                (e.code, e.message.as_str()),
                (-8, "Block height out of range")
            );
        }
        other => panic!("expected an RPC error, got {other:?}"),
    }

    assert_eq!(client.stop().unwrap(), "Bitcoin Core stopping");
    assert!(node
        .wait_for_exit(Duration::from_secs(60))
        .unwrap()
        .success());
}

#[test]
fn bitcoincore_rpc_sees_the_warm_up_as_error_28() {
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path())
        .credentials("plugnode", "pw")
        .warmup(Duration::from_millis(3000))
        .ready_timeout(None)
        .spawn()
        .unwrap();
    let client = Client::new(
        &node.rpc_url(),
        CoreAuth::UserPass("plugnode".into(), "pw".into()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut warm_up_messages = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "never ready");
        match client.get_blockchain_info() {
            Ok(_) => break,
            Err(bitcoincore_rpc::Error::JsonRpc(bitcoincore_rpc::jsonrpc::Error::Rpc(e))) => {
                assert_eq!(e.code, -28, "{e:?}");
                warm_up_messages.push(e.message);
            }
            Err(_) => {} // not listening yet
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!warm_up_messages.is_empty(), "the warm-up was seen");
}

#[test]
fn lightning_block_sync_parses_the_answers_ldk_node_needs() {
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path())
        .credentials("lightning", "ldk")
        .spawn()
        .unwrap();
    let hashes = mine(&node, 101);
    let coin = coinbase_utxo(&node.rpc(), 1);
    let credentials = base64::engine::general_purpose::STANDARD.encode("lightning:ldk");
    let client = LdkRpcClient::new(
        &credentials,
        HttpEndpoint::for_host("127.0.0.1".into()).with_port(node.rpc_port()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (best, height) = client.get_best_block().await.unwrap();
        assert_eq!(best.to_string(), hashes[100]);
        assert_eq!(height, Some(101));
        let header = client.get_header(&best, None).await.unwrap();
        assert_eq!(header.height, 101);
        assert_eq!(header.header.block_hash(), best);
        let genesis_header = client
            .get_header(&client.get_block_hash_by_height(0).await.unwrap(), None)
            .await
            .unwrap();
        assert_eq!(genesis_header.height, 0);
        match client.get_block(&best).await.unwrap() {
            BlockData::FullBlock(block) => assert_eq!(block.block_hash(), best),
            BlockData::HeaderOnly(_) => panic!("getblock verbosity 0 gives the full block"),
        }
        assert_eq!(
            client
                .get_block_hash_by_height(1)
                .await
                .unwrap()
                .to_string(),
            hashes[0]
        );
        assert!(client.is_output_unspent(coin.outpoint).await.unwrap());

        // The calls ldk-node's bitcoind chain source makes itself.
        let tx = spend_one(coin, 300, 4);
        let txid: bitcoin::Txid = client
            .call_method("sendrawtransaction", &[json!(hex(&tx))])
            .await
            .unwrap();
        assert_eq!(txid, tx.compute_txid());
        let mempool: Value = client
            .call_method("getrawmempool", &[json!(false)])
            .await
            .unwrap();
        assert_eq!(mempool, json!([txid.to_string()]));
        let entry: Value = client
            .call_method("getmempoolentry", &[json!(txid.to_string())])
            .await
            .unwrap();
        assert!(entry["time"].as_u64().is_some() && entry["height"].as_u64() == Some(101));
        let raw: Value = client
            .call_method("getrawtransaction", &[json!(txid.to_string())])
            .await
            .unwrap();
        assert_eq!(raw, json!(hex(&tx)));
        let info: Value = client.call_method("getmempoolinfo", &[]).await.unwrap();
        assert_eq!(info["mempoolminfee"].as_f64(), Some(0.000001));
        let fee: Value = client
            .call_method("estimatesmartfee", &[json!(6), json!("ECONOMICAL")])
            .await
            .unwrap();
        assert!(
            fee["errors"].is_array(),
            "ldk-node falls back to 1 sat/vB on regtest"
        );

        // ldk-node treats error -5 as "not found" for these two.
        for (method, param) in [
            ("getrawtransaction", "00".repeat(32)),
            ("getmempoolentry", "11".repeat(32)),
        ] {
            let err = client
                .call_method::<Value>(method, &[json!(param)])
                .await
                .unwrap_err();
            let rpc_error = err.into_inner().unwrap().downcast::<LdkRpcError>().unwrap();
            assert_eq!(rpc_error.code, -5, "{method}");
        }
    });
}
