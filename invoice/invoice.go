// Package invoice holds the invoice model, money and rounding, and the invoice arithmetic.
//
// Invariants (each has a test named after it):
//   - every line amount is rounded once, with the configured Rounding;
//   - an invoice's subtotal is the sum of its rounded lines; tax is the rounded taxable subtotal
//     times the rate; total = subtotal + tax;
//   - balance due = previous balance + total − payments received in the period;
//   - a billed range belongs to exactly one live invoice (the store enforces it).
package invoice

import (
	"fmt"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

// Status is an invoice's place in its life: draft → issued → void.
type Status string

// Invoice statuses.
const (
	Draft  Status = "draft"
	Issued Status = "issued"
	Void   Status = "void"
)

// Kind says which run produced an invoice.
type Kind string

// Invoice kinds. Interim invoices are never stored.
const (
	Scheduled Kind = "scheduled"
	Interim   Kind = "interim"
)

// Section groups lines on a document.
type Section string

// Line sections, in the order documents print them.
const (
	Recurring  Section = "recurring"  // policy fees, prorated to the second
	Usage      Section = "usage"      // trigger records inside the period
	Adjustment Section = "adjustment" // usage from an earlier, already invoiced period
	Credit     Section = "credit"     // billed earlier but not used (a span closed late)
)

// Line is one priced piece of an invoice.
type Line struct {
	Section      Section         `json:"section"`
	ResourceID   string          `json:"resource_id"`   // OpenStack id, or "subscription/<id>" for a recurring fee
	ResourceType string          `json:"resource_type"` // e.g. os.nova.server
	Description  string          `json:"description"`
	Policy       string          `json:"policy,omitempty"`
	Region       string          `json:"region,omitempty"`
	Start        time.Time       `json:"start"` // inclusive, UTC
	End          time.Time       `json:"end"`   // exclusive, UTC
	Seconds      int64           `json:"seconds"`
	Quantity     decimal.Decimal `json:"quantity"`
	Unit         string          `json:"unit"`
	UnitPrice    decimal.Decimal `json:"unit_price"`
	// Granularity is how time was counted for this line (second, minute, hour, day), stated so
	// the customer can check the quantity.
	Granularity string            `json:"granularity,omitempty"`
	Amount      decimal.Decimal   `json:"amount"` // rounded once
	Attributes  map[string]string `json:"attributes,omitempty"`
}

// RangeKind says whether a billed range was charged or credited.
type RangeKind string

// Billed range kinds.
const (
	Charge   RangeKind = "charge"
	Credited RangeKind = "credit"
)

// BilledRange records that one resource's range is billed on one invoice. Contiguous ranges of the
// same resource and kind are merged before they are stored.
type BilledRange struct {
	ResourceKey  int64          `json:"resource_key,omitempty"` // store surrogate key; 0 lets the store resolve ResourceID
	ResourceID   string         `json:"resource_id"`
	ResourceType string         `json:"resource_type"`
	Kind         RangeKind      `json:"kind"`
	Range        interval.Range `json:"range"`
}

// Invoice is one customer's bill for one period.
type Invoice struct {
	ID              int64           `json:"id,omitempty"`
	Number          string          `json:"number"` // gapless per series; empty until issued
	Kind            Kind            `json:"kind"`
	Status          Status          `json:"status"`
	CustomerID      string          `json:"customer_id"`
	CustomerName    string          `json:"customer_name"`
	Currency        string          `json:"currency"`
	Period          interval.Range  `json:"period"`
	IssuedAt        time.Time       `json:"issued_at"`
	Lines           []Line          `json:"lines"`
	Ranges          []BilledRange   `json:"ranges,omitempty"`
	Subtotal        decimal.Decimal `json:"subtotal"`
	TaxRate         decimal.Decimal `json:"tax_rate"`
	Tax             decimal.Decimal `json:"tax"`
	Total           decimal.Decimal `json:"total"`
	Payments        decimal.Decimal `json:"payments"`         // received during the period
	PreviousBalance decimal.Decimal `json:"previous_balance"` // owed before the period (invoiced minus paid)
	BalanceDue      decimal.Decimal `json:"balance_due"`      // carried forward: previous + total − payments
	RunID           string          `json:"run_id"`
	Replaces        string          `json:"replaces,omitempty"` // number of the voided invoice this one regenerates
	ReplacedBy      string          `json:"replaced_by,omitempty"`
	VoidReason      string          `json:"void_reason,omitempty"`
	// CreditNote is the number of the credit note that cancelled this (void) invoice.
	CreditNote string `json:"credit_note,omitempty"`
	// TaxExempt says the customer is exempt: the rate is zero and documents say so.
	TaxExempt bool `json:"tax_exempt,omitempty"`
	// TaxRegion is the region whose rate (billing.tax_regions) applies; empty when the rate is the
	// customer's own or the default.
	TaxRegion string `json:"tax_region,omitempty"`
	// InvoiceDiscounts are applied by Calculate as lines of DiscountSection; not stored (the
	// lines are).
	InvoiceDiscounts []InvoiceDiscount `json:"invoice_discounts,omitempty"`
	// CreditApplied is the part of Total paid by prepaid credit: payments received in the period
	// and a credit balance brought forward (never more than Total).
	CreditApplied decimal.Decimal `json:"credit_applied"`
	// AmountDue is what the customer must still pay: BalanceDue, or zero when the balance is a
	// credit carried forward.
	AmountDue decimal.Decimal `json:"amount_due"`
}

// Calculate computes subtotal, tax, total and balance from the lines, which must already be
// rounded. Tax is the rounded product of the rounded subtotal and the rate.
//
// Invoice-scope discounts (InvoiceDiscounts) first become lines of DiscountSection, so the
// subtotal stays the sum of the rounded lines and tax is computed on the discounted subtotal.
// Prepaid credit then fills CreditApplied and AmountDue.
func (inv *Invoice) Calculate(r Rounding) error {
	if err := inv.applyInvoiceDiscounts(r); err != nil {
		return fmt.Errorf("invoice for %s: discounts: %w", inv.CustomerID, err)
	}
	sub := decimal.Zero
	for i, l := range inv.Lines {
		var err error
		if sub, err = sub.Add(l.Amount); err != nil {
			return fmt.Errorf("invoice for %s: line %d: %w", inv.CustomerID, i+1, err)
		}
	}
	inv.Subtotal = sub.Pad(r.Scale)
	tax, err := sub.Mul(inv.TaxRate)
	if err != nil {
		return fmt.Errorf("invoice for %s: tax: %w", inv.CustomerID, err)
	}
	inv.Tax = r.Round(tax)
	if inv.Total, err = inv.Subtotal.Add(inv.Tax); err != nil {
		return fmt.Errorf("invoice for %s: total: %w", inv.CustomerID, err)
	}
	due, err := inv.PreviousBalance.Add(inv.Total)
	if err == nil {
		due, err = due.Sub(inv.Payments)
	}
	if err != nil {
		return fmt.Errorf("invoice for %s: balance: %w", inv.CustomerID, err)
	}
	inv.BalanceDue = due.Pad(r.Scale)
	inv.Payments = inv.Payments.Pad(r.Scale)
	inv.PreviousBalance = inv.PreviousBalance.Pad(r.Scale)
	if err := inv.applyCredits(r); err != nil {
		return fmt.Errorf("invoice for %s: credits: %w", inv.CustomerID, err)
	}
	return nil
}

// MergeRanges sorts ranges by resource and kind and merges the contiguous or overlapping ones, so
// that the store holds one range per resource per kind wherever the usage was continuous.
func MergeRanges(in []BilledRange) []BilledRange {
	type key struct {
		id   string
		kind RangeKind
	}
	groups := map[key][]interval.Range{}
	first := map[key]BilledRange{}
	var order []key
	for _, br := range in {
		k := key{br.ResourceID, br.Kind}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
			first[k] = br
		}
		groups[k] = append(groups[k], br.Range)
	}
	out := make([]BilledRange, 0, len(in))
	for _, k := range order {
		for _, r := range interval.NewSet(groups[k]...) {
			br := first[k]
			br.Range = r
			out = append(out, br)
		}
	}
	return out
}
