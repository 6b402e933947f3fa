package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
	"github.com/govalues/decimal"
)

// overlapTag starts the message of the billed_ranges triggers (a constant since migration 00011:
// the invoice holding the range is looked up by NameOverlap).
const overlapTag = "bilean-overlap: "

// insertLines stores the lines with one statement: a JSON array of rows expanded by json_each,
// so a 3,000-line invoice costs one round trip through database/sql, not 3,000.
func insertLines(ctx context.Context, tx *sql.Tx, invoiceID int64, lines []invoice.Line) error {
	if len(lines) == 0 {
		return nil
	}
	rows := make([][]any, len(lines))
	for n, l := range lines {
		attrs, err := codec.AttrsJSON(l.Attributes)
		if err != nil {
			return fmt.Errorf("lines[%d]: attributes: %w", n, err)
		}
		rows[n] = []any{n + 1, string(l.Section), l.ResourceID, l.ResourceType, l.Description, l.Policy, l.Region,
			sec(l.Start), sec(l.End), l.Seconds, dec(l.Quantity), l.Unit, dec(l.UnitPrice), dec(l.Amount), attrs, l.Granularity}
	}
	payload, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("lines: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO invoice_lines (invoice_id, n, section, resource_id, resource_type, description, policy, region,
    start_at, end_at, seconds, quantity, unit, unit_price, amount, attributes, granularity)
SELECT ?1, v ->> 0, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 5, v ->> 6,
    v ->> 7, v ->> 8, v ->> 9, v ->> 10, v ->> 11, v ->> 12, v ->> 13, v ->> 14, v ->> 15
FROM (SELECT j.value AS v FROM json_each(?2) AS j ORDER BY j.key)`, invoiceID, string(payload)); err != nil {
		return fmt.Errorf("lines: %w", err)
	}
	return nil
}

// overlapNumber extracts the invoice number from a trigger error, e.g.
// "constraint failed: bilean-overlap: INV-2026-000001 (1811)".
func overlapNumber(err error) string {
	msg := err.Error()
	i := strings.Index(msg, overlapTag)
	if i < 0 {
		return ""
	}
	msg = msg[i+len(overlapTag):]
	if j := strings.LastIndex(msg, " ("); j >= 0 {
		msg = msg[:j]
	}
	if msg = strings.TrimSpace(msg); strings.Contains(msg, " ") {
		return "" // the constant message of 00011 names no invoice
	}
	return msg
}

// settle marks the referenced records of the customer settled where they are still at the
// referenced version, with one statement: [[id, version], ...] as a JSON parameter.
func settle(ctx context.Context, tx *sql.Tx, customer string, refs []billing.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	b := make([]byte, 0, 24*len(refs)+2)
	b = append(b, '[')
	for i, r := range refs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, r.ID, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.Version, 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	if _, err := tx.ExecContext(ctx, settleSQL, string(b), customer); err != nil {
		return fmt.Errorf("settle records: %w", err)
	}
	return nil
}

// voidTx voids one invoice: status void with the reason, its billed ranges released and the
// records they covered unsettled, so the usage is seen again by the next run.
func voidTx(ctx context.Context, tx *sql.Tx, id int64, reason, replacedBy string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE invoices SET status = 'void', void_reason = ?, replaced_by = ? WHERE id = ?`,
		reason, replacedBy, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, unsettleSQL, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE billed_ranges SET void = 1 WHERE invoice_id = ? AND void = 0`, id); err != nil {
		return err
	}
	return nil
}

const invoiceCols = `id, number, kind, status, customer_id, customer_name, currency, period_start, period_end,
    issued_at, subtotal, tax_rate, tax, total, payments, previous_balance, balance_due, run_id, replaces,
    replaced_by, void_reason, credit_note, tax_exempt, tax_region, credit_applied, amount_due`

type scanner interface{ Scan(dest ...any) error }

func scanInvoice(sc scanner) (invoice.Invoice, error) {
	var inv invoice.Invoice
	var kind, status string
	var pStart, pEnd, issued int64
	var money [9]string
	var exempt int
	if err := sc.Scan(&inv.ID, &inv.Number, &kind, &status, &inv.CustomerID, &inv.CustomerName, &inv.Currency,
		&pStart, &pEnd, &issued, &money[0], &money[1], &money[2], &money[3], &money[4], &money[5], &money[6],
		&inv.RunID, &inv.Replaces, &inv.ReplacedBy, &inv.VoidReason, &inv.CreditNote, &exempt, &inv.TaxRegion,
		&money[7], &money[8]); err != nil {
		return inv, err
	}
	inv.Kind, inv.Status = invoice.Kind(kind), invoice.Status(status)
	inv.Period = interval.Range{Start: fromSec(pStart), End: fromSec(pEnd)}
	inv.IssuedAt = fromSec(issued)
	inv.TaxExempt = exempt != 0
	return inv, store.DecodeInvoiceMoney(&inv, money)
}

// ListInvoices returns invoices matching the filter without lines or ranges, newest first.
func (s *Store) ListInvoices(ctx context.Context, f store.InvoiceFilter) ([]invoice.Invoice, error) {
	q := `SELECT ` + invoiceCols + ` FROM invoices WHERE 1 = 1`
	var args []any
	if f.CustomerID != "" {
		q += ` AND customer_id = ?`
		args = append(args, f.CustomerID)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Period != nil {
		q += ` AND period_start >= ? AND period_start < ?`
		args = append(args, sec(f.Period.Start), sec(f.Period.End))
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var out []invoice.Invoice
	rows, err := s.db.QueryContext(ctx, q, args...)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		inv, err := scanInvoice(rows)
		if err != nil {
			return err
		}
		out = append(out, inv)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	return out, nil
}

// ReadTx implements store.InvoiceDriver: a read-only transaction.
func (d driver) ReadTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.read(ctx, func(tx *sql.Tx) error { return fn(invoiceTx{tx}) })
}

func (t invoiceTx) InvoiceByNumber(ctx context.Context, number string) (invoice.Invoice, error) {
	inv, err := scanInvoice(t.tx.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, store.ErrNotFound
	}
	return inv, err
}

func (t invoiceTx) Lines(ctx context.Context, id int64) ([]invoice.Line, error) {
	var out []invoice.Line
	rows, err := t.tx.QueryContext(ctx, `
SELECT section, resource_id, resource_type, description, policy, region, start_at, end_at, seconds,
       quantity, unit, unit_price, amount, attributes, granularity
FROM invoice_lines WHERE invoice_id = ? ORDER BY n`, id)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var l invoice.Line
		var section, qty, price, amount, attrs string
		var start, end int64
		err := rows.Scan(&section, &l.ResourceID, &l.ResourceType, &l.Description, &l.Policy, &l.Region,
			&start, &end, &l.Seconds, &qty, &l.Unit, &price, &amount, &attrs, &l.Granularity)
		if err != nil {
			return err
		}
		l.Start, l.End = fromSec(start), fromSec(end)
		if err := store.DecodeLine(&l, len(out)+1, section, qty, price, amount, attrs); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t invoiceTx) Ranges(ctx context.Context, id int64) ([]invoice.BilledRange, error) {
	return readRanges(ctx, t.tx, id)
}

func readRanges(ctx context.Context, tx *sql.Tx, id int64) ([]invoice.BilledRange, error) {
	var out []invoice.BilledRange
	rows, err := tx.QueryContext(ctx, `
SELECT b.resource_key, r.resource_id, r.type, b.kind, b.start_at, b.end_at
FROM billed_ranges AS b JOIN resources AS r ON r.key = b.resource_key
WHERE b.invoice_id = ?
ORDER BY r.resource_id, b.kind, b.start_at`, id)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var br invoice.BilledRange
		var kind string
		var start, end int64
		if err := rows.Scan(&br.ResourceKey, &br.ResourceID, &br.ResourceType, &kind, &start, &end); err != nil {
			return err
		}
		br.Kind = invoice.RangeKind(kind)
		br.Range = interval.Range{Start: fromSec(start), End: fromSec(end)}
		out = append(out, br)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Balances returns, per customer, the total of issued invoices whose period starts before
// `before` minus the payments received before it, summed exactly in Go. Customers with neither
// are absent.
func (s *Store) Balances(ctx context.Context, customerIDs []string, before time.Time) (map[string]decimal.Decimal, error) {
	out := map[string]decimal.Decimal{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	ids := idsJSON(customerIDs)
	err := s.read(ctx, func(tx *sql.Tx) error {
		add := func(q string, sign int) error {
			rows, err := tx.QueryContext(ctx, q, ids, sec(before))
			return eachRow(rows, err, func(rows *sql.Rows) error {
				var cust, amount string
				if err := rows.Scan(&cust, &amount); err != nil {
					return err
				}
				d, err := codec.Decimal(amount, "amount of customer "+cust)
				if err != nil {
					return err
				}
				if sign < 0 {
					d = d.Neg()
				}
				sum, err := out[cust].Add(d)
				if err != nil {
					return fmt.Errorf("customer %s: %w", cust, err)
				}
				out[cust] = sum
				return nil
			})
		}
		if err := add(`
SELECT i.customer_id, i.total
FROM json_each(?1) AS c CROSS JOIN invoices AS i
WHERE i.customer_id = c.value AND i.status = 'issued' AND i.period_start < ?2`, +1); err != nil {
			return err
		}
		return add(`
SELECT p.customer_id, p.amount
FROM json_each(?1) AS c CROSS JOIN payments AS p
WHERE p.customer_id = c.value AND p.received_at < ?2`, -1)
	})
	if err != nil {
		return nil, fmt.Errorf("balances: %w", err)
	}
	return out, nil
}

// Invoiced returns, per customer, the number of its live scheduled invoice for the period.
func (s *Store) Invoiced(ctx context.Context, customerIDs []string, period interval.Range) (map[string]string, error) {
	out := map[string]string{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `
SELECT i.customer_id, i.number
FROM json_each(?1) AS c CROSS JOIN invoices AS i
WHERE i.customer_id = c.value AND i.period_start = ?2 AND i.kind = 'scheduled' AND i.status <> 'void'`,
		idsJSON(customerIDs), sec(period.Start))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var cust, number string
		if err := rows.Scan(&cust, &number); err != nil {
			return err
		}
		out[cust] = number
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invoiced: %w", err)
	}
	return out, nil
}

// settleSQL settles the records of customer ?2 listed in the JSON array ?1 of [id, version]
// that are still at that version.
const settleSQL = `
UPDATE usage_records SET settled = 1
WHERE id IN (
    SELECT r.id FROM json_each(?1) AS j CROSS JOIN usage_records AS r
    WHERE r.id = j.value ->> 0 AND r.version = j.value ->> 1 AND r.customer_id = ?2 AND r.settled = 0)`

// unsettleSQL unsettles the records covered by the live billed ranges of invoice ?1.
const unsettleSQL = `
UPDATE usage_records SET settled = 0
WHERE id IN (
    SELECT r.id
    FROM billed_ranges AS b JOIN usage_records AS r ON r.resource_key = b.resource_key
    WHERE b.invoice_id = ?1 AND b.void = 0 AND r.settled = 1
      AND r.start_at < b.end_at AND (r.end_at IS NULL OR r.end_at > b.start_at))`
