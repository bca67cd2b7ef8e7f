//! A paired LNDHub app for the tests: BlueWallet's and Zeus's calls, with their own headers
//! and bodies (BlueWallet's `class/wallets/lightning-custodian-wallet.ts`, Zeus's
//! `backends/LndHub.ts`), over a fresh connection each, as the apps make them.

use super::lightning::LnBox;
use super::PASSWORD;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What BlueWallet sends with every call, GETs included (and no body on a GET).
pub const BLUEWALLET: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("Content-Type", "application/json"),
];
/// Zeus's `getHeaders`: the same two, in its order.
pub const ZEUS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("Content-Type", "application/json"),
];
/// BlueWallet aborts every request after this long.
pub const BLUEWALLET_ABORT: Duration = Duration::from_secs(20);

/// An app's view of the hub: where it is, its login, its tokens.
pub struct App {
    pub hub: SocketAddr,
    pub login: String,
    pub password: String,
    pub headers: &'static [(&'static str, &'static str)],
    pub access: String,
    pub refresh: String,
}

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub took: Duration,
}

impl Answer {
    pub fn json(&self) -> Value {
        assert!(
            !self.body.contains('\n'),
            "Zeus reads a body with a newline as JSON lines: {:?}",
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("JSON, got {} {:?}", self.status, self.body))
    }

    /// A successful answer.
    pub fn ok(&self) -> Value {
        let value = self.json();
        assert_eq!(self.status, 200, "{value}");
        assert!(value.get("error").is_none(), "{value}");
        value
    }

    /// An LNDHub error with `code`; its message.
    pub fn error(&self, code: u64) -> String {
        let value = self.json();
        assert_eq!(value["error"], true, "{value}");
        assert_eq!(value["code"], code, "{value}");
        assert!(self.status < 500, "never a 5xx: {} {value}", self.status);
        value["message"].as_str().unwrap_or_default().to_string()
    }

    pub fn bad_auth(&self) {
        assert_eq!(
            self.json(),
            json!({"error": true, "code": 1, "message": "bad auth"})
        );
        assert!(self.status >= 300, "Zeus needs a status >= 300");
    }
}

/// One request as the apps send it, over a fresh connection.
pub fn call(
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
    pub fn pair(
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

    pub fn auth(&self, body: Value, kind: &str) -> Answer {
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
    pub fn log_in(&mut self) {
        let answer = self.auth(
            json!({"login": self.login, "password": self.password}),
            "auth",
        );
        let tokens = answer.ok();
        self.take(&tokens);
    }

    pub fn take(&mut self, tokens: &Value) {
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

    pub fn get(&self, path: &str) -> Answer {
        call(
            self.hub,
            "GET",
            path,
            self.headers,
            Some(&self.access),
            None,
        )
    }

    pub fn post(&self, path: &str, body: Value) -> Answer {
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
    pub fn balance(&self) -> u64 {
        let answer = self.get("/balance").ok();
        answer["BTC"]["AvailableBalance"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}"))
    }

    pub fn invoices(&self) -> Vec<Value> {
        self.get("/getuserinvoices")
            .ok()
            .as_array()
            .unwrap()
            .clone()
    }
}
