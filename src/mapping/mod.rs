//! From a source record's attributes to the standard layout ([`ContactRecord`]):
//! `map:` templates with filters, the `when:` filter, and the standard layout that
//! needs no map at all.
//!
//! INTERFACE PLACEHOLDER — to be implemented (issue 2). Signatures are the contract.

use liaison_plugin_api::Record;

use crate::model::ContactRecord;

/// A source's `map:` and `when:` as written in config, before compiling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapSpec {
    /// Standard column name (or `attributes.KEY`) → template source, in file order.
    pub fields: Vec<(String, String)>,
    /// The `when:` expression, with or without `{{ }}`.
    pub when: Option<String>,
}

/// Why a `map:` entry or `when:` does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct MapError {
    /// `when`, or the map key (`email`, `attributes.licence_key`).
    pub key: String,
    /// What is wrong, naming the bad value.
    pub message: String,
}

/// What mapping made of one record.
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
#[derive(Debug)]
pub struct Mapping {}

impl Mapping {
    /// The standard CSV layout: columns are the field names, no templates.
    pub fn standard() -> Self {
        todo!()
    }

    /// Compiles `map:`/`when:`; collects every error instead of stopping at the first.
    pub fn compile(_spec: &MapSpec) -> Result<Self, Vec<MapError>> {
        todo!()
    }

    /// Maps one record.
    pub fn apply(&self, _record: &Record) -> Mapped {
        todo!()
    }

    /// Best-effort contact id of a record that could not be read cleanly.
    pub fn contact_id_of(&self, _record: &Record) -> Option<String> {
        todo!()
    }
}
