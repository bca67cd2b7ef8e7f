//! HTTP and JSON-RPC framing: 1.0 vs 2.0 statuses, notifications, batches, keep-alive,
//! routing and methods, named parameters.

use crate::common::*;
use plugnode_testkit::rpc::RpcClient;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn json_of(rpc: &RpcClient, body: &str) -> (u16, String) {
    let reply = rpc.post(body).unwrap();
    (reply.status, reply.body)
}

#[test]
fn json_rpc_versions_batches_and_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let rpc = node.rpc();

    assert_eq!(
        json_of(&rpc, r#"{"method":"getblockcount","params":[],"id":7}"#),
        (200, "{\"result\":0,\"error\":null,\"id\":7}\n".to_string())
    );
    assert_eq!(
        json_of(
            &rpc,
            r#"{"jsonrpc":"2.0","method":"getblockcount","params":[],"id":"x"}"#
        ),
        (
            200,
            "{\"jsonrpc\":\"2.0\",\"result\":0,\"id\":\"x\"}\n".to_string()
        )
    );
    assert_eq!(
        json_of(&rpc, r#"{"jsonrpc":"2.0","method":"nosuch","id":1}"#),
        (200, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":\"Method not found\"},\"id\":1}\n".to_string())
    );
    // A 2.0 request without id is a notification: executed, not answered.
    assert_eq!(
        json_of(&rpc, r#"{"jsonrpc":"2.0","method":"getblockcount"}"#),
        (204, String::new())
    );
    // Framing errors.
    assert_eq!(
        json_of(&rpc, "{not json"),
        (500, "{\"result\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"},\"id\":null}\n".to_string())
    );
    assert_eq!(json_of(&rpc, r#"{"params":[],"id":1}"#).0, 400);
    assert_eq!(
        json_of(&rpc, r#"{"jsonrpc":"3.0","method":"x","id":1}"#).0,
        400
    );
    assert_eq!(json_of(&rpc, "42").0, 500);

    // Batches are HTTP 200 whatever happens inside; notifications are left out.
    let (status, body) = json_of(
        &rpc,
        r#"[{"method":"getblockcount","id":1},{"jsonrpc":"2.0","method":"nosuch","id":2},{"jsonrpc":"2.0","method":"getblockcount"},5]"#,
    );
    assert_eq!(status, 200);
    let replies: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(replies[0], json!({"result": 0, "error": null, "id": 1}));
    assert_eq!(replies[1]["error"]["code"], -32601);
    assert_eq!(replies[2]["error"]["code"], -32600);
    assert_eq!(replies.as_array().unwrap().len(), 3);
    assert_eq!(
        json_of(&rpc, r#"[{"jsonrpc":"2.0","method":"getblockcount"}]"#),
        (204, String::new())
    );
    assert_eq!(json_of(&rpc, "[]"), (200, "[]\n".to_string()));
}

#[test]
fn routes_methods_arguments_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let rpc = node.rpc();
    let get = rpc.request("GET", "/", &[], b"").unwrap();
    assert_eq!(
        (get.status, get.body.as_str()),
        (405, "JSONRPC server handles only POST requests")
    );
    let elsewhere = rpc.request("POST", "/elsewhere", &[], b"{}").unwrap();
    assert_eq!(elsewhere.status, 404);

    // Named parameters, Core's way.
    let genesis = rpc.call("getblockhash", json!({"height": 0})).unwrap();
    assert_eq!(
        genesis,
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    let header = rpc
        .call(
            "getblockheader",
            json!({"blockhash": genesis, "verbose": false}),
        )
        .unwrap();
    assert_eq!(header.as_str().unwrap().len(), 160);
    let err = rpc.call("getblockhash", json!({"hight": 0})).unwrap_err();
    assert_eq!(err.message(), Some("Unknown named parameter hight"));
    // A wrong number of arguments answers with the help text, code -1.
    let err = rpc.call("getblockhash", json!([])).unwrap_err();
    assert_eq!(err.code(), Some(-1));
    assert!(
        err.message().unwrap().starts_with("getblockhash height\n"),
        "{err}"
    );
    let err = rpc.call("getblockcount", json!([1])).unwrap_err();
    assert_eq!(err.code(), Some(-1));
    // Several type errors at once.
    let err = rpc.call("getblockheader", json!([1, "x"])).unwrap_err();
    assert_eq!(
        err.message(),
        Some("Wrong type passed:\n{\n    \"Position 1 (blockhash)\": \"JSON value of type number is not of expected type string\",\n    \"Position 2 (verbose)\": \"JSON value of type string is not of expected type bool\"\n}")
    );
    let err = rpc
        .call("getblock", json!(["00".repeat(32), 1.5]))
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Some(-1), Some("JSON integer out of range"))
    );
}

#[test]
fn connections_stay_open_and_pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let cookie = std::fs::read_to_string(node.cookie_path()).unwrap();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cookie.trim());
    let request = |id: u32, extra: &str| {
        let body = format!(r#"{{"method":"getblockcount","params":[],"id":{id}}}"#);
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut stream = TcpStream::connect(("127.0.0.1", node.rpc_port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Two requests in one write, then a third after the answers.
    stream
        .write_all(format!("{}{}", request(1, ""), request(2, "")).as_bytes())
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while seen.matches("\"id\":").count() < 2 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.find("\"id\":1").unwrap() < seen.find("\"id\":2").unwrap());
    assert!(!seen.contains("Connection: close"));
    // Expect: 100-continue is honoured.
    let req = request(3, "Expect: 100-continue\r\nConnection: close\r\n");
    let (head, body) = req.split_once("\r\n\r\n").unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"));
    stream.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("\"id\":3") && rest.contains("Connection: close"),
        "{rest}"
    );
}
