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
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

// liveSQL finds the number of a customer's live scheduled invoice for the period starting at $2.
const liveSQL = `
SELECT number FROM invoices
WHERE customer_id = $1 AND period_start = $2 AND kind = 'scheduled' AND status <> 'void'`

// liveInvoice returns the number of the customer's live scheduled invoice for the period
// starting at start, "" when there is none.
func liveInvoice(ctx context.Context, tx pgx.Tx, customer string, start time.Time) (string, error) {
	var live string
	err := tx.QueryRow(ctx, liveSQL, customer, start).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return live, err
}

// NameOverlap names the invoice holding a range that the exclusion constraint refused. It
// reads after the refused transaction rolled back, so it sees the range of a run that committed
// concurrently too.
func (d driver) NameOverlap(ctx context.Context, ov *store.RangeOverlap) error {
	n := len(ov.Ranges)
	keys, kinds := make([]int64, n), make([]int16, n)
	starts, ends := make([]time.Time, n), make([]time.Time, n)
	for i, br := range ov.Ranges {
		keys[i], starts[i], ends[i] = br.ResourceKey, br.Range.Start, br.Range.End
		kinds[i], _ = kindCode(br.Kind)
	}
	var (
		i      int
		number string
	)
	err := d.s.pool.QueryRow(ctx, `
SELECT j.i, inv.number
FROM unnest($1::bigint[], $2::int2[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS j(key, kind, s, e, i)
JOIN billed_ranges AS b ON b.resource_key = j.key AND b.kind = j.kind AND b.live AND b.during && tstzrange(j.s, j.e)
JOIN invoices AS inv ON inv.id = b.invoice_id
ORDER BY j.i, lower(b.during)
LIMIT 1`, keys, kinds, starts, ends).Scan(&i, &number)
	if err != nil {
		// The holder was voided meanwhile: report what PostgreSQL said.
		return fmt.Errorf("finalize: invoice for %s: %w", ov.CustomerID, ov.Err)
	}
	br := ov.Ranges[i-1]
	return &store.OverlapError{CustomerID: ov.CustomerID, ResourceID: br.ResourceID, Range: br.Range, Invoice: number}
}

// queueLines queues the insertion of the lines: one statement over arrays.
func queueLines(b *pgx.Batch, invoiceID int64, lines []invoice.Line) error {
	if len(lines) == 0 {
		return nil
	}
	n := len(lines)
	var (
		section, rid, rtype, desc, policy, region = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		qty, unit, price, amount, attrs, gran     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		start, end                                = make([]time.Time, n), make([]time.Time, n)
		secs                                      = make([]int64, n)
	)
	for i, l := range lines {
		a, err := codec.AttrsJSON(l.Attributes)
		if err != nil {
			return fmt.Errorf("lines[%d]: attributes: %w", i, err)
		}
		section[i], rid[i], rtype[i], desc[i], policy[i], region[i] = string(l.Section), l.ResourceID, l.ResourceType, l.Description, l.Policy, l.Region
		qty[i], unit[i], price[i], amount[i], attrs[i], gran[i] = l.Quantity.String(), l.Unit, l.UnitPrice.String(), l.Amount.String(), a, l.Granularity
		start[i], end[i], secs[i] = interval.Norm(l.Start), interval.Norm(l.End), l.Seconds
	}
	b.Queue(`
INSERT INTO invoice_lines (invoice_id, n, section, resource_id, resource_type, description, policy, region,
    start_at, end_at, seconds, quantity, unit, unit_price, amount, attributes, granularity)
SELECT $1, n, section, rid, rtype, descr, policy, region, s, e, secs, qty::numeric, unit, price::numeric, amount::numeric, attrs, gran
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
    $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
    WITH ORDINALITY AS l(section, rid, rtype, descr, policy, region, s, e, secs, qty, unit, price, amount, attrs, gran, n)`,
		invoiceID, section, rid, rtype, desc, policy, region, start, end, secs, qty, unit, price, amount, attrs, gran)
	return nil
}

// resourcesSQL returns the resources $2 of customer $1, creating the missing ones with types $3.
const resourcesSQL = `
WITH created AS (
    INSERT INTO resources (customer_id, resource_id, type)
    SELECT $1, id, typ FROM unnest($2::text[], $3::text[]) AS j(id, typ)
    ORDER BY id
    ON CONFLICT (customer_id, resource_id) DO NOTHING
    RETURNING resource_id, key, type
)
SELECT resource_id, key, type FROM created
UNION ALL
SELECT resource_id, key, type FROM resources WHERE customer_id = $1 AND resource_id = ANY($2)`

func collectResources(customer string, rows pgx.Rows) (map[string]store.ResourceRef, error) {
	out := map[string]store.ResourceRef{}
	row := store.ResourceRef{CustomerID: customer}
	_, err := pgx.ForEachRow(rows, []any{&row.ID, &row.Key, &row.Type}, func() error {
		out[row.ID] = row
		return nil
	})
	return out, err
}

// queueRanges queues the insertion of the merged ranges (resource keys filled): one statement;
// the exclusion constraint checks every row.
func queueRanges(b *pgx.Batch, invoiceID int64, merged []invoice.BilledRange) {
	n := len(merged)
	keys, kinds := make([]int64, n), make([]int16, n)
	starts, ends := make([]time.Time, n), make([]time.Time, n)
	for i, br := range merged {
		keys[i], starts[i], ends[i] = br.ResourceKey, br.Range.Start, br.Range.End
		kinds[i], _ = kindCode(br.Kind)
	}
	b.Queue(`
INSERT INTO billed_ranges (resource_key, invoice_id, kind, during)
SELECT key, $1, kind, tstzrange(s, e, '[)')
FROM unnest($2::bigint[], $3::int2[], $4::timestamptz[], $5::timestamptz[]) AS j(key, kind, s, e)`,
		invoiceID, keys, kinds, starts, ends)
}

// queueSettle queues the settling of the referenced records of the customer that are still at
// the referenced version: one statement.
func queueSettle(b *pgx.Batch, customer string, refs []billing.Ref) {
	if len(refs) == 0 {
		return
	}
	ids, versions := make([]int64, len(refs)), make([]int64, len(refs))
	for i, r := range refs {
		ids[i], versions[i] = r.ID, r.Version
	}
	b.Queue(`
UPDATE usage_records AS u SET settled = true
FROM unnest($1::bigint[], $2::bigint[]) AS j(id, version), resources AS r
WHERE u.id = j.id AND u.version = j.version AND NOT u.settled
  AND r.key = u.resource_key AND r.customer_id = $3`, ids, versions, customer)
}

// voidTx voids one invoice: status void with the reason, its billed ranges released and the
// records they covered unsettled, so the usage is seen again by the next run.
func voidTx(ctx context.Context, tx pgx.Tx, id int64, reason, replacedBy string) error {
	var b pgx.Batch
	b.Queue(`UPDATE invoices SET status = 'void', void_reason = $2, replaced_by = $3 WHERE id = $1`, id, reason, replacedBy)
	b.Queue(`
UPDATE usage_records AS u SET settled = false
FROM billed_ranges AS b
WHERE b.invoice_id = $1 AND b.live AND u.resource_key = b.resource_key AND u.settled
  AND u.start_at < upper(b.during) AND (u.end_at IS NULL OR u.end_at > lower(b.during))`, id)
	b.Queue(`UPDATE billed_ranges SET live = false WHERE invoice_id = $1 AND live`, id)
	return tx.SendBatch(ctx, &b).Close()
}

const invoiceCols = `id, number, kind, status, customer_id, customer_name, currency, period_start, period_end,
    issued_at, subtotal::text, tax_rate::text, tax::text, total::text, payments::text, previous_balance::text,
    balance_due::text, run_id, replaces, replaced_by, void_reason, credit_note, tax_exempt, tax_region,
    credit_applied::text, amount_due::text`

func scanInvoice(row pgx.Row) (invoice.Invoice, error) {
	var inv invoice.Invoice
	var kind, status string
	var pStart, pEnd, issued time.Time
	var money [9]string
	if err := row.Scan(&inv.ID, &inv.Number, &kind, &status, &inv.CustomerID, &inv.CustomerName, &inv.Currency,
		&pStart, &pEnd, &issued, &money[0], &money[1], &money[2], &money[3], &money[4], &money[5], &money[6],
		&inv.RunID, &inv.Replaces, &inv.ReplacedBy, &inv.VoidReason, &inv.CreditNote, &inv.TaxExempt, &inv.TaxRegion,
		&money[7], &money[8]); err != nil {
		return inv, err
	}
	inv.Kind, inv.Status = invoice.Kind(kind), invoice.Status(status)
	inv.Period = interval.Range{Start: utc(pStart), End: utc(pEnd)}
	inv.IssuedAt = utc(issued)
	return inv, store.DecodeInvoiceMoney(&inv, money)
}

// ListInvoices returns invoices matching the filter without lines or ranges, newest first.
func (s *Store) ListInvoices(ctx context.Context, f store.InvoiceFilter) ([]invoice.Invoice, error) {
	q := `SELECT ` + invoiceCols + ` FROM invoices WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.CustomerID != "" {
		q += ` AND customer_id = ` + arg(f.CustomerID)
	}
	if f.Status != "" {
		q += ` AND status = ` + arg(string(f.Status))
	}
	if f.Period != nil {
		q += ` AND period_start >= ` + arg(f.Period.Start) + ` AND period_start < ` + arg(f.Period.End)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + arg(f.Limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (invoice.Invoice, error) { return scanInvoice(row) })
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	return out, nil
}

// ReadTx implements store.InvoiceDriver: a read-only repeatable-read transaction.
func (d driver) ReadTx(ctx context.Context, fn func(store.InvoiceTx) error) error {
	return d.s.read(ctx, func(tx pgx.Tx) error { return fn(&invoiceTx{tx: tx}) })
}

func (t *invoiceTx) InvoiceByNumber(ctx context.Context, number string) (invoice.Invoice, error) {
	inv, err := scanInvoice(t.tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE number = $1`, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, store.ErrNotFound
	}
	return inv, err
}

func (t *invoiceTx) Lines(ctx context.Context, id int64) ([]invoice.Line, error) {
	var out []invoice.Line
	rows, _ := t.tx.Query(ctx, `
SELECT section, resource_id, resource_type, description, policy, region, start_at, end_at, seconds,
       quantity::text, unit, unit_price::text, amount::text, attributes, granularity
FROM invoice_lines WHERE invoice_id = $1 ORDER BY n`, id)
	var (
		l                                 invoice.Line
		section, qty, price, amount, attr string
		start, end                        time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&section, &l.ResourceID, &l.ResourceType, &l.Description, &l.Policy, &l.Region,
		&start, &end, &l.Seconds, &qty, &l.Unit, &price, &amount, &attr, &l.Granularity}, func() error {
		line := l
		line.Start, line.End = utc(start), utc(end)
		if err := store.DecodeLine(&line, len(out)+1, section, qty, price, amount, attr); err != nil {
			return err
		}
		out = append(out, line)
		return nil
	})
	return out, err
}

func (t *invoiceTx) Ranges(ctx context.Context, id int64) ([]invoice.BilledRange, error) {
	return readRanges(ctx, t.tx, id)
}

func readRanges(ctx context.Context, tx pgx.Tx, id int64) ([]invoice.BilledRange, error) {
	var out []invoice.BilledRange
	rows, _ := tx.Query(ctx, `
SELECT b.resource_key, r.resource_id, r.type, b.kind, lower(b.during), upper(b.during)
FROM billed_ranges AS b JOIN resources AS r ON r.key = b.resource_key
WHERE b.invoice_id = $1
ORDER BY r.resource_id, b.kind, lower(b.during)`, id)
	var (
		br         invoice.BilledRange
		kind       int16
		start, end time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&br.ResourceKey, &br.ResourceID, &br.ResourceType, &kind, &start, &end}, func() error {
		r := br
		r.Kind = kindName(kind)
		r.Range = interval.Range{Start: utc(start), End: utc(end)}
		out = append(out, r)
		return nil
	})
	return out, err
}

// Balances returns, per customer, the total of issued invoices whose period starts before
// `before` minus the payments received before it, summed exactly in Go. Customers with neither
// are absent.
func (s *Store) Balances(ctx context.Context, customerIDs []string, before time.Time) (map[string]decimal.Decimal, error) {
	out := map[string]decimal.Decimal{}
	if len(customerIDs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `
SELECT customer_id, total::text, 1 FROM invoices
WHERE customer_id = ANY($1) AND status = 'issued' AND period_start < $2
UNION ALL
SELECT customer_id, amount::text, -1 FROM payments
WHERE customer_id = ANY($1) AND received_at < $2`, customerIDs, before)
	var (
		cust, amount string
		sign         int
	)
	_, err := pgx.ForEachRow(rows, []any{&cust, &amount, &sign}, func() error {
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
	rows, _ := s.pool.Query(ctx, `
SELECT customer_id, number FROM invoices
WHERE customer_id = ANY($1) AND period_start = $2 AND kind = 'scheduled' AND status <> 'void'`,
		customerIDs, period.Start)
	var cust, number string
	_, err := pgx.ForEachRow(rows, []any{&cust, &number}, func() error {
		out[cust] = number
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invoiced: %w", err)
	}
	return out, nil
}
