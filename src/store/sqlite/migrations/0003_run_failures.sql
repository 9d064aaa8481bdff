-- Liaison store, version 3: why a run failed, as the run history keeps it for
-- `liaison status` and the daemon's readiness, and an index that finds each
-- source's latest runs without scanning the history.

ALTER TABLE runs ADD COLUMN failure TEXT;          -- what people read; NULL: no failure
ALTER TABLE runs ADD COLUMN failure_kind TEXT;     -- FailureKind::as_str
ALTER TABLE runs ADD COLUMN retryable INTEGER;     -- 0 or 1

CREATE INDEX runs_source_started ON runs (source, started_at);
