-- How time was counted for an invoice line (second, minute, hour, day: invoice.Line.Granularity),
-- kept so a stored invoice renders the same as when it was issued. Empty for lines written
-- before this column existed and for lines that count no time (fees, adjustments).

-- +goose Up
ALTER TABLE invoice_lines ADD COLUMN granularity text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE invoice_lines DROP COLUMN granularity;
