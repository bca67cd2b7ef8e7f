//! Bitcoin Core style log lines: `2025-01-02T03:04:05Z message`, on stdout
//! (`-printtoconsole`) and in `<datadir>/regtest/debug.log`.
//!
//! plugnode shows bitcoind's last printed lines to the user when it crashes, so the sim
//! prints the lines a user would see from Core (banner, "init message: …", "UpdateTip: …",
//! "Shutdown: done").

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
pub struct Logger {
    console: bool,
    file: Mutex<Option<File>>,
}

impl Logger {
    /// A logger printing to stdout when `console`, and appending to `file` when given.
    pub fn new(console: bool, file: Option<&Path>) -> Logger {
        let file = file.and_then(|path| {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            OpenOptions::new().create(true).append(true).open(path).ok()
        });
        Logger {
            console,
            file: Mutex::new(file),
        }
    }

    /// Logs one line (several if `message` has newlines) with a timestamp.
    pub fn log(&self, message: impl AsRef<str>) {
        let stamp = iso8601(unix_now());
        let mut text = String::new();
        for line in message.as_ref().lines() {
            text.push_str(&stamp);
            text.push(' ');
            text.push_str(line);
            text.push('\n');
        }
        if self.console {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        if let Some(file) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (year, month, day) of a day number counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn split(secs: u64) -> (i64, u32, u32, u64, u64, u64, i64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60, days)
}

/// Core's `FormatISO8601DateTime`: `2011-02-02T23:16:42Z`.
pub fn iso8601(secs: u64) -> String {
    let (y, m, d, hh, mm, ss, _) = split(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// An HTTP `Date:` header value (RFC 7231 IMF-fixdate).
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss, days) = split(secs);
    format!(
        "{}, {d:02} {} {y:04} {hh:02}:{mm:02}:{ss:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_core() {
        // The regtest genesis block's time.
        assert_eq!(iso8601(1_296_688_602), "2011-02-02T23:16:42Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
