//! Whole-file tests of the loader: typed values, every error at its position,
//! unknown keys in every section, secrets, paths.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const FILE: &str = "/etc/liaison/liaison.yaml";

fn env(name: &str) -> Option<String> {
    match name {
        "LIAISON_API_TOKEN" => Some("tok-123-secret".to_owned()),
        "PGPASSWORD" => Some("pg-secret".to_owned()),
        "SMTP_PASSWORD" => Some("smtp-secret".to_owned()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load::load_with(text, Path::new("liaison.yaml"), Path::new(FILE), &env)
}

fn load_ok(text: &str) -> Config {
    match load(text) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// Every error as `LINE:COLUMN: message`.
fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.span.line, e.span.column, e.message))
            .collect(),
    }
}

/// The one error of `text`, as `LINE:COLUMN: message`.
fn error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().unwrap()
}

const MINIMAL: &str = "store: sqlite://liaison.db\nsources: []\n";

#[cfg(feature = "csv")]
fn csv(source: &SourceConfig) -> &liaison_plugin_csv::CsvConfig {
    match &source.connector {
        ConnectorConfig::Csv(csv) => csv,
        #[allow(unreachable_patterns)]
        other => panic!("not a csv source: {other:?}"),
    }
}

/// `config/templates/`, absolute.
const SHIPPED_TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/templates");

#[test]
#[cfg(feature = "csv")]
fn the_spec_example_loads_into_typed_values() {
    let config = load_ok(
        &r#"store: sqlite:///var/lib/liaison/liaison.db    # or postgres://user@host/db
portal:
  url: https://support.example.com/clients/login
default_locale: cs
sources:
  - name: partners                             # unique, used in anchors and logs
    type: csv                                  # csv | ldap | crm | exec
    path: /var/lib/liaison/partners.csv        # standard layout: no map needed
    schedule: "*/15 * * * *"                   # optional cron expression
    watch: true                                # optional: sync when the file changes
  - name: vendors
    type: csv
    path: exports/vendors-*.csv
    delimiter: ";"
    header: false
    columns: [contact_id, name, email]
    encoding: windows-1250
    max_bad_row_ratio: 0.2
safety:
  max_deprovision: 50
  max_deprovision_ratio: 0.10
  max_bad_row_ratio: 0.05                      # more bad rows than this: the read failed
deprovision:
  delete_after: 30d
mail:
  transport: file:///var/lib/liaison/mail      # or smtp://, smtps://, smtp+starttls://
  from: "Support <support@example.com>"
  schedule: "* * * * *"
  window:
    days: [mon-fri]
    from: "08:00"
    to: 18
  timezone: Europe/Prague
  templates: SHIPPED_TEMPLATES
  rate_per_minute: 30
  confirm_sync_created: true
api:                                           # optional HTTP listener
  listen: 127.0.0.1:8080
  token: ${env:LIAISON_API_TOKEN}              # bearer token for the admin API and SCIM
log:
  format: json
  level: info,liaison=debug
"#
        // The shipped templates, as an override folder: it must exist.
        .replace("SHIPPED_TEMPLATES", SHIPPED_TEMPLATES),
    );
    assert_eq!(config.file, Path::new(FILE));
    assert_eq!(
        config.store,
        StoreLocation::Sqlite(PathBuf::from("/var/lib/liaison/liaison.db"))
    );
    assert_eq!(
        config.portal.as_ref().unwrap().url.as_str(),
        "https://support.example.com/clients/login"
    );
    assert_eq!(config.default_locale, "cs");

    assert_eq!(config.sources.len(), 2);
    let partners = &config.sources[0];
    assert_eq!(partners.name, "partners");
    assert_eq!(partners.span, Span::new(6, 5));
    assert_eq!(
        partners.schedule.as_ref().unwrap().to_string(),
        "*/15 * * * *"
    );
    assert_eq!(partners.watch, Some(WatchConfig::default()));
    assert!(partners.map.is_none());
    assert_eq!(partners.max_bad_row_ratio, None);
    assert_eq!(
        csv(partners),
        &liaison_plugin_csv::CsvConfig {
            path: PathBuf::from("/var/lib/liaison/partners.csv"),
            delimiter: b',',
            quote: b'"',
            header: true,
            columns: None,
            encoding: liaison_plugin_csv::Encoding::Utf8,
        }
    );
    let vendors = &config.sources[1];
    assert_eq!(vendors.watch, None);
    assert!(vendors.schedule.is_none());
    assert_eq!(vendors.max_bad_row_ratio, Some(Ratio::percent(20)));
    assert_eq!(
        csv(vendors),
        &liaison_plugin_csv::CsvConfig {
            path: PathBuf::from("/etc/liaison/exports/vendors-*.csv"),
            delimiter: b';',
            quote: b'"',
            header: false,
            columns: Some(vec!["contact_id".into(), "name".into(), "email".into()]),
            encoding: liaison_plugin_csv::Encoding::Windows1250,
        }
    );

    assert_eq!(
        config.safety,
        SafetyConfig {
            max_deprovision: 50,
            max_deprovision_ratio: Ratio::percent(10),
            max_bad_row_ratio: Ratio::percent(5)
        }
    );
    assert_eq!(
        config.deprovision.delete_after,
        Some(Duration::from_secs(30 * 86_400))
    );

    let mail = config.mail.as_ref().unwrap();
    assert_eq!(
        mail.transport,
        MailTransport::File(PathBuf::from("/var/lib/liaison/mail"))
    );
    assert_eq!(mail.from, "Support <support@example.com>");
    assert_eq!(mail.schedule.to_string(), "* * * * *");
    assert_eq!(
        mail.window,
        Some(SendWindow {
            days: vec![1, 2, 3, 4, 5],
            from_hour: 8,
            to_hour: 18
        })
    );
    assert_eq!(mail.timezone, "Europe/Prague");
    assert_eq!(
        mail.templates.as_deref(),
        Some(Path::new(SHIPPED_TEMPLATES))
    );
    assert_eq!(mail.rate_per_minute, Some(30));
    assert!(mail.confirm_sync_created);

    let api = config.api.as_ref().unwrap();
    assert_eq!(api.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(api.token.as_ref().unwrap().expose(), "tok-123-secret");
    assert_eq!(
        config.log,
        LogConfig {
            format: LogFormat::Json,
            level: Some("info,liaison=debug".into())
        }
    );
}

#[test]
fn defaults_apply_when_only_store_and_sources_are_given() {
    let config = load_ok(MINIMAL);
    assert_eq!(
        config.store,
        StoreLocation::Sqlite(PathBuf::from("/etc/liaison/liaison.db"))
    );
    assert!(config.sources.is_empty());
    assert!(config.portal.is_none() && config.mail.is_none() && config.api.is_none());
    assert_eq!(config.default_locale, "en");
    assert_eq!(config.safety, SafetyConfig::default());
    assert_eq!(config.deprovision.delete_after, None);
    assert_eq!(config.log, LogConfig::default());

    let config = load_ok(&format!(
        "{MINIMAL}mail:\n  transport: smtp://relay.local\n  from: a@example.com\n"
    ));
    let mail = config.mail.unwrap();
    assert_eq!(mail.schedule.to_string(), DEFAULT_MAIL_SCHEDULE);
    assert_eq!(mail.timezone, "UTC");
    assert_eq!(mail.window, None);
    assert_eq!(mail.rate_per_minute, None);
    assert!(!mail.confirm_sync_created);
    assert_eq!((mail.max_welcome_per_run, mail.max_attempts), (500, 10));
}

#[test]
fn outbox_limits_are_whole_numbers_and_attempts_at_least_one() {
    let mail = "mail:\n  transport: file://m\n  from: a@example.com\n";
    let config = load_ok(&format!(
        "{MINIMAL}{mail}  max_welcome_per_run: 0\n  max_attempts: 3\n"
    ));
    let mail_config = config.mail.unwrap();
    assert_eq!(
        (mail_config.max_welcome_per_run, mail_config.max_attempts),
        (0, 3)
    );
    assert_eq!(
        error(&format!("{MINIMAL}{mail}  max_attempts: 0\n")),
        "6:17: mail.max_attempts: must be at least 1"
    );
    assert_eq!(
        error(&format!("{MINIMAL}{mail}  max_welcome_per_run: -1\n")),
        "6:24: mail.max_welcome_per_run: expected a non-negative integer, found -1"
    );
}

#[test]
#[cfg(feature = "csv")]
fn every_error_in_a_file_is_reported_at_its_position_in_file_order() {
    let text = r#"store: mysql://root@db/liaison
portal:
  url: not a url
sources:
  - name: partners
    type: csv
    path: partners.csv
    schedule: "61 * * * *"
    watch: yes
  - name: partners
    type: ftp
  - name: bad name!
    type: csv
safety:
  max_deprovision: fifty
  max_deprovision_ratio: 1.5
deprovision:
  delete_after: 30w
api:
  listen: localhost
log:
  format: xml
"#;
    let not_built =
        r#"11:11: sources[1].type: unknown connector type "ftp" (known: csv, ldap, crm, exec)"#;
    assert_eq!(
        errors(text),
        [
            r#"1:8: store: unsupported scheme "mysql" (expected sqlite:// or postgres://)"#,
            r#"3:8: portal.url: invalid URL "not a url": relative URL without a base"#,
            r#"8:15: sources[0].schedule: invalid cron expression "61 * * * *": minute 61 is out of range 0-59"#,
            r#"9:12: sources[0].watch: expected true, false or a mapping such as {quiet: 2s, rescan: 60s}, found "yes""#,
            r#"10:11: sources[1].name: duplicate source name "partners" (first at line 5)"#,
            not_built,
            r#"12:5: sources[2]: missing required key "path""#,
            r#"12:11: sources[2].name: a source name is 1 to 64 of the characters A-Z a-z 0-9 _ -, found "bad name!""#,
            r#"15:20: safety.max_deprovision: expected a non-negative integer, found "fifty""#,
            r#"16:26: safety.max_deprovision_ratio: expected a number between 0 and 1 (0.10 = 10 %), found 1.5"#,
            r#"18:17: deprovision.delete_after: unknown unit "w": use ms, s, m, h or d (e.g. 30d), found "30w""#,
            r#"20:11: api.listen: expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, found "localhost""#,
            r#"22:11: log.format: expected human or json, found "xml""#,
        ]
    );
}

#[test]
fn display_is_file_line_column_message_one_per_line() {
    let e = load("store: 5\nsources: []\nsafety: {max_deprovision: fifty}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "liaison.yaml:1:8: store: expected a string, found 5\n\
         liaison.yaml:3:27: safety.max_deprovision: expected a non-negative integer, found \"fifty\""
    );
}

#[test]
fn public_load_str_names_the_file_as_given_and_resolves_against_its_folder() {
    let e = load_str("store: 5\nsources: []\n", Path::new("conf/partners.yaml")).unwrap_err();
    assert!(
        e.to_string().starts_with("conf/partners.yaml:1:8: store:"),
        "{e}"
    );
    let config = load_str(MINIMAL, Path::new("conf/partners.yaml")).unwrap();
    assert!(config.file.is_absolute());
    assert!(config.file.ends_with("conf/partners.yaml"));
    let StoreLocation::Sqlite(db) = &config.store else {
        panic!("not sqlite")
    };
    assert_eq!(db, &config.file.parent().unwrap().join("liaison.db"));
}

#[test]
fn load_reports_an_unreadable_file() {
    let e = super::load(Path::new("/nonexistent/liaison.yaml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/liaison.yaml:1:1: cannot read"),
        "{e}"
    );
}

/// One unknown key per section; each must be reported at its own line:column
/// with its full key path.
#[test]
fn every_section_refuses_unknown_keys() {
    let mut text = String::from(
        "store: sqlite://x.db\n\
         colour: blue\n\
         portal:\n  url: https://p.example.com\n  urll: x\n\
         safety:\n  max_deprovison: 5\n\
         deprovision:\n  delete_afer: 30d\n\
         mail:\n  transport: file://mail\n  from: a@example.com\n  sender: b\n\
         \x20 window:\n    days: mon\n    until: 18\n\
         api:\n  listen: 127.0.0.1:1\n  token: t\n  tokn: u\n\
         log:\n  levle: info\n",
    );
    let mut expected = vec![
        r#"2:1: colour: unknown key (known keys: store, portal, default_locale, schedule_timezone, run_on_start, sources, accounts, safety, deprovision, mail, readiness, retry, api, log, password_policy, registration)"#.to_owned(),
        r#"5:3: portal.urll: unknown key; did you mean "url"?"#.to_owned(),
        r#"7:3: safety.max_deprovison: unknown key; did you mean "max_deprovision"?"#.to_owned(),
        r#"9:3: deprovision.delete_afer: unknown key; did you mean "delete_after"?"#.to_owned(),
        r#"13:3: mail.sender: unknown key (known keys: transport, from, schedule, window, timezone, templates, rate_per_minute, confirm_sync_created, max_welcome_per_run, max_attempts, ca_file, timeout, welcome)"#.to_owned(),
        r#"16:5: mail.window.until: unknown key (known keys: days, from, to)"#.to_owned(),
        r#"20:3: api.tokn: unknown key; did you mean "token"?"#.to_owned(),
        r#"22:3: log.levle: unknown key; did you mean "level"?"#.to_owned(),
    ];
    if cfg!(feature = "csv") {
        text.push_str("sources:\n  - name: a\n    type: csv\n    path: a.csv\n    pth: b\n");
        expected.push(
            r#"27:5: sources[0].pth: unknown key for a csv source; did you mean "path"?"#
                .to_owned(),
        );
    } else {
        text.push_str("sources: []\n");
    }
    assert_eq!(errors(&text), expected);
}

#[test]
fn yaml_syntax_errors_and_duplicate_keys_use_the_same_format() {
    assert_eq!(
        error("store: x\nstore: y\nsources: []\n"),
        "2:1: invalid YAML: duplicate mapping key `store` is not allowed here"
    );
    assert_eq!(
        error("sources: [\n"),
        "1:10: invalid YAML: unclosed bracket '['"
    );
    let e = load("a: 1\n---\nb: 2\n").unwrap_err();
    assert_eq!(e.0[0].span, Span::new(3, 1));
}

#[test]
fn empty_and_misshapen_files_are_errors() {
    assert_eq!(
        error(""),
        "1:1: the file is empty: at least \"store\" and \"sources\" are required"
    );
    assert_eq!(
        error("- a\n"),
        "1:1: the file: expected a mapping of keys, found a list"
    );
    assert_eq!(
        errors("portal: {}\n"),
        [
            r#"1:1: missing required key "store""#,
            r#"1:1: portal: missing required key "url""#,
            r#"1:1: missing required key "sources""#,
        ]
    );
    assert_eq!(
        error("store: sqlite://x\nsources:\n"),
        "2:1: sources: a value is required"
    );
    assert_eq!(
        error("store: sqlite://x\nsources: {}\n"),
        "2:10: sources: expected a list, found a mapping"
    );
    assert_eq!(
        error("store: sqlite://x\nsources: []\n1: x\n"),
        "3:1: keys must be strings, found 1"
    );
}

#[test]
fn strict_booleans_refuse_yes_and_off() {
    let text = format!("{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  confirm_sync_created: off\n");
    assert_eq!(
        error(&text),
        r#"6:25: mail.confirm_sync_created: expected true or false, found "off""#
    );
}

#[test]
fn store_urls() {
    let store = |s: &str| load(&format!("store: {s}\nsources: []\n")).map(|c| c.store);
    assert_eq!(
        store("sqlite:///var/lib/x.db").unwrap(),
        StoreLocation::Sqlite("/var/lib/x.db".into())
    );
    assert_eq!(
        store("sqlite://./data/x.db").unwrap(),
        StoreLocation::Sqlite("/etc/liaison/data/x.db".into())
    );
    for url in [
        "postgres://liaison@db/liaison",
        "postgresql://db:5433/x?sslmode=require",
    ] {
        let StoreLocation::Postgres(secret) = store(url).unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(secret.expose(), url);
    }
    assert_eq!(
        error("store: sqlite://\nsources: []\n"),
        "1:8: store: sqlite:// needs a file path, e.g. sqlite:///var/lib/liaison/liaison.db"
    );
    assert_eq!(
        error("store: /var/lib/x.db\nsources: []\n"),
        "1:8: store: expected sqlite://PATH or postgres://USER@HOST/DB"
    );
    assert_eq!(
        error("store: postgres://u:pw@[oops/db\nsources: []\n"),
        "1:8: store: invalid PostgreSQL URL: invalid IPv6 address"
    );
}

#[test]
fn secrets_resolve_and_never_show_in_debug_or_errors() {
    let config = load_ok(
        "store: postgres://liaison:${env:PGPASSWORD}@db.example.com/liaison\n\
         sources: []\n\
         mail:\n  transport: smtp+starttls://mailer:${env:SMTP_PASSWORD}@mail.example.com\n  from: a@example.com\n\
         api:\n  listen: 127.0.0.1:8080\n  token: ${env:LIAISON_API_TOKEN}\n",
    );
    let StoreLocation::Postgres(url) = &config.store else {
        panic!("not postgres")
    };
    assert_eq!(
        url.expose(),
        "postgres://liaison:pg-secret@db.example.com/liaison"
    );
    let MailTransport::Smtp {
        tls,
        host,
        port,
        user,
        password,
    } = &config.mail.as_ref().unwrap().transport
    else {
        panic!("not smtp")
    };
    assert_eq!(*tls, SmtpTls::StartTls);
    assert_eq!((host.as_str(), *port), ("mail.example.com", 587));
    assert_eq!(user.as_deref(), Some("mailer"));
    assert_eq!(password.as_ref().unwrap().expose(), "smtp-secret");
    assert_eq!(
        config
            .api
            .as_ref()
            .unwrap()
            .token
            .as_ref()
            .unwrap()
            .expose(),
        "tok-123-secret"
    );

    let debug = format!("{config:?} {config:#?}");
    for secret in ["pg-secret", "smtp-secret", "tok-123-secret"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(
        debug.contains("postgres://liaison:***@db.example.com/liaison"),
        "{debug}"
    );
}

#[test]
fn secret_errors_name_the_variable_or_file_only() {
    let text = format!(
        "{MINIMAL}api:\n  listen: 127.0.0.1:1\n  token: ${{env:NO_SUCH_VAR}}\n\
         mail:\n  transport: smtp://u:${{file:missing-secret}}@h\n  from: a@example.com\n"
    );
    assert_eq!(
        errors(&text),
        [
            r#"5:10: api.token: environment variable "NO_SUCH_VAR" is not set"#,
            r#"7:14: mail.transport: cannot read secret file "/etc/liaison/missing-secret": No such file or directory (os error 2)"#,
        ]
    );
    assert_eq!(
        error(&format!("{MINIMAL}portal:\n  url: ${{env:PORTAL}}\n")),
        "4:8: portal.url: ${env:…} and ${file:…} are resolved only in store, mail.transport, api.token, an exec source's env, an ldap source's bind_password and a crm source's token and secrets"
    );
    // A bad URL built from a secret is described, not printed.
    let e = error("store: mysql://root:${env:PGPASSWORD}@db/x\nsources: []\n");
    assert!(!e.contains("pg-secret"), "{e}");
    let e = error(&format!(
        "{MINIMAL}mail:\n  transport: smtp://u:${{env:SMTP_PASSWORD}}@h/x\n  from: a@example.com\n"
    ));
    assert!(!e.contains("smtp-secret") && e.contains("no path"), "{e}");
}

#[test]
fn secret_files_resolve_relative_to_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "file-token\n").unwrap();
    let file = dir.path().join("liaison.yaml");
    let text = format!("{MINIMAL}api:\n  listen: \"[::1]:9000\"\n  token: ${{file:token}}\n");
    std::fs::write(&file, text).unwrap();
    let config = super::load(&file).unwrap();
    let api = config.api.unwrap();
    assert_eq!(api.token.as_ref().unwrap().expose(), "file-token");
    assert_eq!(api.listen, "[::1]:9000".parse().unwrap());
}

#[test]
fn mail_transports_and_their_errors() {
    let transport = |t: &str| {
        load(&format!(
            "{MINIMAL}mail:\n  transport: {t}\n  from: a@example.com\n"
        ))
        .map(|c| c.mail.unwrap().transport)
    };
    assert_eq!(
        transport("file://outbox").unwrap(),
        MailTransport::File("/etc/liaison/outbox".into())
    );
    assert_eq!(
        transport("smtp://relay.local:2525").unwrap(),
        MailTransport::Smtp {
            tls: SmtpTls::None,
            host: "relay.local".into(),
            port: 2525,
            user: None,
            password: None
        }
    );
    let Ok(MailTransport::Smtp { tls, port, .. }) = transport("smtps://mail.example.com") else {
        panic!("not smtps")
    };
    assert_eq!((tls, port), (SmtpTls::Implicit, 465));
    assert_eq!(
        error(&format!(
            "{MINIMAL}mail:\n  transport: https://x\n  from: a@example.com\n"
        )),
        r#"4:14: mail.transport: unsupported scheme "https" (expected file://, smtp://, smtps:// or smtp+starttls://)"#
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}mail:\n  transport: file://m\n  from: Support support@example.com\n"
        )),
        r#"5:9: mail.from: invalid mailbox "Support support@example.com": invalid e-mail "Support support@example.com""#
    );
}

#[test]
fn mail_window_and_timezone() {
    let window = |w: &str| {
        load(&format!(
            "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  window: {w}\n"
        ))
        .map(|c| c.mail.unwrap().window.unwrap())
    };
    assert_eq!(
        window("{days: [sat, 1-2, sun], from: 9, to: \"17:00\"}").unwrap(),
        SendWindow {
            days: vec![1, 2, 6, 7],
            from_hour: 9,
            to_hour: 17
        }
    );
    assert_eq!(
        window("{days: \"mon-fri\"}").unwrap(),
        SendWindow {
            days: vec![1, 2, 3, 4, 5],
            from_hour: 0,
            to_hour: 24
        }
    );
    let text = format!(
        "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  timezone: Europe Prague\n  \
         window:\n    days: [mon, funday]\n    from: \"08:30\"\n    to: 25\n"
    );
    assert_eq!(
        errors(&text),
        [
            r#"6:13: mail.timezone: unknown time zone "Europe Prague"; did you mean "Europe/Prague"?"#,
            r#"8:17: mail.window.days[1]: expected days such as mon, mon-fri or 1-5 (1 = Monday, 7 = Sunday), found "funday""#,
            r#"9:11: mail.window.from: expected a whole hour from 0 to 23 such as 8 or "08:00", found "08:30""#,
            r#"10:9: mail.window.to: expected a whole hour from 1 to 24 such as 8 or "08:00", found 25"#,
        ]
    );
    let text = format!(
        "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  window: {{from: 18, to: 8}}\n"
    );
    assert_eq!(
        error(&text),
        "6:26: mail.window.to: the window ends at 8:00, not after it starts at 18:00 (windows across midnight are not supported)"
    );
}

#[test]
fn welcome_links_default_to_the_public_url() {
    let mail = "mail:\n  transport: file://m\n  from: a@example.com\n";
    let config = load_ok(&format!("{MINIMAL}{mail}"));
    let m = config.mail.unwrap();
    assert_eq!(m.welcome.token_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(m.welcome.set_password_url, None);
    assert_eq!(m.welcome.link("abc"), None);
    assert_eq!(m.timeout, Duration::from_secs(30));
    assert_eq!(m.ca_file, None);
    assert_eq!(config.registration.cooldown, Duration::from_secs(3600));

    let api = "api:\n  listen: 127.0.0.1:9464\n  public_url: https://portal.example/liaison/\n";
    let config = load_ok(&format!("{MINIMAL}{mail}{api}"));
    let welcome = config.mail.unwrap().welcome;
    assert_eq!(
        welcome.link("a+b/c").as_deref(),
        Some("https://portal.example/liaison/password?token=a%2Bb%2Fc")
    );

    let own = format!(
        "{MINIMAL}{mail}  welcome:\n    token_ttl: 2d\n    set_password_url: https://x.example/set?lang=cs\n{api}registration:\n  cooldown: 10m\n"
    );
    let config = load_ok(&own);
    assert_eq!(config.registration.cooldown, Duration::from_secs(600));
    let welcome = config.mail.unwrap().welcome;
    assert_eq!(welcome.token_ttl, Duration::from_secs(2 * 24 * 3600));
    assert_eq!(
        welcome.link("t1").as_deref(),
        Some("https://x.example/set?lang=cs&token=t1")
    );
}

#[test]
fn welcome_timeout_and_ca_errors_are_located() {
    let text = format!(
        "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  timeout: 0s\n  ca_file: /nonexistent/ca.pem\n  \
         welcome:\n    token_ttl: never\n    set_password_url: ftp://x.example/p?token=1\n    colour: red\nregistration:\n  cooldown: soon\napi:\n  listen: 127.0.0.1:1\n  public_url: /relative\n"
    );
    let all = errors(&text);
    assert_eq!(all.len(), 7, "{all:#?}");
    assert!(
        all[0].starts_with("6:12: mail.timeout: must be longer than zero"),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with("7:12: mail.ca_file: cannot read /nonexistent/ca.pem"),
        "{all:#?}"
    );
    assert!(
        all[2].starts_with("9:16: mail.welcome.token_ttl: expected a duration"),
        "{all:#?}"
    );
    assert_eq!(
        all[3],
        r#"10:23: mail.welcome.set_password_url: expected an http:// or https:// URL, found "ftp://x.example/p?token=1""#
    );
    assert!(
        all[4].starts_with("11:5: mail.welcome.colour: unknown key"),
        "{all:#?}"
    );
    assert!(
        all[5].starts_with("13:13: registration.cooldown:"),
        "{all:#?}"
    );
    assert!(
        all[6].starts_with("16:15: api.public_url: invalid URL"),
        "{all:#?}"
    );

    let token = format!(
        "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  welcome:\n    set_password_url: https://x.example/p?token=1\n"
    );
    assert_eq!(
        error(&token),
        "7:23: mail.welcome.set_password_url: the link gets its token query parameter from Liaison; leave it out"
    );
}

#[test]
fn an_unknown_mail_timezone_is_an_error() {
    let timezone = |tz: &str| {
        load(&format!(
            "{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  timezone: {tz}\n"
        ))
    };
    for known in [
        "UTC",
        "Europe/Prague",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+2",
    ] {
        let config = timezone(known).unwrap_or_else(|e| panic!("{known}: {e}"));
        assert_eq!(config.mail.unwrap().timezone, known);
    }
    let text = |tz: &str| {
        format!("{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  timezone: {tz}\n")
    };
    assert_eq!(
        errors(&text("Europe/Prag")),
        [r#"6:13: mail.timezone: unknown time zone "Europe/Prag"; did you mean "Europe/Prague"?"#]
    );
    assert_eq!(
        errors(&text("europe/prague")),
        [
            r#"6:13: mail.timezone: unknown time zone "europe/prague"; did you mean "Europe/Prague"?"#
        ]
    );
    assert_eq!(
        errors(&text("Mars/Olympus_Mons")),
        [
            r#"6:13: mail.timezone: unknown time zone "Mars/Olympus_Mons"; expected an IANA name such as UTC or Europe/Prague"#
        ]
    );
}

#[test]
fn durations_in_deprovision() {
    let delete_after = |d: &str| {
        load(&format!("{MINIMAL}deprovision:\n  delete_after: {d}\n"))
            .map(|c| c.deprovision.delete_after)
    };
    assert_eq!(delete_after("never").unwrap(), None);
    assert_eq!(
        delete_after("12h").unwrap(),
        Some(Duration::from_secs(43_200))
    );
    assert_eq!(delete_after("45s").unwrap(), Some(Duration::from_secs(45)));
    assert_eq!(delete_after("15m").unwrap(), Some(Duration::from_secs(900)));
    assert_eq!(
        error(&format!("{MINIMAL}deprovision:\n  delete_after: 30\n")),
        r#"4:17: deprovision.delete_after: missing unit: add ms, s, m, h or d (e.g. 30d), found "30""#
    );
    assert_eq!(
        error(&format!("{MINIMAL}deprovision:\n  delete_after: 0d\n")),
        "4:17: deprovision.delete_after: must be longer than zero (write never to keep disabled users)"
    );
    assert!(delete_after("1.5d").is_err());
    assert!(delete_after("[30d]").is_err());
}

#[cfg(feature = "csv")]
#[test]
fn full_every_defaults_to_a_day_and_takes_never() {
    let full_every = |line: &str| {
        load(&format!(
            "store: sqlite://liaison.db\nsources:\n  - name: p\n    type: csv\n    path: p.csv\n{line}"
        ))
        .map(|c| c.sources[0].full_every)
    };
    assert_eq!(full_every("").unwrap(), Some(Duration::from_secs(86_400)));
    assert_eq!(
        full_every("    full_every: 6h\n").unwrap(),
        Some(Duration::from_secs(21_600))
    );
    assert_eq!(full_every("    full_every: never\n").unwrap(), None);
    assert_eq!(
        error("store: sqlite://liaison.db\nsources:\n  - name: p\n    type: csv\n    path: p.csv\n    full_every: 0s\n"),
        "6:17: sources[0].full_every: must be longer than zero (write never for no periodic full read)"
    );
}

#[test]
fn ratios_integers_locale_and_log_level() {
    let text = format!(
        "{MINIMAL}default_locale: english\nsafety:\n  max_deprovision: -1\n  max_bad_row_ratio: \"5%\"\nlog:\n  level: \"liaison=[\"\n"
    );
    let all = errors(&text);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(
        all[0],
        r#"3:17: default_locale: expected a language tag such as en, cs or pt-BR, found "english""#
    );
    assert_eq!(
        all[1],
        "5:20: safety.max_deprovision: expected a non-negative integer, found -1"
    );
    assert!(all[2].starts_with("6:22: safety.max_bad_row_ratio: expected a number between 0 and 1"));
    assert!(
        all[3].starts_with("8:10: log.level: invalid filter \"liaison=[\""),
        "{}",
        all[3]
    );
    let config = load_ok(&format!(
        "{MINIMAL}default_locale: pt-BR\nsafety:\n  max_deprovision_ratio: 1\n"
    ));
    assert_eq!(config.default_locale, "pt-BR");
    assert_eq!(config.safety.max_deprovision_ratio, Ratio::percent(100));
}

#[test]
fn connector_types_not_in_this_build_or_unknown() {
    // A known type left out of this build (by its Cargo feature), if any.
    let missing = crate::plugins::KNOWN
        .iter()
        .find(|k| !crate::plugins::BUILT_IN.contains(k));
    let first = missing.map_or("csv", |k| k);
    let text = format!("store: sqlite://x\nsources:\n  - name: a\n    type: {first}\n    url: x\n  - name: b\n    type: ftp\n  - name: c\n");
    let got = errors(&text);
    let built = match crate::plugins::BUILT_IN {
        [] => "none".to_owned(),
        built => built.join(", "),
    };
    if let Some(missing) = missing {
        assert_eq!(
            got[0],
            format!(
                r#"4:11: sources[0].type: connector "{missing}" is not in this build (built in: {built})"#
            )
        );
    }
    let tail = [
        r#"7:11: sources[1].type: unknown connector type "ftp" (known: csv, ldap, crm, exec)"#,
        r#"8:5: sources[2]: missing required key "type""#,
    ];
    assert_eq!(got[got.len() - 2..], tail, "{got:#?}");
}

#[test]
#[cfg(feature = "csv")]
fn csv_options_and_their_errors() {
    let source = |extra: &str| {
        load(&format!(
            "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n{extra}"
        ))
        .map(|c| csv(&c.sources[0]).clone())
    };
    let tab = source("    delimiter: \"\\t\"\n    quote: \"'\"\n    encoding: UTF8\n").unwrap();
    assert_eq!(
        (tab.delimiter, tab.quote, tab.encoding),
        (b'\t', b'\'', liaison_plugin_csv::Encoding::Utf8)
    );
    assert_eq!(source("    delimiter: tab\n").unwrap().delimiter, b'\t');
    assert_eq!(source("    delimiter: '\\t'\n").unwrap().delimiter, b'\t');
    assert_eq!(
        source("    encoding: cp1250\n").unwrap().encoding,
        liaison_plugin_csv::Encoding::Windows1250
    );
    assert_eq!(
        errors(
            "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: \"\"\n    delimiter: \";;\"\n    quote: \"§\"\n    columns: [a]\n    encoding: latin1\n    max_bad_row_ratio: 2\n"
        ),
        [
            "5:11: sources[0].path: must not be empty",
            r#"6:16: sources[0].delimiter: expected one character, found ";;""#,
            r#"7:12: sources[0].quote: expected an ASCII character other than a line break, found "§""#,
            "8:14: sources[0].columns: only used with header: false (otherwise the header row names the columns)",
            r#"9:15: sources[0].encoding: unsupported encoding "latin1" (supported: utf-8, windows-1250)"#,
            "10:24: sources[0].max_bad_row_ratio: expected a number between 0 and 1 (0.10 = 10 %), found 2",
        ]
    );
    assert_eq!(
        errors(
            "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a\n    header: false\n    columns: [a, \"\", a]\n    quote: \",\"\n"
        ),
        [
            r#"7:18: sources[0].columns[1]: must not be empty"#,
            r#"7:22: sources[0].columns[2]: duplicate column name "a""#,
            "8:12: sources[0].quote: must differ from the delimiter (both are \",\")",
        ]
    );
}

#[test]
#[cfg(feature = "csv")]
fn map_and_when_are_read_in_file_order() {
    // No template compiled here: `Mapping::compile` is exercised by the ignored test below.
    let text =
        "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a\n    map: {}\n";
    let spec = load_ok(text).sources[0].map.clone().unwrap();
    assert!(spec.fields.is_empty() && spec.when.is_none());
    assert_eq!(
        error(
            "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a\n    map: [x]\n"
        ),
        "6:10: sources[0].map: expected a mapping of keys, found a list"
    );
    assert_eq!(
        error("store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a\n    map:\n      email: [x]\n"),
        "7:14: sources[0].map.email: expected a string, found a list"
    );
}

#[test]
#[cfg(feature = "csv")]
fn templates_are_compiled_and_errors_placed_at_the_template() {
    let text = "store: sqlite://x\nsources:\n  - name: ldap-like\n    type: csv\n    path: a.csv\n    map:\n      contact_id: \"{{ entryUUID }}\"\n      name: \"{{ cn }}\"\n      email: \"{{ mail | lower }}\"\n      account_id: \"{{ o | slug }}\"\n    when: \"{{ employeeType == 'partner' }}\"\n";
    let spec = load_ok(text).sources[0].map.clone().unwrap();
    assert_eq!(
        spec.fields[2],
        ("email".to_owned(), "{{ mail | lower }}".to_owned())
    );
    assert_eq!(
        spec.when.as_deref(),
        Some("{{ employeeType == 'partner' }}")
    );

    let bad = "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n    map:\n      contact_id: \"{{ id }}\"\n      name: \"{{ cn\"\n      email: \"{{ mail }}\"\n    when: \"{{ a == }}\"\n";
    let all = errors(bad);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].starts_with("8:13: sources[0].map.name: "),
        "{}",
        all[0]
    );
    assert!(all[1].starts_with("10:11: sources[0].when: "), "{}", all[1]);

    // Map keys are checked by the mapping: an unknown one is reported at its
    // value, a missing required one at `map:`.
    let keys = "store: sqlite://x\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n    map:\n      contact_id: \"{{ id }}\"\n      name: \"{{ cn }}\"\n      emial: \"{{ mail }}\"\n";
    let all = errors(keys);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].starts_with("6:5: sources[0].map.email: "),
        "{}",
        all[0]
    );
    assert!(
        all[1].starts_with("9:14: sources[0].map.emial: "),
        "{}",
        all[1]
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "store: sqlite://x.db\nportal: {url: \"https://p.example.com\"}\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n    schedule: \"*/5 * * * *\"\n    delimiter: \";\"\nsafety: {max_deprovision: 5, max_deprovision_ratio: 0.5}\ndeprovision: {delete_after: 30d}\nmail:\n  transport: smtp://u:p@h:25\n  from: \"A <a@example.com>\"\n  window: {days: [mon-fri], from: 8, to: 18}\napi: {listen: \"127.0.0.1:1\", token: t}\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn on_arbitrary_text(text in "\\PC{0,120}") {
            let _ = load(&text);
        }

        #[test]
        fn on_a_valid_file_with_one_edit(at in 0usize..VALID.len(), insert in "[ -~\\n]{0,3}", cut in 0usize..4) {
            let mut text = VALID.to_owned();
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at..=(at + cut).min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(at);
            text.replace_range(at..end, &insert);
            if let Err(errors) = load(&text) {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| e.span.line >= 1 && e.span.column >= 1));
            }
        }

        #[test]
        fn on_cron_like_text(text in "[0-9*/,LW#@a-z -]{0,30}") {
            if let Ok(schedule) = Schedule::parse(&text) {
                let now = chrono::Utc::now();
                prop_assert!(schedule.next_after(now).is_none_or(|t| t > now));
            }
        }
    }

    #[test]
    fn the_seed_file_is_valid() {
        load_ok(VALID);
    }
}

/// Keys the daemon reads: schedule time zones, run_on_start, watch,
/// readiness, retry, an optional api.token.
mod daemon_keys {
    use super::*;

    #[cfg(feature = "csv")]
    fn source(extra: &str) -> String {
        format!(
            "store: sqlite://l.db\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n{extra}"
        )
    }

    #[test]
    #[cfg(feature = "csv")]
    fn defaults_for_the_daemon() {
        let config = load_ok(&source(""));
        assert_eq!(config.schedule_timezone, chrono_tz::UTC);
        assert!(config.run_on_start);
        assert_eq!(config.readiness, ReadinessConfig { max_failed_runs: 3 });
        assert_eq!(
            config.retry,
            RetryConfig {
                initial: Duration::from_secs(30),
                max: Duration::from_secs(900)
            }
        );
        let a = &config.sources[0];
        assert_eq!(a.timezone, chrono_tz::UTC);
        assert!(a.run_on_start);
        assert_eq!(a.watch, None);
    }

    #[test]
    #[cfg(feature = "csv")]
    fn schedule_timezone_and_run_on_start_are_inherited_and_overridden() {
        let text = "store: sqlite://l.db\nschedule_timezone: Europe/Prague\nrun_on_start: false\nsources:\n  - name: a\n    type: csv\n    path: a.csv\n    schedule: \"*/2 * * * * *\"\n  - name: b\n    type: csv\n    path: b.csv\n    schedule_timezone: America/New_York\n    run_on_start: true\n";
        let config = load_ok(text);
        assert_eq!(config.schedule_timezone, chrono_tz::Europe::Prague);
        assert!(!config.run_on_start);
        let (a, b) = (&config.sources[0], &config.sources[1]);
        assert_eq!(a.timezone, chrono_tz::Europe::Prague);
        assert!(!a.run_on_start);
        assert_eq!(a.schedule.as_ref().unwrap().as_str(), "*/2 * * * * *");
        assert_eq!(b.timezone, chrono_tz::America::New_York);
        assert!(b.run_on_start);
    }

    #[test]
    fn mail_timezone_defaults_to_the_schedule_timezone() {
        let mail = "mail:\n  transport: file://m\n  from: a@example.com\n";
        let config = load_ok(&format!(
            "schedule_timezone: Europe/Prague\n{MINIMAL}{mail}"
        ));
        assert_eq!(config.mail.unwrap().timezone, "Europe/Prague");
        let config = load_ok(&format!(
            "schedule_timezone: Europe/Prague\n{MINIMAL}{mail}  timezone: UTC\n"
        ));
        assert_eq!(config.mail.unwrap().timezone, "UTC");
    }

    #[test]
    #[cfg(feature = "csv")]
    fn unknown_time_zones_are_located_with_a_suggestion() {
        assert_eq!(
            error(&format!("schedule_timezone: Europe/Prag\n{MINIMAL}")),
            r#"1:20: schedule_timezone: unknown time zone "Europe/Prag"; did you mean "Europe/Prague"?"#
        );
        assert_eq!(
            error(&format!("schedule_timezone: Nowhere\n{MINIMAL}")),
            r#"1:20: schedule_timezone: unknown time zone "Nowhere"; expected an IANA name such as UTC or Europe/Prague"#
        );
        assert_eq!(
            error(&source("    schedule_timezone: europe/prague\n")),
            r#"6:24: sources[0].schedule_timezone: unknown time zone "europe/prague"; did you mean "Europe/Prague"?"#
        );
        assert_eq!(
            error(&format!("schedule_timezone: 1\n{MINIMAL}")),
            "1:20: schedule_timezone: expected a string, found 1"
        );
    }

    #[test]
    #[cfg(feature = "csv")]
    fn run_on_start_is_a_strict_boolean() {
        assert_eq!(
            error(&format!("run_on_start: yes\n{MINIMAL}")),
            r#"1:15: run_on_start: expected true or false, found "yes""#
        );
        assert_eq!(
            error(&source("    run_on_start: 0\n")),
            "6:19: sources[0].run_on_start: expected true or false, found 0"
        );
    }

    #[test]
    #[cfg(feature = "csv")]
    fn watch_true_false_or_a_mapping() {
        let watch =
            |value: &str| load_ok(&source(&format!("    watch: {value}\n"))).sources[0].watch;
        assert_eq!(watch("true"), Some(WatchConfig::default()));
        assert_eq!(
            WatchConfig::default(),
            WatchConfig {
                quiet: Duration::from_secs(2),
                rescan: Duration::from_secs(60)
            }
        );
        assert_eq!(watch("false"), None);
        assert_eq!(
            watch("{quiet: 500ms, rescan: 5m}"),
            Some(WatchConfig {
                quiet: Duration::from_millis(500),
                rescan: Duration::from_secs(300)
            })
        );
        assert_eq!(
            watch("{rescan: 10s}"),
            Some(WatchConfig {
                quiet: Duration::from_secs(2),
                rescan: Duration::from_secs(10)
            })
        );
        assert_eq!(watch("{}"), Some(WatchConfig::default()));
    }

    #[test]
    #[cfg(feature = "csv")]
    fn watch_errors_are_located() {
        assert_eq!(
            error(&source("    watch: on\n")),
            r#"6:12: sources[0].watch: expected true, false or a mapping such as {quiet: 2s, rescan: 60s}, found "on""#
        );
        assert_eq!(
            error(&source("    watch:\n      quiet: 0s\n")),
            "7:14: sources[0].watch.quiet: must be longer than zero"
        );
        assert_eq!(
            error(&source("    watch:\n      rescan: 60\n")),
            r#"7:15: sources[0].watch.rescan: missing unit: add ms, s, m, h or d (e.g. 30d), found "60""#
        );
        assert_eq!(
            error(&source("    watch:\n      rescan: never\n")),
            "7:15: sources[0].watch.rescan: expected a duration such as 500ms, 30s or 15m (never is not allowed here)"
        );
        assert_eq!(
            error(&source("    watch:\n      quite: 1s\n")),
            r#"7:7: sources[0].watch.quite: unknown key; did you mean "quiet"?"#
        );
    }

    #[test]
    fn readiness_and_its_errors() {
        let config = load_ok(&format!("{MINIMAL}readiness:\n  max_failed_runs: 0\n"));
        assert_eq!(config.readiness.max_failed_runs, 0);
        assert_eq!(
            error(&format!("{MINIMAL}readiness:\n  max_failed_runs: -1\n")),
            "4:20: readiness.max_failed_runs: expected a non-negative integer, found -1"
        );
        assert_eq!(
            error(&format!("{MINIMAL}readiness:\n  max_faild_runs: 1\n")),
            r#"4:3: readiness.max_faild_runs: unknown key; did you mean "max_failed_runs"?"#
        );
    }

    #[test]
    fn retry_and_its_errors() {
        let retry = |body: &str| format!("{MINIMAL}retry:\n{body}");
        let config = load_ok(&retry("  initial: 250ms\n  max: 2s\n"));
        assert_eq!(
            config.retry,
            RetryConfig {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(2)
            }
        );
        let config = load_ok(&retry("  initial: 15m\n"));
        assert_eq!(config.retry.initial, config.retry.max);
        assert_eq!(
            error(&retry("  initial: 0s\n")),
            "4:12: retry.initial: must be longer than zero"
        );
        assert_eq!(
            error(&retry("  max: never\n")),
            "4:8: retry.max: expected a duration such as 500ms, 30s or 15m (never is not allowed here)"
        );
        assert_eq!(
            error(&retry("  initial: 1m\n  max: 30s\n")),
            "5:8: retry.max: must be at least retry.initial (1m > 30s)"
        );
        assert_eq!(
            error(&retry("  initial: 1h\n")),
            "4:12: retry.initial: must be at most retry.max (default 15m) (1h > 15m)"
        );
        assert_eq!(
            error(&retry("  max: 10s\n")),
            "4:8: retry.max: must be at least retry.initial (30s > 10s)"
        );
        assert_eq!(
            error(&retry("  intial: 1s\n")),
            r#"4:3: retry.intial: unknown key; did you mean "initial"?"#
        );
    }

    #[test]
    fn api_token_is_optional_but_not_empty() {
        let config = load_ok(&format!("{MINIMAL}api:\n  listen: 127.0.0.1:9464\n"));
        let api = config.api.unwrap();
        assert_eq!(api.listen.to_string(), "127.0.0.1:9464");
        assert!(api.token.is_none());
        assert_eq!(
            error(&format!(
                "{MINIMAL}api:\n  token: ${{env:LIAISON_API_TOKEN}}\n"
            )),
            r#"3:1: api: missing required key "listen""#
        );
        assert_eq!(
            error(&format!(
                "{MINIMAL}api:\n  listen: 127.0.0.1:9464\n  token:\n"
            )),
            "5:3: api.token: a value is required (leave the key out to turn the admin API off)"
        );
        assert_eq!(
            error(&format!(
                "{MINIMAL}api:\n  listen: 127.0.0.1:9464\n  token: \"\"\n"
            )),
            "5:10: api.token: must not be empty"
        );
    }

    #[test]
    fn six_field_schedules_and_seven_refused_with_location() {
        let mail = |schedule: &str| {
            format!("{MINIMAL}mail:\n  transport: file://m\n  from: a@example.com\n  schedule: \"{schedule}\"\n")
        };
        let config = load_ok(&mail("*/2 * * * * *"));
        assert_eq!(config.mail.unwrap().schedule.as_str(), "*/2 * * * * *");
        assert_eq!(
            error(&mail("0 0 0 * * * 2026")),
            r#"6:13: mail.schedule: invalid cron expression "0 0 0 * * * 2026": expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found 7"#
        );
        assert_eq!(
            error(&mail("61 * * * * *")),
            r#"6:13: mail.schedule: invalid cron expression "61 * * * * *": second 61 is out of range 0-59"#
        );
    }

    #[test]
    fn public_load_str_reports_file_line_column() {
        let errors = load_str(
            "store: sqlite://l.db\nsources: []\nretry:\n  initial: 0s\n",
            Path::new("conf/l.yaml"),
        )
        .unwrap_err();
        assert_eq!(
            errors.to_string().trim_end(),
            "conf/l.yaml:4:12: retry.initial: must be longer than zero"
        );
    }
}

#[test]
fn accounts_are_read_with_lower_cased_domains() {
    let config = load_ok(&format!(
        "{MINIMAL}accounts:\n  - {{id: acme, name: ACME s.r.o., domains: [Acme.Example, acme.cz]}}\n  - id: 42\n    name: Numbered\n"
    ));
    let got: Vec<(&str, &str, Vec<&str>)> = config
        .accounts
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.name.as_str(),
                a.domains.iter().map(|d| d.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("acme", "ACME s.r.o.", vec!["acme.example", "acme.cz"]),
            ("42", "Numbered", vec![]),
        ]
    );
    assert_eq!(
        config.declared_accounts()[0].name.as_deref(),
        Some("ACME s.r.o.")
    );
    assert!(load_ok(MINIMAL).accounts.is_empty());
}

#[test]
fn accounts_refuse_unknown_keys_and_other_shapes() {
    assert_eq!(
        error(&format!(
            "{MINIMAL}accounts:\n  - id: acme\n    name: ACME\n    domain: [acme.example]\n"
        )),
        "6:5: accounts[0].domain: unknown key for an account; did you mean \"domains\"?"
    );
    assert_eq!(
        error(&format!("{MINIMAL}accounts: acme\n")),
        "3:11: accounts: expected a list, found \"acme\""
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}accounts:\n  - {{id: acme, name: ACME, domains: acme.example}}\n"
        )),
        "4:37: accounts[0].domains: expected a list, found \"acme.example\""
    );
}
