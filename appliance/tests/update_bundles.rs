//! The root update helper (`systemd/update-helper`) refuses every bundle it must refuse,
//! before anything is written, with the answer plugnode shows the user.
//!
//! Real RAUC bundles are made here with the host's `rauc bundle` (Debian's rauc, the same
//! version the image carries), signed with keys openssl makes for this test, and the
//! helper is run as the socket would run it (one request line on stdin, one answer line
//! out), with its paths pointed at a scratch directory (its test-only environment
//! variables). Also: the RAUC backend `systemd/rauc-tryboot` moves autoboot.txt's
//! `[tryboot]` and `[all]` the way the update flow needs.
//!
//! Needs `rauc`, `mksquashfs`/`unsquashfs` (squashfs-tools) and `openssl`; `.ci/run`
//! installs them, so a missing tool fails here instead of skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn require_tools() {
    for (tool, package) in [
        ("rauc", "rauc"),
        ("mksquashfs", "squashfs-tools"),
        ("unsquashfs", "squashfs-tools"),
        ("openssl", "openssl"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is missing: apt-get install {package} (.ci/run installs it)"
        );
    }
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("start a tool");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A self-signed code-signing certificate and its key, as README.md tells a user to make.
fn signing_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/O=plugnode/CN={name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=codeSigning"]));
    (key, cert)
}

const RELEASE: &str = r#"{"version": "9.8.7", "architecture": "arm64", "data_format": 1, "notes": "test \"bundle\""}"#;

/// A bundle directory as image/build.sh makes it (tiny images: the helper only checks).
fn bundle_dir(dir: &Path, name: &str, compatible: &str) -> PathBuf {
    let content = dir.join(name);
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        format!(
            "[update]\ncompatible={compatible}\nversion=9.8.7\ndescription=plugnode 9.8.7\n\n\
             [bundle]\nformat=plain\n\n[image.boot]\nfilename=boot.vfat\n\n\
             [image.rootfs]\nfilename=root.ext4\n"
        ),
    )
    .unwrap();
    std::fs::write(content.join("boot.vfat"), vec![0x42u8; 200_000]).unwrap();
    std::fs::write(content.join("root.ext4"), vec![0x17u8; 300_000]).unwrap();
    std::fs::write(content.join("plugnode-release.json"), RELEASE).unwrap();
    content
}

fn rauc_bundle(content: &Path, key: &Path, cert: &Path, out: &Path) {
    run(Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .arg(content)
        .arg(out));
}

struct Helper {
    dir: tempfile::TempDir,
    bundles: PathBuf,
    conf: PathBuf,
    rauc_log: PathBuf,
}

impl Helper {
    /// The helper's world: the upload directory, RAUC's system.conf trusting `cert`, a
    /// state directory, and `rauc` wrapped so the test sees whether it was run at all.
    fn new(cert: &Path) -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let bundles = dir.path().join("uploads");
        std::fs::create_dir_all(&bundles).unwrap();
        let conf = dir.path().join("system.conf");
        std::fs::write(
            &conf,
            format!(
                "[system]\ncompatible=plugnode-rpi-arm64\nbootloader=noop\nbundle-formats=plain\n\n\
                 [keyring]\npath={}\ncheck-purpose=codesign\n",
                cert.display()
            ),
        )
        .unwrap();
        let rauc_log = dir.path().join("rauc-calls");
        let wrapper = dir.path().join("rauc");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >>'{}'\nexec rauc \"$@\"\n",
                rauc_log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Helper {
            dir,
            bundles,
            conf,
            rauc_log,
        }
    }

    /// One request, as plugnode sends it through the socket; the one answer line.
    fn ask(&self, request: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("bash")
            .arg(repo().join("systemd/update-helper"))
            .env("PLUGNODE_UPDATE_BUNDLE_DIR", &self.bundles)
            .env("PLUGNODE_UPDATE_STATE_DIR", self.dir.path().join("state"))
            .env("PLUGNODE_UPDATE_RAUC_CONF", &self.conf)
            .env("PLUGNODE_UPDATE_RAUC", self.dir.path().join("rauc"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the helper itself failed: {output:?}"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one answer line for {request:?}, got {stdout:?}"
        );
        lines[0].to_string()
    }

    fn upload(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.bundles.join(name), bytes).unwrap();
    }

    fn rauc_was_run(&self) -> bool {
        self.rauc_log.exists()
    }
}

fn error_kind(answer: &str) -> &str {
    answer
        .strip_prefix("error ")
        .unwrap_or_else(|| panic!("expected an error, got {answer:?}"))
        .split(' ')
        .next()
        .unwrap()
}

#[test]
fn the_helper_accepts_a_signed_compatible_bundle_and_refuses_every_bad_one() {
    require_tools();
    let keys = tempfile::tempdir().unwrap();
    let (key, cert) = signing_key(keys.path(), "plugnode project");
    let (other_key, other_cert) = signing_key(keys.path(), "someone else");
    let board = Helper::new(&cert);
    let work = tempfile::tempdir().unwrap();

    // A good bundle: ok, with what plugnode shows before anything is written.
    let good = work.path().join("good.raucb");
    rauc_bundle(
        &bundle_dir(work.path(), "good", "plugnode-rpi-arm64"),
        &key,
        &cert,
        &good,
    );
    let good_bytes = std::fs::read(&good).unwrap();
    board.upload("upload.raucb", &good_bytes);
    let answer = board.ask("check upload.raucb");
    let json = answer
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("a good bundle was refused: {answer}"));
    let checked: serde_json::Value = serde_json::from_str(json).expect("the answer is JSON");
    assert_eq!(checked["compatible"], "plugnode-rpi-arm64");
    assert_eq!(checked["version"], "9.8.7");
    assert_eq!(checked["description"], "plugnode 9.8.7");
    assert_eq!(checked["signer"], "O = plugnode, CN = plugnode project");
    let release: serde_json::Value = serde_json::from_str(RELEASE).unwrap();
    assert_eq!(
        checked["release"], release,
        "the bundle's plugnode-release.json, as is"
    );
    println!("good bundle ({} bytes): {answer}", good_bytes.len());

    // Truncated: the end (the signature) or half of it gone.
    for (name, length) in [
        ("cut-end.raucb", good_bytes.len() - 100),
        ("half.raucb", good_bytes.len() / 2),
        ("start.raucb", 4096),
    ] {
        board.upload(name, &good_bytes[..length]);
        let answer = board.ask(&format!("check {name}"));
        assert_eq!(error_kind(&answer), "not-a-bundle", "{name}: {answer}");
        println!("{name}: {answer}");
    }

    // Not a bundle at all, and an empty file.
    board.upload("photo.raucb", b"\x89PNG\r\n\x1a\n not an update at all");
    board.upload("empty.raucb", b"");
    for name in ["photo.raucb", "empty.raucb"] {
        let answer = board.ask(&format!("check {name}"));
        assert_eq!(error_kind(&answer), "not-a-bundle", "{name}: {answer}");
        println!("{name}: {answer}");
    }

    // A squashfs with a manifest but no signature.
    let unsigned = work.path().join("unsigned.raucb");
    run(Command::new("mksquashfs")
        .arg(work.path().join("good"))
        .arg(&unsigned)
        .args(["-quiet", "-noappend", "-no-progress"]));
    board.upload("unsigned.raucb", &std::fs::read(&unsigned).unwrap());
    let answer = board.ask("check unsigned.raucb");
    assert_eq!(error_kind(&answer), "not-a-bundle", "{answer}");
    println!("unsigned squashfs: {answer}");

    // Signed, but by a key this box does not trust.
    let other = work.path().join("other.raucb");
    rauc_bundle(&work.path().join("good"), &other_key, &other_cert, &other);
    board.upload("other-key.raucb", &std::fs::read(&other).unwrap());
    let answer = board.ask("check other-key.raucb");
    assert_eq!(error_kind(&answer), "bad-signature", "{answer}");
    println!("signed by another key: {answer}");

    // A good bundle with one byte changed inside: the signature no longer matches.
    let mut flipped = good_bytes.clone();
    flipped[1000] ^= 0x01;
    board.upload("flipped.raucb", &flipped);
    let answer = board.ask("check flipped.raucb");
    assert_eq!(error_kind(&answer), "bad-signature", "{answer}");
    println!("one byte changed: {answer}");

    // Properly signed for another architecture.
    let armhf = work.path().join("armhf.raucb");
    rauc_bundle(
        &bundle_dir(work.path(), "armhf", "plugnode-rpi-armhf"),
        &key,
        &cert,
        &armhf,
    );
    board.upload("armhf.raucb", &std::fs::read(&armhf).unwrap());
    let answer = board.ask("check armhf.raucb");
    assert_eq!(
        answer.split(' ').take(3).collect::<Vec<_>>(),
        ["error", "incompatible", "plugnode-rpi-armhf"],
        "{answer}"
    );
    println!("wrong architecture: {answer}");

    // A name that leaves the upload directory (or no name): refused before rauc runs.
    let _ = std::fs::remove_file(&board.rauc_log);
    std::fs::write(board.dir.path().join("outside.raucb"), &good_bytes).unwrap();
    for request in [
        "check ../outside.raucb",
        "check uploads/../../outside.raucb",
        "check /etc/passwd",
        "check a/b",
        "check ..",
        "check ",
        "check",
        "install ../outside.raucb",
    ] {
        let answer = board.ask(request);
        assert!(answer.starts_with("error "), "{request:?}: {answer}");
        println!("{request:?}: {answer}");
    }
    assert!(
        !board.rauc_was_run(),
        "rauc ran for a name with a slash or '..'"
    );

    // Nothing was installed or recorded by any check.
    assert!(
        !board.dir.path().join("state/pending-trial.json").exists(),
        "a check recorded a pending trial"
    );
}

/// autoboot.txt and the slot states after each step RAUC and the helper take.
#[test]
fn the_tryboot_backend_tries_a_slot_once_and_commits_it_only_when_marked_good() {
    let dir = tempfile::tempdir().unwrap();
    let autoboot = dir.path().join("autoboot.txt");
    let cmdline = dir.path().join("cmdline");
    std::fs::write(
        &autoboot,
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
    )
    .unwrap();
    let backend = |booted: &str, args: &[&str]| -> String {
        std::fs::write(&cmdline, format!("console=ttyAMA0 rauc.slot={booted} rw\n")).unwrap();
        run(Command::new("bash")
            .arg(repo().join("systemd/rauc-tryboot"))
            .args(args)
            .env("PLUGNODE_AUTOBOOT", &autoboot)
            .env("PLUGNODE_UPDATE_STATE_DIR", dir.path().join("state"))
            .env("PLUGNODE_CMDLINE", &cmdline))
        .trim()
        .to_string()
    };
    let sections = || -> (String, String) {
        let text = std::fs::read_to_string(&autoboot).unwrap();
        let all = text.split("[tryboot]").next().unwrap();
        let value = |part: &str| {
            part.lines()
                .find_map(|l| l.strip_prefix("boot_partition="))
                .unwrap()
                .to_string()
        };
        (value(all), value(text.split("[tryboot]").nth(1).unwrap()))
    };

    assert_eq!(backend("A", &["get-primary"]), "A");
    assert_eq!(backend("A", &["get-default"]), "A");
    // rauc install: the target is marked bad first, then written, then made primary.
    backend("A", &["set-state", "B", "bad"]);
    assert_eq!(
        sections(),
        ("2".into(), "2".into()),
        "a half-written B is never tried"
    );
    backend("A", &["set-primary", "B"]);
    assert_eq!(
        sections(),
        ("2".into(), "3".into()),
        "only [tryboot] names B"
    );
    assert_eq!(backend("A", &["get-primary"]), "B");
    assert_eq!(backend("A", &["get-state", "B"]), "good");
    // The trial boot of B: marked good, it becomes the default.
    backend("B", &["set-state", "B", "good"]);
    assert_eq!(sections(), ("3".into(), "3".into()));
    assert_eq!(backend("B", &["get-default"]), "B");
    // The next update goes to A; its trial boot gives up (mark-bad booted).
    backend("B", &["set-state", "A", "bad"]);
    backend("B", &["set-primary", "A"]);
    assert_eq!(sections(), ("3".into(), "2".into()));
    backend("A", &["set-state", "A", "bad"]);
    assert_eq!(
        sections(),
        ("3".into(), "3".into()),
        "[tryboot] back at the default"
    );
    assert_eq!(backend("A", &["get-state", "A"]), "bad");
    assert_eq!(backend("A", &["get-primary"]), "B");
    // Marking the default good changes nothing.
    backend("B", &["set-state", "B", "good"]);
    assert_eq!(sections(), ("3".into(), "3".into()));
    let text = std::fs::read_to_string(&autoboot).unwrap();
    assert!(text.starts_with("[all]\ntryboot_a_b=1\n"), "{text}");
    // Written by rename: no temporary file left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The helper's whole protocol on the host: install (with RAUC's install stood in for by
/// a script that calls the real backend the way `rauc install` does), the trial, mark-good,
/// a second install given up on, and what `status` says after each step.
#[test]
fn install_trial_commit_and_give_up_leave_the_records_plugnode_shows() {
    require_tools();
    let keys = tempfile::tempdir().unwrap();
    let (key, cert) = signing_key(keys.path(), "plugnode project");
    let helper = Helper::new(&cert);
    let root = helper.dir.path();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("next.raucb");
    rauc_bundle(
        &bundle_dir(work.path(), "next", "plugnode-rpi-arm64"),
        &key,
        &cert,
        &bundle,
    );
    helper.upload("upload.raucb", &std::fs::read(&bundle).unwrap());

    let autoboot = root.join("autoboot.txt");
    std::fs::write(
        &autoboot,
        "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
    )
    .unwrap();
    let cmdline = root.join("cmdline");
    let release = root.join("release.json");
    let rebooted = root.join("rebooted");
    let backend = repo().join("systemd/rauc-tryboot");
    // `rauc install` and `rauc status mark-*` as RAUC 1.8 drives a custom backend
    // (src/install.c, src/mark.c); `rauc info` is the real one.
    let fake_rauc = root.join("fake-rauc");
    std::fs::write(
        &fake_rauc,
        format!(
            r#"#!/bin/bash
set -e
backend='{backend}'
booted=$("$backend" get-booted)
[[ $booted == A ]] && other=B || other=A
case " $* " in
*" info "*) exec rauc "$@" ;;
*" install "*)
    "$backend" set-state "$other" bad
    echo "  0% Installing"
    echo " 50% Copying image to rootfs.1"
    echo "100% Installing done."
    "$backend" set-primary "$other" ;;
*" mark-good booted "*) "$backend" set-state "$booted" good ;;
*" mark-bad booted "*) "$backend" set-state "$booted" bad ;;
*) echo "fake rauc: $*" >&2; exit 1 ;;
esac
"#,
            backend = backend.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake_rauc, std::fs::Permissions::from_mode(0o755)).unwrap();

    let ask = |booted: &str, version: &str, request: &str| -> Vec<String> {
        std::fs::write(
            &cmdline,
            format!("root=PARTUUID=504c5547-0x rauc.slot={booted}\n"),
        )
        .unwrap();
        std::fs::write(
            &release,
            format!(r#"{{"version": "{version}", "architecture": "arm64", "data_format": 1}}"#),
        )
        .unwrap();
        let output = Command::new("bash")
            .arg(repo().join("systemd/update-helper"))
            .args(request.split(' '))
            .env("PLUGNODE_UPDATE_BUNDLE_DIR", &helper.bundles)
            .env("PLUGNODE_UPDATE_STATE_DIR", root.join("state"))
            .env("PLUGNODE_UPDATE_RAUC_CONF", &helper.conf)
            .env("PLUGNODE_UPDATE_RAUC", &fake_rauc)
            .env("PLUGNODE_UPDATE_BACKEND", &backend)
            .env("PLUGNODE_UPDATE_RELEASE_FILE", &release)
            .env(
                "PLUGNODE_UPDATE_REBOOT",
                format!("touch {}", rebooted.display()),
            )
            .env("PLUGNODE_AUTOBOOT", &autoboot)
            .env("PLUGNODE_CMDLINE", &cmdline)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let status = |booted: &str, version: &str| -> serde_json::Value {
        let answer = ask(booted, version, "status");
        assert_eq!(answer.len(), 1, "{answer:?}");
        serde_json::from_str(answer[0].strip_prefix("ok ").expect(&answer[0])).unwrap()
    };

    let before = status("A", "0.1.0");
    assert_eq!(before["booted"], "A");
    assert_eq!(before["default"], "A");
    assert_eq!(before["trial"], false);
    assert_eq!(before["slots"]["A"]["version"], "0.1.0");
    assert_eq!(before["slots"]["B"]["version"], serde_json::Value::Null);
    assert_eq!(before["last_failed_trial"], serde_json::Value::Null);
    assert_eq!(ask("A", "0.1.0", "mark-good"), ["ok not-in-trial"]);
    assert_eq!(
        ask("A", "0.1.0", "give-up nothing to give up"),
        ["ok not-in-trial"]
    );
    assert!(!rebooted.exists());

    // Install: progress, then the slot written, which is now the [tryboot] target only.
    let answer = ask("A", "0.1.0", "install upload.raucb");
    assert_eq!(answer.last().unwrap(), "ok B", "{answer:?}");
    assert!(
        answer.contains(&"progress 50 Copying image to rootfs.1".to_string()),
        "{answer:?}"
    );
    let text = std::fs::read_to_string(&autoboot).unwrap();
    assert!(
        text.contains("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3"),
        "{text}"
    );
    let pending: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("state/pending-trial.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pending,
        serde_json::json!({"version": "9.8.7", "from": "0.1.0"})
    );

    // The trial boot of B: another install is refused; mark-good commits B.
    let trial = status("B", "9.8.7");
    assert_eq!(trial["trial"], true);
    assert_eq!(trial["slots"]["B"]["version"], "9.8.7");
    let busy = ask("B", "9.8.7", "install upload.raucb");
    assert_eq!(error_kind(busy.last().unwrap()), "busy", "{busy:?}");
    assert_eq!(ask("B", "9.8.7", "mark-good"), ["ok committed"]);
    let committed = status("B", "9.8.7");
    assert_eq!(committed["default"], "B");
    assert_eq!(committed["trial"], false);
    assert!(!root.join("state/pending-trial.json").exists());

    // The next install goes to A, whose trial gives up: recorded, [tryboot] back on B,
    // a plain reboot.
    assert_eq!(
        ask("B", "9.8.7", "install upload.raucb").last().unwrap(),
        "ok A"
    );
    assert_eq!(
        ask("A", "9.8.7", "give-up bitcoind never became ready"),
        ["ok rebooting"]
    );
    assert!(rebooted.exists(), "no reboot after give-up");
    let text = std::fs::read_to_string(&autoboot).unwrap();
    assert!(
        text.contains("boot_partition=3\n[tryboot]\nboot_partition=3"),
        "{text}"
    );
    let back = status("B", "9.8.7");
    assert_eq!(back["booted"], "B");
    assert_eq!(back["trial"], false);
    assert_eq!(back["slots"]["A"]["state"], "bad");
    let failed = &back["last_failed_trial"];
    assert_eq!(failed["version"], "9.8.7");
    assert_eq!(failed["back_on"], "9.8.7");
    assert_eq!(failed["reason"], "bitcoind never became ready");
    assert!(failed["at"].as_u64().unwrap() > 1_600_000_000);
    // It stays until the next install starts.
    assert_eq!(status("B", "9.8.7")["last_failed_trial"], *failed);

    // A trial the power cut ends: the trial boot asked for the status (plugnode does at
    // start), then the box came back on the default slot with no verdict.
    std::fs::write(
        &autoboot,
        text.replace("[tryboot]\nboot_partition=3", "[tryboot]\nboot_partition=2"),
    )
    .unwrap();
    std::fs::write(
        root.join("state/pending-trial.json"),
        "{\"version\":\"9.9.0\",\"from\":\"9.8.7\"}\n",
    )
    .unwrap();
    let untried = status("B", "9.8.7");
    assert_eq!(
        untried["last_failed_trial"], *failed,
        "not tried yet: nothing to say"
    );
    assert!(root.join("state/pending-trial.json").exists());
    assert_eq!(status("A", "9.9.0")["trial"], true);
    let cut = status("B", "9.8.7");
    let failed = &cut["last_failed_trial"];
    assert_eq!(failed["version"], "9.9.0", "{cut}");
    assert_eq!(failed["back_on"], "9.8.7");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("restarted before version 9.9.0 had proven itself"),
        "{failed}"
    );
    assert!(!root.join("state/pending-trial.json").exists());
}
