//! A CRM's JSON object as a record's attributes: nested objects become
//! dotted names, arrays multi-valued attributes.
//!
//! - `{"title": "Ann"}` → `title` = `Ann`; numbers and booleans as their
//!   JSON text (`42`, `true`); `null` is left out (a missing attribute).
//! - `{"account": {"name": "acme"}}` → `account.name` = `acme`.
//! - `{"customFields": {"email": ["a@x.cz", "b@x.cz"]}}` →
//!   `customFields.email` = `["a@x.cz", "b@x.cz"]` (multi-valued, even with
//!   one value or none).
//! - An array of objects gives one multi-valued attribute per field, its
//!   values in the array's order, an empty text where an element lacks the
//!   field — so `companies.id[1]` and `companies.name[1]` are one company's.
//!
//! ```
//! use liaison_plugin_crm::flatten::flatten;
//! use liaison_plugin_api::Value;
//!
//! let json = serde_json::json!({
//!     "name": "c-1",
//!     "account": {"name": "acme", "title": "Acme"},
//!     "customFields": {"email": ["ann@acme.cz"], "portal": ["1"]},
//!     "nps": null,
//! });
//! let attrs = flatten(json.as_object().unwrap());
//! assert_eq!(attrs[0], ("name".to_owned(), Value::One("c-1".into())));
//! assert_eq!(attrs[1], ("account.name".to_owned(), Value::One("acme".into())));
//! assert_eq!(attrs[3], ("customFields.email".to_owned(), Value::Many(vec!["ann@acme.cz".into()])));
//! assert_eq!(attrs.len(), 5);
//! ```

use liaison_plugin_api::Value;
use serde_json::{Map, Value as Json};

/// The attributes of `object`, in its order.
pub fn flatten(object: &Map<String, Json>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    flatten_into(object, "", &mut out);
    out
}

/// Appends the attributes of `object` under `prefix` (`""` or `name.`).
pub fn flatten_into(object: &Map<String, Json>, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (key, value) in object {
        let name = format!("{prefix}{key}");
        match value {
            Json::Null => {}
            Json::Object(inner) => flatten_into(inner, &format!("{name}."), out),
            Json::Array(items) => array(&name, items, out),
            scalar => {
                if let Some(text) = scalar_text(scalar) {
                    out.push((name, Value::One(text)));
                }
            }
        }
    }
}

/// A scalar's text; `None` for null, objects and arrays.
pub fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An array: its scalars (nested arrays' too) under `name`, its objects'
/// fields under `name.FIELD`, aligned by element.
fn array(name: &str, items: &[Json], out: &mut Vec<(String, Value)>) {
    let mut scalars = Vec::new();
    let mut objects: Vec<Vec<(String, Value)>> = Vec::new();
    collect(items, &mut scalars, &mut objects);
    if !scalars.is_empty() || objects.is_empty() {
        out.push((name.to_owned(), Value::Many(scalars)));
    }
    if objects.is_empty() {
        return;
    }
    // The union of the elements' fields, in order of first appearance.
    let mut names: Vec<&str> = Vec::new();
    for fields in &objects {
        for (field, _) in fields {
            if !names.contains(&field.as_str()) {
                names.push(field);
            }
        }
    }
    for field in names {
        let mut values = Vec::with_capacity(objects.len());
        for fields in &objects {
            match fields.iter().find(|(f, _)| f == field) {
                Some((_, Value::One(v))) => values.push(v.clone()),
                Some((_, Value::Many(vs))) => values.extend(vs.iter().cloned()),
                None => values.push(String::new()),
            }
        }
        out.push((format!("{name}.{field}"), Value::Many(values)));
    }
}

fn collect(items: &[Json], scalars: &mut Vec<String>, objects: &mut Vec<Vec<(String, Value)>>) {
    for item in items {
        match item {
            Json::Null => {}
            Json::Array(inner) => collect(inner, scalars, objects),
            Json::Object(map) => objects.push(flatten(map)),
            scalar => scalars.extend(scalar_text(scalar)),
        }
    }
}

/// The value at a dotted `path` (`account.name`, `id`) of `object`, as text
/// values: one for a scalar, each of an array's scalars; empty when absent.
pub fn lookup(object: &Map<String, Json>, path: &str) -> Vec<String> {
    let mut current: Vec<&Json> = Vec::new();
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    current.extend(object.get(first));
    for part in parts {
        let mut next = Vec::new();
        for value in current {
            match value {
                Json::Object(map) => next.extend(map.get(part)),
                Json::Array(items) => next.extend(
                    items
                        .iter()
                        .filter_map(|i| i.as_object())
                        .filter_map(|m| m.get(part)),
                ),
                _ => {}
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for value in current {
        match value {
            Json::Array(items) => out.extend(items.iter().filter_map(scalar_text)),
            other => out.extend(scalar_text(other)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn flat(v: Json) -> Vec<(String, Value)> {
        flatten(v.as_object().unwrap())
    }

    #[test]
    fn arrays_of_objects_stay_aligned_by_element() {
        let got = flat(json!({"companies": [
            {"id": "1", "name": "Acme", "domain": "acme.cz"},
            {"id": "2", "name": "Beta"},
        ]}));
        assert_eq!(
            got,
            vec![
                (
                    "companies.id".into(),
                    Value::Many(vec!["1".into(), "2".into()])
                ),
                (
                    "companies.name".into(),
                    Value::Many(vec!["Acme".into(), "Beta".into()])
                ),
                (
                    "companies.domain".into(),
                    Value::Many(vec!["acme.cz".into(), "".into()])
                ),
            ]
        );
    }

    #[test]
    fn scalars_print_as_json_text_and_nulls_are_missing() {
        let got = flat(json!({"n": 4.5, "b": false, "z": null, "e": [], "o": {}}));
        assert_eq!(
            got,
            vec![
                ("n".into(), Value::One("4.5".into())),
                ("b".into(), Value::One("false".into())),
                ("e".into(), Value::Many(vec![])),
            ]
        );
    }

    #[test]
    fn lookup_follows_objects_and_arrays() {
        let v = json!({"id": 7, "a": {"b": ["x", "y"]}, "l": [{"id": "1"}, {"id": "2"}]});
        let m = v.as_object().unwrap();
        assert_eq!(lookup(m, "id"), ["7"]);
        assert_eq!(lookup(m, "a.b"), ["x", "y"]);
        assert_eq!(lookup(m, "l.id"), ["1", "2"]);
        assert!(lookup(m, "nope.x").is_empty());
    }
}
