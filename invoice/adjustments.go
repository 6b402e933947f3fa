package invoice

import (
	"fmt"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

// DiscountSection holds the lines that reduce an invoice's subtotal: invoice-scope discounts,
// added by Calculate from Invoice.InvoiceDiscounts, each rounded once like any other line.
const DiscountSection Section = "discount"

// InvoiceDiscountType is the ResourceType of an invoice-scope discount line; its ResourceID is
// "discount/<id>".
const InvoiceDiscountType = "discount"

// InvoiceDiscount is an invoice-scope discount to apply when the invoice is calculated: a
// percentage of the lines that start inside its validity window, or a fixed amount taken off once
// per invoice whose period overlaps the window. A fixed amount never takes the subtotal below
// zero.
type InvoiceDiscount struct {
	ID          int64           `json:"id,omitempty"`
	Description string          `json:"description"`
	Percent     decimal.Decimal `json:"percent"` // 0.10 for 10 %; zero when Amount is set
	Amount      decimal.Decimal `json:"amount"`  // fixed amount, positive; zero when Percent is set
	Start       time.Time       `json:"start"`   // validity [Start, End); zero End: open
	End         time.Time       `json:"end"`
}

// window returns the discount's validity range (open end when End is zero).
func (d InvoiceDiscount) window() interval.Range { return interval.New(d.Start, d.End) }

// CreditNote cancels an issued invoice: it carries the voided invoice's amounts negated and its
// own number from a gapless series of its own (e.g. CN-2026-000001). When the invoice was
// regenerated, ReplacedBy names the new invoice, so the chain old → credit note → new is
// auditable from any of the three documents.
type CreditNote struct {
	ID           int64           `json:"id,omitempty"`
	Number       string          `json:"number"`
	Invoice      string          `json:"invoice"` // number of the credited (voided) invoice
	CustomerID   string          `json:"customer_id"`
	CustomerName string          `json:"customer_name"`
	Currency     string          `json:"currency"`
	Period       interval.Range  `json:"period"` // the credited invoice's period
	IssuedAt     time.Time       `json:"issued_at"`
	Subtotal     decimal.Decimal `json:"subtotal"` // negative: the credited invoice's subtotal
	TaxRate      decimal.Decimal `json:"tax_rate"`
	Tax          decimal.Decimal `json:"tax"`
	Total        decimal.Decimal `json:"total"`
	Reason       string          `json:"reason"`
	ReplacedBy   string          `json:"replaced_by,omitempty"` // the regenerated invoice, if any
}

// NewCreditNote returns the credit note that cancels inv: its amounts negated, its period,
// customer and currency. Number and IssuedAt are set by the store.
func NewCreditNote(inv *Invoice, reason string) CreditNote {
	return CreditNote{
		Invoice:      inv.Number,
		CustomerID:   inv.CustomerID,
		CustomerName: inv.CustomerName,
		Currency:     inv.Currency,
		Period:       inv.Period,
		Subtotal:     inv.Subtotal.Neg(),
		TaxRate:      inv.TaxRate,
		Tax:          inv.Tax.Neg(),
		Total:        inv.Total.Neg(),
		Reason:       reason,
		ReplacedBy:   inv.ReplacedBy,
	}
}

// applyInvoiceDiscounts replaces the invoice-scope discount lines by fresh ones computed from
// InvoiceDiscounts over the other lines. Without InvoiceDiscounts the lines are left as they are
// (a stored invoice keeps its discount lines).
func (inv *Invoice) applyInvoiceDiscounts(r Rounding) error {
	if len(inv.InvoiceDiscounts) == 0 {
		return nil
	}
	kept := inv.Lines[:0]
	for _, l := range inv.Lines {
		if l.Section == DiscountSection && l.ResourceType == InvoiceDiscountType {
			continue
		}
		kept = append(kept, l)
	}
	inv.Lines = kept
	// Every discount applies to the subtotal of the lines before invoice discounts; together
	// they never take it below zero.
	base := decimal.Zero
	for _, l := range inv.Lines {
		var err error
		if base, err = base.Add(l.Amount); err != nil {
			return err
		}
	}
	left := base
	var added []Line
	for _, d := range inv.InvoiceDiscounts {
		w := d.window()
		if !w.Overlaps(inv.Period) || !left.IsPos() {
			continue
		}
		l := Line{
			Section:      DiscountSection,
			ResourceID:   fmt.Sprintf("discount/%d", d.ID),
			ResourceType: InvoiceDiscountType,
			Description:  d.Description,
			Start:        interval.Later(w.Start, inv.Period.Start),
			End:          interval.Earlier(w.End, inv.Period.End),
			Attributes:   map[string]string{"scope": "invoice"},
		}
		l.Seconds = interval.Range{Start: l.Start, End: l.End}.Seconds()
		switch {
		case d.Percent.IsPos():
			// A percentage of the lines whose time (their start) falls in the window.
			in := decimal.Zero
			for _, x := range inv.Lines {
				if w.Contains(x.Start) {
					var err error
					if in, err = in.Add(x.Amount); err != nil {
						return err
					}
				}
			}
			if !in.IsPos() {
				continue
			}
			amt, err := in.Mul(d.Percent)
			if err != nil {
				return err
			}
			l.Quantity, l.Unit, l.UnitPrice = d.Percent.Neg(), "of "+in.String(), in
			l.Amount = r.Round(amt).Neg()
		case d.Amount.IsPos():
			l.Quantity, l.Unit, l.UnitPrice = decimal.MustNew(-1, 0), "discount", d.Amount
			l.Amount = r.Round(d.Amount).Neg()
		default:
			continue
		}
		if l.Amount.Abs().Cmp(left) > 0 { // never below zero
			l.Amount = left.Neg().Pad(r.Scale)
		}
		var err error
		if left, err = left.Add(l.Amount); err != nil {
			return err
		}
		added = append(added, l)
	}
	inv.Lines = append(inv.Lines, added...)
	return nil
}

// applyCredits fills CreditApplied and AmountDue from the balance: prepaid credit (payments in
// the period and a credit brought forward) pays the invoice before anything is due.
func (inv *Invoice) applyCredits(r Rounding) error {
	credit, err := inv.Payments.Sub(inv.PreviousBalance)
	if err != nil {
		return err
	}
	switch {
	case !credit.IsPos() || !inv.Total.IsPos():
		inv.CreditApplied = decimal.Zero
	case credit.Cmp(inv.Total) > 0:
		inv.CreditApplied = inv.Total
	default:
		inv.CreditApplied = credit
	}
	inv.CreditApplied = inv.CreditApplied.Pad(r.Scale)
	inv.AmountDue = inv.BalanceDue
	if inv.AmountDue.IsNeg() {
		inv.AmountDue = decimal.Zero
	}
	inv.AmountDue = inv.AmountDue.Pad(r.Scale)
	return nil
}
