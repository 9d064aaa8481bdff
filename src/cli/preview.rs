//! `liaison source preview S`: the first records of a source as read, next to
//! the fields its mapping makes of them (or the row error, or `when:` leaving
//! them out). A full read that is stopped after N records: nothing is
//! written, no cursor moves — the mapping debugger for writing `map:`.

use std::io::{self, BufWriter, Write};

use liaison_plugin_api::{Item, ReadRequest, Record, SourceError, ValueRef};
use serde_json::{json, Map, Value};

use super::args::Format;
use super::text::visible;
use super::{exit, output};
use crate::config::{Config, SourceConfig};
use crate::mapping::{Mapped, Mapping};
use crate::model::ContactFields;
use crate::sync::{compile_mapping, read_context, Cancel, FailureKind, ReadRuntime};

/// One previewed record: what was read and what the mapping made of it.
struct Entry {
    /// Where it was read.
    location: String,
    /// Its key, when the source gives keys.
    key: Option<String>,
    /// Its attributes as read, in the source's order (a bad row's partial ones).
    read: Vec<(String, Vec<String>)>,
    /// What the mapping made of it.
    outcome: Outcome,
}

/// What became of a previewed record.
enum Outcome {
    /// Mapped into these fields.
    Mapped(Vec<(String, String)>),
    /// `when:` left it out.
    LeftOutByWhen,
    /// `portal_access` said no.
    NoPortalAccess,
    /// The row could not be read or mapped.
    Error(String),
}

/// `source preview`: exit 0 when the records could be read, 1 when the
/// source failed before N records (what was read is still shown), 2 for an
/// unknown source or a mapping that does not compile.
pub fn preview(config: &Config, name: &str, limit: usize, format: Format) -> anyhow::Result<u8> {
    let Some(source) = config.sources.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        output::error_line(&format!(
            "error: no source {name:?} in the config (it has: {})",
            names.join(", ")
        ));
        return Ok(exit::INVALID);
    };
    let mapping = match compile_mapping(source) {
        Ok(m) => m,
        Err(e) => {
            output::error_line(&format!("error: source {name}: {e}"));
            return Ok(exit::INVALID);
        }
    };
    let (entries, failure) = read_first(source, &mapping, limit)?;
    write(name, &entries, failure.as_ref(), format)?;
    Ok(if failure.is_some() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// The first `limit` records of a full read of `source`, and the error that
/// stopped the read early, if one did.
fn read_first(
    source: &SourceConfig,
    mapping: &Mapping,
    limit: usize,
) -> anyhow::Result<(Vec<Entry>, Option<SourceError>)> {
    let connector = crate::plugins::build(&source.connector);
    let runtime = ReadRuntime::get()?;
    let ctx = read_context(Cancel::new(), crate::clock::now_ms(), &runtime);
    let mut items = match connector.read(&ReadRequest::full(), &ctx) {
        Ok(items) => items,
        Err(e) => return Ok((Vec::new(), Some(e))),
    };
    let mut entries = Vec::new();
    while entries.len() < limit {
        match items.next() {
            Some(Ok(Item::Record(record))) => entries.push(entry(&record, mapping)),
            Some(Ok(Item::Bad(bad))) => entries.push(Entry {
                location: bad.location.to_string(),
                key: bad.key.clone(),
                read: bad.partial.as_ref().map(attributes).unwrap_or_default(),
                outcome: Outcome::Error(bad.message),
            }),
            Some(Ok(Item::Deleted(_))) => {}
            Some(Ok(Item::End(_))) | None => break,
            Some(Err(e)) => return Ok((entries, Some(e))),
        }
    }
    // Dropping the stream stops the read (an exec plugin is killed, a
    // connection closed): the rest of the source is not needed.
    drop(items);
    Ok((entries, None))
}

fn entry(record: &Record, mapping: &Mapping) -> Entry {
    let outcome = match mapping.apply(record) {
        Mapped::Contact(c) => Outcome::Mapped(fields(&c.to_fields())),
        Mapped::Invalid { message, .. } => Outcome::Error(message),
        // Skipped: by `when:`, else `portal_access` said no.
        Mapped::Skipped if mapping.when_keeps(record) == Ok(false) => Outcome::LeftOutByWhen,
        Mapped::Skipped => Outcome::NoPortalAccess,
    };
    Entry {
        location: record.location.to_string(),
        key: record.key().map(str::to_owned),
        read: attributes(record),
        outcome,
    }
}

/// A record's attributes, each with its values.
fn attributes(record: &Record) -> Vec<(String, Vec<String>)> {
    record
        .attributes()
        .map(|(name, value)| {
            let values = match value {
                ValueRef::One(v) => vec![v.to_owned()],
                ValueRef::Many(vs) => vs.iter().map(str::to_owned).collect(),
            };
            (name.to_owned(), values)
        })
        .collect()
}

/// The fields a contact was mapped to, in SPEC §5's order; fields the
/// source did not give are left out.
fn fields(c: &ContactFields) -> Vec<(String, String)> {
    let flag = |b: Option<bool>| b.map(|b| b.to_string());
    let joined = |items: Vec<String>| (!items.is_empty()).then(|| items.join("|"));
    let mut out: Vec<(String, String)> = [
        ("contact_id", Some(c.contact_id.clone())),
        ("name", Some(c.name.clone())),
        ("email", Some(c.email.to_string())),
        ("phone", c.phone.clone()),
        ("account_id", c.account_id.clone()),
        ("account_name", c.account_name.clone()),
        (
            "account_domains",
            joined(c.account_domains.iter().map(ToString::to_string).collect()),
        ),
        ("login", c.login.as_ref().map(ToString::to_string)),
        ("description", c.description.clone()),
        ("locale", c.locale.clone()),
        ("account_contacts", flag(c.account_contacts)),
        ("account_tickets", flag(c.account_tickets)),
        ("external_comments", flag(c.external_comments)),
        ("grants", joined(c.grants.clone())),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
    .collect();
    out.extend(
        c.attributes
            .iter()
            .map(|(k, v)| (format!("attributes.{k}"), v.clone())),
    );
    out
}

fn write(
    source: &str,
    entries: &[Entry],
    failure: Option<&SourceError>,
    format: Format,
) -> io::Result<()> {
    if let Some(e) = failure {
        output::error_line(&format!("error: source {source}: {e}"));
    }
    if format == Format::Json {
        return output::json_out(&preview_json(source, entries, failure));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    if entries.is_empty() {
        writeln!(out, "{}: no records read", visible(source))?;
    }
    for e in entries {
        write_entry(&mut out, e)?;
    }
    out.flush()
}

/// One record, its attributes as read on the left, its fields on the right.
fn write_entry(out: &mut impl Write, e: &Entry) -> io::Result<()> {
    let key = e.key.as_deref().map(|k| format!(" · key {}", visible(k)));
    let verdict = match &e.outcome {
        Outcome::Mapped(_) => "mapped".to_owned(),
        Outcome::LeftOutByWhen => "left out by when:".to_owned(),
        Outcome::NoPortalAccess => "skipped: portal_access says no".to_owned(),
        Outcome::Error(message) => format!("row error: {}", visible(message)),
    };
    writeln!(
        out,
        "── {}{} · {verdict}",
        visible(&e.location),
        key.unwrap_or_default()
    )?;
    let left: Vec<(String, String)> = e
        .read
        .iter()
        .map(|(name, values)| (visible(name).into_owned(), shown_values(values)))
        .collect();
    let right: Vec<(String, String)> = match &e.outcome {
        Outcome::Mapped(fields) => fields
            .iter()
            .map(|(k, v)| (k.clone(), visible(v).into_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let width = |rows: &[(String, String)], pick: fn(&(String, String)) -> &String| {
        rows.iter()
            .map(|r| pick(r).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (name_w, value_w) = (width(&left, |r| &r.0), width(&left, |r| &r.1).min(40));
    let left_w = (name_w + 2 + value_w).max("as read".len());
    writeln!(out, "  {:<left_w$}    mapped", "as read")?;
    for i in 0..left.len().max(right.len()) {
        let l = left
            .get(i)
            .map(|(n, v)| format!("{n:<name_w$}  {v}"))
            .unwrap_or_default();
        let r = right
            .get(i)
            .map(|(n, v)| format!("{n} = {v}"))
            .unwrap_or_default();
        let line = format!("  {l:<left_w$}    {r}");
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// One attribute's values: the value, or `[a, b]` for several.
fn shown_values(values: &[String]) -> String {
    match values {
        [one] => visible(one).into_owned(),
        many => {
            let shown: Vec<String> = many.iter().map(|v| visible(v).into_owned()).collect();
            format!("[{}]", shown.join(", "))
        }
    }
}

fn preview_json(source: &str, entries: &[Entry], failure: Option<&SourceError>) -> Value {
    let records: Vec<Value> = entries
        .iter()
        .map(|e| {
            let read: Map<String, Value> = e
                .read
                .iter()
                .map(|(name, values)| {
                    let value = match values.as_slice() {
                        [one] => json!(one),
                        many => json!(many),
                    };
                    (name.clone(), value)
                })
                .collect();
            let (kept, skipped_because, fields, error) = match &e.outcome {
                Outcome::Mapped(fields) => {
                    let fields: Map<String, Value> =
                        fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                    (json!(true), Value::Null, Value::Object(fields), Value::Null)
                }
                Outcome::LeftOutByWhen => (json!(false), json!("when"), Value::Null, Value::Null),
                Outcome::NoPortalAccess => (
                    json!(false),
                    json!("portal_access"),
                    Value::Null,
                    Value::Null,
                ),
                Outcome::Error(message) => (Value::Null, Value::Null, Value::Null, json!(message)),
            };
            json!({
                "location": e.location,
                "key": e.key,
                "read": read,
                "kept": kept,
                "skipped_because": skipped_because,
                "fields": fields,
                "error": error,
            })
        })
        .collect();
    json!({
        "source": source,
        "records": records,
        "failure": failure.map(ToString::to_string),
        "failure_kind": failure.map(|e| FailureKind::of_source(e).as_str()),
    })
}
