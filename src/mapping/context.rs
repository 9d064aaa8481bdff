//! A record as the context of templates and `when:` expressions.
//!
//! Every attribute is a variable of its own name (usable directly when the name is
//! an identifier: `{{ mail }}`) and an entry of the `record` map
//! (`{{ record["First Name"] }}`). An attribute named `record` is reachable only
//! as `record["record"]`. Missing attributes are undefined, which renders empty.
//!
//! A single value is a string. A multi-valued attribute (LDAP `memberOf`) is a
//! list (SPEC §2 "Multi-valued attributes"): printed as text, `{{ mail }}`
//! shows its first value; `mail | list`, `mail[1]`, `for m in mail`,
//! `mail | join(", ")` and `'admins' in memberOf` see every value; and
//! `grants: "{{ memberOf }}"`, evaluated as an expression, gives one grant per
//! value.
//!
//! Dotted names are also paths: when no attribute is named `customFields`
//! but some are named `customFields.…` (a CRM's nested JSON, flattened by
//! its connector), `customFields` is a map of them, so
//! `{{ customFields.email[0] }}` reads the attribute `customFields.email`.
//! An attribute of the exact name always wins over such a map.

use std::fmt;
use std::sync::Arc;

use liaison_plugin_api::{Record, ValueRef as AttrValue};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

/// Name of the map holding every attribute.
const RECORD: &str = "record";

/// The context value for one record.
pub(crate) fn of(record: &Record) -> Value {
    Value::from_object(Root(Arc::new(record.clone())))
}

/// The template root: attributes as variables, plus `record`.
#[derive(Debug)]
struct Root(Arc<Record>);

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        if key == RECORD {
            return Some(Value::from_object(Attributes(Arc::clone(&self.0))));
        }
        // Rewritten comparisons call this function: no attribute may hide it.
        if key == super::compare::FUNCTION {
            return None;
        }
        attribute(&self.0, key).or_else(|| nested(&self.0, key))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = self
            .0
            .schema
            .names()
            .iter()
            .map(|n| Value::from(n.as_str()));
        Enumerator::Values(names.chain([Value::from(RECORD)]).collect())
    }
}

/// The attributes under `path.` as a map, when there are any.
fn nested(record: &Arc<Record>, path: &str) -> Option<Value> {
    let prefix = format!("{path}.");
    record
        .schema
        .names()
        .iter()
        .any(|n| n.starts_with(&prefix))
        .then(|| {
            Value::from_object(Nested {
                record: Arc::clone(record),
                prefix,
            })
        })
}

/// The attributes whose names start with `prefix` (`customFields.`), by the
/// rest of their names.
#[derive(Debug)]
struct Nested {
    record: Arc<Record>,
    prefix: String,
}

impl Object for Nested {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let name = format!("{}{key}", self.prefix);
        attribute(&self.record, &name).or_else(|| nested(&self.record, &name))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<&str> = Vec::new();
        for name in self.record.schema.names() {
            let Some(rest) = name.strip_prefix(&self.prefix) else {
                continue;
            };
            let first = rest.split('.').next().unwrap_or(rest);
            if !first.is_empty() && !keys.contains(&first) {
                keys.push(first);
            }
        }
        Enumerator::Values(keys.into_iter().map(Value::from).collect())
    }
}

/// The `record` map: every attribute by its exact name.
#[derive(Debug)]
struct Attributes(Arc<Record>);

impl Object for Attributes {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        attribute(&self.0, key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        attribute(&self.0, key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = self
            .0
            .schema
            .names()
            .iter()
            .map(|n| Value::from(n.as_str()));
        Enumerator::Values(names.collect())
    }
}

fn attribute(record: &Record, name: &str) -> Option<Value> {
    Some(match record.value(name)? {
        AttrValue::One(text) => Value::from(text),
        AttrValue::Many(texts) => {
            Value::from_object(Many(texts.iter().map(str::to_owned).collect()))
        }
    })
}

/// A multi-valued attribute: a list that prints as its first value.
#[derive(Debug)]
struct Many(Vec<String>);

impl Object for Many {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_usize()?).map(|s| Value::from(s.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.first().map_or("", String::as_str))
    }
}
