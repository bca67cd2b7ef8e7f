//! The backup screen: whether the channel state is on the stick, and what to do if not.

use super::{ring_dots, View};
use crate::display::ui::Screen;
use crate::display::widgets::{self, icons, Theme};
use crate::status::BackupState;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

/// Headline, icon and explanation of the backup state.
fn backup_words(view: &View) -> (&'static str, &'static [&'static str; 12], String) {
    let b = &view.status.backup;
    match &b.state {
        BackupState::Disabled => (
            "Backups off",
            &icons::STICK,
            "Backups start once the node has its seed. Finish setup on the web page.".into(),
        ),
        BackupState::NoStick => (
            "Insert stick",
            &icons::WARNING,
            "Channel state is only on the SD card. Insert a USB stick to back it up.".into(),
        ),
        BackupState::NeedsConfirmation { stick, reason } => (
            "Confirm stick",
            &icons::STICK,
            format!(
                "Found {stick}: {reason} {}",
                if view.has_keys {
                    "KEY2 prepares it (or confirm on the web page)."
                } else {
                    "Confirm on the web page."
                }
            ),
        ),
        BackupState::Writing => (
            "Writing...",
            &icons::STICK,
            "Writing the channel backup. Do not remove the stick.".into(),
        ),
        BackupState::Mirroring => (
            "Backup OK",
            &icons::CHECK,
            "Every channel update is written to the stick before it counts. Keep it attached."
                .into(),
        ),
        BackupState::SafeToRemove => (
            "Safe to remove",
            &icons::CHECK,
            "Backup written and verified. You can remove the stick now.".into(),
        ),
        BackupState::Failed { message } => (
            "Backup failed",
            &icons::CROSS,
            format!("{message} Channel state is only on the SD card: replace the stick."),
        ),
    }
}

pub(super) fn backup<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let status = view.status;
    let b = &status.backup;
    widgets::header(t, th, "Backup", ring_dots(view, Screen::Backup));
    let m = th.margin;
    let (headline, icon, message) = backup_words(view);
    let scale = if th.large { 2 } else { 1 };
    let mut y = th.header_h + if th.large { 6 } else { 3 };
    widgets::icon(t, icon, m, y, scale);
    let x = m + 12 * scale as i32 + 6;
    widgets::left(t, headline, x, y, th.headline);
    if th.large {
        let mode = match b.mode.as_str() {
            "keep-attached" => "Mirror: stick stays in",
            "snapshot" => "Snapshots: plug in to save",
            _ => "",
        };
        widgets::left(
            t,
            mode,
            x,
            y + th.headline.character_size.height as i32 + 1,
            th.small,
        );
        y += 24 + 10;
    } else {
        y += th.headline.character_size.height as i32 + 3;
    }

    // Facts at the bottom: last success, generation, stick.
    let mut facts = Vec::new();
    if let Some(last) = b.last_success {
        let mut s = format!(
            "Last backup {}",
            widgets::local_time(last, view.now, view.utc_offset_secs)
        );
        if let Some(generation) = b.generation {
            s.push_str(&format!(", gen {generation}"));
        }
        facts.push(s);
    }
    if let Some(stick) = &b.stick_id {
        facts.push(format!("Stick: {stick}"));
    }
    let facts_top = th.height - facts.len() as i32 * th.small_line - 2;
    let width = th.chars_across(th.body, th.inner_width());
    let room = ((facts_top - 4 - y) / th.line).max(1) as usize;
    for line in widgets::wrap(&message, width, room) {
        widgets::left(t, &line, m, y, th.body);
        y += th.line;
    }
    if !facts.is_empty() {
        widgets::rule(t, th, facts_top - 3);
        let width = th.chars_across(th.small, th.inner_width());
        for (i, fact) in facts.iter().enumerate() {
            widgets::left(
                t,
                &widgets::ellipsize(fact, width),
                m,
                facts_top + i as i32 * th.small_line,
                th.small,
            );
        }
    }
}
