//! The process: command line, bitcoin.conf, data directory lock, signals, exit codes.

use crate::common::*;
use plugnode_testkit::rpc::{Auth, RpcClient};
use plugnode_testkit::{free_port, wait_until};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn run_to_exit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(EXE).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path());
    mine(&node, 2);
    let pid_file = node.datadir().join("regtest").join("bitcoind.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        node.pid().unwrap().to_string()
    );
    let status = node.terminate().unwrap();
    assert!(status.success(), "SIGTERM exits 0: {status}");
    assert!(!node.cookie_path().exists());
    assert!(!pid_file.exists());
    let lines = node.stdout_lines();
    assert_eq!(
        lines.last().map(|l| l.ends_with(" Shutdown: done")),
        Some(true),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("Shutdown: In progress...")));
    // Core-style timestamps: 2025-01-02T03:04:05Z.
    let stamp = lines[0].split(' ').next().unwrap();
    assert!(
        stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{stamp}"
    );
}

#[test]
fn stop_answers_then_exits_zero_and_the_delay_keeps_rpc_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = builder(dir.path())
        .arg("-simstopdelay=1500")
        .spawn()
        .unwrap();
    let rpc = node.rpc();
    assert_eq!(
        rpc.call("stop", json!([])).unwrap(),
        "Bitcoin Core stopping"
    );
    // While the pretended flush runs, the process lives on but RPC is closed.
    assert!(wait_until(Duration::from_secs(30), || {
        rpc.call("getblockcount", json!([])).is_err()
    }));
    assert!(node.is_running(), "still flushing");
    let status = node.wait_for_exit(Duration::from_secs(60)).unwrap();
    assert!(status.success());
}

#[test]
fn a_second_instance_on_the_same_datadir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let datadir = node.datadir().display().to_string();
    let port = free_port().to_string();
    let (code, _, stderr) = run_to_exit(&[
        "-regtest",
        &format!("-datadir={datadir}"),
        &format!("-rpcport={port}"),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        format!("Error: Cannot obtain a lock on directory {datadir}/regtest. Bitcoin Core is probably already running.")
    );
    // The first one is unharmed.
    assert_eq!(node.rpc().call("getblockcount", json!([])).unwrap(), 0);
}

#[test]
fn bad_command_lines_fail_like_bitcoind() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = format!("-datadir={}", dir.path().display());
    let (code, _, stderr) = run_to_exit(&["-regtest", &datadir, "-bogus=1"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "Error: Error parsing command line arguments: Invalid parameter -bogus=1"
        )
    );
    let (code, _, stderr) = run_to_exit(&["-regtest", &datadir, "extra"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.trim(), "Error: Command line contains unexpected token 'extra', see bitcoind -h for a list of options.");
    let (code, _, stderr) = run_to_exit(&[&datadir]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("Error: regtest-sim only simulates regtest"),
        "{stderr}"
    );
    let (code, _, stderr) = run_to_exit(&["-testnet4", &datadir]);
    assert_eq!(code, 1);
    assert!(stderr.contains("\"testnet4\""), "{stderr}");
    let (code, _, stderr) = run_to_exit(&["-regtest", "-datadir=/nonexistent/regtest-sim"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "Error: Specified data directory \"/nonexistent/regtest-sim\" does not exist."
        )
    );
    let (code, stdout, _) = run_to_exit(&["-help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("does NOT check scripts or signatures")
            || stdout.contains("NOT check scripts"),
        "{stdout}"
    );
}

#[test]
fn a_plugnode_style_bitcoin_conf_with_sections_and_rpcauth() {
    for chain_line in ["chain=regtest", "regtest=1"] {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        std::fs::create_dir_all(&datadir).unwrap();
        let rpc_port = free_port();
        let auth = [
            plugnode_testkit::sim::rpcauth_line("plugnode", "supervisor-secret"),
            plugnode_testkit::sim::rpcauth_line("lightning", "ldk-secret"),
        ];
        std::fs::write(
            dir.path().join("bitcoin.conf"),
            plugnode_conf(chain_line, rpc_port, free_port(), &auth),
        )
        .unwrap();
        let conf_arg = format!("-conf={}", dir.path().join("bitcoin.conf").display());
        let node = builder(dir.path())
            .no_regtest_flag()
            .no_port_flags()
            .rpc_port(rpc_port)
            .client_credentials("plugnode", "supervisor-secret")
            .arg(conf_arg)
            .spawn()
            .unwrap();
        let url = node.rpc_url();
        for (user, password) in [
            ("plugnode", "supervisor-secret"),
            ("lightning", "ldk-secret"),
        ] {
            let client = RpcClient::new(&url, Auth::UserPass(user.into(), password.into()));
            let info = client.call("getblockchaininfo", json!([])).unwrap();
            assert_eq!(info["chain"], "regtest");
            assert_eq!(
                info["pruned"], true,
                "prune=550 from the top of the file applies"
            );
        }
        let wrong = RpcClient::new(
            &url,
            Auth::UserPass("lightning".into(), "supervisor-secret".into()),
        );
        assert_eq!(
            wrong
                .call("getblockcount", json!([]))
                .unwrap_err()
                .http_status(),
            Some(401)
        );
        let mempool = node.rpc().call("getmempoolinfo", json!([])).unwrap();
        assert_eq!(mempool["maxmempool"], 150_000_000);
        // rpcauth users replace nothing: the cookie is still written, like Core.
        assert!(node.cookie_path().exists());
        let log = node.stdout_lines().join("\n");
        assert!(log.contains("Config file arg: [regtest] rpcport="), "{log}");
        assert!(!log.contains("supervisor-secret"), "no password in the log");
    }
}

#[test]
fn network_options_outside_their_section_are_refused_on_regtest() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bitcoin.conf");
    std::fs::write(
        &conf,
        "chain=regtest\nrpcport=18999\n[regtest]\nport=18998\n",
    )
    .unwrap();
    let (code, _, stderr) = run_to_exit(&[&format!("-datadir={}", dir.path().display())]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "Error: Config setting for -rpcport only applied on regtest network when in [regtest] section."
    );
    // Relative -conf paths are relative to the data directory.
    std::fs::write(&conf, "chain=regtest\n[regtest]\nrpcport=18999\n").unwrap();
    std::fs::rename(&conf, dir.path().join("other.conf")).unwrap();
    let (code, _, stderr) = run_to_exit(&[
        &format!("-datadir={}", dir.path().display()),
        "-conf=missing.conf",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("{}/missing.conf", dir.path().display())),
        "{stderr}"
    );
}

#[test]
fn rpc_from_one_process_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    mine(&node, 3);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let rpc = node.rpc();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    assert_eq!(rpc.call("getblockcount", json!([])).unwrap(), 3);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}
