//! HTTPS from the outside: the box's CA fetched over plain HTTP, a rustls client that
//! trusts only that CA, and one request over it (HTTP/1.0, like [`super::http`]).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// An answer: status code, headers (names lower-case) and body.
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn parse(raw: &[u8]) -> Option<Answer> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.lines();
        let code = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Answer {
            code,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
}

/// One plain-HTTP request with the given Host header (a browser's view of the box).
pub fn plain(address: SocketAddr, method: &str, path: &str, host: &str, extra: &str) -> Answer {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    Answer::parse(&raw).unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"))
}

/// The box's CA certificate, as a device downloads it from the plain listener.
pub fn download_ca(address: SocketAddr) -> (Answer, CertificateDer<'static>) {
    let answer = plain(address, "GET", "/ca.crt", "plugnode.local", "");
    assert_eq!(answer.code, 200, "{}", answer.text());
    let der = CertificateDer::from_pem_slice(&answer.body).expect("/ca.crt is a PEM certificate");
    (answer, der)
}

/// A client that trusts `ca` and nothing else.
pub fn client_trusting(ca: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// One request over TLS to `address`, asking for `server_name` (SNI and the name the
/// certificate must carry). An error when the handshake fails.
pub fn https(
    client: &Arc<rustls::ClientConfig>,
    address: SocketAddr,
    server_name: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<Answer> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let connection =
        rustls::ClientConnection::new(client.clone(), name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "{method} {path} HTTP/1.0\r\nHost: {server_name}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A server that closes without close_notify: the answer is complete anyway.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(err) => return Err(err),
    }
    Answer::parse(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP answer"))
}

/// SHA-256 of `der`, colon-separated upper-case hex (as the status carries it).
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of `der`, for Chromium's
/// `--ignore-certificate-errors-spki-list`.
pub fn spki_hash(der: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(cert.public_key().raw))
}
