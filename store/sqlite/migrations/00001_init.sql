-- Bilean embedded store, initial schema.
--
-- Conventions: times are INTEGER Unix seconds (UTC); an open end is NULL. Money and rates are TEXT
-- decimal strings written by github.com/govalues/decimal (never REAL). JSON columns hold TEXT.

-- +goose Up

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    currency   TEXT NOT NULL,
    timezone   TEXT NOT NULL DEFAULT '',
    contacts   TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    tax_rate   TEXT NOT NULL DEFAULT '0',
    tax_exempt INTEGER NOT NULL DEFAULT 0 CHECK (tax_exempt IN (0, 1)),
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    policy     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX customers_status ON customers (status, id);

CREATE TABLE policies (
    name        TEXT PRIMARY KEY,
    currency    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    fee         TEXT NOT NULL DEFAULT '0',
    rules       TEXT NOT NULL DEFAULT '[]'   -- JSON array of {"type", "spec"}
);

CREATE TABLE subscriptions (
    id          INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    policy      TEXT NOT NULL,
    start_at    INTEGER NOT NULL,
    end_at      INTEGER,
    CHECK (end_at IS NULL OR end_at > start_at)
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, start_at);

CREATE TABLE payments (
    id          INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    reference   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX payments_customer ON payments (customer_id, received_at);
-- A re-imported payment file must not double a payment.
CREATE UNIQUE INDEX payments_reference ON payments (customer_id, reference) WHERE reference <> '';

-- One row per chargeable object of a customer; key is the compact surrogate the ranges use.
CREATE TABLE resources (
    key         INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    resource_id TEXT NOT NULL,
    type        TEXT NOT NULL DEFAULT '',
    UNIQUE (customer_id, resource_id)
);

CREATE TABLE usage_records (
    id           INTEGER PRIMARY KEY,
    resource_key INTEGER NOT NULL REFERENCES resources (key),
    customer_id  TEXT NOT NULL,
    start_at     INTEGER NOT NULL,
    end_at       INTEGER,
    attributes   TEXT NOT NULL DEFAULT '{}',  -- JSON object of strings
    source       TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 1,
    settled      INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1)),
    CHECK (end_at IS NULL OR end_at > start_at),
    UNIQUE (resource_key, start_at)            -- also the index by resource
);
-- The feed reads unsettled records per customer; settled records drop out of this index. It covers
-- the feed's first query (which resources, and since when), so that query never reads the table.
CREATE INDEX usage_records_unsettled ON usage_records (customer_id, resource_key, start_at) WHERE settled = 0;

CREATE TABLE invoices (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('scheduled', 'interim')),
    status           TEXT NOT NULL CHECK (status IN ('draft', 'issued', 'void')),
    customer_id      TEXT NOT NULL REFERENCES customers (id),
    customer_name    TEXT NOT NULL DEFAULT '',
    currency         TEXT NOT NULL,
    period_start     INTEGER NOT NULL,
    period_end       INTEGER NOT NULL,
    issued_at        INTEGER NOT NULL,
    subtotal         TEXT NOT NULL,
    tax_rate         TEXT NOT NULL,
    tax              TEXT NOT NULL,
    total            TEXT NOT NULL,
    payments         TEXT NOT NULL,
    previous_balance TEXT NOT NULL,
    balance_due      TEXT NOT NULL,
    run_id           TEXT NOT NULL DEFAULT '',
    replaces         TEXT NOT NULL DEFAULT '',
    replaced_by      TEXT NOT NULL DEFAULT '',
    void_reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX invoices_customer ON invoices (customer_id, period_start);
-- At most one live scheduled invoice per customer and period.
CREATE UNIQUE INDEX invoices_one_live_scheduled ON invoices (customer_id, period_start)
    WHERE status <> 'void' AND kind = 'scheduled';

CREATE TABLE invoice_lines (
    invoice_id    INTEGER NOT NULL REFERENCES invoices (id),
    n             INTEGER NOT NULL,
    section       TEXT NOT NULL,
    resource_id   TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    policy        TEXT NOT NULL DEFAULT '',
    region        TEXT NOT NULL DEFAULT '',
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    seconds       INTEGER NOT NULL,
    quantity      TEXT NOT NULL,
    unit          TEXT NOT NULL DEFAULT '',
    unit_price    TEXT NOT NULL,
    amount        TEXT NOT NULL,
    attributes    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (invoice_id, n)
) WITHOUT ROWID;

-- A billed range says that [start_at, end_at) of one resource is charged (or credited) on one
-- invoice. Live (void = 0) ranges of the same resource and kind never overlap: the triggers below
-- refuse it, whoever writes the row.
CREATE TABLE billed_ranges (
    id           INTEGER PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    resource_key INTEGER NOT NULL REFERENCES resources (key),
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
    kind         TEXT NOT NULL CHECK (kind IN ('charge', 'credit')),
    start_at     INTEGER NOT NULL,
    end_at       INTEGER NOT NULL,
    void         INTEGER NOT NULL DEFAULT 0 CHECK (void IN (0, 1)),
    CHECK (end_at > start_at)
);
CREATE INDEX billed_ranges_live ON billed_ranges (resource_key, kind, start_at) WHERE void = 0;
CREATE INDEX billed_ranges_invoice ON billed_ranges (invoice_id);

-- The overlap check reads one index entry: live ranges of one resource and kind are disjoint, so
-- sorted by start they are sorted by end too, and if any live range overlaps NEW, the one with the
-- greatest start before NEW.end_at does. The error message carries the number of the invoice that
-- holds the conflicting range; the Go code turns it into *store.OverlapError.

-- +goose StatementBegin
CREATE TRIGGER billed_ranges_no_overlap_insert
BEFORE INSERT ON billed_ranges
WHEN NEW.void = 0
BEGIN
    SELECT RAISE(ABORT, 'bilean-overlap: ' || (SELECT number FROM invoices WHERE id = b.invoice_id))
    FROM (SELECT invoice_id, end_at
          FROM billed_ranges
          WHERE resource_key = NEW.resource_key AND kind = NEW.kind AND void = 0
            AND start_at < NEW.end_at
          ORDER BY start_at DESC
          LIMIT 1) AS b
    WHERE b.end_at > NEW.start_at;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER billed_ranges_no_overlap_update
BEFORE UPDATE OF void, start_at, end_at, kind, resource_key ON billed_ranges
WHEN NEW.void = 0
BEGIN
    SELECT RAISE(ABORT, 'bilean-overlap: ' || (SELECT number FROM invoices WHERE id = b.invoice_id))
    FROM (SELECT invoice_id, end_at
          FROM billed_ranges
          WHERE resource_key = NEW.resource_key AND kind = NEW.kind AND void = 0
            AND start_at < NEW.end_at AND id <> NEW.id
          ORDER BY start_at DESC
          LIMIT 1) AS b
    WHERE b.end_at > NEW.start_at;
END;
-- +goose StatementEnd

-- Gapless numbering: the counter is bumped inside the finalizing transaction.
CREATE TABLE invoice_series (
    series TEXT PRIMARY KEY,
    last   INTEGER NOT NULL
);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    mode         TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    status       TEXT NOT NULL,
    summary      TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE runs;
DROP TABLE invoice_series;
DROP TRIGGER billed_ranges_no_overlap_update;
DROP TRIGGER billed_ranges_no_overlap_insert;
DROP TABLE billed_ranges;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE usage_records;
DROP TABLE resources;
DROP TABLE payments;
DROP TABLE subscriptions;
DROP TABLE policies;
DROP TABLE customers;
