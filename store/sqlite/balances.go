package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
	"github.com/govalues/decimal"
)

var _ store.Balances = (*Store)(nil)

// Recharge implements store.Balances: the payment and its note in one transaction.
func (s *Store) Recharge(ctx context.Context, p billing.Payment, note string) (billing.Payment, error) {
	p, err := store.PrepareRecharge(p)
	if err != nil {
		return p, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM customers WHERE id = ?`, p.CustomerID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return fmt.Errorf("customer %q is unknown", p.CustomerID)
		}
		err := tx.QueryRowContext(ctx, `
INSERT INTO payments (customer_id, amount, currency, received_at, reference) VALUES (?, ?, ?, ?, ?)
RETURNING id`, p.CustomerID, dec(p.Amount), p.Currency, sec(p.ReceivedAt), p.Reference).Scan(&p.ID)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("reference %q is already used by another payment", p.Reference)
			}
			return err
		}
		if note != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recharge_notes (payment_id, note) VALUES (?, ?)`, p.ID, note); err != nil {
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

// SettledBalance implements store.Balances.
func (s *Store) SettledBalance(ctx context.Context, customerID string, at time.Time) (decimal.Decimal, error) {
	sum := decimal.Zero
	err := s.read(ctx, func(tx *sql.Tx) error {
		add := func(q string, neg bool) error {
			rows, err := tx.QueryContext(ctx, q, customerID, sec(at))
			return eachRow(rows, err, func(rows *sql.Rows) error {
				var a string
				if err := rows.Scan(&a); err != nil {
					return err
				}
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
		}
		if err := add(`SELECT amount FROM payments WHERE customer_id = ? AND received_at < ?`, false); err != nil {
			return err
		}
		return add(`SELECT total FROM invoices WHERE customer_id = ? AND status = 'issued' AND period_start < ?`, true)
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
	rows, err := s.db.QueryContext(ctx, `
SELECT b.customer_id, b.changes FROM json_each(?) AS c JOIN balance_burn AS b ON b.customer_id = c.value`, idsJSON(customerIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("burn marks: %w", err)
	}
	return out, nil
}

// PutBurnStates implements store.Balances.
func (s *Store) PutBurnStates(ctx context.Context, states []store.BurnState) error {
	if len(states) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `
INSERT INTO balance_burn (customer_id, mark, currency, as_of, settled, accrued, base, rate, open_spans, valid_until)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET
    mark = excluded.mark, currency = excluded.currency, as_of = excluded.as_of,
    settled = excluded.settled, accrued = excluded.accrued, base = excluded.base,
    rate = excluded.rate, open_spans = excluded.open_spans, valid_until = excluded.valid_until`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, b := range states {
			if b.CustomerID == "" || b.AsOf.IsZero() {
				return fmt.Errorf("customer %q: customer and as-of are required", b.CustomerID)
			}
			if _, err := st.ExecContext(ctx, b.CustomerID, b.Mark, b.Currency, sec(b.AsOf), dec(b.Settled), dec(b.Accrued),
				dec(b.Base), dec(b.Rate), b.OpenSpans, nullSec(b.ValidUntil)); err != nil {
				return fmt.Errorf("customer %s: %w", b.CustomerID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put burn states: %w", err)
	}
	return nil
}

const burnColumns = `customer_id, changes, mark, currency, as_of, settled, accrued, base, rate, open_spans, valid_until`

func scanBurn(sc interface{ Scan(...any) error }) (store.BurnState, error) {
	var b store.BurnState
	var changes int64
	var asOf, validUntil sql.NullInt64
	var settled, accrued, base, rate string
	if err := sc.Scan(&b.CustomerID, &changes, &b.Mark, &b.Currency, &asOf, &settled, &accrued, &base, &rate, &b.OpenSpans, &validUntil); err != nil {
		return b, err
	}
	b.AsOf = fromNullSec(asOf)
	b.ValidUntil = fromNullSec(validUntil)
	b.Stale = changes > b.Mark || !asOf.Valid
	var err error
	if b.Settled, err = codec.Decimal(settled, "settled"); err != nil {
		return b, err
	}
	if b.Accrued, err = codec.Decimal(accrued, "accrued"); err != nil {
		return b, err
	}
	if b.Base, err = codec.Decimal(base, "base"); err != nil {
		return b, err
	}
	if b.Rate, err = codec.Decimal(rate, "rate"); err != nil {
		return b, err
	}
	return b, nil
}

// BurnState implements store.Balances: one primary-key lookup.
func (s *Store) BurnState(ctx context.Context, customerID string) (store.BurnState, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+burnColumns+` FROM balance_burn WHERE customer_id = ? AND as_of IS NOT NULL`, customerID)
	b, err := scanBurn(row)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("burn state of %s: %w", customerID, store.ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("burn state of %s: %w", customerID, err)
	}
	return b, nil
}

// EachBurnState implements store.Balances. It reads in pages so no transaction is held while fn
// runs.
func (s *Store) EachBurnState(ctx context.Context, fn func(store.BurnState) error) error {
	return store.EachPage(1000, func(after string, limit int) ([]store.BurnState, error) {
		var batch []store.BurnState
		rows, err := s.db.QueryContext(ctx, `SELECT `+burnColumns+` FROM balance_burn
WHERE customer_id > ? AND as_of IS NOT NULL ORDER BY customer_id LIMIT ?`, after, limit)
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			b, err := scanBurn(rows)
			if err != nil {
				return err
			}
			batch = append(batch, b)
			return nil
		})
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
  AND (b.customer_id IS NULL OR b.as_of IS NULL OR b.changes > b.mark OR b.as_of < ?1
       OR b.valid_until <= ?2)
ORDER BY c.id`
	args := []any{sec(asOfBefore), sec(now)}
	if limit > 0 {
		q += ` LIMIT ?3`
		args = append(args, limit)
	}
	var out []string
	rows, err := s.db.QueryContext(ctx, q, args...)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
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
	rows, err := s.db.QueryContext(ctx, `
SELECT f.customer_id, f.state, f.warned_at, f.depleted_at, f.frozen_at, f.action, f.dry_run, f.servers
FROM json_each(?) AS c JOIN balance_freeze AS f ON f.customer_id = c.value`, idsJSON(customerIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var f store.Freeze
		var warned, depleted, frozen sql.NullInt64
		var dry int
		var servers string
		if err := rows.Scan(&f.CustomerID, &f.State, &warned, &depleted, &frozen, &f.Action, &dry, &servers); err != nil {
			return err
		}
		f.WarnedAt, f.DepletedAt, f.FrozenAt, f.DryRun = fromNullSec(warned), fromNullSec(depleted), fromNullSec(frozen), dry == 1
		if err := json.Unmarshal([]byte(servers), &f.Servers); err != nil {
			return fmt.Errorf("customer %s: servers %q: %w", f.CustomerID, servers, err)
		}
		out[f.CustomerID] = f
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
	sj, err := json.Marshal(servers)
	if err != nil {
		return fmt.Errorf("put freeze %s: %w", f.CustomerID, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if f.State == store.FreezeNone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM balance_freeze WHERE customer_id = ?`, f.CustomerID); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `
INSERT INTO balance_freeze (customer_id, state, warned_at, depleted_at, frozen_at, action, dry_run, servers)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET
    state = excluded.state, warned_at = excluded.warned_at, depleted_at = excluded.depleted_at,
    frozen_at = excluded.frozen_at, action = excluded.action, dry_run = excluded.dry_run, servers = excluded.servers`,
			f.CustomerID, f.State, nullSec(f.WarnedAt), nullSec(f.DepletedAt), nullSec(f.FrozenAt), f.Action, boolInt(f.DryRun), string(sj)); err != nil {
			return err
		}
		// Only the escalation moves a customer between active and frozen; closed stays closed.
		_, err := tx.ExecContext(ctx, `UPDATE customers SET status = ? WHERE id = ? AND status IN ('active', 'frozen') AND status <> ?`,
			status, f.CustomerID, status)
		return err
	})
	if err != nil {
		return fmt.Errorf("put freeze %s: %w", f.CustomerID, err)
	}
	return nil
}

// AddAudit implements store.Balances.
func (s *Store) AddAudit(ctx context.Context, evs []store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `
INSERT INTO balance_audit (at, customer_id, action, target, detail, dry_run) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, e := range evs {
			if e.CustomerID == "" || e.Action == "" || e.At.IsZero() {
				return fmt.Errorf("events[%d]: customer, action and time are required", i)
			}
			if _, err := st.ExecContext(ctx, sec(e.At), e.CustomerID, e.Action, e.Target, e.Detail, boolInt(e.DryRun)); err != nil {
				return fmt.Errorf("events[%d]: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add audit: %w", err)
	}
	return nil
}

// ListAudit implements store.Balances.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	q := `SELECT id, at, customer_id, action, target, detail, dry_run FROM balance_audit
WHERE (?1 = '' OR customer_id = ?1) AND (?2 = '' OR action = ?2) ORDER BY id`
	args := []any{f.CustomerID, f.Action}
	if f.Limit > 0 {
		q += ` LIMIT ?3`
		args = append(args, f.Limit)
	}
	var out []store.AuditEvent
	rows, err := s.db.QueryContext(ctx, q, args...)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var e store.AuditEvent
		var at int64
		var dry int
		if err := rows.Scan(&e.ID, &at, &e.CustomerID, &e.Action, &e.Target, &e.Detail, &dry); err != nil {
			return err
		}
		e.At, e.DryRun = fromSec(at), dry == 1
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

const recordColumns = `r.id, r.resource_key, res.resource_id, res.type, r.customer_id, r.start_at, r.end_at,
r.attributes, r.source, r.version, r.settled`

func scanRecord(rows *sql.Rows) (billing.Record, error) {
	var r billing.Record
	var start int64
	var end sql.NullInt64
	var attrs string
	var settled int
	if err := rows.Scan(&r.ID, &r.ResourceKey, &r.ResourceID, &r.ResourceType, &r.CustomerID, &start, &end, &attrs, &r.Source, &r.Version, &settled); err != nil {
		return r, err
	}
	r.Start, r.End, r.Settled = fromSec(start), fromNullSec(end), settled == 1
	var err error
	r.Attributes, err = codec.ParseAttrs(attrs)
	return r, err
}

// OpenRecords implements store.Balances.
func (s *Store) OpenRecords(ctx context.Context, customerIDs []string) ([]billing.Record, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []billing.Record
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+`
FROM json_each(?) AS c
JOIN usage_records AS r ON r.customer_id = c.value AND r.settled = 0 AND r.end_at IS NULL
JOIN resources AS res ON res.key = r.resource_key
ORDER BY r.customer_id, res.resource_id, r.start_at`, idsJSON(customerIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
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
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+`
FROM json_each(?2) AS c
JOIN resources AS res ON res.customer_id = ?1 AND res.resource_id = c.value
JOIN usage_records AS r ON r.resource_key = res.key
WHERE r.start_at = (SELECT max(start_at) FROM usage_records WHERE resource_key = res.key)`, customerID, idsJSON(resourceIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		out[r.ResourceID] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("last records of %s: %w", customerID, err)
	}
	return out, nil
}
