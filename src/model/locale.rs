//! Language tags: what a user's `locale` and `default_locale` hold.

/// Whether `text` is a language tag such as `en`, `cs`, `pt-BR` or
/// `zh_Hant`: a language of 2 or 3 letters, then parts of 1 to 8 letters or
/// digits, separated by `-` or `_`.
pub fn is_language_tag(text: &str) -> bool {
    let mut parts = text.split(['-', '_']);
    let language_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    language_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "cs", "pt-BR", "zh_Hant", "ast"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "english", "en-", "en-toolongpart", "c1", "en us"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
