-- Liaison store, version 7: registrations made by an operator (`users
-- register`), accounts linked to a user directly, and who did what.

-- Accounts linked to a user directly (a registration, an admin), not through
-- a contact: a registered or manual user may have no contact through which
-- its accounts are found. One row per link; sync never writes here, and the
-- user's accounts are the union of these and its linked contacts'.
CREATE TABLE user_accounts (
    user_id    INTEGER NOT NULL,                  -- users.id
    account_id TEXT NOT NULL,                     -- accounts.id
    actor      TEXT,                              -- who linked it
    linked_at  INTEGER NOT NULL,                  -- ms since the Unix epoch
    PRIMARY KEY (user_id, account_id)
) WITHOUT ROWID;
-- `users list --account ID`: the users an account is linked to directly.
CREATE INDEX user_accounts_account ON user_accounts (account_id);

-- Who made a journal entry: the `--actor` of an admin write (default the OS
-- user); NULL for a sync run's entries (their run and source say it).
ALTER TABLE journal ADD COLUMN actor TEXT;

-- When the user's last registration confirmation was queued; NULL: never.
-- A re-registration within `registration.cooldown` of it queues none.
ALTER TABLE users ADD COLUMN confirmation_queued_at INTEGER;
