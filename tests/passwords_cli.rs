//! `users set-password`: the policy, the stored Argon2id hash, and tokens that
//! are good once, expire, and are revoked by a later password set.

use std::io::Write;
use std::process::{Command, Stdio};

use argon2::{Argon2, PasswordVerifier};
use liaison::model::UserId;
use liaison::store::{SqliteStore, Store};

use crate::common::{Run, Sandbox, CONFIG};

fn seeded(config: &str) -> Sandbox {
    let s = Sandbox::new(config);
    s.write(
        "partners.csv",
        "contact_id,name,email,account_id\nc1,Jiří Dvořák,jiri@acme.example,acme\n",
    );
    s.sync(0);
    s
}

/// `liaison users set-password ARGS` with `password` and a newline on stdin.
fn set_password(s: &Sandbox, args: &[&str], password: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .arg("--config")
        .arg(s.config())
        .args(["users", "set-password"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn stored_hash(s: &Sandbox, login: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    conn.query_row(
        "SELECT password_hash FROM users WHERE login = ?1",
        [login],
        |r| r.get(0),
    )
    .unwrap()
}

fn user_id(s: &Sandbox, login: &str) -> UserId {
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    UserId(
        conn.query_row("SELECT id FROM users WHERE login = ?1", [login], |r| {
            r.get(0)
        })
        .unwrap(),
    )
}

/// A new token of `login` expiring `ttl_ms` from now (negative: already expired).
fn issue_token(s: &Sandbox, login: &str, ttl_ms: i64) -> String {
    let user = user_id(s, login);
    let (token, hash) = liaison::password::new_token().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    store
        .create_password_token(user, &hash, now + ttl_ms, now)
        .unwrap();
    token
}

#[test]
fn a_password_breaking_the_policy_lists_every_broken_rule() {
    let s = seeded(CONFIG);
    let run = set_password(&s, &["jiri.dvorak"], "abc").expect(2);
    for rule in ["6 characters", "upper-case", "digit", "special"] {
        assert!(run.stderr.contains(rule), "{rule} missing:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("lower-case"), "{}", run.stderr);
    assert_eq!(stored_hash(&s, "jiri.dvorak"), None);
}

#[test]
fn the_policy_is_configurable() {
    let config = format!("{CONFIG}password_policy:\n  min_length: 3\n  upper: false\n  special: false\n  digit: false\n");
    let s = seeded(&config);
    set_password(&s, &["jiri.dvorak"], "abc").expect(0);
    let bad = Sandbox::new(&format!(
        "{CONFIG}password_policy:\n  min_lenght: 3\n  upper: yes\n"
    ));
    let run = bad.run(&["validate"]).expect(2);
    assert!(
        run.stderr.contains("password_policy.min_lenght"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("password_policy.upper"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_good_password_is_stored_as_an_argon2id_hash() {
    let s = seeded(CONFIG);
    let run = set_password(&s, &["jiri.dvorak", "--actor", "admin"], "Secr3t!pw").expect(0);
    let hash = stored_hash(&s, "jiri.dvorak").unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!run.stdout.contains(&hash) && !run.stderr.contains(&hash));
    Argon2::default()
        .verify_password(b"Secr3t!pw", hash.as_str())
        .unwrap();
    assert!(Argon2::default()
        .verify_password(b"wrong", hash.as_str())
        .is_err());
    set_password(&s, &["nobody"], "Secr3t!pw").expect(1);
}

#[test]
fn a_token_is_good_once() {
    let s = seeded(CONFIG);
    let token = issue_token(&s, "jiri.dvorak", 3_600_000);
    set_password(&s, &["--token", &token], "Secr3t!pw").expect(0);
    let hash = stored_hash(&s, "jiri.dvorak").unwrap();
    Argon2::default()
        .verify_password(b"Secr3t!pw", hash.as_str())
        .unwrap();
    let again = set_password(&s, &["--token", &token], "Other3t!pw").expect(1);
    assert!(again.stderr.contains("already used"), "{}", again.stderr);
    assert_eq!(stored_hash(&s, "jiri.dvorak").unwrap(), hash);
    let unknown = set_password(&s, &["--token", "0123"], "Other3t!pw").expect(1);
    assert!(unknown.stderr.contains("not known"), "{}", unknown.stderr);
}

#[test]
fn an_expired_token_is_refused() {
    let s = seeded(CONFIG);
    let token = issue_token(&s, "jiri.dvorak", -1);
    let run = set_password(&s, &["--token", &token], "Secr3t!pw").expect(1);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert_eq!(stored_hash(&s, "jiri.dvorak"), None);
}

#[test]
fn setting_a_password_revokes_open_tokens() {
    let s = seeded(CONFIG);
    let token = issue_token(&s, "jiri.dvorak", 3_600_000);
    set_password(&s, &["jiri.dvorak"], "Secr3t!pw").expect(0);
    let run = set_password(&s, &["--token", &token], "Other3t!pw").expect(1);
    assert!(run.stderr.contains("already used"), "{}", run.stderr);
}
