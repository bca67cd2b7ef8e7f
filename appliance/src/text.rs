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

#[cfg(test)]
mod tests {
    use super::capitalized;

    #[test]
    fn only_the_first_letter_changes() {
        assert_eq!(capitalized("the update"), "The update");
        assert_eq!(capitalized("éclair"), "Éclair");
        assert_eq!(capitalized("KEY2 is"), "KEY2 is");
        assert_eq!(capitalized(""), "");
    }
}
