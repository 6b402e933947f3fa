-- Policies and subscriptions: versioned policies (each change has an effective time), discounts,
-- credit notes, and the invoice fields of the invoice arithmetic (tax exemption and region,
-- prepaid credit applied, amount due, the cancelling credit note).
--
-- policy_versions replaces policies: the versions of a policy share its name, and the latest one
-- is what Feed.Policies returns. Existing policies become their version 1, effective since ever.

-- +goose Up

CREATE TABLE policy_versions (
    name           text NOT NULL,
    version        integer NOT NULL CHECK (version >= 1),
    effective_from timestamptz,                     -- NULL: since ever
    currency       text NOT NULL,
    description    text NOT NULL DEFAULT '',
    fee            numeric NOT NULL DEFAULT 0,
    fee_interval   text NOT NULL DEFAULT 'monthly' CHECK (fee_interval IN ('monthly', 'yearly')),
    fee_timing     text NOT NULL DEFAULT 'arrears' CHECK (fee_timing IN ('advance', 'arrears')),
    included       jsonb NOT NULL DEFAULT '{}',     -- rule type or meter → decimal text
    rules          jsonb NOT NULL DEFAULT '[]',     -- array of {"type", "spec"}
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (name, version),
    CHECK (version = 1 OR effective_from IS NOT NULL)
);

INSERT INTO policy_versions (name, version, effective_from, currency, description, fee, rules, created_at)
SELECT name, 1, NULL, currency, description, fee, rules, date_trunc('second', now()) FROM policies;
DROP TABLE policies;

-- A new or changed version can move prices: every prepaid balance state goes stale (see 00004).
-- +goose StatementBegin
CREATE FUNCTION balance_burn_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE balance_burn SET changes = changes + 1;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_policy_version AFTER INSERT OR UPDATE ON policy_versions
FOR EACH ROW EXECUTE FUNCTION balance_burn_all();

CREATE TABLE discounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    scope       text NOT NULL CHECK (scope IN ('line', 'rule', 'invoice')),
    rule_type   text NOT NULL DEFAULT '',
    resource_id text NOT NULL DEFAULT '',
    percent     numeric NOT NULL DEFAULT 0,
    amount      numeric NOT NULL DEFAULT 0,
    currency    text NOT NULL DEFAULT '',
    start_at    timestamptz NOT NULL,
    end_at      timestamptz,
    reason      text NOT NULL DEFAULT '',
    CHECK (end_at IS NULL OR end_at > start_at)
);
CREATE INDEX discounts_customer ON discounts (customer_id, start_at);

-- A credit note cancels one voided invoice; its number comes from its own series in
-- invoice_series (a key distinct from the invoices' series), bumped in the voiding transaction,
-- so credit-note numbers are gapless like invoice numbers.
CREATE TABLE credit_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number      text NOT NULL UNIQUE,
    invoice_id  bigint NOT NULL UNIQUE REFERENCES invoices (id),
    customer_id text NOT NULL,
    issued_at   timestamptz NOT NULL,
    subtotal    numeric NOT NULL,
    tax_rate    numeric NOT NULL,
    tax         numeric NOT NULL,
    total       numeric NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX credit_notes_customer ON credit_notes (customer_id, id);

ALTER TABLE invoices
    ADD COLUMN credit_note    text NOT NULL DEFAULT '',
    ADD COLUMN tax_exempt     boolean NOT NULL DEFAULT false,
    ADD COLUMN tax_region     text NOT NULL DEFAULT '',
    ADD COLUMN credit_applied numeric NOT NULL DEFAULT 0,
    ADD COLUMN amount_due     numeric NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE invoices
    DROP COLUMN amount_due,
    DROP COLUMN credit_applied,
    DROP COLUMN tax_region,
    DROP COLUMN tax_exempt,
    DROP COLUMN credit_note;
DROP TABLE credit_notes;
DROP TABLE discounts;
DROP TRIGGER balance_burn_policy_version ON policy_versions;
DROP FUNCTION balance_burn_all();
CREATE TABLE policies (
    name        text PRIMARY KEY,
    currency    text NOT NULL,
    description text NOT NULL DEFAULT '',
    fee         numeric NOT NULL DEFAULT 0,
    rules       jsonb NOT NULL DEFAULT '[]'
);
INSERT INTO policies (name, currency, description, fee, rules)
SELECT DISTINCT ON (name) name, currency, description, fee, rules FROM policy_versions ORDER BY name, version DESC;
DROP TABLE policy_versions;
