//! Display-local state and navigation: which screen is up, which secret is shown, and
//! what each key does. Pure logic: events and the time go in, the next screen (and what
//! the service must do) comes out.
//!
//! Keys (2.7" HAT): KEY1 next, KEY2 select/confirm, KEY3 back, KEY4 held 3 s = shut down
//! (confirm with KEY2). Status screens form a ring: Home → Lightning → Backup → This box →
//! Alerts → Home; KEY3 walks it backwards and stops at Home. On panels without keys the ring turns
//! by itself every `rotate_every`.
//!
//! The web page's copy of the keys ([`Action::Mirrored`]) navigates like the device's,
//! but on a box with a real panel it never confirms (pairing, preparing a stick, shutting
//! down): physical presence is physical. On the simulated panel the page is the device.

use crate::status::{AlertKind, Phase, Status};
use plugnode_hw::{Key, KeyEvent, KeyEventKind};
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Every screen the box can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Screen {
    /// While the supervisor starts (status phase `Booting`).
    Boot,
    /// Block height and sync, Lightning channels and balance, backup, address.
    Home,
    Lightning,
    Backup,
    /// The box's name, the address to type, and its certificate authority's fingerprint,
    /// to compare with the page before trusting it.
    ThisBox,
    /// One alert at a time; `index` into `Status::alerts()`.
    Alerts {
        index: usize,
    },
    /// "Allow this app?" — a [`PairingQuestion`], answered with KEY2 or KEY3.
    PairingConfirm,
    /// "Send on-chain?" — a [`WithdrawalQuestion`], answered with KEY2 or KEY3.
    WithdrawalConfirm,
    /// "Install update?" — an [`UpdateQuestion`], answered with KEY2 or KEY3.
    UpdateConfirm,
    /// The one-time code that lets a throttled owner log in on the web page (secret).
    UnlockCode,
    /// The pairing QR code (secret).
    PairingQr,
    /// Six seed words (secret).
    Seed {
        page: usize,
    },
    /// "Shut down?" — waits for KEY2.
    ShutdownConfirm,
    ShuttingDown,
    /// Everything stopped.
    SafeToUnplug,
}

impl Screen {
    /// Screens showing something that must not stay on the glass.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Screen::PairingQr | Screen::Seed { .. } | Screen::UnlockCode
        )
    }

    /// The status ring (and the boot screen, which stands in for Home).
    pub fn is_status(self) -> bool {
        matches!(
            self,
            Screen::Boot
                | Screen::Home
                | Screen::Lightning
                | Screen::Backup
                | Screen::ThisBox
                | Screen::Alerts { .. }
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, Screen::ShuttingDown | Screen::SafeToUnplug)
    }

    /// A stable short name (tests, logs, the web page).
    pub fn name(self) -> &'static str {
        match self {
            Screen::Boot => "boot",
            Screen::Home => "home",
            Screen::Lightning => "lightning",
            Screen::Backup => "backup",
            Screen::ThisBox => "this-box",
            Screen::Alerts { .. } => "alerts",
            Screen::PairingConfirm => "pairing-confirm",
            Screen::WithdrawalConfirm => "withdrawal-confirm",
            Screen::UpdateConfirm => "update-confirm",
            Screen::UnlockCode => "unlock-code",
            Screen::PairingQr => "pairing-qr",
            Screen::Seed { .. } => "seed",
            Screen::ShutdownConfirm => "shutdown-confirm",
            Screen::ShuttingDown => "shutting-down",
            Screen::SafeToUnplug => "safe-to-unplug",
        }
    }
}

/// A wallet-pairing URI to show as a QR code. `Debug` hides the URI: it grants access to
/// the node.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    /// What the user pairs, e.g. "Zeus (NWC)"; shown next to the code.
    pub label: String,
    uri: String,
}

impl PairingCode {
    pub fn new(label: impl Into<String>, uri: impl Into<String>) -> Self {
        PairingCode {
            label: label.into(),
            uri: uri.into(),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingCode({:?}, uri: ***)", self.label)
    }
}

/// What the box asks before an app may spend: shown on the e-ink, answered with KEY2/KEY3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingQuestion {
    /// The app asking, e.g. "Zeus (NWC)" (shortened on screen when long).
    pub app: String,
    /// What it may do, e.g. "receive and spend".
    pub permissions: String,
    /// Its spending limit, e.g. "50 000 sat per day, until 31 Dec".
    pub budget: String,
}

/// What the box asks before bitcoin leaves it on-chain: shown on the e-ink, answered with
/// KEY2/KEY3 like a [`PairingQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalQuestion {
    /// e.g. "100 000 sat", or "everything (250 000 sat)".
    pub amount: String,
    /// The address it goes to, in full: the one thing to check.
    pub address: String,
}

/// What the box asks before a system update is installed: shown on the e-ink, answered
/// with KEY2/KEY3 like a [`PairingQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateQuestion {
    /// The version to install.
    pub version: String,
    /// The version running now.
    pub running: String,
}

/// A question only a key on the box answers (KEY2 yes, KEY3 no), each on its own screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    Pairing(PairingQuestion),
    Withdrawal(WithdrawalQuestion),
    Update(UpdateQuestion),
}

impl Question {
    /// The screen that asks it.
    pub fn screen(&self) -> Screen {
        match self {
            Question::Pairing(_) => Screen::PairingConfirm,
            Question::Withdrawal(_) => Screen::WithdrawalConfirm,
            Question::Update(_) => Screen::UpdateConfirm,
        }
    }
}

impl From<PairingQuestion> for Question {
    fn from(question: PairingQuestion) -> Self {
        Question::Pairing(question)
    }
}

impl From<WithdrawalQuestion> for Question {
    fn from(question: WithdrawalQuestion) -> Self {
        Question::Withdrawal(question)
    }
}

impl From<UpdateQuestion> for Question {
    fn from(question: UpdateQuestion) -> Self {
        Question::Update(question)
    }
}

/// How a [`Question`] on the box ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairingAnswer {
    /// KEY2 on the device.
    Confirmed,
    /// KEY3, or the question gave way (shutdown, secrets cleared, another request).
    Refused,
    /// Nobody answered within `pairing_confirm_timeout` (every question's timeout).
    TimedOut,
}

pub const WORDS_PER_PAGE: usize = 6;

/// Recovery words to show during setup. `Debug` hides them; they are wiped from memory
/// when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SeedWords(Vec<String>);

impl Drop for SeedWords {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl SeedWords {
    /// 1 to 24 words, each non-empty and without spaces.
    pub fn new(words: Vec<String>) -> Option<SeedWords> {
        let ok = !words.is_empty()
            && words.len() <= 24
            && words
                .iter()
                .all(|w| !w.is_empty() && !w.chars().any(char::is_whitespace));
        ok.then_some(SeedWords(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    pub fn pages(&self) -> usize {
        self.0.len().div_ceil(WORDS_PER_PAGE)
    }

    /// The words on `page` (0-based) with their 1-based numbers.
    pub fn page(&self, page: usize) -> impl Iterator<Item = (usize, &str)> {
        self.0
            .iter()
            .enumerate()
            .skip(page * WORDS_PER_PAGE)
            .take(WORDS_PER_PAGE)
            .map(|(i, w)| (i + 1, w.as_str()))
    }
}

impl fmt::Debug for SeedWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeedWords({} words: ***)", self.0.len())
    }
}

/// What a key did, once debounced: a click (short press, released) or a long press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A short press of a key on the device.
    Click(Key),
    /// A key on the device held for the long-press time.
    Long(Key),
    /// A press of the web page's copy of the keys (`long`: held). It navigates like the
    /// device's keys, but confirms only where the page is the device (simulated panel).
    Mirrored { key: Key, long: bool },
}

impl Action {
    /// Key-downs and the release after a long press do nothing by themselves.
    pub fn from_event(event: KeyEvent) -> Option<Action> {
        match event.kind {
            KeyEventKind::Up { long: false } => Some(Action::Click(event.key)),
            KeyEventKind::LongPress => Some(Action::Long(event.key)),
            _ => None,
        }
    }
}

/// How soon a change must reach the glass (see [`super::policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// A status update: at most every idle interval.
    Idle,
    /// Key presses, new alerts, shutdown: now.
    Immediate,
    /// Now, and with a full refresh: a secret leaves the screen, so no ghost of it may stay.
    ImmediateFull,
}

/// Something the service must do besides drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The user confirmed shutdown on the device.
    TriggerShutdown,
    /// The user agreed on the device to prepare the empty stick that was found.
    PrepareStick,
    /// The open question (pairing or withdrawal) ended; the service tells whoever asked it.
    PairingAnswered(PairingAnswer),
}

/// Timeouts of the display-local state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UiTiming {
    /// Secrets leave the screen this long after they were shown or last paged.
    pub secret_timeout: Duration,
    /// An unanswered pairing question goes away after this (answer: timed out).
    pub pairing_confirm_timeout: Duration,
    /// An unanswered "shut down?" goes away after this.
    pub shutdown_confirm_timeout: Duration,
    /// Panels without keys move to the next status screen this often.
    pub rotate_every: Duration,
}

impl Default for UiTiming {
    fn default() -> Self {
        UiTiming {
            secret_timeout: Duration::from_secs(120),
            pairing_confirm_timeout: Duration::from_secs(120),
            shutdown_confirm_timeout: Duration::from_secs(30),
            rotate_every: Duration::from_secs(300),
        }
    }
}

/// The result of an event: how urgent the redraw is (if anything may have changed) and
/// what else to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub urgency: Option<Urgency>,
    pub effects: Vec<Effect>,
    /// A mirrored key tried to confirm on a box with real keys: nothing happened, the
    /// user must press the key on the box.
    pub needs_key_on_box: bool,
}

impl Outcome {
    fn redraw(urgency: Urgency) -> Self {
        Outcome {
            urgency: Some(urgency),
            ..Outcome::default()
        }
    }

    /// Raises the urgency to at least `urgency`.
    fn at_least(&mut self, urgency: Urgency) {
        self.urgency = self.urgency.max(Some(urgency));
    }
}

/// Display-local state.
#[derive(Clone, Debug)]
pub struct Ui {
    screen: Screen,
    /// The status screen to return to when an overlay closes.
    base: Screen,
    has_keys: bool,
    /// The web page's keys count as the device's (the simulated panel).
    mirror_confirms: bool,
    /// The question on its confirm screen; `Some` exactly while it is open.
    question: Option<Question>,
    /// The code on [`Screen::UnlockCode`].
    unlock_code: Option<crate::secret::Secret>,
    pairing: Option<PairingCode>,
    seed: Option<SeedWords>,
    /// When the current overlay (confirmation or secret) times out.
    overlay_deadline: Option<Instant>,
    /// When a keyless panel turns to the next status screen.
    rotate_at: Option<Instant>,
    alerts_seen: Vec<AlertKind>,
    /// The kinds of state last drawn (bitcoind, Lightning, backup, setup).
    headline: Option<Headline>,
    timing: UiTiming,
}

/// What a status *says*, as opposed to its numbers: a change here ("starting" → "ready",
/// "safe to remove", "prepare this stick?") is drawn at once, while a new block height or
/// balance waits for the idle interval. A backup writing and mirroring again after each
/// payment is routine and waits too.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Headline {
    bitcoind: std::mem::Discriminant<crate::status::BitcoindState>,
    lightning: std::mem::Discriminant<crate::status::LightningState>,
    backup: Option<std::mem::Discriminant<crate::status::BackupState>>,
    setup_needed: bool,
    /// A new or revoked app is what the user just did: show it at once.
    apps_paired: u32,
}

impl Headline {
    fn of(status: &Status) -> Headline {
        use crate::status::BackupState;
        let backup = match status.backup.state {
            BackupState::Writing | BackupState::Mirroring => None,
            ref other => Some(std::mem::discriminant(other)),
        };
        Headline {
            bitcoind: std::mem::discriminant(&status.bitcoind.state),
            lightning: std::mem::discriminant(&status.lightning.state),
            backup,
            setup_needed: status.setup.needed(),
            apps_paired: status.pairing.active_connections,
        }
    }
}

impl Ui {
    pub fn new(has_keys: bool, timing: UiTiming, now: Instant) -> Ui {
        Ui {
            screen: Screen::Boot,
            base: Screen::Boot,
            has_keys,
            mirror_confirms: false,
            question: None,
            unlock_code: None,
            pairing: None,
            seed: None,
            overlay_deadline: None,
            rotate_at: (!has_keys).then(|| now + timing.rotate_every),
            alerts_seen: Vec::new(),
            headline: None,
            timing,
        }
    }

    /// Lets the web page's keys confirm like the device's: only for the simulated panel,
    /// where the page is the device (demo, tests).
    pub fn mirror_confirms(mut self, yes: bool) -> Ui {
        self.mirror_confirms = yes;
        self
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn has_keys(&self) -> bool {
        self.has_keys
    }

    /// The open question.
    pub fn question(&self) -> Option<&Question> {
        self.question.as_ref()
    }

    /// The unlock code on the screen.
    pub fn unlock_code(&self) -> Option<&str> {
        self.unlock_code.as_ref().map(|code| code.expose())
    }

    /// The pairing code on the screen.
    pub fn pairing(&self) -> Option<&PairingCode> {
        self.pairing.as_ref()
    }

    pub fn seed(&self) -> Option<&SeedWords> {
        self.seed.as_ref()
    }

    /// Whether a secret is on the screen now.
    pub fn shows_secret(&self) -> bool {
        self.screen.is_secret()
    }

    /// The next moment [`Ui::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.overlay_deadline, self.rotate_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves to a screen; status screens become the new base.
    fn go(&mut self, screen: Screen) {
        if screen.is_status() {
            self.base = screen;
        }
        self.screen = screen;
    }

    /// Ends the open question (if any) with `answer`.
    fn answer(&mut self, answer: PairingAnswer, outcome: &mut Outcome) {
        if self.question.take().is_some() {
            outcome.effects.push(Effect::PairingAnswered(answer));
        }
    }

    /// Whatever the current overlay holds goes: secrets are forgotten (a full refresh when
    /// one was on the glass) and an open question is refused, so its asker never waits
    /// for a screen that is gone.
    fn drop_overlay(&mut self, outcome: &mut Outcome) {
        let had_secret = self.screen.is_secret();
        self.pairing = None;
        self.seed = None;
        self.unlock_code = None;
        self.overlay_deadline = None;
        self.answer(PairingAnswer::Refused, outcome);
        outcome.at_least(if had_secret {
            Urgency::ImmediateFull
        } else {
            Urgency::Immediate
        });
    }

    /// Shows `screen` over the status screens (replacing any other overlay).
    fn open_overlay(
        &mut self,
        screen: Screen,
        timeout: Duration,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        self.drop_overlay(outcome);
        if self.screen.is_status() {
            self.base = self.screen;
        }
        self.screen = screen;
        self.overlay_deadline = Some(now + timeout);
    }

    /// Back to the status screens.
    fn close_overlay(&mut self, outcome: &mut Outcome) {
        self.drop_overlay(outcome);
        self.screen = self.base;
    }

    /// The status ring: Home, Lightning, Backup, This box, Alerts (keyless panels skip
    /// Alerts when there are none).
    fn ring(&self, alert_count: usize) -> Vec<Screen> {
        let mut ring = vec![
            Screen::Home,
            Screen::Lightning,
            Screen::Backup,
            Screen::ThisBox,
        ];
        if self.has_keys || alert_count > 0 {
            ring.push(Screen::Alerts { index: 0 });
        }
        ring
    }

    fn ring_position(&self, alert_count: usize) -> usize {
        let current = match self.screen {
            Screen::Boot => Screen::Home,
            Screen::Alerts { .. } => Screen::Alerts { index: 0 },
            other => other,
        };
        self.ring(alert_count)
            .iter()
            .position(|s| *s == current)
            .unwrap_or(0)
    }

    fn next_status_screen(&mut self, alert_count: usize) {
        if let Screen::Alerts { index } = self.screen {
            if index + 1 < alert_count {
                self.go(Screen::Alerts { index: index + 1 });
                return;
            }
        }
        let ring = self.ring(alert_count);
        let next = ring[(self.ring_position(alert_count) + 1) % ring.len()];
        self.go(next);
    }

    fn previous_status_screen(&mut self, alert_count: usize) {
        if let Screen::Alerts { index } = self.screen {
            if index > 0 {
                self.go(Screen::Alerts { index: index - 1 });
                return;
            }
        }
        let pos = self.ring_position(alert_count);
        if pos > 0 {
            let ring = self.ring(alert_count);
            self.go(ring[pos - 1]);
        }
    }

    /// A key action. Every key press is drawn at once.
    pub fn on_action(&mut self, action: Action, status: &Status, now: Instant) -> Outcome {
        let alert_count = status.alerts().len();
        let mut outcome = Outcome::redraw(Urgency::Immediate);
        if self.screen.is_final() {
            return Outcome::default();
        }
        let (key, long, on_the_box) = match action {
            Action::Click(key) => (key, false, true),
            Action::Long(key) => (key, true, true),
            Action::Mirrored { key, long } => (key, long, self.mirror_confirms),
        };
        if long {
            if key == Key::Key4 {
                self.open_overlay(
                    Screen::ShutdownConfirm,
                    self.timing.shutdown_confirm_timeout,
                    now,
                    &mut outcome,
                );
                return outcome;
            }
            return Outcome::default();
        }
        let stick_waits = matches!(
            status.backup.state,
            crate::status::BackupState::NeedsConfirmation { .. }
        );
        let confirms = match (self.screen, key) {
            (Screen::Backup, Key::Key2) => stick_waits,
            (
                Screen::PairingConfirm
                | Screen::WithdrawalConfirm
                | Screen::UpdateConfirm
                | Screen::ShutdownConfirm,
                Key::Key2,
            ) => true,
            _ => false,
        };
        if confirms && !on_the_box {
            return Outcome {
                needs_key_on_box: true,
                ..Outcome::default()
            };
        }
        match (self.screen, key) {
            (Screen::Backup, Key::Key2) if stick_waits => {
                outcome.effects.push(Effect::PrepareStick);
            }
            (s, Key::Key1) if s.is_status() => self.next_status_screen(alert_count),
            (s, Key::Key3) if s.is_status() => self.previous_status_screen(alert_count),
            (Screen::Alerts { .. }, Key::Key2) => self.go(Screen::Home),
            (s, Key::Key2) if s.is_status() && alert_count > 0 => {
                self.go(Screen::Alerts { index: 0 });
            }
            (
                Screen::PairingConfirm | Screen::WithdrawalConfirm | Screen::UpdateConfirm,
                Key::Key2,
            ) => {
                self.answer(PairingAnswer::Confirmed, &mut outcome);
                self.close_overlay(&mut outcome);
            }
            (
                Screen::PairingConfirm | Screen::WithdrawalConfirm | Screen::UpdateConfirm,
                Key::Key3,
            ) => {
                self.answer(PairingAnswer::Refused, &mut outcome);
                self.close_overlay(&mut outcome);
            }
            (Screen::PairingQr | Screen::UnlockCode, Key::Key2 | Key::Key3) => {
                self.close_overlay(&mut outcome)
            }
            (Screen::Seed { page }, key) => {
                let pages = self.seed.as_ref().map_or(1, SeedWords::pages);
                match key {
                    Key::Key1 if page + 1 < pages => self.screen = Screen::Seed { page: page + 1 },
                    Key::Key3 if page > 0 => self.screen = Screen::Seed { page: page - 1 },
                    Key::Key2 if page + 1 >= pages => {
                        self.close_overlay(&mut outcome);
                        return outcome;
                    }
                    _ => {}
                }
                // Paging is activity: the words stay another full timeout.
                self.overlay_deadline = Some(now + self.timing.secret_timeout);
            }
            (Screen::ShutdownConfirm, Key::Key2) => {
                self.overlay_deadline = None;
                self.screen = Screen::ShuttingDown;
                outcome.effects.push(Effect::TriggerShutdown);
            }
            (Screen::ShutdownConfirm, Key::Key3) => self.close_overlay(&mut outcome),
            _ => {}
        }
        outcome
    }

    /// A new status. New alerts bring the alert screen up at once (or right after an open
    /// overlay closes); everything else is an idle update.
    pub fn on_status(&mut self, status: &Status, now: Instant) -> Outcome {
        let _ = now;
        match status.phase {
            Phase::ShuttingDown if !self.screen.is_final() => return self.shutting_down(),
            Phase::Stopped if self.screen != Screen::SafeToUnplug => return self.stopped(),
            _ => {}
        }
        if self.screen.is_final() {
            return Outcome::redraw(Urgency::Idle);
        }
        let mut urgency = Urgency::Idle;
        let headline = Headline::of(status);
        if self.headline.as_ref().is_some_and(|seen| *seen != headline) {
            urgency = Urgency::Immediate;
        }
        self.headline = Some(headline);
        if status.phase != Phase::Booting && self.screen == Screen::Boot {
            self.go(Screen::Home);
            urgency = Urgency::Immediate;
        }
        if self.base == Screen::Boot && status.phase != Phase::Booting {
            self.base = Screen::Home;
        }
        let alerts = status.alerts();
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        let new_alert = kinds.iter().any(|k| !self.alerts_seen.contains(k));
        // The last alert went away: an alert screen left open goes home.
        let had_alerts = !self.alerts_seen.is_empty();
        self.alerts_seen = kinds;
        if new_alert {
            urgency = Urgency::Immediate;
            if self.screen.is_status() {
                self.go(Screen::Alerts { index: 0 });
            } else {
                self.base = Screen::Alerts { index: 0 };
            }
        }
        // Alerts that went away: stay on a valid one, or go home when the last one went.
        let has_keys = self.has_keys;
        for screen in [&mut self.screen, &mut self.base] {
            if let Screen::Alerts { index } = *screen {
                if alerts.is_empty() && (!has_keys || had_alerts) {
                    *screen = Screen::Home;
                } else if index >= alerts.len() {
                    *screen = Screen::Alerts {
                        index: alerts.len().saturating_sub(1),
                    };
                }
            }
        }
        Outcome::redraw(urgency)
    }

    /// Time passed: overlays time out, keyless panels rotate.
    pub fn on_timer(&mut self, status: &Status, now: Instant) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(deadline) = self.overlay_deadline {
            if now >= deadline {
                self.answer(PairingAnswer::TimedOut, &mut outcome);
                self.close_overlay(&mut outcome);
            }
        }
        if let Some(at) = self.rotate_at {
            if now >= at {
                self.rotate_at = Some(now + self.timing.rotate_every);
                if self.screen.is_status() && !self.screen.is_final() {
                    self.next_status_screen(status.alerts().len());
                    outcome.urgency = outcome.urgency.max(Some(Urgency::Idle));
                }
            }
        }
        outcome
    }

    /// Asks a question on its screen ([`Question::screen`]); an open question it replaces
    /// is refused. `None` when it cannot be asked (no keys, shutting down): the answer is
    /// then [`PairingAnswer::Refused`].
    pub fn ask(&mut self, question: impl Into<Question>, now: Instant) -> Option<Outcome> {
        if self.screen.is_final() || !self.has_keys {
            return None;
        }
        let question = question.into();
        let mut outcome = Outcome::redraw(Urgency::Immediate);
        self.open_overlay(
            question.screen(),
            self.timing.pairing_confirm_timeout,
            now,
            &mut outcome,
        );
        self.question = Some(question);
        Some(outcome)
    }

    /// Shows the unlock code ([`Screen::UnlockCode`], a secret), keys or not. It never
    /// pushes another question, code or the seed words off the screen (anyone on the
    /// network may ask for it): `None` then, and while shutting down. The same code asked
    /// again only stays longer.
    pub fn show_unlock_code(
        &mut self,
        code: crate::secret::Secret,
        now: Instant,
    ) -> Option<Outcome> {
        if self.screen == Screen::UnlockCode && self.unlock_code.as_ref() == Some(&code) {
            self.overlay_deadline = Some(now + self.timing.secret_timeout);
            return Some(Outcome::default());
        }
        let free = self.screen.is_status() || self.screen == Screen::UnlockCode;
        if !free {
            return None;
        }
        let mut outcome = Outcome::redraw(Urgency::Immediate);
        self.open_overlay(
            Screen::UnlockCode,
            self.timing.secret_timeout,
            now,
            &mut outcome,
        );
        self.unlock_code = Some(code);
        Some(outcome)
    }

    /// The one who asked the open question went away: the question leaves the screen.
    pub fn withdraw_question(&mut self) -> Outcome {
        if !matches!(
            self.screen,
            Screen::PairingConfirm | Screen::WithdrawalConfirm | Screen::UpdateConfirm
        ) {
            return Outcome::default();
        }
        let mut outcome = Outcome::default();
        self.close_overlay(&mut outcome);
        outcome
    }

    /// Shows a pairing code as a QR code ([`Screen::PairingQr`], a secret), keys or not.
    /// `None` while shutting down (nothing is shown).
    pub fn show_pairing_qr(&mut self, code: PairingCode, now: Instant) -> Option<Outcome> {
        if self.screen.is_final() {
            return None;
        }
        let mut outcome = Outcome::redraw(Urgency::Immediate);
        self.open_overlay(
            Screen::PairingQr,
            self.timing.secret_timeout,
            now,
            &mut outcome,
        );
        self.pairing = Some(code);
        Some(outcome)
    }

    /// The setup wizard shows the recovery words (first page).
    pub fn show_seed(&mut self, words: SeedWords, now: Instant) -> Outcome {
        if self.screen.is_final() {
            return Outcome::default();
        }
        let mut outcome = Outcome::redraw(Urgency::Immediate);
        self.open_overlay(
            Screen::Seed { page: 0 },
            self.timing.secret_timeout,
            now,
            &mut outcome,
        );
        self.seed = Some(words);
        outcome
    }

    /// Takes any secret (and an open pairing question, refused) off the screen.
    pub fn clear_secrets(&mut self) -> Outcome {
        let mut outcome = Outcome::default();
        if matches!(
            self.screen,
            Screen::PairingConfirm
                | Screen::WithdrawalConfirm
                | Screen::UpdateConfirm
                | Screen::PairingQr
                | Screen::Seed { .. }
                | Screen::UnlockCode
        ) {
            self.close_overlay(&mut outcome);
        } else {
            self.pairing = None;
            self.seed = None;
            self.unlock_code = None;
        }
        outcome
    }

    /// Shutdown started (from any source): secrets go, an open question is refused,
    /// "shutting down" comes up.
    pub fn shutting_down(&mut self) -> Outcome {
        if self.screen.is_final() {
            return Outcome::default();
        }
        let mut outcome = Outcome::default();
        self.drop_overlay(&mut outcome);
        self.rotate_at = None;
        self.screen = Screen::ShuttingDown;
        outcome
    }

    /// Everything stopped: "safe to unplug", always with a full refresh (it stays on the
    /// glass for as long as the box is off).
    pub fn stopped(&mut self) -> Outcome {
        let mut outcome = Outcome::default();
        self.drop_overlay(&mut outcome);
        self.rotate_at = None;
        self.screen = Screen::SafeToUnplug;
        outcome.at_least(Urgency::ImmediateFull);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BackupState, PowerStatus};

    fn ui(has_keys: bool) -> (Ui, Status, Instant) {
        let now = Instant::now();
        let mut ui = Ui::new(has_keys, UiTiming::default(), now);
        let status = Status {
            phase: Phase::Running,
            ..Status::default()
        };
        ui.on_status(&status, now);
        (ui, status, now)
    }

    fn click(ui: &mut Ui, status: &Status, key: Key, now: Instant) -> Outcome {
        ui.on_action(Action::Click(key), status, now)
    }

    #[test]
    fn boot_gives_way_to_home() {
        let now = Instant::now();
        let mut ui = Ui::new(true, UiTiming::default(), now);
        assert_eq!(ui.screen(), Screen::Boot);
        let mut status = Status::default();
        ui.on_status(&status, now);
        assert_eq!(ui.screen(), Screen::Boot);
        status.phase = Phase::Running;
        let outcome = ui.on_status(&status, now);
        assert_eq!(ui.screen(), Screen::Home);
        assert_eq!(outcome.urgency, Some(Urgency::Immediate));
    }

    #[test]
    fn key1_walks_the_ring_and_key3_walks_back_to_home() {
        let (mut ui, status, now) = ui(true);
        let mut seen = vec![ui.screen()];
        for _ in 0..5 {
            click(&mut ui, &status, Key::Key1, now);
            seen.push(ui.screen());
        }
        assert_eq!(
            seen,
            vec![
                Screen::Home,
                Screen::Lightning,
                Screen::Backup,
                Screen::ThisBox,
                Screen::Alerts { index: 0 },
                Screen::Home
            ]
        );
        click(&mut ui, &status, Key::Key1, now);
        click(&mut ui, &status, Key::Key1, now);
        click(&mut ui, &status, Key::Key1, now);
        assert_eq!(ui.screen(), Screen::ThisBox);
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Backup);
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Lightning);
        click(&mut ui, &status, Key::Key3, now);
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Home, "back stops at home");
    }

    #[test]
    fn new_alerts_come_up_at_once_and_key2_dismisses() {
        let (mut ui, mut status, now) = ui(true);
        click(&mut ui, &status, Key::Key1, now);
        status.system.power = PowerStatus {
            undervoltage_now: true,
            ..PowerStatus::default()
        };
        status.backup.state = BackupState::Failed {
            message: "I/O error".into(),
        };
        let outcome = ui.on_status(&status, now);
        assert_eq!(outcome.urgency, Some(Urgency::Immediate));
        assert_eq!(ui.screen(), Screen::Alerts { index: 0 });
        click(&mut ui, &status, Key::Key1, now);
        assert_eq!(ui.screen(), Screen::Alerts { index: 1 });
        click(&mut ui, &status, Key::Key2, now);
        assert_eq!(ui.screen(), Screen::Home);
        // The same alerts again are not new.
        assert_eq!(ui.on_status(&status, now).urgency, Some(Urgency::Idle));
        assert_eq!(ui.screen(), Screen::Home);
        // KEY2 on home opens the alerts.
        click(&mut ui, &status, Key::Key2, now);
        assert_eq!(ui.screen(), Screen::Alerts { index: 0 });
    }

    fn question() -> PairingQuestion {
        PairingQuestion {
            app: "Zeus (NWC)".into(),
            permissions: "receive and spend".into(),
            budget: "50 000 sat per day, until 31 Dec".into(),
        }
    }

    fn mirrored(ui: &mut Ui, status: &Status, key: Key, now: Instant) -> Outcome {
        ui.on_action(Action::Mirrored { key, long: false }, status, now)
    }

    fn answered(answer: PairingAnswer) -> Vec<Effect> {
        vec![Effect::PairingAnswered(answer)]
    }

    #[test]
    fn key2_allows_the_app_and_the_question_leaves() {
        let (mut ui, status, now) = ui(true);
        click(&mut ui, &status, Key::Key1, now);
        let outcome = ui.ask(question(), now).unwrap();
        assert_eq!(outcome.urgency, Some(Urgency::Immediate));
        assert!(outcome.effects.is_empty(), "nothing answered yet");
        assert_eq!(ui.screen(), Screen::PairingConfirm);
        assert_eq!(ui.question(), Some(&question().into()));
        assert!(!ui.shows_secret(), "the question is no secret");
        // KEY1 does not answer.
        assert!(click(&mut ui, &status, Key::Key1, now).effects.is_empty());
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Confirmed));
        assert_eq!(ui.screen(), Screen::Lightning, "back where it was");
        assert!(ui.question().is_none());
        assert_eq!(ui.next_deadline(), None);
    }

    #[test]
    fn key3_refuses_the_app() {
        let (mut ui, status, now) = ui(true);
        ui.ask(question(), now).unwrap();
        let outcome = click(&mut ui, &status, Key::Key3, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::Home);
        // A second key press answers nothing more.
        assert!(click(&mut ui, &status, Key::Key2, now).effects.is_empty());
    }

    #[test]
    fn an_unanswered_question_times_out_after_two_minutes() {
        let (mut ui, status, now) = ui(true);
        ui.ask(question(), now).unwrap();
        let deadline = ui.next_deadline().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(120));
        let early = ui.on_timer(&status, deadline - Duration::from_secs(1));
        assert!(early.effects.is_empty());
        assert_eq!(ui.screen(), Screen::PairingConfirm);
        let outcome = ui.on_timer(&status, deadline);
        assert_eq!(outcome.effects, answered(PairingAnswer::TimedOut));
        assert_eq!(outcome.urgency, Some(Urgency::Immediate));
        assert_eq!(ui.screen(), Screen::Home);
    }

    #[test]
    fn a_question_replaced_by_another_request_is_refused() {
        let (mut ui, status, now) = ui(true);
        ui.ask(question(), now).unwrap();
        let other = PairingQuestion {
            app: "Alby Go".into(),
            ..question()
        };
        let outcome = ui.ask(other.clone(), now).unwrap();
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.question(), Some(&other.into()), "the new one is asked");

        let outcome = ui.show_seed(SeedWords::new(vec!["zoo".into()]).unwrap(), now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::Seed { page: 0 });

        ui.ask(question(), now).unwrap();
        let outcome = ui
            .show_pairing_qr(PairingCode::new("Zeus", "nostr+walletconnect://x"), now)
            .unwrap();
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::PairingQr);

        ui.ask(question(), now).unwrap();
        let outcome = ui.clear_secrets();
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::Home);

        // The shutdown question (KEY4 held) replaces it too.
        ui.ask(question(), now).unwrap();
        let outcome = ui.on_action(Action::Long(Key::Key4), &status, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::ShutdownConfirm);

        // The asker went away: the question leaves the screen.
        ui.ask(question(), now).unwrap();
        ui.withdraw_question();
        assert_eq!(ui.screen(), Screen::Home);
        assert!(ui.question().is_none());
    }

    #[test]
    fn shutdown_while_asking_refuses_and_nothing_is_asked_after() {
        let (mut ui, mut status, now) = ui(true);
        ui.ask(question(), now).unwrap();
        status.phase = Phase::ShuttingDown;
        let outcome = ui.on_status(&status, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(ui.screen(), Screen::ShuttingDown);
        assert!(ui.ask(question(), now).is_none());
        assert!(ui
            .show_pairing_qr(PairingCode::new("Zeus", "x"), now)
            .is_none());
        assert_eq!(ui.screen(), Screen::ShuttingDown);

        let (mut ui, _, now) = self::ui(true);
        ui.ask(question(), now).unwrap();
        assert_eq!(ui.stopped().effects, answered(PairingAnswer::Refused));
    }

    #[test]
    fn without_keys_nothing_can_be_asked() {
        let (mut ui, _, now) = ui(false);
        assert!(ui.ask(question(), now).is_none());
        assert_eq!(ui.screen(), Screen::Home);
    }

    #[test]
    fn the_pages_keys_cannot_confirm_on_a_box_with_real_keys() {
        let (mut ui, status, now) = ui(true);
        ui.ask(question(), now).unwrap();
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(outcome.needs_key_on_box);
        assert!(outcome.effects.is_empty());
        assert_eq!(outcome.urgency, None, "nothing to draw");
        assert_eq!(ui.screen(), Screen::PairingConfirm, "still asking");
        // The key on the box does.
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Confirmed));

        // Refusing from the page is fine.
        ui.ask(question(), now).unwrap();
        let outcome = mirrored(&mut ui, &status, Key::Key3, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert!(!outcome.needs_key_on_box);

        // Nor shutting down: KEY4 held opens the question, only the box answers it.
        ui.on_action(
            Action::Mirrored {
                key: Key::Key4,
                long: true,
            },
            &status,
            now,
        );
        assert_eq!(ui.screen(), Screen::ShutdownConfirm);
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(outcome.needs_key_on_box);
        assert!(outcome.effects.is_empty());
        mirrored(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Home);
    }

    #[test]
    fn on_the_simulated_panel_the_pages_keys_are_the_devices() {
        let (ui, status, now) = ui(true);
        let mut ui = ui.mirror_confirms(true);
        ui.ask(question(), now).unwrap();
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(!outcome.needs_key_on_box);
        assert_eq!(outcome.effects, answered(PairingAnswer::Confirmed));
    }

    #[test]
    fn the_pages_key2_cannot_prepare_a_stick_on_a_box_with_real_keys() {
        let (mut ui, mut status, now) = ui(true);
        status.backup.state = BackupState::NeedsConfirmation {
            stick: "sda".into(),
            reason: "This stick is empty.".into(),
        };
        ui.on_status(&status, now);
        // Navigating there from the page works.
        mirrored(&mut ui, &status, Key::Key1, now);
        mirrored(&mut ui, &status, Key::Key1, now);
        assert_eq!(ui.screen(), Screen::Backup);
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(outcome.needs_key_on_box);
        assert!(outcome.effects.is_empty());
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, vec![Effect::PrepareStick]);

        let mut simulated = ui.clone().mirror_confirms(true);
        let outcome = mirrored(&mut simulated, &status, Key::Key2, now);
        assert_eq!(outcome.effects, vec![Effect::PrepareStick]);
    }

    #[test]
    fn the_pages_key2_still_opens_and_closes_the_alerts() {
        let (mut ui, mut status, now) = ui(true);
        status.system.power.undervoltage_now = true;
        ui.on_status(&status, now);
        mirrored(&mut ui, &status, Key::Key2, now);
        assert_eq!(ui.screen(), Screen::Home);
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(!outcome.needs_key_on_box);
        assert_eq!(ui.screen(), Screen::Alerts { index: 0 });
    }

    #[test]
    fn the_pairing_code_shows_at_once_and_leaves_with_a_full_refresh() {
        for has_keys in [true, false] {
            let (mut ui, status, now) = ui(has_keys);
            let outcome = ui
                .show_pairing_qr(PairingCode::new("Zeus", "nostr+walletconnect://x"), now)
                .unwrap();
            assert_eq!(outcome.urgency, Some(Urgency::Immediate));
            assert_eq!(ui.screen(), Screen::PairingQr);
            assert!(ui.shows_secret());
            assert!(ui.pairing().is_some());
            let deadline = ui.next_deadline().unwrap();
            assert_eq!(deadline, now + Duration::from_secs(120));
            let outcome = ui.on_timer(&status, deadline);
            assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
            assert!(!ui.shows_secret());
            assert!(ui.pairing().is_none());
        }
        let (mut ui, status, now) = ui(true);
        ui.show_pairing_qr(PairingCode::new("Zeus", "x"), now);
        // The page may take it down too.
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
        assert_eq!(ui.screen(), Screen::Home);
    }

    #[test]
    fn seed_pages_and_done_on_the_last_page() {
        let (mut ui, status, now) = ui(true);
        let words = SeedWords::new((1..=24).map(|i| format!("w{i}")).collect()).unwrap();
        assert_eq!(words.pages(), 4);
        ui.show_seed(words, now);
        assert_eq!(ui.screen(), Screen::Seed { page: 0 });
        click(&mut ui, &status, Key::Key2, now);
        assert_eq!(
            ui.screen(),
            Screen::Seed { page: 0 },
            "not done before the end"
        );
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Seed { page: 0 });
        for page in 1..4 {
            click(&mut ui, &status, Key::Key1, now);
            assert_eq!(ui.screen(), Screen::Seed { page });
        }
        click(&mut ui, &status, Key::Key1, now);
        assert_eq!(ui.screen(), Screen::Seed { page: 3 });
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Seed { page: 2 });
        click(&mut ui, &status, Key::Key1, now);
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
        assert_eq!(ui.screen(), Screen::Home);
        assert!(ui.seed().is_none());
    }

    #[test]
    fn long_key4_then_key2_shuts_down_and_key3_cancels() {
        let (mut ui, status, now) = ui(true);
        click(&mut ui, &status, Key::Key1, now);
        ui.on_action(Action::Long(Key::Key4), &status, now);
        assert_eq!(ui.screen(), Screen::ShutdownConfirm);
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Lightning);
        ui.on_action(Action::Long(Key::Key4), &status, now);
        // Unanswered, the question goes away.
        let outcome = ui.on_timer(&status, now + Duration::from_secs(30));
        assert!(outcome.effects.is_empty());
        assert_eq!(ui.screen(), Screen::Lightning);
        ui.on_action(Action::Long(Key::Key4), &status, now);
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, vec![Effect::TriggerShutdown]);
        assert_eq!(ui.screen(), Screen::ShuttingDown);
        // Nothing moves any more.
        click(&mut ui, &status, Key::Key1, now);
        assert_eq!(ui.screen(), Screen::ShuttingDown);
    }

    #[test]
    fn shutdown_from_a_secret_clears_it() {
        let (mut ui, status, now) = ui(true);
        ui.show_seed(SeedWords::new(vec!["abandon".into()]).unwrap(), now);
        let outcome = ui.on_action(Action::Long(Key::Key4), &status, now);
        assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
        assert!(ui.seed().is_none());
        assert_eq!(ui.screen(), Screen::ShutdownConfirm);

        ui.show_seed(SeedWords::new(vec!["abandon".into()]).unwrap(), now);
        let outcome = ui.shutting_down();
        assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
        assert!(ui.seed().is_none());
        assert_eq!(ui.screen(), Screen::ShuttingDown);
    }

    #[test]
    fn keyless_panels_rotate() {
        let (mut ui, status, now) = ui(false);
        let every = UiTiming::default().rotate_every;
        let mut seen = vec![ui.screen()];
        let mut t = now;
        for _ in 0..4 {
            t += every;
            assert_eq!(ui.next_deadline(), Some(t));
            ui.on_timer(&status, t);
            seen.push(ui.screen());
        }
        // No alerts: the alert screen is skipped; the fingerprint comes round too, since a
        // box without keys cannot be asked for it.
        assert_eq!(
            seen,
            vec![
                Screen::Home,
                Screen::Lightning,
                Screen::Backup,
                Screen::ThisBox,
                Screen::Home
            ]
        );
    }

    #[test]
    fn secrets_hide_from_debug() {
        let code = PairingCode::new("Zeus", "nostr+walletconnect://secret");
        assert!(!format!("{code:?}").contains("secret"));
        let words = SeedWords::new(vec!["zoo".into(), "abandon".into()]).unwrap();
        assert!(!format!("{words:?}").contains("zoo"));
        assert!(SeedWords::new(vec![]).is_none());
        assert!(SeedWords::new(vec!["two words".into()]).is_none());
    }

    fn withdrawal() -> WithdrawalQuestion {
        WithdrawalQuestion {
            amount: "100 000 sat".into(),
            address: "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into(),
        }
    }

    #[test]
    fn an_update_is_confirmed_with_key2_on_the_box_only() {
        let (mut ui, status, now) = ui(true);
        let update = || UpdateQuestion {
            version: "0.4.0".into(),
            running: "0.3.2".into(),
        };
        ui.ask(update(), now).unwrap();
        assert_eq!(ui.screen(), Screen::UpdateConfirm);
        assert_eq!(ui.question(), Some(&update().into()));
        // Nothing sent over the network stands in for the key press.
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(outcome.needs_key_on_box);
        assert_eq!(ui.screen(), Screen::UpdateConfirm, "still asking");
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Confirmed));
        assert!(ui.question().is_none());
        // KEY3 refuses; nobody answering times out.
        ui.ask(update(), now).unwrap();
        let outcome = click(&mut ui, &status, Key::Key3, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        ui.ask(update(), now).unwrap();
        let outcome = ui.on_timer(&status, now + Duration::from_secs(120));
        assert_eq!(outcome.effects, answered(PairingAnswer::TimedOut));
        // A box without keys cannot ask: the password alone decides there.
        let (mut keyless, _, now) = self::ui(false);
        assert!(keyless.ask(update(), now).is_none());
    }

    #[test]
    fn a_withdrawal_is_confirmed_with_key2_on_the_box_only() {
        let (mut ui, status, now) = ui(true);
        ui.ask(withdrawal(), now).unwrap();
        assert_eq!(ui.screen(), Screen::WithdrawalConfirm);
        assert_eq!(ui.question(), Some(&withdrawal().into()));
        // The page's copy of the keys cannot send the money.
        let outcome = mirrored(&mut ui, &status, Key::Key2, now);
        assert!(outcome.needs_key_on_box);
        assert_eq!(ui.screen(), Screen::WithdrawalConfirm, "still asking");
        let outcome = click(&mut ui, &status, Key::Key2, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Confirmed));
        assert_eq!(ui.screen(), Screen::Home);
        assert!(ui.question().is_none());

        // KEY3 (also the page's) refuses; nobody answering times out; another question
        // replaces it (refused).
        ui.ask(withdrawal(), now).unwrap();
        let outcome = mirrored(&mut ui, &status, Key::Key3, now);
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        ui.ask(withdrawal(), now).unwrap();
        let outcome = ui.on_timer(&status, now + Duration::from_secs(120));
        assert_eq!(outcome.effects, answered(PairingAnswer::TimedOut));
        ui.ask(withdrawal(), now).unwrap();
        let outcome = ui.ask(question(), now).unwrap();
        assert_eq!(outcome.effects, answered(PairingAnswer::Refused));
        assert_eq!(
            ui.question(),
            Some(&question().into()),
            "the pairing question replaced it"
        );
        ui.withdraw_question();
        ui.ask(withdrawal(), now).unwrap();
        ui.withdraw_question();
        assert_eq!(ui.screen(), Screen::Home);

        let (mut keyless, _, now) = self::ui(false);
        assert!(keyless.ask(withdrawal(), now).is_none());
    }

    #[test]
    fn the_unlock_code_is_a_secret_that_never_pushes_another_screen_away() {
        use crate::secret::Secret;
        let (mut ui, status, now) = ui(false);
        let code = Secret::new("K7PX3MWD");
        let outcome = ui.show_unlock_code(code.clone(), now).unwrap();
        assert_eq!(outcome.urgency, Some(Urgency::Immediate));
        assert_eq!(ui.screen(), Screen::UnlockCode);
        assert!(ui.shows_secret());
        assert_eq!(ui.unlock_code(), Some("K7PX3MWD"));
        // Asked again: no redraw, it only stays longer.
        let later = now + Duration::from_secs(60);
        assert_eq!(
            ui.show_unlock_code(code.clone(), later).unwrap(),
            Outcome::default()
        );
        assert_eq!(ui.next_deadline(), Some(later + Duration::from_secs(120)));
        // It leaves after two minutes, with a full refresh.
        let outcome = ui.on_timer(&status, later + Duration::from_secs(120));
        assert_eq!(outcome.urgency, Some(Urgency::ImmediateFull));
        assert!(ui.unlock_code().is_none());

        // An open question or the seed words stay; the code waits.
        let (mut ui, status, now) = self::ui(true);
        ui.ask(withdrawal(), now).unwrap();
        assert!(ui.show_unlock_code(code.clone(), now).is_none());
        assert_eq!(ui.screen(), Screen::WithdrawalConfirm);
        click(&mut ui, &status, Key::Key3, now);
        ui.show_unlock_code(code.clone(), now).unwrap();
        click(&mut ui, &status, Key::Key3, now);
        assert_eq!(ui.screen(), Screen::Home, "KEY3 takes it away");
        ui.show_unlock_code(code, now).unwrap();
        ui.clear_secrets();
        assert!(ui.unlock_code().is_none());
    }
}
