//! The production configuration (`--no-default-features`, what the image ships) carries no
//! test equipment: no `plugnode demo`, no bitcoind simulator behind a `regtest-sim` symlink,
//! no demo routes, no display fixtures.
//!
//! These tests inspect the binary built with this test, so they only mean something in the
//! production build: `.ci/run` runs
//! `cargo test -p plugnode --no-default-features --test production_build`. In the default
//! (demo) build this file is empty.
#![cfg(not(feature = "demo"))]

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const PLUGNODE: &str = env!("CARGO_BIN_EXE_plugnode");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn there_is_no_demo_command() {
    let help = Command::new(PLUGNODE).arg("--help").output().unwrap();
    let stdout = text(&help.stdout);
    assert!(help.status.success(), "{stdout}");
    assert!(stdout.contains("run"), "the box's own command: {stdout}");
    assert!(!stdout.contains("demo"), "--help offers the demo: {stdout}");

    let demo = Command::new(PLUGNODE).arg("demo").output().unwrap();
    let stderr = text(&demo.stderr);
    assert_eq!(demo.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unrecognized subcommand 'demo'"),
        "{stderr}"
    );
}

#[test]
fn started_as_regtest_sim_it_simulates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("regtest-sim");
    std::os::unix::fs::symlink(PLUGNODE, &sim).unwrap();
    let datadir = dir.path().join("chain");
    std::fs::create_dir(&datadir).unwrap();
    let port = plugnode_testkit::free_port();

    // What the demo passes to its simulator: a demo build would now serve RPC on `port`.
    let started = Instant::now();
    let output = Command::new(&sim)
        .arg("-regtest")
        .arg(format!("-datadir={}", datadir.display()))
        .arg(format!("-rpcport={port}"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "plugnode's usage error, not a simulator: {stderr}"
    );
    assert!(stderr.contains("Usage:"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something serves the RPC port"
    );
    assert_eq!(
        std::fs::read_dir(&datadir).unwrap().count(),
        0,
        "no chain was written"
    );
}

/// How often `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

#[test]
fn the_binary_holds_no_demo_route_no_simulator_and_no_fixtures() {
    let binary = std::fs::read(PLUGNODE).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

    // No route of the demo, neither registered nor described in the served OpenAPI
    // document. The page's scripts still mention them (they hide those parts on a real
    // box, which answers 404): every occurrence must be one of theirs.
    let route = b"/api/demo/";
    let mut in_page = 0;
    for entry in std::fs::read_dir(format!("{root}/web-ui")).unwrap() {
        let path = entry.unwrap().path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("js" | "html")
        ) {
            in_page += occurrences(&std::fs::read(&path).unwrap(), route);
        }
    }
    assert_eq!(
        occurrences(&binary, route),
        in_page,
        "the binary mentions /api/demo/ beyond the page's scripts"
    );

    // Code that is linked in leaves its source path (panic locations, debug info): the
    // simulator, the demo and the display fixtures have none.
    for source in [
        "testkit/src/",
        "appliance/src/demo.rs",
        "appliance/src/web/demo_api.rs",
        "appliance/src/display/samples.rs",
    ] {
        assert_eq!(
            occurrences(&binary, source.as_bytes()),
            0,
            "{source} is linked into the production binary"
        );
    }
    // And the code that is meant to be there does leave its path (the check above works).
    assert!(occurrences(&binary, b"appliance/src/app.rs") > 0);
}
