-- Meter totals imported from a file (bilean import meters), for clouds without Gnocchi: one meter
-- aggregated over [start_at, end_at) (whole seconds, half-open) for one customer and resource,
-- keyed by the id the file gives, so a re-import is a no-op. The quantity is numeric, which keeps
-- the scale it was written with. Totals inserted (COPY included) or removed change what their
-- customers owe: statement-level triggers bump each customer's balance change counter once per
-- statement through balance_burn_bump (00004).

-- +goose Up
CREATE TABLE meter_totals (
    id            text PRIMARY KEY,
    customer_id   text NOT NULL REFERENCES customers (id),
    meter         text NOT NULL CHECK (meter <> ''),
    resource_id   text NOT NULL DEFAULT '',
    resource_type text NOT NULL DEFAULT '',
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL CHECK (end_at > start_at),
    quantity      numeric NOT NULL CHECK (quantity >= 0),
    unit          text NOT NULL DEFAULT '',
    aggregation   text NOT NULL DEFAULT '',
    attributes    jsonb NOT NULL DEFAULT '{}',
    source        text NOT NULL DEFAULT ''
);
CREATE INDEX meter_totals_customer ON meter_totals (customer_id, start_at);

-- +goose StatementBegin
CREATE FUNCTION balance_burn_meters_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_bump(ARRAY(SELECT DISTINCT customer_id FROM new_rows));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_meters_inserted AFTER INSERT ON meter_totals
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION balance_burn_meters_inserted();

-- +goose StatementBegin
CREATE FUNCTION balance_burn_meters_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM balance_burn_bump(ARRAY(SELECT DISTINCT customer_id FROM old_rows));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER balance_burn_meters_deleted AFTER DELETE ON meter_totals
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION balance_burn_meters_deleted();

-- +goose Down
DROP TRIGGER balance_burn_meters_deleted ON meter_totals;
DROP FUNCTION balance_burn_meters_deleted();
DROP TRIGGER balance_burn_meters_inserted ON meter_totals;
DROP FUNCTION balance_burn_meters_inserted();
DROP TABLE meter_totals;
