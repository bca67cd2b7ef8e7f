//! Replays the requests recorded from a real Bitcoin Core v30 (`tests/data/samples-v30.jsonl`)
//! against regtest-sim in an equivalent state and checks the answers have the same HTTP
//! status, the same JSON shape and, for errors, the same code and message.

use crate::common::*;
use plugnode_testkit::rpc::{Auth, RpcClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const SAMPLES: &str = include_str!("../data/samples-v30.jsonl");

/// Values of the recorded chain that must be replaced by ours.
const SAMPLE_TIP: &str = "200b5380552c18e2b4d673ba800577ef574b9bc82964ea900c76b6d26c1e0585";
const SAMPLE_BLOCK_1: &str = "0bb30e760927a1709f3352141396dacb35e2acc7b44806c4462f007728b475b0";
const SAMPLE_TXID: &str = "0a8bfaab1462938772127abc04974965e998aa0bad46237f70e4929cb277835b";

fn samples() -> Vec<Value> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("sample lines are JSON"))
        .collect()
}

/// Replaces every string equal to a key of `map` (recursively).
fn substitute(value: &Value, map: &[(String, String)]) -> Value {
    match value {
        Value::String(s) => Value::String(
            map.iter()
                .find(|(from, _)| from == s)
                .map(|(_, to)| to.clone())
                .unwrap_or_else(|| s.clone()),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, map)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), substitute(v, map)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Methods whose answers are fully determined by the state we set up.
const EXACT: &[&str] = &[
    "getbestblockhash",
    "getblockhash",
    "getblockcount",
    "getrawmempool",
    "getpeerinfo",
    "sendrawtransaction",
    "getrawtransaction",
    "stop",
];

#[test]
fn every_recorded_answer_matches_bitcoin_core() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path());
    let rpc = node.rpc();
    // The recorded node had 208 blocks and sent one transaction spending a mature coinbase.
    let hashes = mine(&node, 208);
    let tx = spend(
        &[coinbase_utxo(&rpc, 1)],
        &[
            (p2wpkh(7), 1_000_000),
            (p2wpkh(8), 5_000_000_000 - 1_000_000 - 156),
        ],
    );
    let tx_hex = hex(&tx);
    let samples = samples();
    let sample_tx_hex = samples
        .iter()
        .find(|s| s["request"]["method"] == "sendrawtransaction" && s["status"] == 200)
        .map(|s| s["request"]["params"][0].as_str().unwrap().to_string())
        .unwrap();
    let map = vec![
        (SAMPLE_TIP.to_string(), hashes[207].clone()),
        (SAMPLE_BLOCK_1.to_string(), hashes[0].clone()),
        (SAMPLE_TXID.to_string(), tx.compute_txid().to_string()),
        (sample_tx_hex, tx_hex),
    ];

    let mut replayed = BTreeSet::new();
    let mut stop = None;
    for sample in &samples {
        let method = sample["request"]["method"].as_str().unwrap();
        if sample.get("note").is_some_and(|n| n == "during start-up") || sample["status"] == 401 {
            continue; // checked by the tests below
        }
        if method == "stop" {
            stop = Some(sample);
            continue;
        }
        replay(&rpc, sample, &map);
        replayed.insert(method.to_string());
    }
    let stop = stop.expect("the samples hold a stop");
    replay(&rpc, stop, &map);
    assert!(node
        .wait_for_exit(Duration::from_secs(60))
        .unwrap()
        .success());
    for needed in [
        "getblockheader",
        "getblock",
        "estimatesmartfee",
        "getblockchaininfo",
        "getrawmempool",
        "getmempoolinfo",
        "sendrawtransaction",
        "getmempoolentry",
        "getrawtransaction",
        "getnetworkinfo",
    ] {
        assert!(replayed.contains(needed), "{needed} was replayed");
    }
}

/// Sends a sample's request as JSON-RPC 1.0 (as recorded) and as 2.0, and compares.
fn replay(rpc: &RpcClient, sample: &Value, map: &[(String, String)]) {
    let method = sample["request"]["method"].as_str().unwrap();
    let params = substitute(&sample["request"]["params"], map);
    let expected = substitute(&sample["response"], map);
    let id = expected["id"].clone();
    let what = format!("{method} {params}");

    let reply = rpc
        .post(&json!({"method": method, "params": params, "id": id}).to_string())
        .unwrap();
    assert_eq!(
        u64::from(reply.status),
        sample["status"].as_u64().unwrap(),
        "HTTP status of {what}: {}",
        reply.body
    );
    assert_eq!(
        reply.header("Content-Type"),
        Some("application/json"),
        "{what}"
    );
    let ours = reply
        .json()
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", reply.body));
    assert_same_shape(&ours, &expected, method);
    if !expected["error"].is_null() {
        assert_eq!(ours["error"], expected["error"], "error of {what}");
    }
    if EXACT.contains(&method) {
        assert_eq!(ours, expected, "answer to {what}");
    }

    // JSON-RPC 2.0 (bitcoincore-rpc sends "jsonrpc": "2.0"): HTTP 200, either result or error.
    if method == "stop" {
        return;
    }
    let reply = rpc
        .post(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string())
        .unwrap();
    assert_eq!(reply.status, 200, "JSON-RPC 2.0 status of {what}");
    let ours = reply.json().unwrap();
    assert_eq!(ours["jsonrpc"], "2.0", "{what}");
    assert_eq!(ours["id"], id, "{what}");
    if expected["error"].is_null() {
        assert!(ours.get("error").is_none(), "{what}: {ours}");
        assert_same_shape(&ours["result"], &expected["result"], method);
    } else {
        assert!(ours.get("result").is_none(), "{what}: {ours}");
        assert_eq!(ours["error"], expected["error"], "2.0 error of {what}");
    }
}

#[test]
fn warm_up_answers_match_bitcoin_core() {
    let samples = samples();
    let recorded: Vec<&Value> = samples
        .iter()
        .filter(|s| s.get("note").is_some_and(|n| n == "during start-up"))
        .collect();
    let core_messages: Vec<String> = recorded
        .iter()
        .map(|s| {
            s["response"]["error"]["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Core's order; the sim adds two messages Core also shows ("Loading P2P addresses…"
    // before the ban list, "Done loading" at the end).
    let order = [
        "RPC server started",
        "Loading P2P addresses…",
        "Loading banlist…",
        "Loading block index…",
        "Verifying blocks…",
        "Starting network threads…",
        "Done loading",
    ];
    for message in &core_messages {
        assert!(order.contains(&message.as_str()), "{message} is known");
    }

    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path())
        .warmup(Duration::from_millis(6000))
        .ready_timeout(None)
        .spawn()
        .unwrap();
    let rpc = node.rpc().with_timeout(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen: Vec<String> = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "warm-up never ended; saw {seen:?}"
        );
        let Ok(reply) =
            rpc.post(&json!({"method": "getblockchaininfo", "params": [], "id": "s"}).to_string())
        else {
            std::thread::sleep(Duration::from_millis(20));
            continue; // the process is still starting (no port, no cookie yet)
        };
        if reply.status == 200 {
            break;
        }
        assert_eq!(
            reply.status, 500,
            "warm-up answers are HTTP 500 for JSON-RPC 1.0"
        );
        let ours = reply.json().unwrap();
        assert_same_shape(&ours, &recorded[0]["response"], "warm-up");
        assert_eq!(ours["error"]["code"], -28);
        let message = ours["error"]["message"].as_str().unwrap().to_string();
        assert!(
            order.contains(&message.as_str()),
            "unexpected warm-up message {message:?}"
        );
        if seen.last() != Some(&message) {
            seen.push(message);
        }
        // JSON-RPC 2.0 clients get the same error with HTTP 200.
        let reply2 = rpc
            .post(
                &json!({"jsonrpc": "2.0", "method": "getblockcount", "params": [], "id": 1})
                    .to_string(),
            )
            .unwrap();
        if reply2.status == 200 && reply2.json().unwrap().get("error").is_some() {
            assert_eq!(reply2.json().unwrap()["error"]["code"], -28);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let positions: Vec<usize> = seen
        .iter()
        .map(|m| order.iter().position(|o| o == m).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "messages in Core's order: {seen:?}"
    );
    assert!(seen.len() >= 2, "several warm-up steps seen: {seen:?}");
    // The log shows every step, in order.
    let log = node.stdout_lines().join("\n");
    let mut at = 0;
    for message in &order[1..] {
        let line = format!("init message: {message}");
        let found = log[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("{line:?} after byte {at} in\n{log}"));
        at += found + line.len();
    }
}

#[test]
fn a_wrong_password_gets_cores_401() {
    let sample = samples().into_iter().find(|s| s["status"] == 401).unwrap();
    assert_eq!(sample["response"], "");
    let dir = tempfile::tempdir().unwrap();
    let node = builder(dir.path())
        .credentials("alice", "right")
        .spawn()
        .unwrap();
    let wrong = node
        .rpc()
        .with_auth(Auth::UserPass("alice".into(), "wrong".into()));
    let reply = wrong
        .post(&json!({"method": "getblockcount", "params": [], "id": "s"}).to_string())
        .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, "");
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some("Basic realm=\"jsonrpc\"")
    );
    let err = wrong.call("getblockcount", json!([])).unwrap_err();
    assert_eq!(err.http_status(), Some(401));

    let anonymous = node.rpc().with_auth(Auth::None);
    let reply = anonymous.post("{}").unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some("Basic realm=\"jsonrpc\"")
    );

    assert_eq!(node.rpc().call("getblockcount", json!([])).unwrap(), 0);
    let unused = RpcClient::new(
        &node.rpc_url(),
        Auth::UserPass("alice".into(), "right".into()),
    );
    assert_eq!(unused.call("getblockcount", json!([])).unwrap(), 0);
}
