//! Receiving in the demo, in headless Chromium: a payment that fits the channels gets a
//! normal invoice; one that does not asks the owner to agree to the demo's liquidity
//! provider, says the provider's fee before the invoice, and arrives through a new channel
//! with the fee it kept shown.

mod common;

use common::browser::{claim, Browser};
use common::lightning::LN_TIMEOUT;
use common::*;

fn digits(text: &str) -> u64 {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_the_channels_take_arrives_through_a_new_channel_after_the_fee_was_shown() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let browser = Browser::start().await;
    claim(&browser, demo.web, &demo.dir.join("secrets")).await;
    browser
        .text_where_for("#channels-list .channel-state", LN_TIMEOUT, |t| t == "open")
        .await;
    let receivable = digits(
        &browser
            .text_where_for("#balance-receivable", LN_TIMEOUT, |t| digits(t) > 0)
            .await,
    );

    // Asked about the provider before anything is contacted.
    let offer = browser
        .text_where("#lsp-offer", |t| {
            t.contains("Receive from the first minute?")
        })
        .await;
    assert!(offer.contains("never at its mercy"), "{offer}");

    // Within what the channels take: a normal invoice, paid by the demo's peer.
    browser.click("[data-panel='receive-panel']").await;
    browser
        .type_into("#receive-amount", &(receivable / 10).to_string())
        .await;
    browser.click("#receive-submit").await;
    let summary = browser
        .text_where("#receive-summary", |t| t.contains("valid until"))
        .await;
    assert!(!summary.contains("opens a channel"), "{summary}");
    browser.click("#receive-demo-pay").await;
    browser
        .text_where_for("#receive-paid", LN_TIMEOUT, |t| t.starts_with("Received"))
        .await;
    browser.click("#receive-new").await;

    // More than that: agree to the provider, see its fee, accept, get paid.
    let amount = receivable + 200_000;
    browser
        .type_into("#receive-amount", &amount.to_string())
        .await;
    browser.click("#receive-submit").await;
    browser
        .text_where("#receive-error", |t| t.contains("agree to use it"))
        .await;
    browser.click("#lsp-agree").await;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while browser
        .eval("return document.getElementById('lsp-offer').hidden")
        .await
        != true
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the offer never went away"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.click("#receive-submit").await;
    let fee = amount / 100;
    let asked = browser
        .text_where("#receive-jit-text", |t| t.contains("keeps at most"))
        .await;
    assert_eq!(
        digits(
            asked
                .split("keeps at most")
                .nth(1)
                .unwrap()
                .split("sat")
                .next()
                .unwrap()
        ),
        fee,
        "{asked}"
    );
    browser.snapshot("receive-jit-fee").await;
    browser.click("#receive-jit-accept").await;
    let summary = browser
        .text_where("#receive-summary", |t| t.contains("opens a channel"))
        .await;
    assert!(summary.contains(&format!("{}", fee % 1000)), "{summary}");
    browser.click("#receive-demo-pay").await;
    let paid = browser
        .text_where_for("#receive-paid", LN_TIMEOUT, |t| t.starts_with("Received"))
        .await;
    assert!(
        paid.contains("through a new channel") && paid.contains("the provider kept"),
        "{paid}"
    );
    browser.snapshot("receive-jit-paid").await;
    browser
        .text_where_for("#channels-list", LN_TIMEOUT, |t| {
            t.contains("opened by the demo's liquidity provider")
        })
        .await;
}
