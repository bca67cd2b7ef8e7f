//! The Raspberry Pi's undervoltage and throttling flags.
//!
//! Two kernels, two places:
//!
//! - Raspberry Pi OS (downstream kernel): the firmware driver's `get_throttled` attribute,
//!   `/sys/devices/platform/soc/soc:firmware/get_throttled`, a hex bit field as
//!   `vcgencmd get_throttled` prints it (bit 0 undervoltage now, bit 2 throttled now,
//!   bit 16 undervoltage since boot, bit 18 throttled since boot).
//! - Mainline/Debian kernels: the `rpi_volt` hwmon device's `in0_lcrit_alarm` (1 when
//!   the firmware reported undervoltage during the driver's last 2-second poll).
//!
//! [`parse_throttled`] and [`parse_lcrit_alarm`] are pure; [`read_power`] takes the sysfs
//! root (`/sys` on a real box, a temporary folder in tests); [`PowerMonitor`] remembers
//! "since boot" across polls (the hwmon alarm clears itself); [`watch`] publishes the flags
//! into the shared status.

use crate::shutdown::Shutdown;
use crate::status::{PowerStatus, StatusHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `get_throttled` bits.
pub mod bits {
    pub const UNDERVOLTAGE_NOW: u32 = 1 << 0;
    pub const FREQ_CAPPED_NOW: u32 = 1 << 1;
    pub const THROTTLED_NOW: u32 = 1 << 2;
    pub const SOFT_TEMP_LIMIT_NOW: u32 = 1 << 3;
    pub const UNDERVOLTAGE_SINCE_BOOT: u32 = 1 << 16;
    pub const FREQ_CAPPED_SINCE_BOOT: u32 = 1 << 17;
    pub const THROTTLED_SINCE_BOOT: u32 = 1 << 18;
    pub const SOFT_TEMP_LIMIT_SINCE_BOOT: u32 = 1 << 19;
}

/// Parses `get_throttled` as the kernel prints it ("50005"), or as `vcgencmd` does
/// ("throttled=0x50005"). `None` for anything else.
pub fn parse_throttled(text: &str) -> Option<u32> {
    let text = text.trim();
    let text = text.strip_prefix("throttled=").unwrap_or(text);
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The status flags a `get_throttled` value means.
pub fn status_from_throttled(value: u32) -> PowerStatus {
    PowerStatus {
        undervoltage_now: value & bits::UNDERVOLTAGE_NOW != 0,
        undervoltage_since_boot: value & bits::UNDERVOLTAGE_SINCE_BOOT != 0,
        throttled_now: value & (bits::THROTTLED_NOW | bits::FREQ_CAPPED_NOW) != 0,
    }
}

/// Parses a hwmon alarm file ("0" or "1").
pub fn parse_lcrit_alarm(text: &str) -> Option<bool> {
    match text.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// Where the flags were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PowerSource {
    /// Raspberry Pi OS firmware attribute.
    GetThrottled(PathBuf),
    /// Mainline `rpi_volt` hwmon alarm.
    HwmonAlarm(PathBuf),
}

/// Looks for the flag files below `sysfs` (normally `/sys`).
pub fn find_sources(sysfs: &Path) -> Vec<PowerSource> {
    let mut found = Vec::new();
    // The firmware device: soc:firmware on Pi 1-4, other names on newer boards; look one
    // and two levels below /sys/devices/platform for a *firmware* device with the file.
    let platform = sysfs.join("devices/platform");
    let mut candidates = vec![platform.join("soc/soc:firmware/get_throttled")];
    for dir in list_dir(&platform) {
        if name_of(&dir).contains("firmware") {
            candidates.push(dir.join("get_throttled"));
        }
        for sub in list_dir(&dir) {
            if name_of(&sub).contains("firmware") {
                candidates.push(sub.join("get_throttled"));
            }
        }
    }
    candidates.sort();
    candidates.dedup();
    for file in candidates {
        if file.is_file() {
            found.push(PowerSource::GetThrottled(file));
        }
    }
    let mut hwmons = list_dir(&sysfs.join("class/hwmon"));
    hwmons.sort();
    for hwmon in hwmons {
        let name = std::fs::read_to_string(hwmon.join("name")).unwrap_or_default();
        let alarm = hwmon.join("in0_lcrit_alarm");
        if name.trim() == "rpi_volt" && alarm.is_file() {
            found.push(PowerSource::HwmonAlarm(alarm));
        }
    }
    found
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads the flags from every source below `sysfs` and combines them. `None` when the box
/// has none (not a Raspberry Pi, or sysfs not mounted): then nothing is known, which is
/// not the same as "power is fine".
pub fn read_power(sysfs: &Path) -> Option<PowerStatus> {
    let mut combined: Option<PowerStatus> = None;
    for source in find_sources(sysfs) {
        let reading = match &source {
            PowerSource::GetThrottled(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|t| parse_throttled(&t))
                .map(status_from_throttled),
            PowerSource::HwmonAlarm(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|t| parse_lcrit_alarm(&t))
                .map(|alarm| PowerStatus {
                    undervoltage_now: alarm,
                    undervoltage_since_boot: alarm,
                    throttled_now: false,
                }),
        };
        if let Some(reading) = reading {
            let c = combined.get_or_insert_with(PowerStatus::default);
            c.undervoltage_now |= reading.undervoltage_now;
            c.undervoltage_since_boot |= reading.undervoltage_since_boot;
            c.throttled_now |= reading.throttled_now;
        }
    }
    combined
}

/// Polls [`read_power`] and keeps "undervoltage since boot" set once seen (the hwmon
/// alarm and, with the hwmon driver loaded, even the firmware's sticky bit get cleared by
/// the kernel's own polling).
#[derive(Debug)]
pub struct PowerMonitor {
    sysfs: PathBuf,
    seen_undervoltage: bool,
}

impl PowerMonitor {
    pub fn new(sysfs: impl Into<PathBuf>) -> Self {
        PowerMonitor {
            sysfs: sysfs.into(),
            seen_undervoltage: false,
        }
    }

    pub fn poll(&mut self) -> Option<PowerStatus> {
        let mut status = read_power(&self.sysfs)?;
        self.seen_undervoltage |= status.undervoltage_now || status.undervoltage_since_boot;
        status.undervoltage_since_boot = self.seen_undervoltage;
        Some(status)
    }
}

/// How often [`watch`] looks (the kernel itself polls the firmware every 2 s).
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Publishes the power flags into `status.system.power` every [`POLL_INTERVAL`] until
/// shutdown. Returns at once when the box has no flags to read.
pub async fn watch(sysfs: PathBuf, status: StatusHandle, shutdown: Shutdown) {
    let mut monitor = PowerMonitor::new(sysfs);
    let Some(first) = monitor.poll() else {
        tracing::info!("no Raspberry Pi power flags in sysfs: not watching the power supply");
        return;
    };
    let mut last = first.clone();
    status.update(|s| s.system.power = first);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let Some(power) = monitor.poll() else {
            continue;
        };
        if power.undervoltage_now && !last.undervoltage_now {
            tracing::warn!("the Raspberry Pi reports undervoltage: the power supply is too weak");
        }
        last = power.clone();
        status.update(|s| s.system.power = power);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn parses_kernel_and_vcgencmd_forms() {
        assert_eq!(parse_throttled("50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("throttled=0x50000"), Some(0x50000));
        assert_eq!(parse_throttled("0x0"), Some(0));
        assert_eq!(parse_throttled(""), None);
        assert_eq!(parse_throttled("garbage"), None);
        assert_eq!(parse_throttled("123456789"), None);
    }

    #[test]
    fn bits_mean_what_the_firmware_says() {
        let s = status_from_throttled(0x50005);
        assert!(s.undervoltage_now && s.undervoltage_since_boot && s.throttled_now);
        let s = status_from_throttled(0x50000);
        assert!(!s.undervoltage_now && s.undervoltage_since_boot && !s.throttled_now);
        assert_eq!(status_from_throttled(0), PowerStatus::default());
        // Soft temperature limit alone is not a power problem.
        assert_eq!(
            status_from_throttled(bits::SOFT_TEMP_LIMIT_NOW),
            PowerStatus::default()
        );
    }

    #[test]
    fn alarm_file() {
        assert_eq!(parse_lcrit_alarm("1\n"), Some(true));
        assert_eq!(parse_lcrit_alarm("0"), Some(false));
        assert_eq!(parse_lcrit_alarm("x"), None);
    }

    #[test]
    fn reads_raspberry_pi_os_tree() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root
                .path()
                .join("devices/platform/soc/soc:firmware/get_throttled"),
            "50005\n",
        );
        let power = read_power(root.path()).unwrap();
        assert!(power.undervoltage_now);
        assert!(power.undervoltage_since_boot);
    }

    #[test]
    fn reads_mainline_hwmon_tree() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join("class/hwmon/hwmon0/name"),
            "cpu_thermal\n",
        );
        write(
            &root.path().join("class/hwmon/hwmon0/in0_lcrit_alarm"),
            "1\n",
        );
        write(&root.path().join("class/hwmon/hwmon1/name"), "rpi_volt\n");
        let alarm = root.path().join("class/hwmon/hwmon1/in0_lcrit_alarm");
        write(&alarm, "0\n");
        assert_eq!(
            find_sources(root.path()),
            vec![PowerSource::HwmonAlarm(alarm.clone())]
        );
        let mut monitor = PowerMonitor::new(root.path());
        assert_eq!(monitor.poll(), Some(PowerStatus::default()));
        write(&alarm, "1\n");
        assert!(monitor.poll().unwrap().undervoltage_now);
        // The alarm clears, "since boot" stays.
        write(&alarm, "0\n");
        let power = monitor.poll().unwrap();
        assert!(!power.undervoltage_now);
        assert!(power.undervoltage_since_boot);
    }

    #[test]
    fn no_flags_on_other_machines() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_power(root.path()), None);
        assert_eq!(read_power(Path::new("/nonexistent")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn watch_publishes_undervoltage_into_status() {
        let root = tempfile::tempdir().unwrap();
        let file = root
            .path()
            .join("devices/platform/soc/soc:firmware/get_throttled");
        write(&file, "0\n");
        let status = StatusHandle::new();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(watch(
            root.path().to_path_buf(),
            status.clone(),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(status.snapshot().alerts().is_empty());
        write(&file, "50005\n");
        tokio::time::sleep(POLL_INTERVAL).await;
        let alerts = status.snapshot().alerts();
        assert_eq!(
            alerts[0].kind,
            crate::status::AlertKind::Undervoltage,
            "{alerts:?}"
        );
        shutdown.trigger();
        task.await.unwrap();
    }
}
