//! The standard layout: a record's columns are the field names. No template
//! engine: column positions are resolved once per schema and each row is read by
//! index, borrowing its text until the contact is built.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use liaison_plugin_api::{Record, Schema, ValueRef};

use super::draft::Draft;
use super::fields::{Field, Target, FIELD_COUNT};

/// Maps records by column name, caching the positions for the last schema seen.
#[derive(Debug, Default)]
pub(crate) struct Standard {
    /// Sources share one `Arc<Schema>` among all rows of a file, so this hits
    /// for every row but the first of each file.
    cache: Mutex<Option<Arc<Columns>>>,
}

/// Where each field sits in one schema.
#[derive(Debug)]
struct Columns {
    /// The schema these positions belong to; kept alive so that its address
    /// cannot be reused by another schema while cached.
    schema: Arc<Schema>,
    fields: [Option<usize>; FIELD_COUNT],
    /// `attributes.KEY` columns: (KEY, position).
    attributes: Vec<(String, usize)>,
}

impl Columns {
    fn of(schema: &Arc<Schema>) -> Self {
        let mut fields = [None; FIELD_COUNT];
        let mut attributes = Vec::new();
        for (position, name) in schema.names().iter().enumerate() {
            match Target::parse(name) {
                Some(Target::Field(field)) if fields[field.index()].is_none() => {
                    fields[field.index()] = Some(position);
                }
                Some(Target::Attribute(key)) if !attributes.iter().any(|(k, _)| *k == key) => {
                    attributes.push((key, position));
                }
                // Unknown columns are ignored; a repeated name keeps its first column.
                _ => {}
            }
        }
        Columns {
            schema: Arc::clone(schema),
            fields,
            attributes,
        }
    }
}

impl Standard {
    pub(crate) fn new() -> Self {
        Standard::default()
    }

    fn columns(&self, schema: &Arc<Schema>) -> Arc<Columns> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cache {
            Some(columns) if Arc::ptr_eq(&columns.schema, schema) => Arc::clone(columns),
            _ => {
                let columns = Arc::new(Columns::of(schema));
                *cache = Some(Arc::clone(&columns));
                columns
            }
        }
    }

    /// The record's fields, unchecked.
    pub(crate) fn draft<'a>(&self, record: &'a Record) -> Draft<'a> {
        let columns = self.columns(&record.schema);
        let mut draft = Draft::default();
        for field in Field::ALL {
            let Some(value) = columns.fields[field.index()].and_then(|i| record.value_at(i)) else {
                continue;
            };
            match value {
                ValueRef::One(text) => draft.set_field(field, Cow::Borrowed(text)),
                // Several values (not from CSV, but possible from other sources):
                // grants and account domains take them all, other fields the first.
                ValueRef::Many(texts) if field == Field::Grants => {
                    for text in texts.iter() {
                        draft.set_field(field, Cow::Borrowed(text));
                    }
                }
                ValueRef::Many(texts) if field == Field::AccountDomains => {
                    let all: Vec<&str> = texts.iter().collect();
                    draft.set_field(field, Cow::Owned(all.join("|")));
                }
                ValueRef::Many(texts) => {
                    if let Some(text) = texts.first() {
                        draft.set_field(field, Cow::Borrowed(text));
                    }
                }
            }
        }
        // A keyed record's key is its contact id, whatever its columns say.
        if let Some(key) = record.key() {
            draft.set_field(Field::ContactId, Cow::Borrowed(key));
        }
        for field in Field::REQUIRED {
            let keyed = field == Field::ContactId && record.key().is_some();
            if columns.fields[field.index()].is_none() && !keyed {
                draft.unavailable(field, format!("required column {field} is missing"));
            }
        }
        for (key, position) in &columns.attributes {
            if let Some(text) = record.value_at(*position).and_then(ValueRef::first) {
                draft.set_attribute(key, Cow::Borrowed(text));
            }
        }
        draft
    }

    /// The trimmed `contact_id` column, when non-empty.
    pub(crate) fn contact_id<'r>(&self, record: &'r Record) -> Option<&'r str> {
        let columns = self.columns(&record.schema);
        let position = columns.fields[Field::ContactId.index()]?;
        let id = record.value_at(position)?.first()?.trim();
        (!id.is_empty()).then_some(id)
    }
}
