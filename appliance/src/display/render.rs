//! The screens: pure functions from the status and the display-local state to pixels on
//! any `embedded-graphics` target. Two layouts: the 2.7" panel (264×176) and the 2.13"
//! (250×122); see [`Theme`].

use super::ui::{PairingCode, PairingQuestion, Screen, SeedWords, WithdrawalQuestion};
use super::widgets::{self, icons, Theme, INK, PAPER};
use crate::qr;
use crate::status::{
    Alert, BackupState, BitcoindState, LightningState, Phase, Severity, Status, UnixTime,
};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Alignment;

/// Everything a screen may show.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub screen: Screen,
    pub status: &'a Status,
    /// The pairing question on [`Screen::PairingConfirm`].
    pub question: Option<&'a PairingQuestion>,
    /// The withdrawal question on [`Screen::WithdrawalConfirm`].
    pub withdrawal: Option<&'a WithdrawalQuestion>,
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
            withdrawal: None,
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
        return redacted(target, &theme);
    }
    match view.screen {
        Screen::Boot => boot(target, &theme, view),
        Screen::Home => home(target, &theme, view),
        Screen::Lightning => lightning(target, &theme, view),
        Screen::Backup => backup(target, &theme, view),
        Screen::ThisBox => this_box(target, &theme, view),
        Screen::Alerts { index } => alerts(target, &theme, view, index),
        Screen::PairingConfirm => pairing_confirm(target, &theme, view),
        Screen::WithdrawalConfirm => withdrawal_confirm(target, &theme, view),
        Screen::UnlockCode => unlock_code(target, &theme, view),
        Screen::PairingQr => pairing_qr(target, &theme, view),
        Screen::Seed { page } => seed(target, &theme, view, page),
        Screen::ShutdownConfirm => shutdown_confirm(target, &theme, view),
        Screen::ShuttingDown => shutting_down(target, &theme, view),
        Screen::SafeToUnplug => safe_to_unplug(target, &theme, view),
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

// ---------------------------------------------------------------------------------------
// Words for states

fn web_name(status: &Status) -> String {
    let host = status.system.hostname.trim();
    if host.is_empty() {
        "plugnode.local".to_string()
    } else if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.local")
    }
}

fn ip_address(status: &Status) -> Option<&str> {
    let ips = &status.system.ip_addresses;
    ips.iter()
        .find(|ip| ip.contains('.') && !ip.starts_with("127."))
        .or_else(|| ips.iter().find(|ip| *ip != "::1"))
        .map(String::as_str)
}

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

// ---------------------------------------------------------------------------------------
// Screens

fn boot<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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
    // Grouped in fours so it is easy to read out and type.
    let spaced = if code.len() == 8 {
        format!("{} {}", &code[..4], &code[4..])
    } else {
        code.to_string()
    };
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

fn home<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

fn lightning<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

fn backup<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

/// The box's name, where to reach it, and the fingerprint of its certificate authority in
/// four lines of eight bytes, as the trust page shows it: the user compares the two before
/// trusting the box on a phone or computer.
fn this_box<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

fn alerts<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View, index: usize) {
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

fn pairing_confirm<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    widgets::header(t, th, "Allow this app?", None);
    let m = th.margin;
    let scale = if th.large { 2 } else { 1 };
    let icon_h = 12 * scale as i32;
    let top = th.header_h + if th.large { 6 } else { 3 };
    widgets::icon(t, &icons::LOCK, m, top, scale);
    let (app, permissions, budget) = match view.question {
        Some(q) => (q.app.as_str(), q.permissions.as_str(), q.budget.as_str()),
        None => ("A wallet app", "-", "-"),
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

    // The warning, only where it fits whole: a cut warning reads worse than none.
    y += 2;
    let room = ((bottom - y) / th.small_line).max(0) as usize;
    let width = th.chars_across(th.small, th.inner_width());
    let warning = widgets::wrap("Allow only if you are pairing this app now.", width, 9);
    if warning.len() <= room {
        for line in warning {
            widgets::left(t, &line, m, y, th.small);
            y += th.small_line;
        }
    }
    widgets::key_hints(t, th, &[("KEY2", "allow"), ("KEY3", "refuse")]);
}

fn withdrawal_confirm<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    widgets::header(t, th, "Send on-chain?", None);
    let m = th.margin;
    let (amount, address) = match view.withdrawal {
        Some(q) => (q.amount.as_str(), q.address.as_str()),
        None => ("-", "-"),
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

    y += 2;
    let room = ((bottom - y) / th.small_line).max(0) as usize;
    let width = th.chars_across(th.small, th.inner_width());
    let warning = widgets::wrap("Send only if this is the address you chose.", width, 9);
    if warning.len() <= room {
        for line in warning {
            widgets::left(t, &line, m, y, th.small);
            y += th.small_line;
        }
    }
    widgets::key_hints(t, th, &[("KEY2", "send"), ("KEY3", "refuse")]);
}

fn unlock_code<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    widgets::header(t, th, "Unlock code", None);
    let m = th.margin;
    let cx = th.width / 2;
    let code = view.unlock_code.unwrap_or("-");
    // Grouped in fours so it is easy to read out and type.
    let spaced = if code.len() == 8 {
        format!("{} {}", &code[..4], &code[4..])
    } else {
        code.to_string()
    };
    let mut y = th.header_h + if th.large { 14 } else { 6 };
    widgets::centre(t, &spaced, cx, y, th.headline);
    y += th.headline.character_size.height as i32 + if th.large { 12 } else { 5 };
    let text = "Type it with your password on the web page to log in. Did not ask for one? KEY3 closes it.";
    let text = if view.has_keys {
        text
    } else {
        "Type it with your password on the web page to log in."
    };
    let width = th.chars_across(th.body, th.inner_width());
    for line in widgets::wrap(text, width, 3) {
        widgets::left(t, &line, m, y, th.body);
        y += th.line;
    }
    if view.has_keys {
        widgets::key_hints(t, th, &[("KEY3", "close")]);
    }
}

fn pairing_qr<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let Some(pairing) = view.pairing else {
        widgets::left(t, "No pairing code", th.margin, th.margin, th.headline);
        return;
    };
    let qr_side = draw_qr(t, pairing.uri(), th.height as u32);
    let Some(side) = qr_side else {
        widgets::left(
            t,
            "Pairing code too long",
            th.margin,
            th.margin,
            th.headline,
        );
        widgets::left(
            t,
            "Use the web page.",
            th.margin,
            th.margin + th.line,
            th.body,
        );
        return;
    };
    // The text column right of the code.
    let x = side as i32 + 2;
    let w = th.width - x - th.margin;
    let mut y = th.margin + 2;
    // The big font only when no word of the label has to be cut ("BlueWallet (LNDHub)"
    // is wider than the column on both panels).
    let head_w = th.chars_across(th.headline, w);
    let label_font = if pairing
        .label
        .split_whitespace()
        .all(|word| word.chars().count() <= head_w)
    {
        th.headline
    } else {
        th.body
    };
    let label_w = th.chars_across(label_font, w);
    for line in widgets::wrap(&pairing.label, label_w, 2) {
        widgets::left(t, &line, x, y, label_font);
        y += label_font.character_size.height as i32 + 1;
    }
    y += 4;
    let font = th.small;
    let width = th.chars_across(font, w);
    let text = "Scan with your wallet app. Clears itself after 2 minutes.";
    for line in widgets::wrap(text, width, 6) {
        widgets::left(t, &line, x, y, font);
        y += th.small_line;
    }
    if view.has_keys {
        let h = font.character_size.height as i32 + 3;
        let y = th.height - h - th.margin;
        let label_w = widgets::text_width("KEY2", font) + 4;
        widgets::fill(t, x, y, label_w as u32, (h - 1) as u32, INK);
        widgets::text(t, "KEY2", x + 2, y + 1, font, PAPER, Alignment::Left);
        widgets::left(t, "done", x + label_w + 3, y + 1, font);
    }
}

/// Draws `data` as a QR code in a square at the left of the screen, as large as whole
/// pixels per module allow with a quiet zone of at least two modules. Returns the
/// square's side (including the quiet zone), or `None` when the data does not fit.
pub fn draw_qr<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    data: &str,
    height: u32,
) -> Option<u32> {
    let code = qr::for_screen(data)?;
    let modules = code.width() as u32;
    let scale = height / (modules + 4);
    if scale == 0 {
        return None;
    }
    let side = modules * scale;
    let offset = (height - side) / 2;
    for (x, y) in code.dark_modules() {
        let (x, y) = (x as u32, y as u32);
        widgets::fill(
            t,
            (offset + x * scale) as i32,
            (offset + y * scale) as i32,
            scale,
            scale,
            INK,
        );
    }
    Some(side + 2 * offset)
}

fn seed<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View, page: usize) {
    let Some(words) = view.seed else {
        widgets::header(t, th, "Recovery words", None);
        return;
    };
    let pages = words.pages();
    let page = page.min(pages.saturating_sub(1));
    let first = page * super::ui::WORDS_PER_PAGE + 1;
    let last = (first + super::ui::WORDS_PER_PAGE - 1).min(words.words().len());
    let title = if th.large {
        format!("Words {first}-{last} of {}", words.words().len())
    } else {
        format!("Words {first}-{last}/{}", words.words().len())
    };
    widgets::header(t, th, &title, Some((page, pages)));
    let m = th.margin;
    let col_w = th.inner_width() / 2;
    let (top, row_h) = if th.large {
        (th.header_h + 8, 26)
    } else {
        (th.header_h + 5, 20)
    };
    let word_font = th.headline;
    let num_font = th.small;
    let num_w = 3 * num_font.character_size.width as i32;
    for (i, (n, word)) in words.page(page).enumerate() {
        let col = (i / 3) as i32;
        let row = (i % 3) as i32;
        let x = m + col * col_w;
        let y = top + row * row_h;
        let num_y =
            y + word_font.character_size.height as i32 - num_font.character_size.height as i32;
        widgets::right(t, &format!("{n}."), x + num_w - 2, num_y, num_font);
        widgets::left(t, word, x + num_w + 2, y, word_font);
    }
    let mut y = top + 3 * row_h + if th.large { 0 } else { -2 };
    let text = if th.large {
        "Write them on paper, in order. Never type them into a phone or computer."
    } else {
        "Write them on paper. Never type them into a computer."
    };
    let width = th.chars_across(th.small, th.inner_width());
    for line in widgets::wrap(text, width, 2) {
        widgets::left(t, &line, m, y, th.small);
        y += th.small_line;
    }
    if !view.has_keys && pages > 1 {
        let hint = format!("Page {}/{pages}: turn pages on the web page.", page + 1);
        widgets::left(
            t,
            &widgets::ellipsize(&hint, width),
            m,
            th.height - th.small_line,
            th.small,
        );
    }
    if view.has_keys {
        let mut hints = Vec::new();
        if page + 1 < pages {
            hints.push(("KEY1", "next"));
        }
        if page > 0 {
            hints.push(("KEY3", "back"));
        }
        if page + 1 >= pages {
            hints.push(("KEY2", "done"));
        }
        widgets::key_hints(t, th, &hints);
    }
}

fn shutdown_confirm<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, _view: &View) {
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

fn shutting_down<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

fn safe_to_unplug<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
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

fn redacted<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme) {
    widgets::header(t, th, "On the device", None);
    let m = th.margin;
    let scale = if th.large { 2 } else { 1 };
    let y = th.header_h + if th.large { 10 } else { 5 };
    widgets::icon(t, &icons::LOCK, m, y, scale);
    let x = m + 12 * scale as i32 + 6;
    widgets::left(
        t,
        "Secret on screen",
        x,
        y + if th.large { 5 } else { 0 },
        th.headline,
    );
    let mut y = y + 12 * scale as i32 + 10;
    let width = th.chars_across(th.body, th.inner_width());
    for line in widgets::wrap(
        "Recovery words and pairing codes are shown only on the box itself, never here.",
        width,
        4,
    ) {
        widgets::left(t, &line, m, y, th.body);
        y += th.line;
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

    #[test]
    fn web_name_adds_local() {
        let mut s = Status::default();
        assert_eq!(web_name(&s), "plugnode.local");
        s.system.hostname = "mynode".into();
        assert_eq!(web_name(&s), "mynode.local");
        s.system.ip_addresses = vec!["::1".into(), "fe80::1".into(), "192.168.1.7".into()];
        assert_eq!(ip_address(&s), Some("192.168.1.7"));
    }
}
