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

#[test]
fn mail_test_json_reports_the_reply_and_the_transport() {
    let server = SmtpServer::plain();
    let s = sandbox(&server.url(), &[]);
    let json = s
        .run(&[
            "mail",
            "test",
            "--to",
            "ann@example.com",
            "--format",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(json["sent"], true, "{json}");
    assert_eq!(json["to"], "ann@example.com");
    assert_eq!(json["via"], format!("smtp://127.0.0.1:{}", server.port()));
    assert_eq!(json["reply"], "250 OK");
}

#[test]
fn mail_test_over_starttls_trusts_the_private_ca_of_mail_ca_file() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Starttls,
        ..SmtpOptions::default()
    });
    let s = sandbox(&server.url(), &[&ca_key(&server)]);
    let run = mail_test(&s, "ann@example.com").expect(0);
    assert!(
        run.stdout.contains("via smtp+starttls://"),
        "{}",
        run.stdout
    );
    assert_one_test_message(&server, "ann@example.com");
}

#[test]
fn mail_test_over_starttls_without_the_ca_fails_on_the_certificate_and_sends_nothing() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Starttls,
        ..SmtpOptions::default()
    });
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "ann@example.com").expect(1);
    assert!(
        run.stderr
            .contains("error: not sent (temporary): ann@example.com via smtp+starttls://")
            && run
                .stderr
                .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // Each part of the cause is said once (lettre nests its own errors).
    assert_eq!(
        run.stderr.matches("Connection error").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(server.count(), 0);
}

#[test]
fn mail_test_over_smtps_speaks_tls_from_the_first_byte() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Implicit,
        ..SmtpOptions::default()
    });
    let s = sandbox(&server.url(), &[&ca_key(&server)]);
    let run = mail_test(&s, "ann@example.com").expect(0);
    assert!(run.stdout.contains("via smtps://"), "{}", run.stdout);
    assert_one_test_message(&server, "ann@example.com");
}

#[test]
fn a_plain_client_cannot_send_to_a_server_that_requires_starttls() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Starttls,
        ..SmtpOptions::default()
    });
    let plain = format!("smtp://127.0.0.1:{}", server.port());
    let run = mail_test(&sandbox(&plain, &[]), "ann@example.com");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("530"), "{}", run.stderr);
    assert_eq!(server.count(), 0);
}

fn auth_server(tls: Tls) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        tls,
        auth: Some(("relay".to_owned(), "s3cret pass".to_owned())),
        ..SmtpOptions::default()
    })
}

#[test]
fn mail_test_authenticates_with_a_password_from_the_environment() {
    let server = auth_server(Tls::Starttls);
    let url = server.url_with(Some(("relay", "${env:SMTP_PASSWORD}")));
    let s = sandbox(&url, &[&ca_key(&server)]);
    let run = s
        .run_with_env(
            &["mail", "test", "--to", "ann@example.com"],
            &[("SMTP_PASSWORD", "s3cret%20pass")],
        )
        .expect(0);
    assert!(
        run.stdout.contains(&format!(
            "via smtp+starttls://relay@127.0.0.1:{}: 250 OK",
            server.port()
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    assert_one_test_message(&server, "ann@example.com");
}

#[test]
fn mail_test_authenticates_over_smtps() {
    let server = auth_server(Tls::Implicit);
    let s = sandbox(
        &server.url_with(Some(("relay", "s3cret%20pass"))),
        &[&ca_key(&server)],
    );
    mail_test(&s, "ann@example.com").expect(0);
    assert_one_test_message(&server, "ann@example.com");
}

#[test]
fn a_wrong_password_is_reported_with_the_servers_535() {
    let server = auth_server(Tls::Starttls);
    let s = sandbox(
        &server.url_with(Some(("relay", "${env:SMTP_PASSWORD}"))),
        &[&ca_key(&server)],
    );
    let run = s
        .run_with_env(
            &["mail", "test", "--to", "ann@example.com"],
            &[("SMTP_PASSWORD", "wrong")],
        )
        .expect(1);
    assert!(
        run.stderr
            .starts_with("error: refused: ann@example.com via smtp+starttls://relay@")
            && run.stderr.contains("535"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong"), "{}", run.stderr);
    assert_eq!(server.count(), 0);
}

#[test]
fn a_wrong_password_in_json_is_permanent_with_code_535() {
    let server = auth_server(Tls::None);
    let s = sandbox(&server.url_with(Some(("relay", "nope"))), &[]);
    let json = s
        .run(&[
            "mail",
            "test",
            "--to",
            "ann@example.com",
            "--format",
            "json",
        ])
        .expect(1)
        .json();
    assert_eq!(json["sent"], false, "{json}");
    assert_eq!(json["code"], 535, "{json}");
    assert_eq!(json["permanent"], true, "{json}");
}

#[test]
fn a_550_reply_is_reported_as_refused() {
    let server = SmtpServer::plain();
    server.script_replies(&["550 5.1.1 no such user here"]);
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "ghost@example.com").expect(1);
    assert!(
        run.stderr
            .starts_with("error: refused: ghost@example.com via smtp://")
            && run.stderr.contains("550")
            && run.stderr.contains("no such user here"),
        "{}",
        run.stderr
    );
    assert_eq!(server.count(), 0);
}

#[test]
fn a_451_reply_is_reported_as_temporary_and_json_says_so() {
    let server = SmtpServer::plain();
    server.script_replies(&[
        "451 4.3.0 greylisted, try later",
        "451 4.3.0 still greylisted",
    ]);
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "ann@example.com").expect(1);
    assert!(
        run.stderr
            .starts_with("error: not sent (temporary): ann@example.com")
            && run.stderr.contains("451")
            && run.stderr.contains("greylisted, try later"),
        "{}",
        run.stderr
    );
    let json = s
        .run(&[
            "mail",
            "test",
            "--to",
            "ann@example.com",
            "--format",
            "json",
        ])
        .expect(1)
        .json();
    assert_eq!(json["code"], 451, "{json}");
    assert_eq!(json["permanent"], false, "{json}");
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .contains("still greylisted"),
        "{json}"
    );
    // The script is used up: the next message goes through.
    mail_test(&s, "ann@example.com").expect(0);
    assert_eq!(server.count(), 1);
}

#[test]
fn a_refused_port_is_a_clear_temporary_failure() {
    let port = crate::common::daemon::free_port();
    let s = sandbox(&format!("smtp://127.0.0.1:{port}"), &[]);
    let run = mail_test(&s, "ann@example.com").expect(1);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(&format!(
            "error: not sent (temporary): ann@example.com via smtp://127.0.0.1:{port}: 127.0.0.1:{port}:"
        )) && line.contains("refused"),
        "{line}"
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn mail_test_without_to_is_a_usage_error() {
    let s = sandbox("smtp://127.0.0.1:1", &[]);
    let run = s.run(&["mail", "test"]).expect(2);
    assert!(run.stderr.contains("--to"), "{}", run.stderr);
}

#[test]
fn mail_test_to_a_non_address_is_a_usage_error_and_sends_nothing() {
    let server = SmtpServer::plain();
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "not an address").expect(2);
    assert!(
        run.stderr
            .starts_with("error: --to \"not an address\": not an address"),
        "{}",
        run.stderr
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn mail_test_without_mail_configured_is_a_config_error() {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    let run = s
        .run(&["mail", "test", "--to", "ann@example.com"])
        .expect(2);
    assert!(
        run.stderr.contains("mail: is not configured"),
        "{}",
        run.stderr
    );
}

/// PEM armour around bytes that are no certificate ("not a certificate",
/// valid base64): enough for a check that only looks for the marker.
const NOT_A_CERTIFICATE: &str =
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

#[test]
fn an_unusable_ca_file_is_a_config_error() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Starttls,
        ..SmtpOptions::default()
    });
    let s = sandbox(&server.url(), &["ca_file: bogus-ca.pem"]);
    s.write("bogus-ca.pem", NOT_A_CERTIFICATE);
    let file = s.config().display().to_string();
    let validate = s.run(&["validate"]).expect(2);
    assert_eq!(validate.stderr.lines().count(), 1, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .starts_with(&format!("{file}:10:12: mail.ca_file: "))
            && validate.stderr.contains("bogus-ca.pem"),
        "{}",
        validate.stderr
    );
    // Every command loads the config first: nothing is sent.
    let run = mail_test(&s, "ann@example.com").expect(2);
    assert!(run.stderr.contains("mail.ca_file"), "{}", run.stderr);
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_ca_file_with_broken_pem_is_a_config_error() {
    let s = sandbox("smtp+starttls://127.0.0.1:1", &["ca_file: broken.pem"]);
    s.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n",
    );
    let run = s.run(&["validate"]).expect(2);
    assert!(
        run.stderr.contains("mail.ca_file: ") && run.stderr.contains("broken.pem"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_ca_file_that_is_a_server_certificate_and_key_still_validates() {
    // A bundle may hold more than CA certificates (here the CA and the
    // server's certificate): each one is parsed, none is refused for its role.
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Starttls,
        ..SmtpOptions::default()
    });
    let ca = server.ca();
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(ca.ca_file()).unwrap(),
        std::fs::read_to_string(ca.server_cert()).unwrap()
    );
    let s = sandbox(&server.url(), &["ca_file: bundle.pem"]);
    s.write("bundle.pem", &bundle);
    s.run(&["validate"]).expect(0);
    mail_test(&s, "ann@example.com").expect(0);
}

#[test]
fn mail_test_over_smtps_without_the_ca_fails_on_the_certificate() {
    let server = SmtpServer::start(SmtpOptions {
        tls: Tls::Implicit,
        ..SmtpOptions::default()
    });
    let s = sandbox(&server.url(), &[]);
    let run = mail_test(&s, "ann@example.com").expect(1);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("invalid peer certificate"), "{line}");
    assert_eq!(server.count(), 0);
}
