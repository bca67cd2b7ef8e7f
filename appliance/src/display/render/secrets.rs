//! The screens that show a secret (pairing code, recovery words, unlock code), and what the
//! web mirror shows instead. They leave the glass on a timeout (see `policy`).

use super::View;
use crate::display::ui::WORDS_PER_PAGE;
use crate::display::widgets::{self, icons, Theme, INK, PAPER};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::Alignment;

pub(super) fn unlock_code<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    widgets::header(t, th, "Unlock code", None);
    let m = th.margin;
    let cx = th.width / 2;
    let code = view.unlock_code.unwrap_or("-");
    let spaced = widgets::code_in_fours(code);
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

pub(super) fn pairing_qr<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme, view: &View) {
    let Some(pairing) = view.pairing else {
        widgets::left(t, "No pairing code", th.margin, th.margin, th.headline);
        return;
    };
    let qr_side = widgets::draw_qr(t, pairing.uri(), th.height as u32);
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

pub(super) fn seed<D: DrawTarget<Color = BinaryColor>>(
    t: &mut D,
    th: &Theme,
    view: &View,
    page: usize,
) {
    let Some(words) = view.seed else {
        widgets::header(t, th, "Recovery words", None);
        return;
    };
    let pages = words.pages();
    let page = page.min(pages.saturating_sub(1));
    let first = page * WORDS_PER_PAGE + 1;
    let last = (first + WORDS_PER_PAGE - 1).min(words.words().len());
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

pub(super) fn redacted<D: DrawTarget<Color = BinaryColor>>(t: &mut D, th: &Theme) {
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
