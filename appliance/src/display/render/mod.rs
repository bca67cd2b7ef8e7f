//! The screens: pure functions from the status and the display-local state to pixels on
//! any `embedded-graphics` target. Two layouts: the 2.7" panel (264×176) and the 2.13"
//! (250×122); see [`Theme`].
//!
//! One module per group of screens, all drawing with the helpers in `display::widgets`:
//! `home` (boot and Home), `lightning`, `backup`, `alerts`, `system` (this box, shutting
//! down), `questions` (pairing and withdrawal confirmations), `secrets` (pairing QR, seed
//! words, unlock code, and what the web mirror shows instead), and `words` (the box's
//! address as several screens say it).

mod alerts;
mod backup;
mod home;
mod lightning;
mod questions;
mod secrets;
mod system;
mod words;

use super::ui::{PairingCode, Question, Screen, SeedWords};
use super::widgets::{Theme, PAPER};
use crate::status::{Status, UnixTime};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

/// Everything a screen may show.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub screen: Screen,
    pub status: &'a Status,
    /// The question on its confirm screen ([`Question::screen`]).
    pub question: Option<&'a Question>,
    /// The code on [`Screen::UnlockCode`].
    pub unlock_code: Option<&'a str>,
    pub pairing: Option<&'a PairingCode>,
    pub seed: Option<&'a SeedWords>,
    pub has_keys: bool,
    /// Show a "secret on the device" placeholder instead of secrets (the web mirror).
    pub redact_secrets: bool,
    /// The one-time code that claims an unclaimed box on the web page (home screen only,
    /// until the box has a password).
    pub setup_code: Option<&'a str>,
    pub now: UnixTime,
    pub utc_offset_secs: i32,
}

impl<'a> View<'a> {
    /// A view of `screen` with no secrets, keys present, at `now` in UTC (tests and the
    /// screenshot generator start from this).
    pub fn new(screen: Screen, status: &'a Status, now: UnixTime) -> Self {
        View {
            screen,
            status,
            question: None,
            unlock_code: None,
            pairing: None,
            seed: None,
            has_keys: true,
            redact_secrets: false,
            setup_code: None,
            now,
            utc_offset_secs: 0,
        }
    }
}

/// The software version on the boot screen.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Draws `view` onto `target` (which is cleared first).
pub fn render<D>(view: &View, target: &mut D)
where
    D: DrawTarget<Color = BinaryColor> + OriginDimensions,
{
    let theme = Theme::for_size(target.size());
    let _ = target.clear(PAPER);
    if view.screen.is_secret() && view.redact_secrets {
        return secrets::redacted(target, &theme);
    }
    match view.screen {
        Screen::Boot => home::boot(target, &theme, view),
        Screen::Home => home::home(target, &theme, view),
        Screen::Lightning => lightning::lightning(target, &theme, view),
        Screen::Backup => backup::backup(target, &theme, view),
        Screen::ThisBox => system::this_box(target, &theme, view),
        Screen::Alerts { index } => alerts::alerts(target, &theme, view, index),
        Screen::PairingConfirm => questions::pairing_confirm(target, &theme, view),
        Screen::WithdrawalConfirm => questions::withdrawal_confirm(target, &theme, view),
        Screen::UpdateConfirm => questions::update_confirm(target, &theme, view),
        Screen::UnlockCode => secrets::unlock_code(target, &theme, view),
        Screen::PairingQr => secrets::pairing_qr(target, &theme, view),
        Screen::Seed { page } => secrets::seed(target, &theme, view, page),
        Screen::ShutdownConfirm => system::shutdown_confirm(target, &theme, view),
        Screen::ShuttingDown => system::shutting_down(target, &theme, view),
        Screen::SafeToUnplug => system::safe_to_unplug(target, &theme, view),
    }
}

/// Position of a status screen in the ring, for the header's page dots.
fn ring_dots(view: &View, screen: Screen) -> Option<(usize, usize)> {
    let alerts = !view.status.alerts().is_empty();
    let pages = if view.has_keys || alerts { 5 } else { 4 };
    let page = match screen {
        Screen::Boot | Screen::Home => 0,
        Screen::Lightning => 1,
        Screen::Backup => 2,
        Screen::ThisBox => 3,
        Screen::Alerts { .. } => 4,
        _ => return None,
    };
    Some((page, pages.max(page + 1)))
}
