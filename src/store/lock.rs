//! The store's writer lock, as every backend shares it: who holds it, and
//! waiting for it. One applying run per store at a time, across processes: a
//! run takes the lock before it loads what it plans against and keeps it
//! through the apply, so the state a plan was made from is still the state it
//! is applied to. Backends hold it with something the operating system or the
//! server drops when the holder dies (SQLite: an advisory lock on a file beside
//! the database; PostgreSQL: a session advisory lock).

use std::fmt;
use std::time::{Duration, Instant};

use super::StoreError;

/// Who holds a store's writer lock, as it said when it took it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockHolder {
    /// Its process id.
    pub pid: Option<u32>,
    /// When it took the lock (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Its command line, as far as it told.
    pub command: Option<String>,
}

impl LockHolder {
    /// This process, now.
    pub fn this_process() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let mut command = args.join(" ");
        // A holder's description, not a record: keep it to one short line.
        command = command.replace(['\n', '\r'], " ");
        if command.len() > 200 {
            let mut cut = 200;
            while !command.is_char_boundary(cut) {
                cut -= 1;
            }
            command.truncate(cut);
            command.push('…');
        }
        LockHolder {
            pid: Some(std::process::id()),
            since_ms: Some(crate::clock::now_ms()),
            command: Some(command).filter(|c| !c.is_empty()),
        }
    }

    /// The holder as a few `key value` lines (what a lock file holds).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(pid) = self.pid {
            out.push_str(&format!("pid {pid}\n"));
        }
        if let Some(since) = self.since_ms {
            out.push_str(&format!("since {since}\n"));
        }
        if let Some(command) = &self.command {
            out.push_str(&format!("command {command}\n"));
        }
        out
    }

    /// Reads [`LockHolder::to_text`] back; unknown or broken lines are skipped
    /// (the text is only ever shown to people).
    pub fn from_text(text: &str) -> Self {
        let mut holder = LockHolder::default();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "pid" => holder.pid = value.trim().parse().ok(),
                "since" => holder.since_ms = value.trim().parse().ok(),
                "command" => holder.command = Some(value.to_owned()).filter(|c| !c.is_empty()),
                _ => {}
            }
        }
        holder
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "process {pid}")?,
            None => write!(f, "another process (it has not said which yet)")?,
        }
        let since = self
            .since_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        match (&self.command, since) {
            (Some(c), Some(s)) => write!(f, " ({c}, since {s})"),
            (Some(c), None) => write!(f, " ({c})"),
            (None, Some(s)) => write!(f, " (since {s})"),
            (None, None) => Ok(()),
        }
    }
}

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// Takes a lock by calling `try_once` until it succeeds (`Ok(None)`) or `wait`
/// has passed. `on_wait` is told who holds it the first time it is busy, and
/// again whenever the holder changes; giving up is [`StoreError::Locked`]
/// naming the last holder seen and `store`.
pub fn wait_for(
    store: &str,
    wait: Duration,
    try_once: &mut dyn FnMut() -> Result<Option<LockHolder>, StoreError>,
    on_wait: &mut dyn FnMut(&LockHolder),
) -> Result<(), StoreError> {
    let start = Instant::now();
    let mut told: Option<LockHolder> = None;
    loop {
        let Some(holder) = try_once()? else {
            return Ok(());
        };
        if told.as_ref() != Some(&holder) {
            on_wait(&holder);
            told = Some(holder.clone());
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(StoreError::Locked {
                path: store.to_owned(),
                holder,
                waited_s: waited.as_secs(),
            });
        }
        std::thread::sleep(POLL.min(wait - waited));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_holder_reads_back_what_it_wrote() {
        let me = LockHolder::this_process();
        assert_eq!(LockHolder::from_text(&me.to_text()), me);
        assert_eq!(
            LockHolder::from_text("pid x\nsince 5\nnoise\n"),
            LockHolder {
                pid: None,
                since_ms: Some(5),
                command: None
            }
        );
        let shown = LockHolder {
            pid: Some(42),
            since_ms: Some(0),
            command: Some("liaison sync --once".into()),
        }
        .to_string();
        assert_eq!(
            shown,
            "process 42 (liaison sync --once, since 1970-01-01T00:00:00Z)"
        );
    }

    #[test]
    fn waiting_tells_the_holder_once_and_gives_up_after_the_wait() {
        let holder = LockHolder {
            pid: Some(7),
            ..LockHolder::default()
        };
        let mut told = Vec::new();
        let err = wait_for(
            "x.db",
            Duration::from_millis(120),
            &mut || Ok(Some(holder.clone())),
            &mut |h| told.push(h.clone()),
        )
        .unwrap_err();
        assert_eq!(told, std::slice::from_ref(&holder));
        assert!(matches!(err, StoreError::Locked { holder: h, .. } if h == holder));

        let mut tries = 0;
        wait_for(
            "x.db",
            Duration::from_secs(5),
            &mut || {
                tries += 1;
                Ok((tries < 3).then(|| holder.clone()))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(tries, 3);
    }
}
