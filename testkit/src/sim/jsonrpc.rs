//! JSON-RPC framing as Bitcoin Core v30's `httprpc.cpp` and `rpc/request.cpp` do it.
//!
//! - JSON-RPC 1.0 style (no `"jsonrpc"` member, or `"1.0"`): the reply carries `result`,
//!   `error` and `id`; an error is an HTTP error too (404 for "Method not found", 400 for an
//!   invalid request, 500 otherwise).
//! - JSON-RPC 2.0 (`"jsonrpc": "2.0"`): the reply carries `"jsonrpc": "2.0"` and either
//!   `result` or `error`, with HTTP 200 even for RPC errors; a request without `id` is a
//!   notification, executed but answered with HTTP 204.
//! - A batch (JSON array) is always HTTP 200 (204 if it held only notifications).

use super::node::Node;
use super::rpc::{self, codes, RpcError, RpcResult};
use serde_json::Value;

/// The HTTP status and body for a JSON-RPC request body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Empty for 204.
    pub body: String,
}

/// State Core's `JSONRPCRequest` keeps while parsing: the id (present-but-null by default)
/// and the protocol version.
struct RequestMeta {
    id: Option<Value>,
    v2: bool,
}

impl RequestMeta {
    fn new() -> RequestMeta {
        RequestMeta {
            id: Some(Value::Null),
            v2: false,
        }
    }

    fn is_notification(&self) -> bool {
        self.v2 && self.id.is_none()
    }
}

/// Core's `JSONRPCRequest::parse`: (method, params).
fn parse(value: &Value, meta: &mut RequestMeta) -> Result<(String, Value), RpcError> {
    let Value::Object(request) = value else {
        return Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request object",
        ));
    };
    meta.id = request.get("id").cloned();
    meta.v2 = false;
    match request.get("jsonrpc") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == "1.0" => {}
        Some(Value::String(v)) if v == "2.0" => meta.v2 = true,
        Some(Value::String(_)) => {
            return Err(RpcError::new(
                codes::INVALID_REQUEST,
                "JSON-RPC version not supported",
            ));
        }
        Some(_) => {
            return Err(RpcError::new(
                codes::INVALID_REQUEST,
                "jsonrpc field must be a string",
            ))
        }
    }
    let method = match request.get("method") {
        None | Some(Value::Null) => {
            return Err(RpcError::new(codes::INVALID_REQUEST, "Missing method"))
        }
        Some(Value::String(m)) => m.clone(),
        Some(_) => {
            return Err(RpcError::new(
                codes::INVALID_REQUEST,
                "Method must be a string",
            ))
        }
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(p @ (Value::Array(_) | Value::Object(_))) => p.clone(),
        Some(_) => {
            return Err(RpcError::new(
                codes::INVALID_REQUEST,
                "Params must be an array or object",
            ))
        }
    };
    Ok((method, params))
}

/// Core's `JSONRPCReplyObj`, written with Core's member order.
fn reply_object(result: Result<Value, RpcError>, meta: &RequestMeta) -> String {
    let mut out = String::from("{");
    if meta.v2 {
        out.push_str("\"jsonrpc\":\"2.0\",");
    }
    match result {
        Ok(value) => {
            out.push_str("\"result\":");
            out.push_str(&value.to_string());
            if !meta.v2 {
                out.push_str(",\"error\":null");
            }
        }
        Err(error) => {
            if !meta.v2 {
                out.push_str("\"result\":null,");
            }
            out.push_str(&format!(
                "\"error\":{{\"code\":{},\"message\":{}}}",
                error.code,
                Value::String(error.message)
            ));
        }
    }
    if let Some(id) = &meta.id {
        out.push_str(",\"id\":");
        out.push_str(&id.to_string());
    }
    out.push('}');
    out
}

/// Core's `JSONErrorReply`: an HTTP error carrying the JSON-RPC error.
fn error_reply(error: RpcError, meta: &RequestMeta) -> Reply {
    let status = match error.code {
        codes::INVALID_REQUEST => 400,
        codes::METHOD_NOT_FOUND => 404,
        _ => 500,
    };
    Reply {
        status,
        body: reply_object(Err(error), meta) + "\n",
    }
}

/// Handles an authenticated request body.
pub fn handle(node: &Node, body: &[u8]) -> Reply {
    handle_with(body, |method, params| rpc::execute(node, method, params))
}

/// Whether Core answers this batch item: everything but a JSON-RPC 2.0 notification.
pub fn expects_reply(item: &Value) -> bool {
    let mut meta = RequestMeta::new();
    let _ = parse(item, &mut meta);
    !meta.is_notification()
}

/// Core's framing around `execute(method, params)` (the upstream mode answers its own
/// errors through it).
pub fn handle_with(body: &[u8], execute: impl Fn(&str, &Value) -> RpcResult) -> Reply {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error_reply(
            RpcError::new(codes::PARSE_ERROR, "Parse error"),
            &RequestMeta::new(),
        );
    };
    match &request {
        Value::Object(_) => {
            let mut meta = RequestMeta::new();
            let (method, params) = match parse(&request, &mut meta) {
                Ok(parsed) => parsed,
                Err(error) => return error_reply(error, &meta),
            };
            let result = execute(&method, &params);
            if meta.is_notification() {
                return Reply {
                    status: 204,
                    body: String::new(),
                };
            }
            match result {
                Err(error) if !meta.v2 => error_reply(error, &meta),
                result => Reply {
                    status: 200,
                    body: reply_object(result, &meta) + "\n",
                },
            }
        }
        Value::Array(batch) => {
            let mut replies = Vec::new();
            for item in batch {
                let mut meta = RequestMeta::new();
                let result =
                    parse(item, &mut meta).and_then(|(method, params)| execute(&method, &params));
                if !meta.is_notification() {
                    replies.push(reply_object(result, &meta));
                }
            }
            if replies.is_empty() && !batch.is_empty() {
                return Reply {
                    status: 204,
                    body: String::new(),
                };
            }
            Reply {
                status: 200,
                body: format!("[{}]\n", replies.join(",")),
            }
        }
        _ => error_reply(
            RpcError::new(codes::PARSE_ERROR, "Top-level object parse error"),
            &RequestMeta::new(),
        ),
    }
}
