package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bilean/bilean/interval"
)

// The outbox state machine (see Outbox) once, over a driver's typed operations.

// EnqueueDeliveries implements Outbox.EnqueueDeliveries over a driver.
func EnqueueDeliveries(ctx context.Context, d OutboxDriver, ds []Delivery) ([]Delivery, error) {
	out := make([]Delivery, 0, len(ds))
	err := d.OutboxTx(ctx, func(tx OutboxTx) error {
		for _, dl := range ds {
			if dl.Invoice == "" {
				return errors.New("invoice: required")
			}
			if dl.CreatedAt.IsZero() {
				dl.CreatedAt = d.Now()
			}
			if dl.NextAttempt.IsZero() {
				dl.NextAttempt = dl.CreatedAt
			}
			dl.CreatedAt, dl.NextAttempt = interval.Norm(dl.CreatedAt), interval.Norm(dl.NextAttempt)
			if err := tx.InsertDelivery(ctx, dl); err != nil {
				return fmt.Errorf("invoice %s: %w", dl.Invoice, err)
			}
			got, err := tx.DeliveryOfInvoice(ctx, dl.Invoice)
			if err != nil {
				return fmt.Errorf("invoice %s: %w", dl.Invoice, err)
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

// ClaimDelivery implements Outbox.ClaimDelivery over a driver.
func ClaimDelivery(ctx context.Context, d OutboxDriver, id int64, messageID string, at time.Time) (Delivery, bool, error) {
	var (
		dl      Delivery
		claimed bool
	)
	err := d.OutboxTx(ctx, func(tx OutboxTx) error {
		var err error
		if claimed, err = tx.Claim(ctx, id, messageID, interval.Norm(at)); err != nil {
			return err
		}
		dl, err = tx.Delivery(ctx, id)
		return err
	})
	if err != nil {
		return dl, false, fmt.Errorf("claim delivery %d: %w", id, err)
	}
	return dl, claimed, nil
}

// CompleteDelivery implements Outbox.CompleteDelivery over a driver.
func CompleteDelivery(ctx context.Context, d OutboxDriver, id int64, o DeliveryOutcome) error {
	next, isSent, err := PlanCompletion(id, o)
	if err != nil {
		return err
	}
	var sent time.Time
	if isSent {
		sent = interval.Norm(o.At)
	}
	o.At = interval.Norm(o.At)
	err = d.OutboxTx(ctx, func(tx OutboxTx) error {
		done, err := tx.Complete(ctx, id, o, interval.Norm(next), sent)
		if err != nil || done {
			return err
		}
		dl, err := tx.Delivery(ctx, id)
		if err != nil {
			return err
		}
		return NotSending(dl)
	})
	if err != nil {
		return fmt.Errorf("complete delivery %d: %w", id, err)
	}
	return nil
}

// RetryDelivery implements Outbox.RetryDelivery over a driver.
func RetryDelivery(ctx context.Context, d OutboxDriver, id int64, force bool, to []string, at time.Time) (Delivery, error) {
	var dl Delivery
	err := d.OutboxTx(ctx, func(tx OutboxTx) error {
		cur, err := tx.Delivery(ctx, id)
		if err != nil {
			return err
		}
		if err := CheckRetry(cur, force); err != nil {
			return err
		}
		recipients := cur.To
		if to != nil {
			recipients = to
		}
		if err := tx.Requeue(ctx, id, recipients, interval.Norm(at)); err != nil {
			return err
		}
		dl, err = tx.Delivery(ctx, id)
		return err
	})
	if err != nil {
		return dl, fmt.Errorf("retry delivery %d: %w", id, err)
	}
	return dl, nil
}

// CancelDelivery implements Outbox.CancelDelivery over a driver.
func CancelDelivery(ctx context.Context, d OutboxDriver, id int64, reason string, at time.Time) error {
	err := d.OutboxTx(ctx, func(tx OutboxTx) error {
		done, err := tx.Cancel(ctx, id, reason, interval.Norm(at))
		if err != nil || done {
			return err
		}
		dl, err := tx.Delivery(ctx, id)
		if err != nil {
			return err
		}
		return NotCancellable(dl)
	})
	if err != nil {
		return fmt.Errorf("cancel delivery %d: %w", id, err)
	}
	return nil
}
