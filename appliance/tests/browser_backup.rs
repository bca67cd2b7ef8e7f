//! The USB backup through the web page, in headless Chromium, with real sticks (ext4 or
//! blank images on loop devices; tests run as root, as CI does): the Backup card mirroring,
//! Eject and "safe to remove"; a blank stick prepared after the page's question; a box with
//! a new SD card restored from its stick through the setup wizard; and the demo's buttons
//! that plug its stick (a folder) in and pull it out.

mod common;

use common::browser::{claim, open_page, Browser};
use common::lightning::*;
use common::stick::*;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::task::block_in_place;

fn backup_state(status: &Value) -> String {
    status["backup"]["state"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn show_card(browser: &Browser, id: &str) {
    browser
        .eval(&format!(
            "document.getElementById('{id}').scrollIntoView({{block: 'start'}}); return 0;"
        ))
        .await;
}

/// The status of the backup card as the page shows it: (state, label).
async fn backup_card_state(browser: &Browser) -> String {
    browser
        .eval("return document.getElementById('backup-state').dataset.state || '';")
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Waits until the Backup card shows `state` (the status model's name); returns its label.
async fn wait_card(browser: &Browser, state: &str, timeout: Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    while backup_card_state(browser).await != state {
        assert!(
            std::time::Instant::now() < deadline,
            "the Backup card never showed {state}; it shows {:?}: {:?}",
            backup_card_state(browser).await,
            browser
                .eval("return document.getElementById('backup-card').innerText;")
                .await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.text_where("#backup-state", |t| !t.is_empty()).await
}

/// A box without a Lightning node (backups need only its wallet), with `stick` as its
/// backup stick in `mode`.
fn backup_box(
    dir: &Path,
    mode: &'static str,
    stick: &LoopStick,
    panel: &'static str,
) -> (Plugnode, TestConfig) {
    let mut config = TestConfig::new(dir);
    config.backup = Some((mode, stick.link.clone()));
    config.panel = panel;
    let node = Plugnode::start(&config);
    block_in_place(|| {
        node.wait_status("the web page", |_| true);
        let (code, answer) = node
            .api("POST", "/api/wallet/create", Some("{}"))
            .expect("the wallet API answers");
        assert_eq!(code, 200, "{answer}");
    });
    (node, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_card_shows_the_mirror_and_ejects_the_stick() {
    let dir = tempfile::tempdir().unwrap();
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[("notes.txt", b"buy milk")]);
    stick.plug_in();
    let (node, config) = backup_box(dir.path(), "keep-attached", &stick, "simulated");

    let browser = Browser::start().await;
    open_page(&browser, node.web).await;
    let label = wait_card(&browser, "mirroring", TIMEOUT).await;
    assert_eq!(label, "Backed up");
    let meaning = browser
        .text_where("#backup-meaning", |t| !t.is_empty())
        .await;
    assert!(
        meaning.contains("Every channel update is on the stick before it counts"),
        "{meaning}"
    );
    assert_eq!(
        browser.text_where("#backup-mode", |t| t != "–").await,
        "Keep attached (live mirror)"
    );
    browser
        .text_where("#backup-last", |t| t == "just now" || t.ends_with("ago"))
        .await;
    browser.text_where("#backup-generation", |t| t != "–").await;
    let stick_id = browser.text_where("#backup-stick", |t| t != "–").await;
    let status = block_in_place(|| node.status().unwrap());
    assert_eq!(
        Some(stick_id.as_str()),
        status["backup"]["stick_id"].as_str()
    );
    show_card(&browser, "backup-card").await;
    browser.snapshot("backup-mirroring").await;
    // A real box has no demo stick to plug in.
    let demo_hidden = browser
        .eval("return document.getElementById('demo-stick').hidden;")
        .await;
    assert_eq!(demo_hidden, true);
    let (code, _) = block_in_place(|| node.api("GET", "/api/demo/stick", None)).unwrap();
    assert_eq!(code, 404);

    // Eject from the page: unmounted, and the page says so.
    browser.click("#backup-eject").await;
    browser
        .text_where("#backup-result", |t| t.contains("you can pull it out"))
        .await;
    let label = wait_card(&browser, "safe_to_remove", TIMEOUT).await;
    assert_eq!(label, "Safe to remove");
    assert!(!plugnode::backup::mount::is_mounted(&config.mount_dir()));
    let eject_shown = browser
        .eval("return !document.getElementById('backup-eject').hidden;")
        .await;
    assert_eq!(eject_shown, false, "nothing to eject any more");
    show_card(&browser, "backup-card").await;
    browser.snapshot("backup-ejected").await;

    // Pulled out: the page says the channel state is on the SD card only.
    stick.take_out();
    let label = wait_card(&browser, "no_stick", TIMEOUT).await;
    assert_eq!(label, "Only on the SD card");
    browser
        .text_where("#backup-meaning", |t| t.contains("plug a USB stick in"))
        .await;
    assert_eq!(
        browser
            .eval("return document.getElementById('backup-result').hidden;")
            .await,
        true,
        "the eject message leaves with the stick"
    );
    // Plugged in again: mirrored again at once.
    stick.plug_in();
    wait_card(&browser, "mirroring", TIMEOUT).await;

    // The words again, on the box's screen only (this box has one).
    browser.click("#words-again-button").await;
    browser
        .text_where("#words-again-result", |t| t.contains("box's screen"))
        .await;
    block_in_place(|| {
        node.wait_status("the words on the screen", |s| {
            s["display"]["screen"]
                .as_str()
                .is_some_and(|screen| screen.starts_with("Seed"))
        })
    });
    browser.close().await;

    // On a phone.
    let phone = Browser::start_sized(390, 844).await;
    open_page(&phone, node.web).await;
    wait_card(&phone, "mirroring", TIMEOUT).await;
    show_card(&phone, "backup-card").await;
    phone.snapshot("backup-mirroring-phone").await;
    phone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_stick_is_prepared_after_the_page_asks() {
    let dir = tempfile::tempdir().unwrap();
    let blank = LoopStick::raw(dir.path(), "blank", &vec![0u8; 32 * 1024 * 1024]);
    blank.plug_in();
    let (node, _config) = backup_box(dir.path(), "keep-attached", &blank, "none");

    let browser = Browser::start_sized(390, 844).await;
    open_page(&browser, node.web).await;
    let label = wait_card(&browser, "needs_confirmation", TIMEOUT).await;
    assert_eq!(label, "Needs your OK");
    browser
        .text_where("#backup-confirm-reason", |t| t.contains("empty"))
        .await;
    let stick = browser
        .text_where("#backup-confirm-stick", |t| !t.is_empty())
        .await;
    assert!(stick.starts_with("Stick: "), "{stick}");
    show_card(&browser, "backup-card").await;
    browser.snapshot("backup-needs-confirmation-phone").await;

    // The question says the stick will be formatted; Cancel leaves it alone.
    browser.click("#backup-prepare").await;
    let question = browser
        .text_where("#prepare-dialog", |t| !t.is_empty())
        .await;
    assert!(question.contains("will be formatted"), "{question}");
    assert!(question.contains(&stick), "names the stick: {question}");
    browser.snapshot("backup-prepare-question-phone").await;
    browser.click("#prepare-cancel").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = block_in_place(|| node.status().unwrap());
    assert_eq!(backup_state(&status), "needs_confirmation");
    assert!(
        std::fs::read(&blank.image).unwrap().iter().all(|b| *b == 0),
        "cancelled: the stick is untouched"
    );

    // Confirmed: prepared and mirrored.
    browser.click("#backup-prepare").await;
    browser.click("#prepare-confirm").await;
    let label = wait_card(&browser, "mirroring", TIMEOUT).await;
    assert_eq!(label, "Backed up");
    let open = browser
        .eval("return document.getElementById('prepare-dialog').open;")
        .await;
    assert_eq!(open, false);
    show_card(&browser, "backup-card").await;
    browser.snapshot("backup-prepared-phone").await;
    browser.close().await;
}

fn pay(from: &LnBox, to: &LnBox, sat: u64) {
    let (code, payment) = from.pay(&to.invoice(Some(sat * 1000), "backup"), None);
    assert_eq!(code, 200, "{payment}");
    assert_eq!(payment["status"], "succeeded", "{payment}");
}

fn wait_backup(ln: &LnBox, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    ln.node.wait_status_for(what, LN_TIMEOUT, check)
}

/// Box A (snapshot mode) with a channel to B, and two snapshots on its stick a payment
/// apart (the older one stale); then A's SD card dies: A starts again on an empty data
/// directory, unclaimed, with the stick pulled out.
struct NewSdCard {
    chain: Chain,
    a: LnBox,
    b: LnBox,
    words: String,
    node_id: String,
    old: u64,
    newest: u64,
    stick: LoopStick,
}

fn two_snapshots_then_a_new_sd_card(dir: &Path) -> NewSdCard {
    let stick = LoopStick::ext4(dir, "stick", 24, &[]);
    let chain = Chain::start(dir);
    let mut config = TestConfig::lightning_box(&dir.join("a"), &chain.sim);
    config.backup = Some(("snapshot", stick.link.clone()));
    let ((mut a, words), b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| LnBox::start_with(config));
        let b = scope.spawn(|| LnBox::start(&dir.join("b"), &chain));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.fund(&chain);
    open_channel(&chain, &a, &b, 500_000, 0);
    let node_id = a.node_id();

    stick.plug_in();
    let old = wait_backup(&a, "the first snapshot", |s| {
        backup_state(s) == "safe_to_remove"
    })["backup"]["generation"]
        .as_u64()
        .unwrap();
    stick.take_out();
    wait_backup(&a, "the stick out", |s| backup_state(s) == "no_stick");
    pay(&a, &b, 20_000);
    std::thread::sleep(Duration::from_secs(1));
    stick.plug_in();
    let newest = wait_backup(&a, "the second snapshot", |s| {
        backup_state(s) == "safe_to_remove" && s["backup"]["generation"].as_u64() > Some(old)
    })["backup"]["generation"]
        .as_u64()
        .unwrap();
    stick.take_out();

    // The SD card dies: a new one, set up from the web page with the setup code.
    a.node.signal(nix::sys::signal::Signal::SIGTERM);
    a.node.wait_exit(TIMEOUT);
    std::fs::remove_dir_all(&a.node.data_dir).unwrap();
    a.config.first_boot_password = false;
    a.node = Plugnode::start(&a.config);
    NewSdCard {
        chain,
        a,
        b,
        words,
        node_id,
        old,
        newest,
        stick,
    }
}

/// The page shows generations grouped by thousands ("1 234").
fn ungrouped(text: &str) -> String {
    text.replace('\u{202f}', "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_with_a_new_sd_card_is_restored_from_its_stick_through_the_wizard() {
    let dir = tempfile::tempdir().unwrap();
    let NewSdCard {
        chain,
        a,
        b,
        words,
        node_id,
        old,
        newest,
        stick,
    } = block_in_place(|| two_snapshots_then_a_new_sd_card(dir.path()));

    // On a phone, as a user with a new SD card would.
    let browser = Browser::start_sized(390, 844).await;
    claim(&browser, a.node.web, &a.config.data_dir().join("secrets")).await;
    browser.visible("#wallet-choose").await;
    browser.snapshot("restore-choose-phone").await;
    browser.click("#wallet-usb-open").await;
    // No stick yet: the page asks for it, then notices it.
    let asking = browser
        .text_where("#usb-plug", |t| t.contains("notices it by itself"))
        .await;
    assert!(asking.contains("plug in the stick"), "{asking}");
    browser.snapshot("restore-usb-plug-in-phone").await;
    stick.plug_in();
    let listed = ungrouped(
        &browser
            .text_where("#usb-copies-list", |t| t.matches("Node ").count() == 2)
            .await,
    );
    assert!(
        listed.contains(&format!("Node {}…", &node_id[..8])),
        "{listed}"
    );
    let first = ungrouped(
        &browser
            .text_where("#usb-copies-list li:first-child", |t| !t.is_empty())
            .await,
    );
    assert!(
        first.contains(&format!("Generation {newest}")) && first.contains("newest"),
        "{first}"
    );
    assert!(first.contains("snapshot"), "{first}");
    assert!(listed.contains(&format!("Generation {old}")), "{listed}");

    // Minutes pass: "… ago" moves on while the radio buttons stay the very elements the
    // user is about to press (a redraw under a finger loses the press).
    browser
        .eval(
            "document.querySelector('#usb-copies-list input').dataset.kept = 'yes';
             const realNow = Date.now; Date.now = () => realNow() + 3 * 60000;
             window.restoreNow = () => { Date.now = realNow; };
             return null;",
        )
        .await;
    browser
        .text_where("#usb-copies-list li:first-child .copy-age", |t| {
            t.contains("minutes ago")
        })
        .await;
    let kept = browser
        .eval("window.restoreNow(); return document.querySelector('#usb-copies-list input').dataset.kept;")
        .await;
    assert_eq!(kept, "yes", "the list was redrawn though no copy changed");

    // A mistyped word is named.
    let mut typo: Vec<&str> = words.split(' ').collect();
    typo[4] = "bitcoinz";
    browser.type_into("#usb-words", &typo.join(" ")).await;
    browser
        .text_where("#usb-words-count", |t| t == "24 of 24 words")
        .await;
    browser.click("#usb-restore").await;
    // Restoring is dangerous: the page asks for the password again unless it was set or
    // typed within 5 minutes (here: when the box was claimed).
    let error = browser
        .text_where_with_password("#usb-error", TIMEOUT, PASSWORD, |t| !t.is_empty())
        .await;
    assert!(error.to_lowercase().contains("word 5"), "{error}");
    let kind = browser
        .eval("return document.getElementById('usb-error').dataset.kind;")
        .await;
    assert_eq!(kind, "wrong_words");
    browser.snapshot("restore-usb-wrong-word-phone").await;

    // The right words with the older copy: the page explains recovery mode and offers it.
    browser.type_into("#usb-words", &words).await;
    browser
        .click(&format!(
            "#usb-copies-list li[data-generation='{old}'] input"
        ))
        .await;
    browser.click("#usb-restore").await;
    browser
        .text_where_with_password("#usb-error", TIMEOUT, PASSWORD, |t| {
            t.contains("older than the newest")
        })
        .await;
    browser.visible("#usb-stale").await;
    let explained = browser.text_where("#usb-stale", |t| !t.is_empty()).await;
    assert!(
        explained.contains("recovery mode") && explained.contains("on-chain"),
        "{explained}"
    );
    browser
        .text_where("#usb-insist", |t| t == "Restore anyway (recovery mode)")
        .await;
    browser.snapshot("restore-usb-stale-phone").await;
    assert_eq!(
        block_in_place(|| a.get("/api/wallet")).1["has_seed"],
        false,
        "nothing restored yet"
    );

    // The newest copy instead: restored; the page goes to the dashboard with the node id.
    browser
        .click(&format!(
            "#usb-copies-list li[data-generation='{newest}'] input"
        ))
        .await;
    let stale_hidden = browser
        .eval("return document.getElementById('usb-stale').hidden;")
        .await;
    assert_eq!(stale_hidden, true, "the choice changed: the offer is gone");
    browser.click("#usb-restore").await;
    let restored = browser
        .text_where_with_password("#lightning-restored", TIMEOUT, PASSWORD, |t| {
            t.contains(&node_id)
        })
        .await;
    assert!(restored.contains("with your channels"), "{restored}");
    assert_eq!(
        browser
            .eval("return document.getElementById('wallet-card').hidden;")
            .await,
        true
    );
    browser.snapshot("restore-usb-restored-phone").await;
    browser
        .text_where_for("#lightning-state", LN_TIMEOUT, |t| t == "Running")
        .await;
    // (In the closed "Node details".)
    let shown_id = browser
        .eval("return document.getElementById('node-id').textContent;")
        .await;
    assert_eq!(shown_id, json!(node_id));
    assert_eq!(
        browser
            .eval("return document.getElementById('lightning-recovery').hidden;")
            .await,
        true,
        "the newest copy: no recovery mode"
    );
    browser
        .text_where_for("#channels-list .channel-state", LN_TIMEOUT, |t| t == "open")
        .await;
    // The stick is written again with the restored wallet.
    let label = wait_card(&browser, "safe_to_remove", LN_TIMEOUT).await;
    assert_eq!(label, "Backup OK: safe to remove");
    browser.snapshot("restore-usb-running-phone").await;

    // Withdraw part of the on-chain funds to B, with the page's confirmation.
    browser
        .text_where_for("#balance-onchain", LN_TIMEOUT, |t| {
            t.chars().filter(char::is_ascii_digit).count() > 7
        })
        .await;
    let to = block_in_place(|| b.onchain_address());
    browser.click("[data-panel='withdraw-panel']").await;
    browser.type_into("#withdraw-address", &to).await;
    browser.type_into("#withdraw-amount", "100 000").await;
    browser.snapshot("withdraw-form-phone").await;
    browser.click("#withdraw-form button[type=submit]").await;
    let summary = browser
        .text_where("#withdraw-summary", |t| !t.is_empty())
        .await;
    assert!(
        summary
            .replace('\u{202f}', " ")
            .contains("Send 100 000 sat"),
        "{summary}"
    );
    browser
        .text_where("#withdraw-confirm-address", |t| t == to)
        .await;
    browser.snapshot("withdraw-confirm-phone").await;
    browser.click("#withdraw-send").await;
    let txid = browser
        .text_where_with_password("#withdraw-txid", LN_TIMEOUT, PASSWORD, |t| t.len() == 64)
        .await;
    let mempool = block_in_place(|| {
        chain
            .sim
            .rpc()
            .call("getrawmempool", json!([]))
            .expect("the mempool answers")
    });
    assert!(
        mempool
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == &json!(txid)),
        "{txid} is in the mempool: {mempool}"
    );
    browser.snapshot("withdraw-sent-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_is_restored_only_when_insisted_on_in_recovery_mode() {
    let dir = tempfile::tempdir().unwrap();
    let setup = block_in_place(|| two_snapshots_then_a_new_sd_card(dir.path()));
    setup.stick.plug_in();
    let browser = Browser::start().await;
    claim(
        &browser,
        setup.a.node.web,
        &setup.a.config.data_dir().join("secrets"),
    )
    .await;
    browser.click("#wallet-usb-open").await;
    browser
        .text_where("#usb-copies-list", |t| t.matches("Node ").count() == 2)
        .await;
    browser.type_into("#usb-words", &setup.words).await;
    let old = setup.old;
    browser
        .click(&format!(
            "#usb-copies-list li[data-generation='{old}'] input"
        ))
        .await;
    browser.click("#usb-restore").await;
    browser.visible("#usb-stale").await;
    browser.snapshot("restore-usb-stale").await;

    // Insisting sends the same words and copy again: restored in recovery mode.
    browser.click("#usb-insist").await;
    let restored = ungrouped(
        &browser
            .text_where("#lightning-restored", |t| t.contains(&setup.node_id))
            .await,
    );
    assert!(
        restored.contains(&format!("generation {old}")) && restored.contains("recovery mode"),
        "{restored}"
    );
    browser
        .text_where_for("#lightning-state", LN_TIMEOUT, |t| t == "Running")
        .await;
    let notice = browser
        .text_where("#lightning-recovery", |t| !t.is_empty())
        .await;
    assert!(notice.contains("closed by their peers"), "{notice}");
    let status = block_in_place(|| setup.a.status());
    assert_eq!(status["lightning"]["recovery_mode"], true);
    assert_eq!(status["lightning"]["node_id"], json!(setup.node_id));
    browser.snapshot("restore-usb-recovery").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plugs_its_stick_in_and_pulls_it_out_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let browser = Browser::start().await;
    claim(&browser, demo.web, &demo.dir.join("secrets")).await;

    // The demo's stick starts plugged in: once the demo has made its wallet, the box
    // mirrors to it by itself.
    browser
        .text_where("#demo-stick-state", |t| t == "It is plugged in.")
        .await;
    wait_card(&browser, "mirroring", LN_TIMEOUT).await;
    show_card(&browser, "backup-card").await;
    browser.snapshot("demo-mirroring").await;
    assert!(demo.dir.join("usb-stick/plugnode-backup").is_dir());

    // Pulled out without Eject: the page says what happened and what to do.
    browser.click("#demo-stick-out").await;
    wait_card(&browser, "failed", TIMEOUT).await;
    browser
        .text_where("#backup-failure-message", |t| t.contains("without Eject"))
        .await;
    browser
        .text_where("#backup-failure-todo", |t| {
            t.contains("Plug the stick in again")
        })
        .await;
    browser
        .visible("#alerts .alert[data-kind='backup_failed']")
        .await;
    show_card(&browser, "backup-card").await;
    browser.snapshot("demo-pulled-out").await;
    assert!(!demo.dir.join("usb-stick").exists());
    assert!(
        demo.dir
            .join("usb-stick.unplugged/plugnode-backup")
            .is_dir(),
        "a stick pulled out keeps its files"
    );

    // In again: the stick kept its backups and is brought up to date.
    browser.click("#demo-stick-in").await;
    wait_card(&browser, "mirroring", TIMEOUT).await;
    let copies = plugnode::backup::copies::find_copies(&demo.dir.join("usb-stick/plugnode-backup"));
    assert!(!copies.is_empty());
    browser.close().await;
    drop(demo);
}
