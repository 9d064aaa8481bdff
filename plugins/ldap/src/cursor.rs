//! The cursor an LDAP read ends with: which change feed made it and where it
//! stands, as JSON text (opaque to the host, SPEC §2).
//!
//! - `{"sync": "<base64 cookie>"}`: an RFC 4533 cookie.
//! - `{"modify": "20261204205244Z"}`: the highest `modifyTimestamp` the read
//!   saw, by the server's clock.
//!
//! Either may carry `"groups": {"digest": "…", "count": N}`: a digest of every
//! group's members and how many groups there were, so a changes read can tell
//! that a membership changed (which changes no user entry: OpenLDAP's memberof
//! overlay updates `memberOf` without a new CSN or timestamp) and read in full.

use std::fmt;

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Where a changes read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// An RFC 4533 sync cookie.
    Sync(Vec<u8>),
    /// The highest `modifyTimestamp` seen.
    Modify(Timestamp),
}

/// The state of the groups when a read ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupsMark {
    /// A digest of every group's DN and members, whatever order they came in.
    pub digest: u64,
    /// How many groups there were.
    pub count: u64,
}

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// Where users' changes start.
    pub position: Position,
    /// The groups, when the source reads groups.
    pub groups: Option<GroupsMark>,
}

impl State {
    /// The cursor's text.
    pub fn encode(&self) -> String {
        let mut map = Map::new();
        match &self.position {
            Position::Sync(cookie) => {
                let text = base64::engine::general_purpose::STANDARD.encode(cookie);
                map.insert("sync".into(), Value::String(text));
            }
            Position::Modify(at) => {
                map.insert("modify".into(), Value::String(at.to_string()));
            }
        }
        if let Some(groups) = &self.groups {
            map.insert(
                "groups".into(),
                json!({"digest": format!("{:016x}", groups.digest), "count": groups.count}),
            );
        }
        Value::Object(map).to_string()
    }

    /// A cursor made by [`State::encode`]; `Err` says why not.
    pub fn decode(text: &str) -> Result<State, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("not a JSON object".to_owned());
        };
        let position = match (map.get("sync"), map.get("modify")) {
            (Some(Value::String(cookie)), None) => Position::Sync(
                base64::engine::general_purpose::STANDARD
                    .decode(cookie)
                    .map_err(|e| format!("the sync cookie is not base64: {e}"))?,
            ),
            (None, Some(Value::String(at))) => Position::Modify(
                Timestamp::parse(at).ok_or_else(|| format!("{at:?} is not a timestamp"))?,
            ),
            _ => return Err("neither a sync cookie nor a modifyTimestamp".to_owned()),
        };
        let groups = match map.get("groups") {
            None | Some(Value::Null) => None,
            Some(Value::Object(g)) => {
                let digest = g
                    .get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .ok_or_else(|| "groups.digest is not a hex number".to_owned())?;
                let count = g
                    .get("count")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| "groups.count is not a number".to_owned())?;
                Some(GroupsMark { digest, count })
            }
            Some(_) => return Err("groups is not an object".to_owned()),
        };
        Ok(State { position, groups })
    }
}

/// A moment by the server's clock, to the second: an LDAP GeneralizedTime
/// (`20261204205244Z`, `20261204205244.0Z`, `202612042052+0100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Parses a GeneralizedTime; fractions of a second are dropped.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits < 10 || digits % 2 != 0 || digits > 14 {
            return None;
        }
        let num = |from: usize, len: usize| -> Option<u32> {
            text.get(from..from + len).and_then(|s| s.parse().ok())
        };
        let year = i32::try_from(num(0, 4)?).ok()?;
        let (month, day, hour) = (num(4, 2)?, num(6, 2)?, num(8, 2)?);
        let minute = if digits >= 12 { num(10, 2)? } else { 0 };
        let second = if digits >= 14 { num(12, 2)? } else { 0 };
        let mut rest = &text[digits..];
        if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        let offset_seconds: i64 = match rest {
            "Z" => 0,
            _ => {
                let sign = match rest.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                let zone = &rest[1..];
                if !(zone.len() == 2 || zone.len() == 4)
                    || !zone.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let hours: i64 = zone[..2].parse().ok()?;
                let minutes: i64 = zone
                    .get(2..)
                    .filter(|m| !m.is_empty())
                    .map_or(Ok(0), str::parse)
                    .ok()?;
                sign * (hours * 3600 + minutes * 60)
            }
        };
        let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        // 60 is a leap second: count it as the next minute's first.
        let time = chrono::NaiveTime::from_hms_opt(hour, minute, second.min(59))?;
        let utc = date.and_time(time).and_utc().timestamp() - offset_seconds;
        Some(Timestamp(utc + i64::from(second == 60)))
    }

    /// This moment minus `seconds`.
    pub fn minus(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_sub(seconds))
    }
}

impl fmt::Display for Timestamp {
    /// As a GeneralizedTime in UTC: `YYYYMMDDHHMMSSZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => write!(f, "{}", t.format("%Y%m%d%H%M%SZ")),
            None => f.write_str("19700101000000Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let states = [
            State {
                position: Position::Sync(
                    b"rid=000,csn=20261204205244.180678Z#000000#000#000000".to_vec(),
                ),
                groups: None,
            },
            State {
                position: Position::Modify(Timestamp::parse("20261204205244Z").unwrap()),
                groups: Some(GroupsMark {
                    digest: 0xdead_beef_0000_0001,
                    count: 3,
                }),
            },
            State {
                position: Position::Sync(vec![0, 255, 7]),
                groups: Some(GroupsMark {
                    digest: 0,
                    count: 0,
                }),
            },
        ];
        for state in states {
            let text = state.encode();
            assert_eq!(State::decode(&text).unwrap(), state, "{text}");
        }
        assert_eq!(
            State {
                position: Position::Modify(Timestamp::parse("20261204205244Z").unwrap()),
                groups: None
            }
            .encode(),
            r#"{"modify":"20261204205244Z"}"#
        );
    }

    #[test]
    fn foreign_cursors_are_refused_with_a_reason() {
        for text in [
            "x",
            "[]",
            "{}",
            r#"{"sync": "!!"}"#,
            r#"{"modify": "yesterday"}"#,
            r#"{"sync": "AA==", "modify": "20261204205244Z"}"#,
            r#"{"sync": "AA==", "groups": {"digest": "00", "count": "x"}}"#,
            r#"{"sync": "AA==", "groups": {"digest": "xyz", "count": 1}}"#,
        ] {
            assert!(State::decode(text).is_err(), "{text}");
        }
    }

    #[test]
    fn generalized_times_parse_to_the_second() {
        let t = Timestamp::parse("20261204205244Z").unwrap();
        assert_eq!(t.to_string(), "20261204205244Z");
        assert_eq!(Timestamp::parse("20261204205244.0Z"), Some(t), "AD's form");
        assert_eq!(Timestamp::parse("20261204205244.123456Z"), Some(t));
        assert_eq!(Timestamp::parse("20261204215244+0100"), Some(t));
        assert_eq!(Timestamp::parse("20261204195244-01"), Some(t));
        assert_eq!(
            Timestamp::parse("2026120420Z").unwrap().to_string(),
            "20261204200000Z"
        );
        assert_eq!(t.minus(60).to_string(), "20261204205144Z");
        for bad in [
            "",
            "2026",
            "20261304205244Z",
            "20261204205244",
            "20261204205244Q",
            "20261204205244.Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        assert!(Timestamp::parse("20261204205245Z").unwrap() > t);
    }
}
