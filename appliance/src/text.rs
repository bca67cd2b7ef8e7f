//! Small helpers for the sentences the box shows (page, e-ink, alerts).

/// `text` with its first letter upper-case: a reason or an error message that starts a
/// sentence ("bitcoind is not answering" → "Bitcoind is not answering").
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` ending as a sentence, so that another can follow it: a reason from elsewhere
/// (the update helper, a log line) may come without its full stop.
pub fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

#[cfg(test)]
mod tests {
    use super::{capitalized, sentence};

    #[test]
    fn a_reason_gets_its_full_stop_once() {
        assert_eq!(
            sentence("plugnode stopped at start: exit status 1 (exit-code)"),
            "plugnode stopped at start: exit status 1 (exit-code)."
        );
        assert_eq!(sentence("It failed. "), "It failed.");
        assert_eq!(sentence("Why?"), "Why?");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn only_the_first_letter_changes() {
        assert_eq!(capitalized("the update"), "The update");
        assert_eq!(capitalized("éclair"), "Éclair");
        assert_eq!(capitalized("KEY2 is"), "KEY2 is");
        assert_eq!(capitalized(""), "");
    }
}
