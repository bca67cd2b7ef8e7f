//! Diagnostic mode, with each fault made on purpose: a box that cannot start keeps its page
//! up, says what is wrong and what to do with the last lines of the log, and offers Retry
//! (which starts it once the fault is fixed) and Shut down. It never exits into a restart
//! loop. (bitcoind refusing its data directory is a fault of the running box, with its own
//! Retry: `supervisor.rs`, `bitcoind_under_its_own_user…`.)

mod common;

use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// `GET /api/diagnostic` once the diagnostic page answers after failed start `attempt`.
fn wait_for_diagnosis(address: SocketAddr) -> Value {
    wait_for_attempt(address, 1)
}

fn wait_for_attempt(address: SocketAddr, attempt: u64) -> Value {
    wait_for("the diagnostic page", TIMEOUT, || {
        let (code, body) = http(address, "GET", "/api/diagnostic", None)?;
        if code != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        (answer["state"] == "diagnostic" && answer["attempt"] == attempt).then_some(answer)
    })
}

fn retry(address: SocketAddr) {
    let answer = http_raw(
        address,
        "POST",
        "/api/diagnostic/retry",
        &[
            format!("Host: {address}"),
            "Accept: application/json".into(),
        ],
        Some(""),
    )
    .expect("the diagnostic page answers");
    assert_eq!(answer.code, 202, "{}", answer.body);
}

/// Waits until the box runs: its regular health answer.
fn wait_until_running(box_: &Plugnode) {
    wait_for("the box to run after Retry", TIMEOUT, || {
        let (code, body) = http(box_.web, "GET", "/api/health", None)?;
        (code == 200 && !body.contains("diagnostic")).then_some(())
    });
    box_.wait_status("phase running", |s| s["phase"] == "running");
}

#[test]
fn a_missing_data_disk_is_shown_and_retry_starts_the_box_once_it_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    // Where the data disk should be mounted, a file: nothing can be created there.
    std::fs::write(config.data_dir(), "not a disk").unwrap();
    let mut box_ = Plugnode::start(&config);

    let diagnosis = wait_for_diagnosis(box_.web);
    assert_eq!(
        diagnosis["problem"], "The data disk is missing or cannot be written",
        "{diagnosis}"
    );
    let detail = diagnosis["detail"].as_str().unwrap();
    assert!(
        detail.contains("check the disk is mounted"),
        "says what to do: {detail}"
    );
    let log = diagnosis["log"].as_array().unwrap();
    assert!(
        log.iter()
            .any(|l| l.as_str().unwrap().contains("diagnostic mode")),
        "the last lines of the log: {log:?}"
    );
    // Health says so (for monitors), and the page is readable without JavaScript.
    let (code, body) = http(box_.web, "GET", "/api/health", None).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("diagnostic"), "{body}");
    let (code, page) = http(box_.web, "GET", "/", None).unwrap();
    assert_eq!(code, 200);
    for text in [
        "plugnode cannot start",
        "The data disk is missing or cannot be written",
        "Retry",
        "Shut down",
        "The last lines of the log",
    ] {
        assert!(page.contains(text), "the page shows {text:?}: {page}");
    }
    // Another site cannot press Retry (the same guard as the regular page).
    let foreign = http_raw(
        box_.web,
        "POST",
        "/api/diagnostic/retry",
        &[
            format!("Host: {}", box_.web),
            "Origin: https://evil.example".into(),
        ],
        Some(""),
    )
    .unwrap();
    assert_eq!(foreign.code, 403, "{}", foreign.body);
    assert!(
        box_.child.try_wait().unwrap().is_none(),
        "no exit, no restart loop"
    );

    // The user mounts the disk, then presses Retry.
    std::fs::remove_file(config.data_dir()).unwrap();
    retry(box_.web);
    wait_until_running(&box_);

    box_.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(box_.wait_exit(TIMEOUT).success());
}

#[test]
fn a_taken_port_is_shown_on_the_other_port_and_retry_starts_the_box_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    let squatter = std::net::TcpListener::bind(("127.0.0.1", config.https_port)).unwrap();
    let mut box_ = Plugnode::start(&config);

    let diagnosis = wait_for_diagnosis(box_.web);
    assert_eq!(
        diagnosis["problem"], "A network port plugnode needs is taken",
        "{diagnosis}"
    );
    let detail = diagnosis["detail"].as_str().unwrap();
    assert!(
        detail.contains(&config.https_port.to_string()) && detail.contains("web.https_listen"),
        "names the port and its setting: {detail}"
    );

    // Retry while the port is still taken: the same diagnosis again, the box still up.
    retry(box_.web);
    let again = wait_for_attempt(box_.web, 2);
    assert_eq!(again["problem"], diagnosis["problem"]);
    assert!(box_.child.try_wait().unwrap().is_none());

    drop(squatter);
    retry(box_.web);
    wait_until_running(&box_);
    box_.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(box_.wait_exit(TIMEOUT).success());
}

#[test]
fn a_channel_store_that_does_not_open_is_shown_and_shut_down_needs_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    let lightning = config.data_dir().join("lightning");
    std::fs::create_dir_all(&lightning).unwrap();
    // A card that returned garbage: the store is not a database any more.
    std::fs::write(lightning.join("channels.sqlite"), vec![0x5a; 64 * 1024]).unwrap();
    let mut box_ = Plugnode::start(&config);

    let diagnosis = wait_for_diagnosis(box_.web);
    assert_eq!(
        diagnosis["problem"], "The channel store does not open",
        "{diagnosis}"
    );
    assert!(
        diagnosis["detail"]
            .as_str()
            .unwrap()
            .contains("restore from the USB backup"),
        "{diagnosis}"
    );
    assert_eq!(diagnosis["shutdown_needs_password"], true);
    // Nothing was changed: the store is as it was.
    assert_eq!(
        std::fs::read(lightning.join("channels.sqlite")).unwrap(),
        vec![0x5a; 64 * 1024]
    );

    let shut_down = |password: Option<&str>| {
        let body = password
            .map(|p| serde_json::json!({ "password": p }).to_string())
            .unwrap_or_else(|| "{}".into());
        http_raw(
            box_.web,
            "POST",
            "/api/diagnostic/shutdown",
            &[
                format!("Host: {}", box_.web),
                "Accept: application/json".into(),
            ],
            Some(&body),
        )
        .expect("the diagnostic page answers")
    };
    assert_eq!(shut_down(None).code, 401);
    assert_eq!(shut_down(Some("not the password")).code, 401);
    assert!(box_.child.try_wait().unwrap().is_none(), "still up");
    // After a wrong password the throttle asks for a short wait, as on the regular page.
    let answer = wait_for("the throttle's wait", TIMEOUT, || {
        Some(shut_down(Some(PASSWORD))).filter(|answer| answer.code != 429)
    });
    assert_eq!(answer.code, 202, "{}", answer.body);
    let exit = box_.wait_exit(Duration::from_secs(60));
    assert_eq!(
        exit.code(),
        Some(100),
        "power off asked: the unit powers the box off"
    );
    assert!(
        box_.log().contains("stopped in diagnostic mode"),
        "{}",
        box_.log()
    );
}

#[test]
fn a_full_data_disk_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    let disk = config.data_dir();
    std::fs::create_dir_all(&disk).unwrap();
    // A small disk (tmpfs, 256 KiB), filled to the last block.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "plugnode-test-full"])
        .arg(&disk)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "the test mounts a tmpfs: run it as root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let filler = disk.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
    }
    let mut box_ = Plugnode::start(&config);

    let diagnosis = wait_for_diagnosis(box_.web);
    assert_eq!(diagnosis["problem"], "The data disk is full", "{diagnosis}");
    assert!(
        diagnosis["detail"]
            .as_str()
            .unwrap()
            .contains("Free up space"),
        "{diagnosis}"
    );
    box_.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(box_.wait_exit(TIMEOUT).success());
}
