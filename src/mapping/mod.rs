//! From a source record's attributes to the standard layout ([`ContactRecord`]):
//! `map:` templates with filters, the `when:` filter, and the standard layout that
//! needs no map at all.
//!
//! Two paths, one set of rules:
//! - **Standard layout** ([`Mapping::standard`], or a `map:` with no fields): the
//!   record's columns *are* the field names. Column positions are resolved once per
//!   [`Schema`] (cached by its `Arc`), and no template
//!   engine is involved, so a million rows map in a fraction of a second.
//! - **Templates** ([`Mapping::compile`]): each `map:` value is a minijinja template
//!   over the record's attributes, compiled once.
//!
//! Either way every value is trimmed and an empty value means "not said"; the
//! three flags read `true/false`, `yes/no`, `1/0` (any case); `grants` is split at
//! `|`, and so is `account_domains`, each part a checked e-mail domain,
//! lower-cased; `portal_access` saying no skips the row; `contact_id`, `name` and `email`
//! are required, the e-mail and a given login must be valid.
//!
//! # Templates
//! - Each attribute is a variable of its name (`{{ mail }}`), and every attribute,
//!   whatever its name, is in the `record` map (`{{ record["First Name"] }}`).
//! - A missing attribute is undefined and renders empty; lookups on it stay
//!   undefined (`{{ manager.name }}` is empty too).
//! - A dotted name is also a path: attributes `customFields.email` and
//!   `account.title` (a CRM's nested fields, flattened by its connector) are
//!   reachable as `{{ customFields.email[0] }}` and `{{ account.title }}`
//!   when no attribute is named `customFields` or `account` itself.
//! - A multi-valued attribute is a list (`{{ memberOf | first }}`,
//!   `'admins' in memberOf`); printed as text it shows its values joined by `|`,
//!   so a one-value list prints that value and `grants: "{{ memberOf }}"` gives
//!   one grant per value.
//! - Filters: minijinja's built-ins (`lower`, `upper`, `trim`, `replace`,
//!   `split(sep)`, `join(sep)`, `first`, `default(value)`, …) plus ours, `slug`
//!   (`Dvořák & Syn` → `dvorak-syn`) and `regex_replace(pattern, replacement)`
//!   (Rust regex syntax, `$1` for groups).
//! - minijinja 3 follows Jinja2: `default(x)` replaces only an *undefined* value,
//!   not empty text (a CSV cell is never undefined, only empty); use
//!   `default(x, true)` for both. Booleans print as `True`/`False`.
//! - Output is not HTML-escaped. A `grants` template that is one expression may
//!   give a list (`{{ teams | split(",") }}`): one grant per item.
//! - Compiling checks the whole template, every branch: unknown filters, tests
//!   and functions, method calls on attributes (`name.upper()`), invalid literal
//!   `regex_replace` patterns and bad literal arguments of text filters are
//!   [`MapError`]s. Recursive loops are refused.
//! - Comparisons (`<`, `<=`, `>`, `>=`, the `gt`/`lt`/… tests, and `==`/`!=`
//!   with a number) compare numbers when both sides are numbers or text that
//!   reads as one; text with text compares as text; anything else is the
//!   record's row error (see `compare.rs`).
//! - Limits (`limits.rs`): at most 200 levels of nesting (a compile error), a
//!   work budget per render (minijinja fuel), 64 KiB per rendered field and
//!   values nested at most 100 deep when printed (row errors).
//!
//! # `when:`
//! A minijinja *expression*, written with or without one surrounding `{{ }}`,
//! whose value's truth decides (`false`, `none`, undefined, `0`, empty text and
//! empty lists are false). Nothing is rendered and compared with `"true"`: the
//! text `no` is true, so compare explicitly (`portal == 'yes'`). `age >= 18`
//! compares the number in the text; a row whose `age` is not a number is a row
//! error naming the expression.
//!
//! ```
//! use std::sync::Arc;
//! use liaison::mapping::{MapSpec, Mapped, Mapping};
//! use liaison_plugin_api::{Location, Record, Schema};
//!
//! let spec = MapSpec {
//!     fields: vec![
//!         ("contact_id".into(), "{{ id }}".into()),
//!         ("name".into(), "{{ record['First Name'] }} {{ surname }}".into()),
//!         ("email".into(), "{{ mail | lower }}".into()),
//!         ("account_id".into(), "{{ company | slug }}".into()),
//!     ],
//!     when: Some("kind == 'partner'".into()),
//!     keyed: false,
//! };
//! let mapping = Mapping::compile(&spec).expect("valid map");
//! let schema = Arc::new(Schema::new(
//!     ["id", "First Name", "surname", "mail", "company", "kind"].map(String::from).to_vec(),
//! ));
//! let record = Record::new(
//!     Location::line("crm.csv", 2),
//!     schema,
//!     ["7", "Jiří", "Dvořák", "Jiri@Example.COM", "Dvořák & Syn", "partner"]
//!         .map(Into::into)
//!         .to_vec(),
//! );
//! let Mapped::Contact(contact) = mapping.apply(&record) else { panic!() };
//! assert_eq!(contact.name(), "Jiří Dvořák");
//! assert_eq!(contact.email_str(), "jiri@example.com");
//! assert_eq!(contact.account_id(), Some("dvorak-syn"));
//! ```

mod check;
mod compare;
mod context;
mod draft;
mod fields;
mod filters;
pub(crate) mod limits;
mod prepare;
mod standard;
mod template;
mod unparse;
mod when;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use liaison_plugin_api::{Record, Schema, ValueRef};

use crate::model::ContactRecord;

pub use fields::STANDARD_FIELDS;

use standard::Standard;
use template::Templates;
use when::When;

/// A source's `map:` and `when:` as written in config, before compiling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapSpec {
    /// Standard column name (or `attributes.KEY`) → template source, in file order.
    pub fields: Vec<(String, String)>,
    /// The `when:` expression, with or without `{{ }}`.
    pub when: Option<String>,
    /// The source gives each record a key (exec, LDAP, the CRM): the key is
    /// the contact id, so `map:` neither needs nor may give `contact_id`.
    pub keyed: bool,
}

/// The digest of a mapping's definition, versioned.
fn spec_digest(spec: &MapSpec) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut put = |s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(MAPPING_VERSION);
    for (key, template) in &spec.fields {
        put(key);
        put(template);
    }
    put(spec.when.as_deref().unwrap_or("\u{0}"));
    // Only when set: the digests (so the stored fingerprints) of unkeyed
    // mappings stay as they were.
    if spec.keyed {
        put("keyed");
    }
    h.digest()
}

/// Why a `map:` entry or `when:` does not compile.
///
/// For a problem inside a template (it does not parse, nests too deeply, names
/// an unknown filter, …), `message` ends with the position inside the
/// template as written, as `(line L, column C)` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct MapError {
    /// `when`, or the map key (`email`, `attributes.licence_key`).
    pub key: String,
    /// What is wrong, naming the bad value.
    pub message: String,
}

impl MapError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        MapError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What mapping made of one record.
// Returned once per record and consumed at once; boxing the contact would cost an
// allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A valid contact.
    Contact(ContactRecord),
    /// Left out on purpose: `when:` was false or `portal_access` said no.
    Skipped,
    /// A row error; `contact_id` is set when it could still be rendered, so the
    /// contact counts as present and keeps its links.
    Invalid {
        /// The contact id, if it rendered non-empty.
        contact_id: Option<String>,
        /// What is wrong, naming the field and the bad value.
        message: String,
    },
}

/// A compiled mapping, built once per source and applied to every record.
/// It is `Send + Sync`: one mapping may serve several threads.
#[derive(Debug)]
pub struct Mapping {
    fields: Fields,
    when: Option<When>,
    /// Digest of what the mapping is (layout or templates and `when:`).
    digest: u64,
    /// The last schema seen by [`Mapping::fingerprint`] and its names' digest.
    schema_digest: Mutex<Option<(Arc<Schema>, u64)>>,
}

/// Bumped whenever mapping code changes what a record maps to, so that stored
/// fingerprints stop matching and every record is mapped afresh once.
const MAPPING_VERSION: &str = "liaison-mapping-2";

/// Standard columns that became fields after the first layout. A schema
/// holding one digests differently, so the rows of a file that already had
/// the column (read and ignored by an older build) are mapped afresh once;
/// files without it keep their stored fingerprints, and their next run maps
/// nothing. (`map:` needs no such mark: an older build refused the key.)
const ADDED_FIELDS: &[&str] = &["account_domains"];

#[derive(Debug)]
enum Fields {
    Standard(Standard),
    Templates(Box<Templates>),
}

impl Mapping {
    /// The standard CSV layout: columns are the field names, no templates.
    pub fn standard() -> Self {
        Mapping {
            fields: Fields::Standard(Standard::new()),
            when: None,
            digest: spec_digest(&MapSpec::default()),
            schema_digest: Mutex::default(),
        }
    }

    /// Compiles `map:`/`when:`; collects every error instead of stopping at the first.
    ///
    /// A spec without fields keeps the standard layout and only adds its `when:`.
    pub fn compile(spec: &MapSpec) -> Result<Self, Vec<MapError>> {
        let mut errors = Vec::new();
        let when = match spec.when.as_deref().map(When::compile).transpose() {
            Ok(when) => when,
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let fields = if spec.fields.is_empty() {
            Some(Fields::Standard(Standard::new()))
        } else {
            match Templates::compile(&spec.fields, spec.keyed) {
                Ok(templates) => Some(Fields::Templates(Box::new(templates))),
                Err(mut e) => {
                    errors.append(&mut e);
                    None
                }
            }
        };
        match fields {
            Some(fields) if errors.is_empty() => Ok(Mapping {
                fields,
                when,
                digest: spec_digest(spec),
                schema_digest: Mutex::default(),
            }),
            _ => Err(errors),
        }
    }

    /// The digest of the mapping's definition (layout or templates, `when:`
    /// and the mapping code's version).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// True for the standard layout (no `map:` fields).
    pub fn is_standard(&self) -> bool {
        matches!(self.fields, Fields::Standard(_))
    }

    /// Whether `when:` keeps `record` (true without a `when:`), or why it
    /// cannot tell: what `source preview` shows beside the mapped fields.
    pub fn when_keeps(&self, record: &Record) -> Result<bool, String> {
        self.when
            .as_ref()
            .map_or(Ok(true), |when| when.eval(record))
    }

    /// Maps one record.
    pub fn apply(&self, record: &Record) -> Mapped {
        if let Some(when) = &self.when {
            match when.eval(record) {
                Ok(true) => {}
                Ok(false) => return Mapped::Skipped,
                Err(message) => {
                    return Mapped::Invalid {
                        contact_id: self.contact_id_of(record).map(Cow::into_owned),
                        message,
                    }
                }
            }
        }
        match &self.fields {
            Fields::Standard(standard) => standard.draft(record).finish(),
            Fields::Templates(templates) => templates.apply(record),
        }
    }

    /// A digest of `record` (names and values) and of this mapping. Equal
    /// digests map to equal contacts, so a record whose digest is stored
    /// needs no mapping at all: that is what makes a no-op run cheap.
    pub fn fingerprint(&self, record: &Record) -> u64 {
        use xxhash_rust::xxh3::xxh3_64_with_seed;
        let mut seed = self.digest ^ self.schema_digest(&record.schema);
        if let Some(key) = record.key() {
            // The key is the contact id but not part of the record's text.
            seed = xxh3_64_with_seed(key.as_bytes(), seed);
        }
        if !record.has_many() {
            // The usual record: its whole text in one pass, then where each
            // value ends (so boundaries count), seeded with the names' digest.
            let h = xxh3_64_with_seed(record.text().as_bytes(), seed);
            let mut h = xxh3_64_with_seed(&(record.ends().len() as u64).to_le_bytes(), h);
            for chunk in record.ends().chunks(16) {
                let mut bytes = [0u8; 16 * 8];
                for (i, &end) in chunk.iter().enumerate() {
                    bytes[i * 8..i * 8 + 8].copy_from_slice(&(end as u64).to_le_bytes());
                }
                h = xxh3_64_with_seed(&bytes[..chunk.len() * 8], h);
            }
            return h;
        }
        // Multi-valued attributes: each name and value on its own, seeded with
        // the digest so far (order and boundaries count).
        let mut h = seed;
        for (name, value) in record.attributes() {
            h = xxh3_64_with_seed(name.as_bytes(), h);
            match value {
                ValueRef::One(v) => h = xxh3_64_with_seed(v.as_bytes(), h),
                ValueRef::Many(vs) => {
                    h = xxh3_64_with_seed(b"\0many", h ^ vs.len() as u64);
                    for v in vs.iter() {
                        h = xxh3_64_with_seed(v.as_bytes(), h);
                    }
                }
            }
        }
        h
    }

    /// The digest of `schema`'s names, computed once per schema (a source's
    /// records share one).
    fn schema_digest(&self, schema: &Arc<Schema>) -> u64 {
        let mut cached = self
            .schema_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((known, digest)) if Arc::ptr_eq(known, schema) => *digest,
            _ => {
                let mut h = xxhash_rust::xxh3::Xxh3::new();
                for name in schema.names() {
                    h.update(&(name.len() as u64).to_le_bytes());
                    h.update(name.as_bytes());
                    if self.is_standard() && ADDED_FIELDS.contains(&name.as_str()) {
                        h.update(b"\0added-field");
                    }
                    // Templates read dotted names as paths since the CRM
                    // connector: records with such names map afresh once.
                    if !self.is_standard() && name.contains('.') {
                        h.update(b"\0nested-path");
                    }
                }
                let digest = h.digest();
                *cached = Some((Arc::clone(schema), digest));
                digest
            }
        }
    }

    /// The contact id of a record: its key when the source gives keys, else
    /// read as the mapping says (best effort for a record that could not be
    /// read cleanly). Borrowed from the record where possible (no allocation).
    pub fn contact_id_of<'r>(&self, record: &'r Record) -> Option<Cow<'r, str>> {
        if let Some(key) = record.key() {
            return Some(Cow::Borrowed(key));
        }
        match &self.fields {
            Fields::Standard(standard) => standard.contact_id(record).map(Cow::Borrowed),
            Fields::Templates(templates) => templates.contact_id(record).map(Cow::Owned),
        }
    }
}
