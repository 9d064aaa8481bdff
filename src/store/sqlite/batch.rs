//! Multi-row inserts: SQLite spends most of a single-row `INSERT` opening and
//! closing cursors, so bulk writes bind many rows to one statement instead.

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, Statement};

use crate::store::{DriverError, StoreError};

/// Rows bound to one statement; 64 rows of the widest table stay far below
/// SQLite's limit of 32,766 parameters.
const ROWS: usize = 64;

/// An `INSERT` of rows with `width` parameters each, executed `ROWS` at a time.
/// Values borrow from the plan where they can (`'p`), so a batch copies nothing
/// it does not have to.
pub struct BatchInsert<'t, 'p> {
    tx: &'t Connection,
    sql: Sql,
    full: Statement<'t>,
    pending: Vec<ToSqlOutput<'p>>,
    what: &'static str,
}

/// The parts of the statement: `head` up to `VALUES`, one `row` of `?`
/// placeholders (and literals), and an optional `tail` (`ON CONFLICT …`).
#[derive(Clone, Copy)]
pub struct Sql {
    /// `INSERT INTO t (a, b)`.
    pub head: &'static str,
    /// `(?, ?)`.
    pub row: &'static str,
    /// Anything after the rows.
    pub tail: &'static str,
    /// Parameters per row.
    pub width: usize,
}

impl Sql {
    /// The statement text for `rows` rows.
    pub fn with_rows(&self, rows: usize) -> String {
        let mut sql = String::with_capacity(self.head.len() + rows * (self.row.len() + 2) + 64);
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(self.row);
        }
        sql.push(' ');
        sql.push_str(self.tail);
        sql
    }
}

impl<'t, 'p> BatchInsert<'t, 'p> {
    /// Prepares the full-batch statement; `what` names the table in errors.
    pub fn new(tx: &'t Connection, sql: Sql, what: &'static str) -> Result<Self, StoreError> {
        let full = tx
            .prepare(&sql.with_rows(ROWS))
            .map_err(|source| StoreError::Query {
                what,
                source: DriverError::new(source),
            })?;
        Ok(BatchInsert {
            tx,
            sql,
            full,
            pending: Vec::with_capacity(ROWS * sql.width),
            what,
        })
    }

    /// Adds one row: exactly `width` values.
    pub fn push<const N: usize>(&mut self, row: [ToSqlOutput<'p>; N]) -> Result<(), StoreError> {
        debug_assert_eq!(N, self.sql.width);
        self.pending.extend(row);
        if self.pending.len() == ROWS * self.sql.width {
            let err = |source| StoreError::Query {
                what: self.what,
                source: DriverError::new(source),
            };
            run(&mut self.full, &mut self.pending).map_err(err)?;
        }
        Ok(())
    }

    /// Writes the rows still pending.
    pub fn finish(mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let what = self.what;
        let err = |source| StoreError::Query {
            what,
            source: DriverError::new(source),
        };
        let rows = self.pending.len() / self.sql.width;
        let mut stmt = self.tx.prepare(&self.sql.with_rows(rows)).map_err(err)?;
        run(&mut stmt, &mut self.pending).map_err(err)
    }
}

fn run(stmt: &mut Statement<'_>, values: &mut Vec<ToSqlOutput<'_>>) -> rusqlite::Result<()> {
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, v)?;
    }
    values.clear();
    stmt.raw_execute()?;
    Ok(())
}

/// A borrowed text value.
pub fn text(s: &str) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes()))
}

/// An optional borrowed text value (`NULL` for `None`).
pub fn opt_text(s: Option<&str>) -> ToSqlOutput<'_> {
    match s {
        Some(s) => text(s),
        None => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Null),
    }
}

/// An owned text value.
pub fn owned(s: String) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(rusqlite::types::Value::Text(s))
}

/// An integer value.
pub fn int(i: i64) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(rusqlite::types::Value::Integer(i))
}

/// An optional boolean as SQLite stores it.
pub fn opt_bool(b: Option<bool>) -> ToSqlOutput<'static> {
    match b {
        Some(b) => int(i64::from(b)),
        None => ToSqlOutput::Owned(rusqlite::types::Value::Null),
    }
}
