//! The box itself: how to reach and trust it, and shutting it down safely.

use super::words::{ip_address, web_name};
use super::{ring_dots, View};
use crate::display::ui::Screen;
use crate::display::widgets::{self, icons, Theme};
use crate::status::{BitcoindState, LightningState};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

/// The box's name, where to reach it, and the fingerprint of its certificate authority in
/// four lines of eight bytes, as the trust page shows it: the user compares the two before
/// trusting the box on a phone or computer.
pub(super) fn this_box<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let status = view.status;
    widgets::header(t, th, "This box", ring_dots(view, Screen::ThisBox));
    let m = th.margin;
    let right = th.width - m;
    let icon_dy = (th.body.character_size.height as i32 - 12) / 2;
    let mut y = th.header_h + if th.large { 5 } else { 3 };

    // Where to go: the name (and the address for devices without mDNS).
    widgets::icon(t, &icons::HOUSE, m, y + icon_dy, 1);
    let name = web_name(status);
    let ip = ip_address(status).unwrap_or("no network");
    let room = th.chars_across(th.body, th.inner_width() - 17);
    if name.len() + ip.len() + 2 <= room {
        widgets::left(t, &name, m + 17, y, th.body);
        widgets::right(t, ip, right, y, th.body);
    } else {
        // A long host name gets a line of its own, in the small font if it needs it.
        let font = if name.len() <= room {
            th.body
        } else {
            th.small
        };
        let width = th.chars_across(font, th.inner_width() - 17);
        widgets::left(t, &widgets::ellipsize(&name, width), m + 17, y, font);
        y += th.line;
        widgets::left(t, ip, m + 17, y, th.body);
    }
    y += th.line + if th.large { 4 } else { 1 };
    widgets::rule(t, th, y - 2);
    y += if th.large { 3 } else { 1 };

    let Some(fingerprint) = status.system.ca_fingerprint.as_deref() else {
        let width = th.chars_across(th.body, th.inner_width());
        for line in widgets::wrap(
            "No HTTPS certificate yet: the web page is starting.",
            width,
            3,
        ) {
            widgets::left(t, &line, m, y, th.body);
            y += th.line;
        }
        return;
    };
    let label = if th.large {
        "Certificate fingerprint (SHA-256):"
    } else {
        "Certificate SHA-256:"
    };
    widgets::left(t, label, m, y, th.small);
    y += th.small_line + if th.large { 2 } else { 0 };
    // Eight bytes a line (23 characters) fit both panels in the body font.
    let bytes: Vec<&str> = fingerprint.split(':').collect();
    for chunk in bytes.chunks(8) {
        widgets::left(
            t,
            &chunk.join(":"),
            m + if th.large { 8 } else { 4 },
            y,
            th.body,
        );
        y += th.line - if th.large { 1 } else { 0 };
    }
    if th.large && y + th.small_line <= th.height {
        widgets::left(t, "Compare it with the web page", m, y + 1, th.small);
    }
}

pub(super) fn shutdown_confirm<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    _view: &View,
) {
    widgets::header(t, th, "Shut down?", None);
    let m = th.margin;
    let scale = if th.large { 2 } else { 1 };
    let y = th.header_h + if th.large { 8 } else { 4 };
    widgets::icon(t, &icons::POWER, m, y, scale);
    let x = m + 12 * scale as i32 + 6;
    widgets::left(
        t,
        "Shut down safely?",
        x,
        y + if th.large { 5 } else { 0 },
        th.headline,
    );
    let mut y = y + 12 * scale as i32 + if th.large { 8 } else { 4 };
    let width = th.chars_across(th.body, th.inner_width());
    let text = "plugnode saves the channel state, stops Lightning and bitcoind, then tells you \
                when to unplug.";
    for line in widgets::wrap(text, width, 4) {
        widgets::left(t, &line, m, y, th.body);
        y += th.line;
    }
    widgets::key_hints(t, th, &[("KEY2", "shut down"), ("KEY3", "cancel")]);
}

pub(super) fn shutting_down<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
) {
    widgets::header(t, th, "Shutting down", None);
    let m = th.margin;
    let scale = if th.large { 2 } else { 1 };
    let y = th.header_h + if th.large { 8 } else { 4 };
    widgets::icon(t, &icons::POWER, m, y, scale);
    let x = m + 12 * scale as i32 + 6;
    widgets::left(
        t,
        "Do not unplug yet",
        x,
        y + if th.large { 5 } else { 0 },
        th.headline,
    );
    let mut y = y + 12 * scale as i32 + if th.large { 10 } else { 4 };
    let width = th.chars_across(th.body, th.inner_width());
    for line in widgets::wrap(
        "Saving the channel state and stopping. This takes up to a few minutes.",
        width,
        3,
    ) {
        widgets::left(t, &line, m, y, th.body);
        y += th.line;
    }
    y += 4;
    let ln = match view.status.lightning.state {
        LightningState::Stopped | LightningState::Disabled => "stopped",
        _ => "stopping...",
    };
    let btc = match view.status.bitcoind.state {
        BitcoindState::Stopped | BitcoindState::NotStarted => "stopped",
        _ => "stopping...",
    };
    for (name, state) in [("Lightning", ln), ("bitcoind", btc)] {
        if y + th.small_line > th.height {
            break;
        }
        widgets::left(t, name, m, y, th.small);
        widgets::left(t, state, m + 11 * widgets::advance(th.small), y, th.small);
        y += th.small_line;
    }
}

pub(super) fn safe_to_unplug<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
) {
    let cx = th.width / 2;
    let scale = if th.large { 3 } else { 2 };
    let icon_side = 12 * scale as i32;
    let top = if th.large { 20 } else { 8 };
    widgets::icon(t, &icons::CHECK, cx - icon_side / 2, top, scale);
    let y = top + icon_side + if th.large { 10 } else { 6 };
    widgets::centre(t, "Safe to unplug", cx, y, th.big);
    let y = y + th.big.character_size.height as i32 + if th.large { 8 } else { 4 };
    widgets::centre(t, "plugnode stopped cleanly", cx, y, th.body);
    let y = y + th.line;
    let when = format!(
        "at {}",
        widgets::local_time(view.now, view.now, view.utc_offset_secs)
    );
    widgets::centre(t, &when, cx, y, th.small);
}
