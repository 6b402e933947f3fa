-- The email outbox: one row per invoice delivery, so that each invoice is emailed once and only
-- once (see store/outbox.go for the states and the sender's protocol).

-- +goose Up
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice         text NOT NULL UNIQUE REFERENCES invoices (number),
    customer_id     text NOT NULL,
    recipients      text[] NOT NULL DEFAULT '{}',   -- To
    bcc             text[] NOT NULL DEFAULT '{}',   -- envelope only
    state           text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text NOT NULL DEFAULT '',
    message_id      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz
);
-- The sender reads due pending entries; reconciling reads sending ones.
CREATE INDEX outbox_state ON outbox (state, next_attempt_at);

-- Voiding an invoice cancels its delivery unless it is under way or done; the trigger runs in the
-- voiding transaction, whoever voids. Finalize with Replaces names the new invoice in the void
-- reason only at the end of its transaction, so a change of reason is carried over too.
-- +goose StatementBegin
CREATE FUNCTION outbox_cancel_on_void() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE outbox
    SET state = 'cancelled',
        last_error = 'invoice voided' || CASE WHEN NEW.void_reason <> '' THEN ': ' || NEW.void_reason ELSE '' END,
        updated_at = date_trunc('second', now())
    WHERE invoice = NEW.number
      AND (state IN ('pending', 'failed') OR (state = 'cancelled' AND OLD.status = 'void' AND last_error LIKE 'invoice voided%'));
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_cancel_on_void AFTER UPDATE OF status, void_reason ON invoices
FOR EACH ROW WHEN (NEW.status = 'void' AND (OLD.status <> 'void' OR OLD.void_reason IS DISTINCT FROM NEW.void_reason))
EXECUTE FUNCTION outbox_cancel_on_void();

-- +goose Down
DROP TRIGGER outbox_cancel_on_void ON invoices;
DROP FUNCTION outbox_cancel_on_void();
DROP TABLE outbox;
