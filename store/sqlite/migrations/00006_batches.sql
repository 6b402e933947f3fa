-- Shared runs: a scheduled run of every customer is split into batches that workers claim,
-- heartbeat and finish (see store.Batches). The embedded store has one writer, so a claim is a
-- plain read-write transaction; the table exists so that `bilean runs list|show` reports the same
-- progress on both stores.

-- +goose Up
ALTER TABLE runs ADD COLUMN key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX runs_one_open_shared ON runs (key) WHERE key <> '' AND status = 'running';

CREATE TABLE run_batches (
    run_id       TEXT NOT NULL REFERENCES runs (id),
    n            INTEGER NOT NULL,
    customers    TEXT NOT NULL,             -- JSON array of customer ids
    size         INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'done')),
    worker       TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_at   INTEGER,
    heartbeat_at INTEGER,                   -- Unix milliseconds
    finished_at  INTEGER,
    invoices     INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, n)
) WITHOUT ROWID;
CREATE INDEX invoices_run ON invoices (run_id);

-- +goose Down
DROP INDEX invoices_run;
DROP TABLE run_batches;
DROP INDEX runs_one_open_shared;
ALTER TABLE runs DROP COLUMN key;
