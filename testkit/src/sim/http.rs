//! A small HTTP/1.1 server for JSON-RPC, behaving like Bitcoin Core's (libevent based)
//! RPC server where clients can tell: keep-alive, `Expect: 100-continue`, chunked request
//! bodies, `POST` on `/` only, Basic auth with a 401 + `WWW-Authenticate: Basic
//! realm="jsonrpc"` (after a 250 ms pause for a wrong password), 403 for clients outside
//! `-rpcallowip`.
//!
//! Every connection is its own task; RPC calls run on the blocking pool so a long
//! `generatetoaddress` never stalls other connections. At shutdown the listeners close,
//! idle connections are dropped and in-flight requests finish with `Connection: close`.

use super::auth::Authenticator;
use super::jsonrpc;
use super::log::{http_date, unix_now};
use super::node::Node;
use super::settings::Subnet;
use super::upstream::Upstream;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (Core's `MAX_SIZE`).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How long to wait for in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server needs besides the node.
pub struct ServerConfig {
    pub auth: Authenticator,
    pub allow: Vec<Subnet>,
    pub idle_timeout: Duration,
    pub wallet_paths: bool,
    /// Upstream mode: authenticated requests are forwarded there.
    pub upstream: Option<Upstream>,
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    minor_version: u8,
    keep_alive: bool,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// A response about to be written.
struct Response {
    status: u16,
    content_type: &'static str,
    extra_headers: Vec<(&'static str, &'static str)>,
    body: String,
}

impl Response {
    fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: "text/html; charset=ISO-8859-1",
            extra_headers: Vec::new(),
            body: String::new(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Accepts connections on `listeners` until shutdown, then waits for open connections to
/// finish their current request.
pub async fn serve(node: Arc<Node>, config: Arc<ServerConfig>, listeners: Vec<TcpListener>) {
    let mut connections = JoinSet::new();
    let mut accepts = JoinSet::new();
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel::<(TcpStream, SocketAddr)>();
    for listener in listeners {
        let tx = conn_tx.clone();
        accepts.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok(conn) => {
                        if tx.send(conn).is_err() {
                            return;
                        }
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    }
    drop(conn_tx);
    let mut shutdown = node.shutdown_signal();
    loop {
        tokio::select! {
            conn = conn_rx.recv() => match conn {
                Some((stream, peer)) => {
                    connections.spawn(connection(Arc::clone(&node), Arc::clone(&config), stream, peer));
                }
                None => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Close the listening sockets first: new connections are refused from now on.
    accepts.abort_all();
    while accepts.join_next().await.is_some() {}
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

fn client_allowed(peer: IpAddr, allow: &[Subnet]) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    peer.is_loopback() || allow.iter().any(|s| s.contains(peer))
}

enum Head {
    Complete(Request, usize),
    Partial,
    Invalid,
}

fn parse_head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Invalid,
    };
    let minor_version = req.version.unwrap_or(1);
    let mut keep_alive = minor_version >= 1;
    let mut authorization = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case("authorization") {
            authorization = Some(String::from_utf8_lossy(h.value).into_owned());
        }
    }
    Head::Complete(
        Request {
            method: req.method.unwrap_or("").to_string(),
            path: req.path.unwrap_or("").to_string(),
            minor_version,
            keep_alive,
            authorization,
            body: Vec::new(),
        },
        len,
    )
}

/// How the body of a request is framed.
enum BodyFraming {
    Length(usize),
    Chunked,
}

fn body_framing(head: &[u8]) -> Result<(BodyFraming, bool), u16> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(head);
    let mut framing = BodyFraming::Length(0);
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                framing = BodyFraming::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if matches!(framing, BodyFraming::Chunked) {
                continue;
            }
            let len: usize = value.trim().parse().map_err(|_| 400u16)?;
            if len > MAX_BODY {
                return Err(413);
            }
            framing = BodyFraming::Length(len);
        } else if h.name.eq_ignore_ascii_case("expect")
            && value.eq_ignore_ascii_case("100-continue")
        {
            expect_continue = true;
        }
    }
    Ok((framing, expect_continue))
}

/// Decodes a complete chunked body at the start of `data`: (body, bytes consumed).
pub(super) fn decode_chunked(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&data[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[pos..pos + line_end]).map_err(|_| ())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ())?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers up to an empty line.
            loop {
                let Some(end) = find_crlf(&data[pos..]) else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(());
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err(());
        }
        pos += size + 2;
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// Reads into `buf` until more data came (true), the peer closed (false), or the timeout.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, timeout: Duration) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

async fn write_response(
    stream: &mut TcpStream,
    minor_version: u8,
    response: Response,
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.{minor_version} {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if response.status != 204 {
        head.push_str(&format!("Content-Type: {}\r\n", response.content_type));
    }
    head.push_str(&format!("Date: {}\r\n", http_date(unix_now())));
    if response.status != 204 {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(response.body.as_bytes());
    stream.write_all(&bytes).await?;
    stream.flush().await
}

async fn connection(
    node: Arc<Node>,
    config: Arc<ServerConfig>,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let allowed = client_allowed(peer.ip(), &config.allow);
    let mut shutdown = node.shutdown_signal();
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        // A complete request head.
        let (mut request, head_len) = loop {
            match parse_head(&buf) {
                Head::Complete(request, len) => break (request, len),
                Head::Invalid => {
                    let _ = write_response(&mut stream, 1, Response::empty(400), true).await;
                    return;
                }
                Head::Partial if buf.len() > MAX_HEAD => {
                    let _ = write_response(&mut stream, 1, Response::empty(431), true).await;
                    return;
                }
                Head::Partial => {}
            }
            if buf.is_empty() {
                // Idle between requests: shutdown or the idle timeout end the connection.
                tokio::select! {
                    more = read_more(&mut stream, &mut buf, config.idle_timeout) => if !more { return },
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            } else if !read_more(&mut stream, &mut buf, config.idle_timeout).await {
                return;
            }
        };
        let (framing, expect_continue) = match body_framing(&buf[..head_len]) {
            Ok(f) => f,
            Err(status) => {
                let _ = write_response(
                    &mut stream,
                    request.minor_version,
                    Response::empty(status),
                    true,
                )
                .await;
                return;
            }
        };
        buf.drain(..head_len);
        if expect_continue {
            let needs_more = match framing {
                BodyFraming::Length(len) => buf.len() < len,
                BodyFraming::Chunked => true,
            };
            if needs_more
                && stream
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .is_err()
            {
                return;
            }
        }
        match framing {
            BodyFraming::Length(len) => {
                while buf.len() < len {
                    if !read_more(&mut stream, &mut buf, config.idle_timeout).await {
                        return;
                    }
                }
                request.body = buf.drain(..len).collect();
            }
            BodyFraming::Chunked => loop {
                match decode_chunked(&buf) {
                    Ok(Some((body, used))) => {
                        request.body = body;
                        buf.drain(..used);
                        break;
                    }
                    Ok(None) => {
                        if !read_more(&mut stream, &mut buf, config.idle_timeout).await {
                            return;
                        }
                    }
                    Err(()) => {
                        let _ = write_response(
                            &mut stream,
                            request.minor_version,
                            Response::empty(400),
                            true,
                        )
                        .await;
                        return;
                    }
                }
            },
        }

        let minor = request.minor_version;
        let keep_alive = request.keep_alive;
        let response = if allowed {
            respond(&node, &config, request, peer).await
        } else {
            node.log.log(format!(
                "HTTP request from {} rejected: Client network is not allowed RPC access",
                peer.ip()
            ));
            Response::empty(403)
        };
        let close = !keep_alive || !allowed || node.shutdown_requested();
        if write_response(&mut stream, minor, response, close)
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

/// Routing, method, authentication, then JSON-RPC (Core's `http_request_cb` and
/// `HTTPReq_JSONRPC`).
async fn respond(
    node: &Arc<Node>,
    config: &ServerConfig,
    request: Request,
    peer: SocketAddr,
) -> Response {
    let routed =
        request.path == "/" || (config.wallet_paths && request.path.starts_with("/wallet/"));
    if !routed {
        return Response::empty(404);
    }
    if request.method != "POST" {
        let mut response = Response::empty(405);
        response.body = "JSONRPC server handles only POST requests".into();
        return response;
    }
    let unauthorized = || {
        let mut response = Response::empty(401);
        response
            .extra_headers
            .push(("WWW-Authenticate", "Basic realm=\"jsonrpc\""));
        response
    };
    let Some(header) = request.authorization.as_deref() else {
        return unauthorized();
    };
    if config.auth.check(header).is_none() {
        node.log.log(format!(
            "ThreadRPCServer incorrect password attempt from {peer}"
        ));
        // Deter brute-forcing, like Core.
        tokio::time::sleep(Duration::from_millis(250)).await;
        return unauthorized();
    }
    if let Some(upstream) = &config.upstream {
        let answer = upstream.respond(node, &request.path, request.body).await;
        let mut response = Response::empty(answer.status);
        if answer.json {
            response.content_type = "application/json";
        }
        response.body = answer.body;
        return response;
    }
    let worker_node = Arc::clone(node);
    let body = request.body;
    let reply = tokio::task::spawn_blocking(move || jsonrpc::handle(&worker_node, &body)).await;
    match reply {
        Ok(reply) => Response {
            status: reply.status,
            content_type: "application/json",
            extra_headers: Vec::new(),
            body: reply.body,
        },
        Err(_) => Response::empty(500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        let data = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\nNEXT";
        let (body, used) = decode_chunked(data).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&data[used..], b"NEXT");
        assert!(decode_chunked(b"4\r\nWi").unwrap().is_none());
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn loopback_is_always_allowed() {
        assert!(client_allowed("127.0.0.1".parse().unwrap(), &[]));
        assert!(client_allowed("::1".parse().unwrap(), &[]));
        assert!(client_allowed("::ffff:127.0.0.1".parse().unwrap(), &[]));
        assert!(!client_allowed("10.1.2.3".parse().unwrap(), &[]));
        assert!(client_allowed(
            "10.1.2.3".parse().unwrap(),
            &[Subnet::parse("10.0.0.0/8").unwrap()]
        ));
    }
}
