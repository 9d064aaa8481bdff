//! Folding for `users list --search` (SPEC §5): a substring of login, title,
//! e-mail, description or an attribute value, after folding case and
//! diacritics on both sides, so `dvorak`, `DVOŘÁK` and `vořá` all find
//! `Jiří Dvořák`, and `lukasz` finds `Łukasz`.
//!
//! Folding transliterates each character to ASCII where `deunicode` knows it
//! (the same table that makes logins: `ř` → `r`, `ł` → `l`, `ß` → `ss`, `Ж` →
//! `Zh`) and lower-cases the result; a character it does not know is kept,
//! lower-cased by Unicode's rules. So other scripts fold too, and also match
//! their Latin transliteration (`ivan` finds `Иван`). Control characters fold
//! to a space, so the separator between a user's fields, which no folded text
//! contains, keeps a match inside one field.

/// Separates a user's fields in its search text; folding never produces it.
pub const FIELD_SEPARATOR: char = '\u{1f}';

/// `text` folded for search.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(&mut out, text);
    out
}

/// Appends `text`, folded, to `out`.
pub fn fold_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_ascii() {
            out.push(if c.is_ascii_control() {
                ' '
            } else {
                c.to_ascii_lowercase()
            });
        } else if c.is_control() {
            out.push(' ');
        } else {
            match deunicode::deunicode_char(c) {
                Some(ascii) => out.extend(ascii.chars().map(|a| a.to_ascii_lowercase())),
                None => out.extend(c.to_lowercase()),
            }
        }
    }
}

/// The text a user is found by: its searchable fields, each folded, between
/// [`FIELD_SEPARATOR`]s.
pub fn search_text<'a>(
    login: &str,
    title: &str,
    email: Option<&str>,
    description: Option<&str>,
    attribute_values: impl Iterator<Item = &'a str>,
) -> String {
    let mut out = String::with_capacity(
        login.len()
            + title.len()
            + email.map_or(0, str::len)
            + description.map_or(0, str::len)
            + 16,
    );
    for field in [Some(login), Some(title), email, description]
        .into_iter()
        .flatten()
    {
        out.push(FIELD_SEPARATOR);
        fold_into(&mut out, field);
    }
    for value in attribute_values {
        out.push(FIELD_SEPARATOR);
        fold_into(&mut out, value);
    }
    out.push(FIELD_SEPARATOR);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(term: &str, text: &str) -> bool {
        search_text("x", text, None, None, std::iter::empty()).contains(&fold(term))
    }

    #[test]
    fn case_and_diacritics_fold_on_both_sides() {
        for term in ["dvorak", "DVOŘÁK", "vořá", "Jiří", "JIRI DVORAK"] {
            assert!(finds(term, "Jiří Dvořák"), "{term}");
        }
        assert!(finds("łukasz", "Łukasz Wiśniewski"));
        assert!(finds("lukasz", "ŁUKASZ"));
        assert!(finds("ŠTĚPÁN", "Štěpán Novák"));
        assert!(finds("strasse", "Hauptstraße 1"));
        assert!(finds("ОЛЬГА", "Ольга Иванова"));
        assert!(finds("ivanova", "Ольга Иванова"));
        assert!(finds("ΣΟΦΊΑ", "Σοφία"));
        // Decomposed input folds like composed input.
        assert!(finds("dvorak", "Dvor\u{30c}a\u{301}k"));
        assert!(!finds("dvoraka", "Jiří Dvořák"));
    }

    #[test]
    fn a_match_stays_inside_one_field() {
        let text = search_text(
            "ann",
            "Ann Smith",
            Some("ann@x.example"),
            Some("line one\nline two"),
            ["LIC-1", "gold"].into_iter(),
        );
        assert!(text.contains(&fold("lic-1")));
        assert!(
            text.contains(&fold("one line")),
            "control characters fold to spaces"
        );
        assert!(!text.contains(&fold("smithann")));
        assert!(!text.contains(&fold("lic-1gold")));
        assert!(!fold("a\u{1f}b").contains(FIELD_SEPARATOR));
        assert!(!text.contains(&fold("example\u{1f}line")));
    }

    #[test]
    fn characters_without_a_transliteration_keep_unicode_case_folding() {
        // Private-use characters have no transliteration and no case: kept.
        assert_eq!(fold("A\u{e000}B"), "a\u{e000}b");
    }
}
