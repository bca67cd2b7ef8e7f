//! End-to-end: `plugnode run` supervising regtest-sim as its bitcoind, watched from outside
//! through the web API and /proc.

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn reports_height_and_progress_and_follows_mined_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    // Long enough that the 1 s health checks see bitcoind's warm-up messages.
    config.extra_args = vec!["-simwarmup=3000".into()];
    let node = Plugnode::start(&config);

    let warming = node.wait_status("the -28 warm-up to show as starting", |s| {
        state(s) == "starting"
            && s["bitcoind"]["state"]["message"]
                .as_str()
                .is_some_and(|m| m.contains('…') || m.contains("..."))
    });
    assert!(
        height(&warming).is_none(),
        "no chain facts before RPC is ready"
    );

    // A fresh regtest chain is in initial block download until a block is mined.
    let syncing = node.wait_status("RPC ready", |s| state(s) == "syncing");
    assert_eq!(height(&syncing), Some(0));
    assert_eq!(syncing["bitcoind"]["network"], "regtest");

    node.mine(5);
    let ready = node.wait_status("height 5 and ready", |s| {
        height(s) == Some(5) && state(s) == "ready"
    });
    let chain = &ready["bitcoind"]["chain"];
    assert_eq!(chain["headers"], 5);
    assert!(chain["verification_progress"].as_f64().unwrap() > 0.99);
    assert_eq!(chain["initial_block_download"], false);
    assert!(ready["alerts"].as_array().unwrap().is_empty());

    node.mine(3);
    node.wait_status("height 8", |s| height(s) == Some(8));
}

#[test]
fn a_killed_bitcoind_is_restarted_and_its_chain_survives() {
    let dir = tempfile::tempdir().unwrap();
    let node = Plugnode::start(&TestConfig::new(dir.path()));
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    node.mine(7);
    node.wait_status("height 7", |s| height(s) == Some(7) && state(s) == "ready");

    let first = node
        .bitcoind_pid()
        .expect("bitcoind runs as plugnode's child");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL).unwrap();

    let restarting = node.wait_status("the restart to be announced", |s| state(s) == "restarting");
    assert_eq!(
        restarting["bitcoind"]["state"]["last_exit"],
        "killed by SIGKILL"
    );
    assert_eq!(restarting["bitcoind"]["state"]["retry_in_secs"], 1);
    assert!(restarting["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "bitcoind_restarting"));

    let back = node.wait_status("bitcoind back with its chain", |s| {
        state(s) == "ready" && height(s) == Some(7)
    });
    assert_eq!(back["bitcoind"]["restarts"], 1);
    let second = node.bitcoind_pid().unwrap();
    assert_ne!(first, second);
}

#[test]
fn a_bitcoind_that_always_exits_ends_in_a_crash_loop_alert_and_retry_works() {
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let script = dir.path().join("bitcoind");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho start >> {starts:?}\necho 'Bitcoin Core starting'\n\
             echo 'Error: Corrupted block database detected.' >&2\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = TestConfig::new(dir.path());
    config.binary = script;
    let node = Plugnode::start(&config);

    // Backoff 1 + 2 + 4 + 8 s, then the fifth exit gives up.
    let looped = node.wait_status_for("the crash-loop alert", Duration::from_secs(90), |s| {
        state(s) == "crash_loop"
    });
    let crash = &looped["bitcoind"]["state"];
    assert_eq!(crash["exits"], 5);
    assert_eq!(crash["last_exit"], "exit code 1");
    let lines: Vec<&str> = crash["last_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"Error: Corrupted block database detected."),
        "{lines:?}"
    );
    let alert = &looped["alerts"][0];
    assert_eq!(alert["kind"], "bitcoind_crash_loop");
    assert_eq!(alert["severity"], "critical");

    // No more hammering.
    std::thread::sleep(Duration::from_secs(3));
    let count = || std::fs::read_to_string(&starts).unwrap().lines().count();
    assert_eq!(count(), 5);

    // The web page's Retry starts it again.
    let (code, _) = node.api("POST", "/api/bitcoind/retry", Some("{}")).unwrap();
    assert_eq!(code, 202);
    wait_for("a new start after retry", TIMEOUT, || {
        (count() > 5).then_some(())
    });
}

#[test]
fn sigterm_stops_bitcoind_gracefully_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    // A slow flush: the stop must wait for it, not kill.
    config.extra_args = vec!["-simwarmup=300".into(), "-simstopdelay=3000".into()];
    let mut node = Plugnode::start(&config);
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    node.mine(2);
    node.wait_status("ready", |s| state(s) == "ready");
    let bitcoind = node.bitcoind_pid().unwrap();

    node.signal(Signal::SIGTERM);
    let exit = node.wait_exit(TIMEOUT);
    assert_eq!(exit.code(), Some(0), "log:\n{}", node.log());
    assert!(
        !is_running(bitcoind),
        "bitcoind must be gone when plugnode exits"
    );
    let log = node.log();
    assert!(log.contains("bitcoind stopped (exit code 0)"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");

    // The chain was flushed: a new run starts from it.
    let node = Plugnode::start(&config);
    node.wait_status("the same chain after restart", |s| height(s) == Some(2));
}

#[test]
fn killing_plugnode_takes_bitcoind_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Plugnode::start(&TestConfig::new(dir.path()));
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    let bitcoind = node.bitcoind_pid().unwrap();

    node.signal(Signal::SIGKILL);
    node.wait_exit(TIMEOUT);
    // The parent-death signal asks the orphan to shut down (gracefully: it is SIGTERM).
    wait_for("the orphaned bitcoind to exit", TIMEOUT, || {
        (!is_running(bitcoind)).then_some(())
    });
}

#[test]
fn bitcoinds_settings_json_cannot_open_rpc_behind_plugnodes_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    // bitcoind keeps values set at runtime in <datadir>/<chain>/settings.json and reads
    // them at every start, after the command line and before bitcoin.conf.
    let net_dir = config.data_dir().join("bitcoind/regtest");
    std::fs::create_dir_all(&net_dir).unwrap();
    std::fs::write(
        net_dir.join("settings.json"),
        r#"{"rpcbind": ["127.0.0.2"], "rpcallowip": "0.0.0.0/0"}"#,
    )
    .unwrap();
    let node = Plugnode::start(&config);
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], config.rpc_port));
    assert!(std::net::TcpStream::connect(loopback).is_ok());
    let planted = std::net::SocketAddr::from(([127, 0, 0, 2], config.rpc_port));
    assert!(
        std::net::TcpStream::connect(planted).is_err(),
        "bitcoind's RPC answers on {planted}, an address settings.json added"
    );
}

#[test]
fn a_disk_too_small_for_the_prune_target_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path());
    config.prune_mib = Some(1 << 40); // an exabyte
    let node = Plugnode::start(&config);
    let refused = node.wait_status("the refusal", |s| state(s) == "insufficient_disk");
    assert!(node.bitcoind_pid().is_none(), "bitcoind must not start");
    let alert = &refused["alerts"][0];
    assert_eq!(alert["kind"], "insufficient_disk");
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains("prune_mib") && message.contains("free"),
        "{message}"
    );
}

#[test]
fn bad_config_files_fail_precisely_without_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    config.write();
    let good = std::fs::read_to_string(dir.path().join("plugnode.toml")).unwrap();

    let cases = [
        (
            good.replace(
                "network = \"regtest\"",
                "network = \"regtest\"\nprnue_mib = 600",
            ),
            vec!["line 7", "bitcoind.prnue_mib", "unknown key", "prune_mib"],
        ),
        (
            good.replace(
                &format!("listen = \"127.0.0.1:{}\"", config.web_port),
                "listen = 8080",
            ),
            vec!["web.listen", "invalid type"],
        ),
        (
            good.replace(
                "network = \"regtest\"",
                "network = \"regtest\"\nprune_mib = -1",
            ),
            vec!["bitcoind.prune_mib", "-1", "\"auto\""],
        ),
        (
            good.replace(
                &format!("binary = {:?}", config.binary),
                "binary = \"/opt/nowhere/bitcoind\"",
            ),
            vec!["bitcoind.binary", "/opt/nowhere/bitcoind", "no such file"],
        ),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &text).unwrap();
        let output = std::process::Command::new(PLUGNODE)
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
        }
        assert!(
            !config.data_dir().exists(),
            "a bad config must not create the data dir"
        );
    }
}

#[test]
fn demo_report_prints_its_figures_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(PLUGNODE)
        .args(["demo", "--report", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for figure in [
        "start → bitcoind RPC ready",
        "start → web page answering",
        "supervisor resident memory",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(figure))
            .unwrap_or_else(|| panic!("{figure:?} missing: {stdout}"));
        assert!(!line.contains("not reached"), "{line}");
    }
    assert!(
        stdout.contains("setup code"),
        "the demo says how to log in: {stdout}"
    );
}

/// A newcomer's terminal: the addresses, the setup code and real problems. The rest,
/// ldk-node's complaints about the fresh regtest chain's fee estimates included, goes to
/// the log file the demo names.
#[test]
fn the_demo_terminal_keeps_to_what_a_newcomer_needs() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let (stdout_path, stderr_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = std::process::Command::new(PLUGNODE)
        .args(["demo", "--block-interval", "0", "--listen", "127.0.0.1:0"])
        .args(["--https-listen", "127.0.0.1:0", "--dir"])
        .arg(&demo_dir)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // Stopped on drop, should the test fail half-way.
    let mut demo = Demo {
        child,
        web: ([127, 0, 0, 1], 0).into(),
        dir: demo_dir.clone(),
    };
    let log_path = demo_dir.join("demo.log");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    // By then ldk-node has started three nodes on the fresh chain and tried its channels.
    wait_for("the demo's channels", TIMEOUT, || {
        let log = read(&log_path);
        (log.contains("opened a 1000000 sat channel")
            || log.contains("could not set up the demo channels"))
        .then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(demo.child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    let exited = wait_for("the demo to stop", TIMEOUT, || {
        demo.child.try_wait().unwrap()
    });
    let (stdout, stderr, log) = (read(&stdout_path), read(&stderr_path), read(&log_path));
    assert_eq!(exited.code(), Some(0), "{stdout}{stderr}");

    for needed in [
        log_path.to_str().unwrap(),
        "open http://127.0.0.1:",
        "setup code",
        "plugnode demo stopped",
    ] {
        assert!(stdout.contains(needed), "{needed:?} missing: {stdout}");
    }
    assert!(
        !stderr.contains("fee rate") && !stderr.contains("INFO"),
        "the terminal shows routine or harmless lines: {stderr}"
    );
    assert!(
        log.contains("Failed to retrieve fee rate estimates"),
        "ldk-node's lines are in the log"
    );
    assert!(log.contains("plugnode stopped; safe to unplug"), "{log}");
}

/// The capabilities the image's unit gives plugnode (`AmbientCapabilities=` in
/// `systemd/plugnode.service`), in setpriv's words: "+net_bind_service,+setuid,…".
fn unit_capabilities() -> String {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/plugnode.service");
    let unit = std::fs::read_to_string(unit).unwrap();
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix("AmbientCapabilities="))
        .expect("the unit grants capabilities");
    line.split_whitespace()
        .map(|cap| format!("+{}", cap.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A field of `/proc/<pid>/status` ("Uid", "CapEff", …), whitespace-separated values.
fn proc_status(pid: i32, field: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// bitcoind under a user of its own (`bitcoind.user`), started by a plugnode that runs as
/// an unprivileged user with exactly the capabilities the image's unit grants, as on the box:
/// bitcoind runs as that user with its group alone and no capability at all (so it cannot
/// become plugnode again), and that user can read no file of plugnode's but bitcoin.conf.
/// Stopping still takes bitcoind down cleanly.
#[test]
fn bitcoind_under_its_own_user_keeps_no_capability_and_cannot_read_plugnodes_files() {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test makes processes of other users: run it as root (CI does)"
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let plugnode_uid = 64_001;
    let dir = tempfile::tempdir().unwrap();
    // Binaries and directories both users can reach wherever the checkout lives.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let plugnode = bin.join("plugnode");
    std::fs::copy(PLUGNODE, &plugnode).unwrap();
    std::fs::set_permissions(&plugnode, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&plugnode, bin.join("regtest-sim")).unwrap();
    let mut config = TestConfig::new(dir.path());
    config.binary = bin.join("regtest-sim");
    config.bitcoind_user = Some("nobody".into());
    config.write();
    for path in [dir.path(), bin.as_path()] {
        std::os::unix::fs::chown(path, Some(plugnode_uid), Some(plugnode_uid)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711)).unwrap();
    }

    let capabilities = unit_capabilities();
    let mut wrapper = Command::new("setpriv");
    wrapper
        .arg(format!("--reuid={plugnode_uid}"))
        .arg(format!("--regid={plugnode_uid}"))
        .arg("--clear-groups")
        .arg(format!("--inh-caps=-all,{capabilities}"))
        .arg(format!("--ambient-caps={capabilities}"))
        .arg(format!("--bounding-set=-all,{capabilities}"))
        .arg(&plugnode);
    let mut node = Plugnode::start_with(&config, wrapper);
    // A data directory plugnode made cannot be handed over without root (on the box the
    // image's tmpfiles rule makes it bitcoind's at boot): the fix is named; done, Retry.
    let datadir = node.data_dir.join("bitcoind");
    let refused = node.wait_status("the data directory to be refused", |s| state(s) == "failed");
    let message = refused["bitcoind"]["state"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "Run `chown -R nobody: {}` as root",
            datadir.display()
        )),
        "{message}"
    );
    let chown = Command::new("chown")
        .args(["-R", "nobody:"])
        .arg(&datadir)
        .status()
        .unwrap();
    assert!(chown.success());
    let (code, answer) = node
        .api("POST", "/api/bitcoind/retry", Some("{}"))
        .unwrap_or_else(|| {
            let login = http(
                node.web,
                "POST",
                "/api/login",
                Some(&format!("{{\"password\":\"{PASSWORD}\"}}")),
            );
            panic!("no session: {login:?}\n{}", node.log())
        });
    assert_eq!(code, 202, "{answer}");
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    node.mine(3);
    node.wait_status("height 3", |s| height(s) == Some(3));

    let plugnode_pid = node.pid();
    assert_eq!(
        proc_status(plugnode_pid, "Uid")[0],
        plugnode_uid.to_string()
    );
    let bitcoind = node
        .bitcoind_pid()
        .expect("bitcoind runs as plugnode's child");
    let nobody_uid = nobody.uid.to_string();
    let nobody_gid = nobody.gid.to_string();
    assert_eq!(proc_status(bitcoind, "Uid"), vec![nobody_uid.as_str(); 4]);
    assert_eq!(proc_status(bitcoind, "Gid"), vec![nobody_gid.as_str(); 4]);
    assert_eq!(proc_status(bitcoind, "Groups"), vec![nobody_gid.clone()]);
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(
            proc_status(bitcoind, set),
            vec!["0000000000000000"],
            "bitcoind's {set}"
        );
    }
    assert_eq!(
        std::fs::metadata(&datadir).unwrap().uid(),
        nobody.uid.as_raw()
    );

    // Every file of plugnode's, read as bitcoind's user: only bitcoin.conf opens.
    let mut files = Vec::new();
    let mut pending = vec![node.data_dir.clone()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path == datadir {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let secrets = node.data_dir.join("secrets");
    assert!(
        files.iter().any(|f| f.starts_with(&secrets)),
        "the box has secrets to protect: {files:?}"
    );
    let readable = Command::new("setpriv")
        .arg(format!("--reuid={}", nobody.uid))
        .arg(format!("--regid={}", nobody.gid))
        .arg("--clear-groups")
        .args([
            "sh",
            "-c",
            r#"for f; do cat -- "$f" >/dev/null 2>&1 && echo "$f"; done"#,
            "sh",
        ])
        .args(&files)
        .output()
        .unwrap();
    let readable = String::from_utf8(readable.stdout).unwrap();
    let readable: Vec<&str> = readable.lines().collect();
    assert_eq!(
        readable,
        vec![node.data_dir.join("bitcoin.conf").to_str().unwrap()],
        "what bitcoind's user can read of plugnode's files"
    );

    // The ordered stop reaches bitcoind across users.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(plugnode_pid), Signal::SIGTERM).unwrap();
    let exit = node.wait_exit(TIMEOUT);
    assert_eq!(exit.code(), Some(0), "log:\n{}", node.log());
    assert!(!is_running(bitcoind));
    assert!(
        node.log().contains("bitcoind stopped (exit code 0)"),
        "{}",
        node.log()
    );
}

/// A bitcoind that lost power with the box (frozen, then killed with plugnode: no chance to
/// flush) is named at the next start, on the page and the screen, with what to do next
/// time; the notice ends once bitcoind has caught up. A clean stop leaves no notice.
#[test]
fn the_next_start_says_when_bitcoind_was_not_stopped_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path());
    let unclean = |s: &serde_json::Value| {
        s["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "bitcoind_unclean_stop")
            .cloned()
    };

    let mut node = Plugnode::start(&config);
    node.wait_status("RPC ready", |s| state(s) == "syncing");
    node.mine(2);
    node.wait_status("height 2", |s| height(s) == Some(2));
    // A power cut: both end at once, bitcoind without a signal it could act on. plugnode is
    // frozen first so it cannot restart bitcoind, and killed last (bitcoind killed first, as
    // a frozen bitcoind would be woken by the kernel once its parent is gone).
    let bitcoind = node.bitcoind_pid().unwrap();
    let plugnode = nix::unistd::Pid::from_raw(node.pid());
    nix::sys::signal::kill(plugnode, Signal::SIGSTOP).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(bitcoind), Signal::SIGKILL).unwrap();
    nix::sys::signal::kill(plugnode, Signal::SIGKILL).unwrap();
    node.wait_exit(TIMEOUT);
    wait_for("the old bitcoind to be gone", TIMEOUT, || {
        (!is_running(bitcoind)).then_some(())
    });

    let mut node = Plugnode::start(&config);
    let warned = node.wait_status("the unclean stop to be named", |s| unclean(s).is_some());
    let alert = unclean(&warned).unwrap();
    assert_eq!(alert["severity"], "warning");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("shut the box down from the web page or by holding KEY4"),
        "{alert}"
    );
    node.wait_status("RPC ready", |s| matches!(state(s), "syncing" | "ready"));
    node.mine(1);
    node.wait_status("the notice to end once bitcoind caught up", |s| {
        state(s) == "ready" && unclean(s).is_none()
    });

    // A clean stop: the next start has nothing to say.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(node.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(node.wait_exit(TIMEOUT).code(), Some(0));
    let node = Plugnode::start(&config);
    let started = node.wait_status("RPC ready", |s| matches!(state(s), "syncing" | "ready"));
    assert_eq!(started["bitcoind"]["unclean_last_stop"], false, "{started}");
    assert!(unclean(&started).is_none());
}
