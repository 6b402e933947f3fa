-- Policies and subscriptions: versioned policies (each change has an effective time), customer
-- regions for tax, discounts, credit notes, and the invoice fields of the invoice arithmetic
-- (tax exemption and region, prepaid credit applied, amount due, the cancelling credit note).
--
-- The policies table keeps mirroring the latest version of each policy (name, currency, fee,
-- rules), so what watches it (the balance triggers of 00004) still sees every change; the
-- versions live in policy_versions.

-- +goose Up

CREATE TABLE policy_versions (
    name           TEXT NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    effective_from INTEGER,                        -- NULL: since ever
    currency       TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    fee            TEXT NOT NULL DEFAULT '0',
    fee_interval   TEXT NOT NULL DEFAULT 'monthly' CHECK (fee_interval IN ('monthly', 'yearly')),
    fee_timing     TEXT NOT NULL DEFAULT 'arrears' CHECK (fee_timing IN ('advance', 'arrears')),
    included       TEXT NOT NULL DEFAULT '{}',     -- JSON object: rule type or meter → decimal text
    rules          TEXT NOT NULL DEFAULT '[]',     -- JSON array of {"type", "spec"}
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

INSERT INTO policy_versions (name, version, effective_from, currency, description, fee, rules, created_at)
SELECT name, 1, NULL, currency, description, fee, rules, CAST(strftime('%s', 'now') AS INTEGER) FROM policies;

-- A new or changed version can move prices: every prepaid balance state goes stale (see 00004).
-- +goose StatementBegin
CREATE TRIGGER balance_burn_policy_version_insert AFTER INSERT ON policy_versions
BEGIN
    UPDATE balance_burn SET changes = changes + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_policy_version_update AFTER UPDATE ON policy_versions
BEGIN
    UPDATE balance_burn SET changes = changes + 1;
END;
-- +goose StatementEnd

ALTER TABLE customers ADD COLUMN region TEXT NOT NULL DEFAULT '';

CREATE TABLE discounts (
    id          INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    scope       TEXT NOT NULL CHECK (scope IN ('line', 'rule', 'invoice')),
    rule_type   TEXT NOT NULL DEFAULT '',
    resource_id TEXT NOT NULL DEFAULT '',
    percent     TEXT NOT NULL DEFAULT '0',
    amount      TEXT NOT NULL DEFAULT '0',
    currency    TEXT NOT NULL DEFAULT '',
    start_at    INTEGER NOT NULL,
    end_at      INTEGER,
    reason      TEXT NOT NULL DEFAULT '',
    CHECK (end_at IS NULL OR end_at > start_at)
);
CREATE INDEX discounts_customer ON discounts (customer_id, start_at);

-- A credit note cancels one voided invoice; its number comes from its own series in
-- invoice_series (a key distinct from the invoices' series), bumped in the voiding transaction.
CREATE TABLE credit_notes (
    id          INTEGER PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    invoice_id  INTEGER NOT NULL UNIQUE REFERENCES invoices (id),
    customer_id TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    subtotal    TEXT NOT NULL,
    tax_rate    TEXT NOT NULL,
    tax         TEXT NOT NULL,
    total       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credit_notes_customer ON credit_notes (customer_id, id);

ALTER TABLE invoices ADD COLUMN credit_note TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN tax_exempt INTEGER NOT NULL DEFAULT 0 CHECK (tax_exempt IN (0, 1));
ALTER TABLE invoices ADD COLUMN tax_region TEXT NOT NULL DEFAULT '';
ALTER TABLE invoices ADD COLUMN credit_applied TEXT NOT NULL DEFAULT '0';
ALTER TABLE invoices ADD COLUMN amount_due TEXT NOT NULL DEFAULT '0';

-- +goose Down
ALTER TABLE invoices DROP COLUMN amount_due;
ALTER TABLE invoices DROP COLUMN credit_applied;
ALTER TABLE invoices DROP COLUMN tax_region;
ALTER TABLE invoices DROP COLUMN tax_exempt;
ALTER TABLE invoices DROP COLUMN credit_note;
DROP TABLE credit_notes;
DROP TABLE discounts;
ALTER TABLE customers DROP COLUMN region;
DROP TRIGGER balance_burn_policy_version_update;
DROP TRIGGER balance_burn_policy_version_insert;
DROP TABLE policy_versions;
