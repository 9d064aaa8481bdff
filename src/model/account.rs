//! Accounts (companies, business partners) and the e-mail domains that tell
//! which account a registering address belongs to.

use std::fmt;

/// An account's stable key, as its source or the config gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not an e-mail domain we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an e-mail domain (expected a dotted name such as example.com)")]
pub struct DomainError(pub String);

/// An e-mail domain, lower-cased: what an account's `domains` hold and what a
/// registration's address is matched on, exactly (no subdomains).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    /// Checks `raw` (trimmed) with the rule e-mail addresses' domains follow
    /// ([`super::Email::parse`]): at least two dot-separated labels of
    /// letters, digits and hyphens, none empty, longer than 63 or starting or
    /// ending with a hyphen, 253 characters at most; then lower-cases it.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if !valid_domain(s) {
            return Err(DomainError(s.to_owned()));
        }
        Ok(Domain(s.to_lowercase()))
    }

    /// A domain read back from the store, checked when it was written.
    pub(crate) fn from_trusted(s: String) -> Self {
        Domain(s)
    }

    /// The domain as text, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The domain rule shared with [`super::Email`].
pub(crate) fn valid_domain(domain: &str) -> bool {
    let mut labels = 0;
    domain.len() <= 253
        && domain.split('.').all(|l| {
            labels += 1;
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels >= 2
}

/// Parses a `|`-separated list of domains (the standard column
/// `account_domains`): each part trimmed, empty parts dropped, duplicates
/// kept once, in the order given. The first bad part is the error.
pub fn parse_domain_list(text: &str) -> Result<Vec<Domain>, DomainError> {
    let mut out: Vec<Domain> = Vec::new();
    for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        let domain = Domain::parse(part)?;
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    Ok(out)
}

/// An account as the store knows it: what `users show` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// Stable key from its source or the config.
    pub id: AccountId,
    /// Display name: the config's when it lists the account, else the latest
    /// non-empty name a source gave; `None` when nobody named it.
    pub name: Option<String>,
    /// E-mail domains, sorted: those the account's linked contacts give and
    /// those the config lists.
    pub domains: Vec<Domain>,
}

/// Which account an e-mail domain belongs to ([`crate::store::Store::account_for_domain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainMatch {
    /// No account claims the domain.
    None,
    /// Exactly this account claims it.
    One(AccountId),
    /// Several accounts claim it (sorted): none of them is chosen, and the
    /// caller says so rather than guess.
    Ambiguous(Vec<AccountId>),
}

impl DomainMatch {
    /// The one account, when exactly one claims the domain.
    pub fn one(&self) -> Option<&AccountId> {
        match self {
            DomainMatch::One(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn domains_are_checked_and_lower_cased() {
        assert_eq!(
            Domain::parse(" Example.COM ").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(Domain::parse("příklad.cz").unwrap().as_str(), "příklad.cz");
        for bad in [
            "",
            "example",
            "@example.com",
            "a@example.com",
            "exa mple.com",
            "-x.example",
            "x..example",
            "x.example.",
            "*.example.com",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_domain_list_splits_at_bars_and_drops_repeats() {
        let got = parse_domain_list(" a.example | B.example||a.EXAMPLE ").unwrap();
        let got: Vec<&str> = got.iter().map(Domain::as_str).collect();
        assert_eq!(got, ["a.example", "b.example"]);
        assert_eq!(
            parse_domain_list("a.example|nope").unwrap_err(),
            DomainError("nope".into())
        );
        assert!(parse_domain_list(" | ").unwrap().is_empty());
    }
}
