//! Fuzzes every route of the JSON API from its OpenAPI description (`GET
//! /api/openapi.json`) with schemathesis, logged in with a fresh session, against a box
//! with a running Lightning node, a simulated screen and pairing: no answer may be a 5xx,
//! nothing may panic, and afterwards the box still answers, its password still works and
//! its wallet, node and funds are as they were. The session is not fresh (dangerous
//! actions answer 401 `reauth_required` after checking their input), unless
//! `PLUGNODE_FUZZ_FRESH` is set.
//!
//! Left out: `POST /api/system/shutdown` and `POST /api/display/key` (on the simulated
//! screen the page's keys are the box's: KEY4 held then KEY2 shuts it down), and the two
//! logouts (they end the session the fuzzer uses). Everything else is fuzzed; with a fresh
//! session a withdrawal would still need KEY2, which nobody presses.
//!
//! `PLUGNODE_FUZZ_SECS` sets the time budget (default 60; the README's long run is 600),
//! `PLUGNODE_FUZZ_CHECKS` schemathesis' checks (default `not_a_server_error`),
//! `PLUGNODE_SCHEMATHESIS` the program (default: `target/schemathesis/bin/schemathesis`,
//! where `.ci/run` installs it, then `schemathesis` on the PATH).

mod common;

use common::lightning::*;
use common::*;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("PLUGNODE_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis/bin/schemathesis");
    if installed.exists() {
        return installed;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("schemathesis"))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| {
        panic!(
            "this test needs schemathesis: python3 -m venv target/schemathesis && \
             target/schemathesis/bin/pip install schemathesis (bash .ci/run does it)"
        )
    })
}

#[test]
fn every_route_survives_schemathesis_and_the_box_keeps_its_data() {
    let program = schemathesis();
    let secs: u64 = std::env::var("PLUGNODE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let checks = std::env::var("PLUGNODE_FUZZ_CHECKS").unwrap_or("not_a_server_error".into());

    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let mut config = TestConfig::lightning_box(&dir.path().join("box"), &chain.sim);
    config.panel = "simulated";
    config.pairing = Some(TestPairing::both());
    // Updates on, with the root helper's stand-in: bundles of random bytes get RAUC's
    // refusal; Install needs the password and KEY2, which nobody presses.
    let _helper = common::update_helper::with_updates(
        &mut config,
        "0.3.0",
        common::update_helper::plain_slots("0.3.0"),
    );
    let node = Plugnode::start(&config);
    node.wait_status("bitcoind ready", |s| state(s) == "ready");
    let ln = LnBox { node, config };
    let (code, answer) = ln.post("/api/wallet/create", json!({}));
    assert_eq!(code, 200, "{answer}");
    ln.wait_running();
    ln.fund(&chain);
    let seed_file = ln.node.data_dir.join("secrets/seed.txt");
    let seed = std::fs::read(&seed_file).unwrap();
    let node_id = ln.node_id();
    let onchain = ln.balances()["onchain_sat"].clone();

    let token = ln.node.token().unwrap();
    // A fresh session lets the fuzzer reach past the password check of the dangerous
    // actions, but a withdrawal to a valid address then waits 2 minutes for KEY2 (longer
    // than a short run): only on request.
    if std::env::var_os("PLUGNODE_FUZZ_FRESH").is_some() {
        ln.node.reauth();
    }
    let url = format!("http://{}/api/openapi.json", ln.node.web);
    let output = dir.path().join("schemathesis.txt");
    let mut command = Command::new(&program);
    command
        // Its cache (.schemathesis/) goes with the test's directory.
        .current_dir(dir.path())
        .arg("run")
        .arg(&url)
        .args(["--checks", &checks])
        .args(["--max-time", &secs.to_string()])
        // A withdrawal waits up to 2 minutes for KEY2 on the box.
        .args(["--request-timeout", "150", "--workers", "1"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--exclude-path", "/api/system/shutdown"])
        .args(["--exclude-path", "/api/display/key"])
        .args(["--exclude-path", "/api/logout"])
        .args(["--exclude-path", "/api/logout-everywhere"])
        .args(["--suppress-health-check", "all"])
        // Nothing sent to the box may end up in the output (the token).
        .args(["--output-sanitize", "true"])
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::process::Stdio::inherit());
    if let Ok(seed) = std::env::var("PLUGNODE_FUZZ_SEED") {
        command.args(["--seed", &seed]);
    }
    if let Some(report) = std::env::var_os("PLUGNODE_FUZZ_REPORT") {
        command
            .args(["--report", "junit,har"])
            .arg("--report-dir")
            .arg(report);
    }
    let status = command.status().unwrap_or_else(|err| {
        panic!("{} does not run: {err}", program.display());
    });
    let printed = std::fs::read_to_string(&output).unwrap_or_default();
    println!("{printed}");
    // Still answering, with its data: the fuzzer's wrong passwords made 127.0.0.1 wait, so
    // the owner comes from another address.
    let (code, _) = http(ln.node.web, "GET", "/api/health", None).unwrap();
    assert_eq!(code, 200);
    let owner = Ipv4Addr::new(127, 0, 0, 3);
    let login = http_from(
        owner,
        ln.node.web,
        "POST",
        "/api/login",
        Some(&json!({ "password": PASSWORD }).to_string()),
    )
    .unwrap();
    assert_eq!(login.code, 200, "the password still works: {login:?}");
    let token: Value = serde_json::from_str(&login.body).unwrap();
    let token = token["token"].as_str().unwrap();
    let get = |path: &str| {
        let (code, text) = http_with_token(ln.node.web, "GET", path, None, Some(token)).unwrap();
        assert_eq!(code, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    assert_eq!(get("/api/lightning/info")["node_id"], json!(node_id));
    assert_eq!(get("/api/lightning/balances")["onchain_sat"], onchain);
    assert_eq!(get("/api/wallet")["has_seed"], true);
    assert_eq!(
        std::fs::read(&seed_file).unwrap(),
        seed,
        "the seed is untouched"
    );
    assert_eq!(get("/api/status")["lightning"]["state"]["state"], "running");

    // Only now what schemathesis found: the checks above hold whatever it found.
    let log = ln.node.log();
    // What went wrong, without the simulator's endless fee-estimate complaints.
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("ERROR") || l.contains("WARN")) && !l.contains("fee rate"))
        .collect();
    assert!(
        status.success(),
        "schemathesis found failures ({status}):\n{printed}\nplugnode's warnings and errors:\n{}",
        problems[problems.len().saturating_sub(60)..].join("\n")
    );
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
}
