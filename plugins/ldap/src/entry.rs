//! From a search result entry to the host's items: the entry decoded without
//! panicking, its attributes as lists of values (binary ones in base64), its
//! key from the anchor, its DN's components and its groups added.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use ldap3::asn1::{StructureTag, PL};
use liaison_plugin_api::{BadRow, Item, Location, Record, Schema, Value};

use crate::cursor::Timestamp;
use crate::dn::{self, Dn};
use crate::{LdapConfig, WITHHELD_ATTRIBUTES};

/// An entry as the server sent it: its DN and each attribute's raw values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// The entry's DN.
    pub dn: String,
    /// Attribute types as the server spelled them, with their values.
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// The values of `name` (compared without case).
    pub fn values(&self, name: &str) -> Option<&[Vec<u8>]> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values(name)?
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Decodes a SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName,
/// attributes }`, RFC 4511 §4.5.2); `Err` names what is malformed.
pub(crate) fn parse_entry(tag: StructureTag) -> Result<RawEntry, String> {
    let malformed = |what: &str| format!("a malformed search result entry ({what})");
    let mut parts = tag
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| malformed("not an entry"))?
        .into_iter();
    let dn = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .ok_or_else(|| malformed("no DN"))?;
    let dn = String::from_utf8(dn).map_err(|_| malformed("a DN that is not UTF-8"))?;
    let list = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or_else(|| malformed("no attribute list"))?;
    let mut attrs = Vec::with_capacity(list.len());
    for attribute in list {
        let mut pieces = attribute
            .expect_constructed()
            .ok_or_else(|| malformed("an attribute that is not a sequence"))?
            .into_iter();
        let name = pieces
            .next()
            .and_then(StructureTag::expect_primitive)
            .and_then(|n| String::from_utf8(n).ok())
            .ok_or_else(|| malformed("an attribute without a type"))?;
        let values = pieces
            .next()
            .and_then(StructureTag::expect_constructed)
            .ok_or_else(|| malformed("an attribute without a value set"))?;
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            match value.payload {
                PL::P(bytes) => out.push(bytes),
                PL::C(_) => return Err(malformed("a constructed attribute value")),
            }
        }
        attrs.push((name, out));
    }
    Ok(RawEntry { dn, attrs })
}

/// Where entries' groups come from.
#[derive(Debug, Default)]
pub(crate) enum Groups {
    /// `groups:` is not configured: no `groups` attribute.
    #[default]
    None,
    /// Group names by normalized member DN (from the groups' member lists).
    Members(HashMap<String, Vec<String>>),
    /// The entries' own `memberOf`, counting groups under this base.
    MemberOf(Dn),
}

/// The name of the attribute holding the entry's DN.
pub(crate) const DN: &str = "dn";

/// The name of the attribute holding the entry's group names.
pub(crate) const GROUPS: &str = "groups";

/// Schemas kept for reuse: entries with the same attributes share one.
const MAX_SCHEMAS: usize = 256;

/// Turns raw entries into items, the same way for every entry of a read.
pub(crate) struct Shaper {
    anchor: String,
    anchor_binary: bool,
    /// entryUUIDs are compared as RFC 4533 gives them: lower case.
    anchor_lower: bool,
    /// The configured spelling of each asked-for attribute, by lower case.
    spelling: HashMap<String, String>,
    /// When `attributes` is given: the lower-case names passed on.
    passed: Option<HashSet<String>>,
    /// Asked for by the connector itself, not passed on (lower case).
    internal: HashSet<String>,
    groups: Groups,
    schemas: HashMap<Vec<String>, Arc<Schema>>,
}

impl Shaper {
    /// A shaper for `config`, with the groups read for this read.
    pub fn new(config: &LdapConfig, groups: Groups) -> Self {
        let mut spelling = HashMap::new();
        let mut passed = None;
        if let Some(list) = &config.attributes {
            let mut names = HashSet::new();
            for name in list {
                spelling.insert(name.to_ascii_lowercase(), name.clone());
                names.insert(name.to_ascii_lowercase());
            }
            passed = Some(names);
        }
        spelling
            .entry(config.anchor.to_ascii_lowercase())
            .or_insert_with(|| config.anchor.clone());
        if let Some(names) = &mut passed {
            names.insert(config.anchor.to_ascii_lowercase());
        }
        let mut internal = HashSet::new();
        for name in internal_attributes(config) {
            let lower = name.to_ascii_lowercase();
            let asked = passed.as_ref().is_some_and(|p| p.contains(&lower));
            if !asked {
                internal.insert(lower);
            }
        }
        Shaper {
            anchor: config.anchor.clone(),
            anchor_binary: config.anchor_is_binary(),
            anchor_lower: config.anchor_is_entry_uuid(),
            spelling,
            passed,
            internal,
            groups,
            schemas: HashMap::new(),
        }
    }

    /// The entry's key: its anchor's first value.
    pub fn key(&self, entry: &RawEntry) -> Option<String> {
        let value = entry.values(&self.anchor)?.first()?;
        Some(self.key_text(value))
    }

    fn key_text(&self, value: &[u8]) -> String {
        match std::str::from_utf8(value) {
            Ok(text) if !self.anchor_binary => {
                if self.anchor_lower {
                    text.trim().to_ascii_lowercase()
                } else {
                    text.trim().to_owned()
                }
            }
            _ => base64::engine::general_purpose::STANDARD.encode(value),
        }
    }

    /// The entry as a record keyed by its anchor, or a bad row (with its
    /// attributes as read) when it has none.
    pub fn item(&mut self, entry: &RawEntry) -> Item {
        let record = self.record(entry);
        match self.key(entry) {
            Some(key) if !key.is_empty() => Item::Record(record.with_key(key)),
            _ => Item::Bad(BadRow {
                location: Location::Entry {
                    dn: entry.dn.clone(),
                },
                message: format!(
                    "the entry has no {} (the anchor attribute): it is skipped",
                    self.anchor
                ),
                partial: Some(record),
                key: None,
            }),
        }
    }

    fn record(&mut self, entry: &RawEntry) -> Record {
        let mut names = Vec::with_capacity(entry.attrs.len() + 4);
        let mut values = Vec::with_capacity(entry.attrs.len() + 4);
        names.push(DN.to_owned());
        values.push(Value::One(entry.dn.clone()));
        for (name, raw) in &entry.attrs {
            let lower = name.to_ascii_lowercase();
            let withheld = WITHHELD_ATTRIBUTES
                .iter()
                .any(|w| w.eq_ignore_ascii_case(name));
            let not_asked = self.passed.as_ref().is_some_and(|p| !p.contains(&lower));
            if withheld || not_asked || self.internal.contains(&lower) || lower == DN {
                continue;
            }
            let is_anchor = name.eq_ignore_ascii_case(&self.anchor);
            let texts = raw
                .iter()
                .map(|v| match is_anchor {
                    true => self.key_text(v),
                    false => text_or_base64(v),
                })
                .collect();
            names.push(
                self.spelling
                    .get(&lower)
                    .cloned()
                    .unwrap_or_else(|| name.clone()),
            );
            values.push(Value::Many(texts));
        }
        let parsed = Dn::parse(&entry.dn).unwrap_or_default();
        let mut parts: Vec<(String, Vec<String>)> = Vec::new();
        for ava in parsed.rdns.iter().flatten() {
            let name = format!("dn_{}", ava.attr.to_ascii_lowercase());
            match parts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, vs)) => vs.push(ava.value.clone()),
                None => parts.push((name, vec![ava.value.clone()])),
            }
        }
        for (name, vs) in parts {
            if !names.contains(&name) {
                names.push(name);
                values.push(Value::Many(vs));
            }
        }
        if let Some(groups) = self.groups_of(entry) {
            names.push(GROUPS.to_owned());
            values.push(Value::Many(groups));
        }
        let schema = self.schema(names);
        Record::new(
            Location::Entry {
                dn: entry.dn.clone(),
            },
            schema,
            values,
        )
    }

    /// The names of the entry's groups, when groups are configured.
    fn groups_of(&self, entry: &RawEntry) -> Option<Vec<String>> {
        match &self.groups {
            Groups::None => None,
            Groups::Members(map) => Some(
                map.get(&dn::normalize(&entry.dn))
                    .cloned()
                    .unwrap_or_default(),
            ),
            Groups::MemberOf(base) => {
                let mut names: Vec<String> = Vec::new();
                for value in entry.values("memberOf").unwrap_or(&[]) {
                    let Ok(group) = Dn::parse(&String::from_utf8_lossy(value)) else {
                        continue;
                    };
                    if !group.is_within(base) || group.rdns.len() == base.rdns.len() {
                        continue;
                    }
                    if let Some(name) = group.first_value() {
                        if !names.iter().any(|n| n == name) {
                            names.push(name.to_owned());
                        }
                    }
                }
                Some(names)
            }
        }
    }

    fn schema(&mut self, names: Vec<String>) -> Arc<Schema> {
        if let Some(schema) = self.schemas.get(&names) {
            return schema.clone();
        }
        let schema = Arc::new(Schema::new(names.clone()));
        if self.schemas.len() < MAX_SCHEMAS {
            self.schemas.insert(names, schema.clone());
        }
        schema
    }
}

/// The attributes the connector asks for besides the configured ones.
pub(crate) fn internal_attributes(config: &LdapConfig) -> Vec<&'static str> {
    let mut names = vec!["modifyTimestamp"];
    if config.groups.as_ref().is_some_and(|g| g.member_of) {
        names.push("memberOf");
    }
    names
}

/// What a search asks for: the configured attributes (or `*`), the anchor,
/// and the connector's own.
pub(crate) fn requested(config: &LdapConfig) -> Vec<String> {
    let mut names: Vec<String> = match &config.attributes {
        Some(list) => list.clone(),
        None => vec!["*".to_owned()],
    };
    let mut add = |name: &str| {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    };
    add(&config.anchor);
    for name in internal_attributes(config) {
        add(name);
    }
    names
}

/// A value as text: UTF-8 as it is, anything else in base64.
fn text_or_base64(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(value),
    }
}

/// The `modifyTimestamp` of an entry, when it has a readable one.
pub(crate) fn modified(entry: &RawEntry) -> Option<Timestamp> {
    Timestamp::parse(&entry.text("modifyTimestamp")?)
}

/// RFC 4533's 16-byte entryUUID as text (`65ded23a-8470-1041-8b53-114111293a40`);
/// any other length in hex.
pub(crate) fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if bytes.len() != 16 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Filter, GroupsConfig, LdapUrl};
    use liaison_plugin_api::ValueRef;

    fn config() -> LdapConfig {
        LdapConfig::new(
            "d",
            LdapUrl::parse("ldap://x").unwrap(),
            "dc=example,dc=com",
            Filter::parse("(objectClass=*)").unwrap(),
        )
    }

    fn entry(dn: &str, attrs: &[(&str, &[&[u8]])]) -> RawEntry {
        RawEntry {
            dn: dn.to_owned(),
            attrs: attrs
                .iter()
                .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_vec()).collect()))
                .collect(),
        }
    }

    fn many(r: &Record, name: &str) -> Vec<String> {
        match r.value(name) {
            Some(ValueRef::Many(m)) => m.iter().map(str::to_owned).collect(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn an_entry_becomes_a_record_keyed_by_its_anchor() {
        let mut c = config();
        c.attributes = Some(vec!["cn".into(), "Mail".into(), "o".into()]);
        let mut shaper = Shaper::new(&c, Groups::None);
        let e = entry(
            "uid=ann,ou=ACME,ou=partners,dc=example,dc=com",
            &[
                ("cn", &[b"Ann Lee"]),
                ("mail", &[b"ann@acme.example", b"a.lee@acme.example"]),
                ("entryUUID", &[b"65DED23A-8470-1041-8B53-114111293A40"]),
                ("modifyTimestamp", &[b"20261204205244Z"]),
                ("userPassword", &[b"{SSHA}x"]),
                ("sn", &[b"Lee"]),
            ],
        );
        let Item::Record(r) = shaper.item(&e) else {
            panic!("a record")
        };
        assert_eq!(r.key(), Some("65ded23a-8470-1041-8b53-114111293a40"));
        assert_eq!(
            r.get("dn"),
            Some("uid=ann,ou=ACME,ou=partners,dc=example,dc=com")
        );
        assert_eq!(
            many(&r, "Mail"),
            ["ann@acme.example", "a.lee@acme.example"],
            "as configured"
        );
        assert_eq!(r.get("cn"), Some("Ann Lee"));
        assert_eq!(many(&r, "dn_ou"), ["ACME", "partners"]);
        assert_eq!(many(&r, "dn_uid"), ["ann"]);
        assert_eq!(
            r.get("entryUUID"),
            Some("65ded23a-8470-1041-8b53-114111293a40")
        );
        for hidden in ["userPassword", "modifyTimestamp", "sn", "groups"] {
            assert_eq!(r.value(hidden), None, "{hidden}");
        }
        assert_eq!(
            r.location.to_string(),
            "uid=ann,ou=ACME,ou=partners,dc=example,dc=com"
        );
        assert_eq!(modified(&e).unwrap().to_string(), "20261204205244Z");
    }

    #[test]
    fn binary_anchors_and_values_are_base64_and_no_anchor_is_a_bad_row() {
        let mut c = config();
        c.anchor = "objectGUID".into();
        let mut shaper = Shaper::new(&c, Groups::None);
        // Valid UTF-8, yet a binary anchor: still base64.
        let e = entry(
            "cn=a,dc=x",
            &[("objectGUID", &[b"abc"]), ("jpegPhoto", &[&[0xff, 0xd8]])],
        );
        let Item::Record(r) = shaper.item(&e) else {
            panic!("a record")
        };
        assert_eq!(r.key(), Some("YWJj"));
        assert_eq!(many(&r, "jpegPhoto"), ["/9g="]);
        let Item::Bad(bad) = shaper.item(&entry("cn=b,dc=x", &[("cn", &[b"b"])])) else {
            panic!("a bad row")
        };
        assert_eq!(bad.location.to_string(), "cn=b,dc=x");
        assert!(bad.message.contains("no objectGUID"), "{}", bad.message);
        assert_eq!(bad.partial.unwrap().get("cn"), Some("b"));
    }

    #[test]
    fn groups_come_from_member_lists_or_member_of_under_the_base() {
        let mut map = HashMap::new();
        map.insert(
            dn::normalize("uid=ann,dc=x"),
            vec!["gold".to_owned(), "support".to_owned()],
        );
        let mut shaper = Shaper::new(&config(), Groups::Members(map));
        let Item::Record(r) = shaper.item(&entry("UID=Ann, DC=x", &[("entryUUID", &[b"u1"])]))
        else {
            panic!()
        };
        assert_eq!(many(&r, "groups"), ["gold", "support"]);
        let Item::Record(r) = shaper.item(&entry("uid=bob,dc=x", &[("entryUUID", &[b"u2"])]))
        else {
            panic!()
        };
        assert!(many(&r, "groups").is_empty());

        let mut c = config();
        let mut g = GroupsConfig::new("ou=groups,dc=x");
        g.member_of = true;
        c.groups = Some(g);
        let base = Dn::parse("ou=groups,dc=x").unwrap();
        let mut shaper = Shaper::new(&c, Groups::MemberOf(base));
        let e = entry(
            "uid=ann,dc=x",
            &[
                ("entryUUID", &[b"u1"]),
                (
                    "memberOf",
                    &[
                        b"cn=gold,ou=groups,dc=x",
                        b"cn=staff,ou=other,dc=x",
                        b"cn=gold,ou=Groups,dc=x",
                    ],
                ),
            ],
        );
        let Item::Record(r) = shaper.item(&e) else {
            panic!()
        };
        assert_eq!(many(&r, "groups"), ["gold"]);
        assert_eq!(r.value("memberOf"), None, "asked for by the connector only");
        assert_eq!(
            requested(&c),
            ["*", "entryUUID", "modifyTimestamp", "memberOf"]
        );
    }

    #[test]
    fn uuids_print_as_entry_uuid_does() {
        let bytes = [
            0x65, 0xde, 0xd2, 0x3a, 0x84, 0x70, 0x10, 0x41, 0x8b, 0x53, 0x11, 0x41, 0x11, 0x29,
            0x3a, 0x40,
        ];
        assert_eq!(uuid_text(&bytes), "65ded23a-8470-1041-8b53-114111293a40");
        assert_eq!(uuid_text(&[1, 2]), "0102");
    }
}
