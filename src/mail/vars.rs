//! What a template may print about its user, and how values are made safe
//! before any template sees them.

use std::collections::BTreeMap;

use chrono::DateTime;
use minijinja::Value;

use super::MailKind;

/// Variables every kind's templates may use.
pub(crate) const COMMON_VARIABLES: &[&str] = &[
    "login",
    "title",
    "email",
    "locale",
    "portal_url",
    "account",
    "accounts",
];

/// The facts one mail is rendered from. Every text is cleaned before
/// rendering: control characters (CR, LF, tab, …) and Unicode line and
/// paragraph separators become spaces and runs of white space one space, so
/// no value can break a line in a subject, a header or a text part.
#[derive(Debug, Clone, PartialEq)]
pub struct MailVars {
    /// The user's login.
    pub login: String,
    /// Display name; also the name in `To`.
    pub title: String,
    /// The recipient address.
    pub email: String,
    /// The user's locale; the templates used may be a fallback's.
    pub locale: String,
    /// `portal.url`, if configured.
    pub portal_url: Option<String>,
    /// Names of the user's accounts.
    pub accounts: Vec<String>,
    /// `welcome`: the set-password link with its token (required there).
    pub set_password_url: Option<String>,
    /// `welcome`: when the token expires, in the mail time zone.
    pub expires: Option<DateTime<chrono_tz::Tz>>,
}

impl MailVars {
    /// The template context for `kind` rendered in `locale`: the kind's
    /// variables only, every text cleaned.
    pub(crate) fn context(&self, kind: MailKind, locale: &str) -> Value {
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
        let text = |s: &str| Value::from(clean(s));
        let accounts: Vec<String> = self
            .accounts
            .iter()
            .map(|a| clean(a))
            .filter(|a| !a.is_empty())
            .collect();
        ctx.insert("login", text(&self.login));
        ctx.insert("title", text(&self.title));
        ctx.insert("email", text(&self.email));
        ctx.insert("locale", Value::from(locale));
        ctx.insert(
            "portal_url",
            self.portal_url.as_deref().map_or(Value::from(()), text),
        );
        ctx.insert("account", Value::from(accounts.join(", ")));
        ctx.insert("accounts", Value::from(accounts));
        if kind == MailKind::Welcome {
            ctx.insert(
                "set_password_url",
                self.set_password_url
                    .as_deref()
                    .map_or(Value::from(()), text),
            );
            ctx.insert(
                "expires",
                self.expires
                    .map_or(Value::from(()), |at| Value::from(expiry(&at, locale))),
            );
        }
        Value::from(ctx)
    }
}

/// `text` with control characters and line or paragraph separators turned
/// into spaces, white space collapsed and trimmed.
pub(crate) fn clean(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A token's expiry as people of `locale` write it, with the zone's
/// abbreviation: `9 December 2026, 08:30 CET` in English, `9. 12. 2026 8:30
/// CET` in Czech, ISO `2026-12-09 08:30 CET` otherwise.
pub(crate) fn expiry(at: &DateTime<chrono_tz::Tz>, locale: &str) -> String {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    let format = match language.to_ascii_lowercase().as_str() {
        "en" => "%-d %B %Y, %H:%M %Z",
        "cs" => "%-d. %-m. %Y %-H:%M %Z",
        _ => "%Y-%m-%d %H:%M %Z",
    };
    at.format(format).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn clean_removes_line_breaks_and_controls() {
        assert_eq!(clean("Eve\r\nBcc: x@evil.test"), "Eve Bcc: x@evil.test");
        assert_eq!(clean(" a\u{2028}b\tc\u{0}d \u{85}"), "a b c d");
        assert_eq!(clean("Jiří  Dvořák"), "Jiří Dvořák");
    }

    #[test]
    fn expiry_per_locale() {
        let at = chrono_tz::Europe::Prague
            .with_ymd_and_hms(2026, 12, 9, 8, 30, 0)
            .unwrap();
        assert_eq!(expiry(&at, "en"), "9 December 2026, 08:30 CET");
        assert_eq!(expiry(&at, "cs-CZ"), "9. 12. 2026 8:30 CET");
        assert_eq!(expiry(&at, "de"), "2026-12-09 08:30 CET");
    }
}
