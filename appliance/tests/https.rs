//! HTTPS on a real box, seen from a device on the home network: the plain listener hands
//! out the CA and the way to HTTPS but never the page's data; a client that trusts only the
//! downloaded CA logs in over HTTPS and finds the same fingerprint in the status; the CA
//! survives a restart.

mod common;

use common::tls::{client_trusting, download_ca, fingerprint, https, plain};
use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

#[test]
fn the_network_gets_the_ca_over_http_and_the_page_only_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    // The plain listener on every interface, as on a real box: the rules follow the
    // listen address, so reaching it through 127.0.0.1 shows the network's view.
    config.web_ip = std::net::Ipv4Addr::UNSPECIFIED.into();
    let mut node = Plugnode::start(&config);
    wait_for("the plain listener", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None).filter(|(code, _)| *code == 200)
    });

    // --- plain HTTP: the CA, the way to HTTPS, the health check, nothing else ----------
    let (answer, ca) = download_ca(node.web);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-x509-ca-cert")
    );
    assert!(answer.text().starts_with("-----BEGIN CERTIFICATE-----"));
    let ca_fingerprint = fingerprint(&ca);

    let trust = plain(node.web, "GET", "/", "plugnode.local", "");
    assert_eq!(trust.code, 200);
    let page = trust.text();
    let first_group = ca_fingerprint[..23].to_string();
    assert!(
        page.contains(&first_group),
        "the trust page shows the fingerprint: {page}"
    );
    for platform in ["Android", "iPhone", "Mac", "Windows", "Firefox"] {
        assert!(
            page.contains(platform),
            "{platform} missing from the trust page"
        );
    }
    let https_url = format!("https://plugnode.local:{}/", config.https_port);
    assert!(page.contains(&format!("href=\"{https_url}\"")), "{page}");
    assert_eq!(
        plain(node.web, "GET", "/trust", "plugnode.local", "").code,
        200
    );
    assert_eq!(
        plain(node.web, "GET", "/api/health", "plugnode.local", "").code,
        200
    );

    // The page's own files go to HTTPS, at the name the browser used: one of the box's own
    // names (its host name here) or addresses.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let own_name = format!("{}.local", hostname.trim().to_ascii_lowercase());
    let redirect = plain(node.web, "GET", "/app.js?v=1", &own_name, "");
    assert_eq!(redirect.code, 307);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://{own_name}:{}/app.js?v=1", config.https_port).as_str())
    );
    let by_address = plain(node.web, "GET", "/index.html", "127.0.0.1:80", "");
    assert_eq!(
        by_address.header("location"),
        Some(format!("https://127.0.0.1:{}/index.html", config.https_port).as_str())
    );
    // Another name is refused, never redirected to: the redirect cannot be pointed at
    // someone else's site.
    let elsewhere = plain(node.web, "GET", "/index.html", "evil.example", "");
    assert_eq!(elsewhere.code, 421);
    assert_eq!(elsewhere.header("location"), None);

    // --- HTTPS with a client that trusts only the downloaded CA -----------------------
    let client = client_trusting(&ca);
    for name in ["plugnode.local", "localhost", "127.0.0.1"] {
        let health = https(&client, node.https, name, "GET", "/api/health", None, None)
            .unwrap_or_else(|err| panic!("HTTPS as {name}: {err}\n{}", node.log()));
        assert_eq!(health.code, 200, "{}", health.text());
    }
    let login = serde_json::json!({ "password": PASSWORD }).to_string();
    let answer = https(
        &client,
        node.https,
        "plugnode.local",
        "POST",
        "/api/login",
        Some(&login),
        None,
    )
    .unwrap();
    assert_eq!(answer.code, 200, "{}", answer.text());
    let token: Value = serde_json::from_slice(&answer.body).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let status = https(
        &client,
        node.https,
        "plugnode.local",
        "GET",
        "/api/status",
        None,
        Some(&token),
    )
    .unwrap();
    assert_eq!(status.code, 200);
    let status: Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(
        status["system"]["ca_fingerprint"].as_str(),
        Some(ca_fingerprint.as_str()),
        "the status shows the CA the device downloaded"
    );
    assert!(status["system"]["https_url"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let page = https(
        &client,
        node.https,
        "plugnode.local",
        "GET",
        "/",
        None,
        None,
    )
    .unwrap();
    assert!(page.text().contains("<html"), "the page itself over HTTPS");

    // A device that trusts another CA (someone else's box) gets no connection.
    let other = tempfile::tempdir().unwrap();
    let stranger = plugnode::web::tls::CertificateAuthority::load_or_create(
        other.path(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let err = https(
        &client_trusting(stranger.cert_der()),
        node.https,
        "plugnode.local",
        "GET",
        "/api/health",
        None,
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // Nor does a name the certificate does not carry.
    assert!(https(
        &client,
        node.https,
        "example.com",
        "GET",
        "/api/health",
        None,
        None
    )
    .is_err());

    // --- plain HTTP never gives the API's data, even with a valid session -------------
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for (method, path) in [
        ("GET", "/api/status"),
        ("GET", "/api/wallet"),
        ("GET", "/api/lightning/balances"),
        ("POST", "/api/login"),
        ("POST", "/api/wallet/show-words"),
    ] {
        let answer = plain(node.web, method, path, "plugnode.local", &bearer);
        assert_eq!(answer.code, 404, "{method} {path}: {}", answer.text());
        let error: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(error["kind"], "https_required");
        assert!(
            error["error"].as_str().unwrap().contains("https://"),
            "{error}"
        );
        assert!(!answer.text().contains("ca_fingerprint") && !answer.text().contains("token\""));
    }

    // --- a restart keeps the CA -------------------------------------------------------
    let key = node.data_dir.join("secrets/web-ca.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the CA key is readable by plugnode only");
    assert!(
        !node
            .log()
            .contains(&std::fs::read_to_string(&key).unwrap()[30..80]),
        "the key is never logged"
    );
    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(node.wait_exit(TIMEOUT).success(), "{}", node.log());
    let node = Plugnode::start(&config);
    wait_for("the box after the restart", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None).filter(|(code, _)| *code == 200)
    });
    let (_, again) = download_ca(node.web);
    assert_eq!(again, ca, "the same CA after a restart");
    let health = https(
        &client,
        node.https,
        "plugnode.local",
        "GET",
        "/api/health",
        None,
        None,
    )
    .expect("a device that trusted the box before still trusts it");
    assert_eq!(health.code, 200);
}
