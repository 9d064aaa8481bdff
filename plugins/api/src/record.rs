//! One record as a connector hands it out: every value's text in one buffer.
//!
//! A million-row read makes a million records; a `String` per value would be
//! fifteen allocations (and, on the daemon's other thread, fifteen frees) per
//! row of a typical CSV. A record is three allocations however many values it
//! has, and hands its values out borrowed ([`ValueRef`]).

use std::fmt;
use std::sync::Arc;

use crate::{Location, Schema};

/// One value of an attribute, owned: what a connector builds a record from
/// with [`Record::new`]. Most sources give one string, LDAP may give several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A single string value.
    One(String),
    /// A multi-valued attribute, in source order.
    Many(Vec<String>),
}

impl Value {
    /// The first (or only) value, if any.
    pub fn first(&self) -> Option<&str> {
        match self {
            Value::One(s) => Some(s),
            Value::Many(v) => v.first().map(String::as_str),
        }
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::One(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::One(s.to_owned())
    }
}

/// One value of an attribute as its record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// A single string value.
    One(&'a str),
    /// A multi-valued attribute, in source order.
    Many(Many<'a>),
}

impl<'a> ValueRef<'a> {
    /// The first (or only) value, if any.
    pub fn first(self) -> Option<&'a str> {
        match self {
            ValueRef::One(s) => Some(s),
            ValueRef::Many(m) => m.first(),
        }
    }

    /// The value, owned.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::One(s) => Value::One(s.to_owned()),
            ValueRef::Many(m) => Value::Many(m.iter().map(str::to_owned).collect()),
        }
    }
}

/// The values of a multi-valued attribute, borrowed from their record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Many<'a> {
    text: &'a str,
    /// Where the first value starts in `text`.
    start: usize,
    /// Where each value ends in `text`.
    ends: &'a [usize],
}

impl<'a> Many<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the attribute is present with no value.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The first value, if any.
    pub fn first(&self) -> Option<&'a str> {
        self.iter().next()
    }

    /// The values in source order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (text, mut from) = (self.text, self.start);
        self.ends.iter().map(move |&end| {
            let value = text.get(from..end).unwrap_or("");
            from = end;
            value
        })
    }
}

impl fmt::Debug for Many<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Where an attribute's values are among a record's pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// One past the attribute's last piece.
    end: usize,
    /// Multi-valued (even with one value or none).
    many: bool,
}

/// One record read from a source: named attributes and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record came from.
    pub location: Location,
    /// Attribute names, shared among records with the same layout.
    pub schema: Arc<Schema>,
    /// Every value's text, one after the other.
    text: String,
    /// Where each piece (one value) ends in `text`.
    ends: Vec<usize>,
    /// Per attribute, its pieces — only when some attribute is multi-valued;
    /// empty: attribute `i` is piece `i`, single-valued.
    spans: Vec<Span>,
    /// The record's stable id in its source, from connectors that give one
    /// (exec's `key`, an LDAP entryUUID, a CRM record id): its anchor.
    key: Option<Box<str>>,
}

impl Record {
    /// A record from a schema and values in the same order; fewer values than
    /// the schema has names means the trailing attributes are missing.
    pub fn new(location: Location, schema: Arc<Schema>, values: Vec<Value>) -> Self {
        let many = values.iter().any(|v| matches!(v, Value::Many(_)));
        let mut record = Record {
            location,
            schema,
            text: String::new(),
            ends: Vec::with_capacity(values.len()),
            spans: Vec::new(),
            key: None,
        };
        for value in &values {
            match value {
                Value::One(s) => record.push_piece(s),
                Value::Many(vs) => vs.iter().for_each(|s| record.push_piece(s)),
            }
            if many {
                record.spans.push(Span {
                    end: record.ends.len(),
                    many: matches!(value, Value::Many(_)),
                });
            }
        }
        record
    }

    /// A record of single values cut from one text: value `i` ends at
    /// `ends[i]` (the fast path of line-oriented sources). `None` unless the
    /// ends ascend within `text` and fall on character boundaries.
    pub fn from_text(
        location: Location,
        schema: Arc<Schema>,
        text: String,
        ends: Vec<usize>,
    ) -> Option<Self> {
        let mut from = 0;
        for &end in &ends {
            if end < from || !text.is_char_boundary(end) {
                return None;
            }
            from = end;
        }
        Some(Record {
            location,
            schema,
            text,
            ends,
            spans: Vec::new(),
            key: None,
        })
    }

    /// This record with its stable id in the source (SPEC §2 "Keys and anchors").
    pub fn with_key(mut self, key: impl Into<Box<str>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The record's stable id, when its connector gives one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn push_piece(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// How many attributes have a value (trailing ones may be missing).
    pub fn len(&self) -> usize {
        match self.spans.is_empty() {
            true => self.ends.len(),
            false => self.spans.len(),
        }
    }

    /// True when no attribute has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of piece `i`.
    fn piece(&self, i: usize) -> &str {
        let start = self.piece_start(i);
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }

    fn piece_start(&self, i: usize) -> usize {
        match i {
            0 => 0,
            _ => self.ends.get(i - 1).copied().unwrap_or(0),
        }
    }

    /// Every value's text, one after the other: with [`Record::ends`], what a
    /// digest of the record reads in one pass.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where each value ends in [`Record::text`]. Without multi-valued
    /// attributes ([`Record::has_many`]), end `i` is attribute `i`'s.
    pub fn ends(&self) -> &[usize] {
        &self.ends
    }

    /// True when some attribute is multi-valued.
    pub fn has_many(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The value of the attribute at position `i` of the schema.
    pub fn value_at(&self, i: usize) -> Option<ValueRef<'_>> {
        if self.spans.is_empty() {
            return (i < self.ends.len()).then(|| ValueRef::One(self.piece(i)));
        }
        let span = self.spans.get(i)?;
        let first = match i {
            0 => 0,
            _ => self.spans.get(i - 1).map_or(0, |s| s.end),
        };
        if !span.many {
            return Some(ValueRef::One(self.piece(first)));
        }
        Some(ValueRef::Many(Many {
            text: &self.text,
            start: self.piece_start(first),
            ends: self.ends.get(first..span.end).unwrap_or(&[]),
        }))
    }

    /// The values in schema order.
    pub fn values(&self) -> impl Iterator<Item = ValueRef<'_>> {
        (0..self.len()).filter_map(|i| self.value_at(i))
    }

    /// The first value of attribute `name`, or `None` when it is missing.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.value(name).and_then(ValueRef::first)
    }

    /// The full value of attribute `name`.
    pub fn value(&self, name: &str) -> Option<ValueRef<'_>> {
        self.schema.position(name).and_then(|i| self.value_at(i))
    }

    /// Attributes as (name, value) pairs in schema order, skipping missing ones.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> {
        self.schema
            .names()
            .iter()
            .zip(self.values())
            .map(|(n, v)| (n.as_str(), v))
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("location", &self.location)
            .field("key", &self.key)
            .field("values", &self.values().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn schema(names: &[&str]) -> Arc<Schema> {
        Arc::new(Schema::new(names.iter().map(|n| n.to_string()).collect()))
    }

    #[test]
    fn single_values_come_back_as_given() {
        let values = vec![Value::from("c-1"), Value::from(""), Value::from("Jiří")];
        let r = Record::new(
            Location::line("f", 2),
            schema(&["a", "b", "c", "d"]),
            values,
        );
        assert_eq!(r.len(), 3, "d is missing");
        assert_eq!(r.get("a"), Some("c-1"));
        assert_eq!(r.get("b"), Some(""));
        assert_eq!(r.get("c"), Some("Jiří"));
        assert_eq!(r.get("d"), None);
        assert_eq!(r.value_at(3), None);
        let pairs: Vec<_> = r.attributes().map(|(n, v)| (n, v.first())).collect();
        assert_eq!(
            pairs,
            [("a", Some("c-1")), ("b", Some("")), ("c", Some("Jiří"))]
        );
    }

    #[test]
    fn several_values_keep_their_order_and_boundaries() {
        let values = vec![
            Value::from("x"),
            Value::Many(vec!["admins".into(), "".into(), "sales".into()]),
            Value::Many(vec![]),
            Value::Many(vec!["only".into()]),
            Value::from("y"),
        ];
        let r = Record::new(
            Location::line("f", 2),
            schema(&["a", "g", "e", "o", "z"]),
            values.clone(),
        );
        assert_eq!(r.len(), 5);
        let back: Vec<Value> = r.values().map(ValueRef::to_value).collect();
        assert_eq!(back, values);
        let Some(ValueRef::Many(g)) = r.value("g") else {
            panic!("g is many")
        };
        assert_eq!(g.len(), 3);
        assert_eq!(g.iter().collect::<Vec<_>>(), ["admins", "", "sales"]);
        assert_eq!(r.get("e"), None, "present, no value");
        assert_eq!(r.get("o"), Some("only"));
        assert_eq!(r.value("z"), Some(ValueRef::One("y")));
    }

    #[test]
    fn a_record_cut_from_one_text_equals_one_built_from_values() {
        let cut = Record::from_text(
            Location::line("f", 2),
            schema(&["a", "b", "c"]),
            "c-1Ann Dvořák".to_owned(),
            vec![3, 3, 15],
        )
        .unwrap();
        let built = Record::new(
            Location::line("f", 2),
            schema(&["a", "b", "c"]),
            vec!["c-1".into(), "".into(), "Ann Dvořák".into()],
        );
        assert_eq!(cut, built);
        assert_eq!(cut.get("c"), Some("Ann Dvořák"));
    }

    #[test]
    fn ends_that_do_not_ascend_on_boundaries_are_refused() {
        let s = || schema(&["a", "b"]);
        let at = || Location::line("f", 2);
        assert!(Record::from_text(at(), s(), "abc".into(), vec![2, 1]).is_none());
        assert!(Record::from_text(at(), s(), "abc".into(), vec![4]).is_none());
        assert!(Record::from_text(at(), s(), "ř".into(), vec![1]).is_none());
        assert!(Record::from_text(at(), s(), "ř".into(), vec![0, 2]).is_some());
    }
}
