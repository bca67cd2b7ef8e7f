//! System → Update on the page, in headless Chromium, with a stand-in for the root update
//! helper (`common/update_helper.rs`): a bundle file chosen on the page is refused with the
//! box's words when it is not signed by the project key; a good one shows its version,
//! signer and notes before anything is written; Install asks for the password, and the
//! page follows the box into its restart.

mod common;

use common::browser::{open_page, Browser};
use common::update_helper::{plain_slots, update_box};
use common::*;
use std::time::Duration;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_chosen_on_the_page_is_checked_then_installed_and_the_page_follows_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (config, helper) = update_box(dir.path(), "0.3.0", plain_slots("0.3.0"));
    let mut node = Plugnode::start(&config);
    let browser = Browser::start().await;
    open_page(&browser, node.web).await;
    browser
        .eval("document.getElementById('update-card').scrollIntoView(); return 0;")
        .await;
    browser
        .text_where("#update-version", |t| t == "0.3.0")
        .await;
    browser.text_where("#update-slot", |t| t == "A").await;
    browser.visible("#update-choose").await;

    // A bundle signed by someone else: refused in the box's words, nothing to install.
    let bad = dir.path().join("plugnode-0.4.0-evil.raucb");
    std::fs::write(&bad, "other-key").unwrap();
    choose_file(&browser, &bad).await;
    browser.click("#update-upload").await;
    let error = browser.text_where("#update-error", |t| !t.is_empty()).await;
    assert!(
        error.contains("not signed by plugnode's update key"),
        "{error}"
    );
    assert!(error.contains("bad signature"), "the kind, small: {error}");
    browser.snapshot("update-refused").await;

    // The real one: version, verified signer and notes, before anything is written.
    let arch = plugnode::update::release::this_architecture();
    let good = dir.path().join("plugnode-0.4.0.raucb");
    std::fs::write(&good, format!("good 0.4.0 {arch} 1")).unwrap();
    choose_file(&browser, &good).await;
    browser.click("#update-upload").await;
    browser.visible("#update-bundle").await;
    browser
        .text_where("#update-bundle-version", |t| t == "0.4.0")
        .await;
    let signer = browser
        .text_where("#update-bundle-signer", |t| !t.is_empty())
        .await;
    assert!(signer.contains("plugnode test update key"), "{signer}");
    assert!(signer.contains("signature verified"), "{signer}");
    browser
        .text_where("#update-bundle-notes", |t| t == "Faster payments.")
        .await;
    assert!(!helper.requests().iter().any(|r| r.starts_with("install")));
    browser.snapshot("update-ready").await;

    // Install: the password again, then the progress, then the restart.
    browser.click("#update-install").await;
    browser
        .text_where_with_password("#update-state", Duration::from_secs(60), PASSWORD, |t| {
            t.contains("0.4.0 is written") || t.contains("Restarting into 0.4.0")
        })
        .await;
    let exit = block_in_place(|| node.wait_exit(TIMEOUT));
    assert_eq!(exit.code(), Some(plugnode::shutdown::EXIT_UPDATE as i32));
    // The box is gone (restarting): the page says so instead of a connection error.
    browser
        .text_where("#update-state", |t| t.contains("Restarting into 0.4.0"))
        .await;
    browser
        .text_where("#connection", |t| t.contains("restarting into its update"))
        .await;
    browser.snapshot("update-restarting").await;
    assert!(helper
        .requests()
        .contains(&"install upload.raucb".to_string()));
    browser.close().await;
}

/// Chooses `path` in the page's bundle file field, as a user does in the file dialog.
async fn choose_file(browser: &Browser, path: &std::path::Path) {
    let field = browser.visible("#update-file").await;
    field.send_keys(&path.display().to_string()).await.unwrap();
}
