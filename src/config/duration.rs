//! Durations as written in the config: a whole number and a unit (`45s`, `15m`,
//! `12h`, `30d`), or `never`.

use std::time::Duration;

/// Parses `NUMBER UNIT` (`s`, `m`, `h`, `d`; no space, no fraction) or `never`
/// (`Ok(None)`). The error says what is wrong with the text.
pub(super) fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t == "never" {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err("expected a number followed by s, m, h or d (e.g. 30d), or never".to_owned());
    }
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "" => return Err("missing unit: add s, m, h or d (e.g. 30d)".to_owned()),
        other => {
            return Err(format!(
                "unknown unit {other:?}: use s, m, h or d (e.g. 30d)"
            ))
        }
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .ok_or_else(|| "the number is too large".to_owned())?;
    Ok(Some(Duration::from_secs(seconds)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_and_never() {
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
}
