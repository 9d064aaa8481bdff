//! The wall clock, read only at the edges; logic takes time as a parameter.
//!
//! Test knob: `LIAISON_TEST_NOW` (an RFC 3339 time, `2026-12-07T09:00:00+01:00`)
//! starts the clock of a one-shot command there; it then runs on at the real
//! pace. The test suite uses it to make retried mail due or to stand inside a
//! send window without waiting. The daemon ignores it.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// The test knob that sets the clock (see the module docs).
pub const TEST_NOW_VAR: &str = "LIAISON_TEST_NOW";

/// What [`now_ms`] adds to the system clock: 0 unless [`TEST_NOW_VAR`] is set.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Milliseconds since the Unix epoch, now (shifted by [`TEST_NOW_VAR`] when
/// [`set_from_env`] read one).
pub fn now_ms() -> i64 {
    system_ms().saturating_add(OFFSET_MS.load(Ordering::Relaxed))
}

/// [`now_ms`] as a UTC time.
pub fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(now_ms())
        .single()
        .unwrap_or_default()
}

/// Reads [`TEST_NOW_VAR`]: when set, the clock continues from that time.
/// An unreadable value is an error naming the variable.
pub fn set_from_env() -> Result<(), String> {
    let text = match std::env::var(TEST_NOW_VAR) {
        Err(std::env::VarError::NotPresent) => return Ok(()),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{TEST_NOW_VAR} is not an RFC 3339 time"))
        }
        Ok(text) => text,
    };
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("{TEST_NOW_VAR}={text:?} is not an RFC 3339 time: {e}"))?;
    OFFSET_MS.store(at.timestamp_millis() - system_ms(), Ordering::Relaxed);
    Ok(())
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Resident memory of this process in MiB, for debug logs (Linux; 0 elsewhere).
pub fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096 / (1024 * 1024))
        .unwrap_or(0)
}

/// Peak resident memory of this process so far in MiB (`VmHWM`), for debug
/// logs (Linux; 0 elsewhere): shows which phase sets a run's high-water mark.
pub fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib / 1024)
        .unwrap_or(0)
}
