package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
)

// driver implements store.InvoiceDriver: the invoice transactions of the shared logic
// (store.Finalize, store.VoidInvoice, store.IssueCreditNote) over pgx.
type driver struct{ s *Store }

var (
	_ store.InvoiceDriver = driver{}
	_ store.InvoiceTx     = (*invoiceTx)(nil)
)

func (d driver) Now() time.Time { return d.s.now() }

// FinalizeTx runs fn through finalizeTx: the batch claim fence and the retry of lock timeouts.
func (d driver) FinalizeTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.finalizeTx(ctx, func(tx pgx.Tx) error { return fn(&invoiceTx{tx: tx}) })
}

func (d driver) WriteTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(&invoiceTx{tx: tx}) })
}

// invoiceTx queues the writes that return nothing (lines, ranges, settling) into one batch,
// sent with the next operation: NextNumber sends them and the counter as one round trip.
type invoiceTx struct {
	tx      pgx.Tx
	pending pgx.Batch
	// overlap is the refusal to report when the exclusion constraint refuses the queued ranges.
	overlap *store.RangeOverlap
}

// send sends the queued statements, with q queued last when not nil. An exclusion violation
// (23P01: a range is already billed) becomes *store.RangeOverlap.
func (t *invoiceTx) send(ctx context.Context) error {
	if t.pending.Len() == 0 {
		return nil
	}
	b := t.pending
	t.pending = pgx.Batch{}
	err := t.tx.SendBatch(ctx, &b).Close()
	if err != nil && pgCode(err) == "23P01" && t.overlap != nil {
		ov := *t.overlap
		ov.Err = err
		return &ov
	}
	return err
}

func (t *invoiceTx) LockInvoice(ctx context.Context, number string) (store.InvoiceHead, error) {
	if err := t.send(ctx); err != nil {
		return store.InvoiceHead{}, err
	}
	var h store.InvoiceHead
	var status string
	err := t.tx.QueryRow(ctx, `SELECT id, customer_id, status, credit_note FROM invoices WHERE number = $1 FOR UPDATE`, number).
		Scan(&h.ID, &h.CustomerID, &status, &h.CreditNote)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, store.ErrNotFound
	}
	h.Status = invoice.Status(status)
	return h, err
}

func (t *invoiceTx) InvoiceByID(ctx context.Context, id int64) (invoice.Invoice, error) {
	if err := t.send(ctx); err != nil {
		return invoice.Invoice{}, err
	}
	return scanInvoice(t.tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = $1`, id))
}

func (t *invoiceTx) VoidInvoice(ctx context.Context, id int64, reason, replacedBy string) error {
	if err := t.send(ctx); err != nil {
		return err
	}
	return voidTx(ctx, t.tx, id, reason, replacedBy)
}

func (t *invoiceTx) SetVoidReason(ctx context.Context, id int64, reason, replacedBy string) error {
	if err := t.send(ctx); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `UPDATE invoices SET void_reason = $2, replaced_by = $3 WHERE id = $1`, id, reason, replacedBy)
	return err
}

func (t *invoiceTx) ResourceByKey(ctx context.Context, key int64) (store.ResourceRef, bool, error) {
	if err := t.send(ctx); err != nil {
		return store.ResourceRef{}, false, err
	}
	r := store.ResourceRef{Key: key}
	err := t.tx.QueryRow(ctx, `SELECT customer_id, resource_id, type FROM resources WHERE key = $1`, key).
		Scan(&r.CustomerID, &r.ID, &r.Type)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// StartInvoice is one round trip: the live invoice, nextval of the invoices' sequence and the
// resources (created when missing).
func (t *invoiceTx) StartInvoice(ctx context.Context, customer string, periodStart time.Time, ids, types []string) (store.InvoiceStart, error) {
	var out store.InvoiceStart
	t.pending.Queue(liveSQL, customer, periodStart).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&out.Live); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	t.pending.Queue(`SELECT nextval(pg_get_serial_sequence('invoices', 'id'))`).QueryRow(func(row pgx.Row) error { return row.Scan(&out.ID) })
	if len(ids) > 0 {
		t.pending.Queue(resourcesSQL, customer, ids, types).Query(func(rows pgx.Rows) error {
			var err error
			out.Resources, err = collectResources(customer, rows)
			return err
		})
	}
	err := t.send(ctx)
	return out, err
}

func (t *invoiceTx) Resources(ctx context.Context, customer string, ids, types []string) (map[string]store.ResourceRef, error) {
	if err := t.send(ctx); err != nil {
		return nil, err
	}
	rows, _ := t.tx.Query(ctx, resourcesSQL, customer, ids, types)
	return collectResources(customer, rows)
}

func (t *invoiceTx) InsertLines(_ context.Context, id int64, lines []invoice.Line) error {
	return queueLines(&t.pending, id, lines)
}

func (t *invoiceTx) InsertRanges(_ context.Context, id int64, customer string, ranges []invoice.BilledRange) error {
	t.overlap = &store.RangeOverlap{CustomerID: customer, Ranges: ranges}
	queueRanges(&t.pending, id, ranges)
	return nil
}

func (t *invoiceTx) Settle(_ context.Context, customer string, refs []billing.Ref) error {
	queueSettle(&t.pending, customer, refs)
	return nil
}

func (t *invoiceTx) NextNumber(ctx context.Context, series string) (int64, error) {
	var seq int64
	t.pending.Queue(`
INSERT INTO invoice_series AS s (series, last) VALUES ($1, 1)
ON CONFLICT (series) DO UPDATE SET last = s.last + 1
RETURNING last`, series).QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	err := t.send(ctx)
	return seq, err
}

func (t *invoiceTx) InsertInvoice(ctx context.Context, r store.InvoiceRow) (bool, error) {
	if err := t.send(ctx); err != nil {
		return false, err
	}
	inv, period := r.Invoice, r.Period
	var got int64
	err := t.tx.QueryRow(ctx, `
INSERT INTO invoices (id, number, kind, status, customer_id, customer_name, currency, period_start, period_end,
    issued_at, subtotal, tax_rate, tax, total, payments, previous_balance, balance_due, run_id, replaces,
    tax_exempt, tax_region, credit_applied, amount_due)
VALUES ($1, $2, $3, 'issued', $4, $5, $6, $7, $8, $9, $10::numeric, $11::numeric, $12::numeric, $13::numeric,
    $14::numeric, $15::numeric, $16::numeric, $17, $18, $19, $20, $21::numeric, $22::numeric)
ON CONFLICT (customer_id, period_start) WHERE status <> 'void' AND kind = 'scheduled' DO NOTHING
RETURNING id`,
		r.ID, r.Number, string(r.Kind), inv.CustomerID, inv.CustomerName, inv.Currency, period.Start, period.End,
		r.Issued, inv.Subtotal.String(), inv.TaxRate.String(), inv.Tax.String(), inv.Total.String(), inv.Payments.String(),
		inv.PreviousBalance.String(), inv.BalanceDue.String(), inv.RunID, r.Replaces,
		inv.TaxExempt, inv.TaxRegion, inv.CreditApplied.String(), inv.AmountDue.String()).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case pgConstraint(err) == "invoices_number_key":
		return false, fmt.Errorf("%w: %w", store.ErrNumberUsed, err)
	}
	return err == nil, err
}

func (t *invoiceTx) LiveInvoice(ctx context.Context, customer string, start time.Time) (string, error) {
	if err := t.send(ctx); err != nil {
		return "", err
	}
	return liveInvoice(ctx, t.tx, customer, start)
}

func (t *invoiceTx) InsertCreditNote(ctx context.Context, id int64, cn *invoice.CreditNote) error {
	t.pending.Queue(`
INSERT INTO credit_notes (number, invoice_id, customer_id, issued_at, subtotal, tax_rate, tax, total, reason)
VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7::numeric, $8::numeric, $9) RETURNING id`,
		cn.Number, id, cn.CustomerID, cn.IssuedAt, cn.Subtotal.String(), cn.TaxRate.String(), cn.Tax.String(), cn.Total.String(), cn.Reason).
		QueryRow(func(row pgx.Row) error { return row.Scan(&cn.ID) })
	t.pending.Queue(`UPDATE invoices SET credit_note = $1 WHERE id = $2`, cn.Number, id)
	err := t.send(ctx)
	if pgConstraint(err) == "credit_notes_number_key" {
		return fmt.Errorf("%w: %w", store.ErrNumberUsed, err)
	}
	return err
}
