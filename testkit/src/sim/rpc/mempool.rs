//! Mempool queries and transaction submission (Core's `rpc/mempool.cpp`).

use super::json::amount;
use super::{
    amount_from_value, codes, get_bool, get_str, is_hex, parse_fee_rate, parse_hash, state, Params,
    RpcError, RpcResult,
};
use crate::sim::mempool::{Mempool, CLUSTER_COUNT_LIMIT, CLUSTER_SIZE_LIMIT};
use crate::sim::node::{Node, SendError};
use crate::sim::policy::{fee_at, vsize, RejectKind};
use crate::sim::script;
use bitcoin::consensus::encode;
use bitcoin::{Transaction, Txid};
use serde_json::{json, Value};

/// Core's `DEFAULT_MAX_RAW_TX_FEE_RATE`: 0.10 BTC/kvB.
const DEFAULT_MAX_RAW_TX_FEE_RATE: u64 = 10_000_000;
/// Core's `MAX_PACKAGE_COUNT`.
const MAX_PACKAGE_COUNT: usize = 25;

/// Core's `DecodeHexTx` for RPC input.
pub fn decode_tx(text: &str) -> Option<Transaction> {
    if !is_hex(text) {
        return None;
    }
    encode::deserialize_hex(text).ok()
}

/// Core's `entryToJSON`.
fn entry_json(pool: &Mempool, txid: &Txid) -> Value {
    let entry = pool.get(txid).expect("caller checked");
    let ancestors = pool.ancestors(txid);
    let descendants = pool.descendants(txid);
    let fees_of = |set: &std::collections::HashSet<Txid>| entry.fee + pool.fee_weight(set).fee;
    let chunk = pool.chunk(txid);
    let depends: Vec<String> = pool.parents(txid).iter().map(|t| t.to_string()).collect();
    let spent_by: Vec<String> = pool.children(txid).iter().map(|t| t.to_string()).collect();
    json!({
        "vsize": entry.vsize,
        "weight": entry.weight,
        "time": entry.time,
        "height": entry.height,
        "descendantcount": descendants.len() + 1,
        "descendantsize": entry.vsize + pool.vsize_of(&descendants),
        "ancestorcount": ancestors.len() + 1,
        "ancestorsize": entry.vsize + pool.vsize_of(&ancestors),
        "wtxid": entry.wtxid.to_string(),
        "chunkweight": chunk.weight,
        "fees": {
            "base": amount(entry.fee),
            "modified": amount(entry.fee),
            "ancestor": amount(fees_of(&ancestors)),
            "descendant": amount(fees_of(&descendants)),
            "chunk": amount(chunk.fee),
        },
        "depends": depends,
        "spentby": spent_by,
        "bip125-replaceable": pool.signals_rbf(txid),
        "unbroadcast": entry.unbroadcast,
    })
}

pub fn getmempoolentry(node: &Node, params: &Params) -> RpcResult {
    let txid: Txid = parse_hash(params.get(0), "txid")?;
    let state = state(node)?;
    if state.mempool.get(&txid).is_none() {
        return Err(RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            "Transaction not in mempool",
        ));
    }
    Ok(entry_json(&state.mempool, &txid))
}

pub fn getmempoolinfo(node: &Node, _: &Params) -> RpcResult {
    let state = state(node)?;
    let pool = &state.mempool;
    let policy = &node.settings.policy;
    Ok(json!({
        "loaded": state.mempool_loaded,
        "size": pool.len(),
        "bytes": pool.total_vsize(),
        "usage": pool.usage(),
        "total_fee": amount(pool.total_fee()),
        "maxmempool": policy.max_mempool_bytes,
        "mempoolminfee": amount(policy.min_relay_feerate),
        "minrelaytxfee": amount(policy.min_relay_feerate),
        "incrementalrelayfee": amount(policy.incremental_relay_feerate),
        "unbroadcastcount": pool.unbroadcast_count(),
        "fullrbf": true,
        "permitbaremultisig": policy.permit_bare_multisig,
        "maxdatacarriersize": policy.max_datacarrier_bytes.unwrap_or(0),
        "limitclustercount": CLUSTER_COUNT_LIMIT,
        "limitclustersize": CLUSTER_SIZE_LIMIT,
    }))
}

pub fn getrawmempool(node: &Node, params: &Params) -> RpcResult {
    let verbose = if params.is_null(0) {
        false
    } else {
        get_bool(params.get(0))?
    };
    let with_sequence = if params.is_null(1) {
        false
    } else {
        get_bool(params.get(1))?
    };
    let state = state(node)?;
    let pool = &state.mempool;
    if verbose {
        if with_sequence {
            return Err(RpcError::new(
                codes::INVALID_PARAMETER,
                "Verbose results cannot contain mempool sequence values.",
            ));
        }
        let map: serde_json::Map<String, Value> = pool
            .entries_in_order()
            .iter()
            .map(|e| (e.txid.to_string(), entry_json(pool, &e.txid)))
            .collect();
        return Ok(Value::Object(map));
    }
    let txids: Vec<String> = pool
        .entries_in_order()
        .iter()
        .map(|e| e.txid.to_string())
        .collect();
    if with_sequence {
        return Ok(json!({"txids": txids, "mempool_sequence": pool.sequence}));
    }
    Ok(json!(txids))
}

pub fn sendrawtransaction(node: &Node, params: &Params) -> RpcResult {
    let max_burn = if params.is_null(2) {
        0
    } else {
        amount_from_value(params.get(2))?
    };
    let tx = decode_tx(get_str(params.get(0))?).ok_or_else(|| {
        RpcError::new(
            codes::DESERIALIZATION_ERROR,
            "TX decode failed. Make sure the tx has at least one input.",
        )
    })?;
    for output in &tx.output {
        let spk = output.script_pubkey.as_bytes();
        if (script::is_unspendable(spk) || !script::has_valid_ops(spk))
            && output.value.to_sat() > max_burn
        {
            return Err(RpcError::new(
                codes::VERIFY_ERROR,
                "Unspendable output exceeds maximum configured by user (maxburnamount)",
            ));
        }
    }
    let rate = if params.is_null(1) {
        DEFAULT_MAX_RAW_TX_FEE_RATE
    } else {
        parse_fee_rate(params.get(1))?
    };
    let max_fee = Some(fee_at(rate, vsize(&tx))).filter(|f| *f > 0);
    let mut state = state(node)?;
    match state.send_transaction(tx, max_fee, &node.settings) {
        Ok(txid) => Ok(json!(txid.to_string())),
        Err(SendError::AlreadyInUtxoSet) => Err(RpcError::new(
            codes::VERIFY_ALREADY_IN_UTXO_SET,
            "Transaction outputs already in utxo set",
        )),
        Err(SendError::MaxFeeExceeded) => Err(RpcError::new(
            codes::VERIFY_ERROR,
            "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
        )),
        Err(SendError::Rejected(reject)) => {
            let code = match reject.kind {
                RejectKind::MissingInputs => codes::VERIFY_ERROR,
                RejectKind::Rejected => codes::VERIFY_REJECTED,
            };
            Err(RpcError::new(code, reject.message()))
        }
    }
}

pub fn testmempoolaccept(node: &Node, params: &Params) -> RpcResult {
    let raw = params.get(0).as_array().cloned().unwrap_or_default();
    if raw.is_empty() || raw.len() > MAX_PACKAGE_COUNT {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            format!("Array must contain between 1 and {MAX_PACKAGE_COUNT} transactions."),
        ));
    }
    let rate = if params.is_null(1) {
        DEFAULT_MAX_RAW_TX_FEE_RATE
    } else {
        parse_fee_rate(params.get(1))?
    };
    let mut txs = Vec::with_capacity(raw.len());
    for value in &raw {
        let text = get_str(value)?;
        txs.push(decode_tx(text).ok_or_else(|| {
            RpcError::new(
                codes::DESERIALIZATION_ERROR,
                format!("TX decode failed: {text} Make sure the tx has at least one input."),
            )
        })?);
    }
    if txs.len() > 1 {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            "regtest-sim's testmempoolaccept takes one transaction at a time (no package validation)",
        ));
    }
    let tx = txs.remove(0);
    let txid = tx.compute_txid();
    let wtxid = tx.compute_wtxid();
    let mut state = state(node)?;
    let now = crate::sim::log::unix_now();
    let mut result = serde_json::Map::new();
    result.insert("txid".into(), json!(txid.to_string()));
    result.insert("wtxid".into(), json!(wtxid.to_string()));
    match state.accept(tx, &node.settings, now, true, false) {
        Ok(accepted) => {
            let max_fee = fee_at(rate, accepted.vsize);
            if max_fee > 0 && accepted.fee > max_fee {
                result.insert("allowed".into(), json!(false));
                result.insert("reject-reason".into(), json!("max-fee-exceeded"));
            } else {
                result.insert("allowed".into(), json!(true));
                result.insert("vsize".into(), json!(accepted.vsize));
                result.insert(
                    "fees".into(),
                    json!({
                        "base": amount(accepted.fee),
                        "effective-feerate": amount(accepted.fee * 1000 / accepted.vsize.max(1)),
                        "effective-includes": [wtxid.to_string()],
                    }),
                );
            }
        }
        Err(reject) => {
            result.insert("allowed".into(), json!(false));
            if reject.kind == RejectKind::MissingInputs {
                result.insert("reject-reason".into(), json!("missing-inputs"));
            } else {
                result.insert("reject-reason".into(), json!(reject.reason));
                result.insert("reject-details".into(), json!(reject.message()));
            }
        }
    }
    Ok(json!([Value::Object(result)]))
}
