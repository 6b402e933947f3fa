package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// PolicyTx implements store.PolicyDriver.
func (d driver) PolicyTx(ctx context.Context, fn func(store.PolicyTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(policyTx{tx}) })
}

// Versions implements store.PolicyDriver.
func (d driver) Versions(ctx context.Context, name string) ([]billing.Policy, error) {
	return versionsTx(ctx, d.s.pool, name, false)
}

type policyTx struct{ tx pgx.Tx }

// LockedVersions locks the versions of the named policy until the transaction ends, so two
// writers adding a version to the same policy take turns; a policy with no version yet is
// serialised by an advisory lock on its name.
func (t policyTx) LockedVersions(ctx context.Context, name string) ([]billing.Policy, error) {
	return versionsTx(ctx, t.tx, name, true)
}

// UpsertVersion writes one version; an identical one is left alone (no trigger fires, so the
// prepaid balances stay fresh when a policy file is imported again).
func (t policyTx) UpsertVersion(ctx context.Context, p billing.Policy, now time.Time) error {
	rj, ij, err := store.EncodePolicyJSON(p)
	if err != nil {
		return err
	}
	// The fee is compared as text: a correction from 62.0 to 62.00 is a change of what is shown.
	if _, err := t.tx.Exec(ctx, `
INSERT INTO policy_versions AS v (name, version, effective_from, currency, description, fee, fee_interval, fee_timing,
    included, rules, created_at)
VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9::jsonb, $10::jsonb, $11)
ON CONFLICT (name, version) DO UPDATE SET
    effective_from = excluded.effective_from, currency = excluded.currency, description = excluded.description,
    fee = excluded.fee, fee_interval = excluded.fee_interval, fee_timing = excluded.fee_timing,
    included = excluded.included, rules = excluded.rules
WHERE v.effective_from IS DISTINCT FROM excluded.effective_from OR v.currency <> excluded.currency
    OR v.description <> excluded.description OR v.fee::text <> excluded.fee::text
    OR v.fee_interval <> excluded.fee_interval OR v.fee_timing <> excluded.fee_timing
    OR v.included <> excluded.included OR v.rules <> excluded.rules`,
		p.Name, p.Version, nullTime(p.EffectiveFrom), p.Currency, p.Description, p.Fee.String(), p.Interval(), p.Timing(),
		ij, rj, interval.Norm(now)); err != nil {
		return fmt.Errorf("version %d: %w", p.Version, err)
	}
	return nil
}

const versionCols = `name, version, effective_from, currency, description, fee::text, fee_interval, fee_timing, included::text, rules::text`

// collectVersions reads rows of versionCols.
func collectVersions(rows pgx.Rows) ([]billing.Policy, error) {
	var (
		out                  []billing.Policy
		p                    billing.Policy
		eff                  *time.Time
		fee, included, rules string
	)
	_, err := pgx.ForEachRow(rows, []any{&p.Name, &p.Version, &eff, &p.Currency, &p.Description, &fee, &p.FeeInterval, &p.FeeTiming, &included, &rules}, func() error {
		v := p
		v.EffectiveFrom = fromNull(eff)
		if err := store.DecodePolicyJSON(&v, fee, included, rules); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// versionsTx returns the versions of one policy (or all when name is empty), oldest first; with
// lock, under the policy's advisory lock (see LockedVersions).
func versionsTx(ctx context.Context, q querier, name string, lock bool) ([]billing.Policy, error) {
	if lock {
		rows, _ := q.Query(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('bilean-policy:' || $1, 0))`, name)
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	rows, _ := q.Query(ctx, `SELECT `+versionCols+` FROM policy_versions
WHERE $1 = '' OR name = $1 ORDER BY name, version`, name)
	return collectVersions(rows)
}

// Policies returns the latest version of every policy, by name.
func (s *Store) Policies(ctx context.Context) (map[string]billing.Policy, error) {
	rows, _ := s.pool.Query(ctx, `SELECT DISTINCT ON (name) `+versionCols+` FROM policy_versions ORDER BY name, version DESC`)
	vs, err := collectVersions(rows)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	out := make(map[string]billing.Policy, len(vs))
	for _, p := range vs {
		out[p.Name] = p
	}
	return out, nil
}

// --- subscriptions ---------------------------------------------------------------------------------

// SubscriptionTx implements store.SubscriptionDriver.
func (d driver) SubscriptionTx(ctx context.Context, fn func(store.SubscriptionTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(subscriptionTx{tx}) })
}

// LiveRanges implements store.SubscriptionDriver: a range scan of the (customer_id,
// resource_id) index.
func (d driver) LiveRanges(ctx context.Context, customerIDs []string, lo, hi string, fn func(string, string, invoice.RangeKind, interval.Range)) error {
	rows, _ := d.s.pool.Query(ctx, `
SELECT r.customer_id, r.resource_id, b.kind, lower(b.during), upper(b.during)
FROM resources AS r JOIN billed_ranges AS b ON b.resource_key = r.key AND b.live
WHERE r.customer_id = ANY($1) AND r.resource_id >= $2 AND r.resource_id < $3`, customerIDs, lo, hi)
	var (
		cust, id   string
		kind       int16
		start, end time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&cust, &id, &kind, &start, &end}, func() error {
		fn(cust, id, kindName(kind), interval.Range{Start: utc(start), End: utc(end)})
		return nil
	})
	return err
}

type subscriptionTx struct{ tx pgx.Tx }

func (t subscriptionTx) PolicyExists(ctx context.Context, name string) (bool, error) {
	var exists bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM policy_versions WHERE name = $1)`, name).Scan(&exists)
	return exists, err
}

// LockCustomer takes the customer's row lock (FOR NO KEY UPDATE) for the rest of the transaction.
func (t subscriptionTx) LockCustomer(ctx context.Context, customerID string) (bool, error) {
	var id string
	err := t.tx.QueryRow(ctx, `SELECT id FROM customers WHERE id = $1 FOR NO KEY UPDATE`, customerID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t subscriptionTx) InForce(ctx context.Context, customerID string, at time.Time) (billing.Subscription, bool, error) {
	var sub billing.Subscription
	var start time.Time
	var end *time.Time
	err := t.tx.QueryRow(ctx, `
SELECT id, customer_id, policy, start_at, end_at FROM subscriptions
WHERE customer_id = $1 AND start_at <= $2 AND (end_at IS NULL OR end_at > $2)
ORDER BY start_at DESC, id DESC LIMIT 1`, customerID, at).Scan(&sub.ID, &sub.CustomerID, &sub.Policy, &start, &end)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, false, nil
	}
	sub.Start = utc(start)
	return sub, err == nil, err
}

func (t subscriptionTx) Billed(ctx context.Context, customerID, resourceID string) (bool, error) {
	var billed bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM billed_ranges AS b JOIN resources AS r ON r.key = b.resource_key
WHERE r.customer_id = $1 AND r.resource_id = $2 AND b.live)`, customerID, resourceID).Scan(&billed)
	return billed, err
}

func (t subscriptionTx) DeleteSubscription(ctx context.Context, id int64) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1`, id)
	return err
}

func (t subscriptionTx) EndSubscription(ctx context.Context, id int64, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE subscriptions SET end_at = $1 WHERE id = $2`, at, id)
	return err
}

func (t subscriptionTx) NextStart(ctx context.Context, customerID string, after time.Time) (time.Time, error) {
	var later *time.Time
	err := t.tx.QueryRow(ctx, `SELECT min(start_at) FROM subscriptions WHERE customer_id = $1 AND start_at > $2`,
		customerID, after).Scan(&later)
	return fromNull(later), err
}

func (t subscriptionTx) InsertSubscription(ctx context.Context, sub billing.Subscription) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO subscriptions (customer_id, policy, start_at, end_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		sub.CustomerID, sub.Policy, sub.Start, nullTime(sub.End)).Scan(&id)
	return id, err
}

// --- discounts -------------------------------------------------------------------------------------

// AddDiscounts implements store.Discounts.
func (s *Store) AddDiscounts(ctx context.Context, ds []billing.Discount) ([]billing.Discount, error) {
	out := make([]billing.Discount, len(ds))
	ids := make([]string, len(ds))
	for i, d := range ds {
		d.Start = interval.Norm(d.Start)
		if !d.End.IsZero() {
			d.End = interval.Norm(d.End)
		}
		if err := store.CheckDiscount(d); err != nil {
			return nil, fmt.Errorf("add discounts: discounts[%d] (customer %s): %w", i, d.CustomerID, err)
		}
		out[i], ids[i] = d, d.CustomerID
	}
	if len(out) == 0 {
		return out, nil
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		currencies := map[string]string{}
		rows, _ := tx.Query(ctx, `SELECT id, currency FROM customers WHERE id = ANY($1)`, codec.SortedUnique(ids))
		var id, cur string
		if _, err := pgx.ForEachRow(rows, []any{&id, &cur}, func() error {
			currencies[id] = cur
			return nil
		}); err != nil {
			return err
		}
		var b pgx.Batch
		for i := range out {
			d := &out[i]
			cur, ok := currencies[d.CustomerID]
			if !ok {
				return fmt.Errorf("discounts[%d]: customer %q is unknown", i, d.CustomerID)
			}
			if d.Amount.IsPos() && d.Currency != cur {
				return fmt.Errorf("discounts[%d]: currency %s: the customer %s is billed in %s", i, d.Currency, d.CustomerID, cur)
			}
			b.Queue(`
INSERT INTO discounts (customer_id, scope, rule_type, resource_id, percent, amount, currency, start_at, end_at, reason)
VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9, $10) RETURNING id`,
				d.CustomerID, d.Scope, d.RuleType, d.ResourceID, d.Percent.String(), d.Amount.String(), d.Currency,
				d.Start, nullTime(d.End), d.Reason).QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&d.ID); err != nil {
					return fmt.Errorf("discounts[%d]: %w", i, err)
				}
				return nil
			})
		}
		return tx.SendBatch(ctx, &b).Close()
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
	rows, _ := s.pool.Query(ctx, `
SELECT id, customer_id, scope, rule_type, resource_id, percent::text, amount::text, currency, start_at, end_at, reason
FROM discounts
WHERE customer_id = ANY($1) AND start_at < $3 AND (end_at IS NULL OR end_at > $2)
ORDER BY customer_id, id`, customerIDs, r.Start, r.End)
	var (
		d        billing.Discount
		pct, amt string
		start    time.Time
		end      *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&d.ID, &d.CustomerID, &d.Scope, &d.RuleType, &d.ResourceID, &pct, &amt, &d.Currency, &start, &end, &d.Reason}, func() error {
		var err error
		if d.Percent, err = codec.Decimal(pct, "discount percent"); err != nil {
			return err
		}
		if d.Amount, err = codec.Decimal(amt, "discount amount"); err != nil {
			return err
		}
		d.Start, d.End = utc(start), fromNull(end)
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
    c.issued_at, c.subtotal::text, c.tax_rate::text, c.tax::text, c.total::text, c.reason, i.replaced_by`

func scanCreditNote(row pgx.Row) (invoice.CreditNote, error) {
	var cn invoice.CreditNote
	var ps, pe, issued time.Time
	var m [4]string
	err := row.Scan(&cn.ID, &cn.Number, &cn.Invoice, &cn.CustomerID, &cn.CustomerName, &cn.Currency, &ps, &pe,
		&issued, &m[0], &m[1], &m[2], &m[3], &cn.Reason, &cn.ReplacedBy)
	if err != nil {
		return cn, err
	}
	cn.Period = interval.Range{Start: utc(ps), End: utc(pe)}
	cn.IssuedAt = utc(issued)
	return cn, store.DecodeCreditNoteMoney(&cn, m)
}

// GetCreditNote implements store.CreditNotes.
func (s *Store) GetCreditNote(ctx context.Context, number string) (*invoice.CreditNote, error) {
	cn, err := scanCreditNote(s.pool.QueryRow(ctx, `SELECT `+creditNoteCols+`
FROM credit_notes AS c JOIN invoices AS i ON i.id = c.invoice_id WHERE c.number = $1`, number))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get credit note %s: %w", number, err)
	}
	return &cn, nil
}

// ListCreditNotes implements store.CreditNotes.
func (s *Store) ListCreditNotes(ctx context.Context, customerID string) ([]invoice.CreditNote, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+creditNoteCols+`
FROM credit_notes AS c JOIN invoices AS i ON i.id = c.invoice_id
WHERE $1 = '' OR c.customer_id = $1 ORDER BY c.id DESC`, customerID)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (invoice.CreditNote, error) { return scanCreditNote(row) })
	if err != nil {
		return nil, fmt.Errorf("list credit notes: %w", err)
	}
	return out, nil
}
