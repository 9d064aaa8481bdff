//! `liaison mail test --to` against a real SMTP server (aiosmtpd): plain
//! SMTP, STARTTLS and implicit TLS with a private CA, AUTH, refusals, an
//! unreachable server, and the config errors that stop it before it sends.

use crate::common::smtp::{SmtpOptions, SmtpServer, Tls};
use crate::common::{csv_config, Run, Sandbox};

/// A sandbox whose `mail:` sends through `transport`, with `more` keys of
/// `mail:` (each `key: value`).
fn sandbox(transport: &str, more: &[&str]) -> Sandbox {
    let mut sections = vec![
        "mail:".to_owned(),
        format!("  transport: \"{transport}\""),
        "  from: \"Support <support@example.com>\"".to_owned(),
        "  timeout: 10s".to_owned(),
    ];
    sections.extend(more.iter().map(|k| format!("  {k}")));
    let refs: Vec<&str> = sections.iter().map(String::as_str).collect();
    let s = Sandbox::new(&csv_config("partners.csv", &[], &refs));
    s.write("partners.csv", crate::common::HEADER);
    s
}

/// `ca_file: PATH` for `server`'s CA.
fn ca_key(server: &SmtpServer) -> String {
    format!("ca_file: {}", server.ca().ca_file().display())
}

fn mail_test(s: &Sandbox, to: &str) -> Run {
    s.run(&["mail", "test", "--to", to])
}

/// Asserts the server captured exactly one message, the test message to `to`.
#[track_caller]
fn assert_one_test_message(server: &SmtpServer, to: &str) {
    let envelopes = server.envelopes();
    assert_eq!(envelopes.len(), 1, "{envelopes:?}");
    assert_eq!(envelopes[0].rcpt_tos, [to]);
    assert_eq!(envelopes[0].mail_from, "support@example.com");
    let message = &server.messages()[0];
    assert_eq!(message.header("Subject"), "Liaison test message");
    assert_eq!(message.header("To"), to);
    assert!(
        message.message_id().ends_with("@example.com>"),
        "{}",
        message.message_id()
    );
}

#[test]
fn mail_test_over_plain_smtp_reports_the_servers_reply() {
    let server = SmtpServer::plain();
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "ann@example.com").expect(0);
    let via = format!("via smtp://127.0.0.1:{}", server.port());
    assert!(
        run.stdout
            .contains(&format!("sent to ann@example.com {via}: 250 OK")),
        "{}",
        run.stdout
    );
    assert_one_test_message(&server, "ann@example.com");
}
