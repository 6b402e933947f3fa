-- The email outbox: one row per invoice delivery, so that each invoice is emailed once and only
-- once (see store/outbox.go for the states and the sender's protocol).

-- +goose Up

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    invoice         TEXT NOT NULL UNIQUE REFERENCES invoices (number),
    customer_id     TEXT NOT NULL,
    recipients      TEXT NOT NULL DEFAULT '[]',   -- JSON array of addresses (To)
    bcc             TEXT NOT NULL DEFAULT '[]',   -- JSON array of addresses (envelope only)
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT NOT NULL DEFAULT '',
    message_id      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER
);
-- The sender reads due pending entries; reconciling reads sending ones.
CREATE INDEX outbox_state ON outbox (state, next_attempt_at);

-- Voiding an invoice cancels its delivery unless it is under way or done; the trigger runs in the
-- voiding transaction, whoever voids.
-- +goose StatementBegin
CREATE TRIGGER outbox_cancel_on_void
AFTER UPDATE OF status ON invoices
WHEN NEW.status = 'void' AND OLD.status <> 'void'
BEGIN
    UPDATE outbox
    SET state = 'cancelled',
        last_error = 'invoice voided' || CASE WHEN NEW.void_reason <> '' THEN ': ' || NEW.void_reason ELSE '' END,
        updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE invoice = NEW.number AND state IN ('pending', 'failed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER outbox_cancel_on_void;
DROP TABLE outbox;
