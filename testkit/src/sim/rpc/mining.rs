//! Mining and fee estimation (Core's `rpc/mining.cpp`, `rpc/fees.cpp`).

use super::{codes, get_int, get_str, is_hex, state, Params, RpcError, RpcResult};
use crate::sim::chain::BlockError;
use crate::sim::node::{Node, NodeError};
use crate::sim::script;
use bitcoin::consensus::encode;
use bitcoin::{Block, ScriptBuf};
use serde_json::{json, Value};

/// Core's `HighestTargetTracked` for the long horizon.
const MAX_CONF_TARGET: i64 = 1008;

fn node_error(err: NodeError) -> RpcError {
    match err {
        NodeError::Store(e) => RpcError::new(
            codes::INTERNAL_ERROR,
            format!("regtest-sim could not write the block: {e}"),
        ),
        NodeError::Block(e) => RpcError::new(
            codes::INTERNAL_ERROR,
            format!("ProcessNewBlock, block not accepted: {e}"),
        ),
    }
}

/// Core's `generateBlocks`.
fn generate(node: &Node, count: i32, script: &ScriptBuf, max_tries: i64) -> RpcResult {
    if count <= 0 || max_tries <= 0 {
        return Ok(json!([]));
    }
    let mut state = state(node)?;
    let hashes = state
        .mine(count as u32, script, node.max_tip_age(), &node.log)
        .map_err(node_error)?;
    Ok(Value::Array(
        hashes.iter().map(|h| json!(h.to_string())).collect(),
    ))
}

fn max_tries(params: &Params, i: usize) -> Result<i64, RpcError> {
    if params.is_null(i) {
        Ok(1_000_000)
    } else {
        get_int::<i32>(params.get(i)).map(i64::from)
    }
}

pub fn generatetoaddress(node: &Node, params: &Params) -> RpcResult {
    let count: i32 = get_int(params.get(0))?;
    let tries = max_tries(params, 2)?;
    let address = get_str(params.get(1))?;
    let script = script::parse_regtest_address(address)
        .ok_or_else(|| RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Error: Invalid address"))?;
    generate(node, count, &script, tries)
}

pub fn generatetodescriptor(node: &Node, params: &Params) -> RpcResult {
    let count: i32 = get_int(params.get(0))?;
    let tries = max_tries(params, 2)?;
    let descriptor = get_str(params.get(1))?;
    let script = script::script_from_descriptor(descriptor)
        .map_err(|e| RpcError::new(codes::INVALID_ADDRESS_OR_KEY, e))?;
    generate(node, count, &script, tries)
}

pub fn submitblock(node: &Node, params: &Params) -> RpcResult {
    let text = get_str(params.get(0))?;
    let block: Block = is_hex(text)
        .then(|| encode::deserialize_hex(text).ok())
        .flatten()
        .ok_or_else(|| RpcError::new(codes::DESERIALIZATION_ERROR, "Block decode failed"))?;
    let mut state = state(node)?;
    if state.chain.by_hash(&block.block_hash()).is_some() {
        return Ok(json!("duplicate"));
    }
    if block.header.prev_blockhash != state.chain.tip().hash {
        // The sim keeps a single chain: blocks off the tip are not stored.
        return Ok(json!(
            if state.chain.by_hash(&block.header.prev_blockhash).is_some() {
                "inconclusive"
            } else {
                "prev-blk-not-found"
            }
        ));
    }
    match state.submit_block(block, node.max_tip_age(), &node.log) {
        Ok(()) => Ok(Value::Null),
        Err(NodeError::Block(BlockError::Duplicate)) => Ok(json!("duplicate")),
        Err(NodeError::Block(reason)) => Ok(json!(reason.to_string())),
        Err(err) => Err(node_error(err)),
    }
}

pub fn estimatesmartfee(node: &Node, params: &Params) -> RpcResult {
    let target: i32 = get_int(params.get(0))?;
    if target < 1 || i64::from(target) > MAX_CONF_TARGET {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            format!("Invalid conf_target, must be between 1 and {MAX_CONF_TARGET}"),
        ));
    }
    let mode = if params.is_null(1) {
        "economical".to_string()
    } else {
        get_str(params.get(1))?.to_string()
    };
    if !["unset", "economical", "conservative"].contains(&mode.to_ascii_lowercase().as_str()) {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            "Invalid estimate_mode parameter, must be one of: \"unset\", \"economical\", \"conservative\"",
        ));
    }
    let state = state(node)?;
    // Like a fresh Core node on regtest, the estimator never has enough data.
    Ok(json!({
        "errors": ["Insufficient data or no feerate found"],
        "blocks": state.fee_estimate_target(target as u32),
    }))
}
