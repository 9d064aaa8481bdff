-- Liaison store, version 5 (the 4th entry until 0004_accounts lands, see
-- migrations.rs): the e-mail outbox, the held welcome batches of big runs,
-- and when each user's welcome was queued (once in its life).

-- One row per message to send. The recipient and locale are copied at queue
-- time; the Message-ID is made then too, so every attempt sends the same one.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,           -- allocated in queue order, never reused
    kind        TEXT NOT NULL CHECK (kind = 'welcome' OR kind = 'registration_confirmation'),
    user_id     INTEGER NOT NULL,              -- users.id (kept after the user is deleted)
    recipient   TEXT NOT NULL,
    locale      TEXT NOT NULL,
    not_before  INTEGER NOT NULL,              -- ms since the Unix epoch
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    state       TEXT NOT NULL CHECK (state = 'queued' OR state = 'sending' OR state = 'sent'
                                     OR state = 'failed' OR state = 'cancelled'),
    message_id  TEXT NOT NULL,
    run_id      INTEGER,                       -- runs.id of the run that queued it
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    sent_at     INTEGER
);
-- What the dispatcher sends next: queued rows only, in not-before order.
CREATE INDEX outbox_due ON outbox (not_before, id) WHERE state = 'queued';
-- A disabled, rejected or deleted user's queued mail, found to cancel it.
CREATE INDEX outbox_user_queued ON outbox (user_id) WHERE state = 'queued';
-- Counts by state (`mail status`, metrics) and the failures, from the index alone.
CREATE INDEX outbox_state ON outbox (state, updated_at);

-- A run that created more than mail.max_welcome_per_run users: one row
-- instead of their welcomes. Its users are the ids it allocated, first to
-- last (a run's new users get consecutive ids); `mail release RUN` queues them.
CREATE TABLE outbox_held (
    run_id        INTEGER PRIMARY KEY,         -- runs.id
    source        TEXT NOT NULL,
    first_user    INTEGER NOT NULL,
    last_user     INTEGER NOT NULL,
    users         INTEGER NOT NULL,
    confirm       INTEGER NOT NULL,            -- 1: registration confirmations held too
    held_at       INTEGER NOT NULL,
    released_at   INTEGER,
    released      INTEGER                      -- messages queued by the release
);

-- When the user's welcome was queued; NULL: never. Set once, so re-enabling
-- a user (or any later path) never queues a second one.
ALTER TABLE users ADD COLUMN welcome_queued_at INTEGER;
