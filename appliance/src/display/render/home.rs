//! The boot screen and Home: at a glance, whether the chain is synced, how much Lightning
//! can spend, whether the channel state is backed up, and where the page is.

use super::words::{ip_address, web_name};
use super::{ring_dots, View, VERSION};
use crate::display::ui::Screen;
use crate::display::widgets::{self, icons, Theme, INK, PAPER};
use crate::status::{BackupState, BitcoindState, LightningState, Phase, Status};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Alignment;

fn sync_line(status: &Status) -> String {
    let chain = status.bitcoind.chain.as_ref();
    match &status.bitcoind.state {
        BitcoindState::NotStarted => "bitcoind not started yet".into(),
        BitcoindState::Starting { message } => format!("Starting: {message}"),
        BitcoindState::Syncing => match chain {
            Some(c) if c.headers > c.blocks => {
                format!(
                    "Syncing, {} blocks left",
                    widgets::group_digits(c.headers - c.blocks)
                )
            }
            _ => "Syncing".into(),
        },
        BitcoindState::Ready => match chain {
            Some(c) => format!(
                "Synced, {} peer{}",
                c.connections,
                if c.connections == 1 { "" } else { "s" }
            ),
            None => "Synced".into(),
        },
        BitcoindState::Restarting { retry_in_secs, .. } => {
            format!("bitcoind restarts in {retry_in_secs} s")
        }
        BitcoindState::CrashLoop { .. } => "bitcoind keeps crashing".into(),
        BitcoindState::InsufficientDisk { .. } => "Disk too small for bitcoind".into(),
        BitcoindState::Failed { .. } => "bitcoind failed".into(),
        BitcoindState::Stopping => "bitcoind stopping".into(),
        BitcoindState::Stopped => "bitcoind stopped".into(),
    }
}

fn sync_percent(status: &Status) -> Option<u8> {
    let chain = status.bitcoind.chain.as_ref()?;
    if status.bitcoind.state == BitcoindState::Ready && !chain.initial_block_download {
        return Some(100);
    }
    Some(chain.progress_percent())
}

fn lightning_line(status: &Status) -> String {
    let ln = &status.lightning;
    match &ln.state {
        LightningState::Disabled => "Lightning off".into(),
        LightningState::Waiting { .. } => "Lightning waiting".into(),
        LightningState::Starting => "Lightning starting".into(),
        LightningState::Running => {
            let n = ln.channels.len();
            format!("{n} channel{}", if n == 1 { "" } else { "s" })
        }
        LightningState::Failed { .. } => "Lightning failed".into(),
        LightningState::Stopping => "Lightning stopping".into(),
        LightningState::Stopped => "Lightning stopped".into(),
    }
}

fn backup_line(view: &View) -> String {
    let b = &view.status.backup;
    let when = |t: Option<u64>| {
        t.map(|t| {
            format!(
                " {}",
                widgets::local_time(t, view.now, view.utc_offset_secs)
            )
        })
        .unwrap_or_default()
    };
    match &b.state {
        BackupState::Disabled => "Backup off".into(),
        BackupState::NoStick => "No backup stick".into(),
        BackupState::NeedsConfirmation { .. } => "Stick found: confirm".into(),
        BackupState::Writing => "Backup writing...".into(),
        BackupState::Mirroring => format!("Backup OK{}", when(b.last_success)),
        BackupState::SafeToRemove => format!("Backup OK{}, remove", when(b.last_success)),
        BackupState::Failed { .. } => "Backup FAILED".into(),
    }
}

pub(super) fn boot<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let cx = th.width / 2;
    let big = th.big;
    let top = if th.large { 24 } else { 10 };
    widgets::centre(t, "plugnode", cx, top, big);
    let y = top + big.character_size.height as i32 + 2;
    widgets::centre(t, &format!("version {VERSION}"), cx, y, th.small);
    let y = y + th.small_line + if th.large { 14 } else { 6 };
    let phase = match view.status.phase {
        Phase::Booting => "Starting...",
        Phase::Running => "Running",
        Phase::Diagnostic => "Cannot start",
        Phase::ShuttingDown => "Shutting down...",
        Phase::Stopped => "Stopped",
    };
    widgets::centre(t, phase, cx, y, th.headline);
    let y = y + th.headline.character_size.height as i32 + 4;
    let width = th.chars_across(th.body, th.inner_width());
    let line = match &view.status.bitcoind.state {
        BitcoindState::NotStarted => "Preparing bitcoind".to_string(),
        BitcoindState::Starting { message } => format!("bitcoind: {message}"),
        _ => sync_line(view.status),
    };
    for (i, line) in widgets::wrap(&line, width, 2).iter().enumerate() {
        widgets::centre(t, line, cx, y + i as i32 * th.line, th.body);
    }
    let address = match &view.status.system.web_url {
        Some(url) => url.clone(),
        None => format!("http://{}", web_name(view.status)),
    };
    let y = th.height - th.small_line - 3;
    widgets::rule(t, th, y - 4);
    widgets::centre(
        t,
        &widgets::ellipsize(&address, th.chars_across(th.small, th.inner_width())),
        cx,
        y,
        th.small,
    );
}

/// Instead of the Lightning and backup rows while the box is unclaimed: where to go and
/// the code to type there.
fn setup_rows<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
    code: &str,
    top: i32,
    bottom: i32,
) {
    let cx = th.width / 2;
    let big_h = th.headline.character_size.height as i32;
    let block = th.line + 2 + big_h;
    let y = top + ((bottom - 3 - top - block) / 2).max(0);
    let width = th.chars_across(th.body, th.inner_width());
    let invite = format!("Set up at {}", web_name(view.status));
    widgets::centre(t, &widgets::ellipsize(&invite, width), cx, y, th.body);
    let spaced = widgets::code_in_fours(code);
    widgets::centre(
        t,
        &format!("code {spaced}"),
        cx,
        y + th.line + 2,
        th.headline,
    );
}

/// "2 apps paired" (and a shorter form for a crowded header), or nothing.
fn paired_apps(status: &Status) -> Vec<String> {
    match status.pairing.active_connections {
        0 => Vec::new(),
        1 => vec!["1 app paired".into(), "1 app".into()],
        n => vec![format!("{n} apps paired"), format!("{n} apps")],
    }
}

pub(super) fn home<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let status = view.status;
    // The paired apps go in the header: the rows below are full on the small panel.
    let note = paired_apps(status);
    let note: Vec<&str> = note.iter().map(String::as_str).collect();
    widgets::header_with_note(t, th, "plugnode", ring_dots(view, Screen::Home), &note);
    let m = th.margin;
    let right = th.width - m;
    let chain = status.bitcoind.chain.as_ref();

    // Block height, big, with the network and peers beside it.
    let (icon_scale, top) = if th.large {
        (2, th.header_h + 5)
    } else {
        (1, th.header_h + 4)
    };
    let big_h = th.big.character_size.height as i32;
    let icon_y = top + (big_h - 12 * icon_scale) / 2 - 1;
    widgets::icon(t, &icons::BLOCKS, m, icon_y, icon_scale as u32);
    let height = chain
        .map(|c| widgets::group_digits(c.blocks))
        .unwrap_or_else(|| "-".into());
    let x_num = m + 12 * icon_scale + if th.large { 8 } else { 5 };
    widgets::left(t, &height, x_num, top, th.big);
    let network = match status.bitcoind.network.as_str() {
        "" => String::new(),
        "main" => "mainnet".into(),
        "test" => "testnet".into(),
        other => other.to_string(),
    };
    widgets::right(t, "block", right, top + 1, th.small);
    widgets::right(t, &network, right, top + 1 + th.small_line, th.small);

    // Sync progress.
    let y = top + big_h + if th.large { 4 } else { 2 };
    let bar_h = if th.large { 11 } else { 8 };
    let pct_w = if th.large { 44 } else { 30 };
    let percent = sync_percent(status);
    widgets::progress_bar(
        t,
        m,
        y,
        (th.inner_width() - pct_w) as u32,
        bar_h,
        percent.unwrap_or(0) as f64,
    );
    let pct = percent
        .map(|p| format!("{p}%"))
        .unwrap_or_else(|| "-".into());
    let pct_font = if th.large { th.body } else { th.small };
    widgets::right(
        t,
        &pct,
        right,
        y + (bar_h as i32 - pct_font.character_size.height as i32) / 2,
        pct_font,
    );
    let y = y + bar_h as i32 + 3;
    let width = th.chars_across(th.small, th.inner_width());
    widgets::left(
        t,
        &widgets::ellipsize(&sync_line(status), width),
        m,
        y,
        th.small,
    );

    let rows_top = y + th.small_line;

    // Address at the bottom (above the alert banner when something needs attention).
    let alerts = status.alerts();
    let banner_h = if alerts.is_empty() {
        0
    } else if th.large {
        19
    } else {
        13
    };
    let addr_y = th.height - banner_h - th.line - if th.large { 2 } else { 0 };

    let text_x = m + 17;
    let icon_dy = (th.body.character_size.height as i32 - 12) / 2;
    if let Some(code) = view.setup_code {
        setup_rows(t, th, view, code, rows_top, addr_y);
    } else {
        // Lightning and backup rows, spread evenly between sync line and address.
        let free = (addr_y - 3 - rows_top - 2 * th.line).max(0);
        let gap = free / 3;
        let y = rows_top + gap;
        widgets::icon(t, &icons::BOLT, m, y + icon_dy, 1);
        widgets::left(t, &lightning_line(status), text_x, y, th.body);
        if status.lightning.state == LightningState::Running {
            widgets::right(
                t,
                &widgets::sats(status.lightning.balances.lightning_spendable_sat),
                right,
                y,
                th.body,
            );
        }
        let y = y + th.line + gap;
        widgets::icon(t, &icons::STICK, m, y + icon_dy, 1);
        let width = th.chars_across(th.body, th.inner_width() - 17);
        widgets::left(
            t,
            &widgets::ellipsize(&backup_line(view), width),
            text_x,
            y,
            th.body,
        );
    }

    widgets::rule(t, th, addr_y - 3);
    widgets::icon(t, &icons::HOUSE, m, addr_y + icon_dy, 1);
    widgets::left(t, &web_name(status), text_x, addr_y, th.body);
    let ip = ip_address(status).unwrap_or("no network");
    widgets::right(t, ip, right, addr_y, th.body);
    if !alerts.is_empty() {
        let y = th.height - banner_h;
        widgets::fill(t, 0, y, th.width as u32, banner_h as u32, INK);
        let n = alerts.len();
        let mut text = format!(
            "! {}",
            if n == 1 {
                alerts[0].title.clone()
            } else {
                format!("{n} alerts")
            }
        );
        if view.has_keys {
            text.push_str(" - KEY2");
        }
        let font = if th.large { th.headline } else { th.small };
        let width = th.chars_across(font, th.inner_width());
        let ty = y + (banner_h - font.character_size.height as i32) / 2;
        widgets::text(
            t,
            &widgets::ellipsize(&text, width),
            m,
            ty,
            font,
            PAPER,
            Alignment::Left,
        );
    }
}
