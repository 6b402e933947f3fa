-- Prepaid balances: burn states, the escalation (freeze) state, its audit trail, recharge notes.
--
-- balance_burn.changes is bumped by the triggers below in the same transaction as any change that
-- moves a customer's balance (a record opened, closed, changed, settled or removed; a payment; an invoice
-- issued or voided; a subscription; the customer's pricing; any policy version, see 00005). A
-- burn state computed from a snapshot taken when changes was N is stored with mark = N: it is
-- stale while changes > mark, so the balance jobs find it even when the listener's hook never ran.
--
-- Trigger records arrive by the million (COPY): their triggers are statement-level, with
-- transition tables, and bump each customer a statement touched once, in one set-based upsert.
-- The other tables change a row at a time and use row-level triggers.

-- +goose Up

CREATE TABLE balance_burn (
    customer_id text PRIMARY KEY,
    changes     bigint NOT NULL DEFAULT 0,
    mark        bigint NOT NULL DEFAULT -1,   -- changes when the state was computed; -1: never
    currency    text NOT NULL DEFAULT '',
    as_of       timestamptz,                  -- NULL until first computed
    settled     numeric NOT NULL DEFAULT 0,
    accrued     numeric NOT NULL DEFAULT 0,
    base        numeric NOT NULL DEFAULT 0,
    rate        numeric NOT NULL DEFAULT 0,   -- per hour, tax included, never rounded
    open_spans  integer NOT NULL DEFAULT 0
);

CREATE TABLE balance_freeze (
    customer_id text PRIMARY KEY REFERENCES customers (id),
    state       text NOT NULL CHECK (state IN ('warned', 'depleted', 'frozen')),
    warned_at   timestamptz,
    depleted_at timestamptz,
    frozen_at   timestamptz,
    action      text NOT NULL DEFAULT '',
    dry_run     boolean NOT NULL DEFAULT false,
    servers     text[] NOT NULL DEFAULT '{}'  -- servers Bilean stopped or suspended
);

CREATE TABLE balance_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    customer_id text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    dry_run     boolean NOT NULL DEFAULT false
);
CREATE INDEX balance_audit_customer ON balance_audit (customer_id, id);

CREATE TABLE recharge_notes (
    payment_id bigint PRIMARY KEY REFERENCES payments (id),
    note       text NOT NULL
);

-- balance_burn_bump bumps the counter of each named customer once, in customer order (two
-- transactions bumping the same customers lock their rows in the same order). PL/pgSQL rather
-- than SQL so that its plan is cached per session.
-- +goose StatementBegin
CREATE FUNCTION balance_burn_bump(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(ids) > 0 THEN
        INSERT INTO balance_burn AS b (customer_id, changes)
        SELECT DISTINCT id, 1 FROM unnest(ids) AS id WHERE id IS NOT NULL ORDER BY id
        ON CONFLICT (customer_id) DO UPDATE SET changes = b.changes + 1;
    END IF;
END;
$$;
-- +goose StatementEnd

-- balance_burn_keys bumps the customers of the resources with these keys. The keys are gathered
-- from the transition table first and looked up through the primary key: a join of the
-- transition table (whose size the planner cannot know) with resources would scan resources.
-- +goose StatementBegin
CREATE FUNCTION balance_burn_keys(keys bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(keys) > 0 THEN
        PERFORM balance_burn_bump(ARRAY(SELECT DISTINCT customer_id FROM resources WHERE key = ANY(keys)));
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION balance_burn_records_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_keys(ARRAY(SELECT DISTINCT resource_key FROM new_rows));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_records_inserted AFTER INSERT ON usage_records
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION balance_burn_records_inserted();

-- +goose StatementBegin
CREATE FUNCTION balance_burn_records_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_keys(ARRAY(
        SELECT DISTINCT n.resource_key
        FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
        WHERE n.end_at IS DISTINCT FROM o.end_at OR n.attributes <> o.attributes
           OR n.settled <> o.settled OR n.version <> o.version));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_records_updated AFTER UPDATE ON usage_records
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION balance_burn_records_updated();

-- A record removed (the listener drops an unsettled span that newer events contradict).
-- +goose StatementBegin
CREATE FUNCTION balance_burn_records_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_keys(ARRAY(SELECT DISTINCT resource_key FROM old_rows));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_records_deleted AFTER DELETE ON usage_records
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION balance_burn_records_deleted();

-- Row-level: payments, invoices, subscriptions (a subscription moved between customers bumps
-- both).
-- +goose StatementBegin
CREATE FUNCTION balance_burn_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM balance_burn_bump(ARRAY[OLD.customer_id]);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM balance_burn_bump(ARRAY[OLD.customer_id, NEW.customer_id]);
    ELSE
        PERFORM balance_burn_bump(ARRAY[NEW.customer_id]);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER balance_burn_payment AFTER INSERT ON payments
FOR EACH ROW EXECUTE FUNCTION balance_burn_row();
CREATE TRIGGER balance_burn_invoice_insert AFTER INSERT ON invoices
FOR EACH ROW EXECUTE FUNCTION balance_burn_row();
CREATE TRIGGER balance_burn_invoice_update AFTER UPDATE OF status, total ON invoices
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.total IS DISTINCT FROM NEW.total)
EXECUTE FUNCTION balance_burn_row();
CREATE TRIGGER balance_burn_subscription AFTER INSERT OR UPDATE OR DELETE ON subscriptions
FOR EACH ROW EXECUTE FUNCTION balance_burn_row();

-- +goose StatementBegin
CREATE FUNCTION balance_burn_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_bump(ARRAY[NEW.id]);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_customer AFTER UPDATE OF policy, tax_rate, tax_exempt, currency ON customers
FOR EACH ROW WHEN (OLD.policy IS DISTINCT FROM NEW.policy OR OLD.tax_rate IS DISTINCT FROM NEW.tax_rate
    OR OLD.tax_exempt IS DISTINCT FROM NEW.tax_exempt OR OLD.currency IS DISTINCT FROM NEW.currency)
EXECUTE FUNCTION balance_burn_customer();

-- +goose Down
DROP TRIGGER balance_burn_customer ON customers;
DROP FUNCTION balance_burn_customer();
DROP TRIGGER balance_burn_subscription ON subscriptions;
DROP TRIGGER balance_burn_invoice_update ON invoices;
DROP TRIGGER balance_burn_invoice_insert ON invoices;
DROP TRIGGER balance_burn_payment ON payments;
DROP FUNCTION balance_burn_row();
DROP TRIGGER balance_burn_records_deleted ON usage_records;
DROP FUNCTION balance_burn_records_deleted();
DROP TRIGGER balance_burn_records_updated ON usage_records;
DROP FUNCTION balance_burn_records_updated();
DROP TRIGGER balance_burn_records_inserted ON usage_records;
DROP FUNCTION balance_burn_records_inserted();
DROP FUNCTION balance_burn_keys(bigint[]);
DROP FUNCTION balance_burn_bump(text[]);
DROP TABLE recharge_notes;
DROP TABLE balance_audit;
DROP TABLE balance_freeze;
DROP TABLE balance_burn;
