//! The dispatcher against a real SMTP server (aiosmtpd), through `liaison
//! mail flush --format json`: what the welcome and the confirmation say in
//! each locale, and what happens when the server defers, refuses, is down,
//! is slow and the sender is killed, or when a name tries to add a header.
//! Time moves with `LIAISON_TEST_NOW`, never by sleeping.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::common::daemon::{free_port, Daemon};
use crate::common::smtp::{Captured, SmtpOptions, SmtpServer};
use crate::common::{csv_config, Sandbox};

/// The CSV header the tests write: the standard layout plus `locale`.
const HEADER: &str = "contact_id,name,email,account_id,account_name,grants,locale\n";

/// One CSV row: `c{id}`, `name`, `email`, account Acme, `locale`.
fn row(id: &str, name: &str, email: &str, locale: &str) -> String {
    format!("{id},{name},{email},acme,Acme s.r.o.,portal,{locale}\n")
}

/// `n` people `person{i}@example.com`, in English.
fn people(n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        csv.push_str(&row(
            &format!("c{i}"),
            &format!("Person {i}"),
            &format!("person{i}@example.com"),
            "en",
        ));
    }
    csv
}

/// A sandbox mailing through `transport`, with more `mail:` keys and more
/// top-level sections; `csv` is the source file.
fn sandbox(transport: &str, mail_keys: &[&str], more: &[&str], csv: &str) -> Sandbox {
    let mut sections = vec![
        "portal:\n  url: https://portal.example.com/login".to_owned(),
        format!(
            "mail:\n  transport: \"{transport}\"\n  from: \"Support <support@example.com>\"\n  \
             timeout: 10s\n  welcome:\n    set_password_url: https://liaison.example.com/password"
        ),
    ];
    sections.extend(mail_keys.iter().map(|k| format!("  {k}")));
    sections.extend(more.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = sections.iter().map(String::as_str).collect();
    let s = Sandbox::new(&csv_config("partners.csv", &[], &refs));
    s.write("partners.csv", csv);
    s
}

/// `mail flush --format json`, exit 0, with the clock at `at` when given.
#[track_caller]
fn flush_at(s: &Sandbox, at: Option<chrono::DateTime<Utc>>) -> Value {
    let now = at.map(|t| t.to_rfc3339());
    let env: Vec<(&str, &str)> = now
        .as_deref()
        .map(|n| vec![("LIAISON_TEST_NOW", n)])
        .unwrap_or_default();
    s.run_with_env(&["mail", "flush", "--format", "json"], &env)
        .expect(0)
        .json()
}

#[track_caller]
fn flush(s: &Sandbox) -> Value {
    flush_at(s, None)
}

/// `mail status --format json`.
#[track_caller]
fn status(s: &Sandbox) -> Value {
    s.run(&["mail", "status", "--format", "json"])
        .expect(0)
        .json()
}

/// The captured message to `address`.
#[track_caller]
fn to(server: &SmtpServer, address: &str) -> Captured {
    let mut found: Vec<Captured> = server
        .messages()
        .into_iter()
        .filter(|m| m.header("To").contains(address))
        .collect();
    assert_eq!(found.len(), 1, "messages to {address}");
    found.remove(0)
}

/// The captured message of `kind` (by subject) to `address`.
#[track_caller]
fn of_kind(server: &SmtpServer, address: &str, subject_start: &str) -> Captured {
    let mut found: Vec<Captured> = server
        .messages()
        .into_iter()
        .filter(|m| {
            m.header("To").contains(address) && m.header("Subject").starts_with(subject_start)
        })
        .collect();
    assert_eq!(found.len(), 1, "{subject_start:?} messages to {address}");
    found.remove(0)
}

/// The `token` query parameter of the set-password link in `text`.
#[track_caller]
fn token_in(text: &str) -> String {
    let link = "https://liaison.example.com/password?token=";
    let start = text
        .find(link)
        .unwrap_or_else(|| panic!("no link in\n{text}"))
        + link.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%'))
        .collect()
}

/// The queued messages from `mail status`: (recipient, kind) → Message-ID.
fn queued_ids(s: &Sandbox) -> BTreeMap<(String, String), String> {
    status(s)["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_owned();
            ((text("recipient"), text("kind")), text("message_id"))
        })
        .collect()
}

/// The login `users list` shows for `email`.
fn login_of(s: &Sandbox, email: &str) -> String {
    s.users()
        .into_iter()
        .find(|u| u["email"] == email)
        .and_then(|u| u["login"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no user {email}"))
}

/// Asserts `m` is a multipart/alternative message of a text and an HTML part,
/// its headers ASCII (non-ASCII values encoded), from the configured sender.
#[track_caller]
fn assert_shape(m: &Captured) {
    assert_eq!(m.mime_type(), "multipart/alternative");
    let types: Vec<String> = m.parts().into_iter().map(|(t, _)| t).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert!(m.header_block().is_ascii(), "{}", m.header_block());
    assert_eq!(m.header("From"), "Support <support@example.com>");
    assert_eq!(m.header("Auto-Submitted"), "auto-generated");
    assert!(!m.header("Date").is_empty());
}

/// Asserts `m` is a welcome for `login` with one set-password token, the
/// same in both parts, and the portal's URL; returns the token.
#[track_caller]
fn assert_welcome(m: &Captured, login: &str) -> String {
    assert_shape(m);
    let (text, html) = (m.part("text/plain"), m.part("text/html"));
    let token = token_in(&text);
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(token_in(&html), token);
    for part in [&text, &html] {
        assert!(part.contains(login), "{part}");
        assert!(part.contains("https://portal.example.com/login"), "{part}");
    }
    token
}

/// Asserts the Message-ID looks like `<OUTBOX-ID.RANDOM@example.com>`.
#[track_caller]
fn assert_message_id_format(id: &str) {
    let inner = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix("@example.com>"))
        .unwrap_or_else(|| panic!("{id}"));
    let (row, random) = inner.split_once('.').unwrap_or_else(|| panic!("{id}"));
    assert!(row.parse::<u64>().is_ok(), "{id}");
    assert!(
        random.len() >= 8 && random.chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
}

fn bilingual_csv() -> String {
    let mut csv = HEADER.to_owned();
    csv.push_str(&row("c1", "Ann Example", "ann@example.com", "en"));
    csv.push_str(&row("c2", "Jiří Dvořák", "jiri@example.com", "cs"));
    csv.push_str(&row("c3", "No Locale", "nolocale@example.com", ""));
    csv
}

#[test]
fn welcome_and_confirmation_content_in_english_and_czech() {
    let server = SmtpServer::plain();
    let s = sandbox(
        &server.url(),
        &["confirm_sync_created: true"],
        &["default_locale: cs"],
        &bilingual_csv(),
    );
    s.sync(0);
    let ids = queued_ids(&s);
    let done = flush(&s);
    assert_eq!(done["sent"]["welcome"], 3, "{done}");
    assert_eq!(done["sent"]["registration_confirmation"], 3, "{done}");
    assert_eq!(server.count(), 6);

    // Each message carries the Message-ID its outbox row was queued with.
    let captured: Vec<String> = server.messages().iter().map(Captured::message_id).collect();
    let mut queued: Vec<String> = ids.values().cloned().collect();
    let mut sorted = captured.clone();
    sorted.sort();
    queued.sort();
    assert_eq!(sorted, queued);
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "{captured:?}");
    for id in &captured {
        assert_message_id_format(id);
    }

    // English, from the user's locale.
    let ann = of_kind(&server, "ann@example.com", "Your portal account is ready");
    assert_eq!(
        ann.header("Subject"),
        "Your portal account is ready: ann.example"
    );
    assert_eq!(ann.header("To"), "\"Ann Example\" <ann@example.com>");
    assert_eq!(
        ann.message_id(),
        ids[&("ann@example.com".to_owned(), "welcome".to_owned())]
    );
    assert_welcome(&ann, "ann.example");
    let text = ann.part("text/plain");
    assert!(text.starts_with("Hello Ann Example,"), "{text}");
    assert!(text.contains("Login: ann.example\n"), "{text}");
    assert!(
        text.contains("Portal: https://portal.example.com/login\n"),
        "{text}"
    );
    assert!(ann.part("text/html").contains("<html lang=\"en\">"));

    let confirmation = of_kind(
        &server,
        "ann@example.com",
        "We have received your registration",
    );
    assert_eq!(
        confirmation.header("Subject"),
        "We have received your registration"
    );
    assert_shape(&confirmation);
    let text = confirmation.part("text/plain");
    assert!(
        text.contains("Login: ann.example\nE-mail: ann@example.com\n"),
        "{text}"
    );
    assert!(!text.contains("token="), "{text}");
    assert!(confirmation
        .part("text/html")
        .contains("https://portal.example.com/login"));

    // Czech, from the user's locale; the name is encoded in the header.
    let jiri_login = login_of(&s, "jiri@example.com");
    let jiri = of_kind(
        &server,
        "jiri@example.com",
        "Váš účet na portálu je připraven",
    );
    assert_eq!(
        jiri.header("Subject"),
        format!("Váš účet na portálu je připraven: {jiri_login}")
    );
    assert_eq!(jiri.header("To"), "Jiří Dvořák <jiri@example.com>");
    assert_welcome(&jiri, &jiri_login);
    let text = jiri.part("text/plain");
    assert!(
        text.contains(&format!("Přihlašovací jméno: {jiri_login}\n")),
        "{text}"
    );
    assert!(
        text.contains("Heslo si nastavíte po otevření tohoto odkazu"),
        "{text}"
    );
    assert!(jiri.part("text/html").contains("<html lang=\"cs\">"));
    let potvrzeni = of_kind(&server, "jiri@example.com", "Potvrzení registrace");
    assert_eq!(
        potvrzeni.header("Subject"),
        "Potvrzení registrace na zákaznický portál"
    );
    assert!(potvrzeni
        .part("text/plain")
        .contains("E-mail: jiri@example.com"));

    // No locale in the source: default_locale (cs).
    let nolocale = of_kind(&server, "nolocale@example.com", "Váš účet");
    assert_welcome(&nolocale, &login_of(&s, "nolocale@example.com"));
    of_kind(&server, "nolocale@example.com", "Potvrzení registrace");

    // Each welcome got a token of its own.
    let tokens: std::collections::BTreeSet<String> = [&ann, &jiri, &nolocale]
        .iter()
        .map(|m| token_in(&m.part("text/plain")))
        .collect();
    assert_eq!(tokens.len(), 3);
    // And every envelope names exactly its one recipient.
    for e in server.envelopes() {
        assert_eq!(e.rcpt_tos.len(), 1, "{e:?}");
        assert_eq!(e.mail_from, "support@example.com");
    }
}
#[test]
fn mail_flush_over_smtp_exits_cleanly_after_sending() {
    // lettre's pool spawns a task when it is dropped: dropped outside the
    // runtime, the process panicked (exit 101) after sending.
    let server = SmtpServer::plain();
    let s = sandbox(&server.url(), &[], &[], &people(1));
    s.sync(0);
    let run = s.run(&["mail", "flush"]).expect(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(server.count(), 1);
}
