//! The display service: one task that owns the panel, follows the status, reads the keys,
//! applies the refresh policy, and answers the [`DisplayHandle`].

use super::policy::{Decision, RefreshPolicy};
use super::render::{render, View};
use super::ui::{
    Action, Effect, Outcome, PairingAnswer, PairingCode, Question, Screen, SeedWords, Ui, Urgency,
};
use super::{DisplaySettings, PanelKind};
use crate::secret::Secret;
use crate::shutdown::Shutdown;
use crate::status::{unix_now, Status};
use plugnode_hw::{
    Buttons, Frame, Key, KeyEvents, KeyTiming, Panel, PanelError, RefreshCounts, Size,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// After a failed refresh, try again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a display request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("the display service has stopped")]
    Stopped,
    #[error("seed words must be 1 to 24 single words")]
    BadSeedWords,
    #[error("the e-ink panel failed: {0}")]
    Panel(#[from] PanelError),
    #[error(
        "this box has no keys on its screen, so it cannot ask there: ask for the web \
         password on the page instead"
    )]
    NoKeys,
    /// A key from the web page tried to confirm something on a box with real keys.
    #[error("Confirm this on the box itself: press KEY2 on the box.")]
    NeedsKeyOnBox,
    #[error("the box is shutting down: pair the wallet once it has started again")]
    ShuttingDown,
    /// Something that must not be pushed away (a question, a code, the seed words) is on
    /// the screen.
    #[error(
        "the box's screen is showing something else right now (a question, a pairing code \
         or the recovery words): finish that on the box, then ask again"
    )]
    Busy,
}

impl DisplayError {
    /// A stable short name for the web page and scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            DisplayError::Stopped => "display_stopped",
            DisplayError::BadSeedWords => "bad_seed_words",
            DisplayError::Panel(_) => "panel_failed",
            DisplayError::NoKeys => "no_keys",
            DisplayError::NeedsKeyOnBox => "needs_key_on_box",
            DisplayError::ShuttingDown => "shutting_down",
            DisplayError::Busy => "display_busy",
        }
    }
}

enum Command {
    Confirm {
        question: Question,
        reply: oneshot::Sender<PairingAnswer>,
    },
    UnlockCode {
        code: Secret,
        reply: oneshot::Sender<Result<(), DisplayError>>,
    },
    PairingQr {
        code: PairingCode,
        reply: oneshot::Sender<Result<(), DisplayError>>,
    },
    Seed {
        words: SeedWords,
        reply: oneshot::Sender<()>,
    },
    ClearSecrets {
        reply: oneshot::Sender<()>,
    },
    SetupCode(Option<Secret>),
    Action {
        action: Action,
        reply: oneshot::Sender<Result<(), DisplayError>>,
    },
    Finish {
        reply: oneshot::Sender<Result<(), PanelError>>,
    },
}

/// Something the user asked for on the device that another service carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// KEY2 on the backup screen: prepare the empty stick that was found.
    PrepareStick,
}

/// What the display shows, for the web page and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayState {
    pub screen: Screen,
    /// Whether the panel has keys (else screens rotate on their own).
    pub has_keys: bool,
    /// Panel refreshes so far (full, partial).
    pub full_refreshes: u64,
    pub partial_refreshes: u64,
    /// The last refresh failed (the service retries).
    pub failing: bool,
}

/// Talks to the display service. Cheap to clone; every service that needs the screen
/// keeps one.
#[derive(Clone)]
pub struct DisplayHandle {
    commands: mpsc::UnboundedSender<Command>,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    requests: tokio::sync::broadcast::Sender<DeviceRequest>,
    state: watch::Receiver<DisplayState>,
    size: Size,
    panel_name: &'static str,
}

impl DisplayHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DisplayError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| DisplayError::Stopped)?;
        answer.await.map_err(|_| DisplayError::Stopped)
    }

    /// Asks a question on the device (may this app pair, may this money leave, may this
    /// update be installed; KEY2 yes, KEY3 no) and resolves with the answer once it is
    /// known: [`PairingAnswer::TimedOut`] after `pairing_confirm_timeout`,
    /// [`PairingAnswer::Refused`] when the question gives way (shutdown,
    /// [`DisplayHandle::clear_secrets`], another question, seed words or pairing code).
    /// Only a key on the box confirms, never the web page's copy of the keys (except on the
    /// simulated panel). Dropping the future takes the question off the screen.
    ///
    /// [`DisplayError::NoKeys`] at once on a panel without keys: the page must ask for the
    /// web password instead.
    pub async fn confirm(
        &self,
        question: impl Into<Question>,
    ) -> Result<PairingAnswer, DisplayError> {
        if !self.state().has_keys {
            return Err(DisplayError::NoKeys);
        }
        let question = question.into();
        self.ask(|reply| Command::Confirm { question, reply }).await
    }

    /// Shows the web page's unlock code, keys or not, for two minutes (a secret: never in
    /// the web mirror, cleared with a full refresh). It never pushes a question, a code or
    /// the seed words away: [`DisplayError::Busy`] then.
    pub async fn show_unlock_code(&self, code: Secret) -> Result<(), DisplayError> {
        self.ask(|reply| Command::UnlockCode { code, reply })
            .await?
    }

    /// Shows a wallet-pairing URI as a QR code, at once, keys or not (an open pairing
    /// question is refused). It is a secret: it never reaches the web mirror (unless the
    /// settings say `mirror_secrets`, for the demo) and is cleared with a full refresh
    /// after two minutes, on KEY2 or KEY3, on [`DisplayHandle::clear_secrets`], and before
    /// shutdown. Returns once the screen was drawn; [`DisplayError::ShuttingDown`] when
    /// the box is shutting down.
    pub async fn show_pairing_qr(
        &self,
        label: impl Into<String>,
        uri: impl Into<String>,
    ) -> Result<(), DisplayError> {
        let code = PairingCode::new(label, uri);
        self.ask(|reply| Command::PairingQr { code, reply }).await?
    }

    /// Shows the recovery words on the device, six per page (KEY1 next page, KEY3 back,
    /// KEY2 done on the last page). They never reach the web mirror (unless the settings
    /// say `mirror_secrets`, for the demo) and are cleared after two minutes without a key
    /// press, on [`DisplayHandle::clear_secrets`], and before shutdown.
    pub async fn show_seed_words(&self, words: Vec<String>) -> Result<(), DisplayError> {
        let words = SeedWords::new(words).ok_or(DisplayError::BadSeedWords)?;
        self.ask(|reply| Command::Seed { words, reply }).await
    }

    /// Takes any pairing code or seed words off the screen (with a full refresh, so no
    /// ghost stays). Returns once the panel was drawn.
    pub async fn clear_secrets(&self) -> Result<(), DisplayError> {
        self.ask(|reply| Command::ClearSecrets { reply }).await
    }

    /// Shows the one-time setup code on the home screen while the box has no web password
    /// (`status.setup.password_set` false); `None` takes it away.
    pub fn show_setup_code(&self, code: Option<Secret>) -> Result<(), DisplayError> {
        self.commands
            .send(Command::SetupCode(code))
            .map_err(|_| DisplayError::Stopped)
    }

    /// A short press of the web page's copy of the keys (the mirror's keys, the page's
    /// "next page"). It navigates like a key on the device; on a box with real keys it
    /// confirms nothing and answers [`DisplayError::NeedsKeyOnBox`] instead (on the
    /// simulated panel the page is the device). Returns once the screen was drawn.
    pub async fn press_key(&self, key: Key) -> Result<(), DisplayError> {
        self.mirrored(key, false).await
    }

    /// The page's key held for the long-press time (KEY4: the shutdown question, which
    /// then needs KEY2 on the box).
    pub async fn long_press_key(&self, key: Key) -> Result<(), DisplayError> {
        self.mirrored(key, true).await
    }

    async fn mirrored(&self, key: Key, long: bool) -> Result<(), DisplayError> {
        let action = Action::Mirrored { key, long };
        self.ask(|reply| Command::Action { action, reply }).await?
    }

    /// Requests the user makes on the device (confirming a stick, …).
    pub fn device_requests(&self) -> tokio::sync::broadcast::Receiver<DeviceRequest> {
        self.requests.subscribe()
    }

    /// The picture on the panel as a 1-bit PNG (secrets replaced by a placeholder), or
    /// `None` before the first refresh.
    pub fn latest_png(&self) -> Option<Vec<u8>> {
        self.frames.borrow().as_ref().map(|f| f.to_png())
    }

    /// The picture on the panel (secrets replaced by a placeholder).
    pub fn latest_frame(&self) -> Option<Arc<Frame>> {
        self.frames.borrow().clone()
    }

    /// Changes whenever the panel shows a new picture (for a web page that waits for the
    /// next frame).
    pub fn frame_updates(&self) -> watch::Receiver<Option<Arc<Frame>>> {
        self.frames.clone()
    }

    /// The current screen and refresh counters.
    pub fn state(&self) -> DisplayState {
        *self.state.borrow()
    }

    pub fn state_updates(&self) -> watch::Receiver<DisplayState> {
        self.state.clone()
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn panel_name(&self) -> &'static str {
        self.panel_name
    }

    /// The last step of shutdown, after bitcoind stopped: draws "safe to unplug" (secrets
    /// cleared, full refresh), puts the panel to sleep and ends the service.
    pub async fn finish(&self) -> Result<(), DisplayError> {
        self.ask(|reply| Command::Finish { reply }).await??;
        Ok(())
    }
}

/// Starts the display service on the current tokio runtime.
///
/// `buttons` is `None` for panels without keys (screens then rotate by themselves). The
/// service follows `status`, triggers `shutdown` when the user confirms it on the device,
/// and shows "shutting down" once `shutdown` is triggered from anywhere. Call
/// [`DisplayHandle::finish`] at the very end of the shutdown sequence.
pub fn spawn(
    panel: Box<dyn Panel>,
    buttons: Option<Box<dyn Buttons>>,
    status: watch::Receiver<Status>,
    shutdown: Shutdown,
    settings: &DisplaySettings,
) -> DisplayHandle {
    let size = panel.size();
    let panel_name = panel.name();
    let keys = buttons.and_then(|b| match b.start() {
        Ok(rx) => Some(KeyEvents::new(
            rx,
            KeyTiming {
                long_press: settings.long_press,
                ..KeyTiming::default()
            },
        )),
        Err(e) => {
            tracing::error!("{e}; the display works without keys (screens rotate)");
            None
        }
    });
    let has_keys = keys.is_some();
    let now = Instant::now();
    // The simulated panel's keys are the web page's: there the page is the device.
    let ui = Ui::new(has_keys, settings.timing, now)
        .mirror_confirms(settings.panel == PanelKind::Simulated);
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (frames_tx, frames) = watch::channel(None);
    let (requests, _) = tokio::sync::broadcast::channel(8);
    let (state_tx, state) = watch::channel(DisplayState {
        screen: ui.screen(),
        has_keys,
        full_refreshes: 0,
        partial_refreshes: 0,
        failing: false,
    });
    let service = Service {
        panel: Some(panel),
        size,
        ui,
        policy: RefreshPolicy::new(settings.refresh),
        status: status.borrow().clone(),
        settings: settings.clone(),
        idle_wait: None,
        retry_at: None,
        counts: RefreshCounts::default(),
        failing: false,
        frames: frames_tx,
        state: state_tx,
        shutdown: shutdown.clone(),
        setup_code: None,
        requests: requests.clone(),
        asker: None,
    };
    tokio::spawn(service.run(status, keys, command_rx, shutdown));
    DisplayHandle {
        commands,
        frames,
        requests,
        state,
        size,
        panel_name,
    }
}

struct Service {
    panel: Option<Box<dyn Panel>>,
    size: Size,
    ui: Ui,
    policy: RefreshPolicy,
    status: Status,
    settings: DisplaySettings,
    /// A changed picture waits for the idle interval until then.
    idle_wait: Option<Instant>,
    retry_at: Option<Instant>,
    counts: RefreshCounts,
    failing: bool,
    frames: watch::Sender<Option<Arc<Frame>>>,
    state: watch::Sender<DisplayState>,
    shutdown: Shutdown,
    /// Shown on the home screen while the box is unclaimed.
    setup_code: Option<Secret>,
    requests: tokio::sync::broadcast::Sender<DeviceRequest>,
    /// Waits for the answer to the open pairing question.
    asker: Option<oneshot::Sender<PairingAnswer>>,
}

impl Service {
    async fn run(
        mut self,
        mut status: watch::Receiver<Status>,
        mut keys: Option<KeyEvents>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: Shutdown,
    ) {
        let mut status_open = true;
        let mut shutdown_seen = false;
        let first = self.ui.on_status(&self.status, Instant::now());
        self.redraw(first, Urgency::Immediate).await;
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Finish { reply }) => {
                        let outcome = self.ui.stopped();
                        let result = self.apply(outcome, Urgency::ImmediateFull).await;
                        let _ = reply.send(result);
                        return;
                    }
                    Some(command) => self.command(command).await,
                    None => {
                        // Every handle is gone: leave no secret behind.
                        let outcome = self.ui.clear_secrets();
                        self.redraw(outcome, Urgency::ImmediateFull).await;
                        return;
                    }
                },
                _ = shutdown.wait(), if !shutdown_seen => {
                    shutdown_seen = true;
                    let outcome = self.ui.shutting_down();
                    self.redraw(outcome, Urgency::Immediate).await;
                }
                changed = status.changed(), if status_open => {
                    if changed.is_err() {
                        status_open = false;
                        continue;
                    }
                    self.status = status.borrow_and_update().clone();
                    let outcome = self.ui.on_status(&self.status, Instant::now());
                    self.redraw(outcome, Urgency::Idle).await;
                }
                _ = asker_gone(&mut self.asker) => {
                    self.asker = None;
                    let outcome = self.ui.withdraw_question();
                    self.redraw(outcome, Urgency::Immediate).await;
                }
                event = next_key(&mut keys) => match event {
                    Some(event) => {
                        if let Some(action) = Action::from_event(event) {
                            let outcome = self.ui.on_action(action, &self.status, Instant::now());
                            self.redraw(outcome, Urgency::Immediate).await;
                        }
                    }
                    None => keys = None,
                },
                _ = sleep => {
                    let now = Instant::now();
                    let outcome = self.ui.on_timer(&self.status, now);
                    let mut urgency = outcome.urgency.unwrap_or(Urgency::Idle);
                    // A retry draws what was already due when the panel failed.
                    if self.retry_at.is_some_and(|at| now >= at) {
                        urgency = urgency.max(Urgency::Immediate);
                    }
                    self.idle_wait = None;
                    self.retry_at = None;
                    // Also the idle wait, the retry and the daily full refresh end here.
                    self.redraw(Outcome { urgency: Some(urgency), ..outcome }, urgency).await;
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        // The daily full refresh counts only while nothing else is pending: a pending
        // idle update or retry will be a full refresh anyway when it is due.
        let full_due = if self.idle_wait.is_none() && self.retry_at.is_none() {
            self.policy.next_full_due()
        } else {
            None
        };
        [
            self.ui.next_deadline(),
            self.idle_wait,
            self.retry_at,
            full_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Confirm { question, reply } => {
                let asked = self.ui.ask(question, now);
                self.open_question(asked, reply).await;
            }
            Command::UnlockCode { code, reply } => {
                let shutting_down = self.ui.screen().is_final();
                match self.ui.show_unlock_code(code, now) {
                    Some(outcome) => {
                        // Asked again while it is up: it only stays longer.
                        if outcome.urgency.is_some() {
                            self.redraw(outcome, Urgency::Immediate).await;
                        }
                        let _ = reply.send(Ok(()));
                    }
                    None => {
                        let _ = reply.send(Err(if shutting_down {
                            DisplayError::ShuttingDown
                        } else {
                            DisplayError::Busy
                        }));
                    }
                }
            }
            Command::PairingQr { code, reply } => match self.ui.show_pairing_qr(code, now) {
                Some(outcome) => {
                    self.redraw(outcome, Urgency::Immediate).await;
                    let _ = reply.send(Ok(()));
                }
                None => {
                    let _ = reply.send(Err(DisplayError::ShuttingDown));
                }
            },
            Command::Seed { words, reply } => {
                let outcome = self.ui.show_seed(words, now);
                self.redraw(outcome, Urgency::Immediate).await;
                let _ = reply.send(());
            }
            Command::ClearSecrets { reply } => {
                let outcome = self.ui.clear_secrets();
                self.redraw(outcome, Urgency::ImmediateFull).await;
                let _ = reply.send(());
            }
            Command::SetupCode(code) => {
                self.setup_code = code;
                self.redraw(Outcome::default(), Urgency::Immediate).await;
            }
            Command::Action { action, reply } => {
                let outcome = self.ui.on_action(action, &self.status, now);
                let refused = outcome.needs_key_on_box;
                self.redraw(outcome, Urgency::Immediate).await;
                let _ = reply.send(if refused {
                    Err(DisplayError::NeedsKeyOnBox)
                } else {
                    Ok(())
                });
            }
            Command::Finish { .. } => unreachable!("handled in run"),
        }
    }

    /// [`Service::apply`]; failures are logged there and retried later.
    async fn redraw(&mut self, outcome: Outcome, default: Urgency) {
        let _ = self.apply(outcome, default).await;
    }

    /// Carries out an outcome's effects and redraws with its urgency (or `default`).
    async fn apply(&mut self, mut outcome: Outcome, default: Urgency) -> Result<(), PanelError> {
        let effects = std::mem::take(&mut outcome.effects);
        let urgency = outcome.urgency.unwrap_or(default);
        let result = self.refresh(urgency).await;
        self.publish_state();
        // After the screen moved on: whoever hears an answer finds the screen agreeing.
        self.carry_out(effects);
        result
    }

    /// A question the UI put on the screen (`Some`) waits for its key with `reply`; one it
    /// replaced is answered first. One it could not ask (`None`) is refused at once.
    async fn open_question(
        &mut self,
        asked: Option<Outcome>,
        reply: oneshot::Sender<PairingAnswer>,
    ) {
        match asked {
            Some(mut outcome) => {
                self.carry_out(std::mem::take(&mut outcome.effects));
                self.asker = Some(reply);
                self.redraw(outcome, Urgency::Immediate).await;
            }
            None => {
                let _ = reply.send(PairingAnswer::Refused);
            }
        }
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::TriggerShutdown => {
                    tracing::info!("shutdown confirmed on the device");
                    self.shutdown.power_off();
                }
                Effect::PrepareStick => {
                    tracing::info!("preparing the stick confirmed on the device");
                    let _ = self.requests.send(DeviceRequest::PrepareStick);
                }
                Effect::PairingAnswered(answer) => {
                    tracing::info!("the question on the device was answered: {answer:?}");
                    if let Some(asker) = self.asker.take() {
                        let _ = asker.send(answer);
                    }
                }
            }
        }
    }

    fn view(&self, redact: bool) -> View<'_> {
        let now = unix_now();
        View {
            screen: self.ui.screen(),
            status: &self.status,
            question: self.ui.question(),
            unlock_code: self.ui.unlock_code(),
            pairing: self.ui.pairing(),
            seed: self.ui.seed(),
            has_keys: self.ui.has_keys(),
            redact_secrets: redact,
            setup_code: self
                .setup_code
                .as_ref()
                .filter(|_| !self.status.setup.password_set)
                .map(Secret::expose),
            now,
            utc_offset_secs: self
                .settings
                .utc_offset_secs
                .unwrap_or_else(|| local_offset(now)),
        }
    }

    fn render(&self, redact: bool) -> Frame {
        let mut frame = Frame::new(self.size);
        render(&self.view(redact), &mut frame);
        frame
    }

    async fn refresh(&mut self, urgency: Urgency) -> Result<(), PanelError> {
        let now = Instant::now();
        let frame = self.render(false);
        let decision = self.policy.decide(now, &frame, urgency);
        match decision {
            Decision::None => {
                self.idle_wait = None;
                Ok(())
            }
            Decision::Wait(at) => {
                self.idle_wait = Some(at);
                Ok(())
            }
            Decision::Partial | Decision::Full => {
                self.idle_wait = None;
                match self.draw(&frame, decision).await {
                    Ok(()) => {
                        self.policy.record(now, &frame, decision);
                        self.retry_at = None;
                        self.failing = false;
                        self.publish_frame(frame);
                        Ok(())
                    }
                    Err(e) => {
                        if !self.failing {
                            tracing::error!("{e}; trying again in {} s", RETRY_AFTER.as_secs());
                        }
                        self.failing = true;
                        self.policy.forget();
                        self.retry_at = Some(now + RETRY_AFTER);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Drives the glass on a blocking thread, then puts the panel to sleep.
    async fn draw(&mut self, frame: &Frame, decision: Decision) -> Result<(), PanelError> {
        let Some(mut panel) = self.panel.take() else {
            return Err(PanelError::Spi("the panel was lost after a crash".into()));
        };
        let frame = frame.clone();
        let job = tokio::task::spawn_blocking(move || {
            let result = match decision {
                Decision::Full => panel.full_refresh(&frame),
                _ => panel.partial_refresh(&frame),
            };
            let slept = panel.sleep();
            (panel, result.and(slept))
        });
        match job.await {
            Ok((panel, result)) => {
                self.panel = Some(panel);
                if result.is_ok() {
                    match decision {
                        Decision::Full => self.counts.full += 1,
                        _ => self.counts.partial += 1,
                    }
                }
                result
            }
            Err(e) => {
                tracing::error!("the panel driver crashed: {e}; the display stays as it is");
                Err(PanelError::Spi(format!("panel driver crashed: {e}")))
            }
        }
    }

    fn publish_frame(&self, frame: Frame) {
        let mirror = if self.ui.shows_secret() && !self.settings.mirror_secrets {
            self.render(true)
        } else {
            frame
        };
        self.frames.send_replace(Some(Arc::new(mirror)));
    }

    fn publish_state(&self) {
        self.state.send_replace(DisplayState {
            screen: self.ui.screen(),
            has_keys: self.ui.has_keys(),
            full_refreshes: self.counts.full,
            partial_refreshes: self.counts.partial,
            failing: self.failing,
        });
    }
}

/// Resolves when whoever waits for the pairing answer stopped waiting.
async fn asker_gone(asker: &mut Option<oneshot::Sender<PairingAnswer>>) {
    match asker {
        Some(asker) => asker.closed().await,
        None => std::future::pending().await,
    }
}

async fn next_key(keys: &mut Option<KeyEvents>) -> Option<plugnode_hw::KeyEvent> {
    match keys {
        Some(keys) => keys.next().await,
        None => std::future::pending().await,
    }
}

/// The system's UTC offset at `now` (from /etc/localtime or TZ), 0 when unknown.
fn local_offset(now: u64) -> i32 {
    use chrono::{Local, Offset, TimeZone};
    Local
        .timestamp_opt(now as i64, 0)
        .single()
        .map(|t| t.offset().fix().local_minus_utc())
        .unwrap_or(0)
}
