//! The Lightning part of the web page, in headless Chromium, with two boxes on one chain:
//! through box A's page fund A, open a channel to B, pay an invoice made on B's page, see
//! the payment on both, see clear refusals, and close the channel.

mod common;

use common::browser::{open_url, Browser};
use common::lightning::*;
use common::*;
use tokio::task::block_in_place;

/// The page groups thousands with a narrow no-break space ("50 000 sat").
fn plain(text: &str) -> String {
    text.replace('\u{202f}', " ")
}

fn digits(text: &str) -> u64 {
    let digits: String = text
        .chars()
        .take_while(|c| *c != '.')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fund_open_pay_and_close_a_channel_through_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, a, b) = block_in_place(|| {
        let chain = Chain::start(dir.path());
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| LnBox::start(&dir.path().join("a"), &chain));
            let b = scope.spawn(|| LnBox::start(&dir.path().join("b"), &chain));
            (a.join().unwrap(), b.join().unwrap())
        });
        (chain, a, b)
    });
    // Two sites for the browser (its cookies do not tell ports apart): A on 127.0.0.1, B on
    // localhost.
    let a_page = format!("http://127.0.0.1:{}/", a.node.web.port());
    let b_page = format!("http://localhost:{}/", b.node.web.port());
    let browser = Browser::start().await;
    open_url(&browser, &a_page).await;
    browser
        .text_where_for("#lightning-state", LN_TIMEOUT, |t| t == "Running")
        .await;

    // Fund A: mine to the address the page shows (with its QR code).
    browser.click("[data-panel='fund-panel']").await;
    let address = browser
        .text_where("#fund-address", |t| t.starts_with("bcrt1"))
        .await;
    wait_image(&browser, "fund-qr").await;
    block_in_place(|| {
        chain.mine_to(1, &address);
        chain.mine(100);
    });
    browser
        .text_where_for("#balance-onchain", LN_TIMEOUT, |t| digits(t) > 1_000_000)
        .await;
    browser.snapshot("fund").await;

    // Open a channel to B from the form: "id@host:port" in the id field fills both.
    browser.click("#open-channel-toggle").await;
    let b_uri = format!("{}@{}", b.node_id(), b.peer_address());
    browser.type_into("#open-node-id", &b_uri).await;
    browser.type_into("#open-amount", "1 000 000").await;
    browser.click("#open-button").await;
    browser
        .text_where_for("#open-result", LN_TIMEOUT, |t| {
            plain(t).contains("Opening a 1 000 000 sat channel")
        })
        .await;
    block_in_place(|| {
        wait_for("the funding transaction", LN_TIMEOUT, || {
            (chain.mempool_size() > 0).then_some(())
        });
        chain.mine(6);
    });
    browser
        .text_where_for("#channels-list .channel-state", LN_TIMEOUT, |t| t == "open")
        .await;
    let legend = browser
        .text_where("#channels-list .legend", |t| !t.is_empty())
        .await;
    assert!(plain(&legend).contains("Them: 0 sat"), "{legend}");
    block_in_place(|| b.wait_channel_usable());
    browser
        .text_where("#balance-lightning", |t| digits(t) > 900_000)
        .await;
    browser.snapshot("channel-open").await;

    // B's page makes an invoice: text and QR code.
    open_url(&browser, &b_page).await;
    browser
        .text_where_for("#lightning-state", LN_TIMEOUT, |t| t == "Running")
        .await;
    browser.click("[data-panel='receive-panel']").await;
    browser.type_into("#receive-amount", "50 000").await;
    browser.type_into("#receive-description", "coffee").await;
    browser.click("#receive-form button[type=submit]").await;
    let invoice = browser
        .text_where("#receive-invoice", |t| t.starts_with("lnbcrt"))
        .await;
    let summary = browser
        .text_where("#receive-summary", |t| !t.is_empty())
        .await;
    assert!(
        plain(&summary).starts_with("50 000 sat · coffee"),
        "{summary}"
    );
    wait_image(&browser, "receive-qr").await;
    browser.snapshot("receive").await;
    // Copying works on plain http too (plugnode.local), where browsers offer no clipboard
    // API to pages.
    browser
        .eval("Object.defineProperty(navigator, 'clipboard', { value: undefined }); return 0;")
        .await;
    browser.click("#receive-buttons button.copy").await;
    browser
        .text_where("#receive-buttons button.copy", |t| t == "Copied")
        .await;

    // A's page pays it: the page reads the invoice first and says what it asks.
    open_url(&browser, &a_page).await;
    browser.click("[data-panel='send-panel']").await;
    browser.type_into("#send-invoice", &invoice).await;
    let preview = browser.text_where("#send-preview", |t| !t.is_empty()).await;
    assert!(
        plain(&preview).contains("50 000 sat") && preview.contains("coffee"),
        "{preview}"
    );
    browser
        .text_where("#send-button", |t| plain(t) == "Pay 50 000 sat")
        .await;
    browser.click("#send-button").await;
    let paid = browser
        .text_where_for("#send-result", LN_TIMEOUT, |t| !t.is_empty())
        .await;
    assert!(plain(&paid).starts_with("Paid 50 000 sat, fee "), "{paid}");
    browser
        .text_where("#payments-list .payment", |t| {
            t.contains("Sent") && plain(t).contains("−50 000 sat")
        })
        .await;
    browser.snapshot("paid").await;

    // Garbage, then the same invoice again: refused, in the box's words, where the user
    // pasted.
    browser.type_into("#send-invoice", "lnbcrt1garbage").await;
    browser.click("#send-button").await;
    let error = browser
        .text_where("#send-error", |t| {
            t.contains("not a valid Lightning invoice")
        })
        .await;
    assert!(error.contains("invalid invoice"), "the kind too: {error}");
    // (Pasted as a QR code carries it this time.)
    let scanned = format!("LIGHTNING:{}", invoice.to_uppercase());
    browser.type_into("#send-invoice", &scanned).await;
    browser
        .text_where("#send-button", |t| plain(t) == "Pay 50 000 sat")
        .await;
    browser.click("#send-button").await;
    let error = browser
        .text_where_for("#send-error", LN_TIMEOUT, |t| t.contains("already paid"))
        .await;
    assert!(error.contains("nothing was sent again"), "{error}");
    let kind = browser
        .eval("return document.getElementById('send-error').dataset.kind;")
        .await;
    assert_eq!(kind, "already_paid");
    browser.snapshot("already-paid").await;

    // B's page lists the payment as received.
    open_url(&browser, &b_page).await;
    browser
        .text_where("#payments-list .payment", |t| {
            t.contains("Received") && plain(t).contains("+50 000 sat")
        })
        .await;

    // A's page closes the channel, after saying what each way of closing means.
    open_url(&browser, &a_page).await;
    browser.click("#channels-list button.force-close").await;
    let explain = browser
        .text_where("#close-explain", |t| !t.is_empty())
        .await;
    assert!(explain.contains("144 blocks"), "{explain}");
    browser.snapshot("force-close-question").await;
    browser.click("#close-cancel").await;
    browser.click("#channels-list button.close").await;
    let explain = browser
        .text_where("#close-explain", |t| !t.is_empty())
        .await;
    assert!(explain.contains("Both nodes agree"), "{explain}");
    let other = browser.text_where("#close-other", |t| !t.is_empty()).await;
    assert!(
        other.contains("144 blocks"),
        "the difference is spelled out: {other}"
    );
    browser.click("#close-confirm").await;
    browser
        .text_where("#channels-card", |t| {
            t.contains("closing") || t.contains("No channels yet.")
        })
        .await;
    block_in_place(|| {
        wait_for("the closing transaction", LN_TIMEOUT, || {
            (chain.mempool_size() > 0).then_some(())
        });
        chain.mine(6);
    });
    browser
        .text_where_for("#channels-empty", LN_TIMEOUT, |t| t == "No channels yet.")
        .await;
    browser.snapshot("closed").await;
    browser.close().await;
}

/// Waits until the image `id` has loaded a picture.
async fn wait_image(browser: &Browser, id: &str) {
    let script = format!(
        "const i = document.getElementById('{id}'); return i.complete ? i.naturalWidth : 0;"
    );
    let deadline = std::time::Instant::now() + TIMEOUT;
    while browser.eval(&script).await.as_u64().unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "#{id} never showed a picture"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
