-- Billing start and burn-state validity (issue: one price everywhere).
--
-- customers.billing_start: the first second a customer is billable (NULL: since its first record,
-- meter or subscription). Set it when a customer moves over from another billing system.
-- balance_burn.valid_until: the first second at which a stored burn state stops being a straight
-- line (a period edge, a policy version, a subscription or discount edge); a balance asked for at
-- or after it is recomputed, never extrapolated across it.
-- A discount added, changed or removed moves the balance: it bumps the customer's change counter.

-- +goose Up
ALTER TABLE customers ADD COLUMN billing_start timestamptz;
ALTER TABLE balance_burn ADD COLUMN valid_until timestamptz;

-- +goose StatementBegin
CREATE FUNCTION balance_burn_discount() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER balance_burn_discount AFTER INSERT OR UPDATE OR DELETE ON discounts
FOR EACH ROW EXECUTE FUNCTION balance_burn_discount();

CREATE TRIGGER balance_burn_customer_billing_start AFTER UPDATE OF billing_start ON customers
FOR EACH ROW WHEN (OLD.billing_start IS DISTINCT FROM NEW.billing_start)
EXECUTE FUNCTION balance_burn_customer();

-- +goose Down
DROP TRIGGER balance_burn_customer_billing_start ON customers;
DROP TRIGGER balance_burn_discount ON discounts;
DROP FUNCTION balance_burn_discount();
ALTER TABLE balance_burn DROP COLUMN valid_until;
ALTER TABLE customers DROP COLUMN billing_start;
