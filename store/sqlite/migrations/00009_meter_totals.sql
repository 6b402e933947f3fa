-- Meter totals imported from a file (bilean import meters), for clouds without Gnocchi: one meter
-- aggregated over [start_at, end_at) (Unix seconds, half-open) for one customer and resource,
-- keyed by the id the file gives, so a re-import is a no-op. The quantity is decimal text that
-- keeps its scale. A total inserted or removed changes what the customer owes: the triggers bump
-- its balance change counter (balance_burn.changes), as the usage_records triggers of 00004 do.

-- +goose Up
CREATE TABLE meter_totals (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL REFERENCES customers (id),
    meter         TEXT NOT NULL CHECK (meter <> ''),
    resource_id   TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL DEFAULT '',
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL CHECK (end_at > start_at),
    quantity      TEXT NOT NULL,
    unit          TEXT NOT NULL DEFAULT '',
    aggregation   TEXT NOT NULL DEFAULT '',
    attributes    TEXT NOT NULL DEFAULT '{}',
    source        TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX meter_totals_customer ON meter_totals (customer_id, start_at);

-- +goose StatementBegin
CREATE TRIGGER balance_burn_meter_insert AFTER INSERT ON meter_totals
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_meter_delete AFTER DELETE ON meter_totals
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT OLD.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = OLD.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = OLD.customer_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER balance_burn_meter_delete;
DROP TRIGGER balance_burn_meter_insert;
DROP TABLE meter_totals;
