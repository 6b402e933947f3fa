package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
)

var _ store.Outbox = (*Store)(nil)

const deliveryCols = `id, invoice, customer_id, recipients, bcc, state, attempts, last_error, message_id,
    created_at, updated_at, next_attempt_at, sent_at`

func scanDelivery(row pgx.Row) (store.Delivery, error) {
	var (
		d                      store.Delivery
		state                  string
		created, updated, next time.Time
		sent                   *time.Time
	)
	if err := row.Scan(&d.ID, &d.Invoice, &d.CustomerID, &d.To, &d.Bcc, &state, &d.Attempts, &d.LastError, &d.MessageID,
		&created, &updated, &next, &sent); err != nil {
		return d, err
	}
	if len(d.To) == 0 {
		d.To = nil
	}
	if len(d.Bcc) == 0 {
		d.Bcc = nil
	}
	d.State = store.DeliveryState(state)
	d.CreatedAt, d.UpdatedAt, d.NextAttempt, d.SentAt = utc(created), utc(updated), utc(next), fromNull(sent)
	return d, nil
}

// addrs stores nil as an empty array.
func addrs(as []string) []string {
	if as == nil {
		return []string{}
	}
	return as
}

// EnqueueDeliveries implements store.Outbox: the pending entries of invoices that have none, in
// one transaction.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) ([]store.Delivery, error) {
	out := make([]store.Delivery, 0, len(ds))
	err := s.write(ctx, func(tx pgx.Tx) error {
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
			if _, err := tx.Exec(ctx, `
INSERT INTO outbox (invoice, customer_id, recipients, bcc, state, created_at, updated_at, next_attempt_at)
VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6)
ON CONFLICT (invoice) DO NOTHING`, d.Invoice, d.CustomerID, addrs(d.To), addrs(d.Bcc),
				interval.Norm(d.CreatedAt), interval.Norm(d.NextAttempt)); err != nil {
				return fmt.Errorf("invoice %s: %w", d.Invoice, err)
			}
			got, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE invoice = $1`, d.Invoice))
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

// Deliveries implements store.Outbox: entries matching the filter, oldest first.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM outbox WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		q += ` AND state = ANY(` + arg(states) + `)`
	}
	if f.Invoice != "" {
		q += ` AND invoice = ` + arg(f.Invoice)
	}
	if !f.DueBy.IsZero() {
		q += ` AND next_attempt_at <= ` + arg(f.DueBy)
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery implements store.Outbox.
func (s *Store) GetDelivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return d, nil
}

func getDeliveryTx(ctx context.Context, tx pgx.Tx, id int64) (store.Delivery, error) {
	d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	return d, err
}

// ClaimDelivery implements store.Outbox: pending → sending, keeping the first Message-ID.
func (s *Store) ClaimDelivery(ctx context.Context, id int64, messageID string, at time.Time) (store.Delivery, bool, error) {
	var (
		d       store.Delivery
		claimed bool
	)
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE outbox
SET state = 'sending', attempts = attempts + 1, updated_at = $2,
    message_id = CASE WHEN message_id = '' THEN $3 ELSE message_id END
WHERE id = $1 AND state = 'pending'`, id, interval.Norm(at), messageID)
		if err != nil {
			return err
		}
		claimed = tag.RowsAffected() == 1
		d, err = getDeliveryTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return d, false, fmt.Errorf("claim delivery %d: %w", id, err)
	}
	return d, claimed, nil
}

// CompleteDelivery implements store.Outbox.
func (s *Store) CompleteDelivery(ctx context.Context, id int64, o store.DeliveryOutcome) error {
	next, isSent, err := store.PlanCompletion(id, o)
	if err != nil {
		return err
	}
	var sent *time.Time
	if isSent {
		t := interval.Norm(o.At)
		sent = &t
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE outbox SET state = $2, last_error = $3, updated_at = $4, next_attempt_at = $5, sent_at = $6
WHERE id = $1 AND state = 'sending'`, id, string(o.State), o.Error, interval.Norm(o.At), interval.Norm(next), sent)
		if err != nil || tag.RowsAffected() == 1 {
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

// ReconcileDeliveries implements store.Outbox: entries sending since before or earlier become
// unknown.
func (s *Store) ReconcileDeliveries(ctx context.Context, before time.Time, reason string) ([]store.Delivery, error) {
	rows, _ := s.pool.Query(ctx, `
UPDATE outbox SET state = 'unknown', last_error = $2, updated_at = $3
WHERE state = 'sending' AND updated_at <= $1
RETURNING `+deliveryCols, interval.Norm(before), reason, interval.Norm(s.now()))
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, fmt.Errorf("reconcile deliveries: %w", err)
	}
	for i := 1; i < len(out); i++ { // by id, as listed
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// RetryDelivery implements store.Outbox: failed (or, with force, unknown) → pending.
func (s *Store) RetryDelivery(ctx context.Context, id int64, force bool, to []string, at time.Time) (store.Delivery, error) {
	var d store.Delivery
	err := s.write(ctx, func(tx pgx.Tx) error {
		cur, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := store.CheckRetry(cur, force); err != nil {
			return err
		}
		recipients := cur.To
		if to != nil {
			recipients = to
		}
		if _, err := tx.Exec(ctx, `
UPDATE outbox SET state = 'pending', attempts = 0, recipients = $2, updated_at = $3, next_attempt_at = $3 WHERE id = $1`,
			id, addrs(recipients), interval.Norm(at)); err != nil {
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

// CancelDelivery implements store.Outbox: pending or failed → cancelled.
func (s *Store) CancelDelivery(ctx context.Context, id int64, reason string, at time.Time) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE outbox SET state = 'cancelled', last_error = $2, updated_at = $3 WHERE id = $1 AND state IN ('pending', 'failed')`,
			id, reason, interval.Norm(at))
		if err != nil || tag.RowsAffected() == 1 {
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
