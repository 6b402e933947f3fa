-- A customer's region selects a per-region tax rate from configuration (billing.Customer.Region).

-- +goose Up
ALTER TABLE customers ADD COLUMN region text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE customers DROP COLUMN region;
