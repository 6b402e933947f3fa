-- Two balance triggers PostgreSQL has had since its 00004 and SQLite lacked: a usage record
-- deleted and a subscription deleted change what a customer burns, so they bump the customer's
-- change counter (balance_burn.changes) and its stored burn state becomes stale. The record
-- trigger stands aside while balance_burn_pause holds its row, like the insert and update
-- triggers: the listener's batch writer then bumps each customer once per batch.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER balance_burn_record_delete AFTER DELETE ON usage_records
WHEN NOT EXISTS (SELECT 1 FROM balance_burn_pause)
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT OLD.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = OLD.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = OLD.customer_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER balance_burn_subscription_delete AFTER DELETE ON subscriptions
BEGIN
    INSERT INTO balance_burn (customer_id)
        SELECT OLD.customer_id WHERE NOT EXISTS (SELECT 1 FROM balance_burn WHERE customer_id = OLD.customer_id);
    UPDATE balance_burn SET changes = changes + 1 WHERE customer_id = OLD.customer_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER balance_burn_subscription_delete;
DROP TRIGGER balance_burn_record_delete;
