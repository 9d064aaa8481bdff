//! Lifecycle rules that need time to pass or an admin's hand, proven on a real
//! SQLite store with an injected clock (the admin commands come later).

use liaison::config::{self, Config};
use liaison::store::{SqliteStore, Store, UserFilter};
use liaison::sync::{run_source, RunOptions, RunStatus};

use crate::common::{csv_config, Sandbox, HEADER};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_800_000_000_000;

fn setup(s: &Sandbox) -> (Config, SqliteStore) {
    let config = config::load(&s.config()).unwrap();
    let store = SqliteStore::open(&s.path().join("liaison.db")).unwrap();
    (config, store)
}

fn sync_at(config: &Config, store: &mut SqliteStore, now_ms: i64) -> RunStatus {
    let opts = RunOptions {
        dry_run: false,
        allow_mass_deprovision: true,
        now_ms,
        ..RunOptions::default()
    };
    run_source(config, &config.sources[0], store, opts)
        .unwrap()
        .status
}

fn status_of(store: &mut SqliteStore, login: &str) -> Option<String> {
    store
        .user_detail(login)
        .unwrap()
        .map(|d| d.user.status.to_string())
}

fn sandbox() -> Sandbox {
    Sandbox::new(&csv_config(
        "partners.csv",
        &[],
        &["deprovision:", "  delete_after: 30d"],
    ))
}

#[test]
fn disabled_users_are_deleted_after_the_grace_period_and_logins_retired() {
    let s = sandbox();
    let (config, mut store) = setup(&s);
    s.write(
        "partners.csv",
        &format!("{HEADER}c1,Ann Smith,ann@x.example,,,\nc2,Bob,bob@x.example,,,\n"),
    );
    assert_eq!(sync_at(&config, &mut store, T0), RunStatus::Applied);
    s.write(
        "partners.csv",
        &format!("{HEADER}c2,Bob,bob@x.example,,,\n"),
    );
    sync_at(&config, &mut store, T0 + DAY);
    assert_eq!(
        status_of(&mut store, "ann.smith").as_deref(),
        Some("disabled")
    );

    sync_at(&config, &mut store, T0 + 30 * DAY);
    assert_eq!(
        status_of(&mut store, "ann.smith").as_deref(),
        Some("disabled"),
        "29 days: kept"
    );
    sync_at(&config, &mut store, T0 + 31 * DAY + 1);
    assert_eq!(
        status_of(&mut store, "ann.smith"),
        None,
        "deleted after 30 days"
    );

    // The login is never handed out again; the journal keeps that ann existed.
    s.write(
        "partners.csv",
        &format!("{HEADER}c2,Bob,bob@x.example,,,\nc9,Ann Smith,ann@x.example,,,\n"),
    );
    sync_at(&config, &mut store, T0 + 32 * DAY);
    let users = store.list_users(&UserFilter::default()).unwrap();
    let logins: Vec<&str> = users.iter().map(|u| u.login.as_str()).collect();
    assert_eq!(logins, ["ann.smith2", "bob"]);
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    let deletes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM journal WHERE action = 'delete' AND login = 'ann.smith'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(deletes, 1);
}

#[test]
fn an_admin_disable_survives_sync_and_a_sync_disable_does_not() {
    let s = sandbox();
    let (config, mut store) = setup(&s);
    let both = format!("{HEADER}c1,Ann Smith,ann@x.example,,,\nc2,Bob,bob@x.example,,,\n");
    s.write("partners.csv", &both);
    sync_at(&config, &mut store, T0);
    // Seed an admin's disable directly in the store.
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    conn.execute(
        "UPDATE users SET status = 'disabled', disabled_by = 'admin', disabled_at = ?1 WHERE login = 'bob'",
        [T0],
    )
    .unwrap();
    s.write(
        "partners.csv",
        &format!("{HEADER}c2,Bob,bob@x.example,,,\n"),
    );
    sync_at(&config, &mut store, T0 + DAY);
    s.write("partners.csv", &both);
    sync_at(&config, &mut store, T0 + 2 * DAY);
    assert_eq!(
        status_of(&mut store, "ann.smith").as_deref(),
        Some("active"),
        "sync re-enables its own"
    );
    assert_eq!(
        status_of(&mut store, "bob").as_deref(),
        Some("disabled"),
        "never an admin's"
    );
    // An admin-disabled user is never deleted by the grace period either.
    s.write("partners.csv", HEADER);
    sync_at(&config, &mut store, T0 + 3 * DAY);
    sync_at(&config, &mut store, T0 + 90 * DAY);
    assert_eq!(status_of(&mut store, "bob").as_deref(), Some("disabled"));
    assert_eq!(status_of(&mut store, "ann.smith"), None);
}

#[test]
fn a_run_is_atomic_and_journals_one_entry_per_created_user() {
    let s = sandbox();
    let (config, mut store) = setup(&s);
    let rows: String = (0..500)
        .map(|i| format!("c{i},User {i},u{i}@x.example,,,\n"))
        .collect();
    s.write("partners.csv", &format!("{HEADER}{rows}"));
    sync_at(&config, &mut store, T0);
    let conn = rusqlite::Connection::open(s.path().join("liaison.db")).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM users"), 500);
    assert_eq!(
        count("SELECT COUNT(*) FROM journal"),
        500,
        "one entry holding the whole record"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE status = 'applied'"),
        1
    );
    // A change of one field is one journal row naming the field: the user's
    // title, and the linked contact's own name it came from (SPEC §3).
    s.write(
        "partners.csv",
        &format!("{HEADER}{}", rows.replace("User 7,", "User Seven,")),
    );
    sync_at(&config, &mut store, T0 + DAY);
    assert_eq!(count("SELECT COUNT(*) FROM journal"), 502);
    assert_eq!(
        count("SELECT COUNT(*) FROM journal WHERE action = 'update' AND field = 'title'"),
        1
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM journal WHERE action = 'update' \
             AND field = 'contact partners:c7 name'"
        ),
        1
    );
}
