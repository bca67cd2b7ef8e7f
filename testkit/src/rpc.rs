//! A small blocking JSON-RPC client for tests, over a plain `TcpStream` (one connection per
//! call, `Connection: close`). Unlike `bitcoincore-rpc` it exposes everything a test may
//! want to assert: the HTTP status, the RPC error code and message, the raw reply.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the client authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    UserPass(String, String),
    /// A `.cookie` file (`__cookie__:<password>`), read at every call.
    CookieFile(PathBuf),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcCallError {
    #[error("cannot talk to the RPC server: {0}")]
    Transport(#[from] std::io::Error),
    #[error("cannot read the cookie file {path}: {source}")]
    Cookie {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An HTTP error without a JSON-RPC error in the body (e.g. 401, 403, 404 on a path).
    #[error("HTTP {status} without a JSON-RPC answer: {body:?}")]
    Http { status: u16, body: String },
    /// The server answered with a JSON-RPC error.
    #[error("RPC error {code} (HTTP {status}): {message}")]
    Rpc {
        status: u16,
        code: i64,
        message: String,
    },
    #[error("invalid JSON-RPC answer: {0}")]
    InvalidResponse(String),
}

impl RpcCallError {
    /// The JSON-RPC error code, if the server sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcCallError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The JSON-RPC error message, if the server sent one.
    pub fn message(&self) -> Option<&str> {
        match self {
            RpcCallError::Rpc { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The HTTP status, if an HTTP answer came back.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            RpcCallError::Rpc { status, .. } | RpcCallError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A raw HTTP answer.
#[derive(Clone, Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// A blocking JSON-RPC client.
#[derive(Debug)]
pub struct RpcClient {
    host: String,
    port: u16,
    path: String,
    auth: Auth,
    timeout: Duration,
    jsonrpc2: bool,
    next_id: AtomicU64,
}

impl Clone for RpcClient {
    fn clone(&self) -> Self {
        RpcClient {
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            auth: self.auth.clone(),
            timeout: self.timeout,
            jsonrpc2: self.jsonrpc2,
            next_id: AtomicU64::new(self.next_id.load(Ordering::Relaxed)),
        }
    }
}

impl RpcClient {
    /// A client for `url` (`http://127.0.0.1:18443`, `127.0.0.1:18443` or with a path).
    /// Calls time out after 60 s by default (mining hundreds of blocks on a loaded machine
    /// takes a while).
    pub fn new(url: &str, auth: Auth) -> RpcClient {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().unwrap_or(18443),
            ),
            None => (authority.to_string(), 18443),
        };
        RpcClient {
            host,
            port,
            path,
            auth,
            timeout: Duration::from_secs(60),
            jsonrpc2: false,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sets the timeout of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> RpcClient {
        self.timeout = timeout;
        self
    }

    /// Sends JSON-RPC 2.0 requests (`"jsonrpc": "2.0"`) instead of 1.0 style ones.
    pub fn jsonrpc2(mut self, on: bool) -> RpcClient {
        self.jsonrpc2 = on;
        self
    }

    /// The same server with other credentials.
    pub fn with_auth(mut self, auth: Auth) -> RpcClient {
        self.auth = auth;
        self
    }

    /// `http://host:port/`.
    pub fn url(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }

    fn authorization(&self) -> Result<Option<String>, RpcCallError> {
        let userpass = match &self.auth {
            Auth::None => return Ok(None),
            Auth::UserPass(user, password) => format!("{user}:{password}"),
            Auth::CookieFile(path) => std::fs::read_to_string(path)
                .map_err(|source| RpcCallError::Cookie {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string(),
        };
        Ok(Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(userpass)
        )))
    }

    /// Calls `method` with `params` (a JSON array, or an object for named parameters).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcCallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut request = json!({"method": method, "params": params, "id": id});
        if self.jsonrpc2 {
            request["jsonrpc"] = json!("2.0");
        }
        let reply = self.post(&request.to_string())?;
        let parsed: Value = match reply.json() {
            Ok(v) => v,
            Err(_) if reply.status != 200 => {
                return Err(RpcCallError::Http {
                    status: reply.status,
                    body: reply.body,
                })
            }
            Err(e) => return Err(RpcCallError::InvalidResponse(e.to_string())),
        };
        match parsed.get("error") {
            Some(error) if !error.is_null() => Err(RpcCallError::Rpc {
                status: reply.status,
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or("").to_string(),
            }),
            _ => parsed.get("result").cloned().ok_or_else(|| {
                RpcCallError::InvalidResponse(format!("no result in {}", reply.body))
            }),
        }
    }

    /// POSTs `body` to the RPC path with this client's credentials.
    pub fn post(&self, body: &str) -> Result<HttpReply, RpcCallError> {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(auth) = self.authorization()? {
            headers.push(("Authorization".to_string(), auth));
        }
        Ok(self.request("POST", &self.path.clone(), &headers, body.as_bytes())?)
    }

    /// Sends one raw HTTP/1.1 request (adds `Host`, `Content-Length`, `Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> std::io::Result<HttpReply> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host,
            self.port,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_reply(&raw)
    }
}

fn parse_reply(raw: &[u8]) -> std::io::Result<HttpReply> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no complete HTTP head in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = &raw[split + 4..];
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body = &body[..len.min(body.len())];
    }
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}
