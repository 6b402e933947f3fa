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

// OutboxTx implements store.OutboxDriver.
func (d driver) OutboxTx(ctx context.Context, fn func(store.OutboxTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(outboxTx{tx}) })
}

type outboxTx struct{ tx pgx.Tx }

func (t outboxTx) InsertDelivery(ctx context.Context, d store.Delivery) error {
	_, err := t.tx.Exec(ctx, `
INSERT INTO outbox (invoice, customer_id, recipients, bcc, state, created_at, updated_at, next_attempt_at)
VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6)
ON CONFLICT (invoice) DO NOTHING`, d.Invoice, d.CustomerID, addrs(d.To), addrs(d.Bcc), d.CreatedAt, d.NextAttempt)
	return err
}

func (t outboxTx) DeliveryOfInvoice(ctx context.Context, invoice string) (store.Delivery, error) {
	return scanDelivery(t.tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE invoice = $1`, invoice))
}

func (t outboxTx) Delivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := scanDelivery(t.tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	return d, err
}

func (t outboxTx) Claim(ctx context.Context, id int64, messageID string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `
UPDATE outbox
SET state = 'sending', attempts = attempts + 1, updated_at = $2,
    message_id = CASE WHEN message_id = '' THEN $3 ELSE message_id END
WHERE id = $1 AND state = 'pending'`, id, at, messageID)
	return tag.RowsAffected() == 1, err
}

func (t outboxTx) Complete(ctx context.Context, id int64, o store.DeliveryOutcome, next, sent time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `
UPDATE outbox SET state = $2, last_error = $3, updated_at = $4, next_attempt_at = $5, sent_at = $6
WHERE id = $1 AND state = 'sending'`, id, string(o.State), o.Error, o.At, next, nullTime(sent))
	return tag.RowsAffected() == 1, err
}

func (t outboxTx) Requeue(ctx context.Context, id int64, to []string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `
UPDATE outbox SET state = 'pending', attempts = 0, recipients = $2, updated_at = $3, next_attempt_at = $3 WHERE id = $1`,
		id, addrs(to), at)
	return err
}

func (t outboxTx) Cancel(ctx context.Context, id int64, reason string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `
UPDATE outbox SET state = 'cancelled', last_error = $2, updated_at = $3 WHERE id = $1 AND state IN ('pending', 'failed')`,
		id, reason, at)
	return tag.RowsAffected() == 1, err
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
