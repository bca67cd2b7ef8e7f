//! End-to-end: the USB backup with real mounts (ext4 images on loop devices; tests run as
//! root, as CI does), real Lightning payments between two boxes, and faults made from
//! outside: a stick unmounted or pulled mid-run, a full one, a read-only one, a hung one
//! (`fsfreeze`), kill -9.

mod common;

use common::lightning::*;
use common::stick::*;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn backup_state(status: &Value) -> String {
    status["backup"]["state"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn wait_backup(ln: &LnBox, wanted: &str) -> Value {
    ln.node
        .wait_status_for(&format!("backup state {wanted}"), LN_TIMEOUT, |s| {
            backup_state(s) == wanted
        })
}

/// Waits until the stick's newest copy holds the same generation as the SD card.
fn wait_in_sync(ln: &LnBox) -> u64 {
    let backup_dir = ln.config.mount_dir().join("plugnode-backup");
    wait_for(
        "the stick to hold the SD card's generation",
        LN_TIMEOUT,
        || {
            let primary = primary_generation(&ln.node.data_dir);
            let stick = stick_generation(&backup_dir)?;
            // Equal twice in a row: no write in flight between the two reads.
            std::thread::sleep(Duration::from_millis(300));
            (stick == primary && primary_generation(&ln.node.data_dir) == primary && primary > 0)
                .then_some(primary)
        },
    )
}

fn pay(from: &LnBox, to: &LnBox, sat: u64) {
    let (code, payment) = from.pay(&to.invoice(Some(sat * 1000), "backup test"), None);
    assert_eq!(code, 200, "{payment}; channels: {:?}", from.channels());
    assert_eq!(payment["status"], "succeeded", "{payment}");
}

/// Pays until the mirror notices the stick's fault (a record may still fit); the failure
/// message must name `why`, and the payments all went through.
fn pay_until_the_stick_fails(from: &LnBox, to: &LnBox, why: &str) {
    for _ in 0..10 {
        pay(from, to, 3_000);
        if backup_state(&from.status()) == "failed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let failed = wait_backup(from, "failed");
    let message = failed["backup"]["state"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{failed}");
}

fn alert_kinds(status: &Value) -> Vec<String> {
    status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Box `a` mirroring to a fresh stick (keep-attached), funded, with a 600,000 sat channel
/// to box `b`. The stick is detached when dropped.
fn mirrored_box_with_a_channel(dir: &Path, chain: &Chain) -> (LnBox, LnBox, LoopStick) {
    let stick = LoopStick::ext4(dir, "stick", 24, &[]);
    stick.plug_in();
    let mut config = TestConfig::lightning_box(&dir.join("a"), &chain.sim);
    config.backup = Some(("keep-attached", stick.link.clone()));
    let (a, _) = LnBox::start_with(config);
    let b = LnBox::start(&dir.join("b"), chain);
    wait_backup(&a, "mirroring");
    a.fund(chain);
    open_channel(chain, &a, &b, 600_000, 0);
    (a, b, stick)
}

/// Fills a file system to the last block (big writes, then small files).
fn fill(root: &Path) {
    use std::io::Write;
    let dir = root.join("filler");
    std::fs::create_dir_all(&dir).unwrap();
    for (chunk, count) in [(1 << 20, 1000), (4096, 100_000)] {
        for n in 0..count {
            let path = dir.join(format!("{chunk}-{n}"));
            let written = std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&vec![0u8; chunk]).and_then(|()| f.sync_all()));
            if written.is_err() {
                let _ = std::fs::remove_file(&path);
                break;
            }
        }
    }
}

/// Everything on the stick outside plugnode's folder, with contents.
fn foreign_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            if relative.starts_with("plugnode-backup") || relative.starts_with("lost+found") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn keep_attached_mirrors_every_payment_and_heals_after_pulls_full_and_read_only_sticks() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let stick = LoopStick::ext4(
        dir.path(),
        "stick",
        24,
        &[
            ("photos/cat.jpg", b"not really a cat"),
            ("notes.txt", b"buy milk"),
        ],
    );
    stick.plug_in();
    let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
    config.backup = Some(("keep-attached", stick.link.clone()));
    let mount_dir = config.mount_dir();
    let (a, _words) = LnBox::start_with(config);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    let mirroring = wait_backup(&a, "mirroring");
    assert!(mirroring["backup"]["stick_id"].as_str().is_some());

    a.fund(&chain);
    open_channel(&chain, &a, &b, 600_000, 0);
    for sat in [11_000, 12_000, 13_000] {
        pay(&a, &b, sat);
        let generation = wait_in_sync(&a);
        a.node
            .wait_status("the status to show the stick's generation", |s| {
                s["backup"]["generation"].as_u64() >= Some(generation)
            });
    }
    // The node id on the stick is the node's.
    let node_dirs: Vec<String> = std::fs::read_dir(mount_dir.join("plugnode-backup"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(node_dirs, vec![a.node_id()]);

    // Someone unmounts the stick under the running box: the alert goes up, payments go on.
    lazy_unmount(&mount_dir);
    pay(&a, &b, 1_000);
    let failed = wait_backup(&a, "failed");
    assert!(
        alert_kinds(&failed).contains(&"backup_failed".to_string()),
        "{failed}"
    );
    let message = failed["backup"]["state"]["message"].as_str().unwrap();
    assert!(message.contains("SD card only"), "{message}");
    // Remounted: healed with a full resync.
    stick.mount_at(&mount_dir, false);
    wait_backup(&a, "mirroring");
    pay(&a, &b, 2_000);
    wait_in_sync(&a);

    // A full stick: the write that does not fit fails the mirror, not the payment.
    let filler = dir.path().join("filler-mount");
    stick.mount_at(&filler, false);
    fill(&filler);
    // The journal's last block may have room for a record or two: pay until it does not.
    pay_until_the_stick_fails(&a, &b, "full");
    std::fs::remove_dir_all(filler.join("filler")).unwrap();
    std::process::Command::new("umount")
        .arg(&filler)
        .status()
        .unwrap();
    wait_backup(&a, "mirroring"); // tried again by itself once there is room
    pay(&a, &b, 4_000);
    wait_in_sync(&a);

    // The file system finds an error and turns read-only (as a damaged stick does).
    let device_name = std::fs::canonicalize(stick.device())
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::write(
        format!("/sys/fs/ext4/{device_name}/trigger_fs_error"),
        "simulated damage",
    )
    .unwrap();
    pay_until_the_stick_fails(&a, &b, "read-only");
    // Checked and mounted again by plugnode: healed.
    wait_backup(&a, "mirroring");
    pay(&a, &b, 6_000);
    wait_in_sync(&a);

    // Eject: unmounted, safe to remove; nothing of the owner's was touched.
    let (code, answer) = a.post("/api/backup/eject", json!({}));
    assert_eq!(code, 200, "{answer}");
    wait_backup(&a, "safe_to_remove");
    assert!(!plugnode::backup::mount::is_mounted(&mount_dir));
    let look = dir.path().join("look");
    stick.mount_at(&look, true);
    assert_eq!(
        foreign_files(&look),
        vec![
            ("notes.txt".to_string(), b"buy milk".to_vec()),
            ("photos/cat.jpg".to_string(), b"not really a cat".to_vec()),
        ]
    );
    std::process::Command::new("umount")
        .arg(&look)
        .status()
        .unwrap();
}

#[test]
fn snapshot_mode_writes_verifies_unmounts_and_a_wiped_box_comes_back_from_the_stick() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[("readme.txt", b"mine")]);
    let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
    config.backup = Some(("snapshot", stick.link.clone()));
    let mount_dir = config.mount_dir();
    let (mut a, words) = LnBox::start_with(config);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    open_channel(&chain, &a, &b, 500_000, 0);
    pay(&a, &b, 40_000);
    let node_id = a.node_id();
    let channels_before = a.channels();
    std::thread::sleep(Duration::from_secs(1));

    // Insertion: written, read back, verified, unmounted.
    stick.plug_in();
    let done = wait_backup(&a, "safe_to_remove");
    assert!(!plugnode::backup::mount::is_mounted(&mount_dir));
    let generation = done["backup"]["generation"].as_u64().unwrap();
    // The node may write again right after the snapshot (LDK persists when it likes): the
    // stick is never ahead of the card, and equal to it when nothing was written since.
    assert!(generation <= primary_generation(&a.node.data_dir));

    // The stick reads back identical to the SD card's store.
    let look = dir.path().join("look");
    stick.mount_at(&look, true);
    let seed = plugnode::lightning::Seed::from_words(&words).unwrap();
    let identity = plugnode::backup::copies::Identity::from_seed(&seed);
    assert_eq!(
        identity.node_id_hex(),
        node_id,
        "the node id follows from the words"
    );
    let copies = plugnode::backup::copies::find_copies(&look.join("plugnode-backup"));
    assert_eq!(copies.len(), 1);
    let (read_generation, entries) =
        plugnode::backup::copies::load_copy(&copies[0], &identity.key).unwrap();
    assert_eq!(read_generation, generation);
    let store =
        plugnode::lightning::store::ChannelStore::open(&a.node.data_dir.join("lightning")).unwrap();
    let (primary, primary_entries) = store.snapshot().unwrap();
    drop(store);
    if primary == read_generation {
        assert_eq!(entries, primary_entries);
    } else {
        assert!(
            read_generation < primary,
            "the stick is never ahead of the card"
        );
    }
    std::process::Command::new("umount")
        .arg(&look)
        .status()
        .unwrap();

    // The SD card dies: a fresh card, the stick, the words.
    a.node.signal(nix::sys::signal::Signal::SIGTERM);
    a.node.wait_exit(TIMEOUT);
    std::fs::remove_dir_all(&a.node.data_dir).unwrap();
    a.node = Plugnode::start(&a.config);
    a.node
        .wait_status("a fresh box waiting for its wallet", |s| {
            s["lightning"]["state"]["state"] == "waiting"
        });
    let (code, copies) = a.get("/api/backup/copies");
    assert_eq!(code, 200, "{copies}");
    assert_eq!(copies[0]["node_id"], node_id);
    assert_eq!(copies[0]["generation"], generation);
    // Restoring is dangerous: the password again first.
    let (code, answer) = a.post("/api/backup/restore", json!({"words": words}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (401, Some("reauth_required")),
        "{answer}"
    );
    a.node.reauth();

    // Wrong words: a mistyped word is named; another wallet's words are refused.
    let mut typo: Vec<&str> = words.split(' ').collect();
    typo[4] = "bitcoinz";
    let (code, answer) = a.post("/api/backup/restore", json!({"words": typo.join(" ")}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (400, Some("wrong_words")),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("word 5"),
        "{answer}"
    );
    let other = plugnode::lightning::Seed::generate().words().join(" ");
    let (code, answer) = a.post("/api/backup/restore", json!({"words": other}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (403, Some("other_node")),
        "{answer}"
    );

    let (code, restored) = a.post("/api/backup/restore", json!({"words": words}));
    assert_eq!(code, 200, "{restored}");
    assert_eq!(restored["node_id"], node_id);
    assert_eq!(restored["recovery_mode"], false);
    a.wait_running();
    assert_eq!(a.node_id(), node_id);
    a.wait_channel_usable();
    let channels_after = a.channels();
    assert_eq!(
        channels_after[0]["channel_id"],
        channels_before[0]["channel_id"]
    );
    assert_eq!(
        channels_after[0]["outbound_sat"],
        channels_before[0]["outbound_sat"]
    );
    pay(&a, &b, 5_000);
    // Restoring again is refused: the box is not fresh any more.
    let (code, answer) = a.post("/api/backup/restore", json!({"words": words}));
    assert_eq!(
        (code, answer["kind"].as_str()),
        (409, Some("not_fresh")),
        "{answer}"
    );
}

#[test]
fn a_stale_copy_is_refused_and_when_insisted_on_the_peer_closes_with_the_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[]);
    let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
    config.backup = Some(("snapshot", stick.link.clone()));
    let (mut a, words) = LnBox::start_with(config);
    let b = LnBox::start(&dir.path().join("b"), &chain);
    a.fund(&chain);
    open_channel(&chain, &a, &b, 500_000, 0);
    pay(&a, &b, 10_000);
    std::thread::sleep(Duration::from_secs(1));
    stick.plug_in();
    let old = wait_backup(&a, "safe_to_remove")["backup"]["generation"]
        .as_u64()
        .unwrap();
    stick.take_out();
    wait_backup(&a, "no_stick");

    // More payments after the first snapshot, then a second one.
    for _ in 0..4 {
        pay(&a, &b, 40_000);
    }
    let latest_outbound = a.outbound_sat();
    std::thread::sleep(Duration::from_secs(1));
    stick.plug_in();
    a.node
        .wait_status_for("the second snapshot", LN_TIMEOUT, |s| {
            backup_state(s) == "safe_to_remove" && s["backup"]["generation"].as_u64() > Some(old)
        });

    a.node.signal(nix::sys::signal::Signal::SIGTERM);
    a.node.wait_exit(TIMEOUT);
    std::fs::remove_dir_all(&a.node.data_dir).unwrap();
    a.node = Plugnode::start(&a.config);
    a.node.wait_status("a fresh box", |s| {
        s["lightning"]["state"]["state"] == "waiting"
    });
    a.node.reauth();

    let request = json!({"words": words, "generation": old});
    let (code, answer) = a.post("/api/backup/restore", request.clone());
    assert_eq!(
        (code, answer["kind"].as_str()),
        (409, Some("stale")),
        "{answer}"
    );
    let mut insist = request;
    insist["insist"] = true.into();
    let (code, restored) = a.post("/api/backup/restore", insist);
    assert_eq!(code, 200, "{restored}");
    assert_eq!(restored["recovery_mode"], true);
    let newest_on_stick = a.get("/api/backup/copies").1[0]["generation"]
        .as_u64()
        .unwrap();
    assert!(
        primary_generation(&a.node.data_dir) > newest_on_stick,
        "backups made from now on count as newer than the state given up"
    );
    a.wait_running();
    a.node
        .wait_status("recovery mode", |s| s["lightning"]["recovery_mode"] == true);
    // (B's side of the old channel is closing, so the invoice is one of another node.)
    let (code, answer) = a.pay(&foreign_invoice(1_000_000, 0, "no"), None);
    assert_eq!(code, 503, "no payments in recovery mode: {answer}");

    // The peer holds the newer state: the channel is closed with it, never with ours.
    let onchain_before = a.balances()["onchain_sat"].as_u64().unwrap();
    wait_for("the peer to close the channel", LN_TIMEOUT, || {
        (chain.mempool_size() > 0).then_some(())
    });
    for _ in 0..4 {
        chain.mine(6);
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_for("A's latest balance back on-chain", LN_TIMEOUT, || {
        chain.mine(1);
        std::thread::sleep(Duration::from_millis(300));
        let _ = a.node.api("POST", "/api/lightning/sync", Some("{}"));
        let onchain = a.try_balances()?["onchain_sat"].as_u64().unwrap();
        // The latest state (after every payment), less fees; the stale one would have
        // given 160 000 sat more, and our own old commitment would have lost it all.
        let gained = onchain.saturating_sub(onchain_before);
        (gained + 20_000 > latest_outbound && gained < latest_outbound + 20_000).then_some(())
    });
    // Recovery ends once our side is swept and buried.
    let deadline = std::time::Instant::now() + LN_TIMEOUT;
    while std::time::Instant::now() < deadline && a.status()["lightning"]["recovery_mode"] == true {
        chain.mine(1);
        std::thread::sleep(Duration::from_millis(300));
    }
    if a.status()["lightning"]["recovery_mode"] == true {
        let log = a.node.log();
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("recovery")
                    || l.contains("balance")
                    || l.contains("sweep")
                    || l.contains("Sweep")
            })
            .collect();
        panic!(
            "recovery did not end; balances {}; log:\n{}",
            a.balances(),
            tail.join("\n")
        );
    }
    wait_for("recovery to end", LN_TIMEOUT, || {
        chain.mine(1);
        std::thread::sleep(Duration::from_millis(300));
        (a.status()["lightning"]["recovery_mode"] == false).then_some(())
    });
    // (B has no channel left to make an invoice with: one of another node does.)
    let (code, payment) = a.pay(&foreign_invoice(1_000_000, 0, "after"), None);
    assert_ne!(
        code, 503,
        "payments are on again (no channel, so refused for that): {payment}"
    );
}

#[test]
fn an_empty_stick_is_prepared_only_when_asked_and_a_stick_of_unknown_content_never() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let garbage: Vec<u8> = (0..8 * 1024 * 1024u64)
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    let unknown = LoopStick::raw(dir.path(), "unknown", &garbage);
    let blank = LoopStick::raw(dir.path(), "blank", &vec![0u8; 32 * 1024 * 1024]);
    unknown.plug_in();
    let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
    config.backup = Some(("keep-attached", unknown.link.clone()));
    let (a, _) = LnBox::start_with(config);
    let failed = wait_backup(&a, "failed");
    let message = failed["backup"]["state"]["message"].as_str().unwrap();
    assert!(message.contains("cannot tell"), "{message}");
    let (code, _) = a.post("/api/backup/prepare", json!({}));
    assert_eq!(code, 409, "nothing to prepare: it is not offered");
    unknown.take_out();
    assert_eq!(
        std::fs::read(&unknown.image).unwrap(),
        garbage,
        "never touched"
    );

    // The blank stick takes the same place: asked first, prepared on request, then used.
    std::fs::remove_file(&unknown.link).ok();
    std::os::unix::fs::symlink(blank.device(), &unknown.link).unwrap();
    let asking = wait_backup(&a, "needs_confirmation");
    assert!(asking["backup"]["state"]["reason"]
        .as_str()
        .unwrap()
        .contains("empty"));
    let (code, answer) = a.post("/api/backup/prepare", json!({}));
    assert_eq!(code, 200, "{answer}");
    wait_backup(&a, "mirroring");
    wait_in_sync(&a);
}

#[test]
fn kill_9_during_mirrored_writes_leaves_both_copies_agreeing_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let (mut a, b, _stick) = mirrored_box_with_a_channel(dir.path(), &chain);

    // Payments keep the store busy while the box is killed.
    let invoices: Vec<String> = (0..20)
        .map(|_| b.invoice(Some(1_000_000), "busy"))
        .collect();
    let token = a.node.token().unwrap();
    let web = a.node.web;
    let payer = std::thread::spawn(move || {
        for invoice in invoices {
            let body = json!({ "invoice": invoice }).to_string();
            if http_with_token(web, "POST", "/api/lightning/pay", Some(&body), Some(&token))
                .is_none()
            {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    a.node.signal(nix::sys::signal::Signal::SIGKILL);
    a.node.wait_exit(TIMEOUT);
    let _ = payer.join();
    // The kernel's lazy detach of a dead process's mount does not happen by itself here:
    // plugnode's next start finds the stick mounted and resyncs it.
    a.restart();
    let history = &a.status()["backup"];
    assert!(
        history["last_success"].is_u64() && history["stick_id"].is_string(),
        "the last backup is remembered across restarts: {history}"
    );
    wait_backup(&a, "mirroring");
    // Both copies agree, whatever moment the kill hit.
    let generation = wait_in_sync(&a);
    assert!(generation > 0);
    // The channel goes on, unless the kill fell between a channel-monitor update and
    // the channel manager's save: then LDK closes the channel on start (the funds come
    // back on-chain), and says so.
    if a.wait_channel_resumed_or_closed_by_rule() {
        pay(&a, &b, 1_000);
        wait_in_sync(&a);
    } else {
        let kinds = alert_kinds(&a.status());
        assert!(
            kinds.contains(&"channel_closed_on_start".to_string()),
            "{kinds:?}"
        );
    }
}

#[test]
fn a_damaged_plugnode_stick_is_prepared_again_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    // A stick plugnode prepared once, whose file system got damaged: an unknown feature
    // flag makes mount and fsck refuse it, the label still says PLUGNODE.
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[]);
    std::process::Command::new("e2label")
        .arg(stick.device())
        .arg("PLUGNODE")
        .status()
        .unwrap();
    {
        // Through the block device, not the image file: e2label went through the
        // device's page cache, and a write behind its back may never be seen by mount.
        use std::io::{Seek, SeekFrom, Write};
        let mut device = std::fs::OpenOptions::new()
            .write(true)
            .open(stick.device())
            .unwrap();
        device.seek(SeekFrom::Start(1024 + 0x60 + 3)).unwrap();
        device.write_all(&[0x80]).unwrap();
        device.sync_all().unwrap();
    }
    stick.plug_in();
    let mut config = TestConfig::lightning_box(&dir.path().join("a"), &chain.sim);
    config.backup = Some(("keep-attached", stick.link.clone()));
    let (a, _) = LnBox::start_with(config);
    let asking = wait_backup(&a, "needs_confirmation");
    let reason = asking["backup"]["state"]["reason"].as_str().unwrap();
    assert!(reason.contains("damaged"), "{reason}");
    let (code, answer) = a.post("/api/backup/prepare", json!({}));
    assert_eq!(code, 200, "{answer}");
    wait_backup(&a, "mirroring");
    wait_in_sync(&a);
}

#[test]
fn a_hung_stick_is_given_up_after_its_time_limit_and_payments_go_on() {
    // A dying USB device can block I/O for minutes. `fsfreeze` makes a stick do that: every
    // write to it waits until it is thawed.
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::start(dir.path());
    let (a, b, _stick) = mirrored_box_with_a_channel(dir.path(), &chain);
    let mount_dir = a.config.mount_dir();
    pay(&a, &b, 1_000);
    wait_in_sync(&a);

    let frozen = Frozen::freeze(&mount_dir);
    // The payment waits for the stick at most its time limit, then goes through on the SD
    // card alone; the page and screen say what happened.
    pay(&a, &b, 2_000);
    let failed = wait_backup(&a, "failed");
    let message = failed["backup"]["state"]["message"].as_str().unwrap();
    assert!(message.contains("did not finish writing"), "{failed}");
    assert!(
        alert_kinds(&failed).contains(&"backup_failed".to_string()),
        "{failed}"
    );
    pay(&a, &b, 3_000);

    // The stick answers again: healed with a full resync.
    drop(frozen);
    wait_backup(&a, "mirroring");
    pay(&a, &b, 4_000);
    wait_in_sync(&a);
}

// --- a stick someone prepared (links, FIFOs, huge files, forged headers) ---------------

/// BIP39's all-zero vector: a wallet whose node id the tests can work out beforehand.
const KNOWN_WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon art";

fn known_identity() -> plugnode::backup::copies::Identity {
    let seed = plugnode::lightning::Seed::from_words(KNOWN_WORDS).unwrap();
    plugnode::backup::copies::Identity::from_seed(&seed)
}

/// A box without a Lightning node (its channel store is backed up all the same), whose
/// backup stick is whatever `link` points at.
fn light_box(dir: &Path, link: &Path) -> (Plugnode, TestConfig) {
    let mut config = TestConfig::new(dir);
    config.backup = Some(("keep-attached", link.to_path_buf()));
    let node = Plugnode::start(&config);
    wait_for("the web page", TIMEOUT, || {
        http(node.web, "GET", "/api/health", None)
    });
    (node, config)
}

fn wait_backup_message(node: &Plugnode, wanted: &str) -> String {
    let status = node.wait_status(&format!("a backup alert naming {wanted:?}"), |s| {
        s["backup"]["state"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(wanted))
    });
    status["backup"]["state"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// Puts `link` on `stick` in place of what it pointed at (plugnode sees another device).
fn swap_in(stick: &LoopStick, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(stick.device(), link).unwrap();
}

#[test]
fn a_hostile_sticks_links_fifos_and_huge_files_are_refused_and_nothing_outside_is_touched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"mine").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).unwrap();
    let outside_before = owner_and_mode(&outside);
    let victim = dir.path().join("channels.sqlite");
    std::fs::write(&victim, b"the channel store").unwrap();
    let node_id = known_identity().node_id_hex();
    let folder = format!("plugnode-backup/{node_id}");
    let zero = "00000000000000000000";
    let edit = dir.path().join("edit");

    let link = dir.path().join("stick-dev");
    let (node, _config) = light_box(dir.path(), &link);
    node.reauth();
    let request = json!({ "words": KNOWN_WORDS }).to_string();
    let (code, answer) = node
        .api("POST", "/api/wallet/restore", Some(&request))
        .unwrap();
    assert_eq!(code, 200, "{answer}");

    // 1. plugnode's folder is a link to a folder outside the stick.
    let linked = LoopStick::ext4(dir.path(), "linked", 24, &[]);
    linked.edit(&edit, |root| {
        std::os::unix::fs::symlink(&outside, root.join("plugnode-backup")).unwrap();
    });
    swap_in(&linked, &link);
    let message = wait_backup_message(&node, "plugnode-backup on the stick is a link");
    assert!(message.contains("Delete it on a computer"), "{message}");
    assert_eq!(
        owner_and_mode(&outside),
        outside_before,
        "chmod through the link"
    );
    let names: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "nothing written through the link");

    // 2. The journal and a temp file of the first snapshot are links to the channel store.
    let planted = LoopStick::ext4(dir.path(), "planted", 24, &[]);
    let pid = node.pid();
    planted.edit(&edit, |root| {
        std::fs::create_dir_all(root.join(&folder)).unwrap();
        for name in [
            format!("journal-{zero}.pnj"),
            format!(".snapshot-{zero}.pnb.tmp-{pid}"),
        ] {
            std::os::unix::fs::symlink(&victim, root.join(&folder).join(name)).unwrap();
        }
    });
    swap_in(&planted, &link);
    let message = wait_backup_message(&node, &format!("{folder}/"));
    assert!(message.contains("on the stick is a link"), "{message}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the channel store");

    // 3. A FIFO where plugnode would read or write (opening it would wait for ever).
    let fifo = LoopStick::ext4(dir.path(), "fifo", 24, &[]);
    fifo.edit(&edit, |root| {
        std::fs::create_dir_all(root.join(&folder)).unwrap();
        let path = root.join(&folder).join(format!("journal-{zero}.pnj"));
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    });
    swap_in(&fifo, &link);
    wait_backup_message(&node, "is a FIFO (a pipe), not a file");

    // 4. A 4 GiB sparse file (reading it whole would take all the memory).
    let huge = LoopStick::ext4(dir.path(), "huge", 24, &[]);
    huge.edit(&edit, |root| {
        std::fs::create_dir_all(root.join(&folder)).unwrap();
        let path = root.join(&folder).join(format!("journal-{zero}.pnj"));
        std::fs::File::create(path)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
    });
    swap_in(&huge, &link);
    wait_backup_message(&node, "more than a backup of this box can be");

    // The box stayed up all along, and a good stick works at once.
    let good = LoopStick::ext4(dir.path(), "good", 24, &[]);
    swap_in(&good, &link);
    node.wait_status("mirroring to the good stick", |s| {
        s["backup"]["state"]["state"] == "mirroring"
    });
    assert_eq!(owner_and_mode(&outside), outside_before);
    assert_eq!(std::fs::read(&victim).unwrap(), b"the channel store");
}

#[test]
fn a_fresh_box_lists_and_restores_around_a_fifo_and_a_huge_file_and_says_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let me = known_identity();
    let zero9 = "00000000000000000009";
    let zero5 = "00000000000000000005";
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[]);
    stick.edit(&dir.path().join("edit"), |root| {
        let backup_dir = root.join("plugnode-backup");
        plugnode::backup::copies::write_snapshot(&backup_dir, &me, 5, 1_700_000_000, &[], 3)
            .unwrap();
        let folder = backup_dir.join(me.node_id_hex());
        // Its journal: 4 GiB of nothing. A newer "snapshot": a FIFO.
        std::fs::File::create(folder.join(format!("journal-{zero5}.pnj")))
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        let fifo = folder.join(format!("snapshot-{zero9}.pnb"));
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    });
    stick.plug_in();
    let (node, _config) = light_box(dir.path(), &stick.link);
    node.wait_status("the stick mounted for a restore", |s| {
        s["backup"]["state"]["state"] == "disabled"
    });
    // Reading the FIFO waited for ever, and the 4 GiB journal filled the memory.
    let (code, copies) = wait_for("the list of copies", TIMEOUT, || {
        node.api("GET", "/api/backup/copies", None)
            .filter(|(code, _)| *code != 404)
    });
    assert_eq!(code, 200, "{copies}");
    let copies: Value = serde_json::from_str(&copies).unwrap();
    assert_eq!(copies.as_array().unwrap().len(), 1, "{copies}");
    assert_eq!(copies[0]["generation"], 5);
    let message = wait_backup_message(&node, "files plugnode does not read");
    assert!(
        message.contains(&format!("snapshot-{zero9}.pnb on the stick is a FIFO")),
        "{message}"
    );
    assert!(
        message.contains(&format!("journal-{zero5}.pnj on the stick is 4.3 GB")),
        "{message}"
    );

    // The copy whose journal cannot be read may hold less than the node had: stale.
    node.reauth();
    let request = json!({ "words": KNOWN_WORDS }).to_string();
    let (code, answer) = node
        .api("POST", "/api/backup/restore", Some(&request))
        .unwrap();
    assert_eq!(code, 409, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["kind"], "stale", "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("4.3 GB"),
        "{answer}"
    );
    assert!(http(node.web, "GET", "/api/health", None).is_some_and(|(code, _)| code == 200));
}

#[test]
fn the_mount_helper_never_follows_a_link_on_a_stick_nor_takes_a_disk_in_use() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o750)).unwrap();
    let before = owner_and_mode(&outside);
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/mount-helper");
    // The helper's own functions, on a real ext4 stick mounted as the helper mounts it.
    let run_helper = |stick: &LoopStick, mnt: &Path| -> String {
        std::fs::create_dir_all(mnt).unwrap();
        let script = format!(
            "source {helper:?}; MOUNT_POINT={mnt:?}
             mount -o \"$(mount_options ext4 4242 4343)\" {dev:?} {mnt:?} || exit 9
             prepare_backup_dir {mnt:?} 4242 4343 ext4; echo \"rc=$?\"
             findmnt -n -o OPTIONS {mnt:?}
             umount {mnt:?}",
            dev = stick.device(),
        );
        let output = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let linked = LoopStick::ext4(dir.path(), "linked", 24, &[]);
    linked.edit(&dir.path().join("edit"), |root| {
        std::os::unix::fs::symlink(&outside, root.join("plugnode-backup")).unwrap();
    });
    let output = run_helper(&linked, &dir.path().join("mnt"));
    assert!(output.contains("plugnode-backup is a link"), "{output}");
    assert!(output.contains("rc=1"), "{output}");
    assert!(output.contains("nosymfollow"), "{output}");
    assert_eq!(
        owner_and_mode(&outside),
        before,
        "chown/chmod through the link"
    );

    let good = LoopStick::ext4(dir.path(), "good", 24, &[]);
    let output = run_helper(&good, &dir.path().join("mnt"));
    assert!(output.contains("rc=0"), "{output}");
    let look = dir.path().join("look");
    good.mount_at(&look, true);
    assert_eq!(
        owner_and_mode(&look.join("plugnode-backup")),
        (4242, 4343, 0o700)
    );
    lazy_unmount(&look);

    // A disk mounted anywhere but at the helper's mount point is the system's.
    let script = format!(
        "source {helper:?}; MOUNT_POINT=/media/plugnode/backup; system_mount_on_disk_of {:?}",
        good.device()
    );
    let in_use = |script: &str| {
        let output = std::process::Command::new("bash")
            .args(["-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(in_use(&script), "");
    good.mount_at(&look, true);
    assert_eq!(in_use(&script), look.display().to_string());
    lazy_unmount(&look);
}

#[test]
fn a_snapshot_onto_a_hung_stick_never_holds_up_channel_store_writes() {
    use ldk_node::lightning::util::persist::KVStoreSync;
    use plugnode::backup::resync::Resync;
    use plugnode::lightning::store::ChannelStore;
    let dir = tempfile::tempdir().unwrap();
    let stick = LoopStick::ext4(dir.path(), "stick", 24, &[]);
    let mount = dir.path().join("mnt");
    stick.mount_at(&mount, false);
    let backup_dir = mount.join("plugnode-backup");
    let store = ChannelStore::open(&dir.path().join("store")).unwrap();
    for n in 0..20u8 {
        KVStoreSync::write(
            &store,
            "monitors",
            "",
            &format!("channel-{n}"),
            vec![n; 2000],
        )
        .unwrap();
    }
    let limit = Duration::from_secs(3);
    let resync = Resync::new(limit, limit);
    let identity = plugnode::backup::copies::Identity {
        node_id: [2; 33],
        key: plugnode::backup::format::BackupKey::from_seed(&[1; 64]),
    };

    let frozen = Frozen::freeze(&mount);
    // The stick arrives and the backup service starts mirroring to it.
    let snapshot = {
        let (store, resync, backup_dir, identity) = (
            store.clone(),
            resync.clone(),
            backup_dir.clone(),
            identity.clone(),
        );
        let mount = mount.clone();
        std::thread::spawn(move || resync.start_mirror(&store, &backup_dir, &identity, Some(mount)))
    };
    // Meanwhile the Lightning node goes on writing its channel state.
    let (done, writes) = std::sync::mpsc::channel();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for n in 0..10u8 {
                KVStoreSync::write(&store, "monitors", "", "channel-0", vec![n]).unwrap();
            }
            let _ = done.send(());
        })
    };
    if writes.recv_timeout(limit + Duration::from_secs(5)).is_err() {
        drop(frozen);
        let _ = writer.join();
        panic!("channel-store writes waited for the frozen stick beyond its time limit");
    }
    let Err(err) = snapshot.join().unwrap() else {
        panic!("a snapshot onto a frozen stick succeeded");
    };
    assert_eq!(
        err.to_string(),
        "the stick did not finish writing within 3 s"
    );
    assert!(!store.has_mirror(), "no mirror on a stick that hangs");

    // The stick answers again: the next try mirrors from the store's generation.
    drop(frozen);
    let (generation, _writer) = wait_for("the stick to take the snapshot", TIMEOUT, || {
        resync
            .start_mirror(&store, &backup_dir, &identity, Some(mount.clone()))
            .ok()
    });
    assert_eq!(generation, store.generation());
    assert!(store.has_mirror());
    KVStoreSync::write(&store, "monitors", "", "channel-1", vec![7]).unwrap();
    assert_eq!(stick_generation(&backup_dir), Some(store.generation()));
}
