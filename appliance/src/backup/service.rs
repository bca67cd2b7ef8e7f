//! The backup service: watches for sticks and keeps the channel state on them.
//!
//! ```text
//! NoStick ── stick in ──→ mount ──→ keep-attached: snapshot + live journal → Mirroring
//!                           │        snapshot:      snapshot, verify, unmount → SafeToRemove
//!                           ├── empty → NeedsConfirmation ── confirm → prepare → mount …
//!                           └── unusable / failing → Failed (alert), retried while it stays in
//! Mirroring ── write fails, unmounted, pulled out ──→ Failed (alert; SD card only) ── heal
//!           ── eject ──→ SafeToRemove ── pulled out ──→ NoStick
//! ```
//!
//! A healed or returning stick always gets a full resync (a new snapshot at the store's
//! current generation, then a new journal), so it is never left behind.

use super::copies::{self, Identity};
use super::error::BackupError;
use super::mirror::MirrorWriter;
use super::mount::{self, StickAccess, StickError};
use super::restore::{self, RestoreOutcome, RestoreRequest};
use super::resync::Resync;
use super::stick::{self, StickDevice};
use crate::config::BackupMode;
use crate::lightning::{LightningHandle, Seed};
use crate::status::{unix_now, BackupState, StatusHandle};
use crate::text::capitalized;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// Snapshots kept on a stick in snapshot mode (a stale one can still be chosen on purpose).
const SNAPSHOTS_KEPT: usize = 3;
/// How long writing, reading back and checking a snapshot may take before the stick
/// counts as failed (10 channels: 25 ms on a good stick).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// A journal this large is folded into a new snapshot.
const JOURNAL_COMPACT_BYTES: u64 = 32 * 1024 * 1024;
/// How soon a failed stick that is still plugged in is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(10);

/// Where sticks come from.
#[derive(Clone, Debug)]
pub enum StickSource {
    /// USB sticks in sysfs (`/sys`), plus devices named in `backup.extra_devices`.
    Sysfs {
        root: PathBuf,
        extra_devices: Vec<PathBuf>,
    },
    /// The demo: a folder is the stick while it exists.
    Folder(PathBuf),
}

impl StickSource {
    /// The sticks plugged in; `own_mount_point` is where plugnode mounts them (a disk
    /// mounted anywhere else is the system's).
    fn scan(&self, own_mount_point: Option<&std::path::Path>) -> Vec<StickDevice> {
        match self {
            StickSource::Sysfs {
                root,
                extra_devices,
            } => stick::scan(root, &stick::InUse::read(own_mount_point), extra_devices),
            StickSource::Folder(folder) => stick::scan_folder(folder),
        }
    }
}

pub struct BackupSettings {
    pub enabled: bool,
    pub mode: BackupMode,
    pub source: StickSource,
    /// `None` when this box cannot mount sticks at all (then the status says why).
    pub access: Result<Arc<dyn StickAccess>, String>,
    pub secrets_dir: PathBuf,
    /// The last successful backup (time, generation, stick), kept across restarts.
    pub history_file: PathBuf,
    pub poll_every: Duration,
    pub mirror_timeout: Duration,
}

enum Command {
    ConfirmFormat(oneshot::Sender<Result<(), BackupError>>),
    Eject(oneshot::Sender<Result<(), BackupError>>),
    ListCopies(oneshot::Sender<Result<Vec<copies::Copy>, BackupError>>),
    Restore(
        RestoreRequest,
        oneshot::Sender<Result<RestoreOutcome, restore::RestoreError>>,
    ),
    Stop(oneshot::Sender<()>),
}

/// Commands for the backup service. Cheap to clone.
#[derive(Clone)]
pub struct BackupHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl BackupHandle {
    pub fn spawn(
        settings: BackupSettings,
        status: StatusHandle,
        lightning: LightningHandle,
    ) -> BackupHandle {
        let (commands, receiver) = mpsc::unbounded_channel();
        let resync = Resync::new(SNAPSHOT_TIMEOUT, settings.mirror_timeout);
        let service = Service {
            settings,
            status: status.clone(),
            lightning,
            resync,
            current: None,
            identity: None,
            last_failure: None,
        };
        crate::essential::spawn("backup service", status, service.run(receiver));
        BackupHandle { commands }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).ok()?;
        answer.await.ok()
    }

    /// The user agreed to prepare the empty stick that is plugged in.
    pub async fn confirm_format(&self) -> Result<(), BackupError> {
        self.ask(Command::ConfirmFormat)
            .await
            .unwrap_or(Err(BackupError::Stopped))
    }

    /// Finishes writing, unmounts, and says "safe to remove".
    pub async fn eject(&self) -> Result<(), BackupError> {
        self.ask(Command::Eject)
            .await
            .unwrap_or(Err(BackupError::Stopped))
    }

    /// The backup copies on the stick that is plugged in (headers only, no words needed).
    pub async fn copies(&self) -> Result<Vec<copies::Copy>, BackupError> {
        self.ask(Command::ListCopies)
            .await
            .unwrap_or(Err(BackupError::Stopped))
    }

    /// Restores a fresh box from the stick (see [`restore`]).
    pub async fn restore(
        &self,
        request: RestoreRequest,
    ) -> Result<RestoreOutcome, restore::RestoreError> {
        self.ask(|reply| Command::Restore(request, reply))
            .await
            .unwrap_or(Err(restore::RestoreError::Stick(BackupError::Stopped)))
    }

    /// Final flush: the mirror is closed cleanly and the stick unmounted (last in the
    /// shutdown order before bitcoind).
    pub async fn stop(&self) {
        let _ = self.ask(Command::Stop).await;
    }
}

/// The stick the service is working with.
struct Attached {
    stick: StickDevice,
    /// plugnode's folder on it, while mounted.
    dir: Option<PathBuf>,
    activity: Activity,
}

enum Activity {
    /// Mounted, nothing to do (no wallet yet: a restore may look at it).
    Idle,
    Mirroring(Arc<MirrorWriter>),
    /// Written and unmounted (snapshot mode or eject): waiting to be pulled out.
    Done,
    NeedsConfirmation,
    /// Failed; tried again after `RETRY_FAILED` while it stays plugged in.
    Failed(Instant),
}

struct Service {
    settings: BackupSettings,
    status: StatusHandle,
    lightning: LightningHandle,
    /// Writes to the stick: outside the store's lock, within time limits.
    resync: Resync,
    current: Option<Attached>,
    identity: Option<Identity>,
    /// The last failure, shown until a stick works again.
    last_failure: Option<String>,
}

impl Service {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mode = match self.settings.mode {
            BackupMode::KeepAttached => "keep-attached",
            BackupMode::Snapshot => "snapshot",
        };
        let history = History::load(&self.settings.history_file);
        self.status.update(|s| {
            s.backup.mode = mode.to_string();
            s.backup.last_success = history.last_success;
            s.backup.generation = history.generation;
            s.backup.stick_id = history.stick_id;
        });
        if !self.settings.enabled {
            self.set_state(BackupState::Disabled);
        }
        let mut tick = tokio::time::interval(self.settings.poll_every);
        loop {
            let step: Step = tokio::select! {
                _ = tick.tick() => {
                    if !self.settings.enabled {
                        continue;
                    }
                    Box::new(Service::on_tick)
                }
                command = commands.recv() => match command {
                    Some(Command::Stop(done)) => {
                        // The final flush and unmount, before saying it is done.
                        off_the_runtime(self, Box::new(Service::shut_down)).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => {
                        Box::new(move |service: &mut Service| service.on_command(command))
                    }
                    None => return,
                },
            };
            match off_the_runtime(self, step).await {
                Some(service) => self = service,
                None => return,
            }
        }
    }

    fn access(&self) -> Result<Arc<dyn StickAccess>, String> {
        self.settings.access.clone()
    }

    /// A backup is on the stick: the alert goes away and the history moves on.
    fn succeeded(&mut self, state: BackupState, generation: u64, stick_id: String) {
        self.last_failure = None;
        self.status.update(|s| {
            s.backup.state = state;
            s.backup.generation = Some(generation);
            s.backup.last_success = Some(unix_now());
            s.backup.stick_id = Some(stick_id);
        });
        self.save_history();
    }

    /// Keeps the last success for the next start (while mirroring, the generation moves on
    /// with every update: it is saved when the mirror starts, ends and on shutdown).
    fn save_history(&self) {
        let backup = self.status.snapshot().backup;
        let history = History {
            last_success: backup.last_success,
            generation: backup.generation,
            stick_id: backup.stick_id,
        };
        if let Err(err) = history.save(&self.settings.history_file) {
            warn!("backup: cannot record the last backup: {err}");
        }
    }

    fn set_state(&self, state: BackupState) {
        self.status.update(|s| s.backup.state = state);
    }

    fn fail(&mut self, message: String) {
        error!("backup: {message}");
        self.last_failure = Some(message.clone());
        self.set_state(BackupState::Failed { message });
    }

    /// The wallet's backup identity, once it has a seed.
    fn identity(&mut self) -> Option<Identity> {
        if self.identity.is_none() {
            if let Ok(Some(seed)) = Seed::load(&self.settings.secrets_dir) {
                self.identity = Some(Identity::from_seed(&seed));
            }
        }
        self.identity.clone()
    }

    fn on_tick(&mut self) {
        let own_mount_point = self.access().ok().and_then(|a| a.mount_point());
        let sticks = self.settings.source.scan(own_mount_point.as_deref());
        let has_wallet = self.identity().is_some();
        let Some(current) = &self.current else {
            match sticks.into_iter().next() {
                Some(stick) => self.attach(stick),
                None if self.last_failure.is_none() => self.set_state(BackupState::NoStick),
                None => {}
            }
            return;
        };

        if !sticks.contains(&current.stick) {
            self.on_removed();
            return;
        }
        match &current.activity {
            Activity::Mirroring(writer) => {
                let writer = Arc::clone(writer);
                self.watch_mirror(&writer);
            }
            Activity::Idle if has_wallet => {
                // The wallet was created or restored while the stick sat there.
                let stick = current.stick.clone();
                self.current = None;
                self.attach(stick);
            }
            Activity::Failed(since) if since.elapsed() >= RETRY_FAILED => {
                let stick = current.stick.clone();
                self.current = None;
                self.attach(stick);
            }
            _ => {}
        }
    }

    /// Mounts a stick that appeared and does what the mode says.
    fn attach(&mut self, stick: StickDevice) {
        let access = match self.access() {
            Ok(access) => access,
            Err(why) => {
                self.current = Some(Attached {
                    stick,
                    dir: None,
                    activity: Activity::Failed(Instant::now()),
                });
                self.fail(why);
                return;
            }
        };
        info!("backup: stick {} plugged in", stick.label());
        let dir = match access.mount(&stick) {
            Ok(dir) => dir,
            Err(StickError::Empty) => {
                self.set_state(BackupState::NeedsConfirmation {
                    stick: stick.label(),
                    reason: "This stick is empty. Prepare it for backups? (It is formatted; \
                             it holds nothing now.)"
                        .into(),
                });
                self.current = Some(Attached {
                    stick,
                    dir: None,
                    activity: Activity::NeedsConfirmation,
                });
                return;
            }
            // Offered only to a box with a wallet: it writes a fresh full backup at once, so
            // nothing the old stick held is lost.
            Err(StickError::DamagedPlugnodeStick(why)) if self.identity().is_some() => {
                self.set_state(BackupState::NeedsConfirmation {
                    stick: stick.label(),
                    reason: format!(
                        "This plugnode backup stick is damaged ({why}). Prepare it again? \
                         plugnode writes a fresh full backup to it at once."
                    ),
                });
                self.current = Some(Attached {
                    stick,
                    dir: None,
                    activity: Activity::NeedsConfirmation,
                });
                return;
            }
            Err(err) => {
                self.current = Some(Attached {
                    stick,
                    dir: None,
                    activity: Activity::Failed(Instant::now()),
                });
                self.fail(err.to_string());
                return;
            }
        };
        self.current = Some(Attached {
            stick: stick.clone(),
            dir: Some(dir.clone()),
            activity: Activity::Idle,
        });
        if self.identity().is_none() {
            // Nothing to back up yet; the stick may hold a backup to restore.
            self.set_state(BackupState::Disabled);
            return;
        }
        match self.settings.mode {
            BackupMode::KeepAttached => self.start_mirror(),
            BackupMode::Snapshot => self.write_snapshot_and_unmount(),
        }
    }

    /// A full snapshot at the store's current generation and a fresh journal for what
    /// follows, attached at exactly that generation (see [`Resync::start_mirror`]).
    fn start_mirror(&mut self) {
        let (Some(identity), Some(attached)) = (self.identity(), self.current.as_mut()) else {
            return;
        };
        let Some(dir) = attached.dir.clone() else {
            return;
        };
        self.status
            .update(|s| s.backup.state = BackupState::Writing);
        let mount_point = self
            .settings
            .access
            .as_ref()
            .ok()
            .and_then(|a| a.mount_point());
        let result = self
            .resync
            .start_mirror(self.lightning.store(), &dir, &identity, mount_point);
        match result {
            Ok((generation, writer)) => {
                info!(
                    "backup: mirroring to {} from generation {generation}",
                    attached.stick.label()
                );
                attached.activity = Activity::Mirroring(writer);
                let stick_id = attached.stick.label();
                self.succeeded(BackupState::Mirroring, generation, stick_id);
            }
            Err(err) => {
                attached.activity = Activity::Failed(Instant::now());
                let why = super::mirror::describe_io_error(&err);
                self.fail(why);
            }
        }
    }

    /// Snapshot mode: write, read back and verify, unmount, "safe to remove".
    fn write_snapshot_and_unmount(&mut self) {
        let access = self.access();
        let (Some(identity), Some(attached)) = (self.identity(), self.current.as_mut()) else {
            return;
        };
        let Some(dir) = attached.dir.clone() else {
            return;
        };
        self.status
            .update(|s| s.backup.state = BackupState::Writing);
        let written = self
            .resync
            .snapshot(self.lightning.store(), &dir, &identity, SNAPSHOTS_KEPT)
            .map_err(|err| super::mirror::describe_io_error(&err));
        let unmounted =
            access.and_then(|access| access.unmount(&attached.stick).map_err(|e| e.to_string()));
        attached.dir = None;
        match (written, unmounted) {
            (Ok(generation), Ok(())) => {
                info!("backup: snapshot at generation {generation} written, verified, unmounted");
                attached.activity = Activity::Done;
                let stick_id = attached.stick.label();
                self.succeeded(BackupState::SafeToRemove, generation, stick_id);
            }
            (Err(why), _) => {
                attached.activity = Activity::Failed(Instant::now());
                self.fail(why);
            }
            (Ok(_), Err(why)) => {
                attached.activity = Activity::Failed(Instant::now());
                self.fail(format!(
                    "the snapshot is written, but {why}: wait, then try Eject again"
                ));
            }
        }
    }

    /// Follows a live mirror: its health, its mount, its size.
    fn watch_mirror(&mut self, writer: &Arc<MirrorWriter>) {
        let unmounted = self
            .settings
            .access
            .as_ref()
            .ok()
            .and_then(|a| a.mount_point())
            .is_some_and(|point| !mount::is_mounted(&point));
        let failure = writer.failure().or_else(|| {
            unmounted.then(|| "the backup stick was unmounted or pulled out".to_string())
        });
        if let Some(why) = failure {
            self.save_history();
            end_mirror(&self.lightning, writer);
            if let Some(attached) = self.current.as_mut() {
                attached.activity = Activity::Failed(Instant::now());
                if let (Ok(access), true) = (self.settings.access.as_ref(), attached.dir.is_some())
                {
                    let _ = access.unmount(&attached.stick);
                }
                attached.dir = None;
            }
            self.fail(format!(
                "{}. The channel state is on the SD card only; plugnode copies it all again \
                 when the stick works.",
                capitalized(&why)
            ));
            return;
        }
        let generation = writer.last_generation();
        self.status.update(|s| {
            if s.backup.generation != Some(generation) {
                s.backup.generation = Some(generation);
                s.backup.last_success = Some(unix_now());
            }
        });
        let journal_len = std::fs::metadata(writer.journal())
            .map(|m| m.len())
            .unwrap_or(0);
        if journal_len > JOURNAL_COMPACT_BYTES {
            info!("backup: folding the journal ({journal_len} bytes) into a new snapshot");
            // The new snapshot and journal take the old journal's place under the store's
            // lock, so no update falls between the two; only then is the old one closed.
            // (Closing first made an update that came in meanwhile miss the stick.)
            self.start_mirror();
            match self.current.as_ref().map(|a| &a.activity) {
                Some(Activity::Mirroring(new)) if !Arc::ptr_eq(new, writer) => writer.close(),
                // Nothing was started: the old journal goes on.
                Some(Activity::Mirroring(_)) => {}
                // The new snapshot failed (the alert says why): the stick is dropped.
                _ => end_mirror(&self.lightning, writer),
            }
        }
    }

    fn on_removed(&mut self) {
        let Some(attached) = self.current.take() else {
            return;
        };
        info!("backup: stick {} removed", attached.stick.label());
        if let Activity::Mirroring(writer) = &attached.activity {
            // Pulled out without Eject: the mirror is gone mid-run.
            end_mirror(&self.lightning, writer);
            if let Ok(access) = &self.settings.access {
                let _ = access.unmount(&attached.stick);
            }
            self.fail(
                "The backup stick was pulled out without Eject. The channel state is on the SD \
                 card only: plug a stick in again."
                    .into(),
            );
            return;
        }
        if attached.dir.is_some() {
            if let Ok(access) = &self.settings.access {
                let _ = access.unmount(&attached.stick);
            }
        }
        if matches!(
            attached.activity,
            Activity::Done | Activity::NeedsConfirmation | Activity::Idle
        ) {
            self.last_failure = None;
        }
        if self.last_failure.is_none() {
            self.set_state(BackupState::NoStick);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ConfirmFormat(reply) => {
                let result = self.format();
                let _ = reply.send(result);
            }
            Command::Eject(reply) => {
                let _ = reply.send(self.eject());
            }
            Command::ListCopies(reply) => {
                let result = self.readable_dir().map(|dir| {
                    let survey = copies::survey(&dir);
                    self.report_unreadable(&survey.problems);
                    survey.copies
                });
                let _ = reply.send(result);
            }
            Command::Restore(request, reply) => {
                let result = match self.readable_dir() {
                    Ok(dir) => {
                        self.report_unreadable(&copies::survey(&dir).problems);
                        restore::restore(&dir, request, &self.lightning)
                    }
                    Err(err) => Err(restore::RestoreError::Stick(err)),
                };
                if result.is_ok() {
                    self.identity = None; // picked up from the restored seed next tick
                }
                let _ = reply.send(result);
            }
            Command::Stop(_) => unreachable!("handled in run"),
        }
    }

    /// plugnode's folder on the stick, for reading copies; or why there is none.
    fn readable_dir(&self) -> Result<PathBuf, BackupError> {
        let Some(attached) = self.current.as_ref() else {
            return Err(BackupError::NoStick);
        };
        if let Some(dir) = &attached.dir {
            return Ok(dir.clone());
        }
        Err(match attached.activity {
            Activity::NeedsConfirmation => BackupError::NothingToRestore,
            Activity::Done => BackupError::Ejected,
            _ => BackupError::StickFailed(
                self.last_failure
                    .clone()
                    .unwrap_or_else(|| "it is not mounted".into()),
            ),
        })
    }

    /// Files on the stick plugnode refused to read (a link, a FIFO, a huge file) go up as
    /// the backup alert while the stick only waits for a restore; a stick in use has its
    /// own folder checked before every snapshot.
    fn report_unreadable(&mut self, problems: &[String]) {
        let idle = matches!(
            self.current.as_ref().map(|a| &a.activity),
            Some(Activity::Idle)
        );
        if !idle || problems.is_empty() {
            return;
        }
        let message = format!(
            "The backup stick holds files plugnode does not read: {}.",
            problems.join("; ")
        );
        // The restore page asks again and again: say it once.
        if self.last_failure.as_deref() != Some(message.as_str()) {
            self.fail(message);
        }
    }

    fn format(&mut self) -> Result<(), BackupError> {
        let Some(attached) = self.current.as_ref() else {
            return Err(BackupError::NoStick);
        };
        if !matches!(attached.activity, Activity::NeedsConfirmation) {
            return Err(BackupError::NothingToPrepare);
        }
        let stick = attached.stick.clone();
        let access = self.access().map_err(BackupError::NoAccess)?;
        access.format(&stick).map_err(BackupError::from_stick)?;
        info!("backup: prepared the empty stick {}", stick.label());
        self.current = None;
        self.attach(stick);
        Ok(())
    }

    fn eject(&mut self) -> Result<(), BackupError> {
        let Some(attached) = self.current.as_mut() else {
            return Err(BackupError::NoStick);
        };
        if let Activity::Mirroring(writer) = &attached.activity {
            end_mirror(&self.lightning, writer);
        }
        if attached.dir.is_some() {
            let access = self
                .settings
                .access
                .clone()
                .map_err(BackupError::NoAccess)?;
            access
                .unmount(&attached.stick)
                .map_err(BackupError::from_stick)?;
            attached.dir = None;
        }
        attached.activity = Activity::Done;
        self.last_failure = None;
        self.set_state(BackupState::SafeToRemove);
        self.save_history();
        Ok(())
    }

    /// The final flush on shutdown: close the journal (every append already synced) and
    /// unmount, so the stick can be pulled once the box is off.
    fn shut_down(&mut self) {
        self.save_history();
        if let Some(attached) = self.current.as_mut() {
            if let Activity::Mirroring(writer) = &attached.activity {
                end_mirror(&self.lightning, writer);
            }
            if attached.dir.is_some() {
                if let Ok(access) = &self.settings.access {
                    if let Err(err) = access.unmount(&attached.stick) {
                        warn!("backup: could not unmount the stick on shutdown: {err}");
                    }
                }
            }
        }
    }
}

/// One thing the service does: scanning, mounting, writing or reading the stick.
type Step = Box<dyn FnOnce(&mut Service) + Send>;

/// Runs `step` on tokio's blocking threads: mounting, fsck, unmounting (sync), the
/// snapshot's wait for its writer and the stick's files can each take seconds to minutes
/// on a slow stick, and must not hold up the runtime's workers (the web page, the node).
/// The service waits for each step, so steps keep their order and their own time limits.
/// `None` only when the runtime is going away.
async fn off_the_runtime(mut service: Service, step: Step) -> Option<Service> {
    let done = tokio::task::spawn_blocking(move || {
        step(&mut service);
        service
    })
    .await;
    match done {
        Ok(service) => Some(service),
        // The service's own panic: its task ends with it, and `essential` reports it.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => {
            warn!("backup: the runtime stopped during a backup step");
            None
        }
    }
}

/// Stops sending updates to a mirror and closes its journal.
fn end_mirror(lightning: &LightningHandle, writer: &MirrorWriter) {
    lightning.store().detach_mirror();
    writer.close();
}

/// The last successful backup, in a small file next to the data.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct History {
    last_success: Option<u64>,
    generation: Option<u64>,
    stick_id: Option<String>,
}

impl History {
    fn load(path: &std::path::Path) -> History {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).expect("history serializes");
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o600)
    }
}
