-- Billing start and burn-state validity (issue: one price everywhere).
--
-- customers.billing_start: the first second a customer is billable (NULL: since its first record,
-- meter or subscription). Set it when a customer moves over from another billing system.
-- balance_burn.valid_until: the first second at which a stored burn state stops being a straight
-- line (a period edge, a policy version, a subscription or discount edge); a balance asked for at
-- or after it is recomputed, never extrapolated across it.
-- A discount added, changed or removed moves the balance: it bumps the customer's change counter.

-- +goose Up
ALTER TABLE customers ADD COLUMN billing_start INTEGER;
ALTER TABLE balance_burn ADD COLUMN valid_until INTEGER;

-- +goose StatementBegin
CREATE TRIGGER balance_burn_discount_insert AFTER INSERT ON discounts
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_discount_update AFTER UPDATE ON discounts
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id IN (OLD.customer_id, NEW.customer_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_discount_delete AFTER DELETE ON discounts
BEGIN
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = OLD.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_customer_billing_start AFTER UPDATE OF billing_start ON customers
WHEN OLD.billing_start IS NOT NEW.billing_start
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = NEW.id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER balance_burn_customer_billing_start;
DROP TRIGGER balance_burn_discount_delete;
DROP TRIGGER balance_burn_discount_update;
DROP TRIGGER balance_burn_discount_insert;
ALTER TABLE balance_burn DROP COLUMN valid_until;
ALTER TABLE customers DROP COLUMN billing_start;
