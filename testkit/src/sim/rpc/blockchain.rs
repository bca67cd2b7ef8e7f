//! Chain queries (Core's `rpc/blockchain.cpp`).

use super::json;
use super::{
    codes, get_bool, get_int, get_str, parse_hash, parse_verbosity, state, Params, RpcError,
    RpcResult,
};
use crate::sim::chain::{difficulty, target_hex};
use crate::sim::log::unix_now;
use crate::sim::node::Node;
use bitcoin::consensus::encode;
use bitcoin::{BlockHash, OutPoint, Txid};
use serde_json::{json, Map, Value};

fn block_not_found() -> RpcError {
    RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Block not found")
}

pub fn getbestblockhash(node: &Node, _: &Params) -> RpcResult {
    Ok(json!(state(node)?.chain.tip().hash.to_string()))
}

pub fn getblockcount(node: &Node, _: &Params) -> RpcResult {
    Ok(json!(state(node)?.chain.height()))
}

pub fn getblockhash(node: &Node, params: &Params) -> RpcResult {
    let height: i32 = get_int(params.get(0))?;
    let state = state(node)?;
    if height < 0 || height as u32 > state.chain.height() {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            "Block height out of range",
        ));
    }
    Ok(json!(state
        .chain
        .at(height as u32)
        .expect("in range")
        .hash
        .to_string()))
}

pub fn getblockheader(node: &Node, params: &Params) -> RpcResult {
    let hash: BlockHash = parse_hash(params.get(0), "hash")?;
    let verbose = if params.is_null(1) {
        true
    } else {
        get_bool(params.get(1))?
    };
    let state = state(node)?;
    let entry = state.chain.by_hash(&hash).ok_or_else(block_not_found)?;
    if !verbose {
        return Ok(json!(encode::serialize_hex(&entry.block.header)));
    }
    Ok(Value::Object(json::header(&state.chain, entry)))
}

pub fn getblock(node: &Node, params: &Params) -> RpcResult {
    let hash: BlockHash = parse_hash(params.get(0), "blockhash")?;
    let verbosity = parse_verbosity(params.get(1), 1)?;
    let state = state(node)?;
    let entry = state.chain.by_hash(&hash).ok_or_else(block_not_found)?;
    if verbosity <= 0 {
        return Ok(json!(encode::serialize_hex(&entry.block)));
    }
    Ok(json::block(&state.chain, entry, verbosity))
}

pub fn getblockchaininfo(node: &Node, _: &Params) -> RpcResult {
    let mut state = state(node)?;
    let ibd = state.is_initial_block_download(unix_now(), node.max_tip_age(), &node.log);
    let tip = state.chain.tip();
    let bits = tip.block.header.bits.to_consensus();
    let mut out = Map::new();
    out.insert("chain".into(), json!("regtest"));
    out.insert("blocks".into(), json!(tip.height));
    out.insert("headers".into(), json!(tip.height));
    out.insert("bestblockhash".into(), json!(tip.hash.to_string()));
    out.insert("bits".into(), json!(format!("{bits:08x}")));
    out.insert("target".into(), json!(target_hex(bits)));
    out.insert("difficulty".into(), json!(difficulty(bits)));
    out.insert("time".into(), json!(tip.block.header.time));
    out.insert("mediantime".into(), json!(tip.median_time));
    // Regtest has no chain statistics, so Core's GuessVerificationProgress is always 1.
    out.insert("verificationprogress".into(), json!(1.0));
    out.insert("initialblockdownload".into(), json!(ibd));
    out.insert(
        "chainwork".into(),
        json!(hex::encode(tip.chainwork.to_be_bytes())),
    );
    out.insert("size_on_disk".into(), json!(state.size_on_disk()));
    let prune = node.settings.prune_mib;
    out.insert("pruned".into(), json!(prune > 0));
    if prune > 0 {
        // The sim never deletes blocks: the first block with data is always genesis.
        out.insert("pruneheight".into(), json!(0));
        out.insert("automatic_pruning".into(), json!(prune > 1));
        if prune > 1 {
            out.insert("prune_target_size".into(), json!(prune * 1024 * 1024));
        }
    }
    out.insert("warnings".into(), json!([]));
    Ok(Value::Object(out))
}

pub fn getchaintips(node: &Node, _: &Params) -> RpcResult {
    let state = state(node)?;
    let tip = state.chain.tip();
    Ok(
        json!([{"height": tip.height, "hash": tip.hash.to_string(), "branchlen": 0, "status": "active"}]),
    )
}

pub fn getdifficulty(node: &Node, _: &Params) -> RpcResult {
    let state = state(node)?;
    Ok(json!(difficulty(
        state.chain.tip().block.header.bits.to_consensus()
    )))
}

pub fn gettxout(node: &Node, params: &Params) -> RpcResult {
    let txid: Txid = parse_hash(params.get(0), "txid")?;
    let vout: u32 = get_int(params.get(1))?;
    let include_mempool = if params.is_null(2) {
        true
    } else {
        get_bool(params.get(2))?
    };
    let state = state(node)?;
    let outpoint = OutPoint { txid, vout };
    let (output, height, coinbase) =
        if include_mempool && state.mempool.spender(&outpoint).is_some() {
            return Ok(Value::Null);
        } else if let Some(coin) = state.chain.coin(&outpoint) {
            (coin.output.clone(), Some(coin.height), coin.coinbase)
        } else if let Some(output) = include_mempool
            .then(|| state.mempool.output(&outpoint))
            .flatten()
        {
            (output.clone(), None, false)
        } else {
            return Ok(Value::Null);
        };
    let tip = state.chain.tip();
    Ok(json!({
        "bestblock": tip.hash.to_string(),
        "confirmations": height.map_or(0, |h| tip.height - h + 1),
        "value": json::amount(output.value.to_sat()),
        "scriptPubKey": json::script_pubkey(output.script_pubkey.as_bytes()),
        "coinbase": coinbase,
    }))
}

pub fn getindexinfo(node: &Node, params: &Params) -> RpcResult {
    let name = if params.is_null(0) {
        None
    } else {
        Some(get_str(params.get(0))?.to_string())
    };
    let state = state(node)?;
    let mut out = Map::new();
    if node.settings.txindex && name.as_deref().is_none_or(|n| n == "txindex") {
        out.insert(
            "txindex".into(),
            json!({"synced": true, "best_block_height": state.chain.height()}),
        );
    }
    Ok(Value::Object(out))
}
