package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

var (
	_ store.PolicyVersions      = (*Store)(nil)
	_ store.SubscriptionChanges = (*Store)(nil)
	_ store.Discounts           = (*Store)(nil)
	_ store.CreditNotes         = (*Store)(nil)
)

// PolicyTx implements store.PolicyDriver.
func (d driver) PolicyTx(ctx context.Context, fn func(store.PolicyTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error { return fn(policyTx{tx}) })
}

// Versions implements store.PolicyDriver.
func (d driver) Versions(ctx context.Context, name string) ([]billing.Policy, error) {
	return versionsTx(ctx, d.s.db, name)
}

type policyTx struct{ tx *sql.Tx }

// LockedVersions reads the versions: the one writer at a time makes writers take turns.
func (t policyTx) LockedVersions(ctx context.Context, name string) ([]billing.Policy, error) {
	return versionsTx(ctx, t.tx, name)
}

// UpsertVersion writes one version and, when it is the latest, mirrors it into policies.
func (t policyTx) UpsertVersion(ctx context.Context, p billing.Policy, now time.Time) error {
	rj, ij, err := store.EncodePolicyJSON(p)
	if err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `
INSERT INTO policy_versions (name, version, effective_from, currency, description, fee, fee_interval, fee_timing,
    included, rules, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name, version) DO UPDATE SET
    effective_from = excluded.effective_from, currency = excluded.currency, description = excluded.description,
    fee = excluded.fee, fee_interval = excluded.fee_interval, fee_timing = excluded.fee_timing,
    included = excluded.included, rules = excluded.rules
WHERE policy_versions.effective_from IS NOT excluded.effective_from OR policy_versions.currency <> excluded.currency
    OR policy_versions.description <> excluded.description OR policy_versions.fee <> excluded.fee
    OR policy_versions.fee_interval <> excluded.fee_interval OR policy_versions.fee_timing <> excluded.fee_timing
    OR policy_versions.included <> excluded.included OR policy_versions.rules <> excluded.rules`,
		p.Name, p.Version, nullSec(p.EffectiveFrom), p.Currency, p.Description, dec(p.Fee), p.Interval(), p.Timing(),
		ij, rj, sec(now)); err != nil {
		return fmt.Errorf("version %d: %w", p.Version, err)
	}
	// Mirror the latest version into policies (watched by the balance triggers).
	_, err = t.tx.ExecContext(ctx, `
INSERT INTO policies (name, currency, description, fee, rules)
SELECT name, currency, description, fee, rules FROM policy_versions
WHERE name = ?1 AND version = (SELECT MAX(version) FROM policy_versions WHERE name = ?1)
ON CONFLICT (name) DO UPDATE SET
    currency = excluded.currency, description = excluded.description, fee = excluded.fee, rules = excluded.rules
WHERE policies.currency <> excluded.currency OR policies.description <> excluded.description
    OR policies.fee <> excluded.fee OR policies.rules <> excluded.rules`, p.Name)
	if err != nil {
		return fmt.Errorf("version %d: %w", p.Version, err)
	}
	return nil
}

const versionCols = `name, version, effective_from, currency, description, fee, fee_interval, fee_timing, included, rules`

func scanVersion(rows *sql.Rows) (billing.Policy, error) {
	var p billing.Policy
	var eff sql.NullInt64
	var fee, included, rules string
	err := rows.Scan(&p.Name, &p.Version, &eff, &p.Currency, &p.Description, &fee, &p.FeeInterval, &p.FeeTiming, &included, &rules)
	if err != nil {
		return p, err
	}
	p.EffectiveFrom = fromNullSec(eff)
	return p, store.DecodePolicyJSON(&p, fee, included, rules)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// versionsTx returns the versions of one policy (or all when name is empty), oldest first.
func versionsTx(ctx context.Context, q querier, name string) ([]billing.Policy, error) {
	var out []billing.Policy
	rows, err := q.QueryContext(ctx, `SELECT `+versionCols+` FROM policy_versions
WHERE ?1 = '' OR name = ?1 ORDER BY name, version`, name)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		p, err := scanVersion(rows)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// Policies returns the latest version of every policy, by name.
func (s *Store) Policies(ctx context.Context) (map[string]billing.Policy, error) {
	out := map[string]billing.Policy{}
	rows, err := s.db.QueryContext(ctx, `SELECT `+versionCols+` FROM policy_versions AS v
WHERE version = (SELECT MAX(version) FROM policy_versions WHERE name = v.name)`)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		p, err := scanVersion(rows)
		if err != nil {
			return err
		}
		out[p.Name] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	return out, nil
}

// --- subscriptions ---------------------------------------------------------------------------------

// SubscriptionTx implements store.SubscriptionDriver.
func (d driver) SubscriptionTx(ctx context.Context, fn func(store.SubscriptionTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error { return fn(subscriptionTx{tx}) })
}

// LiveRanges implements store.SubscriptionDriver: a range scan of the (customer_id,
// resource_id) index.
func (d driver) LiveRanges(ctx context.Context, customerIDs []string, lo, hi string, fn func(string, string, invoice.RangeKind, interval.Range)) error {
	rows, err := d.s.db.QueryContext(ctx, `
SELECT r.customer_id, r.resource_id, b.kind, b.start_at, b.end_at
FROM json_each(?1) AS c CROSS JOIN resources AS r CROSS JOIN billed_ranges AS b
WHERE r.customer_id = c.value AND r.resource_id >= ?2 AND r.resource_id < ?3
  AND b.resource_key = r.key AND b.void = 0`, idsJSON(customerIDs), lo, hi)
	return eachRow(rows, err, func(rows *sql.Rows) error {
		var cust, id, kind string
		var start, end int64
		if err := rows.Scan(&cust, &id, &kind, &start, &end); err != nil {
			return err
		}
		fn(cust, id, invoice.RangeKind(kind), interval.Range{Start: fromSec(start), End: fromSec(end)})
		return nil
	})
}

type subscriptionTx struct{ tx *sql.Tx }

func (t subscriptionTx) PolicyExists(ctx context.Context, name string) (bool, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM policy_versions WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// LockCustomer checks the customer exists: the one writer at a time makes changes take turns.
func (t subscriptionTx) LockCustomer(ctx context.Context, customerID string) (bool, error) {
	var cur string
	err := t.tx.QueryRowContext(ctx, `SELECT currency FROM customers WHERE id = ?`, customerID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return cur != "", err
}

func (t subscriptionTx) InForce(ctx context.Context, customerID string, at time.Time) (billing.Subscription, bool, error) {
	var sub billing.Subscription
	var start int64
	var end sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `
SELECT id, customer_id, policy, start_at, end_at FROM subscriptions
WHERE customer_id = ?1 AND start_at <= ?2 AND (end_at IS NULL OR end_at > ?2)
ORDER BY start_at DESC, id DESC LIMIT 1`, customerID, sec(at)).Scan(&sub.ID, &sub.CustomerID, &sub.Policy, &start, &end)
	if errors.Is(err, sql.ErrNoRows) {
		return sub, false, nil
	}
	sub.Start = fromSec(start)
	return sub, err == nil, err
}

func (t subscriptionTx) Billed(ctx context.Context, customerID, resourceID string) (bool, error) {
	var billed int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM billed_ranges AS b JOIN resources AS r ON r.key = b.resource_key
WHERE r.customer_id = ? AND r.resource_id = ? AND b.void = 0`, customerID, resourceID).Scan(&billed)
	return billed > 0, err
}

func (t subscriptionTx) DeleteSubscription(ctx context.Context, id int64) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
	return err
}

func (t subscriptionTx) EndSubscription(ctx context.Context, id int64, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE subscriptions SET end_at = ? WHERE id = ?`, sec(at), id)
	return err
}

func (t subscriptionTx) NextStart(ctx context.Context, customerID string, after time.Time) (time.Time, error) {
	var later sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `SELECT MIN(start_at) FROM subscriptions WHERE customer_id = ? AND start_at > ?`,
		customerID, sec(after)).Scan(&later)
	return fromNullSec(later), err
}

func (t subscriptionTx) InsertSubscription(ctx context.Context, sub billing.Subscription) (int64, error) {
	var id int64
	err := t.tx.QueryRowContext(ctx, `INSERT INTO subscriptions (customer_id, policy, start_at, end_at) VALUES (?, ?, ?, ?) RETURNING id`,
		sub.CustomerID, sub.Policy, sec(sub.Start), nullSec(sub.End)).Scan(&id)
	return id, err
}

// --- discounts -------------------------------------------------------------------------------------

// AddDiscounts implements store.Discounts.
func (s *Store) AddDiscounts(ctx context.Context, ds []billing.Discount) ([]billing.Discount, error) {
	out := make([]billing.Discount, len(ds))
	for i, d := range ds {
		d.Start = interval.Norm(d.Start)
		if !d.End.IsZero() {
			d.End = interval.Norm(d.End)
		}
		if err := store.CheckDiscount(d); err != nil {
			return nil, fmt.Errorf("add discounts: discounts[%d] (customer %s): %w", i, d.CustomerID, err)
		}
		out[i] = d
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		cc, err := newCustomerCheck(ctx, tx)
		if err != nil {
			return err
		}
		defer cc.Close()
		for i := range out {
			d := &out[i]
			var cur string
			err := tx.QueryRowContext(ctx, `SELECT currency FROM customers WHERE id = ?`, d.CustomerID).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("discounts[%d]: customer %q is unknown", i, d.CustomerID)
			}
			if err != nil {
				return err
			}
			if d.Amount.IsPos() && d.Currency != cur {
				return fmt.Errorf("discounts[%d]: currency %s: the customer %s is billed in %s", i, d.Currency, d.CustomerID, cur)
			}
			if err := tx.QueryRowContext(ctx, `
INSERT INTO discounts (customer_id, scope, rule_type, resource_id, percent, amount, currency, start_at, end_at, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				d.CustomerID, d.Scope, d.RuleType, d.ResourceID, dec(d.Percent), dec(d.Amount), d.Currency,
				sec(d.Start), nullSec(d.End), d.Reason).Scan(&d.ID); err != nil {
				return fmt.Errorf("discounts[%d]: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add discounts: %w", err)
	}
	return out, nil
}

// Discounts implements store.Discounts.
func (s *Store) Discounts(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Discount, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []billing.Discount
	rows, err := s.db.QueryContext(ctx, `
SELECT d.id, d.customer_id, d.scope, d.rule_type, d.resource_id, d.percent, d.amount, d.currency, d.start_at, d.end_at, d.reason
FROM json_each(?1) AS c CROSS JOIN discounts AS d ON d.customer_id = c.value
WHERE d.start_at < ?3 AND (d.end_at IS NULL OR d.end_at > ?2)
ORDER BY d.customer_id, d.id`, idsJSON(customerIDs), sec(r.Start), sec(r.End))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var d billing.Discount
		var pct, amt string
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&d.ID, &d.CustomerID, &d.Scope, &d.RuleType, &d.ResourceID, &pct, &amt, &d.Currency, &start, &end, &d.Reason); err != nil {
			return err
		}
		var err error
		if d.Percent, err = codec.Decimal(pct, "discount percent"); err != nil {
			return err
		}
		if d.Amount, err = codec.Decimal(amt, "discount amount"); err != nil {
			return err
		}
		d.Start, d.End = fromSec(start), fromNullSec(end)
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("discounts: %w", err)
	}
	return out, nil
}

// --- credit notes ----------------------------------------------------------------------------------

const creditNoteCols = `c.id, c.number, i.number, c.customer_id, i.customer_name, i.currency, i.period_start, i.period_end,
    c.issued_at, c.subtotal, c.tax_rate, c.tax, c.total, c.reason, i.replaced_by`

func scanCreditNote(sc scanner) (invoice.CreditNote, error) {
	var cn invoice.CreditNote
	var ps, pe, issued int64
	var m [4]string
	err := sc.Scan(&cn.ID, &cn.Number, &cn.Invoice, &cn.CustomerID, &cn.CustomerName, &cn.Currency, &ps, &pe,
		&issued, &m[0], &m[1], &m[2], &m[3], &cn.Reason, &cn.ReplacedBy)
	if err != nil {
		return cn, err
	}
	cn.Period = interval.Range{Start: fromSec(ps), End: fromSec(pe)}
	cn.IssuedAt = fromSec(issued)
	return cn, store.DecodeCreditNoteMoney(&cn, m)
}

// GetCreditNote implements store.CreditNotes.
func (s *Store) GetCreditNote(ctx context.Context, number string) (*invoice.CreditNote, error) {
	cn, err := scanCreditNote(s.db.QueryRowContext(ctx, `SELECT `+creditNoteCols+`
FROM credit_notes AS c JOIN invoices AS i ON i.id = c.invoice_id WHERE c.number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get credit note %s: %w", number, err)
	}
	return &cn, nil
}

// ListCreditNotes implements store.CreditNotes.
func (s *Store) ListCreditNotes(ctx context.Context, customerID string) ([]invoice.CreditNote, error) {
	var out []invoice.CreditNote
	rows, err := s.db.QueryContext(ctx, `SELECT `+creditNoteCols+`
FROM credit_notes AS c JOIN invoices AS i ON i.id = c.invoice_id
WHERE ?1 = '' OR c.customer_id = ?1 ORDER BY c.id DESC`, customerID)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		cn, err := scanCreditNote(rows)
		if err != nil {
			return err
		}
		out = append(out, cn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list credit notes: %w", err)
	}
	return out, nil
}
