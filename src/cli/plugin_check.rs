//! `liaison plugin check [--source S | -- CMD ARGS…]`: runs an exec plugin once
//! and reports what it sent and every line that breaks the protocol
//! (SPEC §5). Writes nothing: no store is opened.
//!
//! Without `--source` no config file is read (a plugin's author may have
//! none yet): the command runs in the current folder, with the environment
//! cleared but for `PATH`, `LANG`, `HOME`, `TZ` and `--env`, and the default
//! limits. With `--source NAME` the config is loaded and that exec source is
//! run exactly as a sync would run it; `--settings`, `--env` and the limits
//! given on the command line override the source's.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use liaison_plugin_api::{Cursor, ReadMode, ReadRequest, Value};
use liaison_plugin_exec::{check as run_check, CheckLimits, CheckReport, EnvValue, ExecConfig};
use serde_json::{json, Map, Value as Json};

use super::args::{CheckMode, Cli, Format, PluginCheckArgs};
use super::interrupt::Interrupts;
use super::text::{quoted, visible};
use super::{exit, output};
use crate::config::{self, ConnectorConfig};

/// The source name a check without `--source` sends in its start line.
const CHECK_SOURCE: &str = "check";

/// Runs the check; the exit code: 0 clean, 1 not clean, 2 a usage error,
/// 130/143 stopped by a signal.
pub fn check(cli: &Cli, args: &PluginCheckArgs) -> u8 {
    let (config, request) = match prepare(cli, args) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let interrupts = Interrupts::install();
    let limits = CheckLimits {
        records: args.limit,
        ..CheckLimits::default()
    };
    let report = run_check(&config, &request, &interrupts.cancel(), limits);
    let printed = match args.format {
        Format::Json => output::json_out(&report_json(&config, &report)),
        Format::Human => {
            output::line(human(&config, &report).trim_end());
            Ok(())
        }
    };
    if let Err(e) = printed {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            output::error_line(&format!("error: writing the report: {e}"));
        }
    }
    match interrupts.exit_code() {
        Some(code) => code,
        None if report.is_clean() => exit::OK,
        None => exit::FAILURE,
    }
}

/// The plugin to run and the read to ask of it, or the exit code of a usage error.
fn prepare(cli: &Cli, args: &PluginCheckArgs) -> Result<(ExecConfig, ReadRequest), u8> {
    let usage = |message: String| {
        output::error_line(&format!("error: {message}"));
        exit::INVALID
    };
    let mut config = match &args.source {
        Some(name) => from_config(&cli.config, name)?,
        None => standalone(&args.command).map_err(usage)?,
    };
    if let Some(text) = &args.settings {
        config.settings = match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => map,
            Ok(_) => return Err(usage("--settings: expected a JSON object".into())),
            Err(e) => return Err(usage(format!("--settings: not JSON: {e}"))),
        };
    }
    for given in &args.env {
        let (name, value) = env_arg(given).map_err(usage)?;
        config.env.retain(|(n, _)| *n != name);
        config.env.push((name, value));
    }
    let duration = |flag: &str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(text) => match config::parse_duration(text) {
            Ok(Some(d)) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!(
                "{flag}: expected a duration longer than zero such as 30s"
            )),
            Err(e) => Err(format!("{flag}: {e}")),
        },
    };
    config.timeout = duration("--timeout", &args.timeout, config.timeout).map_err(usage)?;
    config.idle_timeout =
        duration("--idle-timeout", &args.idle_timeout, config.idle_timeout).map_err(usage)?;
    if let Some(n) = args.max_line_length {
        use liaison_plugin_exec::{MAX_MAX_LINE_LENGTH, MIN_MAX_LINE_LENGTH};
        if !(MIN_MAX_LINE_LENGTH..=MAX_MAX_LINE_LENGTH).contains(&n) {
            return Err(usage(format!(
                "--max-line-length: expected {MIN_MAX_LINE_LENGTH} to {MAX_MAX_LINE_LENGTH} bytes"
            )));
        }
        config.max_line_length = n;
    }
    let request = request(args).map_err(usage)?;
    Ok((config, request))
}

/// The exec source `name` of the config at `path`.
fn from_config(path: &Path, name: &str) -> Result<ExecConfig, u8> {
    let loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            super::print_config_errors(&errors);
            return Err(exit::INVALID);
        }
    };
    let Some(source) = loaded.sources.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = loaded.sources.iter().map(|s| s.name.as_str()).collect();
        output::error_line(&format!(
            "error: unknown source {} (configured: {})",
            quoted(name),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
        return Err(exit::INVALID);
    };
    match &source.connector {
        ConnectorConfig::Exec(exec) => Ok(exec.clone()),
        #[allow(unreachable_patterns)]
        _ => {
            output::error_line(&format!(
                "error: source {} is not an exec source",
                quoted(name)
            ));
            Err(exit::INVALID)
        }
    }
}

/// A plugin given on the command line, run in the current folder. A program
/// path with a `/` is made absolute here (where the user typed it).
fn standalone(command: &[String]) -> Result<ExecConfig, String> {
    let here =
        std::env::current_dir().map_err(|e| format!("the current folder cannot be read: {e}"))?;
    let mut argv = command.to_vec();
    match argv.first_mut() {
        None => return Err("give the plugin to run after --".into()),
        Some(program) if program.is_empty() => return Err("the program is empty".into()),
        Some(program) if program.contains('/') => {
            *program = here.join(&*program).display().to_string();
        }
        Some(_) => {}
    }
    Ok(ExecConfig::new(CHECK_SOURCE, argv, here))
}

/// `NAME=VALUE`, or `NAME` for this process's own value of it.
fn env_arg(given: &str) -> Result<(String, EnvValue), String> {
    let (name, value) = match given.split_once('=') {
        Some((name, value)) => (name, value.to_owned()),
        None => match std::env::var(given) {
            Ok(value) => (given, value),
            Err(_) => return Err(format!("--env {given}: {given} is not set here")),
        },
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("--env: {name:?} is not a variable name"));
    }
    Ok((name.to_owned(), EnvValue::new(value)))
}

/// The read asked: changes when `--cursor` is given (or `--mode changes`).
fn request(args: &PluginCheckArgs) -> Result<ReadRequest, String> {
    let cursor = match &args.cursor {
        None => None,
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Null) => None,
            Ok(_) => Some(Cursor::new(text.trim())),
            Err(e) => return Err(format!("--cursor: not JSON: {e}")),
        },
    };
    let mode = args.mode.unwrap_or(match args.cursor {
        Some(_) => CheckMode::Changes,
        None => CheckMode::Full,
    });
    match (mode, cursor) {
        (CheckMode::Full, None) => Ok(ReadRequest::full()),
        (CheckMode::Full, Some(_)) => {
            Err("--cursor belongs to a changes read (--mode changes)".into())
        }
        (CheckMode::Changes, Some(cursor)) => Ok(ReadRequest::changes(cursor)),
        (CheckMode::Changes, None) => Err(
            "--mode changes needs --cursor JSON (a changes read without a cursor is sent as a full one)"
                .into(),
        ),
    }
}

/// The report for people.
fn human(config: &ExecConfig, r: &CheckReport) -> String {
    let mut out = String::new();
    let mut say = |line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    say(format!("plugin: {}", visible(&config.command.join(" "))));
    say(format!("start line: {}", visible(&r.start_line)));
    let ran = match (&r.exit, &r.failure) {
        (Some(exit), _) => exit.to_string(),
        (None, Some(failure)) => failure.to_string(),
        (None, None) => "did not run".to_owned(),
    };
    say(format!(
        "ran: {:.2} s, {} on stdout; {ran}",
        r.elapsed.as_secs_f64(),
        lines(r.lines)
    ));
    say(String::new());
    let names = if r.attribute_names.is_empty() {
        String::new()
    } else {
        format!(" (attributes: {})", visible(&r.attribute_names.join(", ")))
    };
    say(format!("records: {}{names}", r.records));
    for record in &r.shown {
        let mut line = format!("  line {}  key {}", record.line, quoted(&record.key));
        for (name, value) in &record.attributes {
            let _ = write!(line, "  {}={}", visible(name), value_text(value));
        }
        say(line);
    }
    more(&mut say, r.records, r.shown.len());
    say(format!("errors (bad records): {}", r.errors.total));
    for e in &r.errors.items {
        let key = e.key.as_deref().map(|k| format!(" (key {})", quoted(k)));
        say(format!(
            "  line {}  {}: {}{}",
            e.line,
            visible(&e.location),
            visible(&e.message),
            key.unwrap_or_default()
        ));
    }
    more(&mut say, r.errors.total, r.errors.items.len());
    say(format!("deletions: {}", r.deletions.total));
    for d in &r.deletions.items {
        say(format!("  line {}  key {}", d.line, quoted(&d.key)));
    }
    more(&mut say, r.deletions.total, r.deletions.items.len());
    say(format!("log lines: {}", r.logs.total));
    for l in &r.logs.items {
        say(format!(
            "  line {}  {:<5}  {}",
            l.line,
            l.level,
            visible(&l.message)
        ));
    }
    more(&mut say, r.logs.total, r.logs.items.len());
    match &r.end {
        Some(end) => say(format!(
            "end: line {}, mode {}, cursor {}",
            end.line,
            end.mode,
            visible(end.cursor.as_deref().unwrap_or("null"))
        )),
        None => say("end: none".to_owned()),
    }
    say(format!("stderr: {}", lines(r.stderr.total)));
    for line in &r.stderr.items {
        say(format!("  {}", visible(line)));
    }
    more(&mut say, r.stderr.total, r.stderr.items.len());
    if r.warnings.total > 0 {
        say(format!("warnings: {}", r.warnings.total));
        for w in &r.warnings.items {
            say(format!("  {}", visible(&w.to_string())));
        }
        more(&mut say, r.warnings.total, r.warnings.items.len());
    }
    say(format!("violations: {}", r.violations.total));
    for v in &r.violations.items {
        say(format!("  {}", visible(&v.to_string())));
    }
    more(&mut say, r.violations.total, r.violations.items.len());
    say(String::new());
    say(verdict(r));
    out
}

/// The last line of the human report.
fn verdict(r: &CheckReport) -> String {
    if r.is_clean() {
        let records = match r.records {
            1 => "1 record".to_owned(),
            n => format!("{n} records"),
        };
        return format!(
            "OK: the plugin speaks exec protocol {} cleanly ({} read, {records})",
            liaison_plugin_exec::PROTOCOL_VERSION,
            r.end.as_ref().map_or(ReadMode::Full, |e| e.mode),
        );
    }
    let mut problems = Vec::new();
    match r.violations.total {
        0 => {}
        1 => problems.push("1 protocol violation".to_owned()),
        n => problems.push(format!("{n} protocol violations")),
    }
    if let Some(failure) = &r.failure {
        problems.push(failure.to_string());
    }
    format!(
        "FAILED: {}; a read of this plugin would fail and apply nothing",
        visible(&problems.join("; "))
    )
}

/// `1 line`, `2 lines`.
fn lines(n: u64) -> String {
    match n {
        1 => "1 line".to_owned(),
        n => format!("{n} lines"),
    }
}

fn more(say: &mut impl FnMut(String), total: u64, shown: usize) {
    let left = total.saturating_sub(shown as u64);
    if left > 0 {
        say(format!("  … and {left} more"));
    }
}

/// A value as the report shows it: quoted, a list in brackets.
fn value_text(value: &Value) -> String {
    match value {
        Value::One(s) => quoted(s),
        Value::Many(values) => {
            let items: Vec<String> = values.iter().map(|v| quoted(v)).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::One(s) => json!(s),
        Value::Many(values) => json!(values),
    }
}

/// The report as JSON (`--format json`).
fn report_json(config: &ExecConfig, r: &CheckReport) -> Json {
    let shown: Vec<Json> = r
        .shown
        .iter()
        .map(|record| {
            let attributes: Map<String, Json> = record
                .attributes
                .iter()
                .map(|(n, v)| (n.clone(), value_json(v)))
                .collect();
            json!({"line": record.line, "key": record.key, "attributes": attributes})
        })
        .collect();
    let listed = |total: u64, items: Vec<Json>| json!({"count": total, "items": items});
    json!({
        "command": config.command,
        "asked": r.asked.as_str(),
        "start_line": r.start_line,
        "ok": r.is_clean(),
        "exit": r.exit.map(|e| json!({"code": e.code, "signal": e.signal})),
        "failure": r.failure.as_ref().map(ToString::to_string),
        "elapsed_ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
        "lines": r.lines,
        "records": {"count": r.records, "attributes": r.attribute_names, "shown": shown},
        "errors": listed(r.errors.total, r.errors.items.iter().map(|e| json!({
            "line": e.line, "location": e.location, "message": e.message, "key": e.key,
        })).collect()),
        "deletions": listed(r.deletions.total, r.deletions.items.iter().map(|d| json!({
            "line": d.line, "key": d.key,
        })).collect()),
        "logs": listed(r.logs.total, r.logs.items.iter().map(|l| json!({
            "line": l.line, "level": l.level.as_str(), "message": l.message,
        })).collect()),
        "end": r.end.as_ref().map(|e| json!({
            "line": e.line,
            "mode": e.mode.as_str(),
            "cursor": e.cursor.as_deref().map_or(Json::Null, |c| {
                serde_json::from_str(c).unwrap_or_else(|_| json!(c))
            }),
        })),
        "stderr": {"count": r.stderr.total, "lines": r.stderr.items},
        "warnings": listed(r.warnings.total, r.warnings.items.iter().map(|w| json!({
            "line": w.line, "message": w.message,
        })).collect()),
        "violations": listed(r.violations.total, r.violations.items.iter().map(|v| json!({
            "line": v.line, "message": v.message,
        })).collect()),
    })
}
