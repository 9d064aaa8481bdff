//! Cron schedules in the standard 5-field crontab form, evaluated by croner.
//!
//! See `docs/decisions/0002-cron.md` for why croner and not the `cron` crate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A parsed cron schedule: `minute hour day-of-month month day-of-week`, POSIX
/// weekdays (0 or 7 = Sunday, 1 = Monday), names (`mon`, `jan`), ranges, steps,
/// lists, croner's `L`/`W`/`#`, and `@hourly`, `@daily`, `@weekly`, `@monthly`,
/// `@yearly`/`@annually`. A seconds or year field is refused: a 6-field line
/// means different things to different tools, and Liaison schedules by minute.
///
/// `Display` gives the text as written.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

impl Schedule {
    /// Parses a 5-field crontab expression or an `@nickname`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError("the expression is empty".to_owned()));
        }
        if !trimmed.starts_with('@') {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 {
                return Err(ScheduleError(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
                )));
            }
            check_ranges(trimmed)?;
        } else if !NICKNAMES.contains(&trimmed.to_ascii_lowercase().as_str()) {
            return Err(ScheduleError(format!(
                "unknown nickname (known: {})",
                NICKNAMES.join(", ")
            )));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(trimmed)
            .map_err(|e| ScheduleError(e.to_string()))?;
        let schedule = Schedule {
            text: text.to_owned(),
            cron,
        };
        // `0 0 30 2 *` parses but never fires: say so now, not at run time.
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if probe.and_then(|t| schedule.next_after(t)).is_none() {
            return Err(ScheduleError("the schedule never fires".to_owned()));
        }
        Ok(schedule)
    }

    /// The expression as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `t`, in UTC; `None` if there is none.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after_in(t)
    }

    /// The first fire time strictly after `t`, reading the fields in `t`'s time
    /// zone (DST gaps and repeats handled by croner: a time skipped by
    /// spring-forward fires once at the next valid instant, a repeated hour once).
    pub fn next_after_in<Tz: TimeZone>(&self, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

/// Reports a number outside its field's range by name (croner only says
/// "Number out of bounds"). Steps, names and `L`/`W`/`#` are left to croner.
fn check_ranges(expression: &str) -> Result<(), ScheduleError> {
    const FIELDS: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    for (field, (name, low, high)) in expression.split_whitespace().zip(FIELDS) {
        for item in field.split(',') {
            let range = item.split('/').next().unwrap_or(item);
            for number in range.split('-').filter_map(|t| t.parse::<u32>().ok()) {
                if !(low..=high).contains(&number) {
                    return Err(ScheduleError(format!(
                        "{name} {number} is out of range {low}-{high}"
                    )));
                }
            }
        }
    }
    Ok(())
}

const NICKNAMES: [&str; 6] = [
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl PartialEq for Schedule {
    /// Same text, same schedule.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{Datelike, FixedOffset, Timelike, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn five_fields_parse_and_keep_their_text() {
        let s = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(s.to_string(), "*/15 * * * *");
        assert_eq!(format!("{s:?}"), "Schedule(\"*/15 * * * *\")");
        let next = s.next_after(utc(2026, 3, 2, 10, 7)).unwrap();
        assert_eq!(next, utc(2026, 3, 2, 10, 15));
    }

    #[test]
    fn next_is_strictly_after() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 3, 2, 2, 30)).unwrap(),
            utc(2026, 3, 3, 2, 30)
        );
    }

    #[test]
    fn weekday_1_is_monday_and_0_and_7_are_sunday() {
        // 2026-03-01 is a Sunday.
        let monday = Schedule::parse("0 9 * * 1").unwrap();
        let next = monday.next_after(utc(2026, 3, 1, 0, 0)).unwrap();
        assert_eq!(next.weekday(), Weekday::Mon);
        for text in ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun"] {
            let next = Schedule::parse(text)
                .unwrap()
                .next_after(utc(2026, 3, 2, 0, 0))
                .unwrap();
            assert_eq!(next.weekday(), Weekday::Sun, "{text}");
        }
        let weekdays = Schedule::parse("0 8 * * mon-fri").unwrap();
        let next = weekdays.next_after(utc(2026, 3, 6, 9, 0)).unwrap();
        assert_eq!(next.weekday(), Weekday::Mon);
    }

    #[test]
    fn nicknames_are_accepted() {
        let s = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 3, 2, 10, 7)).unwrap(),
            utc(2026, 3, 2, 11, 0)
        );
        let s = Schedule::parse("@daily").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 3, 2, 10, 7)).unwrap(),
            utc(2026, 3, 3, 0, 0)
        );
        assert!(Schedule::parse("@reboot").is_err());
    }

    #[test]
    fn out_of_range_numbers_name_their_field() {
        let e = Schedule::parse("61 * * * *").unwrap_err();
        assert_eq!(e.to_string(), "minute 61 is out of range 0-59");
        let e = Schedule::parse("0 8 * * 1-8").unwrap_err();
        assert_eq!(e.to_string(), "day of week 8 is out of range 0-7");
        // Croner's extensions pass the range check untouched.
        assert!(Schedule::parse("0 0 * * 5#2").is_ok());
        assert!(Schedule::parse("0 0 L * *").is_ok());
        assert!(Schedule::parse("0 0 15W * *").is_ok());
    }

    #[test]
    fn six_fields_and_garbage_are_refused_without_panicking() {
        let six = Schedule::parse("0 */15 * * * *").unwrap_err();
        assert!(six.to_string().contains("found 6"), "{six}");
        for bad in [
            "",
            "   ",
            "61 * * * *",
            "* 24 * * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "a b c d e",
            "*/0 * * * *",
            "5-1 * * * *",
            "* * * *",
            "@",
            "@nope",
            "🦀 * * * *",
            "0 0 30 2 *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn time_zone_aware_variant_reads_fields_in_that_zone() {
        let prague_winter = FixedOffset::east_opt(3600).unwrap();
        let t = prague_winter.with_ymd_and_hms(2026, 1, 5, 7, 0, 0).unwrap();
        let next = Schedule::parse("0 8 * * *")
            .unwrap()
            .next_after_in(t)
            .unwrap();
        assert_eq!((next.hour(), next.minute()), (8, 0));
        assert_eq!(next.with_timezone(&Utc).hour(), 7);
    }
}
