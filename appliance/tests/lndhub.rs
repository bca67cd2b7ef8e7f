//! End-to-end: BlueWallet and Zeus paired over LNDHub with a real box, replayed call by
//! call with the apps' own headers and bodies (BlueWallet's
//! `class/wallets/lightning-custodian-wallet.ts`, Zeus's `backends/LndHub.ts`), and every
//! field those apps read checked. A second box is the rest of the Lightning network: it
//! pays the apps' invoices and is paid by them.

mod common;

use common::lightning::*;
use common::lndhub::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn is_hex64(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn bluewallet_and_zeus_pair_receive_pay_and_are_refused_as_their_connection_says() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let mut config = TestConfig::lightning_box(&dir.path().join("box"), &chain.sim);
    config.pairing = Some(TestPairing {
        relay_port: None,
        lndhub_port: Some(free_port()),
        relays: Vec::new(),
    });
    let (ln, _) = LnBox::start_with(config);
    let other = LnBox::start(&dir.path().join("other"), &chain);
    ln.fund(&chain);
    // The other side gets 100 000 sat of the channel, to pay the apps' invoices.
    open_channel(&chain, &ln, &other, 1_000_000, 100_000_000);

    let (mut blue, blue_id) = App::pair(
        &ln,
        "BlueWallet",
        &["receive", "spend"],
        Some(20_000),
        BLUEWALLET,
    );
    let (mut zeus, _) = App::pair(&ln, "Zeus", &["receive"], None, ZEUS);

    // --- BlueWallet ---------------------------------------------------------------------

    // Adding a custom hub: GET /getinfo at its root, no token; code 1 means "a hub".
    call(blue.hub, "GET", "/getinfo", BLUEWALLET, None, None).bad_auth();
    blue.log_in();
    let info = blue.get("/getinfo").ok();
    assert_eq!(info["identity_pubkey"], ln.node_id());
    assert!(info["block_height"].as_u64().unwrap() > 100);

    // What it may spend: the channel could carry more, the budget says 20 000.
    assert_eq!(blue.balance(), 20_000);

    // Receiving: `amt` as a string.
    let added = blue
        .post("/addinvoice", json!({"amt": "1000", "memo": "coffee"}))
        .ok();
    assert!(is_hex64(&added["r_hash"]), "{added}");
    let pay_req = added["pay_req"].as_str().unwrap().to_string();
    assert!(pay_req.starts_with("lnbcrt10u"), "{added}");
    assert_eq!(added["payment_request"], pay_req.as_str());
    let invoices = blue.invoices();
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let invoice = &invoices[0];
    assert_eq!(invoice["type"], "user_invoice");
    assert_eq!(invoice["payment_request"], pay_req.as_str());
    assert_eq!(invoice["payment_hash"], added["r_hash"], "a hex string");
    assert_eq!(invoice["ispaid"], false);
    assert_eq!(invoice["amt"], 1000);
    assert_eq!(invoice["description"], "coffee");
    assert_eq!(invoice["expire_time"], 86_400);
    let timestamp = invoice["timestamp"].as_u64().unwrap();
    assert!(timestamp.abs_diff(now()) < 120, "seconds: {timestamp}");
    assert!(invoice.get("amount").is_none(), "not an on-chain entry");
    let hash = added["r_hash"].as_str().unwrap().to_string();
    assert_eq!(
        blue.get(&format!("/checkpayment/{hash}")).ok(),
        json!({"paid": false})
    );

    let (code, paid) = other.pay(&pay_req, None);
    assert_eq!(code, 200, "{paid}");
    ln.wait("the app's invoice to show as paid", || {
        (blue.invoices()[0]["ispaid"] == true).then_some(())
    });
    assert_eq!(
        blue.get(&format!("/checkpayment/{hash}")).ok(),
        json!({"paid": true})
    );
    // Received money is the box's, not the app's to spend: the budget still says 20 000.
    assert_eq!(blue.balance(), 20_000);

    // Paying another node: decode first (BlueWallet decodes locally, others ask).
    let bill = other.invoice(Some(2_000_000), "bread");
    let decoded = blue.get(&format!("/decodeinvoice?invoice={bill}")).ok();
    assert!(is_hex64(&decoded["payment_hash"]), "{decoded}");
    assert_eq!(decoded["num_satoshis"], "2000");
    assert_eq!(decoded["description"], "bread");
    assert_eq!(decoded["destination"], other.node_id());
    blue.get("/decodeinvoice?invoice=lnbcrt1garbage").error(4);
    // Read as the box reads any pasted invoice: scanned in capitals, behind a scheme.
    let scanned = format!("LIGHTNING:{}", bill.to_uppercase());
    let again = blue.get(&format!("/decodeinvoice?invoice={scanned}")).ok();
    assert_eq!(again["payment_hash"], decoded["payment_hash"], "{again}");

    let before = ln.outbound_sat();
    // BlueWallet sends `amount` with every payment (0 unless the invoice has none).
    let sent = blue.post("/payinvoice", json!({"invoice": bill, "amount": 2000}));
    assert!(sent.took < BLUEWALLET_ABORT, "answered in {:?}", sent.took);
    let sent = sent.ok();
    assert!(is_hex64(&sent["payment_preimage"]), "{sent}");
    assert_eq!(sent["payment_hash"], decoded["payment_hash"]);
    assert_eq!(sent["payment_error"], "");
    assert!(
        sent.get("status").is_none(),
        "Zeus reads no status as complete"
    );
    wait_for("the channel to pay", LN_TIMEOUT, || {
        (ln.outbound_sat() < before).then_some(())
    });
    let txs = blue.get("/gettxs?limit=10&offset=0").ok();
    let txs = txs.as_array().unwrap();
    assert_eq!(txs.len(), 1, "only this app's payments: {txs:?}");
    let tx = &txs[0];
    assert_eq!(tx["type"], "paid_invoice");
    assert_eq!(tx["payment_hash"], sent["payment_hash"]);
    assert_eq!(tx["payment_preimage"], sent["payment_preimage"]);
    let fee = tx["fee"].as_u64().unwrap();
    assert_eq!(tx["value"], 2000 + fee, "value includes the fee");
    assert!(tx["timestamp"].as_u64().unwrap().abs_diff(now()) < 120);
    assert!(tx.get("amount").is_none(), "not an on-chain entry");
    let paid_hash = sent["payment_hash"].as_str().unwrap();
    assert_eq!(
        blue.get(&format!("/checkpayment/{paid_hash}")).ok(),
        json!({"paid": true})
    );
    let left = blue.balance();
    assert_eq!(left, 20_000 - 2000 - fee);

    // Refusals that send nothing: the same invoice twice, a bad invoice, bad amounts, and
    // more than the budget.
    let before = ln.outbound_sat();
    let twice = blue.post("/payinvoice", json!({"invoice": bill, "amount": 2000}));
    assert!(twice.error(10).contains("already paid"), "{}", twice.body);
    blue.post(
        "/payinvoice",
        json!({"invoice": "lnbcrt1nope", "amount": 0}),
    )
    .error(4);
    for amt in [json!("0"), json!(0), json!("-1"), json!("ten")] {
        let message = blue
            .post("/addinvoice", json!({"amt": amt, "memo": ""}))
            .error(8);
        assert!(message.contains("amt"), "{message}");
    }
    let too_much = other.invoice(Some(19_000_000), "a bike");
    let refused = blue.post("/payinvoice", json!({"invoice": too_much, "amount": 19000}));
    assert!(refused.error(2).contains("budget"), "{}", refused.body);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ln.outbound_sat(), before, "nothing was sent");
    assert_eq!(blue.balance(), left);
    assert_eq!(blue.get("/gettxs").ok().as_array().unwrap().len(), 1);

    // No on-chain deposits for apps: an empty list, no error.
    assert_eq!(blue.get("/getbtc").ok(), json!([]));
    assert_eq!(blue.get("/getpending").ok(), json!([]));

    // The access token expires after 2 hours in BlueWallet's eyes: it refreshes.
    let refreshed = blue.auth(json!({"refresh_token": blue.refresh}), "refresh_token");
    let tokens = refreshed.ok();
    blue.take(&tokens);
    assert_eq!(blue.balance(), left);

    // A token the box does not know (a restart forgets them all): code 1, log in again.
    let stale = std::mem::replace(&mut blue.access, "ab".repeat(32));
    blue.get("/balance").bad_auth();
    blue.access = stale;

    // --- Zeus (receive only) -------------------------------------------------------------

    let wrong = zeus.auth(
        json!({"login": zeus.login, "password": "Not_the_password_12345"}),
        "auth",
    );
    assert!(wrong.status >= 300);
    assert!(wrong.body.contains("\"bad auth\""), "{}", wrong.body);
    zeus.log_in();
    assert_eq!(zeus.balance(), 0, "a receive-only app may spend nothing");
    // Zeus's `createInvoice`: `amt` from a text field, or a number.
    let added = zeus
        .post("/addinvoice", json!({"amt": 500, "memo": "from zeus"}))
        .ok();
    let invoices = zeus.invoices();
    assert_eq!(invoices.len(), 1, "only this app's invoices: {invoices:?}");
    assert_eq!(invoices[0]["r_hash"], added["r_hash"]);
    assert_eq!(invoices[0]["amt"], 500);
    let bill = other.invoice(Some(1_000_000), "for zeus");
    let refused = zeus.post("/payinvoice", json!({"invoice": bill, "amount": 1000}));
    assert!(
        refused.error(2).contains("only receive"),
        "{}",
        refused.body
    );
    assert_eq!(zeus.get("/gettxs").ok(), json!([]));

    // --- Revoked on the page: refused at once -------------------------------------------

    let (code, answer) = ln
        .node
        .api(
            "DELETE",
            &format!("/api/pairing/connections/{blue_id}"),
            None,
        )
        .unwrap();
    assert_eq!(code, 200, "{answer}");
    blue.get("/balance").bad_auth();
    blue.post(
        "/payinvoice",
        json!({"invoice": other.invoice(Some(1_000), "x")}),
    )
    .bad_auth();
    blue.auth(json!({"refresh_token": blue.refresh}), "refresh_token")
        .bad_auth();
    blue.auth(
        json!({"login": blue.login, "password": blue.password}),
        "auth",
    )
    .bad_auth();
    // The other app is not touched.
    assert_eq!(zeus.balance(), 0);

    // No password or token in the box's log.
    let log = ln.node.log();
    for secret in [
        &blue.password,
        &blue.access,
        &blue.refresh,
        &zeus.password,
        &zeus.access,
    ] {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
    assert!(
        log.contains("LNDHub: BlueWallet (LNDHub) paid 2000 sat"),
        "{log}"
    );
}
