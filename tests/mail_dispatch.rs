//! The dispatcher through its real interfaces: `liaison mail flush` and the
//! daemon's schedule, with the file transport the embedded default uses.

use crate::common::daemon::{free_port, Daemon};
use crate::common::http;
use crate::common::prometheus::Scrape;
use crate::common::{csv_config, Sandbox, HEADER};

fn partners(n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        csv.push_str(&format!(
            "c{i},Person {i},person{i}@example.com,a1,Acme,portal\n"
        ));
    }
    csv
}

fn sandbox(mail_keys: &[&str], more: &[&str]) -> Sandbox {
    let mut sections = vec![
        "portal:\n  url: https://portal.example.com/login".to_owned(),
        "mail:\n  transport: file://mail\n  from: \"Support <support@example.com>\"\n  \
         welcome:\n    set_password_url: https://liaison.example.com/password"
            .to_owned(),
    ];
    for k in mail_keys {
        sections.push(format!("  {k}"));
    }
    sections.extend(more.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = sections.iter().map(String::as_str).collect();
    let s = Sandbox::new(&csv_config("partners.csv", &[], &refs));
    s.write("partners.csv", &partners(3));
    s
}

fn eml_files(s: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(s.path().join("mail"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn mail_flush_writes_each_welcome_once_as_an_eml_named_by_message_id() {
    let s = sandbox(&[], &[]);
    s.sync(0);
    let first = s
        .run(&["mail", "flush", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(first["sent"]["welcome"], 3, "{first}");
    let files = eml_files(&s);
    assert_eq!(files.len(), 3, "{files:?}");
    let text = std::fs::read_to_string(s.path().join("mail").join(&files[0])).unwrap();
    let id = files[0].trim_end_matches(".eml");
    assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
    assert!(text.contains("https://liaison.example.com/password?token="));
    let again = s
        .run(&["mail", "flush", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(again["sent"]["welcome"], 0);
    assert_eq!(eml_files(&s).len(), 3);
    let status = s
        .run(&["mail", "status", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(status["counts"]["sent"], 3, "{status}");
}

#[test]
fn mail_flush_without_mail_configured_is_a_config_error() {
    let s = Sandbox::new(&csv_config("partners.csv", &[], &[]));
    let run = s.run(&["mail", "flush"]).expect(2);
    assert!(
        run.stderr.contains("mail: is not configured"),
        "{}",
        run.stderr
    );
}

#[test]
fn mail_flush_outside_the_window_sends_nothing_and_says_when_it_opens() {
    // A window of one hour on a day that is never today: Sunday when today
    // is not Sunday, else Monday.
    let today = chrono::Utc::now().format("%u").to_string();
    let day = if today == "7" { "mon" } else { "sun" };
    let window = format!("window: {{ days: {day}, from: 3, to: 4 }}");
    let s = sandbox(&[&window], &[]);
    s.sync(0);
    let run = s.run(&["mail", "flush"]).expect(0);
    assert!(run.stdout.contains("sent 0 messages"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("the send window is closed; it opens at"),
        "{}",
        run.stdout
    );
    assert!(eml_files(&s).is_empty());
}

#[test]
fn the_daemon_sends_welcomes_on_the_mail_schedule_and_counts_them() {
    let port = free_port();
    let s = sandbox(
        &["schedule: \"* * * * * *\""],
        &[&format!("api:\n  listen: 127.0.0.1:{port}")],
    );
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["mail flushed"], 1);
    assert_eq!(eml_files(&s).len(), 3, "{}", daemon.log());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // The gauge is refreshed right after the flush that sent them.
    let mut scrape = Scrape::parse(&http::get(addr, "/metrics").body);
    for _ in 0..50 {
        if scrape.value("liaison_outbox_messages", &[("state", "sent")]) == 3.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        scrape = Scrape::parse(&http::get(addr, "/metrics").body);
    }
    assert_eq!(
        scrape.value("liaison_mail_sent_total", &[("kind", "welcome")]),
        3.0
    );
    assert_eq!(
        scrape.value("liaison_outbox_messages", &[("state", "sent")]),
        3.0
    );
}

#[test]
fn status_shows_the_outbox_depth_by_state() {
    let s = sandbox(&[], &[]);
    let before = s.run(&["status", "--format", "json"]).expect(0).json();
    assert_eq!(
        before["outbox"],
        serde_json::json!({"queued": 0, "sending": 0, "sent": 0, "failed": 0, "cancelled": 0}),
        "no store yet: an empty outbox"
    );
    s.sync(0);
    let queued = s.run(&["status", "--format", "json"]).expect(0).json();
    assert_eq!(queued["outbox"]["queued"], 3, "{queued}");
    s.run(&["mail", "flush"]).expect(0);
    let sent = s.run(&["status", "--format", "json"]).expect(0).json();
    assert_eq!(sent["outbox"]["queued"], 0, "{sent}");
    assert_eq!(sent["outbox"]["sent"], 3, "{sent}");
    let human = s.run(&["status"]).expect(0).stdout;
    assert!(
        human.contains("outbox: 0 queued, 0 sending, 3 sent, 0 failed, 0 cancelled"),
        "{human}"
    );
}
