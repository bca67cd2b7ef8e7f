//! Setting up the wallet through the web page, in headless Chromium: a box without a screen
//! shows the 24 words once on the page and asks three of them back; a box with a screen
//! shows them only there; restoring names the wrong word.

mod common;

use common::browser::Browser;
use common::lightning::*;
use common::*;
use std::time::Duration;
use tokio::task::block_in_place;

/// A valid 24-word phrase (the BIP39 test vector of all-zero entropy).
const KNOWN_WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon art";

fn stored_words(node: &Plugnode) -> Vec<String> {
    plugnode::lightning::Seed::load(&node.data_dir.join("secrets"))
        .unwrap()
        .expect("the box has a seed")
        .words()
        .to_vec()
}

async fn log_in(browser: &Browser, node: &Plugnode) {
    block_in_place(|| wait_for("the web page", TIMEOUT, || http(node.web, "GET", "/", None)));
    browser
        .client
        .goto(&format!("http://{}/", node.web))
        .await
        .unwrap();
    browser.visible("#login-form").await;
    browser.type_into("#login-password", PASSWORD).await;
    browser.click("#login-form button[type=submit]").await;
    browser.visible("#dashboard").await;
}

/// How many of `words` the page shows as text right now.
async fn words_on_page(browser: &Browser, words: &[String]) -> usize {
    let text = browser.eval("return document.body.innerText;").await;
    let text = text.as_str().unwrap().to_string();
    let shown: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    // The words in their order, three in a row, never appear in the page's own texts.
    words
        .windows(3)
        .filter(|three| shown.windows(3).any(|s| s == *three))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_without_a_screen_shows_the_words_once_and_asks_three_back() {
    let dir = tempfile::tempdir().unwrap();
    let chain = block_in_place(|| Chain::start(dir.path()));
    let mut config = TestConfig::lightning_box(&dir.path().join("box"), &chain.sim);
    config.first_boot_password = false;
    let node = Plugnode::start(&config);
    block_in_place(|| wait_for("the web page", TIMEOUT, || http(node.web, "GET", "/", None)));

    // On a phone: claim the box with its setup code.
    let browser = Browser::start_sized(390, 844).await;
    browser
        .client
        .goto(&format!("http://{}/", node.web))
        .await
        .unwrap();
    browser.visible("#setup-form").await;
    let setup_code = std::fs::read_to_string(node.data_dir.join("secrets/setup-code")).unwrap();
    browser.type_into("#setup-code", setup_code.trim()).await;
    browser.type_into("#setup-password", PASSWORD).await;
    browser.type_into("#setup-repeat", PASSWORD).await;
    browser.click("#setup-form button[type=submit]").await;

    // The page offers to create or restore the wallet; the Lightning node waits for it.
    browser.visible("#wallet-choose").await;
    browser
        .text_where("#lightning-reason", |t| t.contains("No wallet yet"))
        .await;
    browser.snapshot("wallet-choose-phone").await;
    browser.click("#wallet-create").await;

    // The words, numbered, big; they are the box's seed.
    browser.visible("#wallet-words").await;
    let shown = browser
        .eval("return [...document.querySelectorAll('#seed-words .w')].map(e => e.textContent);")
        .await;
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, stored_words(&node), "the page shows the stored seed");
    let numbers = browser
        .eval("return [...document.querySelectorAll('#seed-words .n')].map(e => e.textContent);")
        .await;
    assert_eq!(numbers[0], "1.");
    assert_eq!(numbers[23], "24.");
    browser.snapshot("wallet-words-phone").await;
    browser.click("#wallet-words-written").await;

    // Three words asked back: the list is gone from the page meanwhile.
    browser.visible("#wallet-confirm").await;
    assert_eq!(words_on_page(&browser, &shown).await, 0);
    let positions = browser
        .eval(
            "return [...document.querySelectorAll('#wallet-confirm-fields input')]\
             .map(i => Number(i.dataset.position));",
        )
        .await;
    let positions: Vec<usize> = serde_json::from_value(positions).unwrap();
    assert_eq!(positions.len(), 3);
    let field = |p: usize| format!("#wallet-confirm-fields input[data-position='{p}']");
    // One wrong word: the page says which.
    let wrong = if shown[positions[1] - 1] == "zoo" {
        "abandon"
    } else {
        "zoo"
    };
    browser
        .type_into(&field(positions[0]), &shown[positions[0] - 1])
        .await;
    browser.type_into(&field(positions[1]), wrong).await;
    browser
        .type_into(
            &field(positions[2]),
            &shown[positions[2] - 1].to_uppercase(),
        )
        .await;
    browser.click("#wallet-confirm button[type=submit]").await;
    let error = browser
        .text_where("#wallet-confirm-error", |t| !t.is_empty())
        .await;
    assert!(
        error.contains(&format!("Word {} does not match", positions[1])),
        "{error}"
    );
    browser.snapshot("wallet-confirm-phone").await;
    // "Show the words again" still works before the check passes.
    browser.click("#wallet-confirm-back").await;
    browser.visible("#wallet-words").await;
    assert_eq!(words_on_page(&browser, &shown).await, 22, "all 24 in order");
    browser.click("#wallet-words-written").await;
    let positions: Vec<usize> = serde_json::from_value(
        browser
            .eval(
                "return [...document.querySelectorAll('#wallet-confirm-fields input')]\
                 .map(i => Number(i.dataset.position));",
            )
            .await,
    )
    .unwrap();
    for p in &positions {
        // Spaces around and any case are fine.
        browser
            .type_into(&field(*p), &format!(" {} ", shown[p - 1]))
            .await;
    }
    browser.click("#wallet-confirm button[type=submit]").await;
    browser.visible("#wallet-done").await;
    assert_eq!(words_on_page(&browser, &shown).await, 0);
    let fields = browser
        .eval("return document.querySelectorAll('#seed-words li, #wallet-confirm-fields input').length;")
        .await;
    assert_eq!(fields, 0, "the words left the page");
    browser.click("#wallet-done-ok").await;

    // The Lightning node starts with the new wallet.
    browser
        .text_where_for("#lightning-state", LN_TIMEOUT, |t| t == "Running")
        .await;
    let hidden = browser
        .eval("return document.getElementById('wallet-card').hidden;")
        .await;
    assert_eq!(hidden, true);

    // Shown once: after a reload the page offers no wallet setup and no words; nothing was
    // kept in the browser's storage.
    browser.client.refresh().await.unwrap();
    browser
        .text_where("#lightning-state", |t| t == "Running")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hidden = browser
        .eval("return document.getElementById('wallet-card').hidden;")
        .await;
    assert_eq!(hidden, true, "no second wallet setup");
    assert_eq!(words_on_page(&browser, &shown).await, 0);
    let stored = browser
        .eval("return localStorage.length + sessionStorage.length;")
        .await;
    assert_eq!(stored, 0);
    browser.snapshot("lightning-running-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_names_the_wrong_word_and_suggests_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = Plugnode::start(&TestConfig::new(dir.path()));
    let browser = Browser::start().await;
    log_in(&browser, &node).await;

    browser.click("#wallet-restore-open").await;
    // A typo in word 5.
    let typo: Vec<&str> = KNOWN_WORDS
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| if i == 4 { "abandn" } else { w })
        .collect();
    let typo = typo.join(" ");
    browser.type_into("#wallet-restore-words", &typo).await;
    browser
        .text_where("#wallet-restore-count", |t| t == "24 of 24 words")
        .await;
    browser.click("#wallet-restore button[type=submit]").await;
    let error = browser
        .text_where("#wallet-restore-error", |t| !t.is_empty())
        .await;
    assert!(
        error.contains("Word 5") && error.contains("\"abandn\"") && error.contains("\"abandon\""),
        "the box's words name the word and suggest one: {error}"
    );
    let kind = browser
        .eval("return document.getElementById('wallet-restore-error').dataset.kind;")
        .await;
    assert_eq!(kind, "invalid_input");
    browser.snapshot("wallet-restore-typo").await;

    // Real words in the wrong order: the checksum.
    let wrong = KNOWN_WORDS.replace("art", "abandon");
    browser.type_into("#wallet-restore-words", &wrong).await;
    browser.click("#wallet-restore button[type=submit]").await;
    browser
        .text_where("#wallet-restore-error", |t| t.contains("checksum"))
        .await;

    // Numbered as on paper, on several lines: restored.
    let numbered: String = KNOWN_WORDS
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| format!("{}. {w}\n", i + 1))
        .collect();
    browser.type_into("#wallet-restore-words", &numbered).await;
    browser
        .text_where("#wallet-restore-count", |t| t == "24 of 24 words")
        .await;
    browser.click("#wallet-restore button[type=submit]").await;
    // Restoring replaces nothing here, but it is dangerous: the password again.
    browser.answer_password_dialog("not my password").await;
    browser
        .text_where("#reauth-error", |t| t.contains("Wrong password"))
        .await;
    browser.snapshot("wallet-restore-password-again").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    browser.type_into("#reauth-password", PASSWORD).await;
    browser.click("#reauth-ok").await;
    browser
        .text_where("#wallet-done-text", |t| t.contains("restored"))
        .await;
    assert_eq!(
        stored_words(&node).join(" "),
        KNOWN_WORDS.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let field = browser
        .eval("return document.getElementById('wallet-restore-words').value;")
        .await;
    assert_eq!(field, "", "the typed words do not stay in the page");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_with_a_screen_shows_the_words_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.panel = "simulated";
    let node = Plugnode::start(&config);
    let browser = Browser::start().await;
    log_in(&browser, &node).await;

    browser.click("#wallet-create").await;
    browser.visible("#wallet-screen").await;
    browser
        .text_where("#wallet-screen-intro", |t| t.contains("box's screen"))
        .await;
    browser
        .text_where("#wallet-screen-page", |t| {
            t.contains("words 1 to 6 (page 1 of 4)")
        })
        .await;
    // This box's screen is simulated: its picture is in the step.
    browser.visible("#wallet-mirror").await;
    let words = stored_words(&node);
    assert_eq!(
        words_on_page(&browser, &words).await,
        0,
        "no word reaches the page"
    );
    browser.snapshot("wallet-screen").await;

    // The page turns the screen's pages (KEY1), and on the last one takes the words off
    // the screen (KEY2).
    for page in 2..=4 {
        browser.click("#wallet-screen-next").await;
        browser
            .text_where("#wallet-screen-page", |t| {
                t.contains(&format!("(page {page} of 4)"))
            })
            .await;
    }
    browser.click("#wallet-screen-prev").await;
    browser
        .text_where("#wallet-screen-page", |t| t.contains("(page 3 of 4)"))
        .await;
    browser.click("#wallet-screen-next").await;
    browser.click("#wallet-screen-done").await;
    browser
        .text_where("#wallet-screen-page", |t| t.contains("off the screen"))
        .await;
    browser.click("#wallet-screen-written").await;
    browser
        .text_where("#wallet-done-text", |t| t.contains("set up"))
        .await;
    let screen = block_in_place(|| node.status().unwrap())["display"]["screen"].clone();
    assert!(
        !screen.as_str().unwrap().starts_with("Seed"),
        "the words left the screen: {screen}"
    );
    browser.close().await;
}
