//! `sources:`: the list of connector instances, their common keys (`name`,
//! `type`, `schedule`, `map`, …) and each built-in connector's own keys.

use std::collections::HashMap;

use crate::mapping::{MapSpec, Mapping};
use crate::plugins::{
    BUILT_IN as BUILT_IN_CONNECTORS, KEYED as KEYED_CONNECTORS, KNOWN as KNOWN_CONNECTORS,
};

#[cfg(any(feature = "csv", feature = "exec", feature = "ldap", feature = "crm"))]
use super::model::ConnectorConfig;
use super::model::{SourceConfig, WatchConfig};
use super::walk::{self, Ctx, Section};
use super::yaml::{quote, Node, Value};
use super::{Schedule, Span};

/// Keys every source accepts, whatever its type.
#[cfg_attr(
    not(any(feature = "csv", feature = "exec", feature = "ldap", feature = "crm")),
    allow(dead_code)
)]
const COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "schedule",
    "schedule_timezone",
    "run_on_start",
    "watch",
    "max_bad_row_ratio",
    "full_every",
    "map",
    "when",
];

const WATCH_KEYS: &[&str] = &["quiet", "rescan"];

/// Connector types whose sources read files, and so can be watched.
const FILE_CONNECTORS: &[&str] = &["csv"];

/// `full_every` when absent: a daily full read catches what a change feed missed.
const DEFAULT_FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Top-level values a source inherits unless it sets its own.
pub(super) struct Defaults {
    /// `schedule_timezone` (UTC when absent).
    pub timezone: chrono_tz::Tz,
    /// `run_on_start` (true when absent).
    pub run_on_start: bool,
}

/// Reads `sources:` (a list, possibly empty). Sources with errors are left out.
pub(super) fn sources(
    ctx: &mut Ctx<'_>,
    node: &Node,
    defaults: &Defaults,
) -> Option<Vec<SourceConfig>> {
    let items = walk::list(ctx, "sources", node)?;
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("sources[{i}]");
        if let Some(source) = source(ctx, &path, item, &mut names, defaults) {
            out.push(source);
        }
    }
    Some(out)
}

fn source(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    names: &mut HashMap<String, Span>,
    defaults: &Defaults,
) -> Option<SourceConfig> {
    let section = Section::new(ctx, path, node)?;
    let name = section
        .require(ctx, "name")
        .and_then(|n| source_name(ctx, &section.child("name"), n, names));
    let kind = section
        .require(ctx, "type")
        .and_then(|n| connector_type(ctx, &section.child("type"), n));

    // Keys of a connector not in this build cannot be checked: say only that
    // the type is missing, not that every plugin key is unknown.
    #[cfg(feature = "csv")]
    if kind == Some("csv") {
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(CSV_KEYS).copied().collect();
        section.deny_unknown(ctx, &allowed, "for a csv source");
    }
    #[cfg(feature = "exec")]
    if kind == Some("exec") {
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(EXEC_KEYS).copied().collect();
        section.deny_unknown(ctx, &allowed, "for an exec source");
    }
    #[cfg(feature = "ldap")]
    if kind == Some("ldap") {
        let allowed: Vec<&str> = COMMON_KEYS
            .iter()
            .chain(super::ldap::LDAP_KEYS)
            .copied()
            .collect();
        section.deny_unknown(ctx, &allowed, "for an ldap source");
    }
    #[cfg(feature = "crm")]
    if kind == Some("crm") {
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(CRM_KEYS).copied().collect();
        section.deny_unknown(ctx, &allowed, "for a crm source");
    }

    let schedule = section.get("schedule").and_then(|n| {
        let path = section.child("schedule");
        let text = walk::string(ctx, &path, n)?;
        match Schedule::parse(&text) {
            Ok(schedule) => Some(schedule),
            Err(e) => {
                ctx.error(
                    n.span,
                    &path,
                    format!("invalid cron expression {}: {e}", quote(&text)),
                );
                None
            }
        }
    });
    let timezone = section
        .get("schedule_timezone")
        .and_then(|n| walk::timezone(ctx, &section.child("schedule_timezone"), n))
        .unwrap_or(defaults.timezone);
    let run_on_start = section
        .get("run_on_start")
        .and_then(|n| walk::boolean(ctx, &section.child("run_on_start"), n))
        .unwrap_or(defaults.run_on_start);
    let watch = watch(ctx, &section, kind);
    let max_bad_row_ratio = section
        .get("max_bad_row_ratio")
        .and_then(|n| walk::ratio(ctx, &section.child("max_bad_row_ratio"), n));
    let full_every = match section.get("full_every") {
        Some(n) => walk::duration_or_never(
            ctx,
            &section.child("full_every"),
            n,
            "for no periodic full read",
        )
        .unwrap_or(Some(DEFAULT_FULL_EVERY)),
        None => Some(DEFAULT_FULL_EVERY),
    };
    let map = map_spec(ctx, &section, kind);

    let connector = match kind {
        #[cfg(feature = "csv")]
        Some("csv") => csv::csv(ctx, &section).map(ConnectorConfig::Csv),
        #[cfg(feature = "exec")]
        Some("exec") => exec::exec(ctx, &section, name.as_deref()).map(ConnectorConfig::Exec),
        #[cfg(feature = "ldap")]
        Some("ldap") => {
            super::ldap::ldap(ctx, &section, name.as_deref()).map(ConnectorConfig::Ldap)
        }
        #[cfg(feature = "crm")]
        Some("crm") => crm::crm(ctx, &section, name.as_deref()).map(ConnectorConfig::Crm),
        _ => None,
    };
    Some(SourceConfig {
        name: name?,
        span: section.span,
        connector: connector?,
        schedule,
        timezone,
        run_on_start,
        watch,
        map,
        max_bad_row_ratio,
        full_every,
    })
}

/// `watch: true`/`false` or `watch: {quiet: 2s, rescan: 60s}` (each key
/// optional), on a source whose connector reads files.
fn watch(ctx: &mut Ctx<'_>, section: &Section<'_>, kind: Option<&str>) -> Option<WatchConfig> {
    let node = section.get("watch")?;
    let path = section.child("watch");
    let watch = if matches!(node.value, Value::Map(_)) {
        let map = section.section(ctx, "watch")?;
        map.deny_unknown(ctx, WATCH_KEYS, "");
        let mut watch = WatchConfig::default();
        if let Some(n) = map.get("quiet") {
            watch.quiet = walk::positive_duration(ctx, &map.child("quiet"), n)?;
        }
        if let Some(n) = map.get("rescan") {
            watch.rescan = walk::positive_duration(ctx, &map.child("rescan"), n)?;
        }
        Some(watch)
    } else {
        match node.value {
            Value::Bool(b) => b.then(WatchConfig::default),
            _ => {
                let message = format!(
                    "expected true, false or a mapping such as {{quiet: 2s, rescan: 60s}}, found {}",
                    node.describe()
                );
                ctx.error(node.span, &path, message);
                return None;
            }
        }
    };
    match kind {
        Some(kind) if watch.is_some() && !FILE_CONNECTORS.contains(&kind) => {
            let message = format!(
                "only sources that read files can be watched ({}), not type {}",
                FILE_CONNECTORS.join(", "),
                quote(kind)
            );
            ctx.error(node.span, &path, message);
            None
        }
        _ => watch,
    }
}

fn source_name(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    names: &mut HashMap<String, Span>,
) -> Option<String> {
    let name = walk::non_empty_string(ctx, path, node)?;
    let valid = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        let message = format!(
            "a source name is 1 to 64 of the characters A-Z a-z 0-9 _ -, found {}",
            quote(&name)
        );
        ctx.error(node.span, path, message);
        return None;
    }
    if let Some(first) = names.get(&name) {
        let message = format!(
            "duplicate source name {} (first at line {})",
            quote(&name),
            first.line
        );
        ctx.error(node.span, path, message);
        return None;
    }
    names.insert(name.clone(), node.span);
    Some(name)
}

/// The connector type if it is built in; reports unknown and absent ones.
fn connector_type(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<&'static str> {
    let text = walk::string(ctx, path, node)?;
    if let Some(built) = BUILT_IN_CONNECTORS.iter().find(|c| **c == text) {
        return Some(built);
    }
    let message = if KNOWN_CONNECTORS.contains(&text.as_str()) {
        let built = if BUILT_IN_CONNECTORS.is_empty() {
            "none".to_owned()
        } else {
            BUILT_IN_CONNECTORS.join(", ")
        };
        format!(
            "connector {} is not in this build (built in: {built})",
            quote(&text)
        )
    } else {
        format!(
            "unknown connector type {} (known: {})",
            quote(&text),
            KNOWN_CONNECTORS.join(", ")
        )
    };
    ctx.error(node.span, path, message);
    None
}

/// `map:` and `when:` as a [`MapSpec`], compiled once to report template errors
/// at the template's position. `None` (standard layout) when both are absent;
/// `when:` alone gives empty `fields`: the standard layout, filtered.
fn map_spec(ctx: &mut Ctx<'_>, section: &Section<'_>, kind: Option<&str>) -> Option<MapSpec> {
    let map_node = section.get("map");
    let when_node = section.get("when");
    if map_node.is_none() && when_node.is_none() {
        return None;
    }
    let mut spec = MapSpec {
        keyed: kind.is_some_and(|k| KEYED_CONNECTORS.contains(&k)),
        ..MapSpec::default()
    };
    let mut spans: Vec<Span> = Vec::new();
    let mut ok = true;
    if map_node.is_some() {
        match section.section(ctx, "map") {
            Some(map) => {
                for (key, _, value) in map.entries() {
                    match walk::scalar_text(ctx, &map.child(key), value) {
                        Some(template) => {
                            spec.fields.push(((*key).to_owned(), template));
                            spans.push(value.span);
                        }
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(node) = when_node {
        match walk::scalar_text(ctx, &section.child("when"), node) {
            Some(when) => spec.when = Some(when),
            None => ok = false,
        }
    }
    if ok {
        check_templates(ctx, section, &spec, &spans);
    }
    Some(spec)
}

/// Compiles the templates and places each [`crate::mapping::MapError`] at the
/// value it is about (or at `map:` when it is about a key that is missing).
fn check_templates(ctx: &mut Ctx<'_>, section: &Section<'_>, spec: &MapSpec, spans: &[Span]) {
    let Err(errors) = Mapping::compile(spec) else {
        return;
    };
    for error in errors {
        let (path, span) = if error.key == "when" {
            let span = section.get("when").map(|n| n.span);
            (section.child("when"), span)
        } else {
            let at = spec.fields.iter().position(|(k, _)| *k == error.key);
            let span = at.and_then(|i| spans.get(i).copied());
            (section.child(&format!("map.{}", error.key)), span)
        };
        let span = span
            .or_else(|| section.key_span("map"))
            .unwrap_or(section.span);
        ctx.error(span, &path, &error.message);
    }
}

/// Keys of a `type: csv` source.
#[cfg(feature = "csv")]
const CSV_KEYS: &[&str] = &[
    "path",
    "delimiter",
    "quote",
    "header",
    "columns",
    "encoding",
];

#[cfg(feature = "csv")]
mod csv {
    //! `type: csv`: builds [`liaison_plugin_csv::CsvConfig`].

    use liaison_plugin_csv::{CsvConfig, Encoding};

    use super::super::walk::{self, Ctx, Section};
    use super::super::yaml::{quote, Node};

    pub(super) fn csv(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<CsvConfig> {
        let path = section
            .require(ctx, "path")
            .and_then(|n| walk::path(ctx, &section.child("path"), n));
        let delimiter = match section.get("delimiter") {
            Some(n) => one_byte(ctx, &section.child("delimiter"), n),
            None => Some(b','),
        };
        let quote_char = match section.get("quote") {
            Some(n) => one_byte(ctx, &section.child("quote"), n),
            None => Some(b'"'),
        };
        if let (Some(d), Some(q)) = (delimiter, quote_char) {
            if d == q {
                same_delimiter_and_quote(ctx, section, d);
            }
        }
        let header = section
            .get("header")
            .and_then(|n| walk::boolean(ctx, &section.child("header"), n))
            .unwrap_or(true);
        let columns = section
            .get("columns")
            .and_then(|n| columns(ctx, &section.child("columns"), n, header));
        let encoding = match section.get("encoding") {
            Some(n) => encoding(ctx, &section.child("encoding"), n),
            None => Some(Encoding::Utf8),
        };
        Some(CsvConfig {
            path: path?,
            delimiter: delimiter?,
            quote: quote_char?,
            header,
            columns,
            encoding: encoding?,
        })
    }

    /// Reports a delimiter equal to the quote character at the key that made
    /// them equal: the one given (the other is its default), or the later one.
    fn same_delimiter_and_quote(ctx: &mut Ctx<'_>, section: &Section<'_>, c: u8) {
        let given = ["delimiter", "quote"]
            .into_iter()
            .filter_map(|key| section.get(key).map(|n| (n.span, key)))
            .max();
        let Some((span, key)) = given else {
            return;
        };
        let other = if key == "quote" { "delimiter" } else { "quote" };
        let message = format!(
            "must differ from the {other} (both are {})",
            quote(&char::from(c).to_string())
        );
        ctx.error(span, &section.child(key), message);
    }

    /// One ASCII character other than a line break; `tab` and `\t` mean a tab.
    fn one_byte(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<u8> {
        let text = walk::string(ctx, path, node)?;
        let c = match text.as_str() {
            "tab" | "\\t" => '\t',
            _ => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        let message = format!("expected one character, found {}", quote(&text));
                        ctx.error(node.span, path, message);
                        return None;
                    }
                }
            }
        };
        match u8::try_from(c) {
            Ok(b) if c.is_ascii() && b != b'\n' && b != b'\r' => Some(b),
            _ => {
                let message = format!(
                    "expected an ASCII character other than a line break, found {}",
                    quote(&text)
                );
                ctx.error(node.span, path, message);
                None
            }
        }
    }

    fn columns(ctx: &mut Ctx<'_>, path: &str, node: &Node, header: bool) -> Option<Vec<String>> {
        if header {
            let message =
                "only used with header: false (otherwise the header row names the columns)";
            ctx.error(node.span, path, message);
            return None;
        }
        let items = walk::list(ctx, path, node)?;
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match walk::non_empty_string(ctx, &item_path, item) {
                Some(name) if names.contains(&name) => {
                    let message = format!("duplicate column name {}", quote(&name));
                    ctx.error(item.span, &item_path, message);
                    ok = false;
                }
                Some(name) => names.push(name),
                None => ok = false,
            }
        }
        if items.is_empty() {
            ctx.error(node.span, path, "the list is empty");
            ok = false;
        }
        ok.then_some(names)
    }

    fn encoding(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Encoding> {
        let text = node.as_str().map(str::to_ascii_lowercase);
        match text.as_deref() {
            Some("utf-8" | "utf8") => Some(Encoding::Utf8),
            Some("windows-1250" | "cp1250") => Some(Encoding::Windows1250),
            _ => {
                let message = format!(
                    "unsupported encoding {} (supported: utf-8, windows-1250)",
                    node.describe()
                );
                ctx.error(node.span, path, message);
                None
            }
        }
    }
}

/// Keys of a `type: exec` source.
#[cfg(feature = "exec")]
const EXEC_KEYS: &[&str] = &[
    "command",
    "settings",
    "env",
    "working_dir",
    "timeout",
    "idle_timeout",
    "max_line_length",
];

#[cfg(feature = "exec")]
mod exec {
    //! `type: exec`: builds [`liaison_plugin_exec::ExecConfig`].

    use liaison_plugin_exec::{
        EnvValue, ExecConfig, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_LINE_LENGTH, DEFAULT_TIMEOUT,
        MAX_MAX_LINE_LENGTH, MIN_MAX_LINE_LENGTH,
    };
    use serde_json::{Map, Number, Value as Json};

    use super::super::secret::has_reference;
    use super::super::walk::{self, Ctx, Section};
    use super::super::yaml::{quote, Node, Value};

    pub(super) fn exec(
        ctx: &mut Ctx<'_>,
        section: &Section<'_>,
        name: Option<&str>,
    ) -> Option<ExecConfig> {
        let command = section
            .require(ctx, "command")
            .and_then(|n| command(ctx, &section.child("command"), n));
        let settings = match section.get("settings") {
            Some(n) => settings(ctx, &section.child("settings"), n),
            None => Some(Map::new()),
        };
        let env = match section.get("env") {
            Some(_) => env(ctx, section),
            None => Some(Vec::new()),
        };
        let working_dir = match section.get("working_dir") {
            Some(n) => walk::path(ctx, &section.child("working_dir"), n),
            // The config's own folder, where relative paths start.
            None => Some(ctx.resolve_path(".")),
        };
        let duration = |ctx: &mut Ctx<'_>, key: &str, default| match section.get(key) {
            Some(n) => walk::positive_duration(ctx, &section.child(key), n),
            None => Some(default),
        };
        let timeout = duration(ctx, "timeout", DEFAULT_TIMEOUT);
        let idle_timeout = duration(ctx, "idle_timeout", DEFAULT_IDLE_TIMEOUT);
        let max_line_length = match section.get("max_line_length") {
            Some(n) => max_line_length(ctx, &section.child("max_line_length"), n),
            None => Some(DEFAULT_MAX_LINE_LENGTH),
        };
        Some(ExecConfig {
            source: name?.to_owned(),
            command: command?,
            settings: settings?,
            env: env?,
            working_dir: working_dir?,
            timeout: timeout?,
            idle_timeout: idle_timeout?,
            max_line_length: max_line_length?,
        })
    }

    /// An argv list. The program resolves against the config's folder when
    /// it holds a `/`, else it is looked up in `PATH` when the plugin starts.
    fn command(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Vec<String>> {
        let Value::Seq(items) = &node.value else {
            let message = format!(
                "expected a list such as [python3, plugin.py] (the program and its arguments, \
                 run without a shell), found {}",
                node.describe()
            );
            ctx.error(node.span, path, message);
            return None;
        };
        if items.is_empty() {
            ctx.error(
                node.span,
                path,
                "the list is empty: its first item is the program",
            );
            return None;
        }
        let mut argv = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let text = match &item.value {
                Value::Str(s) if has_reference(s) => {
                    let message = "a plugin never gets secrets in its command line \
                                   (other processes can read it): pass them in env:";
                    ctx.error(item.span, &item_path, message);
                    None
                }
                Value::Str(s) => Some(s.clone()),
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                    walk::scalar_text(ctx, &item_path, item)
                }
                _ => {
                    let found = item.describe();
                    ctx.error(
                        item.span,
                        &item_path,
                        format!("expected a string, found {found}"),
                    );
                    None
                }
            };
            match text {
                Some(program) if i == 0 && program.trim().is_empty() => {
                    ctx.error(item.span, &item_path, "the program must not be empty");
                    ok = false;
                }
                Some(program) if i == 0 && program.contains('/') => {
                    argv.push(ctx.resolve_path(&program).display().to_string());
                }
                Some(arg) => argv.push(arg),
                None => ok = false,
            }
        }
        ok.then_some(argv)
    }

    /// `settings:`: any mapping, as JSON, passed through to the plugin.
    fn settings(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Map<String, Json>> {
        match json(ctx, path, node)? {
            Json::Object(map) => Some(map),
            _ => {
                let found = node.describe();
                ctx.error(
                    node.span,
                    path,
                    format!("expected a mapping, found {found}"),
                );
                None
            }
        }
    }

    /// A YAML value as JSON; every problem inside is reported.
    fn json(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Json> {
        match &node.value {
            Value::Null => Some(Json::Null),
            Value::Bool(b) => Some(Json::Bool(*b)),
            Value::Int(i) => {
                let number = i64::try_from(*i)
                    .map(Number::from)
                    .or_else(|_| u64::try_from(*i).map(Number::from));
                match number {
                    Ok(n) => Some(Json::Number(n)),
                    Err(_) => {
                        let message = format!("the number {i} is too large for JSON settings");
                        ctx.error(node.span, path, message);
                        None
                    }
                }
            }
            Value::Float(x) => match Number::from_f64(*x) {
                Some(n) => Some(Json::Number(n)),
                None => {
                    let message = format!("{x} has no JSON form");
                    ctx.error(node.span, path, message);
                    None
                }
            },
            Value::Str(s) if has_reference(s) => {
                let message = "${env:…} and ${file:…} are not resolved in settings \
                               (the plugin gets them as written): pass secrets in env:";
                ctx.error(node.span, path, message);
                None
            }
            Value::Str(s) => Some(Json::String(s.clone())),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match json(ctx, &format!("{path}[{i}]"), item) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Array(out))
            }
            Value::Map(_) => {
                let section = Section::new(ctx, path, node)?;
                let mut out = Map::new();
                let mut ok = true;
                for (key, _, value) in section.entries() {
                    match json(ctx, &section.child(key), value) {
                        Some(v) => {
                            out.insert((*key).to_owned(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Object(out))
            }
        }
    }

    /// `env:`: variable names to values; `${env:…}` and `${file:…}` resolve
    /// here (the values are secrets: errors name the reference, never a value).
    fn env(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<Vec<(String, EnvValue)>> {
        let map = section.section(ctx, "env")?;
        let mut out = Vec::with_capacity(map.entries().len());
        let mut ok = true;
        for (name, span, value) in map.entries() {
            let path = map.child(name);
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                let message = format!(
                    "{} is not a variable name (letters, digits and _, not starting with a digit)",
                    quote(name)
                );
                ctx.error(*span, &path, message);
                ok = false;
                continue;
            }
            let text = match &value.value {
                Value::Str(raw) => match ctx.resolve_references(raw) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        ctx.error(value.span, &path, e.0);
                        None
                    }
                },
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                    walk::scalar_text(ctx, &path, value)
                }
                _ => {
                    let found = value.describe();
                    ctx.error(
                        value.span,
                        &path,
                        format!("expected a string, found {found}"),
                    );
                    None
                }
            };
            match text {
                Some(text) => out.push(((*name).to_owned(), EnvValue::new(text))),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn max_line_length(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<usize> {
        let n = walk::unsigned(ctx, path, node)? as usize;
        if (MIN_MAX_LINE_LENGTH..=MAX_MAX_LINE_LENGTH).contains(&n) {
            return Some(n);
        }
        let message = format!(
            "expected a number of bytes from {MIN_MAX_LINE_LENGTH} to {MAX_MAX_LINE_LENGTH} \
             (default {DEFAULT_MAX_LINE_LENGTH}), found {n}"
        );
        ctx.error(node.span, path, message);
        None
    }
}

/// Keys of a `type: crm` source.
#[cfg(feature = "crm")]
const CRM_KEYS: &[&str] = &[
    "preset",
    "url",
    "token",
    "ca_file",
    "timeout",
    "concurrency",
    "rate_limit",
    "search_rate_limit",
    "page_size",
    "overlap",
    "retries",
    "retry_backoff",
    "max_retry_after",
    "properties",
    "company_properties",
    "webhook",
    "rest",
];

#[cfg(feature = "crm")]
mod crm;
