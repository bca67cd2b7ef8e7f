//! System updates as plugnode sees them, with the real `plugnode run` and a stand-in for
//! the image's root helper (`systemd/update-helper`, whose own checks of real RAUC bundles
//! are tested in `update_bundles.rs`, and the whole update on the image in
//! `image/update-test.sh`). The stand-in answers the helper's protocol from what the
//! uploaded file says, and records every request.
//!
//! Checked here: every refusal is a clear error that leaves no bundle behind; Install needs
//! the password; a written update stops the box in order and exits with 101 (the unit
//! then reboots into the new slot); a trial boot is marked good only once bitcoind,
//! Lightning and the backup are healthy, and then says "Updated to X"; a rolled-back
//! update says so with its reason; data of a newer format is never started on.

mod common;

use common::update_helper::update_box;
use common::*;
use serde_json::Value;

/// Uploads `content` as the bundle; the status code and the answer.
fn upload(box_: &Plugnode, content: &str) -> (u16, Value) {
    let (code, body) = box_
        .api("POST", "/api/system/update/bundle", Some(content))
        .expect("the box answers");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn update_state(box_: &Plugnode) -> Value {
    let (code, body) = box_.api("GET", "/api/system/update", None).unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn alert_titles(status: &Value) -> Vec<String> {
    status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_bundles_are_refused_and_a_good_one_installs_after_an_ordered_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (config, helper) = update_box(
        dir.path(),
        "0.3.0",
        serde_json::json!({
            "booted": "A", "default": "A", "trial": false,
            "slots": {"A": {"version": "0.3.0", "state": "good"}, "B": {"version": "0.4.0", "state": "bad"}},
            "last_failed_trial": {"version": "0.4.0", "back_on": "0.3.0",
                "reason": "plugnode stopped at start: exit status 1 (exit-code)", "at": 1_796_000_000u64}
        }),
    );
    let mut box_ = Plugnode::start(&config);
    let status = box_.wait_status("running", |s| s["phase"] == "running");

    // The last update did not start: said on the page (and the screen) with its reason.
    let state = update_state(&box_);
    assert_eq!(state["running_version"], "0.3.0", "{state}");
    assert_eq!(state["slot"], "A");
    assert_eq!(state["state"]["state"], "idle");
    assert_eq!(state["last_result"]["kind"], "rolled_back", "{state}");
    let rolled_back = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "update_rolled_back")
        .expect("an alert for the rollback");
    let message = rolled_back["message"].as_str().unwrap();
    assert!(
        message.contains("The update to 0.4.0 did not start; you are back on 0.3.0"),
        "{message}"
    );
    // The helper's reason is a phrase (as the real one sends it); the sentence after it
    // must not run on.
    assert!(
        message.contains("exit status 1 (exit-code). Nothing of your channels"),
        "{message}"
    );

    // Nothing checked yet: Install has nothing to install.
    let (code, body) = box_
        .api("POST", "/api/system/update/install", Some("{}"))
        .unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("no_bundle"), "{body}");

    // Every bad bundle: a clear refusal, nothing kept.
    let arch = plugnode::update::release::this_architecture();
    for (content, code, kind, words) in [
        (
            "truncated",
            422,
            "not_a_bundle",
            "not a complete plugnode update bundle",
        ),
        ("unsigned", 422, "not_a_bundle", "Download the bundle again"),
        (
            "other-key",
            422,
            "bad_signature",
            "not signed by plugnode's update key",
        ),
        (
            "armhf",
            422,
            "incompatible",
            "another kind of system (plugnode-rpi-armhf)",
        ),
        (
            "good 0.4.0 riscv64 1",
            422,
            "refused",
            "for riscv64 computers",
        ),
        (
            &format!("good 0.2.0 {arch} 0") as &str,
            422,
            "refused",
            "too old for this box's data",
        ),
        ("", 422, "not_a_bundle", "the upload was empty"),
    ] {
        let (answer_code, answer) = upload(&box_, content);
        assert_eq!(answer_code, code, "{content}: {answer}");
        assert_eq!(answer["kind"], kind, "{content}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(words), "{content}: {error}");
        assert!(
            !box_.data_dir.join("update/upload.raucb").exists(),
            "{content}: a refused bundle is not kept"
        );
        assert_eq!(update_state(&box_)["state"]["state"], "failed");
    }

    // A good one: its version, signer and notes before anything is written.
    let (code, answer) = upload(&box_, &format!("good 0.4.0 {arch} 1"));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], "0.4.0");
    assert_eq!(
        answer["signer"],
        "O = plugnode, CN = plugnode test update key"
    );
    assert_eq!(answer["notes"], "Faster payments.");
    let state = update_state(&box_);
    assert_eq!(state["state"]["state"], "ready", "{state}");
    assert!(
        !helper.requests().iter().any(|r| r.starts_with("install")),
        "nothing is installed by an upload"
    );

    // Install needs the password again: a wrong one installs nothing.
    let (code, body) = box_
        .api(
            "POST",
            "/api/system/update/install",
            Some(r#"{"password": "not the password"}"#),
        )
        .unwrap();
    assert!(code == 401 || code == 403, "{code}: {body}");
    assert!(!helper.requests().iter().any(|r| r.starts_with("install")));

    // The wrong password costs a short wait (the login throttle), then the right one works.
    let body = serde_json::json!({ "password": PASSWORD }).to_string();
    let (code, answer) = wait_for("the throttle to let the password through", TIMEOUT, || {
        let (code, answer) = box_
            .api("POST", "/api/system/update/install", Some(&body))
            .unwrap();
        (code != 429).then_some((code, answer))
    });
    assert_eq!(code, 202, "{answer}");
    // Written: plugnode stops in order and exits with 101, and the unit reboots.
    let exit = box_.wait_exit(TIMEOUT);
    assert_eq!(
        exit.code(),
        Some(plugnode::shutdown::EXIT_UPDATE as i32),
        "{}",
        box_.log()
    );
    assert!(helper
        .requests()
        .contains(&"install upload.raucb".to_string()));
    let log = box_.log();
    let written = log.find("written to slot B").expect("the log says so");
    let stopped = log.find("plugnode stopped; safe to unplug").expect(&log);
    assert!(written < stopped, "the ordered stop comes after the write");
    assert!(
        log.contains("bitcoind accepted the stop request") && log.contains("bitcoind stopped ("),
        "bitcoind was stopped with its flush: {log}"
    );
    assert!(!log.contains("KILLING"), "{log}");
}

#[test]
fn a_trial_boot_is_marked_good_once_everything_proved_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (config, helper) = update_box(
        dir.path(),
        "0.4.0",
        serde_json::json!({
            "booted": "B", "default": "A", "trial": true,
            "slots": {"A": {"version": "0.3.0", "state": "good"}, "B": {"version": "0.4.0", "state": "good"}},
            "last_failed_trial": null
        }),
    );
    let mut box_ = Plugnode::start(&config);
    // On trial: the page says what it waits for; nothing is marked yet.
    let status = box_.wait_status("the trial", |s| s["update"]["state"]["state"] == "proving");
    assert!(alert_titles(&status).contains(&"Checking update 0.4.0".to_string()));
    assert!(!helper.requests().contains(&"mark-good".to_string()));
    // The data format is not moved during a trial.
    assert!(!box_.data_dir.join("data-format").exists());

    // bitcoind answers, Lightning and the backup are off in this box: proven after the
    // settle time.
    let status = box_.wait_status_for(
        "Updated to 0.4.0",
        TIMEOUT + plugnode::update::trial::SETTLE,
        |s| s["update"]["last_result"]["kind"] == "updated",
    );
    assert!(helper.requests().contains(&"mark-good".to_string()));
    assert_eq!(status["update"]["last_result"]["version"], "0.4.0");
    assert_eq!(status["update"]["last_result"]["from"], "0.3.0");
    assert_eq!(status["update"]["state"]["state"], "idle");
    assert!(alert_titles(&status).contains(&"Updated to 0.4.0".to_string()));
    assert_eq!(
        std::fs::read_to_string(box_.data_dir.join("data-format"))
            .unwrap()
            .trim(),
        plugnode::update::DATA_FORMAT.to_string(),
        "recorded once proven"
    );

    // Dismissed: no longer an alert, still on the page.
    let (code, _) = box_
        .api("POST", "/api/system/update/dismiss", Some("{}"))
        .unwrap();
    assert_eq!(code, 200);
    let status = box_.status().unwrap();
    assert!(!alert_titles(&status).contains(&"Updated to 0.4.0".to_string()));
    assert_eq!(update_state(&box_)["last_result"]["kind"], "updated");

    // Proven, so the next update may come at once (it did not before: the trial was
    // remembered from the start).
    let arch = plugnode::update::release::this_architecture();
    let (code, answer) = upload(&box_, &format!("good 0.5.0 {arch} 1"));
    assert_eq!(code, 200, "{answer}");
    let body = serde_json::json!({ "password": PASSWORD }).to_string();
    let (code, answer) = box_
        .api("POST", "/api/system/update/install", Some(&body))
        .unwrap();
    assert_eq!(code, 202, "{answer}");
    let exit = box_.wait_exit(TIMEOUT);
    assert_eq!(exit.code(), Some(plugnode::shutdown::EXIT_UPDATE as i32));
}

#[test]
fn data_of_a_newer_format_is_never_started_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    std::fs::create_dir_all(config.data_dir()).unwrap();
    let format = config.data_dir().join("data-format");
    std::fs::write(&format, "2\n").unwrap();
    let box_ = Plugnode::start(&config);
    let diagnosis = wait_for("the diagnostic page", TIMEOUT, || {
        let (code, body) = http(box_.web, "GET", "/api/diagnostic", None)?;
        let answer: Value = serde_json::from_str(&body).ok()?;
        (code == 200 && answer["state"] == "diagnostic").then_some(answer)
    });
    assert_eq!(diagnosis["problem"], "The data is from a newer plugnode");
    let detail = diagnosis["detail"].as_str().unwrap();
    assert!(detail.contains("data format 2"), "{detail}");
    assert!(
        detail.contains("Install the newer version again"),
        "{detail}"
    );
    // Nothing was touched: no Lightning store, no bitcoind, the format file as it was.
    assert!(!config.data_dir().join("lightning").exists());
    assert!(box_.bitcoind_pid().is_none());
    assert_eq!(std::fs::read_to_string(&format).unwrap(), "2\n");
}

#[test]
fn without_ab_slots_updates_say_how_to_update_instead() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    let box_ = Plugnode::start(&config);
    box_.wait_status("running", |s| s["phase"] == "running");
    assert_eq!(update_state(&box_)["state"]["state"], "unavailable");
    let (code, answer) = upload(&box_, "good 0.4.0 arm64 1");
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["kind"], "unavailable");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("flash the new SD-card image"));
    // A download address that is not set: the same clear refusal.
    let (code, body) = box_
        .api("POST", "/api/system/update/download", Some("{}"))
        .unwrap();
    assert_eq!(code, 409, "{body}");
}

#[test]
fn install_waits_for_key2_on_a_box_with_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.panel = "simulated";
    let helper = common::update_helper::with_updates(
        &mut config,
        "0.3.0",
        common::update_helper::plain_slots("0.3.0"),
    );
    let mut box_ = Plugnode::start(&config);
    box_.wait_status("running", |s| s["phase"] == "running");
    let arch = plugnode::update::release::this_architecture();
    let (code, answer) = upload(&box_, &format!("good 0.4.0 {arch} 1"));
    assert_eq!(code, 200, "{answer}");
    let screen = |box_: &Plugnode| {
        box_.status().unwrap()["display"]["screen"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let install = |box_: &Plugnode| {
        let web = box_.web;
        let token = box_.token().unwrap();
        let request = serde_json::json!({ "password": PASSWORD }).to_string();
        std::thread::spawn(move || {
            http_with_token(
                web,
                "POST",
                "/api/system/update/install",
                Some(&request),
                Some(&token),
            )
            .unwrap()
        })
    };
    let press = |box_: &Plugnode, key: u8| {
        let (code, body) = box_
            .api(
                "POST",
                "/api/display/key",
                Some(&serde_json::json!({ "key": key }).to_string()),
            )
            .unwrap();
        assert!(code < 300, "{body}");
    };

    // KEY3 refuses: nothing is installed.
    let installing = install(&box_);
    wait_for("the question on the screen", TIMEOUT, || {
        (screen(&box_) == "UpdateConfirm").then_some(())
    });
    assert_eq!(
        update_state(&box_)["state"]["state"],
        "waiting_for_key",
        "the page says to press KEY2"
    );
    press(&box_, 3);
    let (code, answer) = installing.join().unwrap();
    assert_eq!(code, 409, "{answer}");
    assert!(answer.contains("refused_on_box"), "{answer}");
    assert!(!helper.requests().iter().any(|r| r.starts_with("install")));
    assert_eq!(update_state(&box_)["state"]["state"], "ready");

    // KEY2 installs; the box stops in order and exits into the restart.
    let installing = install(&box_);
    wait_for("the question on the screen", TIMEOUT, || {
        (screen(&box_) == "UpdateConfirm").then_some(())
    });
    press(&box_, 2);
    let (code, answer) = installing.join().unwrap();
    assert_eq!(code, 202, "{answer}");
    let exit = box_.wait_exit(TIMEOUT);
    assert_eq!(exit.code(), Some(plugnode::shutdown::EXIT_UPDATE as i32));
    assert!(helper
        .requests()
        .contains(&"install upload.raucb".to_string()));
}

/// Serves `body` at every path with `status`, over plain HTTP on loopback; returns the
/// address.
fn serve_once_per_request(status: u16, body: String) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[test]
fn a_bundle_is_downloaded_from_the_configured_address_and_checked_like_an_upload() {
    let dir = tempfile::tempdir().unwrap();
    let arch = plugnode::update::release::this_architecture();
    let good = serve_once_per_request(200, format!("good 0.4.0 {arch} 1"));
    let missing = serve_once_per_request(404, "no such bundle".into());
    for (server, expected) in [(missing, 502), (good, 200)] {
        let dir = dir.path().join(server.port().to_string());
        let mut config = TestConfig::new(&dir);
        let helper = common::update_helper::with_updates(
            &mut config,
            "0.3.0",
            common::update_helper::plain_slots("0.3.0"),
        );
        config.extra_toml += &format!("download_url = \"http://{server}/plugnode.raucb\"\n");
        let box_ = Plugnode::start(&config);
        box_.wait_status("running", |s| s["phase"] == "running");
        let (code, body) = box_
            .api("POST", "/api/system/update/download", Some("{}"))
            .unwrap();
        assert_eq!(code, expected, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        if expected == 200 {
            assert_eq!(answer["version"], "0.4.0");
            assert!(helper
                .requests()
                .contains(&"check upload.raucb".to_string()));
            assert_eq!(update_state(&box_)["state"]["state"], "ready");
        } else {
            assert_eq!(answer["kind"], "download_failed");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains("404"), "{error}");
            assert!(error.contains("upload the bundle file instead"), "{error}");
            assert!(!helper.requests().iter().any(|r| r.starts_with("check")));
            assert!(!box_.data_dir.join("update/upload.raucb").exists());
        }
    }
}
