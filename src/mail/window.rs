//! `mail.window`: the days and hours, in the mail time zone, in which mail
//! may leave. Mail that comes due outside waits for the next opening.

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::SendWindow;

/// Whether `window` is open at `at`, read in `zone`.
pub fn is_open(window: &SendWindow, zone: Tz, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&zone);
    let day = local.weekday().number_from_monday() as u8;
    let hour = local.hour() as u8;
    window.days.contains(&day) && window.from_hour <= hour && hour < window.to_hour
}

/// `at` when the window is open then, else when it opens next: `from` o'clock
/// of the next allowed day, in `zone` (an opening hour skipped by a daylight
/// saving change opens an hour later). `None` only for a window with no days.
pub fn next_open(window: &SendWindow, zone: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if is_open(window, zone, at) {
        return Some(at);
    }
    let today = at.with_timezone(&zone).date_naive();
    // Eight days reach every weekday again, today's later opening included.
    (0..=8u64).find_map(|ahead| {
        let date = today.checked_add_days(Days::new(ahead))?;
        let day = date.weekday().number_from_monday() as u8;
        if !window.days.contains(&day) {
            return None;
        }
        let opening = opening_on(date, window.from_hour, zone)?;
        (opening > at).then_some(opening)
    })
}

/// `hour`:00 on `date` in `zone`, as UTC; the first hour after it that exists
/// when a daylight saving change skips it.
fn opening_on(date: chrono::NaiveDate, hour: u8, zone: Tz) -> Option<DateTime<Utc>> {
    (u32::from(hour)..24).find_map(|h| {
        let time = NaiveTime::from_hms_opt(h, 0, 0)?;
        zone.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn office_hours() -> SendWindow {
        SendWindow {
            days: vec![1, 2, 3, 4, 5],
            from_hour: 8,
            to_hour: 18,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const PRAGUE: Tz = chrono_tz::Europe::Prague;

    #[test]
    fn office_hours_are_read_in_the_mail_zone() {
        let w = office_hours();
        // Tuesday 2026-12-01: Prague is UTC+1 in winter.
        assert!(!is_open(&w, PRAGUE, utc("2026-12-01T06:59:59Z")));
        assert!(is_open(&w, PRAGUE, utc("2026-12-01T07:00:00Z")));
        assert!(is_open(&w, PRAGUE, utc("2026-12-01T16:59:59Z")));
        assert!(!is_open(&w, PRAGUE, utc("2026-12-01T17:00:00Z")));
        // In summer, UTC+2.
        assert!(is_open(&w, PRAGUE, utc("2026-07-01T06:00:00Z")));
        assert!(!is_open(&w, PRAGUE, utc("2026-07-01T16:00:00Z")));
    }

    #[test]
    fn closed_windows_open_at_the_next_allowed_morning() {
        let w = office_hours();
        let open = utc("2026-12-01T10:00:00Z");
        assert_eq!(next_open(&w, PRAGUE, open), Some(open));
        // Tuesday evening → Wednesday 08:00 Prague.
        assert_eq!(
            next_open(&w, PRAGUE, utc("2026-12-01T19:30:00Z")),
            Some(utc("2026-12-02T07:00:00Z"))
        );
        // Tuesday before dawn → the same day's opening.
        assert_eq!(
            next_open(&w, PRAGUE, utc("2026-12-01T03:00:00Z")),
            Some(utc("2026-12-01T07:00:00Z"))
        );
        // Friday evening → Monday.
        assert_eq!(
            next_open(&w, PRAGUE, utc("2026-12-04T18:00:00Z")),
            Some(utc("2026-12-07T07:00:00Z"))
        );
    }

    #[test]
    fn an_opening_hour_skipped_by_daylight_saving_opens_an_hour_later() {
        // Prague skips 02:00–03:00 on Sunday 2026-03-29.
        let w = SendWindow {
            days: vec![7],
            from_hour: 2,
            to_hour: 5,
        };
        assert_eq!(
            next_open(&w, PRAGUE, utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_window_without_days_never_opens() {
        let w = SendWindow {
            days: vec![],
            from_hour: 8,
            to_hour: 18,
        };
        assert_eq!(next_open(&w, PRAGUE, utc("2026-12-01T10:00:00Z")), None);
    }
}
