//! Output for people that needs room: the `users list` table, sized to the
//! terminal, and journal entries (`users history`, `users show`). Part of
//! the CLI's output (stdout), beside `output`.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::ops::ControlFlow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::args::Format;
use super::output::{self, UserSource};
use super::text::visible;
use crate::store::{HistoryEntry, UserView};

/// How many users the table reads before it fixes its column widths: the
/// rest are written as they come (a million users are not held).
const SAMPLE: usize = 1_000;

/// The narrowest a shrunk column gets.
const MIN_WIDTH: usize = 6;

/// The columns of the table: header, and whether it may be shrunk to fit.
const COLUMNS: [(&str, bool); 6] = [
    ("LOGIN", true),
    ("STATUS", false),
    ("ORIGIN", false),
    ("E-MAIL", true),
    ("TITLE", true),
    ("ACCOUNTS", true),
];

/// The width of the terminal the table is for: `$COLUMNS`, else the
/// terminal's on stdout; `None` (no limit) when stdout is not a terminal.
fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    let stdout = io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(&stdout)
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|n| *n > 0)
}

fn cells(u: UserView) -> [String; 6] {
    let shown = |s: &str| visible(s).into_owned();
    [
        shown(&u.login),
        u.status.as_str().to_owned(),
        u.origin.as_str().to_owned(),
        u.email.as_deref().map_or_else(|| "-".to_owned(), shown),
        shown(&u.title),
        if u.accounts.is_empty() {
            "-".to_owned()
        } else {
            shown(&u.accounts.join(","))
        },
    ]
}

/// Column widths for `rows` within `limit` characters (`None`: no limit):
/// each column as wide as its widest cell, then the widest shrinkable ones
/// narrowed, one character at a time, until the line fits.
fn widths(rows: &[[String; 6]], limit: Option<usize>) -> [usize; 6] {
    let mut w = COLUMNS.map(|(h, _)| h.width());
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.width());
        }
    }
    let Some(limit) = limit else {
        return w;
    };
    let gaps = 2 * (COLUMNS.len() - 1);
    while w.iter().sum::<usize>() + gaps > limit {
        let widest = (0..COLUMNS.len())
            .filter(|i| COLUMNS[*i].1 && w[*i] > MIN_WIDTH)
            .max_by_key(|i| (w[*i], *i));
        match widest {
            Some(i) => w[i] -= 1,
            None => break,
        }
    }
    w
}

/// `text` cut to `width` columns, with `…` where it was cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

fn write_row(out: &mut dyn Write, row: &[String; 6], w: &[usize; 6], cut: bool) -> io::Result<()> {
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        let cell = if cut { fit(cell, w[i]) } else { cell.clone() };
        line.push_str(&cell);
        if i + 1 < row.len() {
            let pad = w[i].saturating_sub(cell.width()) + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// `users list` for people: a table sized to the terminal from its first
/// [`SAMPLE`] users, then a count.
pub(super) fn users(out: &mut dyn Write, source: UserSource<'_>) -> anyhow::Result<()> {
    let limit = terminal_width();
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut fixed: Option<[usize; 6]> = None;
    let mut count = 0usize;
    let mut failed: Option<io::Error> = None;
    let start = |out: &mut dyn Write, rows: &[[String; 6]]| -> io::Result<[usize; 6]> {
        let w = widths(rows, limit);
        let header = COLUMNS.map(|(h, _)| h.to_owned());
        write_row(out, &header, &w, true)?;
        for r in rows {
            write_row(out, r, &w, limit.is_some())?;
        }
        Ok(w)
    };
    source(&mut |u| {
        count += 1;
        let row = cells(u);
        let written = match &fixed {
            Some(w) => write_row(out, &row, w, limit.is_some()),
            None => {
                rows.push(row);
                if rows.len() < SAMPLE {
                    return ControlFlow::Continue(());
                }
                start(out, &rows).map(|w| {
                    fixed = Some(w);
                    rows.clear();
                })
            }
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if fixed.is_none() {
        start(out, &rows)?;
    }
    writeln!(out, "{count} user{}", if count == 1 { "" } else { "s" })?;
    out.flush()?;
    Ok(())
}

/// One journal entry for people: when, what, who, and the field's change.
pub(super) fn history_line(h: &HistoryEntry) -> String {
    let what = match (&h.field, &h.old, &h.new) {
        (Some(f), Some(o), Some(n)) => format!("{f}: {o} → {n}"),
        (Some(f), None, Some(n)) => format!("{f}: + {n}"),
        (Some(f), Some(o), None) => format!("{f}: - {o}"),
        (None, _, Some(n)) if h.action == "create" => format!("{n}"),
        (None, Some(o), None) if h.action == "delete" => format!("{o}"),
        _ => String::new(),
    };
    let run = h.run.map(|r| format!(" (run {r})")).unwrap_or_default();
    format!(
        "{}  {:<8} by {}{run}  {}",
        h.at,
        h.action,
        visible(h.actor.as_deref().unwrap_or("-")),
        visible(&what)
    )
    .trim_end()
    .to_owned()
}

/// `users history LOGIN`.
pub(super) fn history(login: &str, entries: &[HistoryEntry], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return output::json_out(entries);
    }
    let written = (|| {
        let mut out = BufWriter::new(io::stdout().lock());
        writeln!(out, "history of {}:", visible(login))?;
        for h in entries {
            writeln!(out, "  {}", history_line(h))?;
        }
        writeln!(
            out,
            "{} entr{}",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" }
        )?;
        out.flush()
    })();
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        done => done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(login: &str, email: &str, title: &str) -> [String; 6] {
        [
            login.to_owned(),
            "active".to_owned(),
            "sync".to_owned(),
            email.to_owned(),
            title.to_owned(),
            "acme".to_owned(),
        ]
    }

    #[test]
    fn columns_shrink_to_the_terminal_widest_first() {
        let rows = [row(
            "jiri.dvorak",
            "jiri.dvorak@a-very-long-domain.example",
            "Jiří Dvořák, head of purchasing at ACME",
        )];
        let free = widths(&rows, None);
        assert_eq!(free[3], 38);
        let w = widths(&rows, Some(80));
        assert!(w.iter().sum::<usize>() + 10 <= 80, "{w:?}");
        assert_eq!((w[1], w[2]), (6, 6), "fixed columns keep their width");
        // Too narrow for anything: shrinkable columns stop at their minimum.
        let w = widths(&rows, Some(10));
        assert!(w.iter().all(|x| *x >= MIN_WIDTH.min(6)), "{w:?}");
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis_by_display_width() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefg", 6), "abcde…");
        // Wide characters count twice.
        assert_eq!(fit("日本語テキスト", 6), "日本…");
        assert!(fit("日本語テキスト", 6).width() <= 6);
    }
}
