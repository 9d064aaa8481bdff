//! Passwords and set-password tokens in the SQLite store. Each write is one
//! `BEGIN IMMEDIATE` transaction, so two redemptions of one token cannot both
//! see it open.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::model::UserId;
use crate::store::{DriverError, StoreError, TokenCheck};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// See [`crate::store::Store::set_password`].
pub(super) fn set_password(
    conn: &mut Connection,
    login: &str,
    hash: &str,
    now_ms: i64,
    actor: &str,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(q("starting to set a password"))?;
    let user: Option<i64> = tx
        .query_row("SELECT id FROM users WHERE login = ?1", [login], |r| {
            r.get(0)
        })
        .optional()
        .map_err(q("finding the user"))?;
    let Some(user) = user else {
        return Ok(false);
    };
    store_password(&tx, user, hash, now_ms, actor)?;
    tx.commit().map_err(q("committing the password"))?;
    Ok(true)
}

/// Writes the hash, revokes open tokens and journals it, inside `tx`.
fn store_password(
    tx: &Connection,
    user: i64,
    hash: &str,
    now_ms: i64,
    actor: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![user, hash, now_ms],
    )
    .map_err(q("storing the password hash"))?;
    tx.execute(
        "UPDATE password_tokens SET revoked_at = ?2 \
         WHERE user_id = ?1 AND used_at IS NULL AND revoked_at IS NULL",
        params![user, now_ms],
    )
    .map_err(q("revoking open set-password tokens"))?;
    let by = serde_json::json!({ "actor": actor }).to_string();
    tx.execute(
        "INSERT INTO journal (run_id, source, user_id, login, at, action, field, old, new, \
         actor) SELECT NULL, NULL, id, login, ?2, 'password_set', NULL, NULL, ?3, ?4 \
         FROM users WHERE id = ?1",
        params![user, now_ms, by, actor],
    )
    .map_err(q("journaling the password set"))?;
    Ok(())
}

/// See [`crate::store::Store::create_password_token`].
pub(super) fn create_token(
    conn: &Connection,
    user: UserId,
    token_hash: &str,
    expires_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO password_tokens (token_hash, user_id, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user.0, now_ms, expires_ms],
    )
    .map_err(q("recording a set-password token"))?;
    Ok(())
}

/// See [`crate::store::Store::redeem_password_token`].
pub(super) fn redeem_token(
    conn: &mut Connection,
    token_hash: &str,
    password_hash: &str,
    now_ms: i64,
    actor: &str,
) -> Result<TokenCheck, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(q("starting to redeem a token"))?;
    type Row = (i64, i64, Option<i64>, Option<i64>);
    let row: Option<Row> = tx
        .query_row(
            "SELECT user_id, expires_at, used_at, revoked_at FROM password_tokens \
             WHERE token_hash = ?1",
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(q("reading a set-password token"))?;
    let check = match row {
        None => TokenCheck::Unknown,
        Some((_, _, used, revoked)) if used.is_some() || revoked.is_some() => TokenCheck::Used,
        Some((_, expires, _, _)) if expires <= now_ms => TokenCheck::Expired,
        Some((user, _, _, _)) => TokenCheck::Valid(UserId(user)),
    };
    if let TokenCheck::Valid(user) = check {
        tx.execute(
            "UPDATE password_tokens SET used_at = ?2 WHERE token_hash = ?1",
            params![token_hash, now_ms],
        )
        .map_err(q("marking the token used"))?;
        store_password(&tx, user.0, password_hash, now_ms, actor)?;
        tx.commit().map_err(q("committing the password"))?;
    }
    Ok(check)
}
