-- The overlap triggers of 00001 built their RAISE message from a subquery. SQLite accepts that
-- since 3.42, but the sqlite3 shipped with Debian 12 (3.40) and Python refuse to open such a
-- file ("malformed database schema"), so an operator could not inspect the store with the
-- system tools. The triggers now raise a constant message; Bilean names the invoice that holds
-- the range by looking it up after the refused transaction rolled back (driver.NameOverlap).

-- +goose Up
DROP TRIGGER billed_ranges_no_overlap_insert;
DROP TRIGGER billed_ranges_no_overlap_update;

-- +goose StatementBegin
CREATE TRIGGER billed_ranges_no_overlap_insert
BEFORE INSERT ON billed_ranges
WHEN NEW.void = 0 AND EXISTS (
    SELECT 1 FROM (SELECT end_at
                   FROM billed_ranges
                   WHERE resource_key = NEW.resource_key AND kind = NEW.kind AND void = 0
                     AND start_at < NEW.end_at
                   ORDER BY start_at DESC
                   LIMIT 1) AS b
    WHERE b.end_at > NEW.start_at)
BEGIN
    SELECT RAISE(ABORT, 'bilean-overlap: a live billed range of this resource overlaps');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER billed_ranges_no_overlap_update
BEFORE UPDATE OF void, start_at, end_at, kind, resource_key ON billed_ranges
WHEN NEW.void = 0 AND EXISTS (
    SELECT 1 FROM (SELECT end_at
                   FROM billed_ranges
                   WHERE resource_key = NEW.resource_key AND kind = NEW.kind AND void = 0
                     AND start_at < NEW.end_at AND id <> NEW.id
                   ORDER BY start_at DESC
                   LIMIT 1) AS b
    WHERE b.end_at > NEW.start_at)
BEGIN
    SELECT RAISE(ABORT, 'bilean-overlap: a live billed range of this resource overlaps');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER billed_ranges_no_overlap_insert;
DROP TRIGGER billed_ranges_no_overlap_update;

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
