//! The last lines plugnode logged, kept in memory for diagnostic mode's page ("what was
//! the box doing when it failed") while every line still goes to stderr (journald).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

/// Lines kept: enough to show the failure and what led to it.
const KEPT_LINES: usize = 60;

static TAIL: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// The kept lines, oldest first, without terminal colours.
pub fn lines() -> Vec<String> {
    TAIL.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// A log writer for one event: writes through to stderr and keeps the event's lines when
/// dropped (the formatter makes one writer per event).
#[derive(Default)]
pub struct TeeToStderr {
    event: Vec<u8>,
}

impl Write for TeeToStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.event.extend_from_slice(bytes);
        std::io::stderr().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl Drop for TeeToStderr {
    fn drop(&mut self) {
        keep(&String::from_utf8_lossy(&self.event));
    }
}

fn keep(text: &str) {
    let mut tail = TAIL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for line in text.lines().map(without_colours) {
        if line.trim().is_empty() {
            continue;
        }
        if tail.len() == KEPT_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// `line` without ANSI escape sequences (`ESC [ … letter`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip up to and including the final letter of the sequence.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_without_colours() {
        keep("\u{1b}[2m2026-12-07T10:00:00Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m the disk is full\n");
        for i in 0..KEPT_LINES {
            keep(&format!("line {i}\n"));
        }
        keep("last é line\n");
        let lines = lines();
        assert!(lines.len() <= KEPT_LINES);
        assert_eq!(lines.last().unwrap(), "last é line");
        assert!(!lines.iter().any(|l| l.contains('\u{1b}')));
        assert_eq!(
            without_colours("\u{1b}[2mtime\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m text"),
            "time ERROR text"
        );
    }
}
