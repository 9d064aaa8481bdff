-- Liaison store, version 8: each source's change cursor (SPEC §2 "Full reads,
-- change reads and cursors"), written in the transaction of the applied run
-- that read it, and when the source was last read in full.
CREATE TABLE source_cursors (
    source        TEXT PRIMARY KEY,
    cursor        TEXT,               -- the connector's opaque cursor; NULL: none
    read_with     INTEGER NOT NULL,   -- digest of the mapping and connector settings it was read with
    stored_at     INTEGER NOT NULL,   -- ms since the Unix epoch
    last_full_at  INTEGER             -- the last applied full read; NULL: none yet
) WITHOUT ROWID;
