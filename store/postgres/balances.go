package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/govalues/decimal"
	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

var _ store.Balances = (*Store)(nil)

// Recharge implements store.Balances: the payment and its note in one transaction.
func (s *Store) Recharge(ctx context.Context, p billing.Payment, note string) (billing.Payment, error) {
	p, err := store.PrepareRecharge(p)
	if err != nil {
		return p, err
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
INSERT INTO payments (customer_id, amount, currency, received_at, reference)
SELECT id, $2::numeric, $3, $4, $5 FROM customers WHERE id = $1
RETURNING id`, p.CustomerID, p.Amount.String(), p.Currency, p.ReceivedAt, p.Reference).Scan(&p.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("customer %q is unknown", p.CustomerID)
		case pgConstraint(err) == "payments_reference":
			return fmt.Errorf("reference %q is already used by another payment", p.Reference)
		case err != nil:
			return err
		}
		if note != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO recharge_notes (payment_id, note) VALUES ($1, $2)`, p.ID, note); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("recharge %s: %w", p.CustomerID, err)
	}
	return p, nil
}

// SettledBalance implements store.Balances: payments received before at minus the totals of
// live issued invoices, summed exactly in Go from one snapshot.
func (s *Store) SettledBalance(ctx context.Context, customerID string, at time.Time) (decimal.Decimal, error) {
	sum := decimal.Zero
	rows, _ := s.pool.Query(ctx, `
SELECT amount::text, false FROM payments WHERE customer_id = $1 AND received_at < $2
UNION ALL
SELECT total::text, true FROM invoices WHERE customer_id = $1 AND status = 'issued' AND period_start < $2`,
		customerID, at)
	var (
		a   string
		neg bool
	)
	_, err := pgx.ForEachRow(rows, []any{&a, &neg}, func() error {
		d, err := codec.Decimal(a, "amount")
		if err != nil {
			return err
		}
		if neg {
			d = d.Neg()
		}
		sum, err = sum.Add(d)
		return err
	})
	if err != nil {
		return decimal.Zero, fmt.Errorf("settled balance of %s: %w", customerID, err)
	}
	return sum, nil
}

// BurnMarks implements store.Balances.
func (s *Store) BurnMarks(ctx context.Context, customerIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(customerIDs))
	if len(customerIDs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT customer_id, changes FROM balance_burn WHERE customer_id = ANY($1)`, customerIDs)
	var (
		id string
		n  int64
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("burn marks: %w", err)
	}
	return out, nil
}

// PutBurnStates implements store.Balances: one statement over arrays. A state given twice for a
// customer ends as the later one.
func (s *Store) PutBurnStates(ctx context.Context, states []store.BurnState) error {
	if len(states) == 0 {
		return nil
	}
	n := len(states)
	var (
		ids, currencies              = make([]string, 0, n), make([]string, 0, n)
		settled, accrued, base, rate = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		marks                        = make([]int64, 0, n)
		asOf                         = make([]time.Time, 0, n)
		until                        = make([]*time.Time, 0, n)
		spans                        = make([]int32, 0, n)
		seen                         = make(map[string]int, n)
	)
	for _, b := range states {
		if b.CustomerID == "" || b.AsOf.IsZero() {
			return fmt.Errorf("put burn states: customer %q: customer and as-of are required", b.CustomerID)
		}
		if j, ok := seen[b.CustomerID]; ok {
			marks[j], currencies[j], asOf[j], until[j] = b.Mark, b.Currency, interval.Norm(b.AsOf), nullTime(b.ValidUntil)
			settled[j], accrued[j], base[j], rate[j], spans[j] = b.Settled.String(), b.Accrued.String(), b.Base.String(), b.Rate.String(), int32(b.OpenSpans)
			continue
		}
		seen[b.CustomerID] = len(ids)
		ids, marks, currencies, asOf = append(ids, b.CustomerID), append(marks, b.Mark), append(currencies, b.Currency), append(asOf, interval.Norm(b.AsOf))
		settled, accrued, base = append(settled, b.Settled.String()), append(accrued, b.Accrued.String()), append(base, b.Base.String())
		rate, spans, until = append(rate, b.Rate.String()), append(spans, int32(b.OpenSpans)), append(until, nullTime(b.ValidUntil))
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO balance_burn AS b (customer_id, mark, currency, as_of, settled, accrued, base, rate, open_spans, valid_until)
SELECT id, mark, cur, as_of, settled::numeric, accrued::numeric, base::numeric, rate::numeric, spans, until
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int4[], $10::timestamptz[])
    AS j(id, mark, cur, as_of, settled, accrued, base, rate, spans, until)
ORDER BY id
ON CONFLICT (customer_id) DO UPDATE SET
    mark = excluded.mark, currency = excluded.currency, as_of = excluded.as_of,
    settled = excluded.settled, accrued = excluded.accrued, base = excluded.base,
    rate = excluded.rate, open_spans = excluded.open_spans, valid_until = excluded.valid_until`,
		ids, marks, currencies, asOf, settled, accrued, base, rate, spans, until)
	if err != nil {
		return fmt.Errorf("put burn states: %w", err)
	}
	return nil
}

const burnColumns = `customer_id, changes, mark, currency, as_of, settled::text, accrued::text, base::text, rate::text, open_spans, valid_until`

func scanBurn(row pgx.Row) (store.BurnState, error) {
	var b store.BurnState
	var changes int64
	var asOf, validUntil *time.Time
	var settled, accrued, base, rate string
	if err := row.Scan(&b.CustomerID, &changes, &b.Mark, &b.Currency, &asOf, &settled, &accrued, &base, &rate, &b.OpenSpans, &validUntil); err != nil {
		return b, err
	}
	b.AsOf = fromNull(asOf)
	b.ValidUntil = fromNull(validUntil)
	b.Stale = changes > b.Mark || asOf == nil
	var err error
	for _, f := range []struct {
		dst  *decimal.Decimal
		text string
		name string
	}{{&b.Settled, settled, "settled"}, {&b.Accrued, accrued, "accrued"}, {&b.Base, base, "base"}, {&b.Rate, rate, "rate"}} {
		if *f.dst, err = codec.Decimal(f.text, "burn state of "+b.CustomerID+" "+f.name); err != nil {
			return b, err
		}
	}
	return b, nil
}

// BurnState implements store.Balances: one primary-key lookup.
func (s *Store) BurnState(ctx context.Context, customerID string) (store.BurnState, error) {
	b, err := scanBurn(s.pool.QueryRow(ctx, `SELECT `+burnColumns+` FROM balance_burn WHERE customer_id = $1 AND as_of IS NOT NULL`, customerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("burn state of %s: %w", customerID, store.ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("burn state of %s: %w", customerID, err)
	}
	return b, nil
}

// EachBurnState implements store.Balances. It reads in pages (keyset on the primary key), so no
// transaction or connection is held while fn runs.
func (s *Store) EachBurnState(ctx context.Context, fn func(store.BurnState) error) error {
	return store.EachPage(1000, func(after string, limit int) ([]store.BurnState, error) {
		rows, _ := s.pool.Query(ctx, `SELECT `+burnColumns+` FROM balance_burn
WHERE customer_id > $1 AND as_of IS NOT NULL ORDER BY customer_id LIMIT $2`, after, limit)
		batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.BurnState, error) { return scanBurn(row) })
		if err != nil {
			return nil, fmt.Errorf("burn states: %w", err)
		}
		return batch, nil
	}, burnKey, fn)
}

func burnKey(b store.BurnState) string { return b.CustomerID }

// StaleCustomers implements store.Balances.
func (s *Store) StaleCustomers(ctx context.Context, asOfBefore, now time.Time, limit int) ([]string, error) {
	q := `
SELECT c.id FROM customers AS c LEFT JOIN balance_burn AS b ON b.customer_id = c.id
WHERE c.status <> 'closed'
  AND (b.customer_id IS NULL OR b.as_of IS NULL OR b.changes > b.mark OR b.as_of < $1
       OR b.valid_until <= $2)
ORDER BY c.id`
	args := []any{asOfBefore, now}
	if limit > 0 {
		q += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("stale customers: %w", err)
	}
	return out, nil
}

// GetFreezes implements store.Balances.
func (s *Store) GetFreezes(ctx context.Context, customerIDs []string) (map[string]store.Freeze, error) {
	out := map[string]store.Freeze{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `
SELECT customer_id, state, warned_at, depleted_at, frozen_at, action, dry_run, servers
FROM balance_freeze WHERE customer_id = ANY($1)`, customerIDs)
	var (
		f                        store.Freeze
		warned, depleted, frozen *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&f.CustomerID, &f.State, &warned, &depleted, &frozen, &f.Action, &f.DryRun, &f.Servers}, func() error {
		g := f
		g.WarnedAt, g.DepletedAt, g.FrozenAt = fromNull(warned), fromNull(depleted), fromNull(frozen)
		if len(g.Servers) == 0 {
			g.Servers = nil
		}
		out[g.CustomerID] = g
		f.Servers = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("freezes: %w", err)
	}
	return out, nil
}

// PutFreeze implements store.Balances.
func (s *Store) PutFreeze(ctx context.Context, f store.Freeze) error {
	status, err := store.PlanFreeze(f)
	if err != nil {
		return err
	}
	servers := f.Servers
	if servers == nil {
		servers = []string{}
	}
	norm := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		n := interval.Norm(t)
		return &n
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		if f.State == store.FreezeNone {
			b.Queue(`DELETE FROM balance_freeze WHERE customer_id = $1`, f.CustomerID)
		} else {
			b.Queue(`
INSERT INTO balance_freeze (customer_id, state, warned_at, depleted_at, frozen_at, action, dry_run, servers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (customer_id) DO UPDATE SET
    state = excluded.state, warned_at = excluded.warned_at, depleted_at = excluded.depleted_at,
    frozen_at = excluded.frozen_at, action = excluded.action, dry_run = excluded.dry_run, servers = excluded.servers`,
				f.CustomerID, f.State, norm(f.WarnedAt), norm(f.DepletedAt), norm(f.FrozenAt), f.Action, f.DryRun, servers)
		}
		// Only the escalation moves a customer between active and frozen; closed stays closed.
		b.Queue(`UPDATE customers SET status = $1 WHERE id = $2 AND status IN ('active', 'frozen') AND status <> $1`,
			status, f.CustomerID)
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("put freeze %s: %w", f.CustomerID, err)
	}
	return nil
}

// AddAudit implements store.Balances: one statement over arrays.
func (s *Store) AddAudit(ctx context.Context, evs []store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	at := make([]time.Time, n)
	cust, action, target, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	dry := make([]bool, n)
	for i, e := range evs {
		if e.CustomerID == "" || e.Action == "" || e.At.IsZero() {
			return fmt.Errorf("add audit: events[%d]: customer, action and time are required", i)
		}
		at[i], cust[i], action[i], target[i], detail[i], dry[i] = interval.Norm(e.At), e.CustomerID, e.Action, e.Target, e.Detail, e.DryRun
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO balance_audit (at, customer_id, action, target, detail, dry_run)
SELECT at, cust, action, target, detail, dry
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[]) WITH ORDINALITY
    AS j(at, cust, action, target, detail, dry, n)
ORDER BY n`, at, cust, action, target, detail, dry)
	if err != nil {
		return fmt.Errorf("add audit: %w", err)
	}
	return nil
}

// ListAudit implements store.Balances.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	q := `SELECT id, at, customer_id, action, target, detail, dry_run FROM balance_audit
WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR action = $2) ORDER BY id`
	args := []any{f.CustomerID, f.Action}
	if f.Limit > 0 {
		q += ` LIMIT $3`
		args = append(args, f.Limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AuditEvent, error) {
		var e store.AuditEvent
		var at time.Time
		err := row.Scan(&e.ID, &at, &e.CustomerID, &e.Action, &e.Target, &e.Detail, &e.DryRun)
		e.At = utc(at)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

const balanceRecordCols = `u.id, u.resource_key, r.resource_id, r.type, r.customer_id, u.start_at, u.end_at,
    u.attributes, u.source, u.version, u.settled`

func scanBalanceRecord(row pgx.CollectableRow) (billing.Record, error) {
	var rec billing.Record
	var start time.Time
	var end *time.Time
	var attrs string
	if err := row.Scan(&rec.ID, &rec.ResourceKey, &rec.ResourceID, &rec.ResourceType, &rec.CustomerID, &start, &end,
		&attrs, &rec.Source, &rec.Version, &rec.Settled); err != nil {
		return rec, err
	}
	rec.Start, rec.End = utc(start), fromNull(end)
	var err error
	rec.Attributes, err = codec.ParseAttrs(attrs)
	return rec, err
}

// OpenRecords implements store.Balances: the unsettled open records of the customers, read
// through the partial index of unsettled records.
func (s *Store) OpenRecords(ctx context.Context, customerIDs []string) ([]billing.Record, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+balanceRecordCols+`
FROM resources AS r
JOIN usage_records AS u ON u.resource_key = r.key AND NOT u.settled AND u.end_at IS NULL
WHERE r.customer_id = ANY($1)
ORDER BY r.customer_id, r.resource_id, u.start_at`, customerIDs)
	out, err := pgx.CollectRows(rows, scanBalanceRecord)
	if err != nil {
		return nil, fmt.Errorf("open records: %w", err)
	}
	return out, nil
}

// LastRecords implements store.Balances.
func (s *Store) LastRecords(ctx context.Context, customerID string, resourceIDs []string) (map[string]billing.Record, error) {
	out := map[string]billing.Record{}
	if len(resourceIDs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+balanceRecordCols+`
FROM resources AS r
CROSS JOIN LATERAL (SELECT * FROM usage_records AS x WHERE x.resource_key = r.key ORDER BY x.start_at DESC LIMIT 1) AS u
WHERE r.customer_id = $1 AND r.resource_id = ANY($2)`, customerID, resourceIDs)
	recs, err := pgx.CollectRows(rows, scanBalanceRecord)
	if err != nil {
		return nil, fmt.Errorf("last records of %s: %w", customerID, err)
	}
	for _, r := range recs {
		out[r.ResourceID] = r
	}
	return out, nil
}
