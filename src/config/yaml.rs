//! The YAML file as a tree in which every scalar, list, mapping and key keeps its
//! line and column.
//!
//! serde-saphyr parses; this module only shapes the result. Validation walks the
//! tree (see `load`), so it can report every problem, each at its own position,
//! instead of serde's first error only.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Localizer, Location, MessageFormatter, Spanned};

use super::Span;

/// A YAML node with its position (where it is used: for an alias, the alias).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts; for a block mapping, its first key.
    pub span: Span,
}

/// A YAML value. Scalars are typed by the YAML 1.2 core schema with strict
/// booleans: `yes`, `on`, `off` stay strings.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar, and every quoted one.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, in file order. Duplicate keys were rejected by the parser.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The string, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the node is null (`~`, `null` or an empty value).
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A short description of the value for "found …" in messages: strings are
    /// quoted and cut, collections are named, not printed.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => format!("{x:?}"),
            Value::Str(s) => quote(s),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

/// `s` in double quotes with control characters escaped, cut after 60 characters.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

impl From<Location> for Span {
    fn from(location: Location) -> Self {
        Span {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
        }
    }
}

/// Parses one YAML document. On a syntax error (including a duplicate key or an
/// alias past the budget) returns serde-saphyr's message and position.
pub(super) fn parse(text: &str) -> Result<Node, (Span, String)> {
    let options = serde_saphyr::options! {
        // `yes`/`no`/`on`/`off` are strings, not booleans (YAML 1.2 core schema).
        strict_booleans: true,
        // `08` stays the string "08" instead of becoming the number 8 or an octal.
        leading_zero_numbers_as_strings: true,
        // A config file is small: bound the work an alias bomb can cause.
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 100,
        },
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 32,
        },
    };
    match serde_saphyr::from_str_with_options::<Node>(text, options) {
        Ok(node) => Ok(node),
        Err(error) => {
            let span = error.location().map(Span::from).unwrap_or(Span::START);
            let span = if span.line == 0 { Span::START } else { span };
            let message = error.render_with_options(serde_saphyr::render_options! {
                formatter: &PlainFormatter,
                snippets: serde_saphyr::SnippetMode::Off,
            });
            Err((span, format!("invalid YAML: {message}")))
        }
    }
}

/// serde-saphyr's user-facing wording without its " at line X, column Y"
/// suffix: our own prefix already carries the position.
struct PlainFormatter;

struct NoLocationSuffix;

impl Localizer for NoLocationSuffix {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }

    fn alias_used_at(&self, _used: Location) -> String {
        String::new()
    }
}

impl MessageFormatter for PlainFormatter {
    fn localizer(&self) -> &dyn Localizer {
        &NoLocationSuffix
    }

    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        serde_saphyr::UserMessageFormatter.format_message(err)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            span: spanned.referenced.into(),
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn every_node_and_key_has_its_position() {
        let root = parse("store: x\nsafety:\n  max: fifty\nlist: [a, 8]\n").unwrap();
        let top = entries(&root);
        assert_eq!(top[0].0.span, Span::new(1, 1));
        assert_eq!(top[0].1.span, Span::new(1, 8));
        let safety = entries(&top[1].1);
        assert_eq!(safety[0].0.span, Span::new(3, 3));
        assert_eq!(safety[0].1.span, Span::new(3, 8));
        let Value::Seq(items) = &top[2].1.value else {
            panic!("not a list")
        };
        assert_eq!(items[1].value, Value::Int(8));
        assert_eq!(items[1].span, Span::new(4, 11));
    }

    #[test]
    fn booleans_are_strict_and_leading_zeros_stay_strings() {
        let root = parse("a: yes\nb: off\nc: true\nd: 08\ne: \"8\"\nf: 0.5\ng:\n").unwrap();
        let values: Vec<&Value> = entries(&root).iter().map(|(_, v)| &v.value).collect();
        assert_eq!(
            values,
            [
                &Value::Str("yes".into()),
                &Value::Str("off".into()),
                &Value::Bool(true),
                &Value::Str("08".into()),
                &Value::Str("8".into()),
                &Value::Float(0.5),
                &Value::Null,
            ]
        );
    }

    #[test]
    fn aliases_are_located_where_used() {
        let root = parse("a: &x\n  k: 1\nb: *x\n").unwrap();
        let b = &entries(&root)[1].1;
        assert_eq!(entries(b)[0].1.value, Value::Int(1));
        assert_eq!(b.span, Span::new(3, 4));
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_are_located() {
        let (span, message) = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(span, Span::new(2, 1));
        assert!(message.contains("duplicate"), "{message}");
        assert!(!message.contains("line"), "{message}");

        let (span, message) = parse("a: [1\n").unwrap_err();
        assert_eq!(span, Span::new(1, 4));
        assert!(message.starts_with("invalid YAML: "), "{message}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = (b'a' + i) as char;
            let next = (b'a' + i + 1) as char;
            text.push_str(&format!(
                "{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&text).is_err());
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# nothing\n").unwrap().is_null());
    }
}
