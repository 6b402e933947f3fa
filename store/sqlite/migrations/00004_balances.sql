-- Prepaid balances: burn states, the escalation (freeze) state, its audit trail, recharge notes.
--
-- balance_burn.changes is bumped by the triggers below in the same transaction as any change that
-- moves a customer's balance (a record opened, closed or settled; a payment; an invoice issued or
-- voided; a subscription; the customer's pricing; any policy). A burn state computed from a
-- snapshot taken when changes was N is stored with mark = N: it is stale while changes > mark, so
-- the balance jobs find it even when the listener's hook never ran. The triggers insert a missing
-- row with INSERT … WHERE NOT EXISTS, not INSERT OR IGNORE: an outer upsert's conflict policy
-- would override the trigger's OR IGNORE and fail the statement.

-- +goose Up

CREATE TABLE balance_burn (
    customer_id TEXT PRIMARY KEY,
    changes     INTEGER NOT NULL DEFAULT 0,
    mark        INTEGER NOT NULL DEFAULT -1,  -- changes when the state was computed; -1: never
    currency    TEXT NOT NULL DEFAULT '',
    as_of       INTEGER,                      -- NULL until first computed
    settled     TEXT NOT NULL DEFAULT '0',
    accrued     TEXT NOT NULL DEFAULT '0',
    base        TEXT NOT NULL DEFAULT '0',
    rate        TEXT NOT NULL DEFAULT '0',    -- per hour, tax included, never rounded
    open_spans  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE balance_freeze (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    state       TEXT NOT NULL CHECK (state IN ('warned', 'depleted', 'frozen')),
    warned_at   INTEGER,
    depleted_at INTEGER,
    frozen_at   INTEGER,
    action      TEXT NOT NULL DEFAULT '',
    dry_run     INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
    servers     TEXT NOT NULL DEFAULT '[]'    -- JSON array of server ids Bilean stopped/suspended
) WITHOUT ROWID;

CREATE TABLE balance_audit (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    dry_run     INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1))
);
CREATE INDEX balance_audit_customer ON balance_audit (customer_id, id);

-- While a row exists here, the per-row record triggers stand aside: the listener's batch writer
-- inserts it at the start of its transaction, bumps each changed customer once at the end and
-- deletes it before commit, so no other transaction ever sees it (one row per event would cost
-- the listener a tenth of its throughput).
CREATE TABLE balance_burn_pause (one INTEGER PRIMARY KEY CHECK (one = 1));

CREATE TABLE recharge_notes (
    payment_id INTEGER PRIMARY KEY REFERENCES payments (id),
    note       TEXT NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER balance_burn_record_insert AFTER INSERT ON usage_records
WHEN NOT EXISTS (SELECT 1 FROM balance_burn_pause)
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_record_update AFTER UPDATE OF end_at, attributes, settled, version ON usage_records
WHEN NOT EXISTS (SELECT 1 FROM balance_burn_pause)
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_payment_insert AFTER INSERT ON payments
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_invoice_insert AFTER INSERT ON invoices
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_invoice_update AFTER UPDATE OF status, total ON invoices
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_subscription_insert AFTER INSERT ON subscriptions
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_subscription_update AFTER UPDATE ON subscriptions
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id IN (OLD.customer_id, NEW.customer_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_customer_update AFTER UPDATE OF policy, tax_rate, tax_exempt, currency ON customers
WHEN OLD.policy IS NOT NEW.policy OR OLD.tax_rate IS NOT NEW.tax_rate
  OR OLD.tax_exempt IS NOT NEW.tax_exempt OR OLD.currency IS NOT NEW.currency
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.id;
END;
-- +goose StatementEnd

-- A policy change can move every price: every state goes stale.
-- +goose StatementBegin
CREATE TRIGGER balance_burn_policy_insert AFTER INSERT ON policies
BEGIN
    UPDATE balance_burn SET changes = changes + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_policy_update AFTER UPDATE ON policies
WHEN OLD.rules IS NOT NEW.rules OR OLD.fee IS NOT NEW.fee OR OLD.currency IS NOT NEW.currency
BEGIN
    UPDATE balance_burn SET changes = changes + 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER balance_burn_policy_update;
DROP TRIGGER balance_burn_policy_insert;
DROP TRIGGER balance_burn_customer_update;
DROP TRIGGER balance_burn_subscription_update;
DROP TRIGGER balance_burn_subscription_insert;
DROP TRIGGER balance_burn_invoice_update;
DROP TRIGGER balance_burn_invoice_insert;
DROP TRIGGER balance_burn_payment_insert;
DROP TRIGGER balance_burn_record_update;
DROP TRIGGER balance_burn_record_insert;
DROP TABLE recharge_notes;
DROP TABLE balance_burn_pause;
DROP TABLE balance_audit;
DROP TABLE balance_freeze;
DROP TABLE balance_burn;
