//! The "Connect a wallet" API on a real box: making, listing and revoking connections, the
//! password asked again on a box without keys, bad input refused with the field named, and
//! pairing secrets that exist only in the one answer that carries them.

mod common;

use common::*;
use serde_json::{json, Value};

fn post(node: &Plugnode, body: &Value) -> (u16, Value) {
    let (code, text) = node
        .api("POST", "/api/pairing/connections", Some(&body.to_string()))
        .expect("the box answers");
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(node: &Plugnode, path: &str) -> (u16, Value) {
    let (code, text) = node.api("GET", path, None).expect("the box answers");
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every file under `dir`, as bytes.
fn everything_in(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(everything_in(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn connections_are_made_listed_and_revoked_and_their_secrets_are_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.pairing = Some(TestPairing::both());
    let relay_port = config.pairing.as_ref().unwrap().relay_port.unwrap();
    let lndhub_port = config.pairing.as_ref().unwrap().lndhub_port.unwrap();
    let mut node = Plugnode::start(&config);
    node.wait_status("the box to run", |s| s["phase"] == "running");

    // What the card needs: a box without a screen asks for the password before spending.
    let (code, overview) = get(&node, "/api/pairing");
    assert_eq!(code, 200, "{overview}");
    assert_eq!(overview["spending_needs_password"], true);
    assert_eq!(overview["protocols"], json!({"nwc": true, "lndhub": true}));

    // A receive-only NWC connection: active at once, its URI names the box's relay.
    let (code, created) = post(
        &node,
        &json!({"app": "Alby Go", "protocol": "nwc", "permissions": ["receive"]}),
    );
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["state"], "active");
    let nwc_uri = created["uri"].as_str().unwrap().to_string();
    assert!(nwc_uri.starts_with("nostr+walletconnect://"), "{nwc_uri}");
    assert!(
        nwc_uri.contains(&format!("relay=ws%3A%2F%2F127.0.0.1%3A{relay_port}")),
        "{nwc_uri}"
    );
    let nwc_secret = nwc_uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(nwc_secret.len(), 64);

    // Spending: refused without the password, with a wrong one; allowed with the right one.
    let spender = json!({
        "app": "BlueWallet", "protocol": "lndhub", "permissions": ["receive", "spend"],
        "budget_sat": 20_000, "renewal": "weekly", "expires_at": null,
    });
    let (code, refused) = post(&node, &spender);
    assert_eq!(
        (code, refused["kind"].as_str()),
        (401, Some("reauth_required")),
        "{refused}"
    );
    let mut wrong = spender.clone();
    wrong["password"] = "not the password".into();
    let (code, refused) = post(&node, &wrong);
    assert_eq!(
        (code, refused["kind"].as_str()),
        (401, Some("wrong_password")),
        "{refused}"
    );
    let mut right = spender.clone();
    right["password"] = PASSWORD.into();
    let (code, created) = loop {
        // The wrong password made the box wait a moment before the next try.
        let (code, created) = post(&node, &right);
        if code != 429 {
            break (code, created);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(code, 200, "{created}");
    assert_eq!(created["state"], "active");
    let lndhub_uri = created["uri"].as_str().unwrap().to_string();
    let lndhub_id = created["id"].as_str().unwrap().to_string();
    assert!(
        lndhub_uri.starts_with("lndhub://")
            && lndhub_uri.ends_with(&format!("@http://127.0.0.1:{lndhub_port}")),
        "{lndhub_uri}"
    );
    let lndhub_password = lndhub_uri
        .trim_start_matches("lndhub://")
        .split('@')
        .next()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(lndhub_password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_'));

    // The list: both, with budgets, and no secret anywhere in it.
    let (code, list) = get(&node, "/api/pairing/connections");
    assert_eq!(code, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let text = list.to_string();
    assert!(!text.contains(&nwc_secret) && !text.contains(&lndhub_password));
    let blue = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == lndhub_id.as_str())
        .unwrap();
    assert_eq!(blue["budget_sat"], 20_000);
    assert_eq!(blue["left_sat"], 20_000);
    assert_eq!(blue["renewal"], "weekly");
    assert_eq!(blue["permissions"], json!(["receive", "spend"]));
    assert!(blue["renews_at"].as_u64().is_some());
    node.wait_status("two apps paired", |s| {
        s["pairing"]["active_connections"] == 2
    });

    // Bad input names the field and changes nothing.
    for (body, field) in [
        (
            json!({"app": "X", "protocol": "lnurl", "permissions": ["receive"]}),
            "protocol",
        ),
        (
            json!({"app": "", "protocol": "nwc", "permissions": ["receive"]}),
            "app",
        ),
        (
            json!({"app": "X", "protocol": "nwc", "permissions": ["receive", "spend"], "password": PASSWORD}),
            "budget_sat",
        ),
        (
            json!({"app": "X", "protocol": "nwc", "permissions": ["receive", "spend"], "budget_sat": 5, "renewal": "hourly", "password": PASSWORD}),
            "renewal",
        ),
        (
            json!({"app": "X", "protocol": "nwc", "permissions": ["receive"], "expires_at": 1}),
            "expires_at",
        ),
        (
            json!({"app": "X", "protocol": "nwc", "permissions": ["receive"], "colour": "red"}),
            "colour",
        ),
        (json!({"app": 7}), "app"),
    ] {
        let (code, refused) = post(&node, &body);
        assert_eq!(code, 400, "{body} → {refused}");
        assert!(
            refused["error"].as_str().unwrap().contains(field),
            "{body} → {refused}"
        );
    }
    let (code, _) = node
        .api("POST", "/api/pairing/connections", Some("not json"))
        .unwrap();
    assert_eq!(code, 400);
    assert_eq!(
        get(&node, "/api/pairing/connections")
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Revoke: gone from the list, shown as revoked, an unknown id is not found.
    let (code, _) = node
        .api(
            "DELETE",
            &format!("/api/pairing/connections/{lndhub_id}"),
            None,
        )
        .unwrap();
    assert_eq!(code, 200);
    let (_, one) = get(&node, &format!("/api/pairing/connections/{lndhub_id}"));
    assert_eq!(one["state"], "revoked", "{one}");
    assert_eq!(
        get(&node, "/api/pairing/connections")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (code, _) = node
        .api("DELETE", "/api/pairing/connections/nothing", None)
        .unwrap();
    assert_eq!(code, 404);
    node.wait_status("one app paired", |s| {
        s["pairing"]["active_connections"] == 1
    });

    // After a restart the connection is still there; no secret reached the disk or the log.
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(node.wait_exit(TIMEOUT).success());
    let on_disk = everything_in(&config.data_dir());
    assert!(
        !contains(&on_disk, &nwc_secret),
        "the NWC secret is on disk"
    );
    assert!(
        !contains(&on_disk, &lndhub_password),
        "the LNDHub password is on disk"
    );
    let log = node.log();
    assert!(
        !log.contains(&nwc_secret) && !log.contains(&lndhub_password),
        "{log}"
    );
    let node = Plugnode::start(&config);
    node.wait_status("the box to run again", |s| s["phase"] == "running");
    let (_, list) = get(&node, "/api/pairing/connections");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["app"], "Alby Go");
}

#[test]
fn a_port_in_use_is_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = TestConfig::new(dir.path());
    config.pairing = Some(TestPairing {
        relay_port: Some(free_port()),
        lndhub_port: Some(taken.local_addr().unwrap().port()),
        relays: Vec::new(),
    });
    let mut node = Plugnode::start(&config);
    // Diagnostic mode names it (no restart loop), and nothing else started.
    let diagnosis = wait_for("the diagnostic page", TIMEOUT, || {
        let (code, body) = http(node.web, "GET", "/api/diagnostic", None)?;
        (code == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).ok())?
    });
    assert_eq!(
        diagnosis["problem"],
        "Pairing with wallet apps cannot start"
    );
    let detail = diagnosis["detail"].as_str().unwrap();
    assert!(detail.contains("pairing.lndhub_listen"), "{detail}");
    assert!(node.bitcoind_pid().is_none());
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(node.wait_exit(TIMEOUT).success());
}
