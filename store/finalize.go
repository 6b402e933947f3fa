package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// Finalize is the one orchestration of the finalizing transaction over a driver (see
// Finalizer.Finalize for the contract). It stores the invoice with status issued, its lines and
// merged billed ranges, gives it the next number of its series, settles the records still at the
// billed version, voids the replaced invoice and issues its credit note, all in one transaction.
// On success it sets the invoice's ID, Number, Status, Kind, IssuedAt, Replaces and Ranges
// (merged, with resource keys).
//
// The operations run in an order that keeps the series counter locked briefly: the replaced
// invoice is voided, the lines, ranges and settling are written under a reserved invoice id,
// and only then is the counter bumped and the invoice row inserted; the credit note's counter
// comes last. It returns *OverlapError when a range is already billed on a live invoice (naming
// the invoice that holds it), *AlreadyInvoicedError when a live scheduled invoice exists for the
// customer and period (also when another run commits one first), and an error wrapping
// ErrNotFound when Replaces names no invoice. A refused finalize leaves nothing behind, not even
// a used number.
func Finalize(ctx context.Context, d InvoiceDriver, req FinalizeRequest) error {
	plan, err := PlanFinalize(req, d.Now)
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
	err = d.FinalizeTx(ctx, func(tx InvoiceTx) error {
		var oldID int64
		if req.Replaces != "" {
			old, err := tx.LockInvoice(ctx, req.Replaces)
			switch {
			case errors.Is(err, ErrNotFound):
				return fmt.Errorf("replaced invoice %s: %w", req.Replaces, ErrNotFound)
			case err != nil:
				return err
			case old.CustomerID != inv.CustomerID:
				return fmt.Errorf("replaced invoice %s belongs to customer %s, not %s", req.Replaces, old.CustomerID, inv.CustomerID)
			case old.Status != invoice.Issued:
				return fmt.Errorf("replaced invoice %s is %s: only an issued invoice can be replaced", req.Replaces, old.Status)
			}
			oldID = old.ID
			// The reason and replaced_by name the new number, known at the end.
			if err := tx.VoidInvoice(ctx, oldID, "", ""); err != nil {
				return fmt.Errorf("void replaced invoice %s: %w", req.Replaces, err)
			}
		}
		merged, err := nameAndMerge(ctx, tx, inv.CustomerID, inv.Ranges)
		if err != nil {
			return err
		}
		// The early answer to "already invoiced?" (InsertInvoice is what decides under
		// concurrency), the invoice id and the ranges' resources.
		ids, types := rangeResources(merged)
		start, err := tx.StartInvoice(ctx, inv.CustomerID, period.Start, ids, types)
		if err != nil {
			return err
		}
		if start.Live != "" {
			return &AlreadyInvoicedError{CustomerID: inv.CustomerID, Invoice: start.Live}
		}
		id = start.ID
		res := start.Resources
		if len(res) < len(ids) {
			// A resource created by a concurrent transaction that committed meanwhile.
			if res, err = tx.Resources(ctx, inv.CustomerID, ids, types); err != nil {
				return fmt.Errorf("resources: %w", err)
			}
		}
		if err := fillKeys(merged, res); err != nil {
			return err
		}
		// Lines, ranges, settling, and last the series counter, which stays locked from here to
		// the commit.
		if err := tx.InsertLines(ctx, id, inv.Lines); err != nil {
			return err
		}
		if len(merged) > 0 {
			if err := tx.InsertRanges(ctx, id, inv.CustomerID, merged); err != nil {
				return err
			}
		}
		if len(req.Settle) > 0 {
			if err := tx.Settle(ctx, inv.CustomerID, req.Settle); err != nil {
				return err
			}
		}
		seq, err := tx.NextNumber(ctx, series) // may report an error of the queued writes
		if err != nil {
			return err
		}
		number = format(series, seq)
		if number == "" {
			return fmt.Errorf("number series %s: NumberFormat returned an empty number for %d", series, seq)
		}
		inserted, err := tx.InsertInvoice(ctx, InvoiceRow{ID: id, Number: number, Kind: kind, Issued: issued,
			Replaces: req.Replaces, Invoice: inv, Period: period})
		switch {
		case errors.Is(err, ErrNumberUsed):
			return fmt.Errorf("number %s is already used (series %s, sequence %d): %w", number, series, seq, err)
		case err != nil:
			return err
		case !inserted:
			// Another run committed an invoice for this customer and period meanwhile.
			live, err := tx.LiveInvoice(ctx, inv.CustomerID, period.Start)
			if err != nil {
				return err
			}
			return &AlreadyInvoicedError{CustomerID: inv.CustomerID, Invoice: live}
		}
		if oldID != 0 {
			reason := "regenerated as " + number
			if err := tx.SetVoidReason(ctx, oldID, reason, number); err != nil {
				return fmt.Errorf("void replaced invoice %s: %w", req.Replaces, err)
			}
			// The credit note that cancels the replaced invoice, from its own series, last: its
			// counter is locked only for the commit.
			if req.CreditNote.Format != nil {
				if _, err := issueCreditNote(ctx, tx, oldID, reason, req.CreditNote, issued); err != nil {
					return fmt.Errorf("credit note for replaced invoice %s: %w", req.Replaces, err)
				}
			}
		}
		stored = merged
		return nil
	})
	if err != nil {
		var ov *RangeOverlap
		if errors.As(err, &ov) {
			return d.NameOverlap(ctx, ov)
		}
		var oe *OverlapError
		var ae *AlreadyInvoicedError
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

// nameAndMerge names every range by resource id (looking up the rare range given by key only),
// checks it and merges contiguous ranges of one resource and kind.
func nameAndMerge(ctx context.Context, tx InvoiceTx, customer string, in []invoice.BilledRange) ([]invoice.BilledRange, error) {
	if len(in) == 0 {
		return nil, nil
	}
	named := make([]invoice.BilledRange, len(in))
	for i, br := range in {
		if br.ResourceID == "" {
			r, found, err := tx.ResourceByKey(ctx, br.ResourceKey)
			if err != nil {
				return nil, err
			}
			if !found || r.CustomerID != customer {
				return nil, fmt.Errorf("ranges[%d]: resource key %d is not a resource of customer %s", i, br.ResourceKey, customer)
			}
			br.ResourceID, br.ResourceType = r.ID, r.Type
		}
		br.Range = interval.Range{Start: interval.Norm(br.Range.Start), End: interval.Norm(br.Range.End)}
		if br.Range.Empty() {
			return nil, fmt.Errorf("ranges[%d]: range %s of resource %s is empty", i, br.Range, br.ResourceID)
		}
		named[i] = br
	}
	return invoice.MergeRanges(named), nil
}

// rangeResources returns the resource ids the ranges name, once each, with the type a missing
// one is created with.
func rangeResources(merged []invoice.BilledRange) (ids, types []string) {
	seen := map[string]bool{}
	for _, br := range merged {
		if seen[br.ResourceID] {
			continue
		}
		seen[br.ResourceID] = true
		typ := br.ResourceType
		if typ == "" && billing.IsSubscriptionResource(br.ResourceID) {
			typ = billing.SubscriptionType
		}
		ids, types = append(ids, br.ResourceID), append(types, typ)
	}
	return ids, types
}

// fillKeys sets the resource key (and a missing type) of every merged range from the stored
// resources, and checks a key given by the caller.
func fillKeys(merged []invoice.BilledRange, stored map[string]ResourceRef) error {
	for i := range merged {
		br := &merged[i]
		row, ok := stored[br.ResourceID]
		if !ok {
			return fmt.Errorf("range of resource %s: the resource was not created", br.ResourceID)
		}
		if br.ResourceKey != 0 && br.ResourceKey != row.Key {
			return fmt.Errorf("range of resource %s: resource key %d does not match the stored key %d", br.ResourceID, br.ResourceKey, row.Key)
		}
		br.ResourceKey = row.Key
		if br.ResourceType == "" {
			br.ResourceType = row.Type
		}
	}
	return nil
}

// VoidInvoice marks an issued invoice void with the reason and releases its billed ranges; the
// records those ranges covered are unsettled so that a later run sees the usage again.
func VoidInvoice(ctx context.Context, d InvoiceDriver, number, reason string) error {
	err := d.WriteTx(ctx, func(tx InvoiceTx) error {
		head, err := tx.LockInvoice(ctx, number)
		switch {
		case err != nil:
			return err
		case head.Status != invoice.Issued:
			return fmt.Errorf("invoice is %s: only an issued invoice can be voided", head.Status)
		}
		return tx.VoidInvoice(ctx, head.ID, reason, "")
	})
	if err != nil {
		return fmt.Errorf("void invoice %s: %w", number, err)
	}
	return nil
}

// IssueCreditNote voids an issued invoice (a void one stays void) and issues the credit note
// that cancels it, numbered from its own series, in one transaction (see CreditNotes).
func IssueCreditNote(ctx context.Context, d InvoiceDriver, number, reason string, n CreditNoteNumbering) (*invoice.CreditNote, error) {
	var cn *invoice.CreditNote
	err := d.WriteTx(ctx, func(tx InvoiceTx) error {
		head, err := tx.LockInvoice(ctx, number)
		switch {
		case err != nil:
			return err
		case head.CreditNote != "":
			return fmt.Errorf("already cancelled by credit note %s", head.CreditNote)
		case head.Status == invoice.Issued:
			if err := tx.VoidInvoice(ctx, head.ID, reason, ""); err != nil {
				return err
			}
		case head.Status != invoice.Void:
			return fmt.Errorf("invoice is %s: only an issued or void invoice gets a credit note", head.Status)
		}
		cn, err = issueCreditNote(ctx, tx, head.ID, reason, n, d.Now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("credit note for invoice %s: %w", number, err)
	}
	return cn, nil
}

// issueCreditNote issues the credit note of the void invoice id in tx.
func issueCreditNote(ctx context.Context, tx InvoiceTx, id int64, reason string, n CreditNoteNumbering, now time.Time) (*invoice.CreditNote, error) {
	if n.Series == "" || n.Format == nil {
		return nil, errors.New("credit note numbering: Series and Format are required")
	}
	inv, err := tx.InvoiceByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if inv.CreditNote != "" {
		return nil, fmt.Errorf("invoice %s already has credit note %s", inv.Number, inv.CreditNote)
	}
	seq, err := tx.NextNumber(ctx, n.Series)
	if err != nil {
		return nil, fmt.Errorf("credit note series %s: %w", n.Series, err)
	}
	cn := invoice.NewCreditNote(&inv, reason)
	cn.Number = n.Format(n.Series, seq)
	cn.IssuedAt = interval.Norm(now)
	if cn.Number == "" {
		return nil, fmt.Errorf("credit note series %s: Format returned an empty number for %d", n.Series, seq)
	}
	if err := tx.InsertCreditNote(ctx, id, &cn); err != nil {
		if errors.Is(err, ErrNumberUsed) {
			return nil, fmt.Errorf("credit note %s: the number is already used (series %s, sequence %d): %w", cn.Number, n.Series, seq, err)
		}
		return nil, fmt.Errorf("credit note %s: %w", cn.Number, err)
	}
	return &cn, nil
}
