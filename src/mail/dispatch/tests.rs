//! The dispatcher on a real SQLite store seeded by a real sync of a CSV
//! source, with an injected clock and a scripted transport that records what
//! it is given.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use super::*;
use crate::config::{self, StoreLocation};
use crate::mail::Accepted;
use crate::store::{Outbox, OutboxState, SqliteStore, TokenCheck};
use crate::sync::{run_source, RunOptions};

/// Tuesday 2026-12-01 10:00 UTC (11:00 in Prague).
const T0: i64 = 1_796_119_200_000;

/// A transport that answers from a script (then `250 OK`) and keeps what it
/// was asked to send.
#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<Result<Accepted, SendError>>>,
    sent: Mutex<Vec<String>>,
    /// Called during each delivery (to change the store behind the dispatcher).
    during: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Scripted {
    fn replying(replies: Vec<Result<Accepted, SendError>>) -> Scripted {
        Scripted {
            replies: Mutex::new(replies.into()),
            ..Scripted::default()
        }
    }

    fn messages(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

impl Deliver for Scripted {
    async fn deliver(&self, message: &lettre::Message) -> Result<Accepted, SendError> {
        if let Some(during) = &self.during {
            during();
        }
        let reply = self.replies.lock().unwrap().pop_front();
        let reply = reply.unwrap_or_else(|| {
            Ok(Accepted {
                reply: "250 OK".into(),
            })
        });
        if reply.is_ok() {
            let text = String::from_utf8(message.formatted()).unwrap();
            self.sent.lock().unwrap().push(text);
        }
        reply
    }
}

fn transient(code: u16) -> Result<Accepted, SendError> {
    Err(SendError::Transient {
        code: Some(code),
        reason: "try again later".into(),
    })
}

fn permanent(code: u16) -> Result<Accepted, SendError> {
    Err(SendError::Permanent {
        code: Some(code),
        reason: "no such user".into(),
    })
}

/// A config and store with `users` partners synced (and welcomed) at `T0`.
struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    clock: AtomicI64,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn new(users: usize, mail_keys: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config_text = format!(
            "store: sqlite://liaison.db
sources:
  - name: partners
    type: csv
    path: partners.csv
portal:
  url: https://portal.example.com/login
safety:
  max_deprovision: 100
  max_deprovision_ratio: 1.0
api:
  listen: 127.0.0.1:1
  public_url: https://liaison.example.com
mail:
  transport: file://mail
  from: \"Support <support@example.com>\"
{mail_keys}"
        );
        std::fs::write(dir.path().join("liaison.yaml"), config_text).unwrap();
        let setup = Setup {
            config: config::load(&dir.path().join("liaison.yaml")).unwrap(),
            dir,
            clock: AtomicI64::new(T0),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        };
        setup.write_partners(users);
        setup.sync();
        setup
    }

    fn write_partners(&self, users: usize) {
        let mut csv = String::from("contact_id,name,email,account_id,account_name\n");
        for i in 1..=users {
            csv.push_str(&format!("c{i},User {i},u{i}@acme.example,a1,Acme\n"));
        }
        std::fs::write(self.dir.path().join("partners.csv"), csv).unwrap();
    }

    fn sync(&self) {
        let mut store = self.store();
        let opts = RunOptions {
            now_ms: self.now(),
            allow_mass_deprovision: true,
            ..RunOptions::default()
        };
        run_source(&self.config, &self.config.sources[0], &mut store, opts).unwrap();
    }

    fn store(&self) -> SqliteStore {
        let StoreLocation::Sqlite(path) = &self.config.store else {
            panic!("sqlite");
        };
        SqliteStore::open(path).unwrap()
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn dispatcher<'a>(&self, deliver: &'a Scripted) -> Dispatcher<&'a Scripted> {
        let templates = Templates::for_config(&self.config).unwrap();
        let settings = DispatchSettings::of(&self.config).unwrap();
        Dispatcher::new(deliver, templates, settings)
    }

    fn flush(&self, deliver: &Scripted) -> Flush {
        let clock = || self.now();
        self.dispatcher(deliver)
            .flush(self.store(), &clock, self.runtime.handle())
    }

    fn counts(&self) -> Vec<(String, u64)> {
        let mut counts: Vec<(String, u64)> =
            self.store().outbox_counts().unwrap().into_iter().collect();
        counts.retain(|(_, n)| *n > 0);
        counts
    }
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

/// The set-password token in a message's link (its text part is
/// quoted-printable: soft line breaks and `=3D` undone first).
fn token_in(message: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=3D", "=");
    let at = text.find("token=").expect("a link with a token") + "token=".len();
    text[at..at + 64].to_owned()
}

impl<D: Deliver + Sync> Deliver for &D {
    async fn deliver(&self, message: &lettre::Message) -> Result<Accepted, SendError> {
        (**self).deliver(message).await
    }
}

#[test]
fn each_due_welcome_goes_once_with_a_working_single_use_link() {
    let s = Setup::new(3, "");
    let deliver = Scripted::default();
    let flush = s.flush(&deliver);
    assert_eq!(flush.sent.welcome, 3, "{:?}", flush.stopped);
    assert!(flush.stopped.is_none());
    assert_eq!(s.counts(), counts(&[("sent", 3)]));

    let messages = deliver.messages();
    assert!(messages[0].contains("Message-ID: <"), "{}", messages[0]);
    assert!(messages[0].contains("https://liaison.example.com/password?token="));
    let token = token_in(&messages[0]);
    let mut store = s.store();
    let hash = crate::password::token_hash(&token);
    assert!(matches!(
        store
            .redeem_password_token(&hash, "$argon2id$x", s.now(), "test")
            .unwrap(),
        TokenCheck::Valid(_)
    ));
    assert_eq!(
        store
            .redeem_password_token(&hash, "$argon2id$y", s.now(), "test")
            .unwrap(),
        TokenCheck::Used
    );

    // A second flush finds nothing to send.
    let again = Scripted::default();
    assert_eq!(s.flush(&again).sent.total(), 0);
    assert!(again.messages().is_empty());
}

#[test]
fn the_welcome_token_expires_after_its_ttl() {
    let s = Setup::new(1, "  welcome:\n    token_ttl: 1h\n");
    let deliver = Scripted::default();
    s.flush(&deliver);
    let token = token_in(&deliver.messages()[0]);
    let hash = crate::password::token_hash(&token);
    let late = s.now() + 3_600_001;
    assert_eq!(
        s.store()
            .redeem_password_token(&hash, "$argon2id$x", late, "test")
            .unwrap(),
        TokenCheck::Expired
    );
}

#[test]
fn a_4xx_reply_is_retried_with_backoff_then_sent() {
    let s = Setup::new(1, "");
    let flush = s.flush(&Scripted::replying(vec![transient(451)]));
    assert_eq!((flush.retried, flush.sent.total()), (1, 0));
    let due = s.store().outbox_due(i64::MAX, 10).unwrap();
    assert_eq!(due[0].not_before_ms, T0 + 60_000);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].last_error.as_deref(), Some("451 try again later"));

    // Not before its time.
    s.advance(59_000);
    assert_eq!(s.flush(&Scripted::default()).sent.total(), 0);
    s.advance(1_000);
    let deliver = Scripted::default();
    assert_eq!(s.flush(&deliver).sent.welcome, 1);
    assert_eq!(s.counts(), counts(&[("sent", 1)]));
    assert_eq!(retry_after(2), Duration::from_secs(120));
}

#[test]
fn a_5xx_reply_fails_at_once_and_the_reason_is_kept() {
    let s = Setup::new(2, "");
    let flush = s.flush(&Scripted::replying(vec![permanent(550)]));
    assert_eq!((flush.failed.welcome, flush.sent.welcome), (1, 1));
    let failures = s.store().outbox_failures(10).unwrap();
    assert_eq!(failures[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(failures[0].attempts, 1);
}

#[test]
fn transient_failures_end_failed_after_max_attempts() {
    let s = Setup::new(1, "  max_attempts: 2\n");
    s.flush(&Scripted::replying(vec![transient(421)]));
    s.advance(60_000);
    let flush = s.flush(&Scripted::replying(vec![transient(421)]));
    assert_eq!(flush.failed.welcome, 1);
    let failures = s.store().outbox_failures(10).unwrap();
    assert_eq!(
        failures[0].last_error.as_deref(),
        Some("gave up after 2 attempts; the last: 421 try again later")
    );
}

#[test]
fn mail_due_outside_the_window_waits_for_it() {
    let window =
        "  window:\n    days: mon-fri\n    from: 8\n    to: 18\n  timezone: Europe/Prague\n";
    let s = Setup::new(2, window);
    // Saturday 2026-12-05 12:00 UTC.
    s.clock
        .store(T0 + 4 * 86_400_000 + 2 * 3_600_000, Ordering::SeqCst);
    let deliver = Scripted::default();
    let flush = s.flush(&deliver);
    assert_eq!(flush.sent.total(), 0);
    match flush.stopped {
        Some(Stopped::Window { opens: Some(at) }) => {
            assert_eq!(at.to_rfc3339(), "2026-12-07T07:00:00+00:00")
        }
        other => panic!("{other:?}"),
    }
    assert!(deliver.messages().is_empty());
    // Monday 08:00 Prague.
    s.clock
        .store(T0 + 6 * 86_400_000 - 3 * 3_600_000, Ordering::SeqCst);
    assert_eq!(s.flush(&Scripted::default()).sent.welcome, 2);
}

#[test]
fn the_rate_limit_counts_what_went_out_in_the_last_minute() {
    let s = Setup::new(5, "  rate_per_minute: 2\n");
    let flush = s.flush(&Scripted::default());
    assert_eq!(flush.sent.welcome, 2);
    assert!(matches!(
        flush.stopped,
        Some(Stopped::RateLimit { per_minute: 2 })
    ));
    s.advance(30_000);
    assert_eq!(s.flush(&Scripted::default()).sent.total(), 0);
    s.advance(30_000);
    assert_eq!(s.flush(&Scripted::default()).sent.total(), 2);
    s.advance(60_000);
    assert_eq!(s.flush(&Scripted::default()).sent.total(), 1);
    assert_eq!(s.counts(), counts(&[("sent", 5)]));
}

#[test]
fn a_disabled_users_queued_welcome_is_never_sent() {
    let s = Setup::new(2, "");
    s.write_partners(1);
    s.advance(1_000);
    s.sync();
    let deliver = Scripted::default();
    let flush = s.flush(&deliver);
    assert_eq!(flush.sent.welcome, 1);
    assert_eq!(deliver.messages().len(), 1);
    assert!(deliver.messages()[0].contains("u1@acme.example"));
    assert_eq!(s.counts(), counts(&[("cancelled", 1), ("sent", 1)]));
}

#[test]
fn mail_a_dead_dispatcher_left_sending_is_sent_again() {
    let s = Setup::new(2, "");
    let mut store = s.store();
    let first = store.outbox_due(T0, 1).unwrap().remove(0);
    assert!(store.outbox_claim(first.id, T0).unwrap());
    drop(store);
    let flush = s.flush(&Scripted::default());
    assert_eq!((flush.requeued, flush.sent.welcome), (1, 2));
}

#[test]
fn a_message_that_cannot_be_marked_sent_stops_the_dispatcher() {
    let s = Setup::new(3, "");
    let StoreLocation::Sqlite(path) = s.config.store.clone() else {
        panic!("sqlite");
    };
    // While the first message is being delivered, its row disappears, so
    // marking it sent fails.
    let deliver = Scripted {
        during: Some(Box::new(move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute("DELETE FROM outbox WHERE state = 'sending'", [])
                .unwrap();
        })),
        ..Scripted::default()
    };
    let templates = Templates::for_config(&s.config).unwrap();
    let mut settings = DispatchSettings::of(&s.config).unwrap();
    settings.concurrency = 1;
    let clock = || s.now();
    let flush =
        Dispatcher::new(&deliver, templates, settings).flush(s.store(), &clock, s.runtime.handle());
    assert!(flush.is_error());
    assert!(
        matches!(flush.stopped, Some(Stopped::MarkSent { .. })),
        "{:?}",
        flush.stopped
    );
    assert_eq!(deliver.messages().len(), 1, "nothing more was sent");
    assert_eq!(
        s.store().outbox_counts().unwrap()[OutboxState::Queued.as_str()],
        2
    );
}
