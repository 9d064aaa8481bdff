//! The one line `systemctl status` shows (`STATUS=`): the last run of each
//! source and when the next is due.

use chrono::{DateTime, Utc};

use super::scheduler::Board;

/// `partners: applied (3 created, 0 updated, 0 disabled) at 12:00:03, next 12:15:00; …`
pub fn status_line(board: &Board) -> String {
    if board.sources.is_empty() {
        return "no sources configured".to_owned();
    }
    let parts: Vec<String> = board
        .sources
        .iter()
        .map(|(name, s)| {
            let mut part = format!("{name}: ");
            if s.running {
                part.push_str("running");
            } else if let Some(last) = &s.last {
                part.push_str(&format!("{} at {}", last.summary, clock(last.finished_ms)));
            } else {
                part.push_str("no run yet");
            }
            if let Some(next) = s.next_run_ms {
                part.push_str(&format!(", next {}", clock(next)));
            }
            part
        })
        .collect();
    parts.join("; ")
}

fn clock(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::runner::Finished;
    use crate::daemon::scheduler::SourceBoard;
    use crate::sync::RunStatus;

    #[test]
    fn the_line_names_each_source_with_its_last_and_next_run() {
        let mut board = Board::default();
        board.sources.insert(
            "partners".into(),
            SourceBoard {
                next_run_ms: Some(3_600_000),
                last: Some(Finished {
                    status: RunStatus::Applied,
                    failure: None,
                    finished_ms: 60_000,
                    summary: "applied (3 created, 0 updated, 0 disabled)".into(),
                }),
                ..SourceBoard::default()
            },
        );
        board.sources.insert("crm".into(), SourceBoard::default());
        assert_eq!(
            status_line(&board),
            "crm: no run yet; partners: applied (3 created, 0 updated, 0 disabled) at 00:01:00 UTC, next 01:00:00 UTC"
        );
    }
}
