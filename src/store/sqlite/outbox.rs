//! The outbox in SQLite: queueing inside a run's transaction, held batches,
//! and the dispatcher's state changes (one statement each, so each is atomic).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::SqliteStore;
use crate::model::UserId;
use crate::reconcile::Plan;
use crate::store::{
    Addressee, DriverError, HeldBatch, MailKind, Outbox, OutboxEntry, OutboxPolicy, OutboxState,
    Release, StoreError,
};

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query {
        what,
        source: DriverError::new(source),
    }
}

/// The outbox writes of an applied `plan`, inside its transaction (after its
/// users are written): the mail of the users it created — queued, or held in
/// one batch when there are more than the policy allows — and the
/// cancellation of the queued mail of the users it disables or deletes.
/// A plan that creates and deprovisions nothing runs no statement here.
pub(super) fn write_plan(
    tx: &Connection,
    plan: &Plan,
    run: i64,
    now: i64,
) -> Result<(), StoreError> {
    for d in &plan.deprovisions {
        cancel_queued(tx, d.user, now)?;
    }
    let (Some(policy), Some(created)) = (&plan.outbox, created_ids(tx, plan)?) else {
        return Ok(());
    };
    let count = plan.creates.len();
    if count > policy.max_welcome_per_run {
        hold(tx, plan, run, &created, policy.confirm_sync_created, now)
    } else {
        if policy.confirm_sync_created {
            queue(
                tx,
                policy,
                MailKind::RegistrationConfirmation,
                &created,
                Some(run),
                now,
            )?;
        }
        queue(tx, policy, MailKind::Welcome, &created, Some(run), now)?;
        Ok(())
    }
}

/// The ids of the users `plan` created: a run's new users get consecutive
/// ids ending at `meta.last_user_id` (see `Writer::create_users`).
fn created_ids(tx: &Connection, plan: &Plan) -> Result<Option<RangeInclusive<i64>>, StoreError> {
    if plan.creates.is_empty() {
        return Ok(None);
    }
    let last: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_user_id'",
            [],
            |r| r.get(0),
        )
        .map_err(q("reading the created users' ids"))?;
    Ok(Some(last - plan.creates.len() as i64 + 1..=last))
}

/// Records the held batch of a run that created too many users to welcome.
fn hold(
    tx: &Connection,
    plan: &Plan,
    run: i64,
    users: &RangeInclusive<i64>,
    confirm: bool,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox_held (run_id, source, first_user, last_user, users, confirm, held_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run,
            plan.source,
            users.start(),
            users.end(),
            plan.creates.len() as i64,
            confirm,
            now
        ],
    )
    .map_err(q("holding a run's welcomes"))?;
    Ok(())
}

/// Queues `kind` for the active users with an address among `users` that
/// were never welcomed, in user order; a welcome marks them welcomed. Every
/// message gets its Message-ID now. Returns how many were queued.
pub(crate) fn queue(
    tx: &Connection,
    policy: &OutboxPolicy,
    kind: MailKind,
    users: &RangeInclusive<i64>,
    run: Option<i64>,
    now: i64,
) -> Result<u64, StoreError> {
    let err = q("queueing mail");
    // Explicit ids (gaps are harmless): the Message-ID is made in the same
    // statement and holds its message's id.
    let base: i64 = tx
        .query_row("SELECT coalesce(max(id), 0) FROM outbox", [], |r| r.get(0))
        .map_err(&err)?;
    let queued = tx
        .prepare_cached(
            "INSERT INTO outbox (id, kind, user_id, recipient, locale, not_before, state, \
             message_id, run_id, created_at, updated_at) \
             SELECT ?1 + id - ?2 + 1, ?4, id, email, locale, ?5, 'queued', \
             '<' || (?1 + id - ?2 + 1) || '.' || lower(hex(randomblob(6))) || '@' || ?6 || '>', \
             ?7, ?5, ?5 \
             FROM users WHERE id BETWEEN ?2 AND ?3 AND status = 'active' \
             AND email IS NOT NULL AND welcome_queued_at IS NULL ORDER BY id",
        )
        .and_then(|mut s| {
            s.execute(params![
                base,
                users.start(),
                users.end(),
                kind.as_str(),
                now,
                policy.message_domain,
                run
            ])
        })
        .map_err(&err)?;
    if kind == MailKind::Welcome && queued > 0 {
        tx.prepare_cached(
            "UPDATE users SET welcome_queued_at = ?3 WHERE id BETWEEN ?1 AND ?2 \
             AND status = 'active' AND email IS NOT NULL AND welcome_queued_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![users.start(), users.end(), now]))
        .map_err(q("marking users welcomed"))?;
    }
    Ok(queued as u64)
}

/// Queues one `kind` message for `user` whatever its status and its mail so
/// far (a registration's confirmation, an admin's resend); a welcome marks
/// the user welcomed. Returns how many were queued: 0 when it has no address.
pub(crate) fn queue_for(
    tx: &Connection,
    policy: &OutboxPolicy,
    kind: MailKind,
    user: UserId,
    now: i64,
) -> Result<u64, StoreError> {
    let queued = tx
        .prepare_cached(
            "INSERT INTO outbox (id, kind, user_id, recipient, locale, not_before, state, \
             message_id, run_id, created_at, updated_at) \
             SELECT n.id, ?2, u.id, u.email, u.locale, ?3, 'queued', \
             '<' || n.id || '.' || lower(hex(randomblob(6))) || '@' || ?4 || '>', NULL, ?3, ?3 \
             FROM users u, (SELECT coalesce(max(id), 0) + 1 AS id FROM outbox) n \
             WHERE u.id = ?1 AND u.email IS NOT NULL",
        )
        .and_then(|mut s| s.execute(params![user.0, kind.as_str(), now, policy.message_domain]))
        .map_err(q("queueing mail"))?;
    if queued > 0 {
        let mark = match kind {
            MailKind::Welcome => {
                "UPDATE users SET welcome_queued_at = coalesce(welcome_queued_at, ?2) WHERE id = ?1"
            }
            MailKind::RegistrationConfirmation => {
                "UPDATE users SET confirmation_queued_at = ?2 WHERE id = ?1"
            }
        };
        tx.prepare_cached(mark)
            .and_then(|mut s| s.execute(params![user.0, now]))
            .map_err(q("marking a user's mail queued"))?;
    }
    Ok(queued as u64)
}

/// Cancels the queued (not yet claimed) mail of `user`: it was disabled,
/// rejected or deleted. Returns how many messages were cancelled.
pub(crate) fn cancel_queued(tx: &Connection, user: UserId, now: i64) -> Result<u64, StoreError> {
    let cancelled = tx
        .prepare_cached(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?2 \
             WHERE user_id = ?1 AND state = 'queued'",
        )
        .and_then(|mut s| s.execute(params![user.0, now]))
        .map_err(q("cancelling a user's queued mail"))?;
    Ok(cancelled as u64)
}

/// A user's login, title, status and account names (the config's name, else
/// a source's, else the id), sorted, as a JSON array: the accounts of its
/// linked contacts and those linked to it directly (a registration's).
const ADDRESSEE: &str = "SELECT u.login, u.title, u.status, \
     (SELECT json_group_array(name) FROM (SELECT DISTINCT \
         coalesce(a.config_name, nullif(a.name, ''), l.account_id) AS name \
         FROM (SELECT c.account_id FROM contacts c \
               WHERE c.user_id = ?1 AND c.linked = 1 AND c.account_id IS NOT NULL \
               UNION SELECT ua.account_id FROM user_accounts ua WHERE ua.user_id = ?1) l \
         LEFT JOIN accounts a ON a.id = l.account_id ORDER BY 1)) \
     FROM users u WHERE u.id = ?1";

/// Every message of `user`, newest first, at most `limit`: what `users
/// show` lists as the user's mail.
pub(crate) fn mail_of(
    conn: &Connection,
    user: UserId,
    limit: usize,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let err = q("reading a user's mail");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(&err)?;
    let rows = stmt
        .query_map(params![user.0, limit as i64], entry)
        .map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(&err)??);
    }
    Ok(out)
}

const ENTRY_COLUMNS: &str = "id, kind, user_id, recipient, locale, not_before, attempts, \
     last_error, state, message_id, run_id, created_at, updated_at, sent_at";

fn entry(r: &Row<'_>) -> rusqlite::Result<Result<OutboxEntry, StoreError>> {
    let kind: String = r.get(1)?;
    let state: String = r.get(8)?;
    let corrupt = |what, detail| StoreError::Corrupt { what, detail };
    let (kind, state) = match (
        kind.parse::<MailKind>().map_err(|e| e.to_string()),
        state.parse::<OutboxState>(),
    ) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(e), _) => return Ok(Err(corrupt("outbox kind", e))),
        (_, Err(e)) => return Ok(Err(corrupt("outbox state", e))),
    };
    Ok(Ok(OutboxEntry {
        id: r.get(0)?,
        kind,
        user: UserId(r.get(2)?),
        recipient: r.get(3)?,
        locale: r.get(4)?,
        not_before_ms: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        state,
        message_id: r.get(9)?,
        run: r.get(10)?,
        created_ms: r.get(11)?,
        updated_ms: r.get(12)?,
        sent_ms: r.get(13)?,
    }))
}

fn entries(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &'static str,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let err = q(what);
    let mut stmt = conn.prepare_cached(sql).map_err(&err)?;
    let rows = stmt.query_map(params, entry).map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(&err)??);
    }
    Ok(out)
}

/// Moves message `id` from `from` with `sql` (which says `WHERE id = ?1 AND
/// state = '<from>'`); not one row changed is [`StoreError::OutboxState`].
fn transition(
    conn: &Connection,
    id: i64,
    from: OutboxState,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(q("changing an outbox message's state"))?;
    if changed == 1 {
        return Ok(());
    }
    let found: Option<String> = conn
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(q("reading an outbox message's state"))?;
    Err(StoreError::OutboxState {
        id,
        expected: from.as_str(),
        found,
    })
}

/// A held batch as [`Outbox::outbox_release`] needs it.
struct HeldRow {
    users: RangeInclusive<i64>,
    confirm: bool,
    released_at: Option<i64>,
    released: u64,
}

fn held_batch(tx: &Connection, run: i64) -> Result<Option<HeldRow>, StoreError> {
    tx.query_row(
        "SELECT first_user, last_user, confirm, released_at, released \
         FROM outbox_held WHERE run_id = ?1",
        [run],
        |r| {
            Ok(HeldRow {
                users: r.get(0)?..=r.get(1)?,
                confirm: r.get(2)?,
                released_at: r.get(3)?,
                released: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
            })
        },
    )
    .optional()
    .map_err(q("reading a held welcome batch"))
}

impl Outbox for SqliteStore {
    fn outbox_due(&mut self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        entries(
            &self.conn,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM outbox WHERE state = 'queued' AND not_before <= ?1 \
                 ORDER BY not_before, id LIMIT ?2"
            ),
            params![now_ms, limit as i64],
            "reading due mail",
        )
    }

    fn outbox_claim(&mut self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let claimed = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET state = 'sending', updated_at = ?2 \
                 WHERE id = ?1 AND state = 'queued'",
            )
            .and_then(|mut s| s.execute(params![id, now_ms]))
            .map_err(q("claiming a message"))?;
        Ok(claimed == 1)
    }

    fn outbox_sent(&mut self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        transition(
            &self.conn,
            id,
            OutboxState::Sending,
            "UPDATE outbox SET state = 'sent', sent_at = ?2, updated_at = ?2, \
             attempts = attempts + 1, last_error = NULL WHERE id = ?1 AND state = 'sending'",
            &[&id, &now_ms],
        )
    }

    fn outbox_retry(
        &mut self,
        id: i64,
        error: &str,
        not_before_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        transition(
            &self.conn,
            id,
            OutboxState::Sending,
            "UPDATE outbox SET state = 'queued', attempts = attempts + 1, last_error = ?2, \
             not_before = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'sending'",
            &[&id, &error, &not_before_ms, &now_ms],
        )
    }

    fn outbox_failed(&mut self, id: i64, error: &str, now_ms: i64) -> Result<(), StoreError> {
        transition(
            &self.conn,
            id,
            OutboxState::Sending,
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2, \
             updated_at = ?3 WHERE id = ?1 AND state = 'sending'",
            &[&id, &error, &now_ms],
        )
    }

    fn outbox_cancel_claimed(&mut self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        transition(
            &self.conn,
            id,
            OutboxState::Sending,
            "UPDATE outbox SET state = 'cancelled', updated_at = ?2 \
             WHERE id = ?1 AND state = 'sending'",
            &[&id, &now_ms],
        )
    }

    fn outbox_addressee(&mut self, user: UserId) -> Result<Option<Addressee>, StoreError> {
        let err = q("reading a message's addressee");
        let row = self
            .conn
            .prepare_cached(ADDRESSEE)
            .and_then(|mut s| {
                s.query_row([user.0], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(err)?;
        let Some((login, title, status, accounts)) = row else {
            return Ok(None);
        };
        let corrupt = |what, detail: String| StoreError::Corrupt { what, detail };
        Ok(Some(Addressee {
            login,
            title,
            status: status.parse().map_err(|e| corrupt("status", e))?,
            accounts: serde_json::from_str(&accounts)
                .map_err(|e| corrupt("account names", e.to_string()))?,
        }))
    }

    fn outbox_sent_since(&mut self, since_ms: i64) -> Result<u64, StoreError> {
        // A sent message's `updated_at` is its `sent_at`: the state index covers it.
        self.conn
            .prepare_cached("SELECT count(*) FROM outbox WHERE state = 'sent' AND updated_at > ?1")
            .and_then(|mut s| s.query_row([since_ms], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(q("counting recently sent mail"))
    }

    fn outbox_counts(&mut self) -> Result<BTreeMap<String, u64>, StoreError> {
        let err = q("counting the outbox");
        let mut counts: BTreeMap<String, u64> = OutboxState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&err)?;
        for row in rows {
            let (state, n) = row.map_err(&err)?;
            counts.insert(state, n as u64);
        }
        Ok(counts)
    }

    fn outbox_failures(&mut self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        entries(
            &self.conn,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM outbox WHERE state = 'failed' \
                 ORDER BY updated_at DESC, id DESC LIMIT ?1"
            ),
            params![limit as i64],
            "reading failed mail",
        )
    }

    fn outbox_requeue_sending(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        let requeued = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET state = 'queued', attempts = attempts + 1, updated_at = ?1, \
                 last_error = 'the process stopped while sending it; it may have been delivered' \
                 WHERE state = 'sending'",
            )
            .and_then(|mut s| s.execute([now_ms]))
            .map_err(q("requeueing interrupted mail"))?;
        Ok(requeued as u64)
    }

    fn outbox_held(&mut self) -> Result<Vec<HeldBatch>, StoreError> {
        let err = q("reading held welcome batches");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, source, users, confirm, held_at, released_at, released \
                 FROM outbox_held ORDER BY run_id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HeldBatch {
                    run: r.get(0)?,
                    source: r.get(1)?,
                    users: r.get::<_, i64>(2)? as u64,
                    confirmations: r.get(3)?,
                    held_ms: r.get(4)?,
                    released_ms: r.get(5)?,
                    released: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn outbox_release(
        &mut self,
        run: i64,
        policy: &OutboxPolicy,
        now_ms: i64,
    ) -> Result<Release, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q("starting a release"))?;
        let Some(batch) = held_batch(&tx, run)? else {
            return Ok(Release::NoBatch);
        };
        if let Some(at_ms) = batch.released_at {
            return Ok(Release::AlreadyReleased {
                at_ms,
                messages: batch.released,
            });
        }
        let (users, confirm) = (batch.users, batch.confirm);
        let confirmations = if confirm {
            let kind = MailKind::RegistrationConfirmation;
            queue(&tx, policy, kind, &users, Some(run), now_ms)?
        } else {
            0
        };
        let welcomes = queue(&tx, policy, MailKind::Welcome, &users, Some(run), now_ms)?;
        tx.execute(
            "UPDATE outbox_held SET released_at = ?2, released = ?3 WHERE run_id = ?1",
            params![run, now_ms, (confirmations + welcomes) as i64],
        )
        .map_err(q("releasing a held welcome batch"))?;
        tx.commit().map_err(q("committing a release"))?;
        Ok(Release::Queued {
            welcomes,
            confirmations,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    /// The clock these tests inject.
    const T0: i64 = 1_800_000_000_000;

    fn policy() -> OutboxPolicy {
        OutboxPolicy {
            max_welcome_per_run: 500,
            confirm_sync_created: false,
            message_domain: "example.com".into(),
        }
    }

    /// A store with users 1..=n, active, user `i` at `u{i}@x.example`.
    fn seeded(n: i64) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        for i in 1..=n {
            store
                .conn
                .execute(
                    "INSERT INTO users (id, login, title, email, email_norm, locale, status, \
                     origin, account_contacts, account_tickets, external_comments, grants, \
                     attributes, created_at, updated_at) VALUES (?1, 'u' || ?1, 'U', \
                     'u' || ?1 || '@x.example', 'u' || ?1 || '@x.example', 'cs', 'active', \
                     'sync', 0, 0, 0, '[]', '{}', 0, 0)",
                    [i],
                )
                .unwrap();
        }
        (dir, store)
    }

    fn welcome_all(store: &SqliteStore, n: i64, at: i64) -> u64 {
        queue(
            &store.conn,
            &policy(),
            MailKind::Welcome,
            &(1..=n),
            None,
            at,
        )
        .unwrap()
    }

    #[test]
    fn queued_mail_copies_the_recipient_and_has_a_message_id() {
        let (_d, mut s) = seeded(2);
        assert_eq!(welcome_all(&s, 2, T0), 2);
        let due = s.outbox_due(T0, 10).unwrap();
        assert_eq!(due.len(), 2);
        let e = &due[0];
        assert_eq!(
            (e.kind, e.user, e.recipient.as_str(), e.locale.as_str()),
            (MailKind::Welcome, UserId(1), "u1@x.example", "cs")
        );
        assert_eq!(
            (e.state, e.attempts, e.not_before_ms),
            (OutboxState::Queued, 0, T0)
        );
        let prefix = format!("<{}.", e.id);
        assert!(
            e.message_id.starts_with(&prefix) && e.message_id.ends_with("@example.com>"),
            "{}",
            e.message_id
        );
        assert_ne!(due[0].message_id, due[1].message_id);
        assert!(due[0].id < due[1].id);
    }

    #[test]
    fn a_user_is_welcomed_once_in_its_life() {
        let (_d, s) = seeded(2);
        assert_eq!(welcome_all(&s, 2, T0), 2);
        assert_eq!(welcome_all(&s, 2, T0 + 1), 0);
        let confirm = MailKind::RegistrationConfirmation;
        // Confirmations follow the same "not yet welcomed" rule.
        assert_eq!(
            queue(&s.conn, &policy(), confirm, &(1..=2), None, T0).unwrap(),
            0
        );
    }

    #[test]
    fn due_mail_waits_for_its_not_before_and_comes_in_order() {
        let (_d, mut s) = seeded(3);
        welcome_all(&s, 3, T0);
        let first = s.outbox_due(T0, 10).unwrap();
        let [a, b, c] = [first[0].id, first[1].id, first[2].id];
        assert!(s.outbox_claim(a, T0).unwrap());
        s.outbox_retry(a, "451 try later", T0 + 60_000, T0).unwrap();
        let ids = |v: Vec<OutboxEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(s.outbox_due(T0, 10).unwrap()), vec![b, c]);
        assert_eq!(ids(s.outbox_due(T0, 1).unwrap()), vec![b]);
        assert_eq!(ids(s.outbox_due(T0 + 60_000, 10).unwrap()), vec![b, c, a]);
        let retried = s.outbox_due(T0 + 60_000, 10).unwrap().pop().unwrap();
        assert_eq!(
            (retried.attempts, retried.last_error.as_deref()),
            (1, Some("451 try later"))
        );
    }

    #[test]
    fn a_claim_is_taken_once() {
        let (_d, mut s) = seeded(1);
        welcome_all(&s, 1, T0);
        let id = s.outbox_due(T0, 1).unwrap()[0].id;
        assert!(s.outbox_claim(id, T0).unwrap());
        assert!(!s.outbox_claim(id, T0).unwrap(), "claimed twice");
        assert!(s.outbox_due(T0, 10).unwrap().is_empty());
        assert!(!s.outbox_claim(id + 1000, T0).unwrap());
    }

    #[test]
    fn sent_and_failed_move_only_claimed_mail() {
        let (_d, mut s) = seeded(2);
        welcome_all(&s, 2, T0);
        let due = s.outbox_due(T0, 10).unwrap();
        let (a, b) = (due[0].id, due[1].id);
        // Not claimed: marking it sent is refused, naming its state.
        let e = s.outbox_sent(a, T0).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("outbox message {a} is queued, not sending")
        );
        assert!(s
            .outbox_sent(999, T0)
            .unwrap_err()
            .to_string()
            .contains("not in the outbox"));
        s.outbox_claim(a, T0).unwrap();
        s.outbox_sent(a, T0 + 5).unwrap();
        assert!(s.outbox_sent(a, T0 + 6).is_err(), "sent twice");
        s.outbox_claim(b, T0).unwrap();
        s.outbox_failed(b, "550 no such user", T0 + 7).unwrap();
        assert!(s.outbox_retry(b, "x", T0, T0).is_err());
        let counts = s.outbox_counts().unwrap();
        let expected: BTreeMap<String, u64> = [
            ("cancelled", 0),
            ("failed", 1),
            ("queued", 0),
            ("sending", 0),
            ("sent", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(counts, expected);
        let failures = s.outbox_failures(10).unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (
                failures[0].id,
                failures[0].attempts,
                failures[0].last_error.as_deref()
            ),
            (b, 1, Some("550 no such user"))
        );
    }

    #[test]
    fn failures_come_latest_first_up_to_the_limit() {
        let (_d, mut s) = seeded(3);
        welcome_all(&s, 3, T0);
        let ids: Vec<i64> = s.outbox_due(T0, 10).unwrap().iter().map(|e| e.id).collect();
        for (i, id) in ids.iter().enumerate() {
            s.outbox_claim(*id, T0).unwrap();
            s.outbox_failed(*id, &format!("550 #{i}"), T0 + i as i64)
                .unwrap();
        }
        let got: Vec<i64> = s.outbox_failures(2).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(got, vec![ids[2], ids[1]]);
    }

    #[test]
    fn mail_left_sending_by_a_dead_process_is_queued_again() {
        let (_d, mut s) = seeded(2);
        welcome_all(&s, 2, T0);
        let due = s.outbox_due(T0, 10).unwrap();
        s.outbox_claim(due[0].id, T0).unwrap();
        assert_eq!(s.outbox_requeue_sending(T0 + 10).unwrap(), 1);
        let again = s.outbox_due(T0 + 10, 10).unwrap();
        assert_eq!(again.len(), 2);
        let e = again.iter().find(|e| e.id == due[0].id).unwrap();
        assert_eq!(
            (e.state, e.attempts, e.updated_ms),
            (OutboxState::Queued, 1, T0 + 10)
        );
        assert!(e
            .last_error
            .as_deref()
            .unwrap()
            .contains("may have been delivered"));
        assert_eq!(e.message_id, due[0].message_id, "the same Message-ID");
        assert_eq!(s.outbox_requeue_sending(T0 + 20).unwrap(), 0);
    }

    #[test]
    fn cancelling_leaves_claimed_and_sent_mail_alone() {
        let (_d, mut s) = seeded(1);
        welcome_all(&s, 1, T0);
        let confirm = MailKind::RegistrationConfirmation;
        s.conn
            .execute("UPDATE users SET welcome_queued_at = NULL", [])
            .unwrap();
        queue(&s.conn, &policy(), confirm, &(1..=1), None, T0).unwrap();
        let due = s.outbox_due(T0, 10).unwrap();
        s.outbox_claim(due[0].id, T0).unwrap();
        assert_eq!(cancel_queued(&s.conn, UserId(1), T0 + 1).unwrap(), 1);
        let counts = s.outbox_counts().unwrap();
        assert_eq!((counts["sending"], counts["cancelled"]), (1, 1));
    }

    #[test]
    fn a_held_batch_is_released_once() {
        let (_d, mut s) = seeded(3);
        s.conn
            .execute(
                "INSERT INTO outbox_held (run_id, source, first_user, last_user, users, confirm, \
                 held_at) VALUES (7, 'crm', 1, 3, 3, 1, ?1)",
                [T0],
            )
            .unwrap();
        // One of its users was disabled meanwhile: not mailed.
        s.conn
            .execute("UPDATE users SET status = 'disabled' WHERE id = 2", [])
            .unwrap();
        assert_eq!(
            s.outbox_release(8, &policy(), T0).unwrap(),
            Release::NoBatch
        );
        assert_eq!(
            s.outbox_release(7, &policy(), T0 + 1).unwrap(),
            Release::Queued {
                welcomes: 2,
                confirmations: 2
            }
        );
        assert_eq!(
            s.outbox_release(7, &policy(), T0 + 2).unwrap(),
            Release::AlreadyReleased {
                at_ms: T0 + 1,
                messages: 4
            }
        );
        let due = s.outbox_due(T0 + 1, 10).unwrap();
        let kinds: Vec<(MailKind, i64, Option<i64>)> =
            due.iter().map(|e| (e.kind, e.user.0, e.run)).collect();
        let c = MailKind::RegistrationConfirmation;
        let w = MailKind::Welcome;
        assert_eq!(
            kinds,
            vec![
                (c, 1, Some(7)),
                (c, 3, Some(7)),
                (w, 1, Some(7)),
                (w, 3, Some(7))
            ]
        );
        let held = s.outbox_held().unwrap();
        assert_eq!(
            (held[0].released_ms, held[0].released),
            (Some(T0 + 1), Some(4))
        );
        // The store is still a store: the trait object reaches the outbox.
        let dyn_store: &mut dyn Store = &mut s;
        assert_eq!(dyn_store.outbox_counts().unwrap()["queued"], 4);
    }
}
