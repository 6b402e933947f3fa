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
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
)

// driver implements store.InvoiceDriver: the invoice transactions of the shared logic
// (store.Finalize, store.VoidInvoice, store.IssueCreditNote) over database/sql. Every
// operation runs at once; the one writer at a time makes the order of the statements free.
type driver struct{ s *Store }

var (
	_ store.InvoiceDriver = driver{}
	_ store.InvoiceTx     = invoiceTx{}
)

func (d driver) Now() time.Time { return d.s.now() }

// FinalizeTx runs fn in one IMMEDIATE transaction whose foreign keys are checked at the commit:
// the lines and ranges are written before the invoice row they reference.
func (d driver) FinalizeTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		return fn(invoiceTx{tx})
	})
}

func (d driver) WriteTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error { return fn(invoiceTx{tx}) })
}

// NameOverlap finds the first range that overlaps a live one, after the refused transaction
// rolled back; when none is found (the holder was voided meanwhile), the trigger's message
// names the invoice.
func (d driver) NameOverlap(ctx context.Context, ov *store.RangeOverlap) error {
	for _, br := range ov.Ranges {
		var number string
		err := d.s.db.QueryRowContext(ctx, `
SELECT i.number FROM billed_ranges AS b JOIN invoices AS i ON i.id = b.invoice_id
WHERE b.resource_key = ? AND b.kind = ? AND b.void = 0 AND b.start_at < ? AND b.end_at > ?
ORDER BY b.start_at LIMIT 1`, br.ResourceKey, string(br.Kind), sec(br.Range.End), sec(br.Range.Start)).Scan(&number)
		if err == nil {
			return &store.OverlapError{CustomerID: ov.CustomerID, ResourceID: br.ResourceID, Range: br.Range, Invoice: number}
		}
	}
	first := ov.Ranges[0]
	return &store.OverlapError{CustomerID: ov.CustomerID, ResourceID: first.ResourceID, Range: first.Range, Invoice: overlapNumber(ov.Err)}
}

type invoiceTx struct{ tx *sql.Tx }

func (t invoiceTx) LockInvoice(ctx context.Context, number string) (store.InvoiceHead, error) {
	var h store.InvoiceHead
	var status string
	err := t.tx.QueryRowContext(ctx, `SELECT id, customer_id, status, credit_note FROM invoices WHERE number = ?`, number).
		Scan(&h.ID, &h.CustomerID, &status, &h.CreditNote)
	if errors.Is(err, sql.ErrNoRows) {
		return h, store.ErrNotFound
	}
	h.Status = invoice.Status(status)
	return h, err
}

func (t invoiceTx) InvoiceByID(ctx context.Context, id int64) (invoice.Invoice, error) {
	return scanInvoice(t.tx.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = ?`, id))
}

func (t invoiceTx) VoidInvoice(ctx context.Context, id int64, reason, replacedBy string) error {
	return voidTx(ctx, t.tx, id, reason, replacedBy)
}

// SetVoidReason sets the reason and carries it over to the delivery that the void cancelled,
// as PostgreSQL's outbox trigger does.
func (t invoiceTx) SetVoidReason(ctx context.Context, id int64, reason, replacedBy string) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE invoices SET void_reason = ?, replaced_by = ? WHERE id = ?`, reason, replacedBy, id); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `
UPDATE outbox SET last_error = 'invoice voided' || CASE WHEN ?1 <> '' THEN ': ' || ?1 ELSE '' END
WHERE invoice = (SELECT number FROM invoices WHERE id = ?2) AND state = 'cancelled' AND last_error LIKE 'invoice voided%'`,
		reason, id)
	return err
}

func (t invoiceTx) ResourceByKey(ctx context.Context, key int64) (store.ResourceRef, bool, error) {
	r := store.ResourceRef{Key: key}
	err := t.tx.QueryRowContext(ctx, `SELECT customer_id, resource_id, type FROM resources WHERE key = ?`, key).
		Scan(&r.CustomerID, &r.ID, &r.Type)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// StartInvoice reserves the id the invoice row will get (the writer is alone: no one else can
// take it meanwhile).
func (t invoiceTx) StartInvoice(ctx context.Context, customer string, periodStart time.Time, ids, types []string) (store.InvoiceStart, error) {
	var out store.InvoiceStart
	live, err := t.LiveInvoice(ctx, customer, periodStart)
	if err != nil || live != "" {
		out.Live = live
		return out, err
	}
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM invoices`).Scan(&out.ID); err != nil {
		return out, err
	}
	out.Resources, err = t.Resources(ctx, customer, ids, types)
	return out, err
}

// Resources reads the resources with one query and creates the missing ones one by one.
func (t invoiceTx) Resources(ctx context.Context, customer string, ids, types []string) (map[string]store.ResourceRef, error) {
	stored := make(map[string]store.ResourceRef, len(ids))
	if len(ids) == 0 {
		return stored, nil
	}
	rows, err := t.tx.QueryContext(ctx, `
SELECT r.resource_id, r.key, r.type
FROM json_each(?2) AS j CROSS JOIN resources AS r
WHERE r.customer_id = ?1 AND r.resource_id = j.value`, customer, idsJSON(ids))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		row := store.ResourceRef{CustomerID: customer}
		if err := rows.Scan(&row.ID, &row.Key, &row.Type); err != nil {
			return err
		}
		stored[row.ID] = row
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		if _, ok := stored[id]; ok {
			continue
		}
		row := store.ResourceRef{CustomerID: customer, ID: id, Type: types[i]}
		if err := t.tx.QueryRowContext(ctx, `INSERT INTO resources (customer_id, resource_id, type) VALUES (?, ?, ?) RETURNING key`,
			customer, id, row.Type).Scan(&row.Key); err != nil {
			return nil, fmt.Errorf("resource %s: %w", id, err)
		}
		stored[id] = row
	}
	return stored, nil
}

func (t invoiceTx) InsertLines(ctx context.Context, id int64, lines []invoice.Line) error {
	return insertLines(ctx, t.tx, id, lines)
}

// InsertRanges stores the ranges with one statement; the trigger still checks every row, and
// its refusal becomes *store.RangeOverlap.
func (t invoiceTx) InsertRanges(ctx context.Context, id int64, customer string, ranges []invoice.BilledRange) error {
	vals := make([][]any, len(ranges))
	for i, br := range ranges {
		vals[i] = []any{br.ResourceKey, string(br.Kind), sec(br.Range.Start), sec(br.Range.End)}
	}
	payload, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `
INSERT INTO billed_ranges (customer_id, resource_key, invoice_id, kind, start_at, end_at)
SELECT ?1, j.value ->> 0, ?2, j.value ->> 1, j.value ->> 2, j.value ->> 3
FROM json_each(?3) AS j`, customer, id, string(payload))
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), overlapTag):
		return &store.RangeOverlap{CustomerID: customer, Ranges: ranges, Err: err}
	}
	return fmt.Errorf("billed ranges: %w", err)
}

func (t invoiceTx) Settle(ctx context.Context, customer string, refs []billing.Ref) error {
	return settle(ctx, t.tx, customer, refs)
}

func (t invoiceTx) NextNumber(ctx context.Context, series string) (int64, error) {
	var seq int64
	err := t.tx.QueryRowContext(ctx, `
INSERT INTO invoice_series (series, last) VALUES (?, 1)
ON CONFLICT (series) DO UPDATE SET last = last + 1
RETURNING last`, series).Scan(&seq)
	return seq, err
}

// InsertInvoice inserts the row; the live invoice was looked up in this transaction, and the
// writer is alone, so the row is always inserted.
func (t invoiceTx) InsertInvoice(ctx context.Context, r store.InvoiceRow) (bool, error) {
	inv, period := r.Invoice, r.Period
	_, err := t.tx.ExecContext(ctx, `
INSERT INTO invoices (id, number, kind, status, customer_id, customer_name, currency, period_start, period_end,
    issued_at, subtotal, tax_rate, tax, total, payments, previous_balance, balance_due, run_id, replaces,
    tax_exempt, tax_region, credit_applied, amount_due)
VALUES (?, ?, ?, 'issued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Number, string(r.Kind), inv.CustomerID, inv.CustomerName, inv.Currency, sec(period.Start), sec(period.End),
		sec(r.Issued), dec(inv.Subtotal), dec(inv.TaxRate), dec(inv.Tax), dec(inv.Total), dec(inv.Payments),
		dec(inv.PreviousBalance), dec(inv.BalanceDue), inv.RunID, r.Replaces,
		boolInt(inv.TaxExempt), inv.TaxRegion, dec(inv.CreditApplied), dec(inv.AmountDue))
	if err != nil && strings.Contains(err.Error(), "invoices.number") {
		return false, fmt.Errorf("%w: %w", store.ErrNumberUsed, err)
	}
	return err == nil, err
}

func (t invoiceTx) LiveInvoice(ctx context.Context, customer string, start time.Time) (string, error) {
	var live string
	err := t.tx.QueryRowContext(ctx, `
SELECT number FROM invoices
WHERE customer_id = ? AND period_start = ? AND kind = 'scheduled' AND status <> 'void'`,
		customer, sec(start)).Scan(&live)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return live, err
}

func (t invoiceTx) InsertCreditNote(ctx context.Context, id int64, cn *invoice.CreditNote) error {
	if err := t.tx.QueryRowContext(ctx, `
INSERT INTO credit_notes (number, invoice_id, customer_id, issued_at, subtotal, tax_rate, tax, total, reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		cn.Number, id, cn.CustomerID, sec(cn.IssuedAt), dec(cn.Subtotal), dec(cn.TaxRate), dec(cn.Tax), dec(cn.Total), cn.Reason).Scan(&cn.ID); err != nil {
		if strings.Contains(err.Error(), "credit_notes.number") {
			return fmt.Errorf("%w: %w", store.ErrNumberUsed, err)
		}
		return err
	}
	_, err := t.tx.ExecContext(ctx, `UPDATE invoices SET credit_note = ? WHERE id = ?`, cn.Number, id)
	return err
}
