//! What changed between two loaded configs, for a reload: one log line per
//! change, the keys that need a restart, the sources to rebuild.
//!
//! Secrets (the store URL, `mail.transport`, `api.token`) are compared but
//! never printed: their lines say only that they changed.

use std::fmt::Display;

use super::duration::format_duration;
use super::model::{
    AccountConfig, ApiConfig, Config, LogConfig, MailConfig, SendWindow, SourceConfig, WatchConfig,
};

/// Keys that take effect only after a restart (see [`ConfigDiff::restart_needed`]).
const RESTART_STORE: &str = "store";
const RESTART_LISTEN: &str = "api.listen";
const RESTART_LOG: &str = "log";

/// The changes from one config to the next, computed by [`diff`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    lines: Vec<String>,
    restart: Vec<&'static str>,
    sources: Vec<String>,
}

impl ConfigDiff {
    /// Whether nothing that matters changed (comments and layout do not count).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// What to log, one line per change: sources first (in the new file's
    /// order, removed ones after), then the global sections. No secrets.
    pub fn lines(&self) -> Vec<String> {
        self.lines.clone()
    }

    /// The changed keys that only take effect after a restart (`store`,
    /// `api.listen`, `log`), each named once.
    pub fn restart_needed(&self) -> Vec<&'static str> {
        self.restart.clone()
    }

    /// Names of the sources added, removed, or whose settings changed.
    pub fn sources_changed(&self) -> Vec<String> {
        self.sources.clone()
    }

    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    fn restart(&mut self, key: &'static str) {
        if !self.restart.contains(&key) {
            self.restart.push(key);
        }
    }

    /// `KEY A → B` when the values differ.
    fn value<T: PartialEq + Display>(&mut self, key: &str, old: T, new: T) {
        if old != new {
            self.line(format!("{key} {old} → {new}"));
        }
    }
}

/// Compares `old` with `new` (the file is the same or renamed: `file` is
/// not compared).
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff::default();
    sources(&mut d, &old.sources, &new.sources);
    if old.store != new.store {
        d.line("store changed (takes effect after a restart)".to_owned());
        d.restart(RESTART_STORE);
    }
    let portal = |c: &Config| {
        c.portal.as_ref().map_or_else(
            || "none".to_owned(),
            |p| tick(super::redact_url(p.url.as_str())),
        )
    };
    d.value("portal.url", portal(old), portal(new));
    d.value(
        "default_locale",
        tick(&old.default_locale),
        tick(&new.default_locale),
    );
    accounts(&mut d, &old.accounts, &new.accounts);
    let (os, ns) = (&old.safety, &new.safety);
    d.value(
        "safety.max_deprovision",
        os.max_deprovision,
        ns.max_deprovision,
    );
    d.value(
        "safety.max_deprovision_ratio",
        os.max_deprovision_ratio,
        ns.max_deprovision_ratio,
    );
    d.value(
        "safety.max_bad_row_ratio",
        os.max_bad_row_ratio,
        ns.max_bad_row_ratio,
    );
    let delete_after = |c: &Config| {
        c.deprovision
            .delete_after
            .map_or_else(|| "never".to_owned(), format_duration)
    };
    d.value(
        "deprovision.delete_after",
        delete_after(old),
        delete_after(new),
    );
    mail(&mut d, old.mail.as_ref(), new.mail.as_ref());
    d.value(
        "registration.cooldown",
        format_duration(old.registration.cooldown),
        format_duration(new.registration.cooldown),
    );
    d.value(
        "readiness.max_failed_runs",
        old.readiness.max_failed_runs,
        new.readiness.max_failed_runs,
    );
    d.value(
        "retry.initial",
        format_duration(old.retry.initial),
        format_duration(new.retry.initial),
    );
    d.value(
        "retry.max",
        format_duration(old.retry.max),
        format_duration(new.retry.max),
    );
    api(&mut d, old.api.as_ref(), new.api.as_ref());
    log(&mut d, &old.log, &new.log);
    d
}

/// `accounts:` by id: added, changed (name or domains), removed. The
/// daemon's next run declares the new list.
fn accounts(d: &mut ConfigDiff, old: &[AccountConfig], new: &[AccountConfig]) {
    for a in new {
        match old.iter().find(|o| o.id == a.id) {
            None => d.line(format!("account `{}` added", a.id)),
            Some(o) if o.name != a.name || o.domains != a.domains => {
                d.line(format!("account `{}` changed", a.id));
            }
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|a| a.id == o.id) {
            d.line(format!("account `{}` removed", o.id));
        }
    }
}

/// Sources by name: added, changed (in the new order), removed; and whether
/// the order of the sources in both changed (it is attribute precedence).
fn sources(d: &mut ConfigDiff, old: &[SourceConfig], new: &[SourceConfig]) {
    let find = |list: &'_ [SourceConfig], name: &str| -> Option<usize> {
        list.iter().position(|s| s.name == name)
    };
    for source in new {
        let before = d.lines.len();
        match find(old, &source.name) {
            None => d.line(format!("source `{}` added", source.name)),
            Some(i) => source_settings(d, &old[i], source),
        }
        if d.lines.len() > before {
            d.sources.push(source.name.clone());
        }
    }
    for source in old {
        if find(new, &source.name).is_none() {
            d.line(format!("source `{}` removed", source.name));
            d.sources.push(source.name.clone());
        }
    }
    let kept = |list: &[SourceConfig], other: &[SourceConfig]| -> Vec<String> {
        list.iter()
            .filter(|s| find(other, &s.name).is_some())
            .map(|s| s.name.clone())
            .collect()
    };
    if kept(old, new) != kept(new, old) {
        d.line("sources: order changed (it is the attribute precedence)".to_owned());
    }
}

fn source_settings(d: &mut ConfigDiff, old: &SourceConfig, new: &SourceConfig) {
    let name = &new.name;
    let schedule = |s: &SourceConfig| s.schedule.as_ref().map_or_else(|| "none".to_owned(), tick);
    let checks = [
        (old.connector != new.connector).then(|| "connector settings changed".to_owned()),
        changed("schedule", schedule(old), schedule(new)),
        changed(
            "schedule_timezone",
            tick(old.timezone.name()),
            tick(new.timezone.name()),
        ),
        changed("run_on_start", old.run_on_start, new.run_on_start),
        changed("watch", watch(old.watch), watch(new.watch)),
        (old.map != new.map).then(|| "mapping changed; every record is re-read once".to_owned()),
        changed(
            "max_bad_row_ratio",
            ratio(old.max_bad_row_ratio),
            ratio(new.max_bad_row_ratio),
        ),
        changed("full_every", every(old.full_every), every(new.full_every)),
    ];
    for change in checks.into_iter().flatten() {
        d.line(format!("source `{name}`: {change}"));
    }
}

/// `KEY A → B` when the values differ.
fn changed<T: PartialEq + Display>(key: &str, old: T, new: T) -> Option<String> {
    (old != new).then(|| format!("{key} {old} → {new}"))
}

fn watch(watch: Option<WatchConfig>) -> String {
    match watch {
        None => "off".to_owned(),
        Some(w) => format!(
            "on (quiet {}, rescan {})",
            format_duration(w.quiet),
            format_duration(w.rescan)
        ),
    }
}

fn every(full_every: Option<std::time::Duration>) -> String {
    full_every.map_or_else(|| "never".to_owned(), format_duration)
}

fn ratio(ratio: Option<super::Ratio>) -> String {
    ratio.map_or_else(|| "none (the safety default)".to_owned(), |r| r.to_string())
}

/// `text` in backticks, as the log shows expressions and names.
fn tick(text: impl Display) -> String {
    format!("`{text}`")
}

fn mail(d: &mut ConfigDiff, old: Option<&MailConfig>, new: Option<&MailConfig>) {
    let (old, new) = match (old, new) {
        (None, None) => return,
        (None, Some(_)) => return d.line("mail added".to_owned()),
        (Some(_), None) => return d.line("mail removed".to_owned()),
        (Some(old), Some(new)) => (old, new),
    };
    if old.transport != new.transport {
        // The URL may hold a password: say only that it changed.
        d.line("mail.transport changed".to_owned());
    }
    d.value("mail.from", tick(&old.from), tick(&new.from));
    d.value("mail.schedule", tick(&old.schedule), tick(&new.schedule));
    d.value("mail.window", window(&old.window), window(&new.window));
    d.value("mail.timezone", tick(&old.timezone), tick(&new.timezone));
    let templates = |m: &MailConfig| {
        m.templates
            .as_ref()
            .map_or_else(|| "built-in".to_owned(), |p| tick(p.display()))
    };
    d.value("mail.templates", templates(old), templates(new));
    let rate = |m: &MailConfig| {
        m.rate_per_minute
            .map_or_else(|| "unlimited".to_owned(), |r| r.to_string())
    };
    d.value("mail.rate_per_minute", rate(old), rate(new));
    d.value(
        "mail.confirm_sync_created",
        old.confirm_sync_created,
        new.confirm_sync_created,
    );
    d.value(
        "mail.max_welcome_per_run",
        old.max_welcome_per_run,
        new.max_welcome_per_run,
    );
    d.value("mail.max_attempts", old.max_attempts, new.max_attempts);
    let ca = |m: &MailConfig| {
        m.ca_file
            .as_ref()
            .map_or_else(|| "system roots".to_owned(), |p| tick(p.display()))
    };
    d.value("mail.ca_file", ca(old), ca(new));
    d.value(
        "mail.timeout",
        format_duration(old.timeout),
        format_duration(new.timeout),
    );
    d.value(
        "mail.welcome.token_ttl",
        format_duration(old.welcome.token_ttl),
        format_duration(new.welcome.token_ttl),
    );
    let link = |m: &MailConfig| {
        m.welcome
            .set_password_url
            .as_ref()
            .map_or_else(|| "none".to_owned(), tick)
    };
    d.value("mail.welcome.set_password_url", link(old), link(new));
}

fn window(window: &Option<SendWindow>) -> String {
    match window {
        None => "none".to_owned(),
        Some(w) => {
            let days: Vec<String> = w.days.iter().map(u8::to_string).collect();
            format!(
                "days {} from {}:00 to {}:00",
                days.join(","),
                w.from_hour,
                w.to_hour
            )
        }
    }
}

fn api(d: &mut ConfigDiff, old: Option<&ApiConfig>, new: Option<&ApiConfig>) {
    match (old, new) {
        (None, None) => {}
        (None, Some(new)) => {
            d.line(format!(
                "api added (listen {}; takes effect after a restart)",
                new.listen
            ));
            d.restart(RESTART_LISTEN);
        }
        (Some(_), None) => {
            d.line("api removed (takes effect after a restart)".to_owned());
            d.restart(RESTART_LISTEN);
        }
        (Some(old), Some(new)) => {
            if old.listen != new.listen {
                d.line(format!(
                    "api.listen {} → {} (takes effect after a restart)",
                    old.listen, new.listen
                ));
                d.restart(RESTART_LISTEN);
            }
            // Compared, never printed.
            match (&old.token, &new.token) {
                (None, Some(_)) => d.line("api.token set: the admin API is on".to_owned()),
                (Some(_), None) => d.line("api.token removed: the admin API is off".to_owned()),
                (Some(a), Some(b)) if a != b => d.line("api.token changed".to_owned()),
                _ => {}
            }
            let public = |a: &ApiConfig| {
                a.public_url
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), tick)
            };
            d.value("api.public_url", public(old), public(new));
        }
    }
}

fn log(d: &mut ConfigDiff, old: &LogConfig, new: &LogConfig) {
    let format = |l: &LogConfig| match l.format {
        super::LogFormat::Human => "human",
        super::LogFormat::Json => "json",
    };
    let level = |l: &LogConfig| l.level.as_ref().map_or_else(|| "default".to_owned(), tick);
    let before = d.lines.len();
    d.value("log.format", format(old), format(new));
    d.value("log.level", level(old), level(new));
    if d.lines.len() > before {
        for line in &mut d.lines[before..] {
            line.push_str(" (takes effect after a restart)");
        }
        d.restart(RESTART_LOG);
    }
}

#[cfg(all(test, feature = "csv"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = "store: sqlite://liaison.db\nsources:\n  - name: partners\n    type: csv\n    path: partners.csv\n    schedule: \"*/15 * * * *\"\n";

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN_A" => Some("token-a-secret".to_owned()),
            "TOKEN_B" => Some("token-b-secret".to_owned()),
            "PG_A" => Some("postgres://u:pg-a-secret@db/l".to_owned()),
            "PG_B" => Some("postgres://u:pg-b-secret@db/l".to_owned()),
            "SMTP_A" => Some("smtp://u:smtp-a-secret@mail".to_owned()),
            "SMTP_B" => Some("smtp://u:smtp-b-secret@mail".to_owned()),
            _ => None,
        }
    }

    fn config(text: &str) -> Config {
        let file = Path::new("/etc/liaison/liaison.yaml");
        match super::super::load::load_with(text, file, file, &env) {
            Ok(config) => config,
            Err(errors) => panic!("{errors}\n{text}"),
        }
    }

    fn lines(old: &str, new: &str) -> Vec<String> {
        diff(&config(old), &config(new)).lines()
    }

    #[test]
    fn the_same_config_has_no_changes() {
        let d = diff(&config(BASE), &config(&format!("# a comment\n{BASE}")));
        assert!(d.is_empty());
        assert!(d.lines().is_empty());
        assert!(d.restart_needed().is_empty());
        assert!(d.sources_changed().is_empty());
    }

    #[test]
    fn accounts_added_changed_and_removed() {
        let old = format!(
            "{BASE}accounts:\n  - {{id: a, name: A}}\n  - {{id: b, name: B, domains: [b.example]}}\n  - {{id: c, name: C}}\n"
        );
        let new = format!(
            "{BASE}accounts:\n  - {{id: b, name: B, domains: [b.cz]}}\n  - {{id: a, name: A}}\n  - {{id: d, name: D}}\n"
        );
        assert_eq!(
            lines(&old, &new),
            [
                "account `b` changed",
                "account `d` added",
                "account `c` removed"
            ]
        );
        assert!(diff(&config(&old), &config(&new))
            .restart_needed()
            .is_empty());
    }

    #[test]
    fn sources_added_and_removed() {
        let two = format!("{BASE}  - name: vendors\n    type: csv\n    path: v.csv\n");
        let d = diff(&config(BASE), &config(&two));
        assert_eq!(d.lines(), ["source `vendors` added"]);
        assert_eq!(d.sources_changed(), ["vendors"]);
        assert!(d.restart_needed().is_empty());
        let d = diff(&config(&two), &config(BASE));
        assert_eq!(d.lines(), ["source `vendors` removed"]);
        assert_eq!(d.sources_changed(), ["vendors"]);
    }

    #[test]
    fn source_order_is_precedence() {
        let ab = "store: sqlite://l.db\nsources:\n  - {name: a, type: csv, path: a.csv}\n  - {name: b, type: csv, path: b.csv}\n";
        let ba = "store: sqlite://l.db\nsources:\n  - {name: b, type: csv, path: b.csv}\n  - {name: a, type: csv, path: a.csv}\n";
        assert_eq!(
            lines(ab, ba),
            ["sources: order changed (it is the attribute precedence)"]
        );
    }

    #[test]
    fn each_source_setting_has_its_line() {
        let changed = "store: sqlite://liaison.db\nsources:\n  - name: partners\n    type: csv\n    path: other.csv\n    schedule: \"0 */2 * * * *\"\n    schedule_timezone: Europe/Prague\n    run_on_start: false\n    watch: {quiet: 500ms}\n    when: \"email\"\n    max_bad_row_ratio: 0.2\n    full_every: 6h\n";
        let d = diff(&config(BASE), &config(changed));
        assert_eq!(
            d.lines(),
            [
                "source `partners`: connector settings changed",
                "source `partners`: schedule `*/15 * * * *` → `0 */2 * * * *`",
                "source `partners`: schedule_timezone `UTC` → `Europe/Prague`",
                "source `partners`: run_on_start true → false",
                "source `partners`: watch off → on (quiet 500ms, rescan 1m)",
                "source `partners`: mapping changed; every record is re-read once",
                "source `partners`: max_bad_row_ratio none (the safety default) → 0.2",
                "source `partners`: full_every 1d → 6h",
            ]
        );
        assert_eq!(d.sources_changed(), ["partners"]);
        assert!(d.restart_needed().is_empty());
    }

    #[test]
    fn inherited_settings_show_per_source() {
        let d = diff(
            &config(BASE),
            &config(&format!(
                "schedule_timezone: Europe/Prague\nrun_on_start: false\n{BASE}"
            )),
        );
        assert_eq!(
            d.lines(),
            [
                "source `partners`: schedule_timezone `UTC` → `Europe/Prague`",
                "source `partners`: run_on_start true → false",
            ]
        );
    }

    #[test]
    fn global_sections_have_their_lines() {
        let new = format!(
            "{BASE}portal:\n  url: https://portal.example.com/login\ndefault_locale: cs\nsafety:\n  max_deprovision: 10\n  max_deprovision_ratio: 0.2\n  max_bad_row_ratio: 0.1\ndeprovision:\n  delete_after: 30d\nreadiness:\n  max_failed_runs: 5\nretry:\n  initial: 10s\n  max: 1h\n"
        );
        assert_eq!(
            lines(BASE, &new),
            [
                "portal.url none → `https://portal.example.com/login`",
                "default_locale `en` → `cs`",
                "safety.max_deprovision 50 → 10",
                "safety.max_deprovision_ratio 0.1 → 0.2",
                "safety.max_bad_row_ratio 0.05 → 0.1",
                "deprovision.delete_after never → 30d",
                "readiness.max_failed_runs 3 → 5",
                "retry.initial 30s → 10s",
                "retry.max 15m → 1h",
            ]
        );
    }

    #[test]
    fn mail_lines() {
        let mail = |extra: &str| {
            format!("{BASE}mail:\n  transport: file://mail\n  from: a@example.com\n{extra}")
        };
        assert_eq!(lines(BASE, &mail("")), ["mail added"]);
        assert_eq!(lines(&mail(""), BASE), ["mail removed"]);
        // The shipped templates, as an override folder: it must exist.
        const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/templates");
        let changed = &format!("  schedule: \"*/5 * * * *\"\n  window: {{days: [mon-fri], from: 8, to: 18}}\n  timezone: Europe/Prague\n  templates: {TEMPLATES}\n  rate_per_minute: 30\n  confirm_sync_created: true\n");
        assert_eq!(
            lines(&mail(""), &mail(changed)),
            [
                "mail.schedule `* * * * *` → `*/5 * * * *`",
                "mail.window none → days 1,2,3,4,5 from 8:00 to 18:00",
                "mail.timezone `UTC` → `Europe/Prague`",
                &format!("mail.templates built-in → `{TEMPLATES}`"),
                "mail.rate_per_minute unlimited → 30",
                "mail.confirm_sync_created false → true",
            ]
        );
    }

    #[test]
    fn restart_keys_are_named_once() {
        let with = |api: &str, log: &str| format!("{BASE}api:\n  listen: {api}\nlog:\n{log}");
        let d = diff(
            &config(&with("127.0.0.1:9464", "  format: human\n")),
            &config(&with("127.0.0.1:9465", "  format: json\n  level: debug\n")),
        );
        assert_eq!(
            d.lines(),
            [
                "api.listen 127.0.0.1:9464 → 127.0.0.1:9465 (takes effect after a restart)",
                "log.format human → json (takes effect after a restart)",
                "log.level default → `debug` (takes effect after a restart)",
            ]
        );
        assert_eq!(d.restart_needed(), ["api.listen", "log"]);
        assert!(d.sources_changed().is_empty());

        let api = format!("{BASE}api:\n  listen: 127.0.0.1:9464\n");
        let d = diff(&config(BASE), &config(&api));
        assert_eq!(
            d.lines(),
            ["api added (listen 127.0.0.1:9464; takes effect after a restart)"]
        );
        assert_eq!(d.restart_needed(), ["api.listen"]);
        let d = diff(&config(&api), &config(BASE));
        assert_eq!(d.lines(), ["api removed (takes effect after a restart)"]);

        let sqlite = diff(&config(BASE), &config(&BASE.replace("liaison.db", "x.db")));
        assert_eq!(
            sqlite.lines(),
            ["store changed (takes effect after a restart)"]
        );
        assert_eq!(sqlite.restart_needed(), ["store"]);
    }

    #[test]
    fn secrets_are_compared_but_never_printed() {
        let text = |pg: &str, smtp: &str, token: &str| {
            format!(
                "store: ${{env:{pg}}}\nsources: []\nmail:\n  transport: ${{env:{smtp}}}\n  from: a@example.com\napi:\n  listen: 127.0.0.1:9464\n{token}"
            )
        };
        let a = config(&text("PG_A", "SMTP_A", "  token: ${env:TOKEN_A}\n"));
        let b = config(&text("PG_B", "SMTP_B", "  token: ${env:TOKEN_B}\n"));
        let off = config(&text("PG_B", "SMTP_B", ""));
        let all = [diff(&a, &b), diff(&b, &off), diff(&off, &a)];
        assert_eq!(
            all[0].lines(),
            [
                "store changed (takes effect after a restart)",
                "mail.transport changed",
                "api.token changed",
            ]
        );
        assert_eq!(all[1].lines(), ["api.token removed: the admin API is off"]);
        assert!(all[2]
            .lines()
            .contains(&"api.token set: the admin API is on".to_owned()));
        let printed = format!(
            "{:?}",
            all.iter().map(ConfigDiff::lines).collect::<Vec<_>>()
        );
        for secret in ["secret", "token-a", "token-b", "pg-a", "smtp-b"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(diff(&a, &a).is_empty());
    }
}
