//! Cron schedules in the standard 5-field crontab form (or 6 fields with
//! seconds first), evaluated by croner.
//!
//! See `docs/decisions/0002-cron.md` for why croner and not the `cron` crate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A parsed cron schedule: `minute hour day-of-month month day-of-week`, or
/// `second minute hour day-of-month month day-of-week` (seconds first, as
/// croner and most 6-field tools read it: for tests and sub-minute schedules),
/// POSIX weekdays (0 or 7 = Sunday, 1 = Monday), names (`mon`, `jan`), ranges,
/// steps, lists, croner's `L`/`W`/`#`, and `@hourly`, `@daily`, `@weekly`,
/// `@monthly`, `@yearly`/`@annually`. A year field (7 fields) is refused.
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
    /// Parses a 5-field crontab expression, a 6-field one with seconds first,
    /// or an `@nickname`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError("the expression is empty".to_owned()));
        }
        if !trimmed.starts_with('@') {
            let fields = trimmed.split_whitespace().count();
            if fields != 5 && fields != 6 {
                return Err(ScheduleError(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) \
                     or 6 with seconds first, found {fields}"
                )));
            }
            check_ranges(trimmed, fields == 6)?;
        } else if !NICKNAMES.contains(&trimmed.to_ascii_lowercase().as_str()) {
            return Err(ScheduleError(format!(
                "unknown nickname (known: {})",
                NICKNAMES.join(", ")
            )));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
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
    /// zone. DST as croner does it (pinned by the tests below): a fixed time
    /// skipped by spring-forward fires once, at the first instant after the
    /// gap (02:30 in Europe/Prague on that day fires at 03:00 CEST); a fixed
    /// time in the repeated fall-back hour fires once, at its first instance.
    /// A schedule whose second, minute or hour field is not one value
    /// (`*/15 * * * *`, `45 * * * *`) follows real time: it fires in both
    /// instances of the repeated hour and not in the gap.
    pub fn next_after_in<Tz: TimeZone>(&self, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The first fire time strictly after `t`, reading the fields in the zone
    /// `tz` (DST handled as in [`Schedule::next_after_in`]), given in UTC.
    pub fn next_after_tz(&self, t: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        self.next_after_in(t.with_timezone(&tz))
            .map(|next| next.with_timezone(&Utc))
    }
}

/// Reports a number outside its field's range by name (croner only says
/// "Number out of bounds"). Steps, names and `L`/`W`/`#` are left to croner.
/// `with_seconds`: the first of the fields is the second.
fn check_ranges(expression: &str, with_seconds: bool) -> Result<(), ScheduleError> {
    const FIELDS: [(&str, u32, u32); 6] = [
        ("second", 0, 59),
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    let fields = if with_seconds {
        &FIELDS[..]
    } else {
        &FIELDS[1..]
    };
    for (field, (name, low, high)) in expression.split_whitespace().zip(fields) {
        for item in field.split(',') {
            let range = item.split('/').next().unwrap_or(item);
            for number in range.split('-').filter_map(|t| t.parse::<u32>().ok()) {
                if !(*low..=*high).contains(&number) {
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
    use chrono_tz::Tz;

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
    fn six_fields_put_seconds_first() {
        let s = Schedule::parse("*/2 * * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 10, 7, 1).unwrap();
        let next = s.next_after(t).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 2, 10, 7, 2).unwrap());
        let after = s.next_after(next).unwrap();
        assert_eq!(after, Utc.with_ymd_and_hms(2026, 3, 2, 10, 7, 4).unwrap());
        // Five fields still mean second 0 of the minute.
        let minutely = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            minutely.next_after(t).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 2, 10, 8, 0).unwrap()
        );
        let e = Schedule::parse("60 * * * * *").unwrap_err();
        assert_eq!(e.to_string(), "second 60 is out of range 0-59");
        let e = Schedule::parse("0 60 * * * *").unwrap_err();
        assert_eq!(e.to_string(), "minute 60 is out of range 0-59");
    }

    fn prague(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> chrono::LocalResult<DateTime<Tz>> {
        chrono_tz::Europe::Prague.with_ymd_and_hms(y, mo, d, h, mi, 0)
    }

    #[test]
    fn spring_forward_fires_a_skipped_time_at_the_end_of_the_gap() {
        // 2026-03-29 in Prague: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let tz = chrono_tz::Europe::Prague;
        let daily = Schedule::parse("30 2 * * *").unwrap();
        let before = utc(2026, 3, 28, 23, 0);
        let next = daily.next_after_tz(before, tz).unwrap();
        assert_eq!(next, utc(2026, 3, 29, 1, 0), "03:00 CEST, once");
        let following = daily.next_after_tz(next, tz).unwrap();
        assert_eq!(following, prague(2026, 3, 30, 2, 30).unwrap());
        // A step job follows real time: 01:45 CET, then 03:00 CEST.
        let quarterly = Schedule::parse("*/15 * * * *").unwrap();
        let at = prague(2026, 3, 29, 1, 45).unwrap().with_timezone(&Utc);
        assert_eq!(
            quarterly.next_after_tz(at, tz).unwrap(),
            utc(2026, 3, 29, 1, 0)
        );
    }

    #[test]
    fn fall_back_fires_a_repeated_time_once() {
        // 2026-10-25 in Prague: 03:00 CEST falls back to 02:00 CET.
        let tz = chrono_tz::Europe::Prague;
        let daily = Schedule::parse("30 2 * * *").unwrap();
        let before = utc(2026, 10, 24, 22, 0);
        let first = daily.next_after_tz(before, tz).unwrap();
        assert_eq!(first, utc(2026, 10, 25, 0, 30), "02:30 CEST");
        let second = daily.next_after_tz(first, tz).unwrap();
        assert_eq!(second, prague(2026, 10, 26, 2, 30).unwrap());
        // A step job runs through both instances of the hour.
        let hourly_quarter = Schedule::parse("45 * * * *").unwrap();
        let at = utc(2026, 10, 25, 0, 50); // 02:50 CEST
        assert_eq!(
            hourly_quarter.next_after_tz(at, tz).unwrap(),
            utc(2026, 10, 25, 1, 45),
            "02:45 CET, the repeated hour"
        );
    }

    #[test]
    fn seven_fields_and_garbage_are_refused_without_panicking() {
        let seven = Schedule::parse("0 0 */15 * * * 2026").unwrap_err();
        assert!(seven.to_string().contains("found 7"), "{seven}");
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
