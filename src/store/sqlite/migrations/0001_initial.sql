-- Liaison store, version 1: users, contact links (anchors), retired logins,
-- run history and the journal.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_user_id', 0);

CREATE TABLE users (
    id                INTEGER PRIMARY KEY,      -- allocated in creation order, never reused
    login             TEXT NOT NULL,
    title             TEXT NOT NULL,
    description       TEXT,
    email             TEXT,
    email_norm        TEXT,                     -- lower-cased, for correlation
    locale            TEXT NOT NULL,
    -- The checks are OR chains, not IN lists: SQLite evaluates an IN list in a
    -- CHECK through a temporary table, which cost 2.3 s per million inserts.
    status            TEXT NOT NULL CHECK (status = 'pending' OR status = 'active'
                                           OR status = 'disabled' OR status = 'rejected'),
    disabled_by       TEXT CHECK (disabled_by = 'sync' OR disabled_by = 'admin'),
    disabled_at       INTEGER,
    origin            TEXT NOT NULL CHECK (origin = 'sync' OR origin = 'registration'
                                           OR origin = 'manual'),
    account_contacts  INTEGER NOT NULL,
    account_tickets   INTEGER NOT NULL,
    external_comments INTEGER NOT NULL,
    grants            TEXT NOT NULL,            -- JSON array
    attributes        TEXT NOT NULL,            -- JSON object
    password_hash     TEXT,                     -- Argon2id PHC string
    created_at        INTEGER NOT NULL,         -- ms since the Unix epoch
    updated_at        INTEGER NOT NULL
);
-- A named index rather than a UNIQUE constraint, so that a bulk creation can
-- rebuild it once instead of inserting a million logins in random order.
CREATE UNIQUE INDEX users_login ON users (login);
CREATE INDEX users_email_norm ON users (email_norm);
-- Sync-disabled users waiting for deprovision.delete_after: few, found fast.
CREATE INDEX users_sync_disabled ON users (disabled_at)
    WHERE status = 'disabled' AND disabled_by = 'sync';

-- One row per (source, contact id): the anchor, whether it is linked, and the
-- record as last read with its fingerprint (a digest of the source row) and
-- content digest (of the contact it mapped to).
CREATE TABLE contacts (
    source            TEXT NOT NULL,
    contact_id        TEXT NOT NULL,
    user_id           INTEGER NOT NULL,
    linked            INTEGER NOT NULL,
    fingerprint       INTEGER NOT NULL,
    content           INTEGER NOT NULL,
    name              TEXT NOT NULL,
    email             TEXT NOT NULL,
    phone             TEXT,
    account_id        TEXT,
    account_name      TEXT,
    login             TEXT,
    description       TEXT,
    locale            TEXT,
    account_contacts  INTEGER,
    account_tickets   INTEGER,
    external_comments INTEGER,
    grants            TEXT NOT NULL,
    attributes        TEXT NOT NULL,
    PRIMARY KEY (source, contact_id)
) WITHOUT ROWID;
CREATE INDEX contacts_user ON contacts (user_id);

-- Logins of deleted users: never handed out again.
CREATE TABLE retired_logins (
    login TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status      TEXT NOT NULL,
    counts      TEXT NOT NULL,                 -- JSON
    errors      INTEGER NOT NULL
);

CREATE TABLE journal (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER,
    source  TEXT,
    user_id INTEGER NOT NULL,
    login   TEXT NOT NULL,
    at      INTEGER NOT NULL,
    action  TEXT NOT NULL,                     -- create update link unlink enable disable delete
    field   TEXT,
    old     TEXT,                              -- JSON
    new     TEXT                               -- JSON
);
CREATE INDEX journal_user ON journal (user_id);
