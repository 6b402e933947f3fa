package store

import (
	"context"
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// Subscription changes (see SubscriptionChanges) and the billed ranges of pseudo-resources once,
// over a driver's typed operations.

// ChangeSubscription implements SubscriptionChanges.ChangeSubscription over a driver.
func ChangeSubscription(ctx context.Context, d SubscriptionDriver, customerID, policy string, at time.Time) (billing.Subscription, error) {
	at = interval.Norm(at)
	sub := billing.Subscription{CustomerID: customerID, Policy: policy, Start: at}
	err := d.SubscriptionTx(ctx, func(tx SubscriptionTx) error {
		exists, err := tx.PolicyExists(ctx, policy)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("policy %s: %w", policy, ErrNotFound)
		}
		found, err := tx.LockCustomer(ctx, customerID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("customer %s: %w", customerID, ErrNotFound)
		}
		if _, _, err := endInForce(ctx, tx, customerID, at); err != nil {
			return err
		}
		// A later subscription would overlap the new open one: end the new one where it starts.
		if sub.End, err = tx.NextStart(ctx, customerID, at); err != nil {
			return err
		}
		sub.ID, err = tx.InsertSubscription(ctx, sub)
		return err
	})
	if err != nil {
		return sub, fmt.Errorf("change subscription of %s to %s at %s: %w", customerID, policy, FormatTime(at), err)
	}
	return sub, nil
}

// CancelSubscription implements SubscriptionChanges.CancelSubscription over a driver.
func CancelSubscription(ctx context.Context, d SubscriptionDriver, customerID string, at time.Time) (billing.Subscription, error) {
	at = interval.Norm(at)
	var sub billing.Subscription
	err := d.SubscriptionTx(ctx, func(tx SubscriptionTx) error {
		if _, err := tx.LockCustomer(ctx, customerID); err != nil {
			return err
		}
		var ok bool
		var err error
		sub, ok, err = endInForce(ctx, tx, customerID, at)
		if err == nil && !ok {
			err = fmt.Errorf("no subscription in force: %w", ErrNotFound)
		}
		return err
	})
	if err != nil {
		return sub, fmt.Errorf("cancel subscription of %s at %s: %w", customerID, FormatTime(at), err)
	}
	return sub, nil
}

// endInForce ends the customer's subscription in force at `at` at that second; ok is false when
// none is in force. A subscription starting at `at` never applied: it is deleted, unless billed.
func endInForce(ctx context.Context, tx SubscriptionTx, customerID string, at time.Time) (billing.Subscription, bool, error) {
	sub, found, err := tx.InForce(ctx, customerID, at)
	if err != nil || !found {
		return sub, false, err
	}
	if !at.After(sub.Start) {
		billed, err := tx.Billed(ctx, customerID, sub.ResourceID())
		if err != nil {
			return sub, false, err
		}
		if billed {
			return sub, false, fmt.Errorf("subscription %d starts at %s and is already billed: end it later or void its invoice", sub.ID, FormatTime(sub.Start))
		}
		if err := tx.DeleteSubscription(ctx, sub.ID); err != nil {
			return sub, false, err
		}
		sub.End = sub.Start
		return sub, true, nil
	}
	if err := tx.EndSubscription(ctx, sub.ID, at); err != nil {
		return sub, false, err
	}
	sub.End = at
	return sub, true, nil
}

// SubscriptionRanges implements SubscriptionChanges.SubscriptionRanges over a driver: the
// "subscription/" pseudo-resources.
func SubscriptionRanges(ctx context.Context, d SubscriptionDriver, customerIDs []string) (map[string]BilledSets, error) {
	byCustomer, err := pseudoRanges(ctx, d, customerIDs, "subscription/", "subscription0")
	out := map[string]BilledSets{}
	for _, m := range byCustomer {
		for id, b := range m {
			out[id] = b // subscription ids are unique across customers
		}
	}
	return out, err
}

// MeterRanges implements Feed.MeterRanges over a driver: the "meter/" pseudo-resources.
func MeterRanges(ctx context.Context, d SubscriptionDriver, customerIDs []string) (map[string]map[string]BilledSets, error) {
	return pseudoRanges(ctx, d, customerIDs, "meter/", "meter0")
}

// pseudoRanges returns, by customer and resource id, the live billed ranges of the customers'
// resources whose ids are in [lo, hi).
func pseudoRanges(ctx context.Context, d SubscriptionDriver, customerIDs []string, lo, hi string) (map[string]map[string]BilledSets, error) {
	out := map[string]map[string]BilledSets{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	type acc struct{ charged, credited []interval.Range }
	type key struct{ customer, id string }
	raw := map[key]*acc{}
	err := d.LiveRanges(ctx, customerIDs, lo, hi, func(cust, id string, kind invoice.RangeKind, r interval.Range) {
		a := raw[key{cust, id}]
		if a == nil {
			a = &acc{}
			raw[key{cust, id}] = a
		}
		if kind == invoice.Credited {
			a.credited = append(a.credited, r)
		} else {
			a.charged = append(a.charged, r)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("billed ranges of %s*: %w", lo, err)
	}
	for k, a := range raw {
		if out[k.customer] == nil {
			out[k.customer] = map[string]BilledSets{}
		}
		out[k.customer][k.id] = BilledSets{Charged: interval.NewSet(a.charged...), Credited: interval.NewSet(a.credited...)}
	}
	return out, nil
}
