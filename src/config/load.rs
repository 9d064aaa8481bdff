//! The walk from the located YAML tree to [`Config`]: top level and the small
//! sections. Sources and mail have their own modules.

use std::path::Path;

use super::model::{
    ApiConfig, Config, DeprovisionConfig, LogConfig, LogFormat, PortalConfig, ReadinessConfig,
    RegistrationConfig, RetryConfig, SafetyConfig, StoreLocation,
};
use super::walk::{self, Ctx, EnvLookup, Section};
use super::yaml::{self, quote, Node};
use super::{accounts, duration, mail, password, source, ConfigErrors};

const TOP_KEYS: &[&str] = &[
    "store",
    "portal",
    "default_locale",
    "schedule_timezone",
    "run_on_start",
    "sources",
    "accounts",
    "safety",
    "deprovision",
    "mail",
    "readiness",
    "retry",
    "api",
    "log",
    "password_policy",
    "registration",
];
const PORTAL_KEYS: &[&str] = &["url"];
const SAFETY_KEYS: &[&str] = &[
    "max_deprovision",
    "max_deprovision_ratio",
    "max_bad_row_ratio",
];
const DEPROVISION_KEYS: &[&str] = &["delete_after"];
const READINESS_KEYS: &[&str] = &["max_failed_runs"];
const RETRY_KEYS: &[&str] = &["initial", "max"];
const API_KEYS: &[&str] = &["listen", "token", "public_url"];
const REGISTRATION_KEYS: &[&str] = &["cooldown"];
const LOG_KEYS: &[&str] = &["format", "level"];

/// Loads `text` as the config file: parse, walk, collect every error. Messages
/// name `file` as the caller wrote it; relative paths in the file resolve
/// against the folder of `absolute_file`, which becomes [`Config::file`].
pub(super) fn load_with(
    text: &str,
    file: &Path,
    absolute_file: &Path,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let base_dir = absolute_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut ctx = Ctx::new(file, base_dir, env);
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err((span, message)) => {
            ctx.error(span, "", message);
            return Err(ConfigErrors::sorted(ctx.into_errors()));
        }
    };
    if root.is_null() {
        ctx.error(
            root.span,
            "",
            "the file is empty: at least \"store\" and \"sources\" are required",
        );
        return Err(ConfigErrors::sorted(ctx.into_errors()));
    }
    let config = walk_root(&mut ctx, absolute_file, &root);
    match config {
        Some(config) if !ctx.has_errors() => Ok(config),
        _ => Err(ConfigErrors::sorted(ctx.into_errors())),
    }
}

/// `None` when something required is missing (an error is then recorded).
fn walk_root(ctx: &mut Ctx<'_>, file: &Path, root: &Node) -> Option<Config> {
    let top = Section::new(ctx, "", root)?;
    top.deny_unknown(ctx, TOP_KEYS, "");

    let store = top.require(ctx, "store").and_then(|n| store(ctx, n));
    let portal = top.section(ctx, "portal").and_then(|s| portal(ctx, s));
    let default_locale = match top.get("default_locale") {
        Some(n) => locale(ctx, "default_locale", n).unwrap_or_default(),
        None => "en".to_owned(),
    };
    let defaults = source::Defaults {
        timezone: top
            .get("schedule_timezone")
            .and_then(|n| walk::timezone(ctx, "schedule_timezone", n))
            .unwrap_or(chrono_tz::UTC),
        run_on_start: top
            .get("run_on_start")
            .and_then(|n| walk::boolean(ctx, "run_on_start", n))
            .unwrap_or(true),
    };
    let sources = top
        .require(ctx, "sources")
        .and_then(|n| source::sources(ctx, n, &defaults));
    let accounts = top
        .get("accounts")
        .map(|n| accounts::accounts(ctx, n))
        .unwrap_or_default();
    let safety = top
        .section(ctx, "safety")
        .map(|s| safety(ctx, &s))
        .unwrap_or_default();
    let deprovision = top
        .section(ctx, "deprovision")
        .map(|s| deprovision(ctx, &s))
        .unwrap_or_default();
    let mut mail = top
        .section(ctx, "mail")
        .and_then(|s| mail::mail(ctx, &s, defaults.timezone));
    let readiness = top
        .section(ctx, "readiness")
        .map(|s| readiness(ctx, &s))
        .unwrap_or_default();
    let retry = top
        .section(ctx, "retry")
        .map(|s| retry(ctx, &s))
        .unwrap_or_default();
    let api = top.section(ctx, "api").and_then(|s| api(ctx, &s));
    let log = top
        .section(ctx, "log")
        .map(|s| log(ctx, &s))
        .unwrap_or_default();
    let password_policy = top
        .section(ctx, "password_policy")
        .map(|s| password::password_policy(ctx, &s))
        .unwrap_or_default();
    let registration = top
        .section(ctx, "registration")
        .map(|s| registration(ctx, &s))
        .unwrap_or_default();
    // SPEC §4: the set-password page defaults to `api.public_url` + `/password`.
    if let (Some(mail), Some(public)) = (
        mail.as_mut(),
        api.as_ref().and_then(|a| a.public_url.as_ref()),
    ) {
        if mail.welcome.set_password_url.is_none() {
            mail.welcome.set_password_url = Some(mail::password_page(public));
        }
    }

    Some(Config {
        file: file.to_path_buf(),
        store: store?,
        portal,
        default_locale,
        schedule_timezone: defaults.timezone,
        run_on_start: defaults.run_on_start,
        sources: sources?,
        accounts,
        safety,
        deprovision,
        mail,
        readiness,
        retry,
        api,
        log,
        password_policy,
        registration,
    })
}

/// `sqlite://PATH` or `postgres://…` / `postgresql://…`.
fn store(ctx: &mut Ctx<'_>, node: &Node) -> Option<StoreLocation> {
    let url = walk::secret(ctx, "store", node)?;
    let text = url.expose();
    let Some((scheme, rest)) = text.split_once("://") else {
        ctx.error(
            node.span,
            "store",
            "expected sqlite://PATH or postgres://USER@HOST/DB",
        );
        return None;
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" if rest.is_empty() => {
            let message = "sqlite:// needs a file path, e.g. sqlite:///var/lib/liaison/liaison.db";
            ctx.error(node.span, "store", message);
            None
        }
        "sqlite" if rest.contains('?') => {
            let query = &rest[rest.find('?').unwrap_or(0)..];
            let message = format!(
                "sqlite:// takes a file path only, not a query string ({query:?}): \
                 Liaison sets the SQLite options itself"
            );
            ctx.error(node.span, "store", message);
            None
        }
        "sqlite" => Some(StoreLocation::Sqlite(ctx.resolve_path(rest))),
        "postgres" | "postgresql" => match url::Url::parse(text) {
            // The URL may hold a password: describe the problem, never the text.
            Err(e) => {
                ctx.error(node.span, "store", format!("invalid PostgreSQL URL: {e}"));
                None
            }
            Ok(_) => Some(StoreLocation::Postgres(url)),
        },
        other => {
            ctx.error(
                node.span,
                "store",
                format!(
                    "unsupported scheme {} (expected sqlite:// or postgres://)",
                    scheme_for_message(other)
                ),
            );
            None
        }
    }
}

/// A URL scheme for an error message: quoted if it looks like one, else
/// withheld (the text before `://` could be anything, even a password).
pub(super) fn scheme_for_message(scheme: &str) -> String {
    let looks_like_scheme = scheme.len() <= 32
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if looks_like_scheme {
        quote(scheme)
    } else {
        "before \"://\"".to_owned()
    }
}

fn portal(ctx: &mut Ctx<'_>, section: Section<'_>) -> Option<PortalConfig> {
    section.deny_unknown(ctx, PORTAL_KEYS, "");
    let url_node = section.require(ctx, "url")?;
    let url = walk::http_url(ctx, "portal.url", url_node)?;
    Some(PortalConfig { url })
}

fn registration(ctx: &mut Ctx<'_>, section: &Section<'_>) -> RegistrationConfig {
    let mut registration = RegistrationConfig::default();
    section.deny_unknown(ctx, REGISTRATION_KEYS, "");
    if let Some(n) = section.get("cooldown") {
        if let Some(d) = walk::positive_duration(ctx, "registration.cooldown", n) {
            registration.cooldown = d;
        }
    }
    registration
}

/// A language tag such as `en`, `cs` or `pt-BR`.
fn locale(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let text = walk::string(ctx, path, node)?;
    if crate::model::is_language_tag(&text) {
        Some(text)
    } else {
        let message = format!(
            "expected a language tag such as en, cs or pt-BR, found {}",
            quote(&text)
        );
        ctx.error(node.span, path, message);
        None
    }
}

fn safety(ctx: &mut Ctx<'_>, section: &Section<'_>) -> SafetyConfig {
    let mut safety = SafetyConfig::default();
    section.deny_unknown(ctx, SAFETY_KEYS, "");
    if let Some(n) = section.get("max_deprovision") {
        let path = section.child("max_deprovision");
        if let Some(v) = walk::unsigned(ctx, &path, n) {
            safety.max_deprovision = v;
        }
    }
    if let Some(n) = section.get("max_deprovision_ratio") {
        let path = section.child("max_deprovision_ratio");
        if let Some(v) = walk::ratio(ctx, &path, n) {
            safety.max_deprovision_ratio = v;
        }
    }
    if let Some(n) = section.get("max_bad_row_ratio") {
        let path = section.child("max_bad_row_ratio");
        if let Some(v) = walk::ratio(ctx, &path, n) {
            safety.max_bad_row_ratio = v;
        }
    }
    safety
}

fn deprovision(ctx: &mut Ctx<'_>, section: &Section<'_>) -> DeprovisionConfig {
    let mut deprovision = DeprovisionConfig::default();
    section.deny_unknown(ctx, DEPROVISION_KEYS, "");
    if let Some(n) = section.get("delete_after") {
        let path = "deprovision.delete_after";
        if let Some(d) = walk::duration_or_never(ctx, path, n, "to keep disabled users") {
            deprovision.delete_after = d;
        }
    }
    deprovision
}

fn api(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<ApiConfig> {
    section.deny_unknown(ctx, API_KEYS, "");
    let listen = section.require(ctx, "listen").and_then(|n| {
        let text = match &n.value {
            yaml::Value::Str(s) => s.clone(),
            _ => n.describe(),
        };
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let message = format!(
                    "expected an IP address and port such as 127.0.0.1:8080 or [::1]:8080, found {}",
                    n.describe()
                );
                ctx.error(n.span, "api.listen", message);
                None
            }
        }
    });
    // Absent: the admin API and SCIM are off (SPEC §7). Given but unusable
    // (an unset variable, empty): an error, never silently off.
    let token = match section.get("token") {
        Some(n) => Some(walk::secret(ctx, "api.token", n)?),
        None if section.key_span("token").is_some() => {
            let span = section.key_span("token").unwrap_or(section.span);
            let message = "a value is required (leave the key out to turn the admin API off)";
            ctx.error(span, "api.token", message);
            return None;
        }
        None => None,
    };
    let public_url = section
        .get("public_url")
        .and_then(|n| walk::http_url(ctx, "api.public_url", n));
    Some(ApiConfig {
        listen: listen?,
        token,
        public_url,
    })
}

fn readiness(ctx: &mut Ctx<'_>, section: &Section<'_>) -> ReadinessConfig {
    let mut readiness = ReadinessConfig::default();
    section.deny_unknown(ctx, READINESS_KEYS, "");
    if let Some(n) = section.get("max_failed_runs") {
        if let Some(v) = walk::unsigned(ctx, "readiness.max_failed_runs", n) {
            readiness.max_failed_runs = v;
        }
    }
    readiness
}

fn retry(ctx: &mut Ctx<'_>, section: &Section<'_>) -> RetryConfig {
    let mut retry = RetryConfig::default();
    section.deny_unknown(ctx, RETRY_KEYS, "");
    let initial = section
        .get("initial")
        .map(|n| walk::positive_duration(ctx, "retry.initial", n));
    let max = section
        .get("max")
        .map(|n| walk::positive_duration(ctx, "retry.max", n));
    if let Some(Some(d)) = initial {
        retry.initial = d;
    }
    if let Some(Some(d)) = max {
        retry.max = d;
    }
    // Compare only values that were read; report at the key that was given
    // (the later one when both were).
    let valid = !matches!(initial, Some(None)) && !matches!(max, Some(None));
    if valid && retry.initial > retry.max {
        let span = section
            .get("max")
            .or_else(|| section.get("initial"))
            .map(|n| n.span)
            .unwrap_or(section.span);
        let (path, message) = if section.get("max").is_some() {
            ("retry.max", "must be at least retry.initial")
        } else {
            ("retry.initial", "must be at most retry.max (default 15m)")
        };
        let message = format!(
            "{message} ({} > {})",
            duration::format_duration(retry.initial),
            duration::format_duration(retry.max)
        );
        ctx.error(span, path, message);
    }
    retry
}

fn log(ctx: &mut Ctx<'_>, section: &Section<'_>) -> LogConfig {
    let mut log = LogConfig::default();
    section.deny_unknown(ctx, LOG_KEYS, "");
    if let Some(n) = section.get("format") {
        match walk::string(ctx, "log.format", n).as_deref() {
            Some("human") => log.format = LogFormat::Human,
            Some("json") => log.format = LogFormat::Json,
            Some(other) => {
                let message = format!("expected human or json, found {}", quote(other));
                ctx.error(n.span, "log.format", message);
            }
            None => {}
        }
    }
    if let Some(n) = section.get("level") {
        if let Some(level) = walk::non_empty_string(ctx, "log.level", n) {
            match tracing_subscriber::EnvFilter::builder().parse(&level) {
                Ok(_) => log.level = Some(level),
                Err(e) => {
                    let message = format!("invalid filter {}: {e}", quote(&level));
                    ctx.error(n.span, "log.level", message);
                }
            }
        }
    }
    log
}
