-- Liaison store, version 9: what the command-line administration (`users
-- add`, `edit`, `unlink`, `delete`) needs sync to respect.

-- The fields an admin set on a `sync` user that none of its contacts gives,
-- as a JSON array of SPEC §1 field names (`attributes.KEY` for one
-- attribute); NULL: none. Sync keeps them as they are. (Users of other
-- origins keep every field no contact gives without being listed.)
ALTER TABLE users ADD COLUMN admin_fields TEXT;

-- Accounts an admin unlinked a user from (`users unlink LOGIN --account ID`):
-- sync does not link that user to the account's contacts again, until an
-- admin links one (`users edit --link-contact` or `--link-account`).
CREATE TABLE account_unlinks (
    user_id    INTEGER NOT NULL,                  -- users.id
    account_id TEXT NOT NULL,
    actor      TEXT,
    at         INTEGER NOT NULL,                  -- ms since the Unix epoch
    PRIMARY KEY (user_id, account_id)
) WITHOUT ROWID;

-- Contacts an admin took out of sync: unlinked from their user by hand
-- (`users edit --unlink-contact`), or whose user an admin deleted. Sync
-- leaves their records alone (no link, no new user) until an admin links
-- the contact again (`users edit --link-contact`, `users add --from-contact`).
CREATE TABLE contact_holds (
    source     TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    user_id    INTEGER NOT NULL,                  -- the user it was taken from (kept when deleted)
    reason     TEXT NOT NULL CHECK (reason = 'unlink' OR reason = 'delete'),
    actor      TEXT,
    at         INTEGER NOT NULL,
    PRIMARY KEY (source, contact_id)
) WITHOUT ROWID;
