//! Everything the CLI prints: stdout for results, stderr for diagnostics.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;

use serde::ser::{SerializeSeq, Serializer as _};
use serde::Serialize;
use serde_json::{json, Value};

use super::args::{Format, ListFormat};
use super::status::{self, SourceStatus, StatusView};
use super::text::{error_chain, quoted, visible};
use crate::reconcile::{ContactChange, DeprovisionAction, Plan};
use crate::store::{OutboxState, RunRow, SourceCursor, UserDetail, UserView};
use crate::sync::RunReport;

/// Bytes to stdout as they are (`mail preview` prints a message with its
/// CRLF line ends).
pub fn raw(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    reader_left(out.write_all(bytes).and_then(|()| out.flush()))
}

/// One line to stdout.
pub fn line(text: &str) {
    let _ = writeln!(io::stdout().lock(), "{text}");
}

/// One line to stderr, its control characters escaped (messages quote values
/// from configs, sources and the command line).
pub fn error_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{}", visible(text));
}

/// A command's error, once: `error: ` and the whole cause chain, each cause once.
pub fn error(e: &anyhow::Error) {
    error_line(&format!("error: {}", error_chain(e)));
}

/// A write that failed because the reader closed stdout (`liaison users list |
/// head`) is done, not an error: the reader has what it wanted, and the exit
/// code stays the command's own.
fn reader_left(written: io::Result<()>) -> io::Result<()> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `e` is a write to stdout that failed because the reader closed it,
/// as the JSON and CSV writers wrap it.
fn closed_by_reader(e: &anyhow::Error) -> bool {
    let broken = Some(io::ErrorKind::BrokenPipe);
    e.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().map(io::Error::kind) == broken
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
            || matches!(
                cause.downcast_ref::<csv::Error>().map(csv::Error::kind),
                Some(csv::ErrorKind::Io(io)) if io.kind() == io::ErrorKind::BrokenPipe
            )
    })
}

/// `value` as pretty JSON on stdout, one line after it.
pub(super) fn json_out<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}

/// The SPEC §5 object of one source run.
fn report_json(r: &RunReport) -> Value {
    let mut v = json!({
        "source": r.source,
        "status": r.status,
    });
    put_counts(&mut v, &r.counts);
    v["errors"] = json!(r.errors);
    if let Some(read) = &r.read {
        v["read"] = json!({
            "mode": read.mode.as_str(),
            "full_because": read.full_because,
            "deletions": read.deletions,
        });
    }
    v["held"] = r
        .plan
        .held
        .iter()
        .map(|h| {
            json!({
                "login": h.deprovision.login.as_str(),
                "action": h.deprovision.action,
                "unlinks": h.deprovision.unlinks,
                "reason": h.reason,
            })
        })
        .collect();
    if let Some(f) = &r.failure {
        v["failure"] = json!(f.message);
        v["failure_kind"] = json!(f.kind.as_str());
        v["retryable"] = json!(f.retryable);
    }
    v
}

/// One object, or an array when several sources ran.
fn one_or_many(values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(values)
    }
}

/// `sync --once` output.
pub fn reports(reports: &[RunReport], format: Format) -> io::Result<()> {
    reader_left(write_reports(reports, format))
}

fn write_reports(reports: &[RunReport], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return json_out(&one_or_many(reports.iter().map(report_json).collect()));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    for r in reports {
        summary(&mut out, r)?;
    }
    out.flush()
}

fn summary(out: &mut impl Write, r: &RunReport) -> io::Result<()> {
    let c = r.counts;
    let source = visible(&r.source);
    match &r.failure {
        Some(f) => writeln!(
            out,
            "{source}: failed, nothing applied ({}): {}",
            f.kind,
            visible(&f.message)
        )?,
        None => writeln!(
            out,
            "{}: {}{} — {} created, {} updated, {} disabled, {} enabled, {} deleted, {} unchanged{}",
            source,
            r.status.as_str(),
            match &r.read {
                Some(read) if read.mode == liaison_plugin_api::ReadMode::Changes => {
                    format!(" (changes read, {} deletions)", read.deletions)
                }
                _ => String::new(),
            },
            c.created,
            c.updated,
            c.disabled,
            c.enabled,
            c.deleted,
            c.unchanged,
            if r.plan.held.is_empty() {
                String::new()
            } else {
                format!(", {} held", r.plan.held.len())
            }
        )?,
    }
    for h in &r.plan.held {
        writeln!(
            out,
            "  held: {} {} ({}); release with --allow-mass-deprovision",
            action_word(h.deprovision.action),
            h.deprovision.login,
            visible(&h.reason)
        )?;
    }
    for e in &r.errors {
        writeln!(
            out,
            "  {}: {}",
            visible(&e.location.to_string()),
            visible(&e.message)
        )?;
    }
    Ok(())
}

fn action_word(a: DeprovisionAction) -> &'static str {
    match a {
        DeprovisionAction::Disable => "disable",
        DeprovisionAction::Delete => "delete",
    }
}

fn plan_changes_json(p: &Plan) -> Value {
    json!({
        "create": p.creates.iter().map(|n| {
            let fields = p.fields_of(n);
            json!({
                "login": n.login.as_str(),
                "title": fields.as_ref().map(|f| f.title.as_str()),
                "email": fields.as_ref().map(|f| f.email.as_str()),
                "contacts": p.contacts_of(n).iter().map(|c| c.contact_id()).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "update": p.updates.iter().map(|u| json!({
            "login": u.login.as_str(),
            "changes": u.changes,
        })).chain(p.contacts.iter().filter_map(|c| match c {
            // A linked contact's own fields (SPEC §3: `contact SOURCE:ID FIELD`).
            ContactChange::Upsert { login, changes, .. } if !changes.is_empty() => Some(json!({
                "login": login.as_str(),
                "changes": changes,
            })),
            _ => None,
        })).collect::<Vec<_>>(),
        "link": p.contacts.iter().filter_map(|c| match c {
            ContactChange::Upsert { login, record, linked_now: true, .. } => Some(json!({"login": login.as_str(), "contact": record.contact_id()})),
            _ => None,
        }).collect::<Vec<_>>(),
        "unlink": p.contacts.iter().filter_map(|c| match c {
            ContactChange::Unlink { login, contact_id, .. } => Some(json!({"login": login.as_str(), "contact": contact_id})),
            ContactChange::Moved { login, contact_id, to, .. } => Some(json!({"login": login.as_str(), "contact": contact_id, "moved_to": to.as_str()})),
            _ => None,
        }).collect::<Vec<_>>(),
        "enable": p.enables.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
        "disable": p.deprovisions.iter().filter(|d| d.action == DeprovisionAction::Disable).map(|d| d.login.as_str()).collect::<Vec<_>>(),
        "delete": p.deprovisions.iter().filter(|d| d.action == DeprovisionAction::Delete).map(|d| d.login.as_str()).collect::<Vec<_>>(),
    })
}

/// `plan` output: the counts plus every change.
pub fn plans(reports: &[RunReport], format: Format) -> io::Result<()> {
    reader_left(write_plans(reports, format))
}

fn write_plans(reports: &[RunReport], format: Format) -> io::Result<()> {
    if format == Format::Json {
        let values = reports
            .iter()
            .map(|r| {
                let mut v = report_json(r);
                v["changes"] = plan_changes_json(&r.plan);
                v
            })
            .collect();
        return json_out(&one_or_many(values));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    for r in reports {
        summary(&mut out, r)?;
        let p = &r.plan;
        for n in &p.creates {
            let ids: Vec<&str> = p.contacts_of(n).iter().map(|c| c.contact_id()).collect();
            let Some(fields) = p.fields_of(n) else {
                continue;
            };
            writeln!(
                out,
                "  + create {} {} <{}> contacts: {}",
                n.login,
                quoted(&fields.title),
                visible(fields.email.as_str()),
                visible(&ids.join(", "))
            )?;
        }
        for u in &p.updates {
            for c in &u.changes {
                writeln!(
                    out,
                    "  ~ update {} {}: {} → {}",
                    u.login,
                    c.field,
                    visible(&c.old.to_string()),
                    visible(&c.new.to_string())
                )?;
            }
        }
        for c in &p.contacts {
            match c {
                ContactChange::Upsert {
                    record,
                    linked_now: true,
                    login,
                    ..
                } => writeln!(
                    out,
                    "  ~ link contact {} to {login}",
                    visible(record.contact_id())
                )?,
                ContactChange::Upsert { login, changes, .. } => {
                    for c in changes {
                        writeln!(
                            out,
                            "  ~ update {login} {}: {} → {}",
                            visible(&c.field),
                            visible(&c.old.to_string()),
                            visible(&c.new.to_string())
                        )?;
                    }
                }
                ContactChange::Unlink {
                    login, contact_id, ..
                } => writeln!(
                    out,
                    "  ~ unlink contact {} from {login}",
                    visible(contact_id)
                )?,
                ContactChange::Moved {
                    login,
                    contact_id,
                    to,
                    ..
                } => writeln!(
                    out,
                    "  ~ move contact {} from {login} to {to}",
                    visible(contact_id)
                )?,
            }
        }
        for (_, login) in &p.enables {
            writeln!(out, "  + enable {login}")?;
        }
        for d in &p.deprovisions {
            writeln!(out, "  - {} {}", action_word(d.action), d.login)?;
        }
        if p.is_empty() && r.failure.is_none() {
            writeln!(out, "  no changes")?;
        }
    }
    out.flush()
}

/// Where `users list` gets its users: it calls the visitor once per user and
/// stops when the visitor says so (see `Store::for_each_user`).
pub type UserSource<'a> =
    &'a mut dyn FnMut(&mut dyn FnMut(UserView) -> ControlFlow<()>) -> anyhow::Result<()>;

/// `users list` output, written as the users arrive (JSON and CSV hold one
/// user at a time; the table keeps five short columns to size the first).
pub fn user_list(source: UserSource<'_>, format: ListFormat) -> anyhow::Result<()> {
    match write_user_list(source, format) {
        Err(e) if closed_by_reader(&e) => Ok(()),
        done => done,
    }
}

fn write_user_list(source: UserSource<'_>, format: ListFormat) -> anyhow::Result<()> {
    let out = BufWriter::new(io::stdout().lock());
    let mut failed: Option<anyhow::Error> = None;
    let mut keep = |r: Result<(), anyhow::Error>| match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    };
    match format {
        ListFormat::Json => {
            let mut ser = serde_json::Serializer::pretty(out);
            let mut seq = ser.serialize_seq(None)?;
            source(&mut |u| keep(seq.serialize_element(&u).map_err(Into::into)))?;
            if let Some(e) = failed {
                return Err(e);
            }
            SerializeSeq::end(seq)?;
            let mut out = ser.into_inner();
            writeln!(out)?;
            out.flush()?;
        }
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_COLUMNS)?;
            source(&mut |u| {
                keep(
                    w.write_record(csv_row(&u).map(spreadsheet_safe))
                        .map_err(Into::into),
                )
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            w.flush()?;
        }
        ListFormat::Human => {
            let mut out = out;
            super::table::users(&mut out, source)?;
        }
    }
    Ok(())
}

/// The CSV export's header.
pub(super) const CSV_COLUMNS: [&str; 17] = [
    "id",
    "login",
    "title",
    "description",
    "email",
    "locale",
    "status",
    "origin",
    "contacts",
    "accounts",
    "account_contacts",
    "account_tickets",
    "external_comments",
    "grants",
    "attributes",
    "created_at",
    "updated_at",
];

/// One user as a CSV row (lists joined with `|`, attributes as JSON), before
/// [`spreadsheet_safe`].
pub(super) fn csv_row(u: &UserView) -> [String; 17] {
    [
        u.id.to_string(),
        u.login.clone(),
        u.title.clone(),
        u.description.clone().unwrap_or_default(),
        u.email.clone().unwrap_or_default(),
        u.locale.clone(),
        u.status.to_string(),
        u.origin.to_string(),
        u.contacts.join("|"),
        u.accounts.join("|"),
        u.account_contacts.to_string(),
        u.account_tickets.to_string(),
        u.external_comments.to_string(),
        u.grants.join("|"),
        serde_json::to_string(&u.attributes).unwrap_or_default(),
        u.created_at.clone(),
        u.updated_at.clone(),
    ]
}

/// A CSV cell a spreadsheet shows as text: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return would be read as a formula (and could run
/// one), so it gets a leading `'`, as OWASP's CSV-injection advice says (and a
/// leading NUL too, as ASVS 1.2.10 adds). The JSON output keeps the exact values.
pub(super) fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\0']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// `users show` output.
pub fn user_detail(d: &UserDetail, format: Format) -> io::Result<()> {
    reader_left(write_user_detail(d, format))
}

fn write_user_detail(d: &UserDetail, format: Format) -> io::Result<()> {
    if format == Format::Json {
        return json_out(d);
    }
    let u = &d.user;
    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "login:       {}", visible(&u.login))?;
    writeln!(out, "title:       {}", visible(&u.title))?;
    writeln!(
        out,
        "e-mail:      {}",
        visible(u.email.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "status:      {} (origin {})", u.status, u.origin)?;
    writeln!(out, "locale:      {}", visible(&u.locale))?;
    if let Some(desc) = &u.description {
        writeln!(out, "description: {}", visible(desc))?;
    }
    write_accounts(&mut out, &d.linked_accounts, &d.direct_accounts)?;
    writeln!(
        out,
        "flags:       account_contacts={} account_tickets={} external_comments={}",
        u.account_contacts, u.account_tickets, u.external_comments
    )?;
    writeln!(out, "grants:      {}", list_or_dash(&u.grants))?;
    for (k, v) in &u.attributes {
        writeln!(
            out,
            "attribute:   {} = {}",
            visible(k),
            visible(&v.to_string())
        )?;
    }
    writeln!(out, "contacts:")?;
    for c in &d.linked_contacts {
        writeln!(
            out,
            "  {}:{}  {} <{}>{}{}",
            visible(&c.source),
            visible(&c.id),
            visible(&c.name),
            visible(&c.email),
            c.phone
                .as_deref()
                .map(|p| format!("  {}", visible(p)))
                .unwrap_or_default(),
            c.account
                .as_deref()
                .map(|a| format!("  account {}", visible(a)))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "mail:")?;
    if d.mail.is_empty() {
        writeln!(out, "  -")?;
    }
    for m in &d.mail {
        let when =
            crate::cli::status::rfc3339(m.sent_ms.unwrap_or(m.updated_ms)).unwrap_or_default();
        writeln!(
            out,
            "  {}  {:<25} {:<9} to {}{}",
            when,
            m.kind.as_str(),
            m.state.as_str(),
            visible(&m.recipient),
            m.last_error
                .as_deref()
                .map(|e| format!("  ({})", visible(e)))
                .unwrap_or_default()
        )?;
    }
    let earlier = d.history_total.saturating_sub(d.history.len() as u64);
    if earlier > 0 {
        writeln!(
            out,
            "history (the latest {}; {earlier} earlier: liaison users history {}):",
            d.history.len(),
            visible(&u.login)
        )?;
    } else {
        writeln!(out, "history:")?;
    }
    for h in &d.history {
        writeln!(out, "  {}", super::table::history_line(h))?;
    }
    out.flush()
}

/// The user's accounts, one a line: id, name, domains (`-` for none), and
/// `direct` after those linked to it directly rather than through a contact.
fn write_accounts(
    out: &mut impl Write,
    accounts: &[crate::model::Account],
    direct: &[String],
) -> io::Result<()> {
    if accounts.is_empty() {
        return writeln!(out, "accounts:    -");
    }
    writeln!(out, "accounts:")?;
    for a in accounts {
        let domains: Vec<String> = a.domains.iter().map(|d| d.as_str().to_owned()).collect();
        writeln!(
            out,
            "  {}  {}  domains {}{}",
            visible(a.id.as_str()),
            visible(a.name.as_deref().unwrap_or("-")),
            list_or_dash(&domains),
            if direct.iter().any(|id| id == a.id.as_str()) {
                "  (direct)"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

/// A list joined with `, ` for people, or `-` when empty.
fn list_or_dash(items: &[String]) -> Cow<'_, str> {
    if items.is_empty() {
        Cow::Borrowed("-")
    } else {
        Cow::Owned(visible(&items.join(", ")).into_owned())
    }
}

/// `text` made [`visible`], reusing its buffer when nothing needed escaping.
fn shown(text: String) -> String {
    match visible(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

/// `status` output.
pub fn status(view: &StatusView, format: Format) -> io::Result<()> {
    for note in &view.notes {
        error_line(note);
    }
    reader_left(write_status(view, format))
}

fn write_status(view: &StatusView, format: Format) -> io::Result<()> {
    if format == Format::Json {
        return json_out(&status_json(view));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match &view.daemon {
        Some(d) => {
            let mut said = format!("daemon: running, {}", d.holder);
            if let Some(config) = &d.config {
                said.push_str(&format!(", config {}", config.display()));
            }
            writeln!(out, "{}", visible(&said))?;
        }
        None => writeln!(out, "daemon: not running")?,
    }
    if !view.store_exists {
        writeln!(
            out,
            "no runs yet: the store {} does not exist (a sync or the daemon creates it)",
            visible(&view.store.display().to_string())
        )?;
    }
    status_table(&mut out, &view.sources)?;
    for s in &view.sources {
        if let Some(cursor) = &s.cursor {
            let line = reads_line(cursor, view.now_ms);
            writeln!(out, "{}: {}", visible(&s.source), visible(&line))?;
        }
    }
    writeln!(out, "{}", outbox_line(&view.outbox))?;
    for s in &view.sources {
        if let Some(f) = s.runs.as_ref().and_then(|r| r.last.failure.as_ref()) {
            writeln!(
                out,
                "{}: failed ({}, {}): {}",
                visible(&s.source),
                f.kind,
                if f.retryable {
                    "retryable"
                } else {
                    "not retryable"
                },
                visible(&f.message)
            )?;
        }
    }
    out.flush()
}

/// How a source is read: `changes since a cursor stored 3h ago (…), last
/// full read 1d ago (…)`, or `full reads only (no cursor), last full read …`.
fn reads_line(cursor: &SourceCursor, now_ms: i64) -> String {
    let when = |ms: i64| {
        let at = status::rfc3339(ms).unwrap_or_else(|| "-".into());
        format!("{} ago ({at})", age_text(now_ms.saturating_sub(ms)))
    };
    let last_full = match cursor.last_full_ms {
        Some(ms) => format!("last full read {}", when(ms)),
        None => "no full read yet".into(),
    };
    match &cursor.cursor {
        Some(_) => format!(
            "changes since a cursor stored {}, {last_full}",
            when(cursor.stored_ms)
        ),
        None => format!("full reads only (no cursor), {last_full}"),
    }
}

/// An age in the unit a person reads it in: `40s`, `25m`, `5h`, `3d` (rounded down).
fn age_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `outbox: 2 queued, 0 sending, 40 sent, 1 failed, 0 cancelled`.
fn outbox_line(outbox: &[(OutboxState, u64)]) -> String {
    let counts: Vec<String> = outbox.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!("outbox: {}", counts.join(", "))
}

/// One row per source: when, how, what changed, failures, next run.
fn status_table(out: &mut impl Write, sources: &[SourceStatus]) -> io::Result<()> {
    let time = |ms: Option<i64>| ms.and_then(status::rfc3339).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 8]> = sources
        .iter()
        .map(|s| {
            let name = if s.configured {
                shown(s.source.clone())
            } else {
                format!("{} (not in config)", visible(&s.source))
            };
            let (when, how, changes, errors) = match &s.runs {
                Some(r) => (
                    time(Some(r.last.started_ms)),
                    r.last.status.clone(),
                    changes_text(&r.last.counts),
                    r.last.errors.to_string(),
                ),
                None => ("-".into(), "never run".into(), "-".into(), "-".into()),
            };
            let failed = s.runs.as_ref().map_or(0, |r| r.failed_in_a_row);
            let success = time(s.runs.as_ref().and_then(|r| r.last_success_ms));
            [
                name,
                when,
                how,
                changes,
                errors,
                failed.to_string(),
                success,
                time(s.next_run_ms),
            ]
        })
        .collect();
    let header = [
        "SOURCE",
        "LAST RUN",
        "STATUS",
        "CHANGES",
        "ERRORS",
        "FAILED IN A ROW",
        "LAST SUCCESS",
        "NEXT RUN",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// The kinds of change a run made, or `none`.
fn changes_text(c: &crate::reconcile::PlanCounts) -> String {
    let parts: Vec<String> = [
        (c.created, "created"),
        (c.updated, "updated"),
        (c.disabled, "disabled"),
        (c.enabled, "enabled"),
        (c.deleted, "deleted"),
        (c.held, "held"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The `status --format json` object.
fn status_json(view: &StatusView) -> Value {
    let daemon = match &view.daemon {
        Some(d) => json!({
            "running": true,
            "pid": d.holder.pid,
            "since": d.since_ms.and_then(status::rfc3339),
            "config": d.config.as_ref().map(|c| c.display().to_string()),
        }),
        None => json!({"running": false, "pid": null, "since": null, "config": null}),
    };
    let sources: Vec<Value> = view
        .sources
        .iter()
        .map(|s| {
            let runs = s.runs.as_ref();
            json!({
                "source": s.source,
                "configured": s.configured,
                "last_run": runs.map(|r| last_run_json(&r.last)),
                "failed_in_a_row": runs.map_or(0, |r| r.failed_in_a_row),
                "last_success": runs.and_then(|r| r.last_success_ms).and_then(status::rfc3339),
                "next_run": s.next_run_ms.and_then(status::rfc3339),
                "cursor": s.cursor.as_ref().map(|c| cursor_json(c, view.now_ms)),
            })
        })
        .collect();
    json!({
        "store": view.store.display().to_string(),
        "daemon": daemon,
        "sources": sources,
        "outbox": view
            .outbox
            .iter()
            .map(|(state, n)| (state.as_str().to_owned(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// A source's cursor in `status --format json`: whether it has one, its age
/// in seconds and its last full read.
fn cursor_json(c: &SourceCursor, now_ms: i64) -> Value {
    json!({
        "present": c.cursor.is_some(),
        "stored": status::rfc3339(c.stored_ms),
        "age_s": now_ms.saturating_sub(c.stored_ms).max(0) / 1000,
        "last_full_read": c.last_full_ms.and_then(status::rfc3339),
    })
}

fn last_run_json(r: &RunRow) -> Value {
    let failure = r.failure.as_ref();
    let mut v = json!({
        "started": status::rfc3339(r.started_ms),
        "finished": status::rfc3339(r.finished_ms),
        "status": r.status,
    });
    put_counts(&mut v, &r.counts);
    v["held"] = json!(r.counts.held);
    v["errors"] = json!(r.errors);
    v["failure"] = json!(failure.map(|f| f.message.as_str()));
    v["failure_kind"] = json!(failure.map(|f| f.kind.as_str()));
    v["retryable"] = json!(failure.map(|f| f.retryable));
    v
}

/// The six counts of SPEC §5, in its order, added to the object `v`.
fn put_counts(v: &mut Value, c: &crate::reconcile::PlanCounts) {
    for (key, n) in [
        ("created", c.created),
        ("updated", c.updated),
        ("disabled", c.disabled),
        ("enabled", c.enabled),
        ("deleted", c.deleted),
        ("unchanged", c.unchanged),
    ] {
        v[key] = json!(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_sensible_unit() {
        let cases = [
            (0, "0s"),
            (119_999, "119s"),
            (120_000, "2m"),
            (7_199_999, "119m"),
            (7_200_000, "2h"),
            (172_800_000, "2d"),
            (-5, "0s"),
        ];
        for (ms, text) in cases {
            assert_eq!(age_text(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_leading_quote() {
        for cell in [
            "=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\0x", "=", "-",
        ] {
            assert_eq!(spreadsheet_safe(cell.to_owned()), format!("'{cell}"));
        }
        for cell in ["", "1", "a=b", " =1", "'=1", "{\"k\":\"=v\"}", "c1|=x"] {
            assert_eq!(spreadsheet_safe(cell.to_owned()), cell);
        }
    }
}
