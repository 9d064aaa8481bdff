//! A case-insensitive e-mail address: correlation key and notification address.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Why a string is not an e-mail address we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing given.
    #[error("e-mail is empty")]
    Empty,
    /// Not of the form `local@domain.tld`.
    #[error("invalid e-mail {0:?}")]
    Invalid(String),
}

/// An e-mail address that compares, hashes and orders case-insensitively but
/// keeps the spelling the source gave for sending.
#[derive(Clone)]
pub struct Email {
    original: Box<str>,
    normalized: Box<str>,
}

impl Email {
    /// Parses and checks an address: one `@`, a non-empty local part, a dotted
    /// domain of letters, digits and hyphens, no spaces or control characters.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let (original, normalized) = Email::check(raw)?;
        Ok(Email {
            original: original.into(),
            normalized: normalized.into(),
        })
    }

    /// [`Email::parse`] without building an `Email`: the address as given
    /// (trimmed) and lower-cased, borrowed when it already is.
    pub fn check(raw: &str) -> Result<(&str, std::borrow::Cow<'_, str>), EmailError> {
        use std::borrow::Cow;
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        let invalid = || EmailError::Invalid(s.to_owned());
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(local_char);
        let domain_ok = super::account::valid_domain(domain);
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        // Most addresses are ASCII, many already lower case.
        let normalized = match s.is_ascii() {
            true if !s.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Borrowed(s),
            true => Cow::Owned(s.to_ascii_lowercase()),
            false => Cow::Owned(s.to_lowercase()),
        };
        Ok((s, normalized))
    }

    /// An address checked before, from its two spellings (as given, normalized).
    pub(crate) fn from_trusted(original: &str, normalized: &str) -> Self {
        Email {
            original: original.into(),
            normalized: normalized.into(),
        }
    }

    /// The address as the source spelled it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lower-cased form used for correlation.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.original
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.original)
    }

    /// The domain, lower-cased.
    pub fn domain(&self) -> &str {
        self.normalized
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("")
    }
}

/// A character the local part may hold: a letter or digit (any script), or
/// one of RFC 5322's `atext` specials, or a dot.
fn local_char(c: char) -> bool {
    match c.is_ascii() {
        true => {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '!' | '#'
                        | '$'
                        | '%'
                        | '&'
                        | '\''
                        | '*'
                        | '+'
                        | '-'
                        | '/'
                        | '='
                        | '?'
                        | '^'
                        | '_'
                        | '`'
                        | '{'
                        | '|'
                        | '}'
                        | '~'
                        | '.'
                )
        }
        false => c.is_alphanumeric(),
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}
impl Eq for Email {}
impl Hash for Email {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized.hash(state)
    }
}
impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Email {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.normalized.cmp(&other.normalized)
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.original)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The rules as first written (string searches, a vector of labels,
    /// Unicode lower-casing): what the fast parse must agree with.
    fn reference(raw: &str) -> Option<(String, String)> {
        let s = raw.trim();
        let (local, domain) = s.rsplit_once('@')?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = domain.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        (local_ok && domain_ok).then(|| (s.to_owned(), s.to_lowercase()))
    }

    proptest! {
        #[test]
        fn the_fast_parse_agrees_with_the_rules(
            raw in "[ aAzZ09.@\\-_+!#'~\"(),;:<>\\[\\]\\\\ĚščŘÉßİΣЖ\t]{0,24}"
        ) {
            let parsed = Email::parse(&raw)
                .ok()
                .map(|e| (e.as_str().to_owned(), e.normalized().to_owned()));
            prop_assert_eq!(parsed, reference(&raw));
        }

        #[test]
        fn the_fast_parse_agrees_with_the_rules_on_address_shapes(
            local in "[aZ09.!#'~_+\\-ĚščΣİ]{1,8}",
            labels in proptest::collection::vec("[aZ09\\-ščΣ]{1,6}", 1..4),
        ) {
            let raw = format!("{local}@{}", labels.join("."));
            let parsed = Email::parse(&raw)
                .ok()
                .map(|e| (e.as_str().to_owned(), e.normalized().to_owned()));
            prop_assert_eq!(parsed, reference(&raw));
        }
    }

    #[test]
    fn compares_case_insensitively_and_keeps_spelling() {
        let a = Email::parse(" Ann.Smith@Example.COM ").unwrap();
        let b = Email::parse("ann.smith@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ann.Smith@Example.COM");
        assert_eq!(a.normalized(), "ann.smith@example.com");
        assert_eq!(a.local_part(), "Ann.Smith");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            ".a@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            Email::parse("jiří@příklad.cz").is_ok(),
            "internationalised addresses are fine"
        );
    }
}
