//! The alerts screen: one alert a page, or "No alerts".

use super::{ring_dots, View};
use crate::display::ui::Screen;
use crate::display::widgets::{self, icons, Theme};
use crate::status::{Alert, Severity};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

pub(super) fn alerts<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
    index: usize,
) {
    let list = view.status.alerts();
    let m = th.margin;
    if list.is_empty() {
        widgets::header(t, th, "Alerts", ring_dots(view, Screen::Alerts { index }));
        let scale = if th.large { 2 } else { 1 };
        let y = th.header_h + if th.large { 10 } else { 6 };
        widgets::icon(t, &icons::CHECK, m, y, scale);
        let x = m + 12 * scale as i32 + 6;
        widgets::left(t, "No alerts", x, y, th.headline);
        widgets::left(
            t,
            "Everything works.",
            m,
            y + 12 * scale as i32 + 8,
            th.body,
        );
        return;
    }
    let index = index.min(list.len() - 1);
    let alert: &Alert = &list[index];
    let title = if list.len() > 1 {
        format!("Alert {}/{}", index + 1, list.len())
    } else {
        "Alert".to_string()
    };
    widgets::header(t, th, &title, ring_dots(view, Screen::Alerts { index }));
    let scale = if th.large { 2 } else { 1 };
    let mut y = th.header_h + if th.large { 5 } else { 3 };
    let icon = match alert.severity {
        Severity::Critical => &icons::CROSS,
        Severity::Warning => &icons::WARNING,
        Severity::Notice => &icons::CHECK,
    };
    widgets::icon(t, icon, m, y, scale);
    let x = m + 12 * scale as i32 + 6;
    let width = th.chars_across(th.headline, th.width - x - m);
    let title_lines = widgets::wrap(&alert.title, width, 2);
    let head_h = th.headline.character_size.height as i32;
    for (i, line) in title_lines.iter().enumerate() {
        widgets::left(t, line, x, y + i as i32 * (head_h + 1), th.headline);
    }
    y += (12 * scale as i32).max(title_lines.len() as i32 * (head_h + 1)) + 4;
    let hints = view.has_keys;
    let bottom = if hints {
        th.height - th.small.character_size.height as i32 - 7
    } else {
        th.height - 1
    };
    let font = th.small;
    let width = th.chars_across(font, th.inner_width());
    let room = ((bottom - y) / th.small_line).max(1) as usize;
    for line in widgets::wrap(&alert.message, width, room) {
        widgets::left(t, &line, m, y, font);
        y += th.small_line;
    }
    if hints {
        let next = if index + 1 < list.len() {
            "next"
        } else {
            "home"
        };
        widgets::key_hints(t, th, &[("KEY1", next), ("KEY2", "ok")]);
    }
}
