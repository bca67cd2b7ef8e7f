//! The Lightning screen: what the node can send and receive, and one bar per channel.

use super::{ring_dots, View};
use crate::display::ui::Screen;
use crate::display::widgets::{self, icons, Theme};
use crate::status::{LightningState, Status};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;

fn lightning_detail(status: &Status) -> String {
    let ln = &status.lightning;
    match &ln.state {
        LightningState::Disabled => "Off. Finish setup on the web page.".into(),
        LightningState::Waiting { reason } => format!("Waiting: {reason}"),
        LightningState::Starting => "Starting".into(),
        LightningState::Running => format!(
            "Running, {} peer{}",
            ln.peers,
            if ln.peers == 1 { "" } else { "s" }
        ),
        LightningState::Failed { message } => format!("Failed: {message}"),
        LightningState::Stopping => "Stopping".into(),
        LightningState::Stopped => "Stopped".into(),
    }
}

/// "1.2M", "500k", "950" for channel sizes.
fn compact_sats(n: u64) -> String {
    if n >= 1_000_000 {
        let m = n as f64 / 1_000_000.0;
        if m >= 10.0 || (m - m.round()).abs() < 0.05 {
            format!("{:.0}M", m)
        } else {
            format!("{:.1}M", m)
        }
    } else if n >= 1_000 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub(super) fn lightning<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let status = view.status;
    let ln = &status.lightning;
    widgets::header(t, th, "Lightning", ring_dots(view, Screen::Lightning));
    let m = th.margin;
    let right = th.width - m;
    let mut y = th.header_h + if th.large { 5 } else { 3 };
    let icon_dy = (th.body.character_size.height as i32 - 12) / 2;
    widgets::icon(t, &icons::BOLT, m, y + icon_dy, 1);
    let width = th.chars_across(th.body, th.inner_width() - 17);
    let state_lines = widgets::wrap(&lightning_detail(status), width, 2);
    for line in &state_lines {
        widgets::left(t, line, m + 17, y, th.body);
        y += th.line;
    }
    y += if th.large { 3 } else { 1 };

    let mut rows = vec![
        ("Can send", ln.balances.lightning_spendable_sat),
        ("Can receive", ln.balances.lightning_receivable_sat),
        ("On-chain", ln.balances.onchain_sat),
    ];
    if ln.balances.pending_sat > 0 {
        rows.push(("Pending", ln.balances.pending_sat));
    }
    let label_font = th.body;
    for (i, (label, amount)) in rows.iter().enumerate() {
        let font = if i == 0 { th.headline } else { th.body };
        widgets::left(t, label, m, y, label_font);
        widgets::right(t, &widgets::sats(*amount), right, y, font);
        y += th.line;
    }

    // Channels: count, then one bar per channel (our side filled) while there is room.
    y += 2;
    widgets::rule(t, th, y);
    y += 4;
    let usable = ln.channels.iter().filter(|c| c.usable).count();
    let summary = match ln.channels.len() {
        0 => "No channels yet".to_string(),
        n => format!(
            "{n} channel{}, {usable} usable",
            if n == 1 { "" } else { "s" }
        ),
    };
    widgets::left(t, &summary, m, y, th.small);
    y += th.small_line + 2;
    let bar_h: u32 = if th.large { 9 } else { 7 };
    let label_w = 9 * widgets::advance(th.small);
    for channel in &ln.channels {
        if y + bar_h as i32 > th.height - 2 {
            break;
        }
        let pct = if channel.capacity_sat == 0 {
            0.0
        } else {
            channel.outbound_sat as f64 * 100.0 / channel.capacity_sat as f64
        };
        let bar_w = (th.inner_width() - label_w - 4) as u32;
        widgets::progress_bar(t, m, y, bar_w, bar_h, pct);
        let cap = compact_sats(channel.capacity_sat);
        let label = if channel.usable {
            cap
        } else {
            format!("{cap} wait")
        };
        widgets::right(
            t,
            &label,
            right,
            y + bar_h as i32 / 2 - th.small.character_size.height as i32 / 2,
            th.small,
        );
        y += bar_h as i32 + 3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_channel_sizes() {
        assert_eq!(compact_sats(1_000_000), "1M");
        assert_eq!(compact_sats(1_500_000), "1.5M");
        assert_eq!(compact_sats(16_777_215), "17M");
        assert_eq!(compact_sats(500_000), "500k");
        assert_eq!(compact_sats(999), "999");
    }
}
