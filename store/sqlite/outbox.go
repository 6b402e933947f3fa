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

// EnqueueDeliveries creates the pending entries of invoices that have none, in one transaction.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) ([]store.Delivery, error) {
	out := make([]store.Delivery, 0, len(ds))
	err := s.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `
INSERT INTO outbox (invoice, customer_id, recipients, bcc, state, created_at, updated_at, next_attempt_at)
VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
ON CONFLICT (invoice) DO NOTHING`)
		if err != nil {
			return err
		}
		defer ins.Close()
		get, err := tx.PrepareContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE invoice = ?`)
		if err != nil {
			return err
		}
		defer get.Close()
		for _, d := range ds {
			if d.Invoice == "" {
				return errors.New("invoice: required")
			}
			if d.CreatedAt.IsZero() {
				d.CreatedAt = s.now()
			}
			if d.NextAttempt.IsZero() {
				d.NextAttempt = d.CreatedAt
			}
			if _, err := ins.ExecContext(ctx, d.Invoice, d.CustomerID, addrsJSON(d.To), addrsJSON(d.Bcc),
				sec(d.CreatedAt), sec(d.CreatedAt), sec(d.NextAttempt)); err != nil {
				return fmt.Errorf("invoice %s: %w", d.Invoice, err)
			}
			got, err := scanDelivery(get.QueryRowContext(ctx, d.Invoice))
			if err != nil {
				return fmt.Errorf("invoice %s: %w", d.Invoice, err)
			}
			out = append(out, got)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue deliveries: %w", err)
	}
	return out, nil
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

func getDeliveryTx(ctx context.Context, tx *sql.Tx, id int64) (store.Delivery, error) {
	d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	return d, err
}

// ClaimDelivery moves a pending entry to sending, recording the Message-ID first kept.
func (s *Store) ClaimDelivery(ctx context.Context, id int64, messageID string, at time.Time) (store.Delivery, bool, error) {
	var d store.Delivery
	claimed := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE outbox
SET state = 'sending', attempts = attempts + 1, updated_at = ?,
    message_id = CASE WHEN message_id = '' THEN ? ELSE message_id END
WHERE id = ? AND state = 'pending'`, sec(at), messageID, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		d, err = getDeliveryTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return d, false, fmt.Errorf("claim delivery %d: %w", id, err)
	}
	return d, claimed, nil
}

// CompleteDelivery records the outcome of a claimed entry.
func (s *Store) CompleteDelivery(ctx context.Context, id int64, o store.DeliveryOutcome) error {
	next, isSent, err := store.PlanCompletion(id, o)
	if err != nil {
		return err
	}
	var sent sql.NullInt64
	if isSent {
		sent = nullSec(o.At)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE outbox SET state = ?, last_error = ?, updated_at = ?, next_attempt_at = ?, sent_at = ?
WHERE id = ? AND state = 'sending'`, string(o.State), o.Error, sec(o.At), sec(next), sent, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		d, err := getDeliveryTx(ctx, tx, id)
		if err != nil {
			return err
		}
		return store.NotSending(d)
	})
	if err != nil {
		return fmt.Errorf("complete delivery %d: %w", id, err)
	}
	return nil
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

// RetryDelivery puts a failed (or, with force, unknown) entry back to pending.
func (s *Store) RetryDelivery(ctx context.Context, id int64, force bool, to []string, at time.Time) (store.Delivery, error) {
	var d store.Delivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		cur, err := getDeliveryTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := store.CheckRetry(cur, force); err != nil {
			return err
		}
		recipients := addrsJSON(cur.To)
		if to != nil {
			recipients = addrsJSON(to)
		}
		if _, err := tx.ExecContext(ctx, `
UPDATE outbox SET state = 'pending', attempts = 0, recipients = ?, updated_at = ?, next_attempt_at = ? WHERE id = ?`,
			recipients, sec(at), sec(at), id); err != nil {
			return err
		}
		d, err = getDeliveryTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("retry delivery %d: %w", id, err)
	}
	return d, nil
}

// CancelDelivery marks a pending or failed entry cancelled.
func (s *Store) CancelDelivery(ctx context.Context, id int64, reason string, at time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE outbox SET state = 'cancelled', last_error = ?, updated_at = ? WHERE id = ? AND state IN ('pending', 'failed')`,
			reason, sec(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		d, err := getDeliveryTx(ctx, tx, id)
		if err != nil {
			return err
		}
		return store.NotCancellable(d)
	})
	if err != nil {
		return fmt.Errorf("cancel delivery %d: %w", id, err)
	}
	return nil
}
