//! LDAP failures through the binary: each fails the run with a message
//! naming the source and the server (never the password), and nobody is
//! deprovisioned. TLS with the right and a wrong CA, StartTLS.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{json, Value};

use crate::common::slapd::{self, CutProxy, Slapd, SlapdOptions};
use crate::common::smtp::TestCa;
use crate::common::Sandbox;
use crate::ldap_source::{config, run, sync, three, users};

/// Every user is still active.
#[track_caller]
fn nobody_deprovisioned(s: &Sandbox, expected: usize) {
    let all = users(s);
    assert_eq!(all.len(), expected);
    assert!(all.iter().all(|u| u["status"] == "active"), "{all:?}");
}

/// The failure of a failed run, checked for the source's and server's names.
#[track_caller]
fn failure(out: &Value, kind: &str, server: &str) -> String {
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["failure_kind"], kind, "{out}");
    let text = out["failure"].as_str().unwrap().to_owned();
    assert!(text.contains("source \"dir\""), "{text}");
    assert!(text.contains(server), "{text}");
    assert!(!text.contains(slapd::READER_PASSWORD), "{text}");
    text
}

#[test]
fn a_wrong_password_fails_the_run_as_source_auth_and_deprovisions_nobody() {
    let slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    sync(&s, 0);
    let out = s
        .run_with_env(
            &["sync", "--once", "--format", "json"],
            &[("LDAP_PASSWORD", "Wr0ng-Passw0rd")],
        )
        .expect(1);
    assert!(!out.stdout.contains("Wr0ng") && !out.stderr.contains("Wr0ng"));
    let out = out.json();
    let text = failure(&out, "source_auth", &slapd.url().replace("ldap://", ""));
    assert!(text.contains("invalidCredentials"), "{text}");
    assert_eq!(out["retryable"], false, "{out}");
    nobody_deprovisioned(&s, 3);
}

#[test]
fn an_unreachable_server_fails_the_run_and_deprovisions_nobody() {
    let mut slapd = Slapd::with(&three());
    let s = Sandbox::new(&config(&slapd.url(), &[]));
    sync(&s, 0);
    slapd.stop();
    let out = sync(&s, 1);
    let text = failure(
        &out,
        "source_unreachable",
        &format!("127.0.0.1:{}", slapd.port()),
    );
    assert!(text.contains("connection refused"), "{text}");
    assert_eq!(out["retryable"], true, "{out}");
    nobody_deprovisioned(&s, 3);
    // Back again: the next run applies as usual.
    slapd.restart();
    assert_eq!(sync(&s, 0)["status"], "applied");
}

#[test]
fn the_server_killed_in_the_middle_of_a_paged_search_fails_the_run() {
    let slapd = Slapd::with(&slapd::generated(300));
    let s = Sandbox::new(&config(&slapd.url(), &["page_size: 20"]));
    assert_eq!(sync(&s, 0)["created"], 300);
    // Through a proxy that kills slapd once 30 kB came back: a few pages in.
    let pid = slapd.pid().unwrap();
    let proxy = CutProxy::start(slapd.port(), 30_000, move || {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    s.write("liaison.yaml", &config(&proxy.url(), &["page_size: 20"]));
    let out = run(&s, &["sync", "--once", "--full", "--format", "json"])
        .expect(1)
        .json();
    let text = failure(&out, "source_incomplete", &proxy.url());
    assert!(
        text.contains("closed the connection") || text.contains("connection failed"),
        "{text}"
    );
    assert!(text.contains("page"), "{text}");
    nobody_deprovisioned(&s, 300);
}

#[test]
fn a_size_limit_that_stops_a_paged_search_fails_the_run_with_the_servers_words() {
    let options = SlapdOptions {
        size_limit: Some(30),
        paged_past_limit: false,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &slapd::generated(80));
    let s = Sandbox::new(&config(&slapd.url(), &["page_size: 20"]));
    let out = sync(&s, 1);
    let text = failure(
        &out,
        "source_incomplete",
        &slapd.url().replace("ldap://", ""),
    );
    assert!(text.contains("sizeLimitExceeded (4)"), "{text}");
    assert!(text.contains("size limit"), "{text}");
    assert!(users(&s).is_empty(), "nothing applied");
}

#[test]
fn ldaps_works_with_the_right_ca_and_is_refused_with_a_wrong_one() {
    let options = SlapdOptions {
        tls: true,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &three());
    let ca = format!("ca_file: {}", slapd.ca_file().display());
    let s = Sandbox::new(&config(&slapd.ldaps_url(), &[&ca]));
    assert_eq!(sync(&s, 0)["created"], 3);

    let other = TestCa::new(&s.path().join("other-ca"));
    let wrong = format!("ca_file: {}", other.ca_file().display());
    s.write("liaison.yaml", &config(&slapd.ldaps_url(), &[&wrong]));
    let out = sync(&s, 1);
    let text = failure(&out, "source_unreachable", &slapd.ldaps_url());
    assert!(
        text.contains("TLS handshake failed") && text.contains("certificate"),
        "{text}"
    );
    nobody_deprovisioned(&s, 3);
    // Without ca_file, the system's roots do not know the test CA either.
    s.write("liaison.yaml", &config(&slapd.ldaps_url(), &[]));
    let text = failure(&sync(&s, 1), "source_unreachable", &slapd.ldaps_url());
    assert!(text.contains("certificate"), "{text}");
}

#[test]
fn starttls_upgrades_a_plain_connection_and_verifies_it() {
    let options = SlapdOptions {
        tls: true,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &three());
    let ca = format!("ca_file: {}", slapd.ca_file().display());
    let s = Sandbox::new(&config(&slapd.url(), &["starttls: true", &ca]));
    assert_eq!(sync(&s, 0)["created"], 3);
    assert!(slapd.log().contains("STARTTLS"), "{}", slapd.log());
    let other = TestCa::new(&s.path().join("other-ca"));
    let wrong = format!("ca_file: {}", other.ca_file().display());
    s.write(
        "liaison.yaml",
        &config(&slapd.url(), &["starttls: true", &wrong]),
    );
    let text = failure(&sync(&s, 1), "source_unreachable", &slapd.url());
    assert!(text.contains("certificate"), "{text}");
    // A server without TLS refuses StartTLS: the run fails, never in clear text.
    let plain = Slapd::with(&three());
    s.write(
        "liaison.yaml",
        &config(&plain.url(), &["starttls: true", &ca]),
    );
    let text = failure(&sync(&s, 1), "source_unreachable", &plain.url());
    assert!(text.to_lowercase().contains("starttls"), "{text}");
    assert!(
        !plain.log().contains("BIND dn=\"cn=reader"),
        "no bind in clear text"
    );
    nobody_deprovisioned(&s, 3);
}

/// One BER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn string(text: &str) -> Vec<u8> {
    tlv(0x04, text.as_bytes())
}

/// An LDAPMessage with `id`, `op` and optional controls.
fn message(id: u8, op: Vec<u8>, controls: Option<Vec<u8>>) -> Vec<u8> {
    let mut body = tlv(0x02, &[id]);
    body.extend(op);
    if let Some(c) = controls {
        body.extend(tlv(0xa0, &c));
    }
    tlv(0x30, &body)
}

/// A result (`tag`: 0x61 bind, 0x65 search done) with code 0.
fn success(tag: u8) -> Vec<u8> {
    tlv(tag, &[tlv(0x0a, &[0]), string(""), string("")].concat())
}

/// Reads one LDAPMessage from the client; `None` at its end.
fn read_message(conn: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).ok()?;
    let len = match head[1] {
        n if n < 0x80 => n as usize,
        n => {
            let mut bytes = vec![0u8; (n & 0x7f) as usize];
            conn.read_exact(&mut bytes).ok()?;
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
        }
    };
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some(body)
}

/// A fake LDAP server on a free port answering its `n`th request (1-based,
/// with that request's message id) with what `reply` gives, until `None`.
fn fake_server(reply: fn(u8, u8) -> Option<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut n = 0u8;
        while let Some(body) = read_message(&mut conn) {
            n += 1;
            let id = body.get(2).copied().unwrap_or(n);
            let Some(bytes) = reply(n, id) else { break };
            if conn.write_all(&bytes).is_err() {
                break;
            }
        }
    });
    port
}

/// A root DSE offering RFC 4533 and paging, for request `id`.
fn root_dse(id: u8) -> Vec<u8> {
    let values = tlv(
        0x31,
        &[
            string("1.3.6.1.4.1.4203.1.9.1.1"),
            string("1.2.840.113556.1.4.319"),
        ]
        .concat(),
    );
    let attr = tlv(0x30, &[string("supportedControl"), values].concat());
    let entry = tlv(0x64, &[string(""), tlv(0x30, &attr)].concat());
    [message(id, entry, None), message(id, success(0x65), None)].concat()
}

#[test]
fn a_malformed_sync_reply_fails_the_run_instead_of_the_process() {
    // The server accepts the bind, offers RFC 4533, and answers the sync
    // search with a Sync Done control whose value is not the sequence RFC
    // 4533 says: the LDAP library's control parser panics on it.
    let port = fake_server(|n, id| match n {
        1 => Some(message(id, success(0x61), None)),
        2 => Some(root_dse(id)),
        3 => {
            let control = tlv(
                0x30,
                &[string("1.3.6.1.4.1.4203.1.9.1.3"), string("\u{4}\u{0}")].concat(),
            );
            Some(message(id, success(0x65), Some(control)))
        }
        _ => None,
    });
    let s = Sandbox::new(&config(&format!("ldap://127.0.0.1:{port}"), &[]));
    let out = sync(&s, 1);
    let text = failure(&out, "source_invalid", &format!("127.0.0.1:{port}"));
    assert!(text.contains("could not be decoded"), "{text}");
    assert_eq!(out["created"], json!(0));
}

#[test]
fn a_malformed_message_kills_only_the_connection_and_fails_the_run() {
    // A control that is not a sequence: the library's message decoder, in
    // the connection's own task, panics on it.
    let port = fake_server(|n, id| match n {
        1 => Some(message(id, success(0x61), None)),
        2 => Some(message(id, success(0x65), Some(string("not a control")))),
        _ => None,
    });
    let s = Sandbox::new(&config(&format!("ldap://127.0.0.1:{port}"), &[]));
    let out = sync(&s, 1);
    let text = failure(&out, "source_invalid", &format!("127.0.0.1:{port}"));
    assert!(
        text.contains("could not be decoded while reading the root DSE"),
        "{text}"
    );
}

#[test]
fn a_server_that_never_answers_fails_the_run_after_timeout() {
    // The bind is read and never answered.
    let port = fake_server(|_, _| Some(Vec::new()));
    let s = Sandbox::new(&config(
        &format!("ldap://127.0.0.1:{port}"),
        &["timeout: 1s"],
    ));
    let started = std::time::Instant::now();
    let out = sync(&s, 1);
    let text = failure(&out, "source_unreachable", &format!("127.0.0.1:{port}"));
    assert!(
        text.contains("no answer within timeout (1s) while binding"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
