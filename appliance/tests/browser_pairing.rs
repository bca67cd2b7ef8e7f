//! The "Connect a wallet" card in headless Chromium. Box A has a (simulated) screen, so it
//! has keys: an app that may spend is allowed with KEY2 on the box; the QR code the page
//! shows is the URI; rust-nostr's NWC client pairs from it and pays box B; the page shows the
//! budget used and revokes the app at once. On a phone-sized window, a box without keys
//! asks for the web password before an app may spend, and pairs BlueWallet (LNDHub,
//! receive only) at once. The demo offers an invoice of its peer for a paired app to pay.

mod common;

use common::browser::{claim, open_url, Browser};
use common::lightning::*;
use common::pairing::{connection, nwc_client};
use common::*;
use nostr_sdk::nips::nip47;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::block_in_place;

/// The page groups thousands with a narrow no-break space ("50 000 sat").
fn plain(text: &str) -> String {
    text.replace('\u{202f}', " ")
}

/// The number after `label` in `text` ("Used 10 000 sat" → 10000).
fn amount_after(text: &str, label: &str) -> Option<u64> {
    let plain = plain(text);
    let rest = &plain[plain.find(label)? + label.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Whether the element `id` is hidden.
async fn hidden(browser: &Browser, id: &str) -> bool {
    browser
        .eval(&format!("return document.getElementById('{id}').hidden;"))
        .await
        == Value::Bool(true)
}

/// Waits until the image `css` shows a picture, then reads the QR code in a screenshot of
/// it, as a phone's camera would.
async fn read_qr(browser: &Browser, css: &str) -> String {
    let script = format!(
        "const i = document.querySelector(\"{css}\"); return i.complete ? i.naturalWidth : 0;"
    );
    let deadline = Instant::now() + TIMEOUT;
    while browser.eval(&script).await.as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "{css} never showed a picture");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shot = browser.visible(css).await.screenshot().await.unwrap();
    let mut decoder = png::Decoder::new(std::io::Cursor::new(shot));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let samples = info.color_type.samples();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        info.width as usize,
        info.height as usize,
        |x, y| pixels[y * info.line_size + x * samples],
    );
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture of {css}");
    grids[0].decode().expect("the QR code reads").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_may_spend_is_allowed_on_the_box_pays_and_is_revoked_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, a, b) = block_in_place(|| {
        let chain = Chain::start(dir.path());
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
                config.panel = "simulated";
                config.pairing = Some(TestPairing::both());
                LnBox::start_with_screen(config)
            });
            let b = scope.spawn(|| LnBox::start(&dir.path().join("b"), &chain));
            (a.join().unwrap(), b.join().unwrap())
        });
        a.fund(&chain);
        open_channel(&chain, &a, &b, 1_000_000, 0);
        (chain, a, b)
    });
    let browser = Browser::start().await;
    open_url(
        &browser,
        &format!("http://127.0.0.1:{}/", a.node.web.port()),
    )
    .await;
    browser
        .text_where("#pairing-empty", |t| t == "No wallet app is connected.")
        .await;
    assert!(
        hidden(&browser, "pairing-demo").await,
        "a real box has no demo peer"
    );

    // Zeus, receive and spend, 50 000 sat a day.
    browser.click("#pairing-add-toggle").await;
    browser.select("#pairing-preset", "zeus").await;
    let name = browser
        .eval("return document.getElementById('pairing-app').value;")
        .await;
    assert_eq!(name, "Zeus", "the preset names the connection");
    // Zeus speaks both protocols; Nostr Wallet Connect is the default.
    browser.visible("#pairing-protocols").await;
    let nwc_chosen = browser
        .eval("return document.getElementById('pairing-protocol-nwc').checked;")
        .await;
    assert_eq!(nwc_chosen, true);
    browser.click("#pairing-spend").await;
    browser.type_into("#pairing-budget", "50 000").await;
    // A box with keys asks for KEY2, never for the password.
    browser
        .text_where("#pairing-confirm-note", |t| t.contains("KEY2"))
        .await;
    assert!(hidden(&browser, "pairing-password-row").await);
    browser.snapshot("pairing-form").await;
    browser.click("#pairing-create").await;
    // Allowing an app to spend takes the password again, then KEY2.
    browser.answer_password_dialog(PASSWORD).await;

    // The page waits for the box, and says so.
    let asked = browser
        .text_where("#pairing-wait-text", |t| t.contains("KEY2"))
        .await;
    assert!(
        plain(&asked)
            .contains("Press KEY2 on the box to allow “Zeus” to spend up to 50 000 sat per day"),
        "{asked}"
    );
    assert!(
        asked.contains("KEY3 refuses") && asked.contains("2 minutes"),
        "{asked}"
    );
    let code_shown = browser
        .eval("return document.getElementById('pairing-qr').hasAttribute('src');")
        .await;
    assert_eq!(code_shown, false, "no code before the box allowed it");
    let box_asks = || {
        block_in_place(|| {
            a.node.wait_status("the box to ask", |s| {
                s["display"]["screen"] == "PairingConfirm"
            })
        })
    };
    box_asks();
    browser.snapshot("pairing-wait").await;
    // KEY3 refuses: the page says so and offers to start again. (The simulated panel's
    // keys are the page's mirror of them.)
    browser.click("#keys button[data-key='3']").await;
    let refused = browser
        .text_where("#pairing-refused-text", |t| !t.is_empty())
        .await;
    assert!(refused.starts_with("The box refused “Zeus”"), "{refused}");
    let (code, listed) = block_in_place(|| a.get("/api/pairing/connections"));
    assert_eq!(listed, json!([]), "nothing paired ({code})");
    browser.click("#pairing-again").await;
    browser.click("#pairing-create").await;
    browser
        .text_where("#pairing-wait-text", |t| t.contains("Press KEY2"))
        .await;
    box_asks();
    browser.click("#keys button[data-key='2']").await;

    // Allowed: the code, once, on the page.
    browser.visible("#pairing-show").await;
    let uri = browser
        .text_where("#pairing-uri", |t| t.starts_with("nostr+walletconnect://"))
        .await;
    assert_eq!(
        read_qr(&browser, "#pairing-qr").await,
        uri,
        "the QR code is the URI"
    );
    let title = browser
        .text_where("#pairing-show-title", |t| !t.is_empty())
        .await;
    assert_eq!(title, "Scan this code with Zeus");
    let place = browser
        .text_where("#pairing-where", |t| !t.is_empty())
        .await;
    assert!(place.starts_with("In Zeus: "), "{place}");
    let reach = browser
        .text_where("#pairing-reach", |t| !t.is_empty())
        .await;
    assert!(
        reach.contains("home Wi-Fi"),
        "only the box's own relay: {reach}"
    );
    assert!(
        hidden(&browser, "pairing-relay-hint").await,
        "the public-relay hint is for mainnet"
    );
    browser.snapshot("pairing-code").await;
    // Copying works on plain http too, where browsers offer pages no clipboard API.
    browser
        .eval("Object.defineProperty(navigator, 'clipboard', { value: undefined }); return 0;")
        .await;
    browser.click("#pairing-show-buttons button.copy").await;
    browser
        .text_where("#pairing-show-buttons button.copy", |t| t == "Copied")
        .await;

    // The app scans it and pays an invoice of B.
    let app = nwc_client(&uri);
    let invoice = block_in_place(|| b.invoice(Some(10_000_000), "from Zeus"));
    let paid = app
        .pay_invoice(nip47::PayInvoiceRequest::new(invoice))
        .await
        .expect("the app pays within its budget");
    assert_eq!(paid.preimage.len(), 64);

    // Done: the code leaves the page, and was never stored.
    browser.click("#pairing-done").await;
    browser
        .text_where("#pairing-result", |t| t.contains("Zeus is paired"))
        .await;
    let secret = uri.split("secret=").nth(1).unwrap();
    let secret = &secret[..secret.find('&').unwrap_or(secret.len())];
    let page = browser
        .eval("return document.documentElement.outerHTML;")
        .await;
    assert!(
        !page.as_str().unwrap().contains(secret),
        "the secret is gone from the page"
    );
    let kept = browser
        .eval(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + \
             document.cookie;",
        )
        .await;
    assert!(!kept.as_str().unwrap().contains(secret));

    // The list: the budget used moved.
    let (code, listed) = block_in_place(|| a.get("/api/pairing/connections"));
    assert_eq!(code, 200, "{listed}");
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let item = format!("#pairing-list .connection[data-id='{id}']");
    let text = browser
        .text_where_for(&item, LN_TIMEOUT, |t| {
            amount_after(t, "Used ").unwrap_or(0) >= 10_000
        })
        .await;
    let (used, left) = (
        amount_after(&text, "Used ").unwrap(),
        amount_after(&text, "Left ").unwrap(),
    );
    assert!((10_000..10_200).contains(&used), "{text}");
    assert!(
        (49_999..=50_000).contains(&(used + left)),
        "used and left make the budget: {text}"
    );
    let shown = block_in_place(|| connection(&a, &id));
    assert_eq!(
        Some(used),
        shown["used_sat"].as_u64(),
        "the page shows what the box counts: {shown}"
    );
    let text = plain(&text);
    for expected in [
        "Zeus",
        "NWC",
        "active",
        "Receive and spend · budget 50 000 sat per day",
        "Renews in ",
        "No expiry",
        "Last used ",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text:?}");
    }
    assert!(!text.contains("Last used never"), "{text}");
    browser.snapshot("pairing-used").await;

    // Revoke, after a short question: the app is refused at once.
    browser.click(&format!("{item} button.revoke")).await;
    browser
        .text_where(&format!("{item} .connection-foot"), |t| {
            t.contains("Revoke “Zeus”? It stops working at once.")
        })
        .await;
    browser.snapshot("pairing-revoke").await;
    browser
        .click(&format!("{item} button.revoke-confirm"))
        .await;
    browser
        .text_where("#pairing-result", |t| t.contains("“Zeus” is revoked"))
        .await;
    browser
        .text_where("#pairing-empty", |t| t == "No wallet app is connected.")
        .await;
    match app.get_balance().await {
        Err(nwc::Error::NIP47(nip47::Error::ErrorCode(error))) => {
            assert_eq!(error.code, nip47::ErrorCode::Unauthorized, "{error:?}")
        }
        other => panic!("a revoked app is refused: {other:?}"),
    }
    let status = block_in_place(|| a.status());
    assert_eq!(status["pairing"]["active_connections"], 0);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_bluewallet_pairs_at_once_and_a_box_without_keys_asks_for_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    let pairing = TestPairing::both();
    let hub_port = pairing.lndhub_port.unwrap();
    config.pairing = Some(pairing);
    let node = Plugnode::start(&config);
    block_in_place(|| node.wait_status("the web page", |_| true));
    let browser = Browser::start_sized(390, 844).await;
    open_url(&browser, &format!("http://127.0.0.1:{}/", node.web.port())).await;

    browser.click("#pairing-add-toggle").await;
    browser.select("#pairing-preset", "bluewallet").await;
    let name = browser
        .eval("return document.getElementById('pairing-app').value;")
        .await;
    assert_eq!(name, "BlueWallet");
    assert!(
        hidden(&browser, "pairing-protocols").await,
        "BlueWallet speaks LNDHub only: no choice"
    );

    // Spending, on a box without keys, takes the web password again; a wrong one is
    // refused next to the field, in the box's words.
    browser.click("#pairing-spend").await;
    browser.type_into("#pairing-budget", "5000").await;
    browser
        .type_into("#pairing-password", "not the password")
        .await;
    browser.click("#pairing-create").await;
    browser
        .text_where("#pairing-password-error", |t| t.contains("Wrong password"))
        .await;
    let kind = browser
        .eval("return document.getElementById('pairing-password-error').dataset.kind;")
        .await;
    assert_eq!(kind, "wrong_password");
    assert!(hidden(&browser, "pairing-show").await, "nothing was paired");
    browser.snapshot("phone-wrong-password").await;

    // Receive only: no password, no key, the code at once.
    browser.click("#pairing-receive").await;
    assert!(hidden(&browser, "pairing-password-row").await);
    browser.click("#pairing-create").await;
    let uri = browser
        .text_where("#pairing-uri", |t| t.starts_with("lndhub://"))
        .await;
    assert_eq!(read_qr(&browser, "#pairing-qr").await, uri);
    let place = browser
        .text_where("#pairing-where", |t| !t.is_empty())
        .await;
    assert_eq!(
        place,
        "In BlueWallet: Add wallet → Import wallet → scan this code."
    );
    let reach = browser
        .text_where("#pairing-reach", |t| !t.is_empty())
        .await;
    assert!(reach.contains("home Wi-Fi"), "{reach}");
    let fits = browser
        .eval("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(fits, true, "nothing sticks out sideways on a phone");
    browser.snapshot("phone-code").await;

    // The code logs in at LNDHub, as BlueWallet does after scanning it.
    let credentials = uri
        .strip_prefix("lndhub://")
        .and_then(|rest| rest.split_once('@'))
        .map(|(credentials, _)| credentials)
        .unwrap();
    let (login, password) = credentials.split_once(':').unwrap();
    let body = json!({ "login": login, "password": password }).to_string();
    let hub = std::net::SocketAddr::from(([127, 0, 0, 1], hub_port));
    let (code, answer) =
        block_in_place(|| http(hub, "POST", "/auth?type=auth", Some(&body))).unwrap();
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("access_token"), "{answer}");

    browser.click("#pairing-done").await;
    let text = browser
        .text_where("#pairing-list .connection", |t| t.contains("BlueWallet"))
        .await;
    for expected in [
        "LNDHub",
        "active",
        "Receive only",
        "No expiry",
        "Last used ",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text:?}");
    }
    let uri_left = browser
        .eval("return document.documentElement.outerHTML;")
        .await;
    assert!(!uri_left.as_str().unwrap().contains(password));
    let fits = browser
        .eval("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(fits, true, "the list fits a phone too");
    browser.snapshot("phone-list").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_offers_an_invoice_of_its_peer_for_a_paired_app_to_pay() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let browser = Browser::start().await;
    claim(&browser, demo.web, &demo.dir.join("secrets")).await;
    // The demo opens a channel to its peer by itself.
    browser
        .text_where_for("#channels-list .channel-state", LN_TIMEOUT, |t| t == "open")
        .await;
    browser.visible("#pairing-demo").await;

    // Alby Go may spend 10 000 sat in total; the demo's screen is simulated, so the
    // waiting step carries its keys once the screen asks.
    browser.click("#pairing-add-toggle").await;
    browser.select("#pairing-preset", "alby-go").await;
    browser.click("#pairing-spend").await;
    browser.type_into("#pairing-budget", "10 000").await;
    browser.select("#pairing-renewal", "never").await;
    browser.click("#pairing-create").await;
    // The password was chosen moments ago, so the box asks for it again only when setting
    // up took more than 5 minutes.
    browser
        .text_where_with_password("#pairing-wait-text", TIMEOUT, PASSWORD, |t| {
            t.contains("“Alby Go”")
        })
        .await;
    browser.visible("#pairing-mirror").await;
    browser.click("#pairing-key2").await;
    let uri = browser
        .text_where("#pairing-uri", |t| t.starts_with("nostr+walletconnect://"))
        .await;
    let place = browser
        .text_where("#pairing-where", |t| !t.is_empty())
        .await;
    assert_eq!(place, "In Alby Go: Connect wallet → scan this code.");
    browser.snapshot("demo-pairing-code").await;

    // Try it: an invoice of the demo's peer, paid from the app.
    browser.type_into("#pairing-demo-amount", "2 100").await;
    browser.click("#pairing-demo-get").await;
    let invoice = browser
        .text_where("#pairing-demo-invoice", |t| t.starts_with("lnbcrt"))
        .await;
    browser.click("#pairing-demo-buttons button.copy").await;
    browser
        .text_where("#pairing-demo-buttons button.copy", |t| t == "Copied")
        .await;
    let app = nwc_client(&uri);
    app.pay_invoice(nip47::PayInvoiceRequest::new(invoice))
        .await
        .expect("the app pays the demo's peer");
    browser.click("#pairing-done").await;
    let text = browser
        .text_where_for("#pairing-list .connection", LN_TIMEOUT, |t| {
            amount_after(t, "Used ").unwrap_or(0) >= 2_100
        })
        .await;
    assert!(
        plain(&text).contains("budget 10 000 sat in total") && text.contains("Never renews"),
        "{text}"
    );
    show_card(&browser, "pairing-card").await;
    browser.snapshot("demo-pairing-paid").await;
    browser.close().await;
    drop(demo);
}

async fn show_card(browser: &Browser, id: &str) {
    browser
        .eval(&format!(
            "document.getElementById('{id}').scrollIntoView({{block: 'start'}}); return 0;"
        ))
        .await;
}
