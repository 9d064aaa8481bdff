-- Liaison store: set-password tokens (SPEC §4). `users.password_hash` (an
-- Argon2id PHC string) exists since version 1. A token is stored only as the
-- hex SHA-256 of its text; it is good once, until it expires, and setting the
-- user's password by any means revokes it.
CREATE TABLE password_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,           -- ms since the Unix epoch
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,                    -- redeemed (the password was set with it)
    revoked_at INTEGER                     -- made void by another password set
) WITHOUT ROWID;
-- A user's open tokens, revoked when a password is set.
CREATE INDEX password_tokens_open ON password_tokens (user_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;
