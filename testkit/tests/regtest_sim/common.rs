//! Helpers shared by regtest-sim's integration tests: start a sim, build transactions
//! spending anyone-can-spend coinbases (the sim checks no scripts), compare JSON shapes.

use bitcoin::consensus::encode;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use plugnode_testkit::rpc::RpcClient;
use plugnode_testkit::sim::{SimNode, SimNodeBuilder};
use serde_json::{json, Value};
use std::path::Path;
use std::str::FromStr;

pub const EXE: &str = env!("CARGO_BIN_EXE_regtest-sim");

/// A sim with its data in `<dir>/data`, ready for RPC.
pub fn start(dir: &Path) -> SimNode {
    builder(dir).spawn().expect("regtest-sim starts")
}

pub fn builder(dir: &Path) -> SimNodeBuilder {
    SimNode::builder(EXE, dir.join("data"))
}

/// A bitcoin.conf written the way plugnode writes it.
pub fn plugnode_conf(chain_line: &str, rpc_port: u16, p2p_port: u16, auth: &[String]) -> String {
    let mut conf = format!(
        "# Written by plugnode at every start\n{chain_line}\nserver=1\ndisablewallet=1\nprinttoconsole=1\nprune=550\ndbcache=300\nmaxmempool=150\n\n[regtest]\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\nrpcport={rpc_port}\nport={p2p_port}\n"
    );
    for line in auth {
        conf.push_str(&format!("rpcauth={line}\n"));
    }
    conf
}

/// Where test coinbases go: P2WSH(OP_TRUE), spendable without keys.
pub fn mining_address() -> String {
    SimNode::anyone_can_spend_address()
}

/// Mines `n` blocks to the anyone-can-spend address.
pub fn mine(node: &SimNode, n: u32) -> Vec<String> {
    node.mine_blocks(n, &mining_address())
        .expect("generatetoaddress")
}

/// A spendable output.
#[derive(Clone, Copy, Debug)]
pub struct Utxo {
    pub outpoint: OutPoint,
    pub value: u64,
}

/// The coinbase output of the block at `height`.
pub fn coinbase_utxo(rpc: &RpcClient, height: u32) -> Utxo {
    let hash = rpc.call("getblockhash", json!([height])).unwrap();
    let block = rpc.call("getblock", json!([hash, 2])).unwrap();
    let coinbase = &block["tx"][0];
    Utxo {
        outpoint: OutPoint {
            txid: Txid::from_str(coinbase["txid"].as_str().unwrap()).unwrap(),
            vout: 0,
        },
        value: (coinbase["vout"][0]["value"].as_f64().unwrap() * 1e8).round() as u64,
    }
}

/// A P2WPKH output script with a made-up key hash.
pub fn p2wpkh(tag: u8) -> ScriptBuf {
    let mut bytes = vec![0x00, 0x14];
    bytes.extend([tag; 20]);
    ScriptBuf::from_bytes(bytes)
}

/// A version-2 transaction spending `inputs` (with the OP_TRUE witness) to `outputs`.
pub fn spend(inputs: &[Utxo], outputs: &[(ScriptBuf, u64)]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|u| TxIn {
                previous_output: u.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::from_slice(&[[0x51u8]]),
            })
            .collect(),
        output: outputs
            .iter()
            .map(|(spk, value)| TxOut {
                value: Amount::from_sat(*value),
                script_pubkey: spk.clone(),
            })
            .collect(),
    }
}

/// Spends `utxo` to one output paying `fee`.
pub fn spend_one(utxo: Utxo, fee: u64, tag: u8) -> Transaction {
    spend(&[utxo], &[(p2wpkh(tag), utxo.value - fee)])
}

pub fn hex(tx: &Transaction) -> String {
    encode::serialize_hex(tx)
}

/// `sendrawtransaction`.
pub fn send(
    rpc: &RpcClient,
    tx: &Transaction,
) -> Result<Value, plugnode_testkit::rpc::RpcCallError> {
    rpc.call("sendrawtransaction", json!([hex(tx)]))
}

/// The output `vout` of `tx` as a spendable output.
pub fn output_of(tx: &Transaction, vout: u32) -> Utxo {
    Utxo {
        outpoint: OutPoint {
            txid: tx.compute_txid(),
            vout,
        },
        value: tx.output[vout as usize].value.to_sat(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `ours` has the JSON shape of `theirs`: the same keys at every level, the same
/// JSON types, and for arrays every element shaped like the reference's elements.
pub fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let missing: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
            let extra: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{path}: keys differ from Bitcoin Core's: missing {missing:?}, extra {extra:?}"
            );
            for (key, value) in b {
                assert_same_shape(&a[key], value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if !b.is_empty() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(item, &b[i.min(b.len() - 1)], &format!("{path}[{i}]"));
                }
            }
        }
        (a, b) => assert_eq!(
            kind(a),
            kind(b),
            "{path}: JSON type differs from Bitcoin Core's ({a} vs {b})"
        ),
    }
}
