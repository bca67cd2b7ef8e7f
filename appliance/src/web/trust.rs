//! The plain-HTTP listener's part on the home network. Plain HTTP can be read by anyone on
//! the Wi-Fi, so there it serves only what leads to HTTPS: how to trust the box (`/`, which
//! goes on by itself to the secure page once the device trusts the box, and `/trust`), the
//! CA certificate (`/ca.crt`), `/api/health`, and a redirect to the HTTPS page (same host
//! name, HTTPS port) for everything else; the rest of the API answers 404. Passwords,
//! session tokens and recovery words travel only over HTTPS.
//!
//! A plain listener bound to loopback only serves everything: that traffic never leaves
//! the box (local tools, the demo, the tests).

use super::error::ApiError;
use super::html::escape;
use super::tls::server_cert::BOX_NAME;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

/// What the trust page and `/ca.crt` show, fixed while the server runs.
pub struct TrustInfo {
    pub ca_pem: String,
    pub ca_name: String,
    pub fingerprint: String,
    /// The port the HTTPS page listens on (redirects and links).
    pub https_port: u16,
}

const PAGE: &str = include_str!("../../../web-ui/trust.html");
const SCRIPT: &str = include_str!("../../../web-ui/trust.js");

/// The files of `web-ui/` this module serves (not `assets.rs`).
pub const FILES: &[&str] = &["trust.html", "trust.js"];

/// `/ca.crt`, `/trust` and its script, on every listener (the secure page links to them).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/ca.crt", web::get().to(ca_certificate))
        .route("/trust", web::get().to(trust_page))
        .route(
            "/trust.js",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/javascript; charset=utf-8")
                    .insert_header((header::CACHE_CONTROL, "no-cache"))
                    .body(SCRIPT)
            }),
        );
}

/// Decides what a request gets, by the listener it came in on: everything over HTTPS and
/// on a loopback-only plain listener, the short list above on a plain one on the network.
pub async fn plain_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let listener = req.app_config();
    if listener.secure() || listener.local_addr().ip().is_loopback() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let path = req.path().to_string();
    let response = match path.as_str() {
        "/api/health" | "/ca.crt" | "/trust" | "/trust.js" | "/style.css" => {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        "/" => render(req.request(), true),
        _ if path == "/api" || path.starts_with("/api/") => {
            let target = https_url(req.request(), &path);
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "The API answers only over HTTPS, at {target}: plain HTTP can be read by \
                     anyone on the network. Trust the box's certificate first (see /trust)."
                ),
            )
            .with_kind("https_required")
            .error_response()
        }
        _ => {
            let path_and_query = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = https_url(req.request(), path_and_query);
            // 307: temporary, so a browser asks again if the box's setup changes.
            HttpResponse::TemporaryRedirect()
                .insert_header((header::LOCATION, target))
                .finish()
        }
    };
    Ok(req.into_response(response).map_into_right_body())
}

async fn ca_certificate(trust: web::Data<TrustInfo>) -> HttpResponse {
    HttpResponse::Ok()
        // The type phones and browsers offer to install (iOS, Firefox).
        .content_type("application/x-x509-ca-cert")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "inline; filename=\"plugnode-ca.crt\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(trust.ca_pem.clone())
}

async fn trust_page(req: HttpRequest) -> HttpResponse {
    render(&req, false)
}

/// The trust page; `forward`: go on to the secure page once the device trusts the box.
fn render(req: &HttpRequest, forward: bool) -> HttpResponse {
    let Some(trust) = req.app_data::<web::Data<TrustInfo>>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let groups: String = fingerprint_groups(&trust.fingerprint)
        .iter()
        .map(|group| format!("<span>{}</span> ", escape(group)))
        .collect();
    let secure_page = https_url(req, "/");
    // trust.js asks the HTTPS page whether this device trusts the box yet: the one
    // address beyond its own the page may connect to.
    let policy = super::guard::CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'",
        &format!("connect-src 'self' {}", secure_page.trim_end_matches('/')),
    );
    let page = PAGE
        .replace("{{forward}}", if forward { "yes" } else { "no" })
        .replace("{{https_url}}", &escape(&secure_page))
        .replace("{{ca_name}}", &escape(&trust.ca_name))
        .replace("{{fingerprint}}", groups.trim_end());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .body(page)
}

/// The fingerprint in four lines of eight bytes, as the box's screen shows it.
pub fn fingerprint_groups(fingerprint: &str) -> Vec<String> {
    let bytes: Vec<&str> = fingerprint.split(':').collect();
    bytes.chunks(8).map(|chunk| chunk.join(":")).collect()
}

/// `path` on the HTTPS page, at the host name the browser used.
fn https_url(req: &HttpRequest, path: &str) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(host_without_port)
        .unwrap_or_else(|| BOX_NAME.to_string());
    let port = req
        .app_data::<web::Data<TrustInfo>>()
        .map(|trust| trust.https_port)
        .unwrap_or(443);
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    format!("https://{host}{port}{path}")
}

/// `plugnode.local:80` → `plugnode.local`, `[fd00::1]:80` → `[fd00::1]`; `None` for
/// anything that is not a plain host name or address (it goes into a Location header).
fn host_without_port(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{inside}]"));
    } else {
        host.split(':').next()?
    };
    let plain = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plain.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn info() -> web::Data<TrustInfo> {
        web::Data::new(TrustInfo {
            ca_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            ca_name: "plugnode CA 0011AABB".into(),
            fingerprint: (0..32)
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
            https_port: 8443,
        })
    }

    #[test]
    fn redirects_keep_the_host_name_the_browser_used() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "kitchen-node.local:8080"))
            .app_data(info())
            .to_http_request();
        assert_eq!(
            https_url(&req, "/lightning?x=1"),
            "https://kitchen-node.local:8443/lightning?x=1"
        );
        let req = TestRequest::default()
            .insert_header((header::HOST, "[fd00::23]:80"))
            .to_http_request();
        assert_eq!(https_url(&req, "/"), "https://[fd00::23]/");
        // A made-up Host never gets into the Location header.
        let req = TestRequest::default()
            .insert_header((header::HOST, "evil.example/\"><script>"))
            .to_http_request();
        assert_eq!(https_url(&req, "/"), "https://plugnode.local/");
        assert_eq!(
            host_without_port("192.168.1.23:80").as_deref(),
            Some("192.168.1.23")
        );
        assert_eq!(host_without_port("<script>"), None);
        assert_eq!(host_without_port("[nonsense]"), None);
    }

    #[test]
    fn the_trust_page_shows_the_fingerprint_in_four_groups_and_escapes_the_host() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "plugnode.local"))
            .app_data(info())
            .to_http_request();
        let response = render(&req, false);
        let body = actix_web::body::to_bytes(response.into_body());
        let body = futures_lite_block_on(body).unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            page.contains("<span>00:01:02:03:04:05:06:07</span>"),
            "{page}"
        );
        assert!(page.contains("<span>18:19:1A:1B:1C:1D:1E:1F</span>"));
        assert!(page.contains("href=\"https://plugnode.local:8443/\""));
        assert!(page.contains("data-forward=\"no\""));
        assert!(!page.contains("{{"), "every field filled");
        assert_eq!(fingerprint_groups(&info().fingerprint).len(), 4);
    }

    fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }
}
