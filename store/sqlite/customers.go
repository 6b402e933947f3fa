package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

// PutCustomers inserts or replaces customers, all or nothing. An empty status is stored as active.
func (s *Store) PutCustomers(ctx context.Context, cs []billing.Customer) error {
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("put customers: %w", store.Refuse(i, "", fmt.Sprintf("customers[%d] (id %q)", i, c.ID), err.Error()))
		}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `
INSERT INTO customers (id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, currency = excluded.currency, timezone = excluded.timezone,
    contacts = excluded.contacts, tax_rate = excluded.tax_rate, tax_exempt = excluded.tax_exempt,
    status = excluded.status, policy = excluded.policy, region = excluded.region,
    billing_start = excluded.billing_start`)
		if err != nil {
			return fmt.Errorf("put customers: %w", err)
		}
		defer st.Close()
		for i, c := range cs {
			contacts := c.Contacts
			if contacts == nil {
				contacts = []string{}
			}
			cj, err := json.Marshal(contacts)
			if err != nil {
				return fmt.Errorf("put customers: customers[%d] (id %q): contacts: %w", i, c.ID, err)
			}
			status := c.Status
			if status == "" {
				status = billing.Active
			}
			if _, err := st.ExecContext(ctx, c.ID, c.Name, c.Currency, c.Timezone, string(cj),
				dec(c.TaxRate), boolInt(c.TaxExempt), status, c.Policy, c.Region, nullSec(c.BillingStart)); err != nil {
				return fmt.Errorf("put customers: customers[%d] (id %q): %w", i, c.ID, err)
			}
		}
		return nil
	})
}

// CustomerIDs returns the ids matching the filter, sorted.
func (s *Store) CustomerIDs(ctx context.Context, f store.CustomerFilter) ([]string, error) {
	q := `SELECT id FROM customers WHERE (?1 = '' OR status = ?1)`
	args := []any{f.Status}
	if len(f.IDs) > 0 {
		q += ` AND id IN (SELECT value FROM json_each(?2))`
		args = append(args, idsJSON(f.IDs))
	}
	q += ` ORDER BY id`
	var ids []string
	rows, err := s.db.QueryContext(ctx, q, args...)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
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
	rows, err := s.db.QueryContext(ctx, `
SELECT id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start
FROM customers WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var c billing.Customer
		var contacts, taxRate string
		var exempt int
		var start sql.NullInt64
		err := rows.Scan(&c.ID, &c.Name, &c.Currency, &c.Timezone, &contacts, &taxRate, &exempt,
			&c.Status, &c.Policy, &c.Region, &start)
		if err != nil {
			return err
		}
		c.BillingStart = fromNullSec(start)
		if err := json.Unmarshal([]byte(contacts), &c.Contacts); err != nil {
			return fmt.Errorf("customer %s: contacts %q: %w", c.ID, contacts, err)
		}
		if len(c.Contacts) == 0 {
			c.Contacts = nil
		}
		if c.TaxRate, err = codec.Decimal(taxRate, "customer "+c.ID+" tax_rate"); err != nil {
			return err
		}
		c.TaxExempt = exempt != 0
		byID[c.ID] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get customers: %w", err)
	}
	return store.InOrder(ids, byID), nil
}

// customerCheck answers "does this customer exist, and in which currency is it billed?" inside
// one transaction, caching answers.
type customerCheck struct {
	st    *sql.Stmt
	known map[string]string // id → currency; "" for an unknown customer
}

func newCustomerCheck(ctx context.Context, tx *sql.Tx) (*customerCheck, error) {
	st, err := tx.PrepareContext(ctx, `SELECT currency FROM customers WHERE id = ?`)
	if err != nil {
		return nil, err
	}
	return &customerCheck{st: st, known: map[string]string{}}, nil
}

func (c *customerCheck) exists(ctx context.Context, id string) (bool, error) {
	cur, err := c.currency(ctx, id)
	return cur != "", err
}

// currency returns the customer's currency, "" when the customer is unknown.
func (c *customerCheck) currency(ctx context.Context, id string) (string, error) {
	if cur, hit := c.known[id]; hit {
		return cur, nil
	}
	var cur string
	err := c.st.QueryRowContext(ctx, id).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = ""
	case err != nil:
		return "", err
	}
	c.known[id] = cur
	return cur, nil
}

func (c *customerCheck) Close() { c.st.Close() }

// AddSubscriptions stores subscriptions, all or nothing, and returns them with their ids.
func (s *Store) AddSubscriptions(ctx context.Context, ss []billing.Subscription) ([]billing.Subscription, error) {
	out := make([]billing.Subscription, len(ss))
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
				i, sub.CustomerID, sub.End.Format("2006-01-02T15:04:05Z07:00"), sub.Start.Format("2006-01-02T15:04:05Z07:00"))
		}
		out[i] = sub
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		cc, err := newCustomerCheck(ctx, tx)
		if err != nil {
			return fmt.Errorf("add subscriptions: %w", err)
		}
		defer cc.Close()
		st, err := tx.PrepareContext(ctx, `
INSERT INTO subscriptions (customer_id, policy, start_at, end_at) VALUES (?, ?, ?, ?) RETURNING id`)
		if err != nil {
			return fmt.Errorf("add subscriptions: %w", err)
		}
		defer st.Close()
		for i := range out {
			sub := &out[i]
			ok, err := cc.exists(ctx, sub.CustomerID)
			if err != nil {
				return fmt.Errorf("add subscriptions: subscriptions[%d]: %w", i, err)
			}
			if !ok {
				return fmt.Errorf("add subscriptions: %w", store.Refuse(i, "customer_id", fmt.Sprintf("subscriptions[%d]", i),
					fmt.Sprintf("customer %q is unknown", sub.CustomerID)))
			}
			if err := st.QueryRowContext(ctx, sub.CustomerID, sub.Policy, sec(sub.Start), nullSec(sub.End)).Scan(&sub.ID); err != nil {
				return fmt.Errorf("add subscriptions: subscriptions[%d] (customer %s): %w", i, sub.CustomerID, err)
			}
		}
		return nil
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
	rows, err := s.db.QueryContext(ctx, `
SELECT s.id, s.customer_id, s.policy, s.start_at, s.end_at
FROM json_each(?1) AS c CROSS JOIN subscriptions AS s ON s.customer_id = c.value
WHERE s.start_at < ?3 AND (s.end_at IS NULL OR s.end_at > ?2)
ORDER BY s.customer_id, s.start_at, s.id`, idsJSON(customerIDs), sec(r.Start), sec(r.End))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var sub billing.Subscription
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&sub.ID, &sub.CustomerID, &sub.Policy, &start, &end); err != nil {
			return err
		}
		sub.Start, sub.End = fromSec(start), fromNullSec(end)
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
	for i, p := range ps {
		switch {
		case p.CustomerID == "":
			return fmt.Errorf("add payments: payments[%d]: customer: required", i)
		case len(p.Currency) != 3:
			return fmt.Errorf("add payments: payments[%d] (customer %s): currency %q: want a 3-letter ISO 4217 code", i, p.CustomerID, p.Currency)
		case p.ReceivedAt.IsZero():
			return fmt.Errorf("add payments: payments[%d] (customer %s): received_at: required", i, p.CustomerID)
		}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		cc, err := newCustomerCheck(ctx, tx)
		if err != nil {
			return fmt.Errorf("add payments: %w", err)
		}
		defer cc.Close()
		ins, err := tx.PrepareContext(ctx, `
INSERT INTO payments (customer_id, amount, currency, received_at, reference) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (customer_id, reference) WHERE reference <> '' DO NOTHING`)
		if err != nil {
			return fmt.Errorf("add payments: %w", err)
		}
		defer ins.Close()
		get, err := tx.PrepareContext(ctx, `
SELECT amount, currency, received_at FROM payments WHERE customer_id = ? AND reference = ?`)
		if err != nil {
			return fmt.Errorf("add payments: %w", err)
		}
		defer get.Close()
		for i, p := range ps {
			cur, err := cc.currency(ctx, p.CustomerID)
			if err != nil {
				return fmt.Errorf("add payments: payments[%d]: %w", i, err)
			}
			if err := store.PaymentRefusal(i, p, cur); err != nil {
				return fmt.Errorf("add payments: %w", err)
			}
			at := interval.Norm(p.ReceivedAt)
			res, err := ins.ExecContext(ctx, p.CustomerID, dec(p.Amount), p.Currency, sec(at), p.Reference)
			if err != nil {
				return fmt.Errorf("add payments: payments[%d] (customer %s): %w", i, p.CustomerID, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 1 {
				continue
			}
			// The reference is known: accept only the very same payment.
			var amount, currency string
			var received int64
			if err := get.QueryRowContext(ctx, p.CustomerID, p.Reference).Scan(&amount, &currency, &received); err != nil {
				return fmt.Errorf("add payments: payments[%d] (customer %s): %w", i, p.CustomerID, err)
			}
			old, err := codec.Decimal(amount, "payment amount")
			if err != nil {
				return fmt.Errorf("add payments: payments[%d]: %w", i, err)
			}
			if old.Cmp(p.Amount) != 0 || currency != p.Currency || received != sec(at) {
				return fmt.Errorf("add payments: %w", store.Refuse(i, "reference", fmt.Sprintf("payments[%d] (customer %s)", i, p.CustomerID),
					fmt.Sprintf("reference %q is already stored as %s %s received %s, not %s %s received %s",
						p.Reference, amount, currency, fromSec(received).Format("2006-01-02T15:04:05Z"),
						dec(p.Amount), p.Currency, at.Format("2006-01-02T15:04:05Z"))))
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
	rows, err := s.db.QueryContext(ctx, `
SELECT p.id, p.customer_id, p.amount, p.currency, p.received_at, p.reference
FROM json_each(?1) AS c CROSS JOIN payments AS p ON p.customer_id = c.value
WHERE p.received_at >= ?2 AND p.received_at < ?3
ORDER BY p.customer_id, p.received_at, p.id`, idsJSON(customerIDs), sec(r.Start), sec(r.End))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var p billing.Payment
		var amount string
		var at int64
		err := rows.Scan(&p.ID, &p.CustomerID, &amount, &p.Currency, &at, &p.Reference)
		if err != nil {
			return err
		}
		if p.Amount, err = codec.Decimal(amount, "payment amount"); err != nil {
			return err
		}
		p.ReceivedAt = fromSec(at)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return out, nil
}
