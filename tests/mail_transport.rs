//! `liaison mail test --to` against a real SMTP server (aiosmtpd): plain
//! SMTP, STARTTLS and implicit TLS with a private CA, AUTH, refusals, an
//! unreachable server, and the config errors that stop it before it sends.

use serde_json::Value;

use crate::common::smtp::{SmtpOptions, SmtpServer, Tls};
use crate::common::{csv_config, Run, Sandbox};

/// The address every test message goes to.
const TO: &str = "ann@example.com";

/// The user an AUTH server accepts.
const USER: &str = "relay";

/// That user's password (a URL writes the space as `%20`).
const PASSWORD: &str = "s3cret pass";

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

/// A capture server speaking `tls` (requiring AUTH as [`USER`] /
/// [`PASSWORD`] when `auth`).
fn server(tls: Tls, auth: bool) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        tls,
        auth: auth.then(|| (USER.to_owned(), PASSWORD.to_owned())),
        ..SmtpOptions::default()
    })
}

/// A sandbox mailing through `server` with `password` for [`USER`] in the
/// URL when given, and the server's CA as `mail.ca_file` when `trust`.
fn sandbox_for(server: &SmtpServer, password: Option<&str>, trust: bool) -> Sandbox {
    let url = server.url_with(password.map(|p| (USER, p)));
    if trust {
        sandbox(
            &url,
            &[&format!("ca_file: {}", server.ca().ca_file().display())],
        )
    } else {
        sandbox(&url, &[])
    }
}

/// A server speaking `tls` and a sandbox mailing through it, trusting its
/// CA when it has TLS.
fn relay(tls: Tls) -> (SmtpServer, Sandbox) {
    let server = server(tls, false);
    let s = sandbox_for(&server, None, tls != Tls::None);
    (server, s)
}

/// A TLS server (`tls`) and a sandbox mailing through it without its CA.
fn untrusted_relay(tls: Tls) -> (SmtpServer, Sandbox) {
    let server = server(tls, false);
    let s = sandbox_for(&server, None, false);
    (server, s)
}

/// A server speaking `tls` that requires AUTH, and a sandbox mailing
/// through it as [`USER`] with `password` as the URL writes it (trusting
/// the CA when there is TLS).
fn auth_relay(tls: Tls, password: &str) -> (SmtpServer, Sandbox) {
    let server = server(tls, true);
    let s = sandbox_for(&server, Some(password), tls != Tls::None);
    (server, s)
}

fn mail_test(s: &Sandbox, to: &str) -> Run {
    s.run(&["mail", "test", "--to", to])
}

/// `mail test --to TO` with `SMTP_PASSWORD` set (for `${env:SMTP_PASSWORD}`).
fn mail_test_with_password(s: &Sandbox, password: &str) -> Run {
    s.run_with_env(
        &["mail", "test", "--to", TO],
        &[("SMTP_PASSWORD", password)],
    )
}

/// `mail test --to TO --format json`, exiting `code`: its report.
#[track_caller]
fn mail_test_json(s: &Sandbox, code: i32) -> Value {
    s.run(&["mail", "test", "--to", TO, "--format", "json"])
        .expect(code)
        .json()
}

/// Asserts `stderr` is one line, and gives it.
#[track_caller]
fn one_line(stderr: &str) -> &str {
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    line
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

/// `mail test --to TO` exits 0 and says `said`; the server got the test
/// message and nothing else.
#[track_caller]
fn assert_sends_one(server: &SmtpServer, s: &Sandbox, said: &str) {
    let run = mail_test(s, TO).expect(0);
    assert!(run.stdout.contains(said), "{}", run.stdout);
    assert_one_test_message(server, TO);
}

#[test]
fn mail_test_over_plain_smtp_reports_the_servers_reply() {
    let (server, s) = relay(Tls::None);
    let said = format!(
        "sent to {TO} via smtp://127.0.0.1:{}: 250 OK",
        server.port()
    );
    assert_sends_one(&server, &s, &said);
}

#[test]
fn mail_test_json_reports_the_reply_and_the_transport() {
    let (server, s) = relay(Tls::None);
    let json = mail_test_json(&s, 0);
    assert_eq!(json["sent"], true, "{json}");
    assert_eq!(json["to"], TO);
    assert_eq!(json["via"], format!("smtp://127.0.0.1:{}", server.port()));
    assert_eq!(json["reply"], "250 OK");
}

#[test]
fn mail_test_over_starttls_trusts_the_private_ca_of_mail_ca_file() {
    let (server, s) = relay(Tls::Starttls);
    assert_sends_one(&server, &s, "via smtp+starttls://");
}

#[test]
fn mail_test_over_starttls_without_the_ca_fails_on_the_certificate_and_sends_nothing() {
    let (server, s) = untrusted_relay(Tls::Starttls);
    let run = mail_test(&s, TO).expect(1);
    let line = one_line(&run.stderr);
    assert!(
        line.contains(&format!(
            "error: not sent (temporary): {TO} via smtp+starttls://"
        )) && line.contains("invalid peer certificate: UnknownIssuer"),
        "{line}"
    );
    // Each part of the cause is said once (lettre nests its own errors).
    assert_eq!(line.matches("Connection error").count(), 1, "{line}");
    assert_eq!(server.count(), 0);
}

#[test]
fn mail_test_over_smtps_speaks_tls_from_the_first_byte() {
    let (server, s) = relay(Tls::Implicit);
    assert_sends_one(&server, &s, "via smtps://");
}

#[test]
fn a_plain_client_cannot_send_to_a_server_that_requires_starttls() {
    let server = server(Tls::Starttls, false);
    let plain = format!("smtp://127.0.0.1:{}", server.port());
    let run = mail_test(&sandbox(&plain, &[]), TO);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("530"), "{}", run.stderr);
    assert_eq!(server.count(), 0);
}

#[test]
fn mail_test_authenticates_with_a_password_from_the_environment() {
    let (server, s) = auth_relay(Tls::Starttls, "${env:SMTP_PASSWORD}");
    let run = mail_test_with_password(&s, "s3cret%20pass").expect(0);
    assert!(
        run.stdout.contains(&format!(
            "via smtp+starttls://relay@127.0.0.1:{}: 250 OK",
            server.port()
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    assert_one_test_message(&server, TO);
}

#[test]
fn mail_test_authenticates_over_smtps() {
    let (server, s) = auth_relay(Tls::Implicit, "s3cret%20pass");
    assert_sends_one(&server, &s, "via smtps://relay@");
}

#[test]
fn a_wrong_password_is_reported_with_the_servers_535() {
    let (server, s) = auth_relay(Tls::Starttls, "${env:SMTP_PASSWORD}");
    let run = mail_test_with_password(&s, "wrong").expect(1);
    assert!(
        run.stderr
            .starts_with(&format!("error: refused: {TO} via smtp+starttls://relay@"))
            && run.stderr.contains("535"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong"), "{}", run.stderr);
    assert_eq!(server.count(), 0);
}

#[test]
fn a_wrong_password_in_json_is_permanent_with_code_535() {
    let (_server, s) = auth_relay(Tls::None, "nope");
    let json = mail_test_json(&s, 1);
    assert_eq!(json["sent"], false, "{json}");
    assert_eq!(json["code"], 535, "{json}");
    assert_eq!(json["permanent"], true, "{json}");
}

#[test]
fn a_550_reply_is_reported_as_refused() {
    let (server, s) = relay(Tls::None);
    server.script_replies(&["550 5.1.1 no such user here"]);
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
    let (server, s) = relay(Tls::None);
    server.script_replies(&[
        "451 4.3.0 greylisted, try later",
        "451 4.3.0 still greylisted",
    ]);
    let run = mail_test(&s, TO).expect(1);
    assert!(
        run.stderr
            .starts_with(&format!("error: not sent (temporary): {TO}"))
            && run.stderr.contains("451")
            && run.stderr.contains("greylisted, try later"),
        "{}",
        run.stderr
    );
    let json = mail_test_json(&s, 1);
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
    mail_test(&s, TO).expect(0);
    assert_eq!(server.count(), 1);
}

#[test]
fn a_refused_port_is_a_clear_temporary_failure() {
    let port = crate::common::daemon::free_port();
    let s = sandbox(&format!("smtp://127.0.0.1:{port}"), &[]);
    let run = mail_test(&s, TO).expect(1);
    let line = one_line(&run.stderr);
    assert!(
        line.starts_with(&format!(
            "error: not sent (temporary): {TO} via smtp://127.0.0.1:{port}: 127.0.0.1:{port}:"
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
    let (server, s) = relay(Tls::None);
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
    let run = mail_test(&s, TO).expect(2);
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
    let server = server(Tls::Starttls, false);
    let s = sandbox(&server.url(), &["ca_file: bogus-ca.pem"]);
    s.write("bogus-ca.pem", NOT_A_CERTIFICATE);
    let file = s.config().display().to_string();
    let validate = s.run(&["validate"]).expect(2);
    let line = one_line(&validate.stderr);
    assert!(
        line.starts_with(&format!("{file}:10:12: mail.ca_file: ")) && line.contains("bogus-ca.pem"),
        "{line}"
    );
    // Every command loads the config first: nothing is sent.
    let run = mail_test(&s, TO).expect(2);
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
    let server = server(Tls::Starttls, false);
    let ca = server.ca();
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(ca.ca_file()).unwrap(),
        std::fs::read_to_string(ca.server_cert()).unwrap()
    );
    let s = sandbox(&server.url(), &["ca_file: bundle.pem"]);
    s.write("bundle.pem", &bundle);
    s.run(&["validate"]).expect(0);
    mail_test(&s, TO).expect(0);
}

#[test]
fn mail_test_over_smtps_without_the_ca_fails_on_the_certificate() {
    let (server, s) = untrusted_relay(Tls::Implicit);
    let run = mail_test(&s, TO).expect(1);
    let line = one_line(&run.stderr);
    assert!(line.contains("invalid peer certificate"), "{line}");
    assert_eq!(server.count(), 0);
}
