//! Durations as written in the config: a whole number and a unit (`500ms`,
//! `45s`, `15m`, `12h`, `30d`), or `never`.

use std::time::Duration;

/// Parses `NUMBER UNIT` (`ms`, `s`, `m`, `h`, `d`; no space, no fraction) or
/// `never` (`Ok(None)`). The error says what is wrong with the text.
pub(crate) fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t == "never" {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(
            "expected a number followed by ms, s, m, h or d (e.g. 30d), or never".to_owned(),
        );
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err("missing unit: add ms, s, m, h or d (e.g. 30d)".to_owned()),
        other => {
            return Err(format!(
                "unknown unit {other:?}: use ms, s, m, h or d (e.g. 30d)"
            ))
        }
    };
    let millis = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per_unit))
        .ok_or_else(|| "the number is too large".to_owned())?;
    Ok(Some(Duration::from_millis(millis)))
}

/// Writes `d` the way the config does (`500ms`, `30s`, `15m`, `2h`, `30d`):
/// the largest unit that divides it, for log lines about changed settings.
pub(super) fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (size, unit) in UNITS {
        if millis != 0 && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_and_never() {
        assert_eq!(
            parse_duration("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("45s").unwrap(),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse_duration("15m").unwrap(),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(
            parse_duration("30d").unwrap(),
            Some(Duration::from_secs(2_592_000))
        );
        assert_eq!(parse_duration("never").unwrap(), None);
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert!(parse_duration("30w").unwrap_err().contains("\"w\""));
        assert!(parse_duration("30us").unwrap_err().contains("\"us\""));
        assert!(parse_duration("1.5d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("30 d").is_err());
        assert!(parse_duration("Never").is_err());
        assert!(parse_duration("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("999999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn formatting_picks_the_largest_unit_that_divides() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(2_592_000)), "30d");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }
}
