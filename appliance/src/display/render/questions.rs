//! The questions only a key on the box answers: may this app pair, may this money leave,
//! may this update be installed.

use super::View;
use crate::display::widgets::{self, icons, Theme};
use crate::display::Question;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

pub(super) fn pairing_confirm<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
) {
    widgets::header(t, th, "Allow this app?", None);
    let m = th.margin;
    let scale = if th.large { 2 } else { 1 };
    let icon_h = 12 * scale as i32;
    let top = th.header_h + if th.large { 6 } else { 3 };
    widgets::icon(t, &icons::LOCK, m, top, scale);
    let (app, permissions, budget) = match view.question {
        Some(Question::Pairing(q)) => (q.app.as_str(), q.permissions.as_str(), q.budget.as_str()),
        _ => ("A wallet app", "-", "-"),
    };
    // The name on one line: enough to recognise the app, never pushing the rest off.
    let x = m + icon_h + 6;
    let head_h = th.headline.character_size.height as i32;
    let name = widgets::ellipsize(app, th.chars_across(th.headline, th.width - x - m));
    widgets::left(t, &name, x, top + (icon_h - head_h).max(0) / 2, th.headline);

    // "May" and "Budget" rows, values wrapped beside their labels.
    let hints_top = th.height - th.small.character_size.height as i32 - 3;
    let bottom = hints_top - 4;
    let label_w = 8 * widgets::advance(th.small);
    let value_x = m + label_w;
    let width = th.chars_across(th.body, th.width - value_x - m);
    let label_dy = (th.body.character_size.height - th.small.character_size.height) as i32 - 1;
    let mut y = top + icon_h.max(head_h) + if th.large { 6 } else { 3 };
    for (label, value, max_lines) in [("May", permissions, 2), ("Budget", budget, 3)] {
        let room = ((bottom - y) / th.line).clamp(1, max_lines) as usize;
        widgets::left(t, label, m, y + label_dy, th.small);
        for line in widgets::wrap_phrases(value, width, room) {
            widgets::left(t, &line, value_x, y, th.body);
            y += th.line;
        }
    }

    warning(
        t,
        th,
        "Allow only if you are pairing this app now.",
        y + 2,
        bottom,
    );
    widgets::key_hints(t, th, &[("KEY2", "allow"), ("KEY3", "refuse")]);
}

pub(super) fn withdrawal_confirm<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
) {
    widgets::header(t, th, "Send on-chain?", None);
    let m = th.margin;
    let (amount, address) = match view.question {
        Some(Question::Withdrawal(q)) => (q.amount.as_str(), q.address.as_str()),
        _ => ("-", "-"),
    };
    let mut y = th.header_h + if th.large { 6 } else { 3 };
    let width = th.chars_across(th.headline, th.inner_width());
    widgets::left(t, &widgets::ellipsize(amount, width), m, y, th.headline);
    y += th.headline.character_size.height as i32 + if th.large { 6 } else { 3 };

    // The address in groups of four, as wallets show it for checking, beside "To".
    let hints_top = th.height - th.small.character_size.height as i32 - 3;
    let bottom = hints_top - 4;
    let label_w = 4 * widgets::advance(th.small);
    let value_x = m + label_w;
    let width = th.chars_across(th.body, th.width - value_x - m);
    let grouped: Vec<String> = address
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    let label_dy = (th.body.character_size.height - th.small.character_size.height) as i32 - 1;
    widgets::left(t, "To", m, y + label_dy, th.small);
    let room = ((bottom - y) / th.line).clamp(1, 4) as usize;
    for line in widgets::wrap(&grouped.join(" "), width, room) {
        widgets::left(t, &line, value_x, y, th.body);
        y += th.line;
    }

    warning(
        t,
        th,
        "Send only if this is the address you chose.",
        y + 2,
        bottom,
    );
    widgets::key_hints(t, th, &[("KEY2", "send"), ("KEY3", "refuse")]);
}

/// "Install update?": the version to install and the one it replaces; KEY2 installs.
pub(super) fn update_confirm<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
) {
    widgets::header(t, th, "Install update?", None);
    let m = th.margin;
    let (version, running) = match view.question {
        Some(Question::Update(q)) => (q.version.as_str(), q.running.as_str()),
        _ => ("-", "-"),
    };
    let mut y = th.header_h + if th.large { 6 } else { 3 };
    let width = th.chars_across(th.headline, th.inner_width());
    widgets::left(
        t,
        &widgets::ellipsize(&format!("Version {version}"), width),
        m,
        y,
        th.headline,
    );
    y += th.headline.character_size.height as i32 + if th.large { 6 } else { 3 };
    let width = th.chars_across(th.body, th.inner_width());
    widgets::left(
        t,
        &widgets::ellipsize(&format!("Now: {running}"), width),
        m,
        y,
        th.body,
    );
    y += th.line;
    let hints_top = th.height - th.small.character_size.height as i32 - 3;
    warning(
        t,
        th,
        "The box restarts by itself and goes back if the new version fails.",
        y + 2,
        hints_top - 4,
    );
    widgets::key_hints(t, th, &[("KEY2", "install"), ("KEY3", "refuse")]);
}

/// The warning under a question, only where it fits whole between `top` and `bottom`: a
/// cut warning reads worse than none.
fn warning<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    text: &str,
    top: i32,
    bottom: i32,
) {
    let room = ((bottom - top) / th.small_line).max(0) as usize;
    let width = th.chars_across(th.small, th.inner_width());
    let lines = widgets::wrap(text, width, 9);
    if lines.len() <= room {
        for (i, line) in lines.iter().enumerate() {
            widgets::left(t, line, th.margin, top + i as i32 * th.small_line, th.small);
        }
    }
}
