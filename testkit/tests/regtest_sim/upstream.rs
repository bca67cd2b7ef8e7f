//! Upstream mode (`-simupstream`): a sim with its own RPC port and credentials that forwards
//! to another sim, so two "bitcoinds" (two plugnode boxes) share one chain.

use crate::common::*;
use base64::Engine;
use bitcoincore_rpc::RpcApi;
use plugnode_testkit::rpc::{Auth, RpcCallError, RpcClient};
use plugnode_testkit::sim::{rpcauth_line, SimNode};
use plugnode_testkit::{free_port, wait_until};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

/// A sim forwarding to `upstream`, with its own rpcauth user `alice`.
fn start_proxy(dir: &Path, name: &str, upstream: &SimNode) -> SimNode {
    SimNode::builder(EXE, dir.join(name))
        .credentials("alice", "alice-secret")
        .upstream(upstream)
        .spawn()
        .expect("the proxy starts")
}

fn upstream_error(err: &RpcCallError) -> (Option<u16>, Option<i64>, String) {
    (
        err.http_status(),
        err.code(),
        err.message().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_proxy_with_its_own_user_answers_what_the_upstream_answers() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start(&dir.path().join("up"));
    mine(&upstream, 3);
    // Uptime is counted in whole seconds: let the upstream be clearly older.
    std::thread::sleep(Duration::from_millis(2100));
    let proxy = start_proxy(dir.path(), "proxy", &upstream);
    let up = upstream.rpc();
    let px = proxy.rpc();

    assert_eq!(
        px.call("getblockchaininfo", json!([])).unwrap(),
        up.call("getblockchaininfo", json!([])).unwrap()
    );
    let tip = up.call("getbestblockhash", json!([])).unwrap();
    for verbose in [true, false] {
        assert_eq!(
            px.call("getblockheader", json!([tip, verbose])).unwrap(),
            up.call("getblockheader", json!([tip, verbose])).unwrap()
        );
    }
    // Bodies and statuses come back byte for byte: batches, 1.0 and 2.0, errors,
    // notifications.
    for body in [
        r#"[{"method":"getblockcount","id":1},{"jsonrpc":"2.0","method":"getbestblockhash","id":"b"},{"jsonrpc":"2.0","method":"getblockcount"}]"#,
        r#"{"method":"getblockhash","params":[99],"id":3}"#,
        r#"{"method":"nosuchmethod","params":[],"id":4}"#,
        r#"{"jsonrpc":"2.0","method":"getblockhash","params":["x"],"id":5}"#,
        r#"{"jsonrpc":"2.0","method":"getblockcount"}"#,
        r#"{"method":"getblockcount""#,
    ] {
        let ours = px.post(body).unwrap();
        let theirs = up.post(body).unwrap();
        assert_eq!(
            (ours.status, &ours.body, ours.header("Content-Type")),
            (theirs.status, &theirs.body, theirs.header("Content-Type")),
            "{body}"
        );
    }

    // The proxy's own credentials: its rpcauth user and its own cookie, not the upstream's.
    let own_cookie = px.clone().with_auth(Auth::CookieFile(proxy.cookie_path()));
    assert_eq!(own_cookie.call("getblockcount", json!([])).unwrap(), 3);
    let upstream_cookie = px
        .clone()
        .with_auth(Auth::CookieFile(upstream.cookie_path()));
    assert_eq!(
        upstream_cookie
            .call("getblockcount", json!([]))
            .unwrap_err()
            .http_status(),
        Some(401)
    );

    // `uptime` is the proxy's own, also inside a batch mixed with forwarded calls.
    let proxy_uptime = px.call("uptime", json!([])).unwrap().as_u64().unwrap();
    let upstream_uptime = up.call("uptime", json!([])).unwrap().as_u64().unwrap();
    assert!(
        proxy_uptime + 2 <= upstream_uptime,
        "proxy {proxy_uptime} s, upstream {upstream_uptime} s"
    );
    let mixed = px
        .post(r#"[{"method":"getblockcount","id":1},{"method":"uptime","id":2},{"jsonrpc":"2.0","method":"getblockcount"},{"method":"getbestblockhash","id":3}]"#)
        .unwrap();
    assert_eq!(mixed.status, 200);
    let replies = mixed.json().unwrap();
    let ids: Vec<&Value> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!(3)]);
    assert_eq!(replies[0]["result"], 3);
    let batch_uptime = replies[1]["result"].as_u64().unwrap();
    let upstream_uptime = up.call("uptime", json!([])).unwrap().as_u64().unwrap();
    assert!(batch_uptime + 2 <= upstream_uptime);
    assert_eq!(replies[2]["result"], tip);

    let log = proxy.stdout_lines().join("\n");
    assert!(
        log.contains(&format!(
            "upstream mode: no chain of its own; RPC is forwarded to the regtest-sim at 127.0.0.1:{}",
            upstream.rpc_port()
        )),
        "{log}"
    );
    assert!(!proxy.datadir().join("regtest/sim-blocks.dat").exists());
}

#[test]
fn transactions_and_blocks_through_any_proxy_land_on_the_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    // A short idle timeout upstream: the proxies' keep-alive connections to it go stale.
    let upstream = builder(&dir.path().join("up"))
        .arg("-rpcservertimeout=1")
        .spawn()
        .unwrap();
    let box_a = start_proxy(dir.path(), "a", &upstream);
    let box_b = start_proxy(dir.path(), "b", &upstream);
    let (up, a, b) = (upstream.rpc(), box_a.rpc(), box_b.rpc());

    let hashes = mine(&box_a, 101);
    for rpc in [&up, &a, &b] {
        assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 101);
        assert_eq!(
            rpc.call("getbestblockhash", json!([])).unwrap(),
            hashes[100]
        );
    }

    let tx = spend_one(coinbase_utxo(&b, 1), 1_000, 7);
    let txid = tx.compute_txid().to_string();
    assert_eq!(send(&a, &tx).unwrap(), txid);
    for rpc in [&up, &b] {
        assert_eq!(
            rpc.call("getrawmempool", json!([])).unwrap(),
            json!([txid.clone()])
        );
    }
    // A conflicting spend through the other box: the upstream's rejection, unchanged.
    let conflict = spend_one(coinbase_utxo(&b, 1), 1_000, 8);
    let rejected = send(&b, &conflict).unwrap_err();
    assert_eq!(
        (rejected.http_status(), rejected.code()),
        (Some(500), Some(-26)),
        "{rejected}"
    );
    assert_eq!(
        send(&b, &tx).unwrap(),
        txid,
        "already in the shared mempool"
    );

    let block = mine(&upstream, 1).remove(0);
    for rpc in [&a, &b] {
        assert_eq!(rpc.call("getbestblockhash", json!([])).unwrap(), block);
        assert_eq!(rpc.call("getrawmempool", json!([])).unwrap(), json!([]));
        let info = rpc
            .call("getrawtransaction", json!([txid, 1, block]))
            .unwrap();
        assert_eq!(info["confirmations"], 1);
    }
    let block = mine(&box_b, 1).remove(0);
    assert_eq!(up.call("getbestblockhash", json!([])).unwrap(), block);
    assert_eq!(a.call("getblockcount", json!([])).unwrap(), 103);

    // The upstream has closed the idle keep-alive connections meanwhile; the next calls
    // go out on fresh ones without an error.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(a.call("getblockcount", json!([])).unwrap(), 103);
    assert_eq!(b.call("getblockcount", json!([])).unwrap(), 103);
}

/// Reads one HTTP request (head and Content-Length body) from `stream`.
fn read_request(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "request cut short");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, buf[end + 4..end + 4 + len].to_vec());
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "request cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn wrong_credentials_on_the_proxy_get_401_without_contacting_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    // A fake upstream that counts connections and answers what the test says.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    fake.set_nonblocking(true).unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let proxy = SimNode::builder(EXE, dir.path().join("proxy"))
        .credentials("alice", "alice-secret")
        .arg(format!("-simupstream=127.0.0.1:{fake_port}"))
        .arg("-simupstreamauth=upstream-user:upstream-secret")
        .ready_timeout(None)
        .spawn()
        .unwrap();

    let wrong = proxy
        .rpc()
        .with_auth(Auth::UserPass("alice".into(), "wrong".into()));
    let nobody = proxy.rpc().with_auth(Auth::None);
    assert!(wait_until(Duration::from_secs(30), || matches!(
        wrong.call("getblockcount", json!([])),
        Err(RpcCallError::Http { status: 401, .. })
    )));
    for client in [&wrong, &nobody] {
        let reply = client
            .post(r#"{"method":"getblockcount","params":[],"id":1}"#)
            .unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body, "");
        assert_eq!(
            reply.header("WWW-Authenticate"),
            Some("Basic realm=\"jsonrpc\"")
        );
    }
    assert!(
        matches!(fake.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the proxy contacted the upstream for an unauthenticated request"
    );

    // The right password: forwarded with the upstream's credentials, the body unchanged,
    // and the upstream's status and body come back unchanged.
    let body = r#"{"method":"getblockcount","params":[],"id":7}"#;
    let client = proxy.rpc();
    let call = std::thread::spawn(move || client.post(body).unwrap());
    let mut stream = loop {
        match fake.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let (head, forwarded) = read_request(&mut stream);
    assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
    let expected_auth = format!(
        "authorization: basic {}",
        base64::engine::general_purpose::STANDARD.encode("upstream-user:upstream-secret")
    )
    .to_ascii_lowercase();
    assert!(
        head.to_ascii_lowercase()
            .lines()
            .any(|l| l == expected_auth),
        "{head}"
    );
    assert_eq!(forwarded, body.as_bytes());
    let answer = r#"{"result":null,"error":{"code":-5,"message":"made up by the test"},"id":7}"#;
    write!(
        stream,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    )
    .unwrap();
    let reply = call.join().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (500, answer));
}

#[test]
fn stop_on_the_proxy_leaves_the_upstream_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = start(&dir.path().join("up"));
    mine(&upstream, 2);

    let mut proxy = start_proxy(dir.path(), "proxy", &upstream);
    assert_eq!(
        proxy.rpc().call("stop", json!([])).unwrap(),
        "Bitcoin Core stopping"
    );
    assert!(proxy
        .wait_for_exit(Duration::from_secs(60))
        .unwrap()
        .success());
    assert!(!proxy.cookie_path().exists());
    let lines = proxy.stdout_lines();
    assert_eq!(
        lines.last().map(|l| l.ends_with(" Shutdown: done")),
        Some(true),
        "{lines:?}"
    );
    assert!(upstream.is_running());
    assert_eq!(upstream.rpc().call("getblockcount", json!([])).unwrap(), 2);
    assert!(upstream.cookie_path().exists());

    // SIGTERM with a pretended flush: the same, and the upstream is untouched.
    let mut proxy = SimNode::builder(EXE, dir.path().join("proxy"))
        .upstream(&upstream)
        .arg("-simstopdelay=500")
        .spawn()
        .unwrap();
    assert!(proxy.terminate().unwrap().success());
    assert!(upstream.is_running());
    assert_eq!(upstream.rpc().call("getblockcount", json!([])).unwrap(), 2);

    // During its own warm-up the proxy answers -28 with Core's messages, then forwards.
    let mut proxy = SimNode::builder(EXE, dir.path().join("proxy"))
        .upstream(&upstream)
        .warmup(Duration::from_millis(3000))
        .ready_timeout(None)
        .spawn()
        .unwrap();
    let rpc = proxy.rpc();
    let mut warmup_message = None;
    assert!(wait_until(Duration::from_secs(30), || {
        match rpc.call("getblockcount", json!([])) {
            Err(err) if err.code() == Some(-28) => {
                warmup_message = err.message().map(String::from);
                true
            }
            _ => false,
        }
    }));
    let warmup_message = warmup_message.unwrap();
    assert!(!warmup_message.contains("Upstream"), "{warmup_message}");
    proxy.wait_ready(Duration::from_secs(60)).unwrap();
    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 2);
    assert!(proxy.stop().unwrap().success());
    assert_eq!(upstream.rpc().call("getblockcount", json!([])).unwrap(), 2);
    assert!(upstream.stop().unwrap().success());
}

#[test]
fn the_proxy_answers_errors_while_the_upstream_is_down_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // The upstream authenticates the proxy with its cookie, which changes at every start.
    let mut upstream = start(&dir.path().join("up"));
    mine(&upstream, 5);
    let proxy = start_proxy(dir.path(), "proxy", &upstream);
    let rpc = proxy.rpc();
    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 5);

    upstream.kill();
    let expected = format!(
        "Upstream regtest-sim at 127.0.0.1:{} unreachable: ",
        upstream.rpc_port()
    );
    let (status, code, message) =
        upstream_error(&rpc.call("getblockcount", json!([])).unwrap_err());
    assert_eq!((status, code), (Some(500), Some(-28)));
    assert!(message.starts_with(&expected), "{message}");
    let (status, code, _) = upstream_error(
        &rpc.clone()
            .jsonrpc2(true)
            .call("getblockcount", json!([]))
            .unwrap_err(),
    );
    assert_eq!(
        (status, code),
        (Some(200), Some(-28)),
        "JSON-RPC 2.0 framing"
    );
    let batch = rpc
        .post(r#"[{"method":"getblockcount","id":1},{"method":"getbestblockhash","id":2}]"#)
        .unwrap();
    assert_eq!(batch.status, 200);
    let replies = batch.json().unwrap();
    assert_eq!(replies.as_array().unwrap().len(), 2);
    assert!(replies
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["error"]["code"] == -28));
    // `uptime` and the proxy's own 401s do not need the upstream.
    assert!(rpc.call("uptime", json!([])).is_ok());
    let wrong = rpc
        .clone()
        .with_auth(Auth::UserPass("alice".into(), "nope".into()));
    assert_eq!(
        wrong
            .call("getblockcount", json!([]))
            .unwrap_err()
            .http_status(),
        Some(401)
    );

    // Back with a new cookie on the same port: the very next call works.
    upstream.restart().unwrap();
    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 5);
    mine(&proxy, 1);
    assert_eq!(upstream.rpc().call("getblockcount", json!([])).unwrap(), 6);
    let log = proxy.stdout_lines().join("\n");
    assert!(log.contains(&expected), "{log}");
    assert!(
        log.contains(&format!(
            "upstream 127.0.0.1:{} answers again",
            upstream.rpc_port()
        )),
        "{log}"
    );
}

#[test]
fn a_proxy_started_through_a_plugnode_style_bitcoin_conf() {
    let dir = tempfile::tempdir().unwrap();
    // An upstream with fixed credentials this time (passed on as -simupstreamauth).
    let upstream = builder(&dir.path().join("up"))
        .credentials("upstream", "upstream-secret")
        .spawn()
        .unwrap();
    mine(&upstream, 4);

    let box_dir = dir.path().join("box");
    let datadir = box_dir.join("bitcoind");
    std::fs::create_dir_all(&datadir).unwrap();
    let rpc_port = free_port();
    let auth = [
        rpcauth_line("plugnode", "supervisor-secret"),
        rpcauth_line("lightning", "ldk-secret"),
    ];
    let conf = datadir.join("bitcoin.conf");
    std::fs::write(
        &conf,
        plugnode_conf("chain=regtest", rpc_port, free_port(), &auth),
    )
    .unwrap();
    // What plugnode runs: <binary> -datadir=DIR -conf=DIR/bitcoin.conf [extra args].
    let proxy = SimNode::builder(EXE, &datadir)
        .no_regtest_flag()
        .no_port_flags()
        .rpc_port(rpc_port)
        .client_credentials("plugnode", "supervisor-secret")
        .arg(format!("-conf={}", conf.display()))
        .upstream(&upstream)
        .spawn()
        .unwrap();

    let expected = upstream.rpc().call("getblockchaininfo", json!([])).unwrap();
    for (user, password) in [
        ("plugnode", "supervisor-secret"),
        ("lightning", "ldk-secret"),
    ] {
        let client = RpcClient::new(
            &proxy.rpc_url(),
            Auth::UserPass(user.into(), password.into()),
        );
        assert_eq!(
            client.call("getblockchaininfo", json!([])).unwrap(),
            expected
        );
    }
    // The client plugnode's supervisor uses.
    let core = bitcoincore_rpc::Client::new(
        &proxy.rpc_url(),
        bitcoincore_rpc::Auth::UserPass("plugnode".into(), "supervisor-secret".into()),
    )
    .unwrap();
    let info = core.get_blockchain_info().unwrap();
    assert_eq!(info.blocks, 4);
    // Chain facts are the upstream's: prune=550 in this bitcoin.conf has no effect.
    assert!(!info.pruned);
    assert_eq!(core.get_block_count().unwrap(), 4);

    for (user, password) in [
        ("lightning", "supervisor-secret"),
        ("upstream", "upstream-secret"),
    ] {
        let client = RpcClient::new(
            &proxy.rpc_url(),
            Auth::UserPass(user.into(), password.into()),
        );
        assert_eq!(
            client
                .call("getblockcount", json!([]))
                .unwrap_err()
                .http_status(),
            Some(401),
            "{user}"
        );
    }
    let log = proxy.stdout_lines().join("\n");
    assert!(log.contains("Config file arg: [regtest] rpcport="), "{log}");
    assert!(
        log.contains("Command-line arg: simupstreamauth=****"),
        "{log}"
    );
    assert!(!log.contains("upstream-secret"), "no password in the log");
    assert!(!log.contains("supervisor-secret"), "no password in the log");
}
