//! The exec protocol, version 1 (SPEC §2): the start line the host writes and
//! the lines a plugin writes, parsed one at a time.
//!
//! One parser serves both the connector, which stops at the first line that
//! breaks the protocol, and `liaison plugin check`, which reports every such
//! line and reads on. A [`Session`] adds what depends on the lines before: no
//! line after `end`, no deletion in a full read, an end whose mode the request
//! allows.
//!
//! Parsing is built for a million records: the line is read in place (strings
//! without escapes are borrowed, not copied), every attribute value is written
//! straight into the record's one text buffer, and a record whose attribute
//! names are those of the record before shares that record's schema. A record
//! of single values costs its own allocations (text, value ends, key) and
//! nothing else.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use liaison_plugin_api::{
    BadRow, Cursor, Deletion, Location, ReadEnd, ReadMode, ReadRequest, Record, Schema, Value,
};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The protocol version this host speaks, sent in the start line.
pub const PROTOCOL_VERSION: u32 = 1;

/// A line (or the lack of one) that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The plugin's stdout line, 1-based; `None` for what no one line did
    /// (a missing `end`).
    pub line: Option<u64>,
    /// What is wrong, for the plugin's author.
    pub message: String,
}

impl Violation {
    /// A violation on `line`.
    pub fn at(line: u64, message: impl Into<String>) -> Self {
        Violation {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The level of a `log` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// `error`.
    Error,
    /// `warn`.
    Warn,
    /// `info`.
    Info,
    /// `debug`.
    Debug,
}

impl LogLevel {
    /// The level's word, as the protocol writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "error" => Some(LogLevel::Error),
            "warn" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            _ => None,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of a plugin, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// `record`: located at its output line, with its key.
    Record(Record),
    /// `deleted`.
    Deleted(Deletion),
    /// `error`: a bad record, with the plugin's own location.
    Bad(BadRow),
    /// `log`.
    Log { level: LogLevel, message: String },
    /// `end`: the mode delivered and the cursor (its JSON text; `null` is none).
    End(ReadEnd),
}

/// What the start line asks: the mode sent to the plugin. A changes read
/// without a cursor is sent as a full one (there is nothing to start from).
pub(crate) fn effective_mode(request: &ReadRequest) -> ReadMode {
    match (request.mode, &request.cursor) {
        (ReadMode::Changes, Some(_)) => ReadMode::Changes,
        _ => ReadMode::Full,
    }
}

/// The start line (without its line break): `{"type": "start", "protocol": 1,
/// "source": NAME, "mode": …, "cursor": VALUE|null, "settings": {…}}`. `Err`
/// when the stored cursor is not JSON (only this connector makes cursors, so
/// it was damaged): the message for a [`liaison_plugin_api::SourceError::CursorExpired`].
pub(crate) fn start_line(
    source: &str,
    request: &ReadRequest,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u8>, String> {
    #[derive(serde::Serialize)]
    struct Start<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        protocol: u32,
        source: &'a str,
        mode: &'static str,
        cursor: Option<&'a RawValue>,
        settings: &'a serde_json::Map<String, serde_json::Value>,
    }
    let mode = effective_mode(request);
    let cursor = match (mode, &request.cursor) {
        (ReadMode::Changes, Some(cursor)) => Some(
            serde_json::from_str::<&RawValue>(cursor.as_str())
                .map_err(|e| format!("the stored cursor is not JSON ({e})"))?,
        ),
        _ => None,
    };
    let start = Start {
        kind: "start",
        protocol: PROTOCOL_VERSION,
        source,
        mode: mode.as_str(),
        cursor,
        settings,
    };
    serde_json::to_vec(&start).map_err(|e| format!("the start line could not be written: {e}"))
}

/// Checks each line against the lines before it; see the module doc.
pub(crate) struct Session {
    parser: Parser,
    asked: ReadMode,
    end_line: Option<u64>,
    first_deletion: Option<u64>,
}

impl Session {
    /// A session of a read that asked the plugin for `asked`.
    pub(crate) fn new(asked: ReadMode) -> Self {
        Session {
            parser: Parser::default(),
            asked,
            end_line: None,
            first_deletion: None,
        }
    }

    /// Takes line `line` (its bytes without the line break): `Ok(None)` for a
    /// blank line, which is allowed and ignored.
    pub(crate) fn take(&mut self, line: u64, bytes: &[u8]) -> Result<Option<Message>, Violation> {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if let Some(end) = self.end_line {
            return Err(Violation::at(
                line,
                format!("output after the end line (line {end}); the end line must be the last"),
            ));
        }
        let message = self.parser.parse(line, bytes)?;
        match &message {
            Message::Deleted(_) if self.asked == ReadMode::Full => {
                return Err(Violation::at(
                    line,
                    "a deleted line in a full read: deletions belong to changes reads \
                     (in a full read, a contact not sent has left)",
                ));
            }
            Message::Deleted(_) => {
                self.first_deletion.get_or_insert(line);
            }
            Message::End(end) => {
                self.end_line = Some(line);
                if self.asked == ReadMode::Full && end.mode == ReadMode::Changes {
                    return Err(Violation::at(
                        line,
                        "the end says \"changes\", but the start line asked for a full read",
                    ));
                }
                if let (ReadMode::Full, Some(at)) = (end.mode, self.first_deletion) {
                    return Err(Violation::at(
                        line,
                        format!(
                            "the end says \"full\", but line {at} sent a deletion \
                             (deletions belong to changes reads)"
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(Some(message))
    }

    /// The line of the `end`, once read.
    pub(crate) fn end_line(&self) -> Option<u64> {
        self.end_line
    }

    /// The fields the last line had that the protocol does not know (ignored,
    /// for forward compatibility; `plugin check` warns of them).
    pub(crate) fn unknown_fields(&self) -> &[String] {
        &self.parser.unknown
    }
}

/// How many schemas are kept for reuse: plugins that leave empty attributes
/// out make many record shapes (the benchmark's export: 1,412 name lists in
/// its first 100,000 records), and a shape seen before shares its schema
/// instead of building one per record. Past this many the set starts over,
/// so a plugin with a new shape per record costs bounded memory.
const SCHEMAS_KEPT: usize = 4096;

/// The line parser; keeps what is reused from line to line.
#[derive(Default)]
struct Parser {
    /// The latest record's schema.
    latest: Option<Arc<Schema>>,
    /// Schemas seen before, by their names.
    schemas: HashMap<Vec<String>, Arc<Schema>>,
    /// The attributes of the line being parsed.
    scratch: Scratch,
    /// Unknown fields of the last line.
    unknown: Vec<String>,
}

/// The attributes of one record as they are parsed: the values' text in one
/// buffer (it becomes the record's), and the names only when they differ
/// from the latest schema's.
#[derive(Default)]
struct Scratch {
    /// Attributes read so far.
    count: usize,
    /// Whether the names so far are the latest schema's first `count`.
    same_names: bool,
    /// The names, once they differ from the latest schema.
    names: Vec<String>,
    /// Every value's text.
    text: String,
    /// Where each value ends in `text`.
    ends: Vec<usize>,
    /// Per attribute: one past its last value in `ends`, and whether it was a list.
    spans: Vec<(usize, bool)>,
    /// Whether some attribute was a list.
    many: bool,
    /// Whether the attribute just read was a list.
    last_list: bool,
    /// Whether an `attributes` field was read.
    present: bool,
}

impl Scratch {
    fn reset(&mut self, capacity: (usize, usize)) {
        self.count = 0;
        self.same_names = true;
        self.names.clear();
        // The text and ends of the last record moved into it: start this
        // one's at the size the last one needed.
        self.text = String::with_capacity(capacity.0);
        self.ends = Vec::with_capacity(capacity.1);
        self.spans.clear();
        self.many = false;
        self.last_list = false;
        self.present = false;
    }
}

/// A field read as text, or what it was instead.
enum Text<'a> {
    Str(Cow<'a, str>),
    Int(i128),
    Wrong(&'static str),
}

impl Text<'_> {
    fn describe(&self) -> String {
        match self {
            Text::Str(s) => format!("{s:?}"),
            Text::Int(i) => i.to_string(),
            Text::Wrong(what) => (*what).to_owned(),
        }
    }
}

/// The fields of one line, before its type says which it needs.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<Text<'a>>,
    key: Option<Text<'a>>,
    location: Option<Text<'a>>,
    message: Option<Text<'a>>,
    level: Option<Text<'a>>,
    mode: Option<Text<'a>>,
    cursor: Option<&'a RawValue>,
}

impl Parser {
    /// Parses one non-blank line.
    fn parse(&mut self, line: u64, bytes: &[u8]) -> Result<Message, Violation> {
        let (text_len, ends_len) = (self.scratch.text.capacity(), self.scratch.ends.capacity());
        self.scratch.reset((text_len.max(64), ends_len.max(8)));
        self.unknown.clear();
        let latest = self.latest.clone();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let visitor = LineVisitor {
            scratch: &mut self.scratch,
            latest: latest.as_deref(),
            unknown: &mut self.unknown,
        };
        let fields = de
            .deserialize_map(visitor)
            .and_then(|fields| de.end().map(|()| fields))
            .map_err(|e| Violation::at(line, json_error(&e)))?;
        self.message(line, fields)
    }

    fn message(&mut self, line: u64, f: Fields<'_>) -> Result<Message, Violation> {
        let bad = |message: String| Violation::at(line, message);
        let kind = match f.kind {
            None => return Err(bad("no \"type\" field".into())),
            Some(Text::Str(kind)) => kind,
            Some(other) => {
                return Err(bad(format!(
                    "\"type\": expected a string, found {}",
                    other.describe()
                )))
            }
        };
        let at = |at: Option<Box<str>>| Location::Output { line, at };
        match kind.as_ref() {
            "record" => {
                let key = key(f.key, "record").map_err(bad)?;
                if !self.scratch.present {
                    return Err(bad("a record needs \"attributes\" (an object)".into()));
                }
                let schema = self.schema().map_err(bad)?;
                let record = self.record(at(None), schema).with_key(key);
                Ok(Message::Record(record))
            }
            "deleted" => {
                let key = key(f.key, "deleted line").map_err(bad)?;
                Ok(Message::Deleted(Deletion {
                    key: key.into_owned(),
                    location: at(None),
                }))
            }
            "error" => {
                let location = text(f.location, "location").map_err(bad)?;
                let message = text(f.message, "message").map_err(bad)?;
                let key = match f.key {
                    None => None,
                    some => Some(key(some, "error line").map_err(bad)?.into_owned()),
                };
                Ok(Message::Bad(BadRow {
                    location: at(Some(location.into())),
                    message: message.into_owned(),
                    partial: None,
                    key,
                }))
            }
            "log" => {
                let level = text(f.level, "level").map_err(bad)?;
                let Some(level) = LogLevel::parse(&level) else {
                    return Err(bad(format!(
                        "\"level\": expected \"error\", \"warn\", \"info\" or \"debug\", found {level:?}"
                    )));
                };
                let message = text(f.message, "message").map_err(bad)?;
                Ok(Message::Log {
                    level,
                    message: message.into_owned(),
                })
            }
            "end" => {
                let mode = text(f.mode, "mode").map_err(bad)?;
                let Some(mode) = ReadMode::parse(&mode) else {
                    return Err(bad(format!(
                        "\"mode\": expected \"full\" or \"changes\", found {mode:?}"
                    )));
                };
                let Some(cursor) = f.cursor else {
                    return Err(bad(
                        "an end line needs \"cursor\" (a JSON value, or null for none)".into(),
                    ));
                };
                let cursor = match cursor.get().trim() {
                    "null" => None,
                    json => Some(Cursor::new(json)),
                };
                Ok(Message::End(ReadEnd { mode, cursor }))
            }
            "start" => Err(bad(
                "a start line: the host writes it to the plugin's stdin, the plugin never writes it"
                    .into(),
            )),
            other => Err(bad(format!(
                "unknown type {other:?} (protocol 1 knows record, deleted, error, log and end)"
            ))),
        }
    }

    /// The schema of the record just parsed: the latest one when the names
    /// are its own, another kept one with the same names, or a new one.
    fn schema(&mut self) -> Result<Arc<Schema>, String> {
        let s = &mut self.scratch;
        if s.same_names {
            if let Some(latest) = &self.latest {
                if latest.len() == s.count {
                    return Ok(latest.clone());
                }
                // A prefix of the latest names: the names are needed after all.
                s.names = latest.names()[..s.count].to_vec();
            }
        }
        let names = std::mem::take(&mut s.names);
        if let Some(found) = self.schemas.get(&names) {
            self.latest = Some(found.clone());
            return Ok(found.clone());
        }
        let schema = Schema::new(names);
        if let Some(twice) = schema
            .names()
            .iter()
            .enumerate()
            .find(|(i, n)| schema.position(n) != Some(*i))
        {
            return Err(format!("attribute {:?} is given twice", twice.1));
        }
        let schema = Arc::new(schema);
        if self.schemas.len() >= SCHEMAS_KEPT {
            self.schemas.clear();
        }
        self.schemas.insert(schema.names().to_vec(), schema.clone());
        self.latest = Some(schema.clone());
        Ok(schema)
    }

    /// The record of the values just parsed.
    fn record(&mut self, location: Location, schema: Arc<Schema>) -> Record {
        let s = &mut self.scratch;
        let text = std::mem::take(&mut s.text);
        let ends = std::mem::take(&mut s.ends);
        if !s.many {
            // Single values: the parsed text is the record's, as it is.
            if let Some(record) = Record::from_text(location.clone(), schema.clone(), text, ends) {
                return record;
            }
            // Unreachable: the ends ascend on character boundaries by construction.
            return Record::new(location, schema, Vec::new());
        }
        let mut values = Vec::with_capacity(s.spans.len());
        let mut piece = 0;
        let mut from = 0;
        let mut next = |piece: &mut usize| {
            let end = ends.get(*piece).copied().unwrap_or(from);
            let value = text.get(from..end).unwrap_or("").to_owned();
            from = end;
            *piece += 1;
            value
        };
        for &(end, list) in &s.spans {
            if list {
                let mut many = Vec::with_capacity(end - piece);
                while piece < end {
                    many.push(next(&mut piece));
                }
                values.push(Value::Many(many));
            } else {
                values.push(Value::One(next(&mut piece)));
            }
        }
        Record::new(location, schema, values)
    }
}

/// A required key: a non-blank string, or an integer (written as its digits).
fn key<'a>(field: Option<Text<'a>>, what: &str) -> Result<Cow<'a, str>, String> {
    match field {
        None => Err(format!("a {what} needs \"key\"")),
        Some(Text::Str(s)) if s.trim().is_empty() => {
            Err("\"key\": must not be empty (it is the contact's anchor)".into())
        }
        Some(Text::Str(s)) => Ok(s),
        Some(Text::Int(i)) => Ok(Cow::Owned(i.to_string())),
        Some(other) => Err(format!(
            "\"key\": expected a string (or an integer), found {}",
            other.describe()
        )),
    }
}

/// A required text field.
fn text<'a>(field: Option<Text<'a>>, name: &str) -> Result<Cow<'a, str>, String> {
    match field {
        None => Err(format!("no {name:?} field")),
        Some(Text::Str(s)) => Ok(s),
        Some(other) => Err(format!(
            "{name:?}: expected a string, found {}",
            other.describe()
        )),
    }
}

/// serde_json's message without its " at line 1 column N" (every line is
/// parsed alone; the caller says which line), with the column kept.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = match text.rfind(" at line ") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    let what = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("not JSON: {what}")
        }
        _ => what.to_owned(),
    };
    match e.column() {
        0 => what,
        column => format!("{what} (column {column})"),
    }
}

/// A string field borrowed from the line where it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text::Int(v.into()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text::Wrong("a number with a fraction"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text::Wrong("a boolean"))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text::Wrong("null"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text::Wrong("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::Wrong("an object"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The top-level object of a line.
struct LineVisitor<'s> {
    scratch: &'s mut Scratch,
    latest: Option<&'s Schema>,
    unknown: &'s mut Vec<String>,
}

/// The fields the protocol knows, for duplicate checks.
const FIELDS: [&str; 8] = [
    "type",
    "key",
    "attributes",
    "location",
    "message",
    "level",
    "mode",
    "cursor",
];

impl<'de> Visitor<'de> for LineVisitor<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object such as {\"type\": \"record\", …}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        let mut seen = [false; FIELDS.len()];
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            if let Some(i) = FIELDS.iter().position(|f| *f == name) {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(de::Error::custom(format!("field {name:?} is given twice")));
                }
            }
            match name.as_ref() {
                "type" => fields.kind = Some(map.next_value()?),
                "key" => fields.key = Some(map.next_value()?),
                "location" => fields.location = Some(map.next_value()?),
                "message" => fields.message = Some(map.next_value()?),
                "level" => fields.level = Some(map.next_value()?),
                "mode" => fields.mode = Some(map.next_value()?),
                "cursor" => fields.cursor = Some(map.next_value::<&'de RawValue>()?),
                "attributes" => {
                    self.scratch.present = true;
                    map.next_value_seed(Attributes {
                        scratch: &mut *self.scratch,
                        latest: self.latest,
                    })?;
                }
                other => {
                    self.unknown.push(other.to_owned());
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// `attributes`: an object of NAME → TEXT | [TEXT, …], written into the scratch.
struct Attributes<'s> {
    scratch: &'s mut Scratch,
    latest: Option<&'s Schema>,
}

impl<'de> DeserializeSeed<'de> for Attributes<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Attributes<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"attributes\" as an object of names to strings or lists of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let s = self.scratch;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            let i = s.count;
            if s.same_names {
                let known = self.latest.and_then(|l| l.names().get(i));
                if known.map(String::as_str) != Some(name.as_ref()) {
                    s.same_names = false;
                    if let Some(latest) = self.latest {
                        s.names.extend_from_slice(&latest.names()[..i]);
                    }
                }
            }
            let value = AttributeValue {
                scratch: &mut *s,
                name: &name,
            };
            map.next_value_seed(value)?;
            if !s.same_names {
                s.names.push(name.into_owned());
            }
            s.count += 1;
            s.spans.push((s.ends.len(), s.last_list));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "\"attributes\": expected an object of names to values, found a list",
        ))
    }
}

/// One attribute's value: a string, or a list of strings.
struct AttributeValue<'s, 'n> {
    scratch: &'s mut Scratch,
    name: &'n str,
}

impl AttributeValue<'_, '_> {
    fn wrong<E: de::Error>(&self, found: &str) -> E {
        E::custom(format!(
            "attribute {:?}: expected a string or a list of strings, found {found} \
             (leave an attribute out to have no value)",
            self.name
        ))
    }
}

impl<'de> DeserializeSeed<'de> for AttributeValue<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttributeValue<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let s = self.scratch;
        s.text.push_str(v);
        s.ends.push(s.text.len());
        s.last_list = false;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let name = self.name;
        let s = self.scratch;
        while seq
            .next_element_seed(ListItem {
                scratch: &mut *s,
                name,
            })?
            .is_some()
        {}
        s.last_list = true;
        s.many = true;
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.wrong(&format!("the number {v}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.wrong(&format!("the number {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.wrong(&format!("the number {v}")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.wrong(&v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.wrong("null"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.wrong("an object"))
    }
}

/// One value of a list attribute: a string.
struct ListItem<'s, 'n> {
    scratch: &'s mut Scratch,
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for ListItem<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListItem<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scratch.text.push_str(v);
        self.scratch.ends.push(self.scratch.text.len());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.list_of("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.list_of("an object"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.list_of(&format!("the number {v}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.list_of(&format!("the number {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.list_of(&format!("the number {v}")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.list_of(&v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.list_of("null"))
    }
}

impl ListItem<'_, '_> {
    fn list_of<E: de::Error>(&self, found: &str) -> E {
        E::custom(format!(
            "attribute {:?}: a list holds strings only, found {found}",
            self.name
        ))
    }
}
