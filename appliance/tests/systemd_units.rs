//! The SD-card image's systemd units and configs agree with what plugnode does.
//!
//! `systemd/*.service` and `image/*.toml` are static files installed by `image/build.sh`;
//! these tests hold them to plugnode's code (config path, exit codes, stop timeout, data
//! dir, devices) and to the hardening the image promises, so a change on one side that
//! the other does not follow fails here, not on a user's box. `systemd-analyze verify` runs
//! too (through `systemd/verify.sh`) where systemd's tools are installed.

use plugnode::config::{Config, Network, DEFAULT_CONFIG_PATH};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A unit file: section → key → every value given (keys may repeat).
struct Unit {
    name: String,
    sections: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Unit {
    fn load(name: &str) -> Unit {
        let text = read(&format!("systemd/{name}"));
        let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut section = String::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}:{}: not `Key=value`: {line}", number + 1));
            assert!(
                !section.is_empty(),
                "{name}:{}: key outside a section",
                number + 1
            );
            sections
                .entry(section.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default()
                .push(value.trim().to_string());
        }
        Unit {
            name: name.to_string(),
            sections,
        }
    }

    fn all(&self, section: &str, key: &str) -> Vec<String> {
        self.sections
            .get(section)
            .and_then(|keys| keys.get(key))
            .cloned()
            .unwrap_or_default()
    }

    /// The one value of a key (systemd would take the last; we want exactly one).
    fn get(&self, section: &str, key: &str) -> String {
        let values = self.all(section, key);
        assert_eq!(
            values.len(),
            1,
            "{}: [{section}] {key} should be set once, is {values:?}",
            self.name
        );
        values[0].clone()
    }

    /// Space-separated values of a (possibly repeated) key, as one list.
    fn words(&self, section: &str, key: &str) -> Vec<String> {
        self.all(section, key)
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    fn service(&self, key: &str) -> String {
        self.get("Service", key)
    }
}

/// systemd time spans as the units use them: "90", "60s", "15min", "1h".
fn timespan(value: &str) -> Duration {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("time span {value}"));
    let seconds = match unit.trim() {
        "" | "s" | "sec" => number,
        "min" | "m" => number * 60,
        "h" => number * 3600,
        other => panic!("unexpected time unit {other} in {value}"),
    };
    Duration::from_secs(seconds)
}

#[test]
fn plugnode_service_runs_the_default_config_as_a_notify_service_with_a_watchdog() {
    let unit = Unit::load("plugnode.service");
    assert_eq!(unit.service("Type"), "notify");
    assert_eq!(
        unit.service("NotifyAccess"),
        "main",
        "bitcoind must not speak for plugnode"
    );
    assert_eq!(
        unit.service("ExecStart"),
        format!("/usr/local/bin/plugnode run --config {DEFAULT_CONFIG_PATH}")
    );
    // plugnode pings at half the interval; anything under 10 s would risk restarts of a
    // box that is merely busy (an SD card stalling under a bitcoind flush).
    let watchdog = timespan(&unit.service("WatchdogSec"));
    assert!(
        watchdog >= Duration::from_secs(10),
        "WatchdogSec {watchdog:?}"
    );
    assert_eq!(unit.service("Restart"), "on-failure");
    assert_eq!(unit.get("Install", "WantedBy"), "multi-user.target");
}

#[test]
fn stopping_leaves_bitcoind_time_to_flush_even_when_plugnode_died() {
    let unit = Unit::load("plugnode.service");
    let stop = timespan(&unit.service("TimeoutStopSec"));
    let bitcoind_flush = Duration::from_secs(Config::default().bitcoind.stop_timeout_secs);
    // bitcoind's own allowance plus the Lightning node and the backup flush before it.
    assert!(
        stop >= bitcoind_flush + Duration::from_secs(120),
        "TimeoutStopSec {stop:?} does not cover bitcoind's {bitcoind_flush:?} flush"
    );
    // SIGTERM to bitcoind too, and time to flush: "mixed" would SIGKILL it at once if
    // plugnode died first.
    assert_eq!(unit.service("KillMode"), "control-group");
}

#[test]
fn exit_codes_power_off_on_request_and_never_restart_a_bad_config() {
    let unit = Unit::load("plugnode.service");
    let power_off = plugnode::shutdown::EXIT_POWER_OFF.to_string();
    let update = plugnode::shutdown::EXIT_UPDATE.to_string();
    assert_eq!(
        unit.words("Service", "SuccessExitStatus"),
        vec![power_off.clone(), update.clone()]
    );
    let no_restart = unit.words("Service", "RestartPreventExitStatus");
    assert!(
        no_restart.contains(&"2".to_string()),
        "a bad config (exit 2) must not loop"
    );
    assert!(no_restart.contains(&power_off));
    assert!(
        no_restart.contains(&update),
        "an update restarts the box, not plugnode"
    );
    // The power-off helper runs as root ("+") and acts on exactly that exit status.
    assert_eq!(
        unit.service("ExecStopPost"),
        "+/usr/local/lib/plugnode/poweroff-if-asked"
    );
    let helper = read("systemd/poweroff-if-asked");
    assert!(helper.contains(&format!("\"${{EXIT_STATUS:-}}\" = {power_off}")));
    assert!(helper.contains("\"${EXIT_CODE:-}\" = exited"));
    // An update: the one-shot tryboot into the new slot.
    assert!(helper.contains(&format!("\"${{EXIT_STATUS:-}}\" = {update}")));
    assert!(helper.contains("--reboot-argument=\"0 tryboot\" reboot"));
}

#[test]
fn plugnode_runs_unprivileged_with_only_the_capabilities_for_its_ports_and_bitcoinds_user() {
    let unit = Unit::load("plugnode.service");
    assert_eq!(unit.service("User"), "plugnode");
    assert_eq!(unit.service("Group"), "plugnode");
    let capabilities = "CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_KILL CAP_DAC_READ_SEARCH";
    assert_eq!(unit.service("CapabilityBoundingSet"), capabilities);
    assert_eq!(unit.service("AmbientCapabilities"), capabilities);
    let sysusers = read("systemd/plugnode.sysusers");
    assert!(sysusers.lines().any(|l| l.starts_with("u plugnode ")));
    // The image serves the page on ports 80 and 443, which need CAP_NET_BIND_SERVICE, and
    // runs bitcoind as its own user, which needs the rest (tests/supervisor.rs starts
    // plugnode with exactly these and checks bitcoind keeps none).
    for config in ["image/plugnode.toml", "image/test/plugnode-test.toml"] {
        let config = load_image_config(config);
        let web = &config.web;
        for port in [web.listen.port(), web.https_listen.port()] {
            assert!(port < 1024, "port {port}");
        }
        assert_eq!(web.https_listen.port(), 443);
        let user = config.bitcoind.user.as_deref().expect("bitcoind.user");
        assert!(sysusers
            .lines()
            .any(|l| l.starts_with(&format!("u {user} "))));
        // Its data directory is made its own at boot, in a data directory it may pass.
        let tmpfiles = read("systemd/plugnode.tmpfiles");
        let datadir = config.data.bitcoind_dir();
        let datadir = datadir.display();
        assert!(tmpfiles.contains(&format!("d {datadir} 0700 {user} {user} -")));
        assert!(tmpfiles.contains(&format!("Z {datadir} - {user} {user} -")));
        assert!(tmpfiles.contains(&format!(
            "d {} 0711 plugnode plugnode -",
            config.data.dir.display()
        )));
    }
    assert_eq!(unit.service("StateDirectoryMode"), "0711");
    assert!(read("image/build.sh").contains("systemd/plugnode.tmpfiles"));
    for group in unit.words("Service", "SupplementaryGroups") {
        assert!(
            sysusers.contains(&format!("g {group} "))
                && sysusers.contains(&format!("m plugnode {group}")),
            "group {group} is not created with plugnode in it"
        );
    }
}

#[test]
fn plugnode_service_is_hardened() {
    let unit = Unit::load("plugnode.service");
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RemoveIPC", "yes"),
        ("SystemCallArchitectures", "native"),
        ("DevicePolicy", "closed"),
    ] {
        assert_eq!(unit.service(key), value, "{key}");
    }
    // @system-service, less what nix-bitcoin also takes from bitcoind.
    let filters = unit.all("Service", "SystemCallFilter");
    assert_eq!(filters[0], "@system-service");
    let denied: Vec<&str> = filters[1..]
        .iter()
        .filter_map(|f| f.strip_prefix('~'))
        .flat_map(str::split_whitespace)
        .collect();
    for call in [
        "add_key",
        "keyctl",
        "kcmp",
        "mbind",
        "process_vm_readv",
        "process_vm_writev",
        "setns",
        "unshare",
        "userfaultfd",
    ] {
        assert!(denied.contains(&call), "{call} is not denied: {filters:?}");
    }
    // Left out on purpose (systemd/README.md says why): each would break the box.
    assert!(
        unit.all("Service", "PrivateUsers").is_empty(),
        "PrivateUsers: CAP_NET_BIND_SERVICE would not reach the host's network namespace (port 80)"
    );
    assert!(
        unit.all("Service", "PrivateDevices").is_empty(),
        "PrivateDevices hides /dev/gpiochip* and /dev/spidev*"
    );
    let mut families = unit.words("Service", "RestrictAddressFamilies");
    families.sort();
    assert_eq!(families, ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
    // No mount or admin powers for the supervisor: the mount helper has them.
    let text = read("systemd/plugnode.service");
    let settings: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(!settings.contains("CAP_SYS_ADMIN"));
}

#[test]
fn plugnode_may_write_its_data_dir_and_the_backup_mount_only() {
    let unit = Unit::load("plugnode.service");
    let data_dir = Config::default().data.dir;
    assert_eq!(data_dir, load_image_config("image/plugnode.toml").data.dir);
    assert_eq!(
        Path::new("/var/lib").join(unit.service("StateDirectory")),
        data_dir
    );
    let writable = unit.words("Service", "ReadWritePaths");
    assert_eq!(
        writable,
        vec![
            data_dir.display().to_string(),
            "-/media/plugnode".to_string()
        ]
    );
    // The mount helper mounts the stick below that directory.
    assert!(read("systemd/mount-helper").contains("MOUNT_POINT=/media/plugnode/backup"));
}

#[test]
fn devices_are_the_gpio_chips_and_spidev_of_the_config() {
    let unit = Unit::load("plugnode.service");
    assert_eq!(
        unit.all("Service", "DeviceAllow"),
        vec!["char-gpiochip rw".to_string(), "char-spi rw".to_string()]
    );
    // The udev rules give the groups those very devices, named as the config names them.
    let rules = read("systemd/60-plugnode.rules");
    let display = load_image_config("image/plugnode.toml").display;
    assert_eq!(display.spi_device, Path::new("/dev/spidev0.0"));
    assert_eq!(display.gpio_chip, Path::new("/dev/gpiochip0"));
    assert!(rules.contains(r#"KERNEL=="gpiochip[0-9]*", GROUP="gpio", MODE="0660""#));
    assert!(rules.contains(r#"KERNEL=="spidev[0-9]*.[0-9]*", GROUP="spi", MODE="0660""#));
}

#[test]
fn mount_helper_is_root_only_through_its_socket_and_mounts_in_the_host_namespace() {
    let socket = Unit::load("plugnode-mount.socket");
    assert_eq!(socket.get("Socket", "Accept"), "yes");
    assert_eq!(socket.get("Socket", "SocketUser"), "root");
    assert_eq!(socket.get("Socket", "SocketGroup"), "plugnode");
    assert_eq!(socket.get("Socket", "SocketMode"), "0660");
    let helper = Unit::load("plugnode-mount@.service");
    assert_eq!(helper.service("StandardInput"), "socket");
    // Any of these would give the helper its own mount namespace, and the stick would be
    // mounted where plugnode cannot see it.
    for key in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "TemporaryFileSystem",
        "PrivateMounts",
        "MountFlags",
    ] {
        assert!(
            helper.all("Service", key).is_empty(),
            "{key} in the mount helper"
        );
    }
}

#[test]
fn mount_helper_has_the_hardening_that_needs_no_namespace() {
    let helper = Unit::load("plugnode-mount@.service");
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictRealtime", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("IPAddressDeny", "any"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(helper.service(key), value, "{key}");
    }
    // Mounting needs CAP_SYS_ADMIN in the host's user namespace.
    assert!(helper.all("Service", "PrivateUsers").is_empty());
}

#[test]
fn fsck_of_a_stick_runs_in_a_sandbox_of_its_own() {
    // The helper does not run fsck itself: it starts the sandboxed unit and reads its status.
    let script = read("systemd/mount-helper");
    let code: Vec<&str> = script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        code.iter()
            .any(|l| l.contains("fsck_unit=\"plugnode-fsck@$device.service\"")),
        "{script}"
    );
    assert!(code
        .iter()
        .any(|l| l.contains("systemctl start \"$fsck_unit\"")));
    assert!(
        !code.iter().any(|l| l.trim_start().starts_with("fsck ")),
        "the helper runs fsck as root itself"
    );

    let fsck = Unit::load("plugnode-fsck@.service");
    assert_eq!(fsck.service("Type"), "oneshot");
    assert_eq!(fsck.service("ExecStart"), "fsck -a /dev/%i");
    assert_eq!(fsck.words("Service", "SuccessExitStatus"), ["1", "2", "3"]);
    for (key, value) in [
        ("CapabilityBoundingSet", ""),
        ("NoNewPrivileges", "yes"),
        ("PrivateUsers", "yes"),
        ("PrivateNetwork", "yes"),
        ("IPAddressDeny", "any"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "/dev/%i rw"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallFilter", "@system-service"),
    ] {
        assert_eq!(fsck.service(key), value, "{key}");
    }
    // Installed and verified with the others.
    for file in ["image/build.sh", "systemd/verify.sh"] {
        assert!(read(file).contains("plugnode-fsck@.service"), "{file}");
    }
}

#[test]
fn boot_time_root_units_have_the_hardening_that_needs_no_namespace() {
    for name in ["plugnode-boot-import.service", "plugnode-grow-data.service"] {
        let unit = Unit::load(name);
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("RestrictNamespaces", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("RestrictRealtime", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("SystemCallArchitectures", "native"),
            ("RestrictAddressFamilies", "AF_UNIX AF_NETLINK"),
            ("IPAddressDeny", "any"),
        ] {
            assert_eq!(unit.service(key), value, "{name}: {key}");
        }
    }
}

/// Loads an image config and validates it, with bitcoind's path pointed at a stand-in
/// executable (the real one is only inside the image).
fn load_image_config(path: &str) -> Config {
    use std::os::unix::fs::PermissionsExt;
    let mut config = Config::load(&repo().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"));
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("bitcoind");
    std::fs::write(&stand_in, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = std::mem::replace(&mut config.bitcoind.binary, stand_in);
    config
        .validate()
        .unwrap_or_else(|err| panic!("{path}: {err}"));
    config.bitcoind.binary = binary;
    config
}

#[test]
fn image_configs_are_valid_and_point_at_what_the_image_installs() {
    let production = load_image_config("image/plugnode.toml");
    assert_eq!(
        production.bitcoind.binary,
        Path::new("/usr/local/bin/bitcoind")
    );
    assert_eq!(production.bitcoind.network, Network::Mainnet);
    let test = load_image_config("image/test/plugnode-test.toml");
    assert_eq!(
        test.bitcoind.binary,
        Path::new("/usr/local/bin/regtest-sim")
    );
    assert_eq!(test.bitcoind.network, Network::Regtest);
    // The boot-partition password is handed over where both configs read it.
    let import = read("systemd/boot-import");
    for (path, config) in [
        ("image/plugnode.toml", &production),
        ("image/test/plugnode-test.toml", &test),
    ] {
        let raw: toml::Value = toml::from_str(&read(path)).unwrap();
        let file = raw["web"]["initial_password_file"].as_str().unwrap();
        assert_eq!(
            Path::new(file),
            config.data.dir.join("initial-password"),
            "{path}"
        );
    }
    assert!(import.contains(r#""$DATA/initial-password""#));
    assert!(import.contains("DATA=${PLUGNODE_DATA:-/var/lib/plugnode}"));
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let has_systemd_analyze = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !has_systemd_analyze {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let output = std::process::Command::new("bash")
        .arg(repo().join("systemd/verify.sh"))
        .output()
        .expect("run systemd/verify.sh");
    assert!(
        output.status.success(),
        "systemd-analyze verify:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `systemd-analyze security` (offline) rates each unit; the limits are today's ratings
/// (systemd 252) plus a little, so hardening taken away fails here.
#[test]
fn systemd_analyze_security_rates_the_units() {
    let works = std::process::Command::new("systemd-analyze")
        .args(["security", "--help"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !works {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir(repo().join("systemd")).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if name.ends_with(".service") || name.ends_with(".socket") || name.ends_with(".timer") {
            std::fs::copy(entry.path(), units.join(&name)).unwrap();
        }
    }
    // Exposure from 0 (locked down) to 10 (unprotected).
    for (unit, at_most) in [
        ("plugnode.service", 2.5),
        ("plugnode-fsck@sda1.service", 1.5),
        ("plugnode-mount@sda1.service", 4.5),
        ("plugnode-boot-import.service", 8.0),
        ("plugnode-grow-data.service", 8.0),
        // The update helper writes system slots and the boot selection: it may not be
        // locked into a namespace, but everything else is taken away.
        ("plugnode-update@0.service", 2.5),
        ("plugnode-trial-failed.service", 8.0),
        ("plugnode-trial-deadline.service", 8.0),
    ] {
        let output = std::process::Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--root={}", root.path().display()))
            .arg(format!("--threshold={}", (at_most * 10.0) as u32))
            .arg(unit)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        let rating = report
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_default()
            .to_string();
        assert!(
            output.status.success(),
            "{unit}: above {at_most}: {rating}\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
