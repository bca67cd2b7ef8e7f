//! What every request must satisfy before it reaches a handler, and what every answer
//! carries.
//!
//! - **Host.** The page answers only to the box's own names: `plugnode.local`,
//!   `<hostname>.local`, `<hostname>`, `localhost`, the box's current addresses (from
//!   `status.system`, kept current by the system monitor), loopback addresses and
//!   `[web] allowed_hosts`, with any port. A page on the internet that points its own name
//!   at the box's address (DNS rebinding) sends its own name as `Host` and is refused
//!   with 421 before it reaches the login.
//! - **Origin.** A change (POST, PUT, PATCH, DELETE) sent by a browser must come from the
//!   box's own page: `Origin`, when present, names the same host and port, and
//!   `Sec-Fetch-Site`, when present, says "same-origin". Scripts send neither.
//! - **Headers.** Every answer forbids framing, sniffing, referrers and anything but the
//!   page's own scripts, styles and images (CSP).

use super::error::ApiError;
use crate::status::{Status, StatusHandle};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use std::net::IpAddr;

/// The page loads only its own files; images come from `/api/qr` and the screen mirror
/// (same origin). No inline script or style exists in `web-ui/`, so none is allowed. A
/// handler may send its own (the trust page probes the HTTPS origin).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Connections the page serves at once (each browser opens up to six); more wait for the
/// kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// TLS handshakes the page runs at once; more wait their turn.
pub const MAX_HANDSHAKES: usize = 16;

/// The names every box answers to, besides its host name and addresses.
const FIXED_NAMES: &[&str] = &["plugnode.local", "localhost"];

/// What the checks need: the box's names and addresses (from the status) and the
/// configured extra names. Every server of the page registers it as app data.
#[derive(Clone)]
pub struct OwnNames {
    pub status: StatusHandle,
    /// `[web] allowed_hosts`.
    pub allowed_hosts: Vec<String>,
}

/// Runs the checks, then the handler, then adds the security headers (to refusals too).
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal = request
        .app_data::<web::Data<OwnNames>>()
        .and_then(|names| check(&request, names).err());
    let mut response = match refusal {
        Some(refusal) => request
            .into_response(refusal.response())
            .map_into_right_body(),
        None => next.call(request).await?.map_into_left_body(),
    };
    add_security_headers(response.headers_mut());
    Ok(response)
}

/// Adds each header the handler did not set itself (the trust page's policy, the health
/// probe's resource policy).
fn add_security_headers(headers: &mut HeaderMap) {
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// Why a request was turned away.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// `Host` names something else; `use_instead` is where the page answers.
    WrongHost {
        host: String,
        use_instead: String,
        api: bool,
    },
    /// A browser sent a change from another site.
    CrossOrigin { origin: String },
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        match self {
            Refusal::WrongHost {
                host,
                use_instead,
                api,
            } => {
                let message = if host.is_empty() {
                    format!(
                        "This request names no host (no Host header): open the box at \
                         {use_instead}."
                    )
                } else {
                    format!(
                        "This box does not answer to the name \"{host}\". Open it at \
                         {use_instead} instead. If you reach it by this name on purpose (a \
                         VPN or your own DNS name), add the name to [web] allowed_hosts in \
                         /etc/plugnode/plugnode.toml and restart the box."
                    )
                };
                let no_store = HeaderValue::from_static("no-store");
                if *api {
                    return ApiError::new(StatusCode::MISDIRECTED_REQUEST, message)
                        .with_kind("wrong_host")
                        .with_header(header::CACHE_CONTROL, no_store)
                        .error_response();
                }
                // A page for whoever typed the address; no style: the CSP allows none
                // inline, and the style sheet would be refused for the same reason.
                HttpResponse::build(StatusCode::MISDIRECTED_REQUEST)
                    .insert_header((header::CACHE_CONTROL, no_store))
                    .content_type("text/html; charset=utf-8")
                    .body(format!(
                        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                         <title>Wrong address - plugnode</title></head><body>\
                         <h1>Wrong address</h1><p>{}</p></body></html>",
                        super::html::escape(&message)
                    ))
            }
            Refusal::CrossOrigin { origin } => ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "This change came from another web site ({origin}); the box takes changes \
                     only from its own page. Open the box's page and do it there."
                ),
            )
            .with_kind("cross_origin")
            .error_response(),
        }
    }
}

fn check(request: &ServiceRequest, context: &OwnNames) -> Result<(), Refusal> {
    let status = context.status.snapshot();
    let api = request.path().starts_with("/api/");
    // HTTP/2 carries the host as the URI's authority, HTTP/1 as the Host header; never the
    // X-Forwarded-* headers, which any client can write.
    let raw_host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let secure = request.app_config().secure();
    let host = Authority::parse(&raw_host, secure);
    let allowed = host
        .as_ref()
        .is_some_and(|host| is_own_name(&host.name, &status, &context.allowed_hosts));
    if !allowed {
        return Err(Refusal::WrongHost {
            host: raw_host.chars().take(100).collect(),
            use_instead: where_to_go(&status),
            api,
        });
    }
    let host = host.expect("allowed hosts parse");
    let changes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if changes {
        check_origin(request.headers(), &host, secure)?;
    }
    Ok(())
}

/// A change from a browser must come from the page it changes: same scheme, host and port.
fn check_origin(headers: &HeaderMap, host: &Authority, secure: bool) -> Result<(), Refusal> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("an unreadable origin");
        let same = text
            .split_once("://")
            .and_then(|(scheme, rest)| {
                let origin_secure = match scheme {
                    "https" => true,
                    "http" => false,
                    _ => return None,
                };
                (origin_secure == secure).then_some(())?;
                Authority::parse(rest, secure)
            })
            .is_some_and(|origin| origin == *host);
        if !same {
            return Err(Refusal::CrossOrigin {
                origin: text.chars().take(100).collect(),
            });
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        // "none": the user's own action (typed address, bookmark).
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return Err(Refusal::CrossOrigin {
                origin: format!(
                    "Sec-Fetch-Site: {}",
                    site.to_str()
                        .unwrap_or("?")
                        .chars()
                        .take(30)
                        .collect::<String>()
                ),
            });
        }
    }
    Ok(())
}

/// A host and port, as in `Host` or an origin: the name lower-cased without a trailing
/// dot, IPv6 addresses without brackets, the port filled in from the scheme.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    name: String,
    port: u16,
}

impl Authority {
    fn parse(text: &str, secure: bool) -> Option<Authority> {
        let text = text.trim();
        let default_port = if secure { 443 } else { 80 };
        let (name, port) = if let Some(rest) = text.strip_prefix('[') {
            let (ip, after) = rest.split_once(']')?;
            ip.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => (ip, None),
                port => (ip, Some(port.strip_prefix(':')?)),
            }
        } else {
            match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(port) => port.parse().ok()?,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        valid.then_some(Authority { name, port })
    }
}

/// Whether `name` (lower case, no port) is one of the box's own names or addresses.
fn is_own_name(name: &str, status: &Status, allowed_hosts: &[String]) -> bool {
    if let Ok(ip) = name.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return ip.is_loopback()
            || status
                .system
                .ip_addresses
                .iter()
                .filter_map(|own| own.parse::<IpAddr>().ok())
                .any(|own| own.to_canonical() == ip)
            || allowed_hosts
                .iter()
                .filter_map(|allowed| allowed.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                .any(|allowed| allowed == ip);
    }
    let hostname = status.system.hostname.trim().to_ascii_lowercase();
    FIXED_NAMES.contains(&name)
        || (!hostname.is_empty()
            && (name == hostname || name.strip_suffix(".local") == Some(hostname.as_str())))
        || allowed_hosts
            .iter()
            .any(|allowed| allowed.trim_end_matches('.').eq_ignore_ascii_case(name))
}

/// The address to suggest to someone who used a wrong one.
fn where_to_go(status: &Status) -> String {
    let mut places = vec![status
        .system
        .web_url
        .clone()
        .unwrap_or_else(|| "http://plugnode.local/".into())];
    if let Some(ip) = status.system.ip_addresses.first() {
        let ip = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => ip.clone(),
        };
        let port = status
            .system
            .web_url
            .as_deref()
            .and_then(|url| url.trim_end_matches('/').rsplit_once(':'))
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let by_ip = format!("http://{ip}{port}/");
        if !places.contains(&by_ip) {
            places.push(by_ip);
        }
    }
    places.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let mut status = Status::default();
        status.system.hostname = "mybox".into();
        status.system.ip_addresses = vec!["192.168.1.20".into(), "2001:db8::7".into()];
        status.system.web_url = Some("http://mybox.local/".into());
        status
    }

    fn allowed(host: &str, extra: &[&str]) -> bool {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Authority::parse(host, false).is_some_and(|a| is_own_name(&a.name, &status(), &extra))
    }

    #[test]
    fn the_box_answers_to_its_own_names_and_addresses_with_any_port() {
        for host in [
            "plugnode.local",
            "PlugNode.Local:8080",
            "plugnode.local.",
            "mybox",
            "mybox.local",
            "mybox.local:80",
            "localhost",
            "localhost:3000",
            "127.0.0.1:8080",
            "127.5.6.7",
            "[::1]:8080",
            "[::1]",
            "192.168.1.20",
            "192.168.1.20:80",
            "[2001:db8::7]:443",
        ] {
            assert!(allowed(host, &[]), "{host}");
        }
        assert!(allowed("node.example.org", &["node.example.org"]));
        assert!(allowed("NODE.example.org:8443", &["node.example.org"]));
        assert!(allowed("100.64.0.9", &["100.64.0.9"]));
    }

    #[test]
    fn other_names_are_refused() {
        for host in [
            "",
            "evil.example",
            "evil.example:80",
            "plugnode.local.evil.example",
            "mybox.evil.example",
            "192.168.1.21",
            "10.0.0.1:80",
            "[2001:db8::8]",
            "mybox:notaport",
            "2001:db8::7",
            "my box",
            "a<b>",
        ] {
            assert!(!allowed(host, &[]), "{host}");
        }
    }

    #[test]
    fn origins_match_host_and_port_by_scheme() {
        let host = Authority::parse("plugnode.local", false).unwrap();
        let check = |origin: &str, site: Option<&str>| {
            let mut headers = HeaderMap::new();
            if !origin.is_empty() {
                headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            }
            if let Some(site) = site {
                headers.insert(
                    HeaderName::from_static("sec-fetch-site"),
                    HeaderValue::from_str(site).unwrap(),
                );
            }
            check_origin(&headers, &host, false).is_ok()
        };
        assert!(check("", None), "scripts send no Origin");
        assert!(check("http://plugnode.local", Some("same-origin")));
        assert!(check("http://PLUGNODE.local:80", None));
        assert!(!check("https://plugnode.local", None), "another scheme");
        assert!(
            !check("https://plugnode.local:80", None),
            "another scheme, same port"
        );
        assert!(!check("http://plugnode.local:8080", None));
        assert!(!check("http://evil.example", None));
        assert!(!check("null", None));
        assert!(!check("", Some("cross-site")));
        assert!(!check("", Some("same-site")));
        assert!(check("", Some("none")));
        let tls = Authority::parse("plugnode.local", true).unwrap();
        assert_eq!(
            Authority::parse("plugnode.local:443", true).unwrap(),
            tls,
            "the default port is implied"
        );
    }

    #[tokio::test]
    async fn the_refusal_says_where_to_go_and_escapes_the_name() {
        let status = status();
        assert_eq!(
            where_to_go(&status),
            "http://mybox.local/ or http://192.168.1.20/"
        );
        let refusal = Refusal::WrongHost {
            host: "<script>".into(),
            use_instead: where_to_go(&status),
            api: false,
        };
        let response = refusal.response();
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        assert!(body.contains("http://mybox.local/"));
    }
}
