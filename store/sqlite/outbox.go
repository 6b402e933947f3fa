package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/store"
)

var _ store.Outbox = (*Store)(nil)

const deliveryCols = `id, invoice, customer_id, recipients, bcc, state, attempts, last_error, message_id,
    created_at, updated_at, next_attempt_at, sent_at`

func scanDelivery(sc scanner) (store.Delivery, error) {
	var d store.Delivery
	var to, bcc, state string
	var created, updated, next int64
	var sent sql.NullInt64
	if err := sc.Scan(&d.ID, &d.Invoice, &d.CustomerID, &to, &bcc, &state, &d.Attempts, &d.LastError, &d.MessageID,
		&created, &updated, &next, &sent); err != nil {
		return d, err
	}
	d.State = store.DeliveryState(state)
	d.CreatedAt, d.UpdatedAt, d.NextAttempt, d.SentAt = fromSec(created), fromSec(updated), fromSec(next), fromNullSec(sent)
	if err := json.Unmarshal([]byte(to), &d.To); err != nil {
		return d, fmt.Errorf("delivery %d recipients %q: %w", d.ID, to, err)
	}
	if err := json.Unmarshal([]byte(bcc), &d.Bcc); err != nil {
		return d, fmt.Errorf("delivery %d bcc %q: %w", d.ID, bcc, err)
	}
	return d, nil
}

// addrsJSON encodes addresses as a JSON array ("[]" when empty).
func addrsJSON(as []string) string {
	if len(as) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(as) // a []string always encodes
	return string(b)
}

// OutboxTx implements store.OutboxDriver.
func (d driver) OutboxTx(ctx context.Context, fn func(store.OutboxTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error { return fn(&outboxTx{tx: tx}) })
}

// outboxTx prepares the statements of EnqueueDeliveries once per transaction.
type outboxTx struct {
	tx       *sql.Tx
	ins, get *sql.Stmt
}

func (t *outboxTx) InsertDelivery(ctx context.Context, d store.Delivery) error {
	if t.ins == nil {
		var err error
		if t.ins, err = t.tx.PrepareContext(ctx, `
INSERT INTO outbox (invoice, customer_id, recipients, bcc, state, created_at, updated_at, next_attempt_at)
VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
ON CONFLICT (invoice) DO NOTHING`); err != nil {
			return err
		}
	}
	_, err := t.ins.ExecContext(ctx, d.Invoice, d.CustomerID, addrsJSON(d.To), addrsJSON(d.Bcc),
		sec(d.CreatedAt), sec(d.CreatedAt), sec(d.NextAttempt))
	return err
}

func (t *outboxTx) DeliveryOfInvoice(ctx context.Context, invoice string) (store.Delivery, error) {
	if t.get == nil {
		var err error
		if t.get, err = t.tx.PrepareContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE invoice = ?`); err != nil {
			return store.Delivery{}, err
		}
	}
	return scanDelivery(t.get.QueryRowContext(ctx, invoice))
}

func (t *outboxTx) Delivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := scanDelivery(t.tx.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	return d, err
}

// changed runs an update and tells whether it changed one row.
func (t *outboxTx) changed(ctx context.Context, q string, args ...any) (bool, error) {
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *outboxTx) Claim(ctx context.Context, id int64, messageID string, at time.Time) (bool, error) {
	return t.changed(ctx, `
UPDATE outbox
SET state = 'sending', attempts = attempts + 1, updated_at = ?,
    message_id = CASE WHEN message_id = '' THEN ? ELSE message_id END
WHERE id = ? AND state = 'pending'`, sec(at), messageID, id)
}

func (t *outboxTx) Complete(ctx context.Context, id int64, o store.DeliveryOutcome, next, sent time.Time) (bool, error) {
	return t.changed(ctx, `
UPDATE outbox SET state = ?, last_error = ?, updated_at = ?, next_attempt_at = ?, sent_at = ?
WHERE id = ? AND state = 'sending'`, string(o.State), o.Error, sec(o.At), sec(next), nullSec(sent), id)
}

func (t *outboxTx) Requeue(ctx context.Context, id int64, to []string, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, `
UPDATE outbox SET state = 'pending', attempts = 0, recipients = ?, updated_at = ?, next_attempt_at = ? WHERE id = ?`,
		addrsJSON(to), sec(at), sec(at), id)
	return err
}

func (t *outboxTx) Cancel(ctx context.Context, id int64, reason string, at time.Time) (bool, error) {
	return t.changed(ctx, `
UPDATE outbox SET state = 'cancelled', last_error = ?, updated_at = ? WHERE id = ? AND state IN ('pending', 'failed')`,
		reason, sec(at), id)
}

// Deliveries lists outbox entries matching the filter, oldest first.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM outbox WHERE 1 = 1`
	var args []any
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if f.Invoice != "" {
		q += ` AND invoice = ?`
		args = append(args, f.Invoice)
	}
	if !f.DueBy.IsZero() {
		q += ` AND next_attempt_at <= ?`
		args = append(args, sec(f.DueBy))
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var out []store.Delivery
	rows, err := s.db.QueryContext(ctx, q, args...)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		d, err := scanDelivery(rows)
		out = append(out, d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery returns one outbox entry.
func (s *Store) GetDelivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return d, nil
}

// ReconcileDeliveries marks unknown the entries sending since `before` or earlier.
func (s *Store) ReconcileDeliveries(ctx context.Context, before time.Time, reason string) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE state = 'sending' AND updated_at <= ? ORDER BY id`, sec(before))
		if err := eachRow(rows, err, func(rows *sql.Rows) error {
			d, err := scanDelivery(rows)
			out = append(out, d)
			return err
		}); err != nil {
			return err
		}
		now := sec(s.now())
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'unknown', last_error = ?, updated_at = ? WHERE id = ?`,
				reason, now, out[i].ID); err != nil {
				return err
			}
			out[i].State, out[i].LastError, out[i].UpdatedAt = store.DeliveryUnknown, reason, fromSec(now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile deliveries: %w", err)
	}
	return out, nil
}
