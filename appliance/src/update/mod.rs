//! System updates: signed A/B bundles installed by the image's root helper (RAUC), a
//! one-shot trial boot of the new version, and its "mark good" once it proved itself.
//!
//! - [`release`]: what a version is, and whether a checked bundle suits this box;
//! - [`helper`]: the root helper's protocol (check, install, mark-good, give-up, status);
//! - [`trial`]: the rule that proves a new version (or fails it);
//! - [`data_format`]: no version runs on data a newer one wrote.
//!
//! The flow: a bundle arrives (upload or download) → the helper verifies its signature and
//! compatibility and reads its release file → plugnode checks architecture and data format
//! → the user presses Install (password again, KEY2 on a box with keys) → the helper writes
//! the other slot and arms the firmware's one-shot `tryboot` → plugnode stops in order,
//! exactly like a shutdown, and exits with [`crate::shutdown::EXIT_UPDATE`] → the unit
//! reboots with tryboot → the new version runs once on trial → proven: mark-good, "Updated
//! to X"; not proven within the limit (or it never starts): the box restarts into the old
//! slot, which says "The update to X did not start" with the reason.

pub mod data_format;
pub mod helper;
pub mod release;
pub mod trial;

pub use helper::{HelperError, SlotStatus, UpdateHelper};
pub use release::{BundleInfo, Release, DATA_FORMAT};

use crate::shutdown::Shutdown;
use crate::status::{unix_now, BundleSummary, StatusHandle, UpdateResult, UpdateState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The name the uploaded or downloaded bundle gets in `<data dir>/update/` (the helper
/// takes names from this directory only).
pub const BUNDLE_NAME: &str = "upload.raucb";
/// The largest bundle accepted (a system image, compressed, is a few hundred MB).
pub const MAX_BUNDLE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What the update service needs, filled from the config.
#[derive(Clone, Debug)]
pub struct UpdateSettings {
    pub enabled: bool,
    pub helper_socket: PathBuf,
    pub release_file: PathBuf,
    pub trial_limit: Duration,
    pub download_url: Option<String>,
    /// plugnode's data directory (`update/` in it holds the bundle and the records).
    pub data_dir: PathBuf,
}

/// Why an update request was refused; each says what to do, and nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// Signed and compatible, but not for this box or its data.
    #[error("{0}")]
    Refused(String),
    #[error("There is no checked bundle to install: upload or download one first.")]
    NoBundle,
    #[error(
        "The bundle is larger than {} GB: this is no plugnode update bundle.",
        MAX_BUNDLE_BYTES / 1_000_000_000
    )]
    TooLarge,
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Download(String),
}

/// The update service, shared by the web page and its own tasks.
#[derive(Clone)]
pub struct UpdateHandle {
    inner: Arc<Inner>,
}

struct Inner {
    settings: UpdateSettings,
    helper: UpdateHelper,
    status: StatusHandle,
    shutdown: Shutdown,
    running: Release,
    /// The slots as the helper saw them at start (`None`: updates unavailable).
    slots: Option<SlotStatus>,
    /// This boot tries a new version that is not proven (nor given up on) yet.
    proving: std::sync::atomic::AtomicBool,
    /// The checked bundle waiting for Install, and what the page shows of it.
    checked: Mutex<Option<(BundleInfo, BundleSummary)>>,
    /// Something is being received, checked or installed.
    busy: Mutex<bool>,
    runtime: tokio::runtime::Handle,
}

impl UpdateHandle {
    /// Reads the running release and asks the helper about the slots. On a trial boot,
    /// starts watching for the proof. Never fails the box: updates are reported as
    /// unavailable instead.
    pub async fn start(
        settings: UpdateSettings,
        status: StatusHandle,
        shutdown: Shutdown,
    ) -> UpdateHandle {
        let running = Release::of_the_system(&settings.release_file).unwrap_or_else(|err| {
            warn!("{err:#}; showing plugnode's own version");
            Release::of_this_build()
        });
        let helper = UpdateHelper::new(settings.helper_socket.clone());
        let slots = if settings.enabled {
            match helper.status().await {
                Ok(slots) => Some(slots),
                Err(err) => {
                    warn!("updates are unavailable: {err}");
                    None
                }
            }
        } else {
            None
        };
        let trial = slots.as_ref().is_some_and(|s| s.trial);
        // The data moves to this version's format only outside a trial.
        if let Err(err) = data_format::record(&settings.data_dir, DATA_FORMAT, trial) {
            warn!("cannot record the data format: {err}");
        }
        let last_result = last_result(&settings.data_dir, slots.as_ref());
        let seen = last_result
            .as_ref()
            .is_some_and(|result| seen_at(&settings.data_dir) == Some(result_at(result)));
        status.update(|s| {
            s.update.running_version = running.version.clone();
            s.update.slot = slots.as_ref().map(|slots| slots.booted.clone());
            s.update.state = if slots.is_some() {
                UpdateState::Idle
            } else {
                UpdateState::Unavailable
            };
            s.update.last_result = last_result;
            s.update.last_result_seen = seen;
        });
        let handle = UpdateHandle {
            inner: Arc::new(Inner {
                settings,
                helper,
                status,
                shutdown,
                running,
                slots,
                proving: std::sync::atomic::AtomicBool::new(trial),
                checked: Mutex::new(None),
                busy: Mutex::new(false),
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        if trial {
            tokio::spawn(handle.clone().prove_this_version());
        }
        handle
    }

    /// Where an arriving bundle is written (then [`UpdateHandle::check_received`]).
    pub fn bundle_path(&self) -> PathBuf {
        self.inner
            .settings
            .data_dir
            .join("update")
            .join(BUNDLE_NAME)
    }

    /// Claims the service for receiving a bundle: refuses while another is received,
    /// checked or installed, or when updates are unavailable. The claim ends with
    /// [`UpdateHandle::check_received`] or [`UpdateHandle::receive_failed`].
    pub fn begin_receiving(&self) -> Result<PathBuf, UpdateError> {
        self.available()?;
        self.claim()?;
        *self.inner.checked.lock().unwrap() = None;
        let path = self.bundle_path();
        // A new file each time: the one checked before may belong to root now (RAUC
        // takes it over while it reads it), and a rewrite in place would be refused.
        let _ = std::fs::remove_file(&path);
        let prepared = path
            .parent()
            .map(|dir| crate::fsutil::ensure_private_dir(dir, 0o700))
            .unwrap_or(Ok(()));
        if let Err(err) = prepared {
            self.release_claim();
            return Err(UpdateError::Storage(format!(
                "cannot make room for the bundle in the data directory: {err}"
            )));
        }
        self.inner
            .status
            .update(|s| s.update.state = UpdateState::Checking);
        Ok(path)
    }

    /// Receiving failed half-way: the partial file is removed and nothing else changed.
    pub fn receive_failed(&self, why: &str) {
        let _ = std::fs::remove_file(self.bundle_path());
        self.inner.status.update(|s| {
            s.update.state = UpdateState::Failed {
                message: why.to_string(),
            }
        });
        self.release_claim();
    }

    /// Has the helper verify the received bundle, then judges it for this box.
    pub async fn check_received(&self) -> Result<BundleSummary, UpdateError> {
        let result = self.check().await;
        match &result {
            Ok(summary) => {
                let summary = summary.clone();
                self.inner
                    .status
                    .update(|s| s.update.state = UpdateState::Ready { bundle: summary });
            }
            Err(err) => {
                let _ = std::fs::remove_file(self.bundle_path());
                let message = err.to_string();
                self.inner
                    .status
                    .update(|s| s.update.state = UpdateState::Failed { message });
            }
        }
        self.release_claim();
        result
    }

    async fn check(&self) -> Result<BundleSummary, UpdateError> {
        let info = self.inner.helper.check(BUNDLE_NAME).await?;
        let box_format = data_format::stored(&self.inner.settings.data_dir)
            .map_err(|err| UpdateError::Storage(err.to_string()))?;
        if let Some(why) = release::refusal(&info, box_format) {
            return Err(UpdateError::Refused(why));
        }
        let size = std::fs::metadata(self.bundle_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let summary = BundleSummary {
            version: info.version.clone(),
            compatible: info.compatible.clone(),
            signer: info.signer.clone(),
            notes: if info.release.notes.is_empty() {
                info.description.clone().unwrap_or_default()
            } else {
                info.release.notes.clone()
            },
            data_format: info.release.data_format,
            size,
        };
        info!(
            "update bundle {} checked: signed by {}, {} bytes",
            summary.version, summary.signer, summary.size
        );
        *self.inner.checked.lock().unwrap() = Some((info, summary.clone()));
        Ok(summary)
    }

    /// Downloads the bundle from `update.download_url`, then checks it.
    pub async fn download(&self) -> Result<BundleSummary, UpdateError> {
        let Some(url) = self.inner.settings.download_url.clone() else {
            return Err(UpdateError::Unavailable(
                "No download address is set (update.download_url in the config): upload a \
                 bundle file instead."
                    .into(),
            ));
        };
        let path = self.begin_receiving()?;
        match fetch(&url, &path).await {
            Ok(()) => self.check_received().await,
            Err(why) => {
                self.receive_failed(&why);
                Err(UpdateError::Download(why))
            }
        }
    }

    /// The checked bundle's version, before asking for the key press.
    pub fn checked_version(&self) -> Result<String, UpdateError> {
        self.available()?;
        if self.inner.proving.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(UpdateError::Busy(
                "The box is still proving the version it runs: install another one once it \
                 says \"Updated\" (or went back)."
                    .into(),
            ));
        }
        self.inner
            .checked
            .lock()
            .unwrap()
            .as_ref()
            .map(|(info, _)| info.version.clone())
            .ok_or(UpdateError::NoBundle)
    }

    /// The box asks for KEY2: the page says so until it is answered.
    pub fn waiting_for_key(&self, version: &str) {
        let version = version.to_string();
        self.inner
            .status
            .update(|s| s.update.state = UpdateState::WaitingForKey { version });
    }

    /// KEY2 was not pressed: the checked bundle waits again.
    pub fn key_not_pressed(&self) {
        let checked = self.inner.checked.lock().unwrap().clone();
        self.inner.status.update(|s| {
            s.update.state = match checked {
                Some((_, bundle)) => UpdateState::Ready { bundle },
                None => UpdateState::Idle,
            }
        });
    }

    /// Installs the checked bundle in the background (the page follows the progress in
    /// the status); once written, the box stops in order and restarts into it.
    pub fn install(&self) -> Result<String, UpdateError> {
        let version = self.checked_version()?;
        self.claim()?;
        self.inner.status.update(|s| {
            s.update.state = UpdateState::Installing {
                version: version.clone(),
                percent: 0,
                message: "Starting".into(),
            }
        });
        let handle = self.clone();
        let to = version.clone();
        self.inner
            .runtime
            .spawn(async move { handle.run_install(to).await });
        Ok(version)
    }

    async fn run_install(self, version: String) {
        info!("installing update {version}");
        let status = self.inner.status.clone();
        let progress_version = version.clone();
        let result = self
            .inner
            .helper
            .install(BUNDLE_NAME, |percent, message| {
                status.update(|s| {
                    s.update.state = UpdateState::Installing {
                        version: progress_version.clone(),
                        percent,
                        message: message.to_string(),
                    }
                })
            })
            .await;
        match result {
            Ok(slot) => {
                info!(
                    "update {version} written to slot {slot}; stopping in order to restart into it"
                );
                let _ = std::fs::remove_file(self.bundle_path());
                self.inner
                    .status
                    .update(|s| s.update.state = UpdateState::Restarting { version });
                // Exactly a shutdown: web, pairing, Lightning, final backup, bitcoind with
                // its flush; then the unit reboots into the new slot.
                self.inner.shutdown.restart_for_update();
            }
            Err(err) => {
                warn!("update {version} failed: {err}");
                let message = err.to_string();
                self.inner
                    .status
                    .update(|s| s.update.state = UpdateState::Failed { message });
                self.release_claim();
            }
        }
    }

    /// The user has read the last result: it stays on the page, no longer as an alert.
    pub fn dismiss_result(&self) {
        let snapshot = self.inner.status.snapshot();
        if let Some(result) = &snapshot.update.last_result {
            let dir = self.inner.settings.data_dir.join("update");
            let written = crate::fsutil::ensure_private_dir(&dir, 0o700).and_then(|()| {
                crate::fsutil::write_atomic(
                    &dir.join(SEEN_FILE),
                    result_at(result).to_string().as_bytes(),
                    0o600,
                )
            });
            if let Err(err) = written {
                warn!("cannot remember that the update result was seen: {err}");
            }
        }
        self.inner
            .status
            .update(|s| s.update.last_result_seen = true);
    }

    /// A trial boot: watches the status until the rule proves or fails this version.
    async fn prove_this_version(self) {
        let limit = self.inner.settings.trial_limit;
        let mut trial = trial::Trial::new(Instant::now(), limit);
        let deadline = unix_now() + limit.as_secs();
        let version = self.inner.running.version.clone();
        let mut status = self.inner.status.subscribe();
        info!(
            "this boot tries version {version}: proving it (limit {} s)",
            limit.as_secs()
        );
        loop {
            if self.inner.shutdown.is_triggered() {
                return;
            }
            let missing = trial::not_healthy(&status.borrow_and_update());
            match trial.observe(&missing, Instant::now()) {
                trial::Verdict::Waiting { waiting_for } => {
                    self.inner.status.update(|s| {
                        s.update.state = UpdateState::Proving {
                            version: version.clone(),
                            waiting_for,
                            deadline,
                        }
                    });
                }
                trial::Verdict::Proven => return self.commit(version).await,
                trial::Verdict::Failed { reason } => return self.give_up(version, reason).await,
            }
            // Look again on every change, and at least every few seconds (the settle time
            // and the limit pass without a change).
            let _ = tokio::time::timeout(Duration::from_secs(5), status.changed()).await;
        }
    }

    async fn commit(&self, version: String) {
        match self.inner.helper.mark_good().await {
            // `false`: the helper found no trial to commit (already committed).
            Ok(_) => {
                self.inner
                    .proving
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                info!("version {version} proved itself and is now the default");
                if let Err(err) =
                    data_format::record(&self.inner.settings.data_dir, DATA_FORMAT, false)
                {
                    warn!("cannot record the data format: {err}");
                }
                let from = self
                    .inner
                    .slots
                    .as_ref()
                    .and_then(|s| s.slots.get(&s.default))
                    .and_then(|slot| slot.version.clone())
                    .unwrap_or_else(|| "the previous version".into());
                let result = UpdateResult::Updated {
                    version,
                    from,
                    at: unix_now(),
                };
                remember_result(&self.inner.settings.data_dir, &result);
                self.inner.status.update(|s| {
                    s.update.state = UpdateState::Idle;
                    s.update.last_result = Some(result);
                    s.update.last_result_seen = false;
                });
            }
            Err(err) => {
                // Not marked: the next boot (power cut, restart) is the old version, which
                // is safe; say so.
                warn!("could not make {version} the default: {err}");
                self.inner.status.update(|s| {
                    s.update.state = UpdateState::Failed {
                        message: format!(
                            "Version {version} works, but it could not be made the default \
                             ({err}): after the next restart the box runs the previous \
                             version again."
                        ),
                    }
                });
            }
        }
    }

    async fn give_up(&self, version: String, reason: String) {
        warn!("version {version} did not prove itself: {reason}");
        self.inner.status.update(|s| {
            s.update.state = UpdateState::GivingUp {
                version: version.clone(),
                reason: reason.clone(),
            }
        });
        // The helper records the reason and reboots into the default slot; systemd stops
        // plugnode in order on the way.
        if let Err(err) = self.inner.helper.give_up(&reason).await {
            warn!("the update helper could not go back: {err}; the root side's deadline will");
        }
    }

    fn available(&self) -> Result<(), UpdateError> {
        if self.inner.slots.is_some() {
            return Ok(());
        }
        Err(UpdateError::Unavailable(if self.inner.settings.enabled {
            "Updates are unavailable: the box's update helper did not answer when plugnode \
             started (see the log). Restart the box and try again."
                .into()
        } else {
            "This system has no A/B update slots (update.enabled is off): flash the new SD-card \
             image instead."
                .into()
        }))
    }

    fn claim(&self) -> Result<(), UpdateError> {
        let mut busy = self.inner.busy.lock().unwrap();
        if *busy {
            return Err(UpdateError::Busy(
                "An update bundle is being received, checked or installed right now: wait \
                 until it is done."
                    .into(),
            ));
        }
        *busy = true;
        Ok(())
    }

    fn release_claim(&self) {
        *self.inner.busy.lock().unwrap() = false;
    }
}

/// Downloads `url` to `path` (streamed, size-limited).
async fn fetch(url: &str, path: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| format!("cannot set up the download: {err}"))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|err| {
            format!("The download from {url} failed ({err}): check the box reaches the internet, or upload the bundle file instead.")
        })?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|err| format!("cannot store the bundle: {err}"))?;
    let mut size = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("The download from {url} broke off ({err}): try again."))?
    {
        size += chunk.len() as u64;
        if size > MAX_BUNDLE_BYTES {
            return Err(UpdateError::TooLarge.to_string());
        }
        file.write_all(&chunk)
            .await
            .map_err(|err| format!("cannot store the bundle (is the disk full?): {err}"))?;
    }
    file.sync_all()
        .await
        .map_err(|err| format!("cannot store the bundle: {err}"))
}

const RESULT_FILE: &str = "last-result.json";
const SEEN_FILE: &str = "result-seen";

fn result_at(result: &UpdateResult) -> u64 {
    match result {
        UpdateResult::Updated { at, .. } | UpdateResult::RolledBack { at, .. } => *at,
    }
}

/// The newest of: the last proven update (plugnode's record) and the last failed trial
/// (the helper's record).
fn last_result(data_dir: &Path, slots: Option<&SlotStatus>) -> Option<UpdateResult> {
    let updated = std::fs::read(data_dir.join("update").join(RESULT_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<StoredResult>(&bytes).ok())
        .map(|stored| UpdateResult::Updated {
            version: stored.version,
            from: stored.from,
            at: stored.at,
        });
    let rolled_back = slots
        .and_then(|s| s.last_failed_trial.clone())
        .map(|failed| UpdateResult::RolledBack {
            version: failed.version,
            back_on: failed.back_on,
            // The helper's reason is a phrase; the page and the e-ink go on after it.
            reason: crate::text::sentence(&failed.reason),
            at: failed.at,
        });
    [updated, rolled_back]
        .into_iter()
        .flatten()
        .max_by_key(result_at)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredResult {
    version: String,
    from: String,
    at: u64,
}

fn remember_result(data_dir: &Path, result: &UpdateResult) {
    let UpdateResult::Updated { version, from, at } = result else {
        return;
    };
    let dir = data_dir.join("update");
    let stored = StoredResult {
        version: version.clone(),
        from: from.clone(),
        at: *at,
    };
    let written = crate::fsutil::ensure_private_dir(&dir, 0o700).and_then(|()| {
        crate::fsutil::write_atomic(
            &dir.join(RESULT_FILE),
            &serde_json::to_vec(&stored).unwrap_or_default(),
            0o600,
        )
    });
    if let Err(err) = written {
        warn!("cannot record the update result: {err}");
    }
}

fn seen_at(data_dir: &Path) -> Option<u64> {
    std::fs::read_to_string(data_dir.join("update").join(SEEN_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}
