//! The LNDHub server on a real socket, with the apps' own headers and bodies, in front of
//! a real connection store and a Lightning node that is not running: everything that is
//! decided before the node is asked (logins, tokens, revocation, permissions, arguments,
//! routes, sizes) is checked here; paying and receiving for real is in
//! `tests/lndhub.rs`.

use super::error::{
    BAD_ARGUMENTS, BAD_AUTH, NODE_FAILURE, NOT_A_VALID_INVOICE, NOT_ENOUGH_BALANCE,
    NO_NEW_ACCOUNTS, SERVER_ERROR,
};
use super::throttle::MAX_FAILURES;
use super::LndhubServer;
use crate::bitcoind::RpcUser;
use crate::config::{GossipSetting, Network};
use crate::lightning::store::ChannelStore;
use crate::lightning::{LightningHandle, LightningSettings};
use crate::pairing::connection::{Connection, ConnectionState, Protocol, Renewal};
use crate::pairing::password_sha256;
use crate::pairing::store::PairingStore;
use crate::pairing::wallet::Wallet;
use crate::secret::Secret;
use crate::status::StatusHandle;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOGIN: &str = "0123456789abcdef0123";
const PASSWORD: &str = "Abc_defGhijKlmnopQrstuv9";
const SPENDER: &str = "fedcba9876543210fedc";

/// The headers BlueWallet sends with every call (`Content-Type` on GETs too).
const BLUEWALLET: &str = "Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n";

struct Hub {
    address: SocketAddr,
    store: PairingStore,
    server: Option<LndhubServer>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            !self.body.contains('\n'),
            "one line of JSON, got {:?}",
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("JSON, got {} {:?}", self.status, self.body))
    }

    /// An LNDHub error with `code`; its message.
    fn error(&self, code: u8) -> String {
        let value = self.json();
        assert_eq!(value["error"], true, "{value}");
        assert_eq!(value["code"], code, "{value}");
        assert!(self.status < 500, "never a 5xx: {}", self.status);
        value["message"].as_str().unwrap().to_string()
    }

    fn bad_auth(&self) {
        assert_eq!(
            self.json(),
            json!({"error": true, "code": 1, "message": "bad auth"})
        );
        assert!(self.status >= 300, "Zeus needs a status >= 300");
        // Zeus recognises a wrong password by this text in the body.
        assert!(self.body.contains("\"bad auth\""));
    }
}

impl Hub {
    async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let store = PairingStore::open(dir.path()).unwrap();
        let status = StatusHandle::new();
        let lightning = LightningHandle::spawn(
            LightningSettings {
                enabled: false,
                network: Network::Regtest,
                storage_dir: dir.path().join("lightning"),
                secrets_dir: dir.path().join("secrets"),
                listen_address: "127.0.0.1:9735".parse().unwrap(),
                alias: None,
                gossip: GossipSetting::Auto,
                rpc_port: 18443,
                rpc_user: RpcUser {
                    name: "ldk".into(),
                    password: Secret::new("unused"),
                },
                lsp: None,
                lsp_fee_limit: Default::default(),
                lsp_service: None,
            },
            status.clone(),
            ChannelStore::open(&dir.path().join("channels")).unwrap(),
        );
        let wallet = Wallet::new(store.clone(), lightning, status);
        for (id, login, spend) in [("receiver", LOGIN, false), ("spender", SPENDER, true)] {
            store
                .insert(
                    connection(id, login, spend),
                    Some(password_sha256(PASSWORD)),
                )
                .await
                .unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = LndhubServer::start(listener, wallet).unwrap();
        Hub {
            address,
            store,
            server: Some(server),
            _dir: dir,
        }
    }

    /// One request as the apps send it: `headers` verbatim, the body only when given.
    async fn call(&self, method: &str, path: &str, headers: &str, body: Option<&str>) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let length = body
            .map(|b| format!("Content-Length: {}\r\n", b.len()))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: box\r\nConnection: close\r\n{headers}{length}\r\n{}",
            body.unwrap_or("")
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        Answer {
            status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
            body: body.to_string(),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        let headers = format!("{BLUEWALLET}Authorization: Bearer {token}\r\n");
        self.call("GET", path, &headers, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        let headers = format!("{BLUEWALLET}Authorization: Bearer {token}\r\n");
        self.call("POST", path, &headers, Some(&body.to_string()))
            .await
    }

    async fn login(&self, login: &str, password: &str) -> Answer {
        let body = json!({ "login": login, "password": password }).to_string();
        self.call("POST", "/auth?type=auth", BLUEWALLET, Some(&body))
            .await
    }

    /// Logs in; the access and refresh tokens.
    async fn tokens(&self, login: &str) -> (String, String) {
        let answer = self.login(login, PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let value = answer.json();
        let token = |name: &str| {
            let token = value[name].as_str().unwrap().to_string();
            assert_eq!(token.len(), 64, "32 random bytes, hex");
            token
        };
        (token("access_token"), token("refresh_token"))
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

fn connection(id: &str, login: &str, spend: bool) -> Connection {
    Connection {
        id: id.into(),
        app: "BlueWallet".into(),
        protocol: Protocol::Lndhub,
        spend,
        budget_msat: if spend { 10_000_000 } else { 0 },
        renewal: if spend {
            Renewal::Daily
        } else {
            Renewal::Never
        },
        max_payment_msat: if spend { 10_000_000 } else { 0 },
        expires_at: None,
        created_at: 1_700_000_000,
        state: ConnectionState::Active,
        last_used_at: None,
        nwc_pubkey: None,
        lndhub_login: Some(login.into()),
    }
}

/// A signed regtest invoice from a node that is not this one.
pub(super) fn invoice(amount_msat: Option<u64>) -> String {
    use ldk_node::bitcoin::hashes::{sha256, Hash};
    use ldk_node::bitcoin::secp256k1::{Secp256k1, SecretKey};
    use ldk_node::lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    let builder = InvoiceBuilder::new(Currency::Regtest)
        .description("coffee".into())
        .payment_hash(sha256::Hash::from_byte_array([1; 32]))
        .payment_secret(PaymentSecret([2; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144);
    let builder = match amount_msat {
        Some(amount) => builder.amount_milli_satoshis(amount),
        None => builder,
    };
    builder
        .build_signed(|hash| Secp256k1::new().sign_ecdsa_recoverable(hash, &key))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn bluewallet_logs_in_refreshes_and_logs_in_again_on_a_bad_token() {
    let hub = Hub::start().await;
    let (access, refresh) = hub.tokens(LOGIN).await;

    // A GET with Content-Type: application/json and no body is served.
    let balance = hub.get("/balance", &access).await;
    assert_eq!(balance.status, 200, "{}", balance.body);
    assert_eq!(balance.json(), json!({"BTC": {"AvailableBalance": 0}}));

    // Refreshing hands out a new pair and uses the refresh token up.
    let body = json!({ "refresh_token": refresh }).to_string();
    let refreshed = hub
        .call("POST", "/auth?type=refresh_token", BLUEWALLET, Some(&body))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let fresh = refreshed.json();
    let fresh_access = fresh["access_token"].as_str().unwrap();
    assert_ne!(fresh_access, access);
    assert_eq!(hub.get("/getbtc", fresh_access).await.json(), json!([]));
    hub.call("POST", "/auth?type=refresh_token", BLUEWALLET, Some(&body))
        .await
        .bad_auth();

    // A token the box never gave (or forgot in a restart): code 1, so the app logs in.
    hub.get("/balance", &"ab".repeat(32)).await.bad_auth();
    hub.get("/balance", "undefined").await.bad_auth();
    hub.call("GET", "/gettxs", BLUEWALLET, None)
        .await
        .bad_auth();
    // The refresh token is no access token.
    hub.get("/balance", fresh["refresh_token"].as_str().unwrap())
        .await
        .bad_auth();
    // BlueWallet's check of a custom hub address: /getinfo without a token.
    hub.call("GET", "/getinfo", BLUEWALLET, None)
        .await
        .bad_auth();
    hub.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_bad_auth_with_a_status_zeus_reads() {
    let hub = Hub::start().await;
    hub.login(LOGIN, "Wrong_password_123456789")
        .await
        .bad_auth();
    hub.login("ffffffffffffffffffff", PASSWORD).await.bad_auth();
    hub.login(&"x".repeat(5000), PASSWORD).await.bad_auth();
    // Zeus's login: its own headers, no type in the body.
    let zeus = "Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n";
    let body = json!({"login": LOGIN, "password": "nope"}).to_string();
    hub.call("POST", "/auth?type=auth", zeus, Some(&body))
        .await
        .bad_auth();
    // Missing fields are bad arguments, not a login attempt.
    let missing = hub
        .call(
            "POST",
            "/auth?type=auth",
            BLUEWALLET,
            Some("{\"login\":\"a\"}"),
        )
        .await;
    missing.error(BAD_ARGUMENTS);
    hub.stop().await;
}

#[tokio::test]
async fn password_guessing_is_throttled_even_for_the_right_password() {
    let hub = Hub::start().await;
    for _ in 0..MAX_FAILURES {
        hub.login(LOGIN, "guess").await.bad_auth();
    }
    let refused = hub.login(LOGIN, PASSWORD).await;
    refused.bad_auth();
    assert_eq!(refused.status, 429);
    hub.stop().await;
}

#[tokio::test]
async fn a_revoked_connection_is_refused_at_once() {
    let hub = Hub::start().await;
    let (access, refresh) = hub.tokens(SPENDER).await;
    assert_eq!(hub.get("/getpending", &access).await.status, 200);
    let revoked = hub
        .store
        .set_state(
            "spender",
            &[ConnectionState::Active],
            ConnectionState::Revoked,
        )
        .await
        .unwrap();
    assert!(revoked);
    hub.get("/getpending", &access).await.bad_auth();
    let body = json!({ "refresh_token": refresh }).to_string();
    hub.call("POST", "/auth", BLUEWALLET, Some(&body))
        .await
        .bad_auth();
    hub.login(SPENDER, PASSWORD).await.bad_auth();

    // An expired connection, and one still waiting for KEY2 on the box, cannot log in.
    let mut expired = connection("expired", "0000000000000000000e", false);
    expired.expires_at = Some(1_700_000_001);
    let mut waiting = connection("waiting", "0000000000000000000f", true);
    waiting.state = ConnectionState::WaitingForKey;
    for (connection, login) in [
        (expired, "0000000000000000000e"),
        (waiting, "0000000000000000000f"),
    ] {
        hub.store
            .insert(connection, Some(password_sha256(PASSWORD)))
            .await
            .unwrap();
        hub.login(login, PASSWORD).await.bad_auth();
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_receive_only_login_may_not_pay_and_is_told_why() {
    let hub = Hub::start().await;
    let (access, _) = hub.tokens(LOGIN).await;
    let answer = hub
        .post(
            "/payinvoice",
            &access,
            json!({"invoice": invoice(Some(1_000_000)), "amount": 1000}),
        )
        .await;
    let message = answer.error(NOT_ENOUGH_BALANCE);
    assert!(message.contains("only receive"), "{message}");
    hub.stop().await;
}

#[tokio::test]
async fn bad_amounts_and_invoices_are_bad_arguments() {
    let hub = Hub::start().await;
    let (access, _) = hub.tokens(SPENDER).await;
    for amt in [
        json!("0"),
        json!(0),
        json!("-5"),
        json!(-5),
        json!("abc"),
        json!(1.5),
    ] {
        let answer = hub
            .post("/addinvoice", &access, json!({"amt": amt, "memo": "x"}))
            .await;
        let message = answer.error(BAD_ARGUMENTS);
        assert!(message.contains("\"amt\""), "{amt}: {message}");
    }
    // A good amount reaches the node, which is not running: code 7, not a 5xx.
    let answer = hub
        .post("/addinvoice", &access, json!({"amt": "1000", "memo": "x"}))
        .await;
    assert!(answer.error(NODE_FAILURE).contains("Lightning node"));

    let pay = |body: Value| hub.post("/payinvoice", &access, body);
    pay(json!({"invoice": "lnbcrt1nonsense"}))
        .await
        .error(NOT_A_VALID_INVOICE);
    pay(json!({})).await.error(BAD_ARGUMENTS);
    pay(json!({"invoice": invoice(None), "amount": 0}))
        .await
        .error(BAD_ARGUMENTS);
    pay(json!({"invoice": invoice(None), "amount": -3}))
        .await
        .error(BAD_ARGUMENTS);
    // BlueWallet sends the amount along with a fixed-amount invoice: it does not count.
    pay(json!({"invoice": invoice(Some(1_500)), "amount": 1}))
        .await
        .error(NODE_FAILURE);
    hub.stop().await;
}

#[tokio::test]
async fn lookups_answer_in_the_reference_shapes() {
    let hub = Hub::start().await;
    let (access, _) = hub.tokens(LOGIN).await;
    assert_eq!(
        hub.get("/gettxs?limit=10&offset=0", &access).await.json(),
        json!([])
    );
    assert_eq!(hub.get("/getuserinvoices", &access).await.json(), json!([]));
    assert_eq!(hub.get("/getpending", &access).await.json(), json!([]));
    assert_eq!(hub.get("/getbtc", &access).await.json(), json!([]));
    let hash = "ab".repeat(32);
    assert_eq!(
        hub.get(&format!("/checkpayment/{hash}"), &access)
            .await
            .json(),
        json!({"paid": false})
    );
    hub.get("/checkpayment/nothex", &access)
        .await
        .error(BAD_ARGUMENTS);
    hub.get("/decodeinvoice", &access).await.error(SERVER_ERROR);
    hub.get("/decodeinvoice?invoice=lnbc1garbage", &access)
        .await
        .error(NOT_A_VALID_INVOICE);
    hub.get("/getinfo", &access).await.error(NODE_FAILURE);
    hub.stop().await;
}

#[tokio::test]
async fn unknown_routes_big_bodies_and_bad_json_get_lndhub_errors() {
    let hub = Hub::start().await;
    let (access, _) = hub.tokens(SPENDER).await;
    let unknown = hub.get("/v1/getinfo", &access).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.error(BAD_ARGUMENTS).contains("/v1/getinfo"));
    let wrong = hub.get("/payinvoice", &access).await;
    assert_eq!(wrong.status, 405);
    assert!(wrong.error(BAD_ARGUMENTS).contains("POST"));
    // A trailing slash reaches the call all the same.
    assert_eq!(hub.get("/getbtc/", &access).await.json(), json!([]));

    let huge = json!({"invoice": "x".repeat(64 * 1024)});
    let answer = hub.post("/payinvoice", &access, huge).await;
    assert_eq!(answer.status, 413);
    answer.error(BAD_ARGUMENTS);
    let headers = format!("{BLUEWALLET}Authorization: Bearer {access}\r\n");
    hub.call("POST", "/addinvoice", &headers, Some("{\"amt\": "))
        .await
        .error(BAD_ARGUMENTS);
    hub.call("POST", "/create", BLUEWALLET, Some("{}"))
        .await
        .error(NO_NEW_ACCOUNTS);
    hub.stop().await;
}

#[test]
fn the_test_invoice_is_a_real_one() {
    let text = invoice(Some(1_000));
    let parsed: ldk_node::lightning_invoice::Bolt11Invoice = text.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(1_000));
    assert_eq!(BAD_AUTH, 1);
}
