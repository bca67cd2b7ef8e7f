//! Upstream mode (`-simupstream=<host>:<port>`): two simulated bitcoinds on one chain.
//!
//! A sim in this mode keeps no chain, mempool or block file. It runs its own RPC server
//! with its own credentials (rpcauth, rpcuser/rpcpassword, cookie; 401s are answered here
//! and never reach the upstream), and forwards every authenticated JSON-RPC body, single
//! or batch, 1.0 or 2.0, to the upstream regtest-sim with the credentials from
//! `-simupstreamcookie` or `-simupstreamauth`. The upstream's HTTP status and body come
//! back unchanged.
//!
//! Answered here instead: `stop` (stops this process, the upstream keeps running),
//! `uptime` (this process's), and everything during this process's own warm-up (-28).
//! A batch that mixes `stop`/`uptime` with other calls is split: the other calls go
//! upstream as one batch, then `stop`/`uptime` run here, and the replies are merged in
//! request order.
//!
//! When the upstream cannot be reached (connection refused, closed mid-answer, no answer
//! within [`ANSWER_TIMEOUT`], unreadable cookie, or the upstream refusing this sim's
//! credentials with 401/403), every call gets the warm-up error code -28 with the message
//! `Upstream regtest-sim at <host>:<port> unreachable: <why>`, framed as Core frames errors
//! (JSON-RPC 1.0: HTTP 500; 2.0: HTTP 200 with an `error` member; batches: an error per
//! call). Clients treat -28 as "come back later", and the sim recovers by itself: idle
//! keep-alive connections to the upstream are checked before reuse and replaced.

use super::jsonrpc::{self, Reply};
use super::node::Node;
use super::rpc::{codes, RpcError};
use super::settings::{UpstreamAuth, UpstreamSettings};
use base64::Engine;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Methods answered by this process, never forwarded.
const LOCAL_METHODS: &[&str] = &["stop", "uptime"];
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the upstream may take to answer (mining many blocks on a loaded machine).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle keep-alive connections kept for reuse.
const MAX_IDLE: usize = 8;
/// Largest answer accepted from the upstream.
const MAX_ANSWER: usize = 256 * 1024 * 1024;

/// An answer for the client.
pub struct Answer {
    pub status: u16,
    /// Whether the body is JSON (else an empty HTTP error body).
    pub json: bool,
    pub body: String,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer {
            status: reply.status,
            json: true,
            body: reply.body,
        }
    }
}

/// The connection to the upstream sim.
pub struct Upstream {
    settings: UpstreamSettings,
    idle: Mutex<Vec<TcpStream>>,
    /// Whether the last forward got an answer (failures and recoveries are logged once).
    reachable: AtomicBool,
}

/// Why one exchange on one connection failed.
struct ExchangeError {
    /// Nothing came back: on a reused keep-alive connection the upstream had closed it
    /// while idle, and the request can go out again on a fresh one.
    nothing_received: bool,
    message: String,
}

impl Upstream {
    pub fn new(settings: UpstreamSettings) -> Upstream {
        Upstream {
            settings,
            idle: Mutex::new(Vec::new()),
            reachable: AtomicBool::new(true),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.settings.address()
    }

    /// The answer to an authenticated request body POSTed to `path`.
    pub async fn respond(&self, node: &Arc<Node>, path: &str, body: Vec<u8>) -> Answer {
        if node.warmup_status().is_some() {
            return local(node, body).await;
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(request @ Value::Object(_)) if is_local(&request) => local(node, body).await,
            Ok(Value::Array(items)) if items.iter().any(is_local) => {
                self.mixed_batch(node, path, items).await
            }
            _ => self.forward_or_fail(node, path, &body).await,
        }
    }

    /// Forwards `body`; when the upstream cannot answer, the -28 error for every call in it.
    async fn forward_or_fail(&self, node: &Node, path: &str, body: &[u8]) -> Answer {
        match self.forward(path, body).await {
            Ok(answer) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    node.log.log(format!(
                        "regtest-sim: upstream {} answers again; forwarding RPC",
                        self.address()
                    ));
                }
                answer
            }
            Err(why) => {
                let message = format!(
                    "Upstream regtest-sim at {} unreachable: {why}",
                    self.address()
                );
                if self.reachable.swap(false, Ordering::Relaxed) {
                    node.log.log(format!(
                        "regtest-sim: {message}; answering RPC with error {} until it is back",
                        codes::IN_WARMUP
                    ));
                }
                let error = RpcError::new(codes::IN_WARMUP, message);
                jsonrpc::handle_with(body, |_, _| Err(error.clone())).into()
            }
        }
    }

    /// A batch holding `stop` or `uptime` besides other calls.
    async fn mixed_batch(&self, node: &Arc<Node>, path: &str, items: Vec<Value>) -> Answer {
        let remote: Vec<&Value> = items.iter().filter(|item| !is_local(item)).collect();
        let mut remote_replies = VecDeque::new();
        if !remote.is_empty() {
            let body = serde_json::to_vec(&remote).unwrap_or_default();
            let answer = self.forward_or_fail(node, path, &body).await;
            match (answer.status, serde_json::from_str::<Value>(&answer.body)) {
                (200, Ok(Value::Array(replies))) => remote_replies.extend(replies),
                (204, _) => {}
                // Not a batch answer (an HTTP error for the whole body): pass it on.
                _ => return answer,
            }
        }
        let mut replies = Vec::new();
        for item in &items {
            if is_local(item) {
                let body = serde_json::to_vec(&[item]).unwrap_or_default();
                let answer = local(node, body).await;
                if let Ok(Value::Array(mut reply)) = serde_json::from_str(&answer.body) {
                    replies.append(&mut reply);
                }
            } else if jsonrpc::expects_reply(item) {
                replies.extend(remote_replies.pop_front());
            }
        }
        replies.extend(remote_replies);
        if replies.is_empty() {
            return Answer {
                status: 204,
                json: true,
                body: String::new(),
            };
        }
        Answer {
            status: 200,
            json: true,
            body: format!("{}\n", Value::Array(replies)),
        }
    }

    /// POSTs `body` to the upstream: its status and body.
    async fn forward(&self, path: &str, body: &[u8]) -> Result<Answer, String> {
        let authorization = self.authorization()?;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.address(),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        loop {
            let (mut stream, reused) = match self.take_idle() {
                Some(stream) => (stream, true),
                None => (self.connect().await?, false),
            };
            let exchange = tokio::time::timeout(ANSWER_TIMEOUT, exchange(&mut stream, &request));
            match exchange.await {
                Err(_) => return Err(format!("no answer within {ANSWER_TIMEOUT:?}")),
                Ok(Ok((answer, keep_alive))) => {
                    if matches!(answer.status, 401 | 403) {
                        return Err(format!(
                            "it refused this sim's credentials (HTTP {}); check -simupstreamcookie/-simupstreamauth",
                            answer.status
                        ));
                    }
                    if keep_alive {
                        self.put_idle(stream);
                    }
                    return Ok(answer);
                }
                // The upstream closed this idle connection meanwhile: try another one.
                Ok(Err(err)) if reused && err.nothing_received => continue,
                Ok(Err(err)) => return Err(err.message),
            }
        }
    }

    fn authorization(&self) -> Result<String, String> {
        let userpass = match &self.settings.auth {
            UpstreamAuth::UserPassword(userpass) => userpass.clone(),
            UpstreamAuth::CookieFile(path) => std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read its cookie file {}: {err}", path.display()))?
                .trim()
                .to_string(),
        };
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(userpass)
        ))
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        let target = (self.settings.host.as_str(), self.settings.port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("connecting took longer than {CONNECT_TIMEOUT:?}")),
        }
    }

    /// An idle connection the upstream has not closed (as far as can be told without
    /// sending anything).
    fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(stream) = idle.pop() {
            let mut byte = [0u8; 1];
            match stream.try_read(&mut byte) {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Some(stream),
                // Closed (0), reset, or unexpected data: not usable.
                _ => continue,
            }
        }
        None
    }

    fn put_idle(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(stream);
        }
    }
}

/// Whether `request` is one of the calls answered here.
fn is_local(request: &Value) -> bool {
    request
        .get("method")
        .and_then(Value::as_str)
        .is_some_and(|method| LOCAL_METHODS.contains(&method))
}

/// Answers `body` with this process's own RPC table (warm-up, `stop`, `uptime`).
async fn local(node: &Arc<Node>, body: Vec<u8>) -> Answer {
    let node = Arc::clone(node);
    match tokio::task::spawn_blocking(move || jsonrpc::handle(&node, &body)).await {
        Ok(reply) => reply.into(),
        Err(_) => Answer {
            status: 500,
            json: false,
            body: String::new(),
        },
    }
}

/// Reads more of the answer into `buf`: false when the upstream closed the connection.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<bool, ExchangeError> {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) => Ok(false),
        Ok(n) if buf.len() + n > MAX_ANSWER => Err(ExchangeError {
            nothing_received: false,
            message: "its answer is too large".into(),
        }),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(err) => Err(ExchangeError {
            nothing_received: buf.is_empty(),
            message: err.to_string(),
        }),
    }
}

/// Like [`read_more`], but the connection closing is an error too.
async fn read_required(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ExchangeError> {
    if read_more(stream, buf).await? {
        Ok(())
    } else {
        Err(ExchangeError {
            nothing_received: buf.is_empty(),
            message: "it closed the connection before answering".into(),
        })
    }
}

/// The parts of an answer head the proxy needs.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
    json: bool,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(format!("invalid HTTP answer: {err}")),
    };
    let status = response.code.unwrap_or(0);
    let mut head = Head {
        status,
        len,
        framing: Framing::UntilClose,
        keep_alive: response.version == Some(1),
        json: false,
    };
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            if value.contains("close") {
                head.keep_alive = false;
            } else if value.contains("keep-alive") {
                head.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if let Ok(len) = value.trim().parse() {
                if !matches!(head.framing, Framing::Chunked) {
                    head.framing = Framing::Length(len);
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            head.framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-type") {
            head.json = value.contains("json");
        }
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        head.framing = Framing::Length(0);
    }
    if matches!(head.framing, Framing::UntilClose) {
        head.keep_alive = false;
    }
    Ok(Some(head))
}

/// Sends one request on `stream` and reads the answer: (answer, whether the connection
/// can be reused).
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Result<(Answer, bool), ExchangeError> {
    stream
        .write_all(request)
        .await
        .map_err(|err| ExchangeError {
            nothing_received: true,
            message: err.to_string(),
        })?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let head = loop {
        match parse_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) => read_required(stream, &mut buf).await?,
            Err(message) => {
                return Err(ExchangeError {
                    nothing_received: false,
                    message,
                })
            }
        }
    };
    buf.drain(..head.len);
    let body = match head.framing {
        Framing::Length(len) => {
            while buf.len() < len {
                read_required(stream, &mut buf).await?;
            }
            buf.truncate(len);
            buf
        }
        Framing::Chunked => loop {
            match super::http::decode_chunked(&buf) {
                Ok(Some((body, _))) => break body,
                Ok(None) => read_required(stream, &mut buf).await?,
                Err(()) => {
                    return Err(ExchangeError {
                        nothing_received: false,
                        message: "invalid chunked answer".into(),
                    })
                }
            }
        },
        Framing::UntilClose => {
            while read_more(stream, &mut buf).await? {}
            buf
        }
    };
    let answer = Answer {
        status: head.status,
        json: head.json,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Ok((answer, head.keep_alive))
}

/// How the upstream frames its answer body.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_heads_parse() {
        let head = parse_head(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{").unwrap().unwrap();
        assert_eq!((head.status, head.json, head.keep_alive), (500, true, true));
        assert!(matches!(head.framing, Framing::Length(12)));
        let head = parse_head(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive && matches!(head.framing, Framing::Length(0)));
        let head = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive && matches!(head.framing, Framing::UntilClose));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-")
            .unwrap()
            .is_none());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn stop_and_uptime_are_local() {
        assert!(is_local(&json!({"method": "stop", "params": []})));
        assert!(is_local(&json!({"jsonrpc": "2.0", "method": "uptime"})));
        assert!(!is_local(&json!({"method": "getblockcount"})));
        assert!(!is_local(&json!({"method": 5})));
        assert!(!is_local(&json!([{"method": "stop"}])));
    }
}
