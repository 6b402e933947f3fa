package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

// PutCustomers inserts or replaces customers in one statement, all or nothing. An empty status
// is stored as active.
func (s *Store) PutCustomers(ctx context.Context, cs []billing.Customer) error {
	if len(cs) == 0 {
		return nil
	}
	n := len(cs)
	var (
		ids, names, currencies, zones, contacts, rates, statuses, policies = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		regions = make([]string, n)
		exempt  = make([]bool, n)
		starts  = make([]*time.Time, n)
		seen    = make(map[string]int, n)
	)
	// A customer given twice ends as the later one, as two calls would leave it.
	k := 0
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("put customers: %w", store.Refuse(i, "", fmt.Sprintf("customers[%d] (id %q)", i, c.ID), err.Error()))
		}
		cl := c.Contacts
		if cl == nil {
			cl = []string{}
		}
		cj, err := json.Marshal(cl)
		if err != nil {
			return fmt.Errorf("put customers: customers[%d] (id %q): contacts: %w", i, c.ID, err)
		}
		status := c.Status
		if status == "" {
			status = billing.Active
		}
		j, dup := seen[c.ID]
		if !dup {
			j = k
			seen[c.ID] = k
			k++
		}
		ids[j], names[j], currencies[j], zones[j], contacts[j] = c.ID, c.Name, c.Currency, c.Timezone, string(cj)
		rates[j], exempt[j], statuses[j], policies[j], regions[j] = c.TaxRate.String(), c.TaxExempt, status, c.Policy, c.Region
		starts[j] = nullTime(c.BillingStart)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO customers (id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start)
SELECT id, name, currency, timezone, ARRAY(SELECT jsonb_array_elements_text(contacts::jsonb)), tax_rate::numeric, tax_exempt, status, policy, region, billing_start
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
    AS c(id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, currency = excluded.currency, timezone = excluded.timezone,
    contacts = excluded.contacts, tax_rate = excluded.tax_rate, tax_exempt = excluded.tax_exempt,
    status = excluded.status, policy = excluded.policy, region = excluded.region,
    billing_start = excluded.billing_start`,
		ids[:k], names[:k], currencies[:k], zones[:k], contacts[:k], rates[:k], exempt[:k], statuses[:k], policies[:k], regions[:k], starts[:k])
	if err != nil {
		return fmt.Errorf("put customers: %w", err)
	}
	return nil
}

// CustomerIDs returns the ids matching the filter, sorted.
func (s *Store) CustomerIDs(ctx context.Context, f store.CustomerFilter) ([]string, error) {
	q := `SELECT id FROM customers WHERE ($1 = '' OR status = $1)`
	args := []any{f.Status}
	if len(f.IDs) > 0 {
		q += ` AND id = ANY($2)`
		args = append(args, f.IDs)
	}
	q += ` ORDER BY id`
	rows, _ := s.pool.Query(ctx, q, args...)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("customer ids: %w", err)
	}
	return ids, nil
}

// GetCustomers returns the customers with these ids, in the same order; unknown ids are skipped.
func (s *Store) GetCustomers(ctx context.Context, ids []string) ([]billing.Customer, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	byID := make(map[string]billing.Customer, len(ids))
	rows, _ := s.pool.Query(ctx, `
SELECT id, name, currency, timezone, contacts, tax_rate::text, tax_exempt, status, policy, region, billing_start
FROM customers WHERE id = ANY($1)`, ids)
	var (
		c       billing.Customer
		taxRate string
		start   *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.Currency, &c.Timezone, &c.Contacts, &taxRate, &c.TaxExempt, &c.Status, &c.Policy, &c.Region, &start}, func() error {
		var err error
		c.BillingStart = fromNull(start)
		if c.TaxRate, err = codec.Decimal(taxRate, "customer "+c.ID+" tax_rate"); err != nil {
			return err
		}
		if len(c.Contacts) == 0 {
			c.Contacts = nil
		}
		byID[c.ID] = c
		c.Contacts = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get customers: %w", err)
	}
	return store.InOrder(ids, byID), nil
}

// knownCustomers returns which of ids exist, in one query.
func knownCustomers(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ids []string) (map[string]bool, error) {
	rows, _ := q.Query(ctx, `SELECT id FROM customers WHERE id = ANY($1)`, codec.SortedUnique(ids))
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(got))
	for _, id := range got {
		known[id] = true
	}
	return known, nil
}

// AddSubscriptions stores subscriptions, all or nothing, and returns them with their ids.
func (s *Store) AddSubscriptions(ctx context.Context, ss []billing.Subscription) ([]billing.Subscription, error) {
	out := make([]billing.Subscription, len(ss))
	ids := make([]string, len(ss))
	for i, sub := range ss {
		sub.Start = interval.Norm(sub.Start)
		if !sub.End.IsZero() {
			sub.End = interval.Norm(sub.End)
		}
		switch {
		case sub.CustomerID == "":
			return nil, fmt.Errorf("add subscriptions: subscriptions[%d]: customer: required", i)
		case sub.Policy == "":
			return nil, fmt.Errorf("add subscriptions: subscriptions[%d] (customer %s): policy: required", i, sub.CustomerID)
		case !sub.End.IsZero() && !sub.End.After(sub.Start):
			return nil, fmt.Errorf("add subscriptions: subscriptions[%d] (customer %s): end %s is not after start %s",
				i, sub.CustomerID, sub.End.Format(time.RFC3339), sub.Start.Format(time.RFC3339))
		}
		out[i] = sub
		ids[i] = sub.CustomerID
	}
	if len(out) == 0 {
		return out, nil
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		known, err := knownCustomers(ctx, tx, ids)
		if err != nil {
			return fmt.Errorf("add subscriptions: %w", err)
		}
		for i, sub := range out {
			if !known[sub.CustomerID] {
				return fmt.Errorf("add subscriptions: %w", store.Refuse(i, "customer_id", fmt.Sprintf("subscriptions[%d]", i),
					fmt.Sprintf("customer %q is unknown", sub.CustomerID)))
			}
		}
		var b pgx.Batch
		for i := range out {
			sub := &out[i]
			b.Queue(`INSERT INTO subscriptions (customer_id, policy, start_at, end_at) VALUES ($1, $2, $3, $4) RETURNING id`,
				sub.CustomerID, sub.Policy, sub.Start, nullTime(sub.End)).QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&sub.ID); err != nil {
					return fmt.Errorf("add subscriptions: subscriptions[%d] (customer %s): %w", i, sub.CustomerID, err)
				}
				return nil
			})
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Subscriptions returns the subscriptions of these customers that overlap r, sorted by customer
// then start.
func (s *Store) Subscriptions(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Subscription, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []billing.Subscription
	rows, _ := s.pool.Query(ctx, `
SELECT id, customer_id, policy, start_at, end_at FROM subscriptions
WHERE customer_id = ANY($1) AND start_at < $3 AND (end_at IS NULL OR end_at > $2)
ORDER BY customer_id, start_at, id`, customerIDs, r.Start, r.End)
	var (
		sub   billing.Subscription
		start time.Time
		end   *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&sub.ID, &sub.CustomerID, &sub.Policy, &start, &end}, func() error {
		sub.Start, sub.End = utc(start), fromNull(end)
		out = append(out, sub)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	return out, nil
}

// AddPayments stores payments, all or nothing. A payment must be in its customer's currency. A
// payment whose non-empty reference is already stored for the customer is skipped when it is the
// same payment (amount, currency, time), so a payment file can be imported again; a different
// payment under a known reference is refused.
func (s *Store) AddPayments(ctx context.Context, ps []billing.Payment) error {
	ids := make([]string, len(ps))
	for i, p := range ps {
		switch {
		case p.CustomerID == "":
			return fmt.Errorf("add payments: payments[%d]: customer: required", i)
		case len(p.Currency) != 3:
			return fmt.Errorf("add payments: payments[%d] (customer %s): currency %q: want a 3-letter ISO 4217 code", i, p.CustomerID, p.Currency)
		case p.ReceivedAt.IsZero():
			return fmt.Errorf("add payments: payments[%d] (customer %s): received_at: required", i, p.CustomerID)
		}
		ids[i] = p.CustomerID
	}
	if len(ps) == 0 {
		return nil
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id, currency FROM customers WHERE id = ANY($1)`, codec.SortedUnique(ids))
		currencies := map[string]string{}
		var id, cur string
		if _, err := pgx.ForEachRow(rows, []any{&id, &cur}, func() error {
			currencies[id] = cur
			return nil
		}); err != nil {
			return fmt.Errorf("add payments: %w", err)
		}
		for i, p := range ps {
			if err := store.PaymentRefusal(i, p, currencies[p.CustomerID]); err != nil {
				return fmt.Errorf("add payments: %w", err)
			}
			at := interval.Norm(p.ReceivedAt)
			tag, err := tx.Exec(ctx, `
INSERT INTO payments (customer_id, amount, currency, received_at, reference) VALUES ($1, $2::numeric, $3, $4, $5)
ON CONFLICT (customer_id, reference) WHERE reference <> '' DO NOTHING`,
				p.CustomerID, p.Amount.String(), p.Currency, at, p.Reference)
			if err != nil {
				return fmt.Errorf("add payments: payments[%d] (customer %s): %w", i, p.CustomerID, err)
			}
			if tag.RowsAffected() == 1 {
				continue
			}
			// The reference is known: accept only the very same payment.
			var amount, currency string
			var received time.Time
			if err := tx.QueryRow(ctx, `SELECT amount::text, currency, received_at FROM payments WHERE customer_id = $1 AND reference = $2`,
				p.CustomerID, p.Reference).Scan(&amount, &currency, &received); err != nil {
				return fmt.Errorf("add payments: payments[%d] (customer %s): %w", i, p.CustomerID, err)
			}
			old, err := codec.Decimal(amount, "payment amount")
			if err != nil {
				return fmt.Errorf("add payments: payments[%d]: %w", i, err)
			}
			if old.Cmp(p.Amount) != 0 || currency != p.Currency || !received.Equal(at) {
				return fmt.Errorf("add payments: %w", store.Refuse(i, "reference", fmt.Sprintf("payments[%d] (customer %s)", i, p.CustomerID),
					fmt.Sprintf("reference %q is already stored as %s %s received %s, not %s %s received %s",
						p.Reference, amount, currency, received.UTC().Format("2006-01-02T15:04:05Z"),
						p.Amount, p.Currency, at.Format("2006-01-02T15:04:05Z"))))
			}
		}
		return nil
	})
}

// Payments returns payments of these customers received in r, sorted by customer then time.
func (s *Store) Payments(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Payment, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []billing.Payment
	rows, _ := s.pool.Query(ctx, `
SELECT id, customer_id, amount::text, currency, received_at, reference FROM payments
WHERE customer_id = ANY($1) AND received_at >= $2 AND received_at < $3
ORDER BY customer_id, received_at, id`, customerIDs, r.Start, r.End)
	var (
		p      billing.Payment
		amount string
		at     time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&p.ID, &p.CustomerID, &amount, &p.Currency, &at, &p.Reference}, func() error {
		var err error
		if p.Amount, err = codec.Decimal(amount, "payment amount"); err != nil {
			return err
		}
		p.ReceivedAt = utc(at)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return out, nil
}
