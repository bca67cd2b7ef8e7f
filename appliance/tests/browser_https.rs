//! The page over HTTPS in headless Chromium, as on a device that trusts the box: the plain
//! address shows the trust page and goes on by itself to the secure page, where the user
//! logs in and finds the certificate's fingerprint in the "This box" card.
//!
//! Chromium is told to accept certificates from the box's CA key
//! (`--ignore-certificate-errors-spki-list` with the CA's key hash: the server sends the CA
//! along with its certificate); that the chain itself verifies against the CA alone is
//! `tests/https.rs`'s job, with rustls.

mod common;

use common::browser::Browser;
use common::tls::{download_ca, fingerprint, spki_hash};
use common::*;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_address_leads_to_the_secure_page_which_shows_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    // The plain listener as on a box (the network's view), reached through 127.0.0.1.
    config.web_ip = std::net::Ipv4Addr::UNSPECIFIED.into();
    let node = Plugnode::start(&config);
    block_in_place(|| {
        wait_for("the web page", TIMEOUT, || {
            http(node.web, "GET", "/api/health", None).filter(|(code, _)| *code == 200)
        })
    });
    let (_, ca) = block_in_place(|| download_ca(node.web));
    let ca_fingerprint = fingerprint(&ca);

    let browser = Browser::start_with_args(&[format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_hash(&ca)
    )])
    .await;

    // The trust page says how to trust the box and, since this browser does, says so.
    browser
        .client
        .goto(&format!("http://{}/trust", node.web))
        .await
        .unwrap();
    let shown = browser.text_where("#fingerprint", |t| !t.is_empty()).await;
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>().join(":"),
        ca_fingerprint,
        "the trust page shows the CA's fingerprint in four groups"
    );
    browser.visible("#trusted").await;
    browser.snapshot("https-trust-page").await;

    // The plain address goes on to the secure page by itself.
    browser
        .client
        .goto(&format!("http://{}/", node.web))
        .await
        .unwrap();
    browser.visible("#login-form").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.scheme(), "https", "{url}");
    assert_eq!(url.port(), Some(config.https_port), "{url}");

    browser.type_into("#login-password", PASSWORD).await;
    browser.click("#login-form button[type=submit]").await;
    browser.visible("#dashboard").await;
    let shown = browser
        .text_where("#ca-fingerprint", |t| t.contains(':'))
        .await;
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>().join(":"),
        ca_fingerprint,
        "the dashboard shows the fingerprint of the CA the device trusts"
    );
    assert_eq!(
        shown.lines().count(),
        4,
        "four lines of eight, as on the screen: {shown:?}"
    );
    browser
        .text_where("#https-url", |t| t.starts_with("https://"))
        .await;
    let fits = browser
        .eval("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(fits, serde_json::json!(true), "nothing runs off the page");
    browser.snapshot("https-dashboard").await;
    browser.close().await;

    // A browser that does not trust the box stays on the plain trust page.
    let stranger = Browser::start().await;
    stranger
        .client
        .goto(&format!("http://{}/", node.web))
        .await
        .unwrap();
    stranger.visible("#download").await;
    // The page's probe of the secure address ends (refused: an unknown CA).
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let probe = stranger
            .eval("return document.body.dataset.probe || '';")
            .await;
        if probe == "untrusted" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the probe never ended: {probe}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = stranger.client.current_url().await.unwrap();
    assert_eq!(
        url.scheme(),
        "http",
        "no untrusted device is sent on: {url}"
    );
    let trusted_shown = stranger
        .eval("return !document.getElementById('trusted').hidden;")
        .await;
    assert_eq!(trusted_shown, serde_json::json!(false));
    stranger.snapshot("https-untrusted").await;
    stranger.close().await;
}
