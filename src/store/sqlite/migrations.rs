//! Versioned schema migrations: each runs in its own transaction and bumps
//! `PRAGMA user_version`; a database newer than this build is refused.

use rusqlite::Connection;

use crate::store::StoreError;

/// The migrations, in order; version N is the N-th entry.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// Brings the schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let q = |what| move |source| StoreError::Query { what, source };
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(q("reading schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::Downgrade { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(q("starting migration"))?;
        tx.execute_batch(sql).map_err(q("running migration"))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(q("recording schema version"))?;
        tx.commit().map_err(q("committing migration"))?;
    }
    Ok(())
}

/// Checks, without writing, that the schema is the one this build knows
/// (a read-only handle cannot migrate).
pub fn check_current(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|source| StoreError::Query {
            what: "reading schema version",
            source,
        })?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::Downgrade { found, known });
    }
    if found != known {
        return Err(StoreError::Corrupt {
            what: "schema version",
            detail: format!("{found}, this build reads {known} (a sync migrates it)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn migrates_once_and_refuses_downgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::Downgrade { found: 99, .. })
        ));
    }
}
