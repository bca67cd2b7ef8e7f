//! Alerts derived from the status parts: what the user must know, and what to do about it.

use super::{BackupState, BitcoindState, LightningState, Status, UpdateResult, UpdateState};
use serde::Serialize;

/// Free space on the data disk below which the box warns (whichever is larger: this or
/// 5 % of the disk).
const DISK_NEARLY_FULL_BYTES: u64 = 1024 * 1024 * 1024;

/// Stable alert identifiers: the web page and the e-ink screen key their icons and texts on
/// these, logs carry the full cause chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    BitcoindCrashLoop,
    BitcoindRestarting,
    BitcoindFailed,
    BitcoindUncleanStop,
    InsufficientDisk,
    DiskNearlyFull,
    Undervoltage,
    BackupFailed,
    LightningFailed,
    DisplayFailed,
    ChannelClosedOnStart,
    StartFailed,
    ServiceStopped,
    UpdateProving,
    UpdateDone,
    UpdateRolledBack,
    UpdateGivingUp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Good news worth a look ("Updated to 0.4.0").
    Notice,
    Warning,
    Critical,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// A few words, short enough for the e-ink screen.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
}

impl Status {
    /// Every alert the current status implies, most severe first.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut push = |kind, severity, title: &str, message: String| {
            alerts.push(Alert {
                kind,
                severity,
                title: title.to_string(),
                message,
            })
        };

        if let Some(failure) = &self.system.start_failure {
            push(
                AlertKind::StartFailed,
                Severity::Critical,
                &failure.problem,
                format!(
                    "{} Then press Retry on the web page ({}), or shut the box down there.",
                    failure.detail,
                    self.system
                        .https_url
                        .as_deref()
                        .or(self.system.web_url.as_deref())
                        .unwrap_or("http://plugnode.local")
                ),
            );
        }
        if !self.system.stopped_services.is_empty() {
            push(
                AlertKind::ServiceStopped,
                Severity::Critical,
                "plugnode stopped itself",
                format!(
                    "plugnode's {} stopped unexpectedly (a bug in plugnode), so the box stops \
                     in order. Start it again; if this happens again, report the log.",
                    self.system.stopped_services.join(", ")
                ),
            );
        }
        if self.bitcoind.unclean_last_stop && self.bitcoind.state != BitcoindState::Ready {
            push(
                AlertKind::BitcoindUncleanStop,
                Severity::Warning,
                "bitcoind was not stopped cleanly",
                "bitcoind's last run ended without its clean shutdown (the power was cut, or \
                 it was killed), so it is fetching and checking its recent blocks again: this \
                 can take a while. Next time, shut the box down from the web page or by \
                 holding KEY4 before unplugging it."
                    .to_string(),
            );
        }
        match &self.bitcoind.state {
            BitcoindState::CrashLoop {
                exits,
                window_secs,
                last_exit,
                ..
            } => push(
                AlertKind::BitcoindCrashLoop,
                Severity::Critical,
                "bitcoind keeps crashing",
                format!(
                    "bitcoind exited {exits} times within {} minutes (last: {last_exit}). \
                     plugnode stopped restarting it. The web page shows its last lines: fix \
                     the cause (disk, memory, corrupted data), then press Retry there.",
                    window_secs / 60
                ),
            ),
            BitcoindState::Restarting {
                last_exit,
                retry_in_secs,
            } => push(
                AlertKind::BitcoindRestarting,
                Severity::Warning,
                "bitcoind restarting",
                format!(
                    "bitcoind stopped unexpectedly ({last_exit}); plugnode starts it again in \
                     {retry_in_secs} s."
                ),
            ),
            BitcoindState::Failed { message } => push(
                AlertKind::BitcoindFailed,
                Severity::Critical,
                "bitcoind failed",
                message.clone(),
            ),
            BitcoindState::InsufficientDisk {
                needed_bytes,
                free_bytes,
                path,
            } => push(
                AlertKind::InsufficientDisk,
                Severity::Critical,
                "Disk too small",
                format!(
                    "bitcoind needs {} free on {path} but only {} is free. Free up space, use \
                     a larger disk, or lower bitcoind.prune_mib in the config; then press Retry.",
                    human_bytes(*needed_bytes),
                    human_bytes(*free_bytes)
                ),
            ),
            _ => {}
        }

        if let (Some(free), Some(total)) = (
            self.system.data_disk_free_bytes,
            self.system.data_disk_total_bytes,
        ) {
            let threshold = DISK_NEARLY_FULL_BYTES.max(total / 20);
            if free < threshold
                && !matches!(self.bitcoind.state, BitcoindState::InsufficientDisk { .. })
            {
                push(
                    AlertKind::DiskNearlyFull,
                    Severity::Warning,
                    "Disk nearly full",
                    format!(
                        "Only {} of {} is free on the data disk. bitcoind stops when it runs \
                         out: free up space or move to a larger disk.",
                        human_bytes(free),
                        human_bytes(total)
                    ),
                );
            }
        }

        let power = &self.system.power;
        if power.undervoltage_now || power.undervoltage_since_boot {
            push(
                AlertKind::Undervoltage,
                Severity::Warning,
                "Power supply too weak",
                "The Raspberry Pi reports undervoltage. Use the official power supply (5 V, 3 A \
                 for a Pi 4): weak power corrupts SD cards."
                    .to_string(),
            );
        }

        if let BackupState::Failed { message } = &self.backup.state {
            push(
                AlertKind::BackupFailed,
                Severity::Critical,
                "Backup stick failed",
                format!(
                    "{message} Channel state is only on the SD card until a working stick is \
                     attached."
                ),
            );
        }

        if let Some(message) = &self.system.display_error {
            push(
                AlertKind::DisplayFailed,
                Severity::Warning,
                "Screen not working",
                message.clone(),
            );
        }

        if self.lightning.force_closed_on_start > 0 {
            push(
                AlertKind::ChannelClosedOnStart,
                Severity::Warning,
                "Channel closed on restart",
                format!(
                    "{} channel(s) were closed when the node started: the box lost power or \
                     crashed in the middle of a channel update, and the Lightning node then \
                     closes the channel to keep the funds safe. Your side comes back to the \
                     on-chain wallet after the channel's delay (about a day).",
                    self.lightning.force_closed_on_start
                ),
            );
        }

        if let LightningState::Failed { message } = &self.lightning.state {
            push(
                AlertKind::LightningFailed,
                Severity::Critical,
                "Lightning stopped",
                message.clone(),
            );
        }

        self.update_alerts(&mut push);

        alerts.sort_by_key(|alert| std::cmp::Reverse(alert.severity));
        alerts
    }

    /// What the screen and the page say about a system update.
    fn update_alerts(&self, push: &mut impl FnMut(AlertKind, Severity, &str, String)) {
        let update = &self.update;
        match &update.state {
            UpdateState::Proving {
                version,
                waiting_for,
                ..
            } => push(
                AlertKind::UpdateProving,
                Severity::Notice,
                &format!("Checking update {version}"),
                format!(
                    "The box runs {version} for the first time and keeps it once {} \
                     work. If it does not, the box goes back to the previous version by itself.",
                    if waiting_for.is_empty() {
                        "bitcoind, Lightning and the backup".to_string()
                    } else {
                        waiting_for.join(", ")
                    }
                ),
            ),
            UpdateState::GivingUp { version, reason } => push(
                AlertKind::UpdateGivingUp,
                Severity::Critical,
                &format!("Update {version} failed"),
                format!("{reason} The box restarts into the previous version now."),
            ),
            _ => {}
        }
        if update.last_result_seen {
            return;
        }
        match &update.last_result {
            Some(UpdateResult::Updated { version, from, .. }) => push(
                AlertKind::UpdateDone,
                Severity::Notice,
                &format!("Updated to {version}"),
                format!(
                    "The box runs {version} now (before: {from}); bitcoind, Lightning and the \
                     backup proved themselves on it."
                ),
            ),
            Some(UpdateResult::RolledBack {
                version,
                back_on,
                reason,
                ..
            }) => push(
                AlertKind::UpdateRolledBack,
                Severity::Warning,
                &format!("Update {version} did not start"),
                format!(
                    "The update to {version} did not start; you are back on {back_on}. \
                     Reason: {reason} Nothing of your channels, wallet, chain or settings \
                     changed. Report this with the box's log before trying again."
                ),
            ),
            None => {}
        }
    }
}

/// "1.5 GB" style sizes for people (decimal units, as disk makers print them).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{PowerStatus, Status};

    #[test]
    fn a_healthy_box_has_no_alerts() {
        assert!(Status::default().alerts().is_empty());
    }

    /// Diagnostic mode's face on the e-ink: the alert screen comes up with the problem as
    /// its title, and the message says where Retry is.
    #[test]
    fn a_failed_start_is_a_critical_alert_that_points_to_the_page() {
        let mut status = Status::default();
        status.system.start_failure = Some(crate::status::StartFailure {
            problem: "The data disk is full".into(),
            detail: "Cannot create /var/lib/plugnode/lightning. Free up space.".into(),
        });
        status.system.https_url = Some("https://plugnode.local/".into());
        let alerts = status.alerts();
        assert_eq!(alerts[0].kind, AlertKind::StartFailed);
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert_eq!(alerts[0].title, "The data disk is full");
        assert!(
            alerts[0].message.contains("Free up space"),
            "{}",
            alerts[0].message
        );
        assert!(
            alerts[0]
                .message
                .contains("Retry on the web page (https://plugnode.local/)"),
            "{}",
            alerts[0].message
        );
    }

    #[test]
    fn critical_alerts_come_first() {
        let mut status = Status::default();
        status.system.power = PowerStatus {
            undervoltage_now: true,
            ..PowerStatus::default()
        };
        status.bitcoind.state = BitcoindState::CrashLoop {
            exits: 5,
            window_secs: 600,
            last_exit: "exit code 1".into(),
            last_lines: vec!["Error: something".into()],
        };
        let kinds: Vec<_> = status.alerts().iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            vec![AlertKind::BitcoindCrashLoop, AlertKind::Undervoltage]
        );
    }

    #[test]
    fn nearly_full_disk_warns() {
        let mut status = Status::default();
        status.system.data_disk_total_bytes = Some(32_000_000_000);
        status.system.data_disk_free_bytes = Some(900_000_000);
        assert_eq!(status.alerts()[0].kind, AlertKind::DiskNearlyFull);
        assert!(status.alerts()[0].message.contains("900 MB"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(32_000_000_000), "32 GB");
    }
}
