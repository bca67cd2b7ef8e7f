//! End-to-end: the web API's login, first-time setup and shutdown, against a running
//! `plugnode run`.

mod common;

use common::*;
use serde_json::{json, Value};

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[test]
fn an_unclaimed_box_is_claimed_with_the_setup_code_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.first_boot_password = false;
    let node = Plugnode::start(&config);

    let health = wait_for("the health check", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None).filter(|(code, _)| *code == 200)
    });
    assert_eq!(body(&health.1)["phase"], "running");

    let (code, answer) = http(node.web, "GET", "/api/status", None).unwrap();
    assert_eq!(code, 401);
    assert_eq!(body(&answer)["setup_required"], true);

    // The code is on the screen and in a private file; nothing else lets you in.
    let code_file = node.data_dir.join("secrets/setup-code");
    let setup_code = std::fs::read_to_string(&code_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&code_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let wrong = json!({"setup_code": "AAAAAAAA", "password": "a long password"}).to_string();
    let (code, answer) = http(node.web, "POST", "/api/setup/password", Some(&wrong)).unwrap();
    assert_eq!(code, 401, "{answer}");
    assert!(body(&answer)["error"]
        .as_str()
        .unwrap()
        .contains("setup code"));

    // The wrong attempt slows the next one down; wait it out.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let claim = json!({"setup_code": setup_code.trim(), "password": "a long password"}).to_string();
    let (code, answer) = http(node.web, "POST", "/api/setup/password", Some(&claim)).unwrap();
    assert_eq!(code, 200, "{answer}");
    let token = body(&answer)["token"].as_str().unwrap().to_string();
    assert!(!code_file.exists(), "the setup code is gone once used");

    let (code, _) = http_with_token(node.web, "GET", "/api/status", None, Some(&token)).unwrap();
    assert_eq!(code, 200);
    // A second claim is refused.
    let (code, _) = http(node.web, "POST", "/api/setup/password", Some(&claim)).unwrap();
    assert_eq!(code, 409);
    assert!(
        !node.log().contains("a long password"),
        "passwords never reach the log"
    );
}

#[test]
fn login_logout_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let node = Plugnode::start(&TestConfig::new(dir.path()));
    wait_for("the web page", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None)
    });

    let wrong = json!({"password": "not the password"}).to_string();
    let (code, answer) = http(node.web, "POST", "/api/login", Some(&wrong)).unwrap();
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = http(node.web, "POST", "/api/login", Some("not json")).unwrap();
    assert!(code == 400 || code == 429, "{code} {answer}");
    assert!(body(&answer)["error"].is_string());

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let token = node.token().expect("the right password logs in");
    let (code, _) = node.api("GET", "/api/status", None).unwrap();
    assert_eq!(code, 200);

    let (code, answer) = node
        .api("POST", "/api/display/key", Some("{\"key\": 9}"))
        .unwrap();
    assert_eq!(code, 404, "no display configured: {answer}");
    let (code, answer) = node.api("GET", "/api/nothing-here", None).unwrap();
    assert_eq!(code, 404);
    // A route that exists with other methods says which.
    let wrong_method = http_raw(
        node.web,
        "PUT",
        "/api/status",
        &[format!("Host: {}", node.web)],
        None,
    )
    .unwrap();
    assert_eq!(wrong_method.code, 405, "{wrong_method:?}");
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    assert!(body(&answer)["error"]
        .as_str()
        .unwrap()
        .contains("/api/nothing-here"));

    let (code, _) =
        http_with_token(node.web, "POST", "/api/logout", Some("{}"), Some(&token)).unwrap();
    assert_eq!(code, 200);
    let (code, _) = http_with_token(node.web, "GET", "/api/status", None, Some(&token)).unwrap();
    assert_eq!(code, 401, "a logged-out token no longer works");
}

#[test]
fn the_shutdown_api_stops_cleanly_and_asks_for_power_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Plugnode::start(&TestConfig::new(dir.path()));
    node.wait_status("bitcoind RPC ready", |s| state(s) == "syncing");
    let bitcoind = node.bitcoind_pid().unwrap();

    let (code, answer) = http(node.web, "POST", "/api/system/shutdown", Some("{}")).unwrap();
    assert_eq!(code, 401, "shutting down needs a login: {answer}");

    let (code, answer) = node
        .api(
            "POST",
            "/api/system/shutdown",
            Some("{\"power_off\": true}"),
        )
        .unwrap();
    assert_eq!(code, 202, "{answer}");
    let exit = node.wait_exit(TIMEOUT);
    assert_eq!(
        exit.code(),
        Some(100),
        "exit code 100 = power off; log:\n{}",
        node.log()
    );
    assert!(!is_running(bitcoind));
    assert!(node.log().contains("bitcoind stopped (exit code 0)"));
}

#[test]
fn words_and_invoices_that_are_not_ascii_or_huge_get_a_clear_400_and_stay_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = Plugnode::start(&TestConfig::new(dir.path()));
    wait_for("the web page", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None)
    });
    let abandon = ["abandon"; 23].join(" ");
    // 32 KiB of one word: under the body limit, so the words parser sees it.
    let huge = "é".repeat(1 << 14);
    for (words, named) in [
        // "café" cut at its 4th byte, inside the "é", panicked the web worker.
        (format!("{abandon} café"), "word 24"),
        (format!("naïve {abandon}"), "word 1"),
        (format!("{abandon} 🙂🙂🙂🙂"), "word 24"),
        ("café".to_string(), "24 words"),
        (format!("{abandon} {huge}"), "word 24"),
    ] {
        let request = json!({ "words": words }).to_string();
        let (code, answer) = node
            .api("POST", "/api/wallet/restore", Some(&request))
            .unwrap_or_else(|| panic!("no answer to {words:.40}; log:\n{}", node.log()));
        assert_eq!(code, 400, "{words:.40}: {answer:.300}");
        let answer = body(&answer);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(named), "{words:.40}: {error:.300}");
        assert!(
            error.chars().count() < 200,
            "a huge word is not echoed whole"
        );
        assert_eq!(answer["kind"], "invalid_input", "{answer:.300}");
    }
    // A megabyte of one word is refused before it is read: announced as curl announces a
    // big body (`Expect: 100-continue`), the answer comes from its length alone. (Sent
    // whole, the box's early answer and close can reach the client as a reset while it
    // still writes: timing decides, so a test that sends it whole is flaky.)
    let request = json!({ "words": "é".repeat(1 << 19) }).to_string();
    let answer = announce_without_sending(
        node.web,
        "/api/wallet/restore",
        request.len(),
        &node.token().unwrap(),
    );
    // (An interim "100 Continue" may come first.)
    let answer = answer
        .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
        .unwrap_or(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    let json = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert_eq!(body(json)["kind"], "too_large", "{answer:.300}");
    assert!(http(node.web, "GET", "/api/health", None).is_some_and(|(code, _)| code == 200));
    // Pasted payment requests: decode and pay read them alike, with or without a node.
    for text in [
        "",
        "lightning:café",
        "bitcoin:café?lightning=é",
        "LIGHTNING:lnbcrt1🙂🙂🙂🙂",
        "lnoé",
        huge.as_str(),
    ] {
        for (path, field) in [
            ("/api/lightning/decode", "text"),
            ("/api/lightning/pay", "invoice"),
        ] {
            let request = json!({ field: text }).to_string();
            let (code, answer) = node
                .api("POST", path, Some(&request))
                .unwrap_or_else(|| panic!("no answer to {text:.40}; log:\n{}", node.log()));
            assert_eq!(code, 400, "{path} {text:.40}: {answer:.300}");
            let answer = body(&answer);
            assert_eq!(answer["kind"], "invalid_invoice", "{answer:.300}");
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(error.contains("ln"), "says what to paste: {error:.300}");
            assert!(error.chars().count() < 200, "{error:.300}");
        }
    }
    let log = node.log();
    for secret in ["café", "naïve", "🙂", "panicked"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// Sends only the head of a POST of `length` bytes with `Expect: 100-continue` and returns
/// what the box answers before any of the body is sent.
fn announce_without_sending(
    address: std::net::SocketAddr,
    path: &str,
    length: usize,
    token: &str,
) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
