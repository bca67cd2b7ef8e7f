//! The web page as a user sees it, in headless Chromium: first-time setup with the code
//! from the box, the dashboard following the chain, the screen mirror and its keys,
//! logging out and in, and shutting the box down.

mod common;

use common::browser::Browser;
use common::*;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_watch_the_chain_press_keys_and_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.first_boot_password = false;
    config.panel = "simulated";
    let mut node = Plugnode::start(&config);
    let url = format!("http://{}/", node.web);
    block_in_place(|| wait_for("the web page", TIMEOUT, || http(node.web, "GET", "/", None)));

    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    // The box's Content-Security-Policy allows only the page's own files: anything the
    // page does against it from here on is recorded, and must not happen.
    browser
        .eval(
            "window.cspViolations = []; \
             document.addEventListener('securitypolicyviolation', \
               (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)); \
             return 0;",
        )
        .await;

    // An unclaimed box asks for the setup code and a new password.
    browser.visible("#setup-form").await;
    let setup_code = std::fs::read_to_string(node.data_dir.join("secrets/setup-code")).unwrap();
    browser.type_into("#setup-code", setup_code.trim()).await;
    browser
        .type_into("#setup-password", "my box password")
        .await;
    browser.type_into("#setup-repeat", "my box passwort").await;
    browser.click("#setup-form button[type=submit]").await;
    browser
        .text_where("#setup-error", |t| t.contains("differ"))
        .await;
    browser.type_into("#setup-repeat", "my box password").await;
    browser.click("#setup-form button[type=submit]").await;

    // The dashboard follows bitcoind.
    browser.visible("#dashboard").await;
    browser.text_where("#blocks", |t| t == "0").await;
    block_in_place(|| {
        // The test talks to the API with its own login.
        node.set_password("my box password");
        node.mine(3);
    });
    browser.text_where("#blocks", |t| t == "3").await;
    browser
        .text_where("#bitcoind-state", |t| t == "Ready")
        .await;
    browser.text_where("#network", |t| t == "regtest").await;

    // The screen mirror shows the simulated panel, and its keys move between screens.
    let screen = browser.visible("#screen").await;
    let width = browser
        .eval(
            "const i = document.getElementById('screen'); return i.complete ? i.naturalWidth : 0;",
        )
        .await;
    assert!(width == 264 || width == 0, "{width}");
    let _ = screen;
    let screen_name = || {
        block_in_place(|| {
            node.status()
                .and_then(|s| s["display"]["screen"].as_str().map(str::to_string))
        })
    };
    let before = screen_name().unwrap();
    browser.click("#keys button[data-key='1']").await;
    block_in_place(|| {
        wait_for("KEY1 to change the screen", TIMEOUT, || {
            screen_name().filter(|now| *now != before)
        })
    });
    let width = browser
        .eval("const i = document.getElementById('screen'); return i.naturalWidth;")
        .await;
    assert_eq!(width, 264, "the mirror shows the 2.7\" panel's picture");

    let violations = browser.eval("return window.cspViolations;").await;
    assert_eq!(violations, serde_json::json!([]), "the page breaks its CSP");

    // Log out, fail once, log in.
    browser.click("#logout").await;
    browser.visible("#login-form").await;
    browser.type_into("#login-password", "wrong password").await;
    browser.click("#login-form button[type=submit]").await;
    browser
        .text_where("#login-error", |t| t.contains("Wrong password"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    browser
        .type_into("#login-password", "my box password")
        .await;
    browser.click("#login-form button[type=submit]").await;
    browser.visible("#dashboard").await;

    // Shut down: confirm the question, and the box stops cleanly.
    browser.click("#shutdown").await;
    browser.client.accept_alert().await.unwrap();
    browser
        .text_where("#shutdown-note", |t| t.contains("safe to unplug"))
        .await;
    let exit = block_in_place(|| node.wait_exit(TIMEOUT));
    assert_eq!(exit.code(), Some(100));
    browser.close().await;
}
