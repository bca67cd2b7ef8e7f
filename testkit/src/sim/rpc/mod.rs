//! RPC methods with Bitcoin Core v30's names, argument rules, answers and errors.
//!
//! [`execute`] follows Core's `CRPCTable::execute` and `RPCHelpMan::HandleRequest`: the
//! warm-up error first, then "Method not found", named arguments turned into positional
//! ones, the argument count (Core answers with the help text), then the JSON types of all
//! arguments ("Wrong type passed: …"), then the method itself.

mod blockchain;
mod control;
mod json;
mod mempool;
mod mining;
mod rawtx;

use super::node::Node;
use serde_json::Value;

/// Core's RPC error codes (`rpc/protocol.h`).
pub mod codes {
    pub const MISC_ERROR: i64 = -1;
    pub const TYPE_ERROR: i64 = -3;
    pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
    pub const INVALID_PARAMETER: i64 = -8;
    pub const DESERIALIZATION_ERROR: i64 = -22;
    pub const VERIFY_ERROR: i64 = -25;
    pub const VERIFY_REJECTED: i64 = -26;
    pub const VERIFY_ALREADY_IN_UTXO_SET: i64 = -27;
    pub const IN_WARMUP: i64 = -28;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const PARSE_ERROR: i64 = -32700;
}

/// An RPC error as Core reports it: `{"code": …, "message": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

pub type RpcResult = Result<Value, RpcError>;

/// Core's `RPCArg::Type`, as far as type checks go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgType {
    Str,
    Num,
    Bool,
    Arr,
    /// Checked by the method itself (amounts, verbosity levels).
    Any,
}

/// One argument of a method.
struct Arg {
    /// Core's names, `|`-separated aliases.
    names: &'static str,
    ty: ArgType,
    required: bool,
}

const fn req(names: &'static str, ty: ArgType) -> Arg {
    Arg {
        names,
        ty,
        required: true,
    }
}

const fn opt(names: &'static str, ty: ArgType) -> Arg {
    Arg {
        names,
        ty,
        required: false,
    }
}

type Handler = fn(&Node, &Params) -> RpcResult;

/// A method table entry.
struct Method {
    name: &'static str,
    args: &'static [Arg],
    description: &'static str,
    handler: Handler,
}

/// Positional arguments after named ones were resolved; missing ones read as `null`.
pub struct Params {
    values: Vec<Value>,
}

const NULL: Value = Value::Null;

impl Params {
    pub fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&NULL)
    }

    pub fn is_null(&self, i: usize) -> bool {
        self.get(i).is_null()
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected_name(ty: ArgType) -> &'static str {
    match ty {
        ArgType::Str => "string",
        ArgType::Num => "number",
        ArgType::Bool => "bool",
        ArgType::Arr => "array",
        ArgType::Any => "any",
    }
}

fn matches(ty: ArgType, value: &Value) -> bool {
    match ty {
        ArgType::Any => true,
        ArgType::Str => value.is_string(),
        ArgType::Num => value.is_number(),
        ArgType::Bool => value.is_boolean(),
        ArgType::Arr => value.is_array(),
    }
}

/// Core's `UniValue::checkType` message ("JSON value of type X is not of expected type Y").
pub fn type_mismatch(value: &Value, expected: &str) -> RpcError {
    RpcError::new(
        codes::TYPE_ERROR,
        format!(
            "JSON value of type {} is not of expected type {expected}",
            type_name(value)
        ),
    )
}

/// `get_str()`.
pub fn get_str(value: &Value) -> Result<&str, RpcError> {
    value.as_str().ok_or_else(|| type_mismatch(value, "string"))
}

/// `get_bool()`.
pub fn get_bool(value: &Value) -> Result<bool, RpcError> {
    value.as_bool().ok_or_else(|| type_mismatch(value, "bool"))
}

/// `getInt<T>()`: a number that is an integer in range, else "JSON integer out of range".
pub fn get_int<T: TryFrom<i64>>(value: &Value) -> Result<T, RpcError> {
    if !value.is_number() {
        return Err(type_mismatch(value, "number"));
    }
    value
        .as_i64()
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| RpcError::new(codes::MISC_ERROR, "JSON integer out of range"))
}

/// Core's `ParseHashV`: 64 hex digits, in display order.
pub fn parse_hash<T: std::str::FromStr>(value: &Value, name: &str) -> Result<T, RpcError> {
    let text = get_str(value)?;
    if text.len() != 64 {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            format!(
                "{name} must be of length 64 (not {}, for '{text}')",
                text.len()
            ),
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            format!("{name} must be hexadecimal string (not '{text}')"),
        ));
    }
    text.parse::<T>().map_err(|_| {
        RpcError::new(
            codes::INVALID_PARAMETER,
            format!("{name} must be hexadecimal string (not '{text}')"),
        )
    })
}

/// Core's `IsHex`: non-empty, even length, hex digits only.
pub fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Core's `ParseVerbosity` (booleans allowed: false = 0, true = 1).
pub fn parse_verbosity(value: &Value, default: i64) -> Result<i64, RpcError> {
    match value {
        Value::Null => Ok(default),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => get_int::<i32>(other).map(i64::from),
    }
}

/// Core's `AmountFromValue`: a number or string of BTC with at most 8 decimals.
pub fn amount_from_value(value: &Value) -> Result<u64, RpcError> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(RpcError::new(
                codes::TYPE_ERROR,
                "Amount is not a number or string",
            ))
        }
    };
    let invalid = || RpcError::new(codes::TYPE_ERROR, "Invalid amount");
    let sats: i64 = if text.contains(['e', 'E']) {
        let f: f64 = text.parse().map_err(|_| invalid())?;
        let scaled = f * 1e8;
        if (scaled - scaled.round()).abs() > 1e-6 || !scaled.is_finite() {
            return Err(invalid());
        }
        scaled.round() as i64
    } else {
        let negative = text.starts_with('-');
        let digits = text.trim_start_matches('-');
        let amount = bitcoin::Amount::from_str_in(digits, bitcoin::Denomination::Bitcoin)
            .map_err(|_| invalid())?;
        let sats = i64::try_from(amount.to_sat()).map_err(|_| invalid())?;
        if negative {
            -sats
        } else {
            sats
        }
    };
    if !(0..=super::policy::MAX_MONEY as i64).contains(&sats) {
        return Err(RpcError::new(codes::TYPE_ERROR, "Amount out of range"));
    }
    Ok(sats as u64)
}

/// Core's `ParseFeeRate`: sat/kvB from a BTC/kvB amount, below 1 BTC/kvB.
pub fn parse_fee_rate(value: &Value) -> Result<u64, RpcError> {
    let rate = amount_from_value(value)?;
    if rate >= 100_000_000 {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            "Fee rates larger than or equal to 1BTC/kvB are not accepted",
        ));
    }
    Ok(rate)
}

/// The error every method returns before the node finished loading.
fn still_loading() -> RpcError {
    RpcError::new(codes::IN_WARMUP, "Loading block index…")
}

const METHODS: &[Method] = &[
    // Blockchain.
    Method { name: "getbestblockhash", args: &[], description: "Returns the hash of the best (tip) block in the most-work fully-validated chain.", handler: blockchain::getbestblockhash },
    Method { name: "getblock", args: &[req("blockhash", ArgType::Str), opt("verbosity|verbose", ArgType::Any)], description: "If verbosity is 0, returns a string that is serialized, hex-encoded data for block 'hash'.\nIf verbosity is 1, returns an Object with information about block <hash>.\nIf verbosity is 2, returns an Object with information about block <hash> and information about each transaction.\nIf verbosity is 3, returns an Object with information about block <hash> and information about each transaction, including prevout information for inputs.", handler: blockchain::getblock },
    Method { name: "getblockchaininfo", args: &[], description: "Returns an object containing various state info regarding blockchain processing.", handler: blockchain::getblockchaininfo },
    Method { name: "getblockcount", args: &[], description: "Returns the height of the most-work fully-validated chain.\nThe genesis block has height 0.", handler: blockchain::getblockcount },
    Method { name: "getblockhash", args: &[req("height", ArgType::Num)], description: "Returns hash of block in best-block-chain at height provided.", handler: blockchain::getblockhash },
    Method { name: "getblockheader", args: &[req("blockhash", ArgType::Str), opt("verbose", ArgType::Bool)], description: "If verbose is false, returns a string that is serialized, hex-encoded data for blockheader 'hash'.\nIf verbose is true, returns an Object with information about blockheader <hash>.", handler: blockchain::getblockheader },
    Method { name: "getchaintips", args: &[], description: "Return information about all known tips in the block tree, including the main chain as well as orphaned branches.", handler: blockchain::getchaintips },
    Method { name: "getdifficulty", args: &[], description: "Returns the proof-of-work difficulty as a multiple of the minimum difficulty.", handler: blockchain::getdifficulty },
    Method { name: "gettxout", args: &[req("txid", ArgType::Str), req("n", ArgType::Num), opt("include_mempool", ArgType::Bool)], description: "Returns details about an unspent transaction output.", handler: blockchain::gettxout },
    Method { name: "getindexinfo", args: &[opt("index_name", ArgType::Str)], description: "Returns the status of one or all available indices currently running in the node.", handler: blockchain::getindexinfo },
    // Mempool.
    Method { name: "getmempoolentry", args: &[req("txid", ArgType::Str)], description: "Returns mempool data for given transaction", handler: mempool::getmempoolentry },
    Method { name: "getmempoolinfo", args: &[], description: "Returns details on the active state of the TX memory pool.", handler: mempool::getmempoolinfo },
    Method { name: "getrawmempool", args: &[opt("verbose", ArgType::Bool), opt("mempool_sequence", ArgType::Bool)], description: "Returns all transaction ids in memory pool as a json array of string transaction ids.", handler: mempool::getrawmempool },
    Method { name: "sendrawtransaction", args: &[req("hexstring", ArgType::Str), opt("maxfeerate", ArgType::Any), opt("maxburnamount", ArgType::Any)], description: "Submit a raw transaction (serialized, hex-encoded) to local node and network.", handler: mempool::sendrawtransaction },
    Method { name: "testmempoolaccept", args: &[req("rawtxs", ArgType::Arr), opt("maxfeerate", ArgType::Any)], description: "Returns result of mempool acceptance tests indicating if raw transaction(s) (serialized, hex-encoded) would be accepted by mempool.", handler: mempool::testmempoolaccept },
    // Raw transactions.
    Method { name: "decoderawtransaction", args: &[req("hexstring", ArgType::Str), opt("iswitness", ArgType::Bool)], description: "Return a JSON object representing the serialized, hex-encoded transaction.", handler: rawtx::decoderawtransaction },
    Method { name: "getrawtransaction", args: &[req("txid", ArgType::Str), opt("verbosity|verbose", ArgType::Any), opt("blockhash", ArgType::Str)], description: "By default, this call only returns a transaction if it is in the mempool. If -txindex is enabled\nand no blockhash argument is passed, it will return the transaction if it is in a block in the blockchain.", handler: rawtx::getrawtransaction },
    // Mining and fees.
    Method { name: "estimatesmartfee", args: &[req("conf_target", ArgType::Num), opt("estimate_mode", ArgType::Str)], description: "Estimates the approximate fee per kilobyte needed for a transaction to begin\nconfirmation within conf_target blocks if possible and return the number of blocks\nfor which the estimate is valid.", handler: mining::estimatesmartfee },
    Method { name: "generatetoaddress", args: &[req("nblocks", ArgType::Num), req("address", ArgType::Str), opt("maxtries", ArgType::Num)], description: "Mine to a specified address and return the block hashes.", handler: mining::generatetoaddress },
    Method { name: "generatetodescriptor", args: &[req("num_blocks", ArgType::Num), req("descriptor", ArgType::Str), opt("maxtries", ArgType::Num)], description: "Mine to a specified descriptor and return the block hashes.", handler: mining::generatetodescriptor },
    Method { name: "submitblock", args: &[req("hexdata", ArgType::Str), opt("dummy", ArgType::Str)], description: "Attempts to submit new block to network.", handler: mining::submitblock },
    // Control and network.
    Method { name: "getconnectioncount", args: &[], description: "Returns the number of connections to other nodes.", handler: control::getconnectioncount },
    Method { name: "getnetworkinfo", args: &[], description: "Returns an object containing various state info regarding P2P networking.", handler: control::getnetworkinfo },
    Method { name: "getpeerinfo", args: &[], description: "Returns data about each connected network peer as a json array of objects.", handler: control::getpeerinfo },
    Method { name: "help", args: &[opt("command", ArgType::Str)], description: "List all commands, or get help for a specified command.", handler: help },
    Method { name: "ping", args: &[], description: "Requests that a ping be sent to all other nodes, to measure ping time.", handler: control::ping },
    Method { name: "stop", args: &[opt("wait", ArgType::Num)], description: "Request a graceful shutdown of Bitcoin Core.", handler: control::stop },
    Method { name: "uptime", args: &[], description: "Returns the total uptime of the server.", handler: control::uptime },
];

fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// The help text Core returns for a wrong number of arguments (shortened).
fn help_text(method: &Method) -> String {
    let mut usage = method.name.to_string();
    let mut optional = Vec::new();
    for arg in method.args {
        let name = arg.names.split('|').next().unwrap_or(arg.names);
        let shown = if arg.ty == ArgType::Str {
            format!("\"{name}\"")
        } else {
            name.to_string()
        };
        if arg.required {
            usage.push(' ');
            usage.push_str(&shown);
        } else {
            optional.push(shown);
        }
    }
    if !optional.is_empty() {
        usage.push_str(&format!(" ( {} )", optional.join(" ")));
    }
    format!("{usage}\n\n{}\n", method.description)
}

fn help(_node: &Node, params: &Params) -> RpcResult {
    if params.is_null(0) {
        let mut names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        return Ok(Value::String(format!(
            "== regtest-sim (Bitcoin Core RPC stand-in) ==\n{}",
            names.join("\n")
        )));
    }
    let name = get_str(params.get(0))?;
    Ok(Value::String(match find(name) {
        Some(method) => help_text(method),
        None => format!("help: unknown command: {name}"),
    }))
}

/// Core's `transformNamedArguments`: named parameters to positional ones.
fn positional(method: &Method, params: &Value) -> Result<Vec<Value>, RpcError> {
    let object = match params {
        Value::Object(object) => object,
        Value::Array(values) => return Ok(values.clone()),
        _ => return Ok(Vec::new()),
    };
    let mut remaining: Vec<&String> = object.keys().collect();
    let mut out = Vec::new();
    let mut hole = 0;
    for arg in method.args {
        let found = arg.names.split('|').find_map(|n| object.get_key_value(n));
        match found {
            Some((key, value)) => {
                out.extend(std::iter::repeat_n(Value::Null, hole));
                hole = 0;
                out.push(value.clone());
                remaining.retain(|k| *k != key);
            }
            None => hole += 1,
        }
    }
    if let Some(unknown) = remaining.first() {
        return Err(RpcError::new(
            codes::INVALID_PARAMETER,
            format!("Unknown named parameter {unknown}"),
        ));
    }
    Ok(out)
}

/// Runs one RPC call (after HTTP and JSON-RPC framing).
pub fn execute(node: &Node, method_name: &str, params: &Value) -> RpcResult {
    if let Some(status) = node.warmup_status() {
        return Err(RpcError::new(codes::IN_WARMUP, status));
    }
    let Some(method) = find(method_name) else {
        return Err(RpcError::new(codes::METHOD_NOT_FOUND, "Method not found"));
    };
    let values = positional(method, params)?;
    let too_many = values.len() > method.args.len();
    let missing = method.args.iter().skip(values.len()).any(|a| a.required);
    if too_many || missing {
        return Err(RpcError::new(codes::MISC_ERROR, help_text(method)));
    }
    let mut mismatches = Vec::new();
    for (i, arg) in method.args.iter().enumerate() {
        let value = values.get(i).unwrap_or(&NULL);
        if value.is_null() && !arg.required {
            continue;
        }
        if !matches(arg.ty, value) {
            mismatches.push(format!(
                "    {}: {}",
                Value::String(format!("Position {} ({})", i + 1, arg.names)),
                Value::String(format!(
                    "JSON value of type {} is not of expected type {}",
                    type_name(value),
                    expected_name(arg.ty)
                ))
            ));
        }
    }
    if !mismatches.is_empty() {
        return Err(RpcError::new(
            codes::TYPE_ERROR,
            format!("Wrong type passed:\n{{\n{}\n}}", mismatches.join(",\n")),
        ));
    }
    (method.handler)(node, &Params { values })
}

/// Locks the node state, or answers -28 while it is still loading.
fn state(node: &Node) -> Result<std::sync::MutexGuard<'_, super::node::NodeState>, RpcError> {
    node.state().ok_or_else(still_loading)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_parse_like_core() {
        assert_eq!(amount_from_value(&json!(0.1)).unwrap(), 10_000_000);
        assert_eq!(amount_from_value(&json!("0.00000001")).unwrap(), 1);
        assert_eq!(amount_from_value(&json!(1e-5)).unwrap(), 1000);
        assert_eq!(amount_from_value(&json!(0)).unwrap(), 0);
        assert_eq!(
            amount_from_value(&json!("0.000000001"))
                .unwrap_err()
                .message,
            "Invalid amount"
        );
        assert_eq!(
            amount_from_value(&json!(-1)).unwrap_err().message,
            "Amount out of range"
        );
        assert_eq!(
            amount_from_value(&json!(true)).unwrap_err().message,
            "Amount is not a number or string"
        );
    }

    #[test]
    fn hashes_are_checked_like_core() {
        let err = parse_hash::<bitcoin::BlockHash>(&json!("zz"), "hash").unwrap_err();
        assert_eq!(err.message, "hash must be of length 64 (not 2, for 'zz')");
        let bad = "g".repeat(64);
        let err = parse_hash::<bitcoin::BlockHash>(&json!(bad), "blockhash").unwrap_err();
        assert_eq!(
            err.message,
            format!("blockhash must be hexadecimal string (not '{bad}')")
        );
    }

    #[test]
    fn named_arguments_fill_holes_with_null() {
        let method = find("getrawtransaction").unwrap();
        let values = positional(method, &json!({"txid": "a", "blockhash": "b"})).unwrap();
        assert_eq!(values, vec![json!("a"), Value::Null, json!("b")]);
        let values = positional(method, &json!({"txid": "a", "verbose": true})).unwrap();
        assert_eq!(values, vec![json!("a"), json!(true)]);
        let err = positional(method, &json!({"bogus": 1})).unwrap_err();
        assert_eq!(err.message, "Unknown named parameter bogus");
    }

    #[test]
    fn integers_follow_univalue() {
        assert_eq!(get_int::<i32>(&json!(5)).unwrap(), 5);
        assert_eq!(
            get_int::<i32>(&json!(1.5)).unwrap_err().message,
            "JSON integer out of range"
        );
        assert_eq!(
            get_int::<u32>(&json!(-1)).unwrap_err().code,
            codes::MISC_ERROR
        );
        assert_eq!(
            get_int::<i32>(&json!("1")).unwrap_err().code,
            codes::TYPE_ERROR
        );
    }
}
