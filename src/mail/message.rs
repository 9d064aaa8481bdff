//! The RFC 5322 message: lettre's builder with our headers.
//!
//! lettre encodes every header value (RFC 2047 for non-ASCII, quoting for
//! specials, and a CR or LF is never written raw), builds the MIME tree and
//! picks each part's transfer encoding; we add the cleaning of values, the
//! Message-ID check and `Auto-Submitted`.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use super::vars::clean;
use super::{MailError, MailKind, MailVars, Templates};

/// The headers a caller decides: sender, identity and time of one message.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    /// `mail.from`, e.g. `Support <support@example.com>`.
    pub from: &'a str,
    /// A stable id, `<unique@domain>`, the same for every attempt of one
    /// outbox row (see [`message_id`]).
    pub message_id: &'a str,
    /// The `Date` header.
    pub date: DateTime<Utc>,
}

/// Renders `kind` for the user of `vars` and builds the message: From, To
/// (`vars.title` and `vars.email`), Subject, Message-ID, Date,
/// `Auto-Submitted: auto-generated`, multipart/alternative text and HTML.
pub fn build_message(
    templates: &Templates,
    kind: MailKind,
    vars: &MailVars,
    meta: &MessageMeta<'_>,
) -> Result<Message, MailError> {
    let rendered = templates.render(kind, vars)?;
    let from: Mailbox = meta
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::From {
            from: meta.from.to_owned(),
            reason: e.to_string(),
        })?;
    let to = recipient(&vars.title, &vars.email)?;
    let id = checked_message_id(meta.message_id)?;
    let auto_submitted = HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    );
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject)
        .message_id(Some(id))
        .date(SystemTime::from(meta.date))
        .raw_header(auto_submitted)
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))?;
    Ok(message)
}

/// `<unique@domain>` with the domain of `from`'s address: a Message-ID that
/// is the same every time it is made for the same `unique` (an outbox row's
/// id, say). `unique` may hold letters, digits and `.-_+=`.
pub fn message_id(unique: &str, from: &str) -> Result<String, MailError> {
    let mailbox: Mailbox =
        from.parse()
            .map_err(|e: lettre::address::AddressError| MailError::From {
                from: from.to_owned(),
                reason: e.to_string(),
            })?;
    let ok = !unique.is_empty()
        && unique
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '='));
    if !ok {
        return Err(MailError::MessageId(unique.to_owned()));
    }
    checked_message_id(&format!("<{unique}@{}>", mailbox.email.domain()))
}

/// The To mailbox: the title cleaned of control characters (lettre quotes
/// and encodes the rest), no name when nothing is left.
fn recipient(title: &str, email: &str) -> Result<Mailbox, MailError> {
    let address_text = clean(email);
    let address: Address = address_text
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Recipient {
            address: address_text.clone(),
            reason: e.to_string(),
        })?;
    let name = clean(title);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), address))
}

/// `id` if it is `<left@right>` of printable ASCII without spaces or
/// further angle brackets.
fn checked_message_id(id: &str) -> Result<String, MailError> {
    let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>'));
    let ok = inner.is_some_and(|inner| {
        let printable = inner
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>'));
        let parts = inner.split_once('@');
        printable && parts.is_some_and(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains('@'))
    });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(MailError::MessageId(id.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(
            message_id("42.ab12", "Support <support@example.com>").unwrap(),
            "<42.ab12@example.com>"
        );
        assert!(message_id("a b", "support@example.com").is_err());
        assert!(message_id("", "support@example.com").is_err());
        assert!(checked_message_id("<a@b>").is_ok());
        for bad in ["a@b", "<a b@c>", "<ab>", "<a@b>\r\nBcc: x", "<@b>", "<a@>"] {
            assert!(checked_message_id(bad).is_err(), "{bad:?}");
        }
    }
}
