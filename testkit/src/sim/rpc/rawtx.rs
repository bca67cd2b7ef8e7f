//! Raw transactions (Core's `rpc/rawtransaction.cpp`).

use super::json::{self, Details};
use super::mempool::decode_tx;
use super::{
    codes, get_bool, get_str, parse_hash, parse_verbosity, state, Params, RpcError, RpcResult,
};
use crate::sim::node::Node;
use bitcoin::consensus::encode;
use bitcoin::{BlockHash, Txid};
use serde_json::{json, Value};

pub fn getrawtransaction(node: &Node, params: &Params) -> RpcResult {
    let txid: Txid = parse_hash(params.get(0), "parameter 1")?;
    let state = state(node)?;
    let chain = &state.chain;
    if txid.to_raw_hash() == chain.genesis().block.header.merkle_root.to_raw_hash() {
        return Err(RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            "The genesis block coinbase is not considered an ordinary transaction and cannot be retrieved",
        ));
    }
    let verbosity = parse_verbosity(params.get(1), 0)?;
    let given_block =
        if params.is_null(2) {
            None
        } else {
            let hash: BlockHash = parse_hash(params.get(2), "parameter 3")?;
            Some(chain.by_hash(&hash).ok_or_else(|| {
                RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Block hash not found")
            })?)
        };

    // Where the transaction is: (block entry, index in block) or the mempool.
    let mut found_block = None;
    let mut found_tx = None;
    match given_block {
        Some(entry) => {
            if let Some(i) = entry
                .block
                .txdata
                .iter()
                .position(|t| t.compute_txid() == txid)
            {
                found_block = Some((entry, i));
                found_tx = Some(entry.block.txdata[i].clone());
            }
        }
        None => {
            if let Some(e) = state.mempool.get(&txid) {
                found_tx = Some(e.tx.clone());
            } else if let Some(Some(height)) = chain.txindex_lookup(&txid) {
                let entry = chain.at(height).expect("indexed height exists");
                if let Some(i) = entry
                    .block
                    .txdata
                    .iter()
                    .position(|t| t.compute_txid() == txid)
                {
                    found_block = Some((entry, i));
                    found_tx = Some(entry.block.txdata[i].clone());
                }
            }
        }
    }
    let Some(tx) = found_tx else {
        let message = if given_block.is_some() {
            "No such transaction found in the provided block"
        } else if chain.txindex_lookup(&txid).is_none() {
            "No such mempool transaction. Use -txindex or provide a block hash to enable blockchain transaction queries"
        } else {
            "No such mempool or blockchain transaction"
        };
        return Err(RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            format!("{message}. Use gettransaction for wallet transactions."),
        ));
    };
    if verbosity <= 0 {
        return Ok(json!(encode::serialize_hex(&tx)));
    }

    let mut result = serde_json::Map::new();
    if given_block.is_some() {
        result.insert("in_active_chain".into(), json!(true));
    }
    let (undo, details) = match found_block {
        Some((entry, i)) if verbosity >= 2 && i > 0 => (
            entry.undo.get(i - 1).map(|u| u.as_slice()),
            Details::WithPrevout,
        ),
        _ => (None, Details::Plain),
    };
    result.extend(json::tx(&tx, undo, details, true));
    if let Some((entry, _)) = found_block {
        result.insert("blockhash".into(), json!(entry.hash.to_string()));
        result.insert(
            "confirmations".into(),
            json!(chain.height() - entry.height + 1),
        );
        result.insert("time".into(), json!(entry.block.header.time));
        result.insert("blocktime".into(), json!(entry.block.header.time));
    }
    Ok(Value::Object(result))
}

pub fn decoderawtransaction(_node: &Node, params: &Params) -> RpcResult {
    let text = get_str(params.get(0))?;
    if !params.is_null(1) {
        get_bool(params.get(1))?;
    }
    let tx = decode_tx(text)
        .ok_or_else(|| RpcError::new(codes::DESERIALIZATION_ERROR, "TX decode failed"))?;
    Ok(Value::Object(json::tx(&tx, None, Details::Plain, false)))
}
