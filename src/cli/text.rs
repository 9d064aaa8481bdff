//! Text for people: values made safe to show on a terminal, and errors said
//! once with their causes. JSON output does not go through here (serde escapes
//! exactly); CSV cells have their own rule in `output`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::store::DriverError;

/// `text` with every character that would act on a terminal instead of being
/// shown written as an escape: control characters (C0, DEL, C1; `\t`, `\n`,
/// `\r` by name, the rest as `\u{1b}`, the form Rust's `{:?}` quoting uses in
/// the messages that quote values), the bidirectional embeddings, overrides
/// and isolates (which reorder the rest of the line) and the Unicode line and
/// paragraph separators. Borrows when there is nothing to escape, as for
/// almost every value.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` between double quotes, made [`visible`].
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", visible(text))
}

/// Whether `c` must not reach a terminal as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// An error and its causes as one line, `what: why: why`, each cause said
/// once. Errors that write their source into their own text would otherwise
/// say it twice (once themselves, once as the next cause), and an SQLite
/// failure says everything three times: rusqlite's message, the same again
/// with the path, and `Error code N:` with the code's text.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut said = String::new();
    let mut after_sqlite = false;
    for cause in error.chain() {
        // rusqlite's source is the bare result code, restating its message.
        let restates_code = after_sqlite && cause.is::<rusqlite::ffi::Error>();
        let sqlite = sqlite_error(cause);
        after_sqlite = sqlite.is_some();
        if restates_code {
            continue;
        }
        let text = match sqlite {
            Some(e) => sqlite_text(e, &said),
            None => cause.to_string(),
        };
        if text.is_empty() || said.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&text);
    }
    said
}

/// `cause` as rusqlite's error, whether bare or wrapped by the store as its
/// backend-neutral [`DriverError`].
fn sqlite_error<'e>(cause: &'e (dyn std::error::Error + 'static)) -> Option<&'e rusqlite::Error> {
    match cause.downcast_ref::<DriverError>() {
        Some(driver) => driver.inner().downcast_ref::<rusqlite::Error>(),
        None => cause.downcast_ref::<rusqlite::Error>(),
    }
}

/// rusqlite's message, without the statement it quotes after a syntax error
/// (a migration's whole SQL, for a database that is not a Liaison store) and
/// without the `: PATH` it appends to a failed open that already named it.
fn sqlite_text(e: &rusqlite::Error, said: &str) -> String {
    if let rusqlite::Error::SqlInputError { msg, .. } = e {
        return msg.clone();
    }
    let text = e.to_string();
    match text.rsplit_once(": ") {
        Some((message, tail)) if !tail.is_empty() && said.contains(tail) => message.to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "Jiří Dvořák",
            "ACME\\Sales",
            "a \"b\" 'c'",
            "👩‍💻 r\u{30c}",
        ] {
            assert!(matches!(visible(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(visible("\u{1b}[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(
            visible("a\tb\nc\rd\0e\u{7f}"),
            "a\\tb\\nc\\rd\\u{0}e\\u{7f}"
        );
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m", "C1 CSI");
        assert_eq!(
            visible("abc\u{202e}fed"),
            "abc\\u{202e}fed",
            "right-to-left override"
        );
        assert_eq!(visible("x\u{2066}y\u{2069}"), "x\\u{2066}y\\u{2069}");
        assert_eq!(visible("one\u{2028}two"), "one\\u{2028}two");
        assert_eq!(quoted("\u{1b}c"), "\"\\u{1b}c\"");
    }

    #[test]
    fn every_character_is_kept_or_escaped_to_plain_ascii() {
        // The model: Unicode's Cc category, the bidi embeddings, overrides
        // and isolates, and the line and paragraph separators.
        let model = |c: u32| {
            c < 0x20
                || (0x7f..=0x9f).contains(&c)
                || (0x202a..=0x202e).contains(&c)
                || (0x2066..=0x2069).contains(&c)
                || c == 0x2028
                || c == 0x2029
        };
        for c in (0..0x11_0000u32).filter_map(char::from_u32) {
            let one = c.to_string();
            let shown = visible(&one);
            if model(u32::from(c)) {
                assert!(shown.starts_with('\\'), "{c:?} shown as {shown}");
                assert!(
                    shown.bytes().all(|b| b.is_ascii_graphic()),
                    "{c:?} shown as {shown}"
                );
            } else {
                assert_eq!(shown, one);
            }
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Embeds {
        source: std::io::Error,
    }

    #[test]
    fn a_source_written_into_its_error_is_said_once() {
        let e = anyhow::Error::new(Embeds {
            source: std::io::Error::other("disk on fire"),
        })
        .context("saving");
        assert_eq!(error_chain(&e), "saving: outer: disk on fire");
    }

    #[test]
    fn an_sqlite_failure_is_said_once() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = conn.execute_batch("SELEC 1").unwrap_err();
        let said = error_chain(&anyhow::Error::new(e).context("reading"));
        assert_eq!(said, "reading: near \"SELEC\": syntax error");
    }

    #[test]
    fn an_sqlite_failure_wrapped_by_the_store_is_said_once() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = conn.execute_batch("SELEC 1").unwrap_err();
        let e = crate::store::StoreError::Query {
            what: "reading",
            source: DriverError::new(e),
        };
        let said = error_chain(&anyhow::Error::new(e));
        assert_eq!(said, "store: reading: near \"SELEC\": syntax error");
    }

    #[test]
    fn a_failed_open_names_its_path_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("x.db");
        let e = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
        )
        .unwrap_err();
        let context = format!("cannot open store {}", path.display());
        let said = error_chain(&anyhow::Error::new(e).context(context.clone()));
        assert_eq!(said, format!("{context}: unable to open database file"));
    }
}
