//! JSON shapes shared by several methods, after Core's `core_write.cpp`
//! (`TxToUniv`, `ScriptToUniv`, `ValueFromAmount`) and `rpc/blockchain.cpp`
//! (`blockheaderToJSON`, `blockToJSON`).

use crate::sim::chain::{difficulty, target_hex, BlockEntry, Chain, Coin};
use crate::sim::script;
use bitcoin::consensus::encode;
use bitcoin::Transaction;
use serde_json::{json, Map, Value};

/// An amount in BTC (Core prints 8 decimals; JSON numbers carry the same value).
pub fn amount(sats: u64) -> Value {
    json!(sats as f64 / 100_000_000.0)
}

/// Core's `ScriptToUniv` with hex and address: asm, desc, hex, address (if any), type.
pub fn script_pubkey(spk: &[u8]) -> Value {
    let mut out = Map::new();
    out.insert("asm".into(), json!(script::to_asm(spk, false)));
    out.insert("desc".into(), json!(script::infer_descriptor(spk)));
    out.insert("hex".into(), json!(hex::encode(spk)));
    if let Some(address) = script::address(spk) {
        out.insert("address".into(), json!(address));
    }
    out.insert("type".into(), json!(script::classify(spk).name()));
    Value::Object(out)
}

/// How much `TxToUniv` shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Details {
    /// Inputs and outputs (and `fee` when undo data is given).
    Plain,
    /// Also each input's `prevout`.
    WithPrevout,
}

/// Core's `TxToUniv`. `undo` are the coins the transaction spent (for `fee`/`prevout`).
pub fn tx(
    tx: &Transaction,
    undo: Option<&[Coin]>,
    details: Details,
    include_hex: bool,
) -> Map<String, Value> {
    let mut entry = Map::new();
    let weight = tx.weight().to_wu();
    entry.insert("txid".into(), json!(tx.compute_txid().to_string()));
    entry.insert("hash".into(), json!(tx.compute_wtxid().to_string()));
    entry.insert("version".into(), json!(tx.version.0));
    entry.insert("size".into(), json!(tx.total_size()));
    entry.insert("vsize".into(), json!(weight.div_ceil(4)));
    entry.insert("weight".into(), json!(weight));
    entry.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    let coinbase = tx.is_coinbase();
    let mut total_in: u64 = 0;
    let mut vin = Vec::with_capacity(tx.input.len());
    for (i, input) in tx.input.iter().enumerate() {
        let mut item = Map::new();
        if coinbase {
            item.insert(
                "coinbase".into(),
                json!(hex::encode(input.script_sig.as_bytes())),
            );
        } else {
            item.insert("txid".into(), json!(input.previous_output.txid.to_string()));
            item.insert("vout".into(), json!(input.previous_output.vout));
            item.insert(
                "scriptSig".into(),
                json!({
                    "asm": script::to_asm(input.script_sig.as_bytes(), true),
                    "hex": hex::encode(input.script_sig.as_bytes()),
                }),
            );
        }
        if !input.witness.is_empty() {
            let items: Vec<Value> = input
                .witness
                .iter()
                .map(|w| json!(hex::encode(w)))
                .collect();
            item.insert("txinwitness".into(), Value::Array(items));
        }
        if let Some(coin) = undo.and_then(|u| u.get(i)) {
            total_in += coin.output.value.to_sat();
            if details == Details::WithPrevout {
                item.insert(
                    "prevout".into(),
                    json!({
                        "generated": coin.coinbase,
                        "height": coin.height,
                        "value": amount(coin.output.value.to_sat()),
                        "scriptPubKey": script_pubkey(coin.output.script_pubkey.as_bytes()),
                    }),
                );
            }
        }
        item.insert("sequence".into(), json!(input.sequence.0));
        vin.push(Value::Object(item));
    }
    entry.insert("vin".into(), Value::Array(vin));
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| {
            json!({
                "value": amount(o.value.to_sat()),
                "n": n,
                "scriptPubKey": script_pubkey(o.script_pubkey.as_bytes()),
            })
        })
        .collect();
    entry.insert("vout".into(), Value::Array(vout));
    if undo.is_some() && !coinbase {
        let total_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        entry.insert("fee".into(), amount(total_in.saturating_sub(total_out)));
    }
    if include_hex {
        entry.insert("hex".into(), json!(encode::serialize_hex(tx)));
    }
    entry
}

/// Core's `blockheaderToJSON`.
pub fn header(chain: &Chain, entry: &BlockEntry) -> Map<String, Value> {
    let h = &entry.block.header;
    let tip_height = chain.height();
    let mut out = Map::new();
    out.insert("hash".into(), json!(entry.hash.to_string()));
    out.insert("confirmations".into(), json!(tip_height - entry.height + 1));
    out.insert("height".into(), json!(entry.height));
    out.insert("version".into(), json!(h.version.to_consensus()));
    out.insert(
        "versionHex".into(),
        json!(format!("{:08x}", h.version.to_consensus())),
    );
    out.insert("merkleroot".into(), json!(h.merkle_root.to_string()));
    out.insert("time".into(), json!(h.time));
    out.insert("mediantime".into(), json!(entry.median_time));
    out.insert("nonce".into(), json!(h.nonce));
    out.insert(
        "bits".into(),
        json!(format!("{:08x}", h.bits.to_consensus())),
    );
    out.insert("target".into(), json!(target_hex(h.bits.to_consensus())));
    out.insert(
        "difficulty".into(),
        json!(difficulty(h.bits.to_consensus())),
    );
    out.insert(
        "chainwork".into(),
        json!(hex::encode(entry.chainwork.to_be_bytes())),
    );
    out.insert("nTx".into(), json!(entry.block.txdata.len()));
    if entry.height > 0 {
        out.insert(
            "previousblockhash".into(),
            json!(h.prev_blockhash.to_string()),
        );
    }
    if let Some(next) = chain.at(entry.height + 1) {
        out.insert("nextblockhash".into(), json!(next.hash.to_string()));
    }
    out
}

/// Core's `blockToJSON` for verbosity 1 to 3.
pub fn block(chain: &Chain, entry: &BlockEntry, verbosity: i64) -> Value {
    let mut out = header(chain, entry);
    let block = &entry.block;
    let stripped: usize = 80
        + encode::VarInt(block.txdata.len() as u64).size()
        + block.txdata.iter().map(|t| t.base_size()).sum::<usize>();
    out.insert("strippedsize".into(), json!(stripped));
    out.insert("size".into(), json!(block.total_size()));
    out.insert("weight".into(), json!(block.weight().to_wu()));
    let txs: Vec<Value> = if verbosity <= 1 {
        block
            .txdata
            .iter()
            .map(|t| json!(t.compute_txid().to_string()))
            .collect()
    } else {
        let details = if verbosity >= 3 {
            Details::WithPrevout
        } else {
            Details::Plain
        };
        block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // Genesis has no undo data; the coinbase never has any.
                let undo = if i == 0 {
                    None
                } else {
                    entry.undo.get(i - 1).map(|u| u.as_slice())
                };
                Value::Object(tx(t, undo, details, true))
            })
            .collect()
    };
    out.insert("tx".into(), Value::Array(txs));
    Value::Object(out)
}
