//! Custom attributes of a contact or user: a small sorted map.
//!
//! Most records carry zero to a few attributes, so a sorted vector is used
//! instead of a `BTreeMap`, whose first node alone costs half a kilobyte —
//! per record, a million times over in a large sync.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Key → value, sorted by key, keys unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes(Vec::new())
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Sets `key` only if it has no value yet.
    pub fn insert_if_absent(&mut self, key: &str, value: &str) {
        if let Err(i) = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            self.0.insert(i, (key.to_owned(), value.to_owned()));
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// True when `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut a = Attributes::new();
        for (k, v) in iter {
            a.insert(k.into(), v.into());
        }
        a
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a String);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a String)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = str;
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Attributes, M::Error> {
                let mut a = Attributes::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    a.insert(k, v);
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut a: Attributes = [("b", "2"), ("a", "1")].into_iter().collect();
        assert_eq!(a.insert("a".into(), "x".into()), Some("1".into()));
        a.insert_if_absent("b", "ignored");
        a.insert_if_absent("c", "3");
        let pairs: Vec<(&String, &String)> = a.iter().collect();
        assert_eq!(pairs.len(), 3);
        assert_eq!(&a["a"], "x");
        assert_eq!(a.get("b"), Some("2"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"a":"x","b":"2","c":"3"}"#);
        assert_eq!(serde_json::from_str::<Attributes>(&json).unwrap(), a);
    }
}
