//! plugnode's side of the root update helper (`systemd/update-helper`, reached over
//! `/run/plugnode-update.sock`): plugnode runs unprivileged, so RAUC's checks, the slot
//! writes and the boot selection happen there. One request line per connection; answers
//! are lines: `progress <percent> <message>` while installing, then `ok <rest>` or
//! `error <kind> <detail>` (the protocol is in `systemd/README.md`).

use super::release::BundleInfo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why the helper refused or failed, with the words the page shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error(
        "This file is not a complete plugnode update bundle (it may have been cut short while \
         downloading, or is another kind of file): nothing was changed. Download the bundle \
         again. ({0})"
    )]
    NotABundle(String),
    #[error(
        "This bundle is not signed by plugnode's update key, so it was not installed and \
         nothing was changed. Only install bundles from plugnode's releases. ({0})"
    )]
    BadSignature(String),
    #[error(
        "This bundle is for another kind of system ({0}), not for this box: nothing was \
         changed. Download the bundle for the Raspberry Pi."
    )]
    Incompatible(String),
    #[error("Another update is being installed right now: wait until it is done.")]
    Busy,
    #[error("The update failed: {0}. Nothing was changed on the running system.")]
    Failed(String),
    #[error(
        "The box's update helper does not answer ({0}): check that plugnode-update.socket \
         is enabled (the SD-card image enables it)."
    )]
    Unreachable(String),
    #[error("The box's update helper gave no answer within {0} s.")]
    TimedOut(u64),
}

/// What the helper says about the system slots.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SlotStatus {
    /// The slot running now ("A" or "B").
    pub booted: String,
    /// The slot the firmware boots unless told to try the other one once.
    pub default: String,
    /// This boot is the one-shot trial of a new version.
    pub trial: bool,
    #[serde(default)]
    pub slots: BTreeMap<String, SlotInfo>,
    pub last_failed_trial: Option<FailedTrial>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SlotInfo {
    pub version: Option<String>,
    pub state: String,
}

/// A trial that did not prove itself; the box went back to `back_on`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FailedTrial {
    pub version: String,
    pub back_on: String,
    pub reason: String,
    pub at: u64,
}

/// How long a check may take (verifying a large bundle on a slow card).
const ANSWER_LIMIT: Duration = Duration::from_secs(300);
/// How long the status may take: plugnode asks at start, before its page is up.
const STATUS_LIMIT: Duration = Duration::from_secs(15);
/// The longest silence while installing (RAUC reports progress as it writes).
const INSTALL_SILENCE_LIMIT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct UpdateHelper {
    socket: PathBuf,
}

impl UpdateHelper {
    pub fn new(socket: PathBuf) -> Self {
        UpdateHelper { socket }
    }

    pub async fn status(&self) -> Result<SlotStatus, HelperError> {
        let answer = self.ask("status", STATUS_LIMIT, |_, _| {}).await?;
        parse_json(&answer)
    }

    /// Verifies the bundle `name` (in plugnode's `update/` directory): signature,
    /// compatibility, release file.
    pub async fn check(&self, name: &str) -> Result<BundleInfo, HelperError> {
        let answer = self
            .ask(&format!("check {name}"), ANSWER_LIMIT, |_, _| {})
            .await?;
        parse_json(&answer)
    }

    /// Writes the bundle to the other slot and makes it the one-shot trial; `progress`
    /// hears RAUC's steps. Returns the slot written.
    pub async fn install(
        &self,
        name: &str,
        progress: impl FnMut(u8, &str),
    ) -> Result<String, HelperError> {
        self.ask(&format!("install {name}"), INSTALL_SILENCE_LIMIT, progress)
            .await
    }

    /// Makes the booted trial slot the default. `false`: this boot was no trial.
    pub async fn mark_good(&self) -> Result<bool, HelperError> {
        Ok(self.ask("mark-good", ANSWER_LIMIT, |_, _| {}).await? == "committed")
    }

    /// Ends a failed trial: the helper records `reason` and restarts into the default slot.
    pub async fn give_up(&self, reason: &str) -> Result<(), HelperError> {
        let one_line = reason.replace(['\n', '\r'], " ");
        self.ask(&format!("give-up {one_line}"), ANSWER_LIMIT, |_, _| {})
            .await
            .map(|_| ())
    }

    async fn ask(
        &self,
        request: &str,
        silence_limit: Duration,
        mut progress: impl FnMut(u8, &str),
    ) -> Result<String, HelperError> {
        let unreachable = |err: std::io::Error| HelperError::Unreachable(err.to_string());
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(unreachable)?;
        stream
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(unreachable)?;
        let mut lines = BufReader::new(stream).lines();
        loop {
            let line = tokio::time::timeout(silence_limit, lines.next_line())
                .await
                .map_err(|_| HelperError::TimedOut(silence_limit.as_secs()))?
                .map_err(unreachable)?
                .ok_or_else(|| {
                    HelperError::Unreachable("it closed the connection without an answer".into())
                })?;
            match parse_line(&line) {
                Line::Progress(percent, message) => progress(percent, message),
                Line::Ok(rest) => return Ok(rest.to_string()),
                Line::Error(err) => return Err(err),
            }
        }
    }
}

enum Line<'a> {
    Progress(u8, &'a str),
    Ok(&'a str),
    Error(HelperError),
}

fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("progress ") {
        let (percent, message) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Ok(percent) = percent.parse::<u8>() {
            return Line::Progress(percent.min(100), message);
        }
    }
    if line == "ok" {
        return Line::Ok("");
    }
    if let Some(rest) = line.strip_prefix("ok ") {
        return Line::Ok(rest);
    }
    let Some(rest) = line.strip_prefix("error ") else {
        return Line::Error(HelperError::Failed(format!(
            "the update helper answered {:?}",
            line.chars().take(200).collect::<String>()
        )));
    };
    let (kind, detail) = rest.split_once(' ').unwrap_or((rest, ""));
    let detail = detail.to_string();
    Line::Error(match kind {
        "not-a-bundle" => HelperError::NotABundle(detail),
        "bad-signature" => HelperError::BadSignature(detail),
        "incompatible" => HelperError::Incompatible(detail),
        "busy" => HelperError::Busy,
        _ if detail.is_empty() => HelperError::Failed(kind.to_string()),
        "failed" => HelperError::Failed(detail),
        _ => HelperError::Failed(rest.to_string()),
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(answer: &str) -> Result<T, HelperError> {
    serde_json::from_str(answer).map_err(|err| {
        HelperError::Failed(format!(
            "the update helper's answer is not understood ({err})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A helper that answers each connection with `answers` (after reading the request).
    fn fake_helper(dir: &std::path::Path, answers: &'static [&'static str]) -> UpdateHelper {
        let socket = dir.join("update.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (read, mut write) = stream.into_split();
                let mut request = String::new();
                BufReader::new(read).read_line(&mut request).await.unwrap();
                for answer in answers {
                    write
                        .write_all(format!("{answer}\n").as_bytes())
                        .await
                        .unwrap();
                }
            }
        });
        UpdateHelper::new(socket)
    }

    #[tokio::test]
    async fn install_reports_progress_then_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let helper = fake_helper(
            dir.path(),
            &[
                "progress 0 Installing",
                "progress 40 Copying image to rootfs.1",
                "ok B",
            ],
        );
        let mut seen = Vec::new();
        let slot = helper
            .install("upload.raucb", |percent, message| {
                seen.push((percent, message.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(slot, "B");
        assert_eq!(seen[1], (40, "Copying image to rootfs.1".to_string()));
    }

    #[tokio::test]
    async fn refusals_become_the_words_the_page_shows() {
        let dir = tempfile::tempdir().unwrap();
        let helper = fake_helper(
            dir.path(),
            &["error bad-signature signature verification failed: self-signed certificate"],
        );
        let err = helper.check("upload.raucb").await.unwrap_err();
        assert!(matches!(err, HelperError::BadSignature(_)));
        assert!(err
            .to_string()
            .contains("not signed by plugnode's update key"));
        assert!(err.to_string().contains("self-signed certificate"));
    }

    #[tokio::test]
    async fn status_is_parsed_and_nonsense_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let helper = fake_helper(
            dir.path(),
            &[
                r#"ok {"booted":"B","default":"A","trial":true,"slots":{"A":{"version":"0.3.0","state":"good"}},"last_failed_trial":null}"#,
            ],
        );
        let status = helper.status().await.unwrap();
        assert!(status.trial);
        assert_eq!(status.slots["A"].version.as_deref(), Some("0.3.0"));

        for line in ["ok {", "what?", "error", "progress x y"] {
            match parse_line(line) {
                Line::Ok(rest) => assert!(parse_json::<SlotStatus>(rest).is_err()),
                Line::Error(err) => assert!(!err.to_string().is_empty()),
                Line::Progress(..) => panic!("{line:?} is no progress line"),
            }
        }
    }

    #[tokio::test]
    async fn a_missing_helper_says_which_unit_to_enable() {
        let dir = tempfile::tempdir().unwrap();
        let err = UpdateHelper::new(dir.path().join("none.sock"))
            .status()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("plugnode-update.socket"), "{err}");
    }
}
