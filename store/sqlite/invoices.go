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

// overlapTag starts the message of the billed_ranges triggers; the invoice number follows it.
const overlapTag = "bilean-overlap: "

// Finalize stores the invoice with status issued, its lines and merged billed ranges, gives it the
// next number of its series, settles the records still at the billed version and voids the
// replaced invoice, in one IMMEDIATE transaction. On success it sets the invoice's ID, Number,
// Status, Kind, IssuedAt, Replaces and Ranges (merged, with resource keys).
//
// It returns *store.OverlapError when a range is already billed on a live invoice (the database
// trigger refuses it), *store.AlreadyInvoicedError when a live scheduled invoice exists for the
// customer and period, and an error wrapping store.ErrNotFound when Replaces names no invoice. A
// refused finalize leaves nothing behind, not even a used number.
//
// An empty Kind means scheduled; interim invoices are never stored and are refused. Series and
// NumberFormat are required: the store has no numbering of its own, so two callers can never
// count the same numbers under two series keys.
func (s *Store) Finalize(ctx context.Context, req store.FinalizeRequest) error {
	plan, err := store.PlanFinalize(req, s.now)
	if err != nil {
		return err
	}
	inv, kind, issued, period := req.Invoice, plan.Kind, plan.Issued, plan.Period
	series, format := req.Series, req.NumberFormat

	var (
		id     int64
		number string
		stored []invoice.BilledRange
	)
	err = s.write(ctx, func(tx *sql.Tx) error {
		var oldID int64
		if req.Replaces != "" {
			var cust, status string
			err := tx.QueryRowContext(ctx, `SELECT id, customer_id, status FROM invoices WHERE number = ?`, req.Replaces).
				Scan(&oldID, &cust, &status)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("replaced invoice %s: %w", req.Replaces, store.ErrNotFound)
			case err != nil:
				return err
			case cust != inv.CustomerID:
				return fmt.Errorf("replaced invoice %s belongs to customer %s, not %s", req.Replaces, cust, inv.CustomerID)
			case status != string(invoice.Issued):
				return fmt.Errorf("replaced invoice %s is %s: only an issued invoice can be replaced", req.Replaces, status)
			}
		}

		var seq int64
		if err := tx.QueryRowContext(ctx, `
INSERT INTO invoice_series (series, last) VALUES (?, 1)
ON CONFLICT (series) DO UPDATE SET last = last + 1
RETURNING last`, series).Scan(&seq); err != nil {
			return fmt.Errorf("number series %s: %w", series, err)
		}
		number = format(series, seq)
		if number == "" {
			return fmt.Errorf("number series %s: NumberFormat returned an empty number for %d", series, seq)
		}

		if oldID != 0 {
			if err := voidTx(ctx, tx, oldID, "regenerated as "+number, number); err != nil {
				return fmt.Errorf("void replaced invoice %s: %w", req.Replaces, err)
			}
			if req.CreditNote.Format != nil {
				if _, err := issueCreditNoteTx(ctx, tx, oldID, "regenerated as "+number, req.CreditNote, issued); err != nil {
					return fmt.Errorf("credit note for replaced invoice %s: %w", req.Replaces, err)
				}
			}
		}
		var live string
		err := tx.QueryRowContext(ctx, `
SELECT number FROM invoices
WHERE customer_id = ? AND period_start = ? AND kind = 'scheduled' AND status <> 'void'`,
			inv.CustomerID, sec(period.Start)).Scan(&live)
		switch {
		case err == nil:
			return &store.AlreadyInvoicedError{CustomerID: inv.CustomerID, Invoice: live}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}

		if err := tx.QueryRowContext(ctx, `
INSERT INTO invoices (number, kind, status, customer_id, customer_name, currency, period_start, period_end,
    issued_at, subtotal, tax_rate, tax, total, payments, previous_balance, balance_due, run_id, replaces,
    tax_exempt, tax_region, credit_applied, amount_due)
VALUES (?, ?, 'issued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id`,
			number, string(kind), inv.CustomerID, inv.CustomerName, inv.Currency, sec(period.Start), sec(period.End),
			sec(issued), dec(inv.Subtotal), dec(inv.TaxRate), dec(inv.Tax), dec(inv.Total), dec(inv.Payments),
			dec(inv.PreviousBalance), dec(inv.BalanceDue), inv.RunID, req.Replaces,
			boolInt(inv.TaxExempt), inv.TaxRegion, dec(inv.CreditApplied), dec(inv.AmountDue)).Scan(&id); err != nil {
			if strings.Contains(err.Error(), "invoices.number") {
				return fmt.Errorf("number %s is already used (series %s, sequence %d): %w", number, series, seq, err)
			}
			return err
		}
		if err := insertLines(ctx, tx, id, inv.Lines); err != nil {
			return err
		}
		var err2 error
		if stored, err2 = insertRanges(ctx, tx, id, inv.CustomerID, inv.Ranges); err2 != nil {
			return err2
		}
		return settle(ctx, tx, inv.CustomerID, req.Settle)
	})
	if err != nil {
		var oe *store.OverlapError
		var ae *store.AlreadyInvoicedError
		if errors.As(err, &oe) || errors.As(err, &ae) {
			return err
		}
		return fmt.Errorf("finalize: invoice for %s: %w", inv.CustomerID, err)
	}
	inv.ID, inv.Number, inv.Status, inv.Kind, inv.IssuedAt = id, number, invoice.Issued, kind, issued
	inv.Replaces = req.Replaces
	inv.Ranges = stored
	return nil
}

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

// insertRanges resolves the resource of every range, merges contiguous ranges and stores them.
// An overlap refused by the trigger becomes *store.OverlapError.
func insertRanges(ctx context.Context, tx *sql.Tx, invoiceID int64, customer string, in []invoice.BilledRange) ([]invoice.BilledRange, error) {
	if len(in) == 0 {
		return nil, nil
	}
	// Name every range by resource id, so MergeRanges groups correctly.
	named := make([]invoice.BilledRange, len(in))
	for i, br := range in {
		if br.ResourceID == "" {
			var cust string
			err := tx.QueryRowContext(ctx, `SELECT customer_id, resource_id, type FROM resources WHERE key = ?`, br.ResourceKey).
				Scan(&cust, &br.ResourceID, &br.ResourceType)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && cust != customer) {
				return nil, fmt.Errorf("ranges[%d]: resource key %d is not a resource of customer %s", i, br.ResourceKey, customer)
			}
			if err != nil {
				return nil, err
			}
		}
		br.Range = interval.Range{Start: interval.Norm(br.Range.Start), End: interval.Norm(br.Range.End)}
		if br.Range.Empty() {
			return nil, fmt.Errorf("ranges[%d]: range %s of resource %s is empty", i, br.Range, br.ResourceID)
		}
		named[i] = br
	}
	merged := invoice.MergeRanges(named)

	// The customer's resources named by the ranges: one query; missing ones are created.
	ids := make([]string, len(merged))
	for i, br := range merged {
		ids[i] = br.ResourceID
	}
	stored := make(map[string]resourceRow, len(merged))
	rows, err := tx.QueryContext(ctx, `
SELECT r.resource_id, r.key, r.type
FROM json_each(?2) AS j CROSS JOIN resources AS r
WHERE r.customer_id = ?1 AND r.resource_id = j.value`, customer, idsJSON(ids))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		var row resourceRow
		if err := rows.Scan(&id, &row.key, &row.typ); err != nil {
			return err
		}
		stored[id] = row
		return nil
	})
	if err != nil {
		return nil, err
	}

	vals := make([][]any, len(merged))
	for i := range merged {
		br := &merged[i]
		row, ok := stored[br.ResourceID]
		if !ok {
			row.typ = br.ResourceType
			if row.typ == "" && billing.IsSubscriptionResource(br.ResourceID) {
				row.typ = billing.SubscriptionType
			}
			if err := tx.QueryRowContext(ctx, `INSERT INTO resources (customer_id, resource_id, type) VALUES (?, ?, ?) RETURNING key`,
				customer, br.ResourceID, row.typ).Scan(&row.key); err != nil {
				return nil, fmt.Errorf("resource %s: %w", br.ResourceID, err)
			}
			stored[br.ResourceID] = row
		}
		if br.ResourceKey != 0 && br.ResourceKey != row.key {
			return nil, fmt.Errorf("range of resource %s: resource key %d does not match the stored key %d", br.ResourceID, br.ResourceKey, row.key)
		}
		br.ResourceKey = row.key
		if br.ResourceType == "" {
			br.ResourceType = row.typ
		}
		vals[i] = []any{row.key, string(br.Kind), sec(br.Range.Start), sec(br.Range.End)}
	}
	payload, err := json.Marshal(vals)
	if err != nil {
		return nil, err
	}
	// One statement for all ranges; the trigger still checks every row.
	_, err = tx.ExecContext(ctx, `
INSERT INTO billed_ranges (customer_id, resource_key, invoice_id, kind, start_at, end_at)
SELECT ?1, j.value ->> 0, ?2, j.value ->> 1, j.value ->> 2, j.value ->> 3
FROM json_each(?3) AS j`, customer, invoiceID, string(payload))
	if err == nil {
		return merged, nil
	}
	if !strings.Contains(err.Error(), overlapTag) {
		return nil, fmt.Errorf("billed ranges: %w", err)
	}
	// The statement was refused as a whole: find the first range that overlaps a live one.
	for i := range merged {
		br := &merged[i]
		var number string
		qerr := tx.QueryRowContext(ctx, `
SELECT i.number FROM billed_ranges AS b JOIN invoices AS i ON i.id = b.invoice_id
WHERE b.resource_key = ? AND b.kind = ? AND b.void = 0 AND b.start_at < ? AND b.end_at > ?
ORDER BY b.start_at LIMIT 1`, br.ResourceKey, string(br.Kind), sec(br.Range.End), sec(br.Range.Start)).Scan(&number)
		if qerr == nil {
			return nil, &store.OverlapError{CustomerID: customer, ResourceID: br.ResourceID, Range: br.Range, Invoice: number}
		}
	}
	return nil, &store.OverlapError{CustomerID: customer, ResourceID: merged[0].ResourceID, Range: merged[0].Range, Invoice: overlapNumber(err)}
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
	return strings.TrimSpace(msg)
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

// VoidInvoice marks an issued invoice void with the reason and releases its billed ranges; the
// records those ranges covered are unsettled so that a later run sees the usage again.
func (s *Store) VoidInvoice(ctx context.Context, number, reason string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		var status string
		err := tx.QueryRowContext(ctx, `SELECT id, status FROM invoices WHERE number = ?`, number).Scan(&id, &status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case status != string(invoice.Issued):
			return fmt.Errorf("invoice is %s: only an issued invoice can be voided", status)
		}
		return voidTx(ctx, tx, id, reason, "")
	})
	if err != nil {
		return fmt.Errorf("void invoice %s: %w", number, err)
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
	dst := []*decimal.Decimal{&inv.Subtotal, &inv.TaxRate, &inv.Tax, &inv.Total, &inv.Payments, &inv.PreviousBalance, &inv.BalanceDue,
		&inv.CreditApplied, &inv.AmountDue}
	names := []string{"subtotal", "tax_rate", "tax", "total", "payments", "previous_balance", "balance_due", "credit_applied", "amount_due"}
	for i, d := range dst {
		var err error
		if *d, err = codec.Decimal(money[i], "invoice "+inv.Number+" "+names[i]); err != nil {
			return inv, err
		}
	}
	return inv, nil
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

// GetInvoice returns one invoice with its lines (in order) and its billed ranges (live or, for a
// void invoice, released), or an error wrapping store.ErrNotFound.
func (s *Store) GetInvoice(ctx context.Context, number string) (*invoice.Invoice, error) {
	var inv invoice.Invoice
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvoice(tx.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE number = ?`, number))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if inv.Lines, err = readLines(ctx, tx, inv.ID); err != nil {
			return err
		}
		inv.Ranges, err = readRanges(ctx, tx, inv.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get invoice %s: %w", number, err)
	}
	return &inv, nil
}

func readLines(ctx context.Context, tx *sql.Tx, id int64) ([]invoice.Line, error) {
	var out []invoice.Line
	rows, err := tx.QueryContext(ctx, `
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
		l.Section = invoice.Section(section)
		l.Start, l.End = fromSec(start), fromSec(end)
		n := len(out) + 1
		if l.Quantity, err = codec.Decimal(qty, fmt.Sprintf("line %d quantity", n)); err != nil {
			return err
		}
		if l.UnitPrice, err = codec.Decimal(price, fmt.Sprintf("line %d unit_price", n)); err != nil {
			return err
		}
		if l.Amount, err = codec.Decimal(amount, fmt.Sprintf("line %d amount", n)); err != nil {
			return err
		}
		if l.Attributes, err = codec.ParseAttrs(attrs); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
