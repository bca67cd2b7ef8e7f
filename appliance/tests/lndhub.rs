//! End-to-end: BlueWallet and Zeus paired over LNDHub with a real box, replayed call by
//! call with the apps' own headers and bodies (BlueWallet's
//! `class/wallets/lightning-custodian-wallet.ts`, Zeus's `backends/LndHub.ts`), and every
//! field those apps read checked. A second box is the rest of the Lightning network: it
//! pays the apps' invoices and is paid by them.

mod common;

use common::lightning::*;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What BlueWallet sends with every call, GETs included (and no body on a GET).
const BLUEWALLET: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("Content-Type", "application/json"),
];
/// Zeus's `getHeaders`: the same two, in its order.
const ZEUS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("Content-Type", "application/json"),
];
/// BlueWallet aborts every request after this long.
const BLUEWALLET_ABORT: Duration = Duration::from_secs(20);

/// An app's view of the hub: where it is, its login, its tokens.
struct App {
    hub: SocketAddr,
    login: String,
    password: String,
    headers: &'static [(&'static str, &'static str)],
    access: String,
    refresh: String,
}

struct Answer {
    status: u16,
    body: String,
    took: Duration,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            !self.body.contains('\n'),
            "Zeus reads a body with a newline as JSON lines: {:?}",
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("JSON, got {} {:?}", self.status, self.body))
    }

    /// A successful answer.
    fn ok(&self) -> Value {
        let value = self.json();
        assert_eq!(self.status, 200, "{value}");
        assert!(value.get("error").is_none(), "{value}");
        value
    }

    /// An LNDHub error with `code`; its message.
    fn error(&self, code: u64) -> String {
        let value = self.json();
        assert_eq!(value["error"], true, "{value}");
        assert_eq!(value["code"], code, "{value}");
        assert!(self.status < 500, "never a 5xx: {} {value}", self.status);
        value["message"].as_str().unwrap_or_default().to_string()
    }

    fn bad_auth(&self) {
        assert_eq!(
            self.json(),
            json!({"error": true, "code": 1, "message": "bad auth"})
        );
        assert!(self.status >= 300, "Zeus needs a status >= 300");
    }
}

/// One request as the apps send it, over a fresh connection.
fn call(
    hub: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&hub, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {hub}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    if let Some(token) = token {
        request += &format!("Authorization: Bearer {token}\r\n");
    }
    let body = body.map(Value::to_string);
    if let Some(body) = &body {
        request += &format!("Content-Length: {}\r\n", body.len());
    }
    request += "\r\n";
    request += body.as_deref().unwrap_or("");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    Answer {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        body: body.to_string(),
        took: started.elapsed(),
    }
}

impl App {
    /// Pairs an app on the box's page; the app as it is after scanning the code.
    fn pair(
        ln: &LnBox,
        name: &str,
        permissions: &[&str],
        budget_sat: Option<u64>,
        headers: &'static [(&'static str, &'static str)],
    ) -> (App, String) {
        let mut request = json!({
            "app": name,
            "protocol": "lndhub",
            "permissions": permissions,
        });
        if let Some(budget) = budget_sat {
            request["budget_sat"] = budget.into();
            request["renewal"] = "daily".into();
            request["password"] = PASSWORD.into();
        }
        let (code, created) = ln.post("/api/pairing/connections", request);
        assert_eq!(code, 200, "{created}");
        assert_eq!(created["state"], "active", "{created}");
        let uri = created["uri"].as_str().unwrap();
        let rest = uri.strip_prefix("lndhub://").expect("an lndhub:// URI");
        let (credentials, base) = rest.split_once('@').unwrap();
        let (login, password) = credentials.split_once(':').unwrap();
        assert!(password
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let hub: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
        let app = App {
            hub,
            login: login.into(),
            password: password.into(),
            headers,
            access: String::new(),
            refresh: String::new(),
        };
        (app, created["id"].as_str().unwrap().to_string())
    }

    fn auth(&self, body: Value, kind: &str) -> Answer {
        call(
            self.hub,
            "POST",
            &format!("/auth?type={kind}"),
            self.headers,
            None,
            Some(&body),
        )
    }

    /// `authorize()`: login and password for a pair of tokens.
    fn log_in(&mut self) {
        let answer = self.auth(
            json!({"login": self.login, "password": self.password}),
            "auth",
        );
        let tokens = answer.ok();
        self.take(&tokens);
    }

    fn take(&mut self, tokens: &Value) {
        for (name, slot) in [
            ("access_token", &mut self.access),
            ("refresh_token", &mut self.refresh),
        ] {
            let token = tokens[name].as_str().unwrap();
            assert_eq!(token.len(), 64, "{tokens}");
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
            *slot = token.to_string();
        }
    }

    fn get(&self, path: &str) -> Answer {
        call(
            self.hub,
            "GET",
            path,
            self.headers,
            Some(&self.access),
            None,
        )
    }

    fn post(&self, path: &str, body: Value) -> Answer {
        call(
            self.hub,
            "POST",
            path,
            self.headers,
            Some(&self.access),
            Some(&body),
        )
    }

    /// `fetchBalance()`, in sat.
    fn balance(&self) -> u64 {
        let answer = self.get("/balance").ok();
        answer["BTC"]["AvailableBalance"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }

    fn invoices(&self) -> Vec<Value> {
        self.get("/getuserinvoices")
            .ok()
            .as_array()
            .unwrap()
            .clone()
    }
}

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
