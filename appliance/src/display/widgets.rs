//! Drawing helpers shared by the screens: fonts and sizes per panel, text and its wrapping,
//! headers and key hints, icons, bars, QR codes, and the number and time formats people
//! read on a small screen.

use embedded_graphics::mono_font::ascii::{
    FONT_6X10, FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_9X15_BOLD,
};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};

use crate::qr;

/// Ink and paper.
pub const INK: BinaryColor = BinaryColor::On;
pub const PAPER: BinaryColor = BinaryColor::Off;

/// Fonts and spacing for one panel size. The 2.7" (264×176) gets the large set, the
/// 2.13" (250×122) the compact one.
#[derive(Clone, Copy)]
pub struct Theme {
    pub width: i32,
    pub height: i32,
    pub large: bool,
    pub margin: i32,
    pub header_h: i32,
    /// Header titles (bold).
    pub title: &'static MonoFont<'static>,
    /// Headlines inside a screen (bold).
    pub headline: &'static MonoFont<'static>,
    /// Running text.
    pub body: &'static MonoFont<'static>,
    /// Fine print: hints, secondary facts.
    pub small: &'static MonoFont<'static>,
    /// The big figures (block height).
    pub big: &'static MonoFont<'static>,
    /// Distance between body lines.
    pub line: i32,
    pub small_line: i32,
}

impl Theme {
    pub fn for_size(size: Size) -> Theme {
        let large = size.height >= 150;
        if large {
            Theme {
                width: size.width as i32,
                height: size.height as i32,
                large,
                margin: 6,
                header_h: 19,
                title: &FONT_9X15_BOLD,
                headline: &FONT_9X15_BOLD,
                body: &profont::PROFONT_12_POINT,
                small: &profont::PROFONT_10_POINT,
                big: &profont::PROFONT_24_POINT,
                line: 17,
                small_line: 13,
            }
        } else {
            Theme {
                width: size.width as i32,
                height: size.height as i32,
                large,
                margin: 4,
                header_h: 15,
                title: &FONT_7X13_BOLD,
                headline: &FONT_7X13_BOLD,
                body: &profont::PROFONT_10_POINT,
                small: &FONT_6X10,
                big: &profont::PROFONT_18_POINT,
                line: 13,
                small_line: 11,
            }
        }
    }

    /// Characters of `font` that fit between the margins.
    pub fn chars_across(&self, font: &MonoFont, width: i32) -> usize {
        (width / advance(font)).max(1) as usize
    }

    pub fn inner_width(&self) -> i32 {
        self.width - 2 * self.margin
    }
}

/// Horizontal advance of one character.
pub fn advance(font: &MonoFont) -> i32 {
    font.character_size.width as i32 + font.character_spacing as i32
}

/// Width of `s` in pixels.
pub fn text_width(s: &str, font: &MonoFont) -> i32 {
    let n = s.chars().count() as i32;
    if n == 0 {
        0
    } else {
        n * advance(font) - font.character_spacing as i32
    }
}

/// A font's bold twin where there is one (for the compact set's 6-px text).
pub fn bold_small() -> &'static MonoFont<'static> {
    &FONT_6X13_BOLD
}

/// Draws `text` with its top at `y`. `align` picks what `x` means: left edge, centre or
/// right edge.
pub fn text<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    s: &str,
    x: i32,
    y: i32,
    font: &MonoFont,
    color: BinaryColor,
    align: Alignment,
) {
    let style = MonoTextStyle::new(font, color);
    let text_style = TextStyleBuilder::new()
        .baseline(Baseline::Top)
        .alignment(align)
        .build();
    let _ = Text::with_text_style(s, Point::new(x, y), style, text_style).draw(target);
}

/// Left-aligned text.
pub fn left<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    s: &str,
    x: i32,
    y: i32,
    font: &MonoFont,
) {
    text(target, s, x, y, font, INK, Alignment::Left);
}

/// Right-aligned text ending at `x`.
pub fn right<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    s: &str,
    x: i32,
    y: i32,
    font: &MonoFont,
) {
    text(target, s, x, y, font, INK, Alignment::Right);
}

/// Centred text.
pub fn centre<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    s: &str,
    x: i32,
    y: i32,
    font: &MonoFont,
) {
    text(target, s, x, y, font, INK, Alignment::Center);
}

pub fn fill<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    color: BinaryColor,
) {
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(target);
}

pub fn outline<D: DrawTarget<Color = BinaryColor>>(target: &mut D, x: i32, y: i32, w: u32, h: u32) {
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_stroke(INK, 1))
        .draw(target);
}

/// A black title bar with white text, and page dots on the right (`page` of `pages`,
/// hollow dots for the others) when `pages > 1`.
pub fn header<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    theme: &Theme,
    title: &str,
    page: Option<(usize, usize)>,
) {
    header_with_note(target, theme, title, page, &[]);
}

/// [`header`] with a note right-aligned before the page dots, in the regular body font so
/// it does not read as part of the title: the first of `notes` that fits between title
/// and dots (none when none fits).
pub fn header_with_note<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    theme: &Theme,
    title: &str,
    page: Option<(usize, usize)>,
    notes: &[&str],
) {
    fill(target, 0, 0, theme.width as u32, theme.header_h as u32, INK);
    let font = theme.title;
    let ty = (theme.header_h - font.character_size.height as i32) / 2;
    text(
        target,
        title,
        theme.margin,
        ty,
        font,
        PAPER,
        Alignment::Left,
    );
    let mut free_right = theme.width - theme.margin;
    if let Some((page, pages)) = page {
        if pages > 1 {
            let d = if theme.large { 7 } else { 5 };
            let gap = d + 3;
            let y = (theme.header_h - d) / 2;
            let mut x = theme.width - theme.margin - pages as i32 * gap + 3;
            free_right = x - d;
            for i in 0..pages {
                if i == page {
                    fill(target, x, y, d as u32, d as u32, PAPER);
                } else {
                    let _ = Rectangle::new(Point::new(x, y), Size::new(d as u32, d as u32))
                        .into_styled(PrimitiveStyle::with_stroke(PAPER, 1))
                        .draw(target);
                }
                x += gap;
            }
        }
    }
    let note_font = theme.body;
    let free_left = theme.margin + text_width(title, font) + advance(note_font) + 2;
    if let Some(note) = notes
        .iter()
        .find(|n| text_width(n, note_font) <= free_right - free_left)
    {
        let y = (theme.header_h - note_font.character_size.height as i32) / 2;
        text(
            target,
            note,
            free_right,
            y,
            note_font,
            PAPER,
            Alignment::Right,
        );
    }
}

/// A horizontal bar `w` wide, filled to `percent`.
pub fn progress_bar<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    percent: f64,
) {
    outline(target, x, y, w, h);
    let inner = w.saturating_sub(4);
    let filled = ((inner as f64) * percent.clamp(0.0, 100.0) / 100.0).round() as u32;
    if filled > 0 {
        fill(target, x + 2, y + 2, filled, h.saturating_sub(4), INK);
    }
}

/// A 1-px rule across the screen between the margins.
pub fn rule<D: DrawTarget<Color = BinaryColor>>(target: &mut D, theme: &Theme, y: i32) {
    fill(target, theme.margin, y, theme.inner_width() as u32, 1, INK);
}

/// Hints for the keys at the bottom of the screen ("KEY2 show   KEY3 cancel"), drawn
/// only on panels that have keys.
pub fn key_hints<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    theme: &Theme,
    hints: &[(&str, &str)],
) {
    let font = theme.small;
    let h = font.character_size.height as i32 + 3;
    let y = theme.height - h;
    rule(target, theme, y - 2);
    let slot = theme.inner_width() / hints.len().max(1) as i32;
    for (i, (key, what)) in hints.iter().enumerate() {
        let x = theme.margin + i as i32 * slot;
        let label_w = text_width(key, font) + 4;
        fill(target, x, y, label_w as u32, (h - 1) as u32, INK);
        text(target, key, x + 2, y + 1, font, PAPER, Alignment::Left);
        left(target, what, x + label_w + 3, y + 1, font);
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
        fill(
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

/// 12×12 pictures, `#` is ink.
pub mod icons {
    pub const BOLT: [&str; 12] = [
        "......#####.",
        ".....#####..",
        "....#####...",
        "...#####....",
        "..#########.",
        ".#########..",
        ".....####...",
        "....####....",
        "...####.....",
        "..###.......",
        "..##........",
        ".#..........",
    ];
    /// Stacked blocks (the chain).
    pub const BLOCKS: [&str; 12] = [
        "...######...",
        "...#....#...",
        "...#....#...",
        "...#....#...",
        "...######...",
        "............",
        "#####..#####",
        "#...#..#...#",
        "#...#..#...#",
        "#...#..#...#",
        "#####..#####",
        "............",
    ];
    pub const STICK: [&str; 12] = [
        "............",
        "..######....",
        "..#.##.#....",
        "..######....",
        ".########...",
        ".#......#...",
        ".#......#...",
        ".#......#...",
        ".#......#...",
        ".#......#...",
        ".########...",
        "............",
    ];
    pub const WARNING: [&str; 12] = [
        ".....##.....",
        ".....##.....",
        "....####....",
        "....#..#....",
        "...##..##...",
        "...#.##.#...",
        "..##.##.##..",
        "..#..##..#..",
        ".##......##.",
        ".#...##...#.",
        "##........##",
        "############",
    ];
    pub const CHECK: [&str; 12] = [
        "............",
        "..........##",
        ".........###",
        "........###.",
        ".......###..",
        "##....###...",
        "###..###....",
        ".#####......",
        "..####......",
        "...##.......",
        "............",
        "............",
    ];
    pub const CROSS: [&str; 12] = [
        "............",
        ".##......##.",
        ".###....###.",
        "..###..###..",
        "...######...",
        "....####....",
        "....####....",
        "...######...",
        "..###..###..",
        ".###....###.",
        ".##......##.",
        "............",
    ];
    pub const HOUSE: [&str; 12] = [
        ".....##.....",
        "....####....",
        "...##..##...",
        "..##....##..",
        ".##......##.",
        "############",
        ".#........#.",
        ".#..##....#.",
        ".#..##....#.",
        ".#..##....#.",
        ".##########.",
        "............",
    ];
    pub const LOCK: [&str; 12] = [
        "....####....",
        "...#....#...",
        "..#......#..",
        "..#......#..",
        "..#......#..",
        ".##########.",
        ".##########.",
        ".####..####.",
        ".####..####.",
        ".#####.####.",
        ".##########.",
        ".##########.",
    ];
    pub const POWER: [&str; 12] = [
        ".....##.....",
        "..#..##..#..",
        ".##..##..##.",
        "##...##...##",
        "#....##....#",
        "#....##....#",
        "#..........#",
        "#..........#",
        "##........##",
        ".##......##.",
        "..########..",
        "....####....",
    ];
}

/// Draws a 12×12 icon with its top-left at (x, y), each dot `scale` pixels.
pub fn icon<D: DrawTarget<Color = BinaryColor>>(
    target: &mut D,
    rows: &[&str; 12],
    x: i32,
    y: i32,
    scale: u32,
) {
    let s = scale.max(1) as i32;
    for (dy, row) in rows.iter().enumerate() {
        for (dx, c) in row.bytes().enumerate() {
            if c == b'#' {
                fill(
                    target,
                    x + dx as i32 * s,
                    y + dy as i32 * s,
                    s as u32,
                    s as u32,
                    INK,
                );
            }
        }
    }
}

/// Splits `text` into lines of at most `width` characters, breaking at spaces (and
/// inside words longer than a line). At most `max_lines`; the last one ends in "..." when
/// text was cut.
pub fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(4);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.chars().filter(|c| !c.is_control()).collect();
        loop {
            let needed = if current.is_empty() {
                word.chars().count()
            } else {
                current.chars().count() + 1 + word.chars().count()
            };
            if needed <= width {
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&word);
                break;
            }
            if current.is_empty() {
                // A word longer than the line: cut it.
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
                if word.is_empty() {
                    break;
                }
            } else {
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let keep = width.saturating_sub(3);
            if last.chars().count() > keep {
                *last = last
                    .chars()
                    .take(keep)
                    .collect::<String>()
                    .trim_end()
                    .to_string();
            }
            last.push_str("...");
        }
    }
    lines
}

/// Like [`wrap`], but breaks after commas first, so phrases stay whole ("50 000 sat per
/// day," / "until 31 Dec"), unless that takes more lines than plain wrapping.
pub fn wrap_phrases(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(4);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for phrase in text.split_inclusive(", ") {
        let phrase = phrase.trim();
        if phrase.is_empty() {
            continue;
        }
        let joined = if current.is_empty() {
            phrase.to_string()
        } else {
            format!("{current} {phrase}")
        };
        if joined.chars().count() <= width {
            current = joined;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // A phrase longer than a line wraps at its spaces; its last line may take more.
        let mut parts = wrap(phrase, width, usize::MAX);
        current = parts.pop().unwrap_or_default();
        lines.extend(parts);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    let plain = wrap(text, width, usize::MAX);
    if lines.len() > plain.len() {
        lines = plain;
    }
    if lines.len() > max_lines {
        let rest = lines.split_off(max_lines.saturating_sub(1)).join(" ");
        lines.extend(wrap(&rest, width, 1));
        lines.truncate(max_lines);
    }
    lines
}

/// Cuts `text` to `width` characters, ending in "..." when it was longer.
pub fn ellipsize(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let keep = width.saturating_sub(3);
    let mut s: String = text.chars().take(keep).collect();
    s.push_str("...");
    s
}

/// A one-time code of eight characters as two groups of four ("AB12 CD34"), so it is easy
/// to read out and type; any other length as it is.
pub fn code_in_fours(code: &str) -> String {
    if code.len() == 8 {
        format!("{} {}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// 1234567 → "1 234 567" (groups of three, as printed on banknotes: no locale confusion
/// between dots and commas).
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// An amount in satoshis for a screen: "1 234 567 sat".
pub fn sats(n: u64) -> String {
    format!("{} sat", group_digits(n))
}

/// A Unix time as local wall-clock text relative to `now`: "14:32" today,
/// "3 Mar 14:32" this year, "3 Mar 2025" before.
pub fn local_time(at: u64, now: u64, utc_offset_secs: i32) -> String {
    use chrono::{DateTime, Datelike};
    let local = |t: u64| {
        DateTime::from_timestamp(t as i64 + utc_offset_secs as i64, 0)
            .unwrap_or_default()
            .naive_utc()
    };
    let (at, now) = (local(at), local(now));
    if at.date() == now.date() {
        at.format("%H:%M").to_string()
    } else if at.year() == now.year() {
        at.format("%-d %b %H:%M").to_string()
    } else {
        at.format("%-d %b %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_out_in_fours() {
        assert_eq!(code_in_fours("AB12CD34"), "AB12 CD34");
        assert_eq!(code_in_fours("ABC123"), "ABC123");
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1 000");
        assert_eq!(group_digits(871_234), "871 234");
        assert_eq!(sats(1_234_567), "1 234 567 sat");
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_marks_cuts() {
        assert_eq!(wrap("one two three", 7, 5), vec!["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4, 5), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("aaa bbb ccc ddd eee", 7, 2), vec!["aaa bbb", "ccc..."]);
        assert_eq!(ellipsize("plugnode.local", 8), "plugn...");
        assert_eq!(ellipsize("short", 8), "short");
    }

    #[test]
    fn phrases_break_after_commas() {
        let budget = "50 000 sat per day, until 31 Dec";
        assert_eq!(
            wrap_phrases(budget, 28, 3),
            ["50 000 sat per day,", "until 31 Dec"]
        );
        assert_eq!(wrap_phrases(budget, 40, 3), [budget]);
        assert_eq!(
            wrap_phrases("a, b, ccc ddd eee fff", 8, 5),
            ["a, b,", "ccc ddd", "eee fff"]
        );
        // Phrases that would take an extra line: plain wrapping.
        assert_eq!(
            wrap_phrases("receive, spend, and read the payment history", 25, 3),
            ["receive, spend, and read", "the payment history"]
        );
        assert_eq!(
            wrap_phrases("one, two, three, four", 6, 2),
            ["one,", "two..."]
        );
    }

    #[test]
    fn times_are_local_and_short() {
        // 2026-03-03 12:00:00 UTC
        let now = 1_772_539_200;
        assert_eq!(local_time(now - 3600, now, 0), "11:00");
        assert_eq!(local_time(now - 3600, now, 3600), "12:00");
        assert_eq!(local_time(now - 86_400 * 2, now, 0), "1 Mar 12:00");
        assert_eq!(local_time(now - 86_400 * 400, now, 0), "27 Jan 2025");
    }
}
