//! The cursor of a changes read: the server's time at the start of the last
//! committed read, as JSON text (`{"v":1,"ms":…}` or `{"v":1,"local":"…"}`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::NaiveDateTime;
use serde_json::{json, Value};

/// Daktela's time format: the instance's wall clock, no offset.
pub(crate) const LOCAL_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Where a changes read starts (before the overlap is taken off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// Milliseconds since the Unix epoch (HubSpot, `rest`).
    Ms(i64),
    /// A server's wall-clock time without an offset (Daktela).
    Local(NaiveDateTime),
}

impl Since {
    /// Reads a stored cursor; `None` for anything this connector did not make.
    pub(crate) fn parse(text: &str) -> Option<Since> {
        let value: Value = serde_json::from_str(text).ok()?;
        if value.get("v")?.as_u64()? != 1 {
            return None;
        }
        if let Some(ms) = value.get("ms").and_then(Value::as_i64) {
            return Some(Since::Ms(ms));
        }
        let local = value.get("local")?.as_str()?;
        NaiveDateTime::parse_from_str(local, LOCAL_FORMAT)
            .ok()
            .map(Since::Local)
    }

    /// The cursor's text.
    pub(crate) fn to_cursor(self) -> String {
        match self {
            Since::Ms(ms) => json!({"v": 1, "ms": ms}).to_string(),
            Since::Local(t) => {
                json!({"v": 1, "local": t.format(LOCAL_FORMAT).to_string()}).to_string()
            }
        }
    }

    /// This time less `overlap`.
    pub(crate) fn minus(self, overlap: Duration) -> Since {
        let ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX);
        match self {
            Since::Ms(t) => Since::Ms(t.saturating_sub(ms)),
            Since::Local(t) => Since::Local(
                chrono::Duration::try_milliseconds(ms)
                    .and_then(|d| t.checked_sub_signed(d))
                    .unwrap_or(NaiveDateTime::MIN),
            ),
        }
    }

    /// Milliseconds since the epoch (a local time read as UTC).
    pub(crate) fn ms(self) -> i64 {
        match self {
            Since::Ms(ms) => ms,
            Since::Local(t) => t.and_utc().timestamp_millis(),
        }
    }
}

/// `t` as milliseconds since the Unix epoch.
pub(crate) fn system_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// An ISO 8601 / RFC 3339 time (`2024-05-01T10:00:00.123Z`) as epoch ms.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_read_back_and_take_the_overlap_off() {
        let ms = Since::Ms(1_714_557_600_000);
        assert_eq!(Since::parse(&ms.to_cursor()), Some(ms));
        assert_eq!(
            ms.minus(Duration::from_secs(300)),
            Since::Ms(1_714_557_300_000)
        );
        let local = Since::parse(r#"{"v":1,"local":"2024-05-01 10:00:00"}"#).unwrap();
        let Since::Local(t) = local.minus(Duration::from_secs(3900)) else {
            panic!()
        };
        assert_eq!(t.format(LOCAL_FORMAT).to_string(), "2024-05-01 08:55:00");
        assert_eq!(Since::parse(&local.to_cursor()), Some(local));
        for junk in [
            "",
            "12",
            r#"{"v":2,"ms":1}"#,
            r#"{"v":1}"#,
            r#"{"v":1,"local":"x"}"#,
        ] {
            assert_eq!(Since::parse(junk), None, "{junk}");
        }
    }
}
