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
    use chrono::TimeZone;
    use mailparse::{addrparse_header, parse_mail, MailAddr, MailHeaderMap, ParsedMail};

    const LINK: &str = "https://liaison.example/password?token=tok-123&x=1";

    fn vars(title: &str, locale: &str) -> MailVars {
        MailVars {
            login: "eve".into(),
            title: title.into(),
            email: "eve@example.com".into(),
            locale: locale.into(),
            portal_url: Some("https://portal.example/login".into()),
            accounts: vec!["Acme".into()],
            set_password_url: Some(LINK.into()),
            expires: chrono_tz::Europe::Prague
                .with_ymd_and_hms(2026, 12, 9, 8, 30, 0)
                .single(),
        }
    }

    fn built(kind: MailKind, vars: &MailVars) -> Vec<u8> {
        let templates = Templates::load(None, "en").unwrap();
        let meta = MessageMeta {
            from: "\"Support, Example\" <support@example.com>",
            message_id: "<42.c0ffee@example.com>",
            date: Utc.with_ymd_and_hms(2026, 12, 2, 7, 30, 0).unwrap(),
        };
        build_message(&templates, kind, vars, &meta)
            .unwrap()
            .formatted()
    }

    /// The single display name and address of header `name`.
    fn mailbox(mail: &ParsedMail<'_>, name: &str) -> (Option<String>, String) {
        let header = mail.headers.get_first_header(name).unwrap();
        let list = addrparse_header(header).unwrap();
        assert_eq!(list.len(), 1, "{name}: {list:?}");
        match &list[0] {
            MailAddr::Single(info) => (info.display_name.clone(), info.addr.clone()),
            MailAddr::Group(g) => panic!("{name} is a group: {g:?}"),
        }
    }

    /// Header names at the top of the formatted message.
    fn header_names(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap().to_owned();
        head.split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect()
    }

    fn html_text(html: &str) -> String {
        html.replace("&amp;", "&")
    }

    #[test]
    fn a_name_with_cr_lf_injects_no_header_and_the_message_parses() {
        let raw = built(MailKind::Welcome, &vars("Eve\r\nBcc: x@evil.test", "cs"));
        let names = header_names(&raw);
        assert!(!names.contains(&"bcc".to_owned()), "{names:?}");
        let mail = parse_mail(&raw).unwrap();
        assert!(mail.headers.get_first_value("Bcc").is_none());
        let (name, addr) = mailbox(&mail, "To");
        assert_eq!(name.as_deref(), Some("Eve Bcc: x@evil.test"));
        assert_eq!(addr, "eve@example.com");
        let (name, addr) = mailbox(&mail, "From");
        assert_eq!(name.as_deref(), Some("Support, Example"));
        assert_eq!(addr, "support@example.com");
        let h = |n: &str| mail.headers.get_first_value(n).unwrap();
        assert_eq!(h("Subject"), "Váš účet na portálu je připraven: eve");
        assert_eq!(h("Message-ID"), "<42.c0ffee@example.com>");
        assert_eq!(h("Auto-Submitted"), "auto-generated");
        assert_eq!(h("MIME-Version"), "1.0");
        let date = mailparse::dateparse(&h("Date")).unwrap();
        assert_eq!(
            date,
            Utc.with_ymd_and_hms(2026, 12, 2, 7, 30, 0)
                .unwrap()
                .timestamp()
        );

        assert_eq!(mail.ctype.mimetype, "multipart/alternative");
        assert_eq!(mail.subparts.len(), 2);
        let (text, html) = (&mail.subparts[0], &mail.subparts[1]);
        assert_eq!(text.ctype.mimetype, "text/plain");
        assert_eq!(html.ctype.mimetype, "text/html");
        for part in [text, html] {
            assert_eq!(part.ctype.charset.to_ascii_lowercase(), "utf-8");
        }
        let text = text.get_body().unwrap();
        let html = html.get_body().unwrap();
        assert!(text.lines().any(|l| l == LINK), "{text}");
        assert!(text.contains("Přihlašovací jméno: eve"), "{text}");
        assert!(text.contains("(platí do 9. 12. 2026 8:30 CET)"), "{text}");
        assert!(
            html_text(&html).contains(&format!("<a href=\"{LINK}\">")),
            "{html}"
        );
        assert!(html.contains("Nastavit heslo"));
    }

    #[test]
    fn names_with_quotes_commas_and_accents_stay_one_mailbox() {
        for title in [
            "Dvořák, Jiří \"JD\"",
            "O'Brien <boss@evil.test>",
            "Ελένη; x",
            "",
        ] {
            let raw = built(MailKind::RegistrationConfirmation, &vars(title, "en"));
            let mail = parse_mail(&raw).unwrap();
            let (name, addr) = mailbox(&mail, "To");
            assert_eq!(addr, "eve@example.com", "{title:?}");
            let expected = (!title.is_empty()).then(|| title.to_owned());
            assert_eq!(name, expected, "{title:?}");
            let body = mail.subparts[0].get_body().unwrap();
            assert!(body.contains("Login: eve"));
        }
    }

    #[test]
    fn a_bad_from_or_recipient_is_an_error() {
        let templates = Templates::load(None, "en").unwrap();
        let meta = MessageMeta {
            from: "not a mailbox",
            message_id: "<1@example.com>",
            date: Utc::now(),
        };
        let v = vars("Eve", "en");
        let e = build_message(&templates, MailKind::Welcome, &v, &meta).unwrap_err();
        assert!(matches!(e, MailError::From { .. }), "{e}");
        let meta = MessageMeta {
            from: "a@example.com",
            ..meta
        };
        let mut v = vars("Eve", "en");
        v.email = "nobody".into();
        let e = build_message(&templates, MailKind::Welcome, &v, &meta).unwrap_err();
        assert!(matches!(e, MailError::Recipient { .. }), "{e}");
    }

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
