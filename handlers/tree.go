package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// SubscriptionTree opens one draft invoice per customer with the payments of the period, the
// balance brought forward, the tax rate and the discounts.
//
// Tax: an exempt customer pays none (the invoice says so); else the customer's own rate; else
// the rate of the customer's region in billing.tax_regions; else billing.tax_rate. Tax is computed
// by invoice.Calculate on the rounded taxable subtotal, after discounts, with the rate stored on
// the invoice.
//
// Discounts: the customer's discounts valid for some second of the period are loaded into the
// item (the calculation applies line and rule discounts); invoice-scope ones become
// Invoice.InvoiceDiscounts, turned into discount lines when the invoice is calculated.
//
// Prepaid credit (payments received in the period and a credit balance brought forward) pays the
// invoice before anything is due: invoice.Calculate fills CreditApplied and AmountDue.
type SubscriptionTree struct {
	cfg   *config.Config
	store store.Store
}

var _ pipeline.Handler = (*SubscriptionTree)(nil)

func init() {
	pipeline.Register("subscription_tree", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &SubscriptionTree{cfg: env.Config, store: env.Store}, nil
	})
}

// Handle creates the draft invoices.
func (h *SubscriptionTree) Handle(ctx context.Context, b *pipeline.Batch) error {
	run := b.Run
	kind := invoice.Scheduled
	if run.Mode == pipeline.Interim {
		kind = invoice.Interim
	}
	if err := h.loadDiscounts(ctx, b); err != nil {
		return err
	}
	for _, it := range b.Active() {
		c := it.Customer
		rate, region := h.cfg.TaxRateFor(c.TaxRate, c.TaxExempt, c.Region)
		paid := decimal.Zero
		for _, p := range it.Payments {
			if p.Currency != c.Currency {
				it.Err = fmt.Errorf("customer %s: payment %q is in %s, the customer is billed in %s", c.ID, p.Reference, p.Currency, c.Currency)
				break
			}
			var err error
			if paid, err = paid.Add(p.Amount); err != nil {
				it.Err = fmt.Errorf("customer %s: payments: %w", c.ID, err)
				break
			}
		}
		if it.Err != nil {
			continue
		}
		it.Invoice = &invoice.Invoice{
			Kind:            kind,
			Status:          invoice.Draft,
			CustomerID:      c.ID,
			CustomerName:    c.Name,
			Currency:        c.Currency,
			Period:          run.Period,
			IssuedAt:        run.Now,
			TaxRate:         rate,
			TaxExempt:       c.TaxExempt,
			TaxRegion:       region,
			Payments:        paid,
			PreviousBalance: it.PreviousBalance,
			RunID:           run.ID,
		}
		if run.Replacing != nil {
			it.Invoice.Replaces = run.Replacing.Number
		}
		for _, d := range it.Discounts {
			if d.Scope != billing.DiscountInvoice {
				continue
			}
			if d.Amount.IsPos() && d.Currency != c.Currency {
				it.Err = fmt.Errorf("customer %s: discount %d is in %s, the customer is billed in %s", c.ID, d.ID, d.Currency, c.Currency)
				break
			}
			it.Invoice.InvoiceDiscounts = append(it.Invoice.InvoiceDiscounts, invoice.InvoiceDiscount{
				ID: d.ID, Description: discountText(d), Percent: d.Percent, Amount: d.Amount, Start: d.Start, End: d.End,
			})
		}
	}
	return nil
}

// loadDiscounts fills the items' discounts (unless an earlier handler did) from the store.
func (h *SubscriptionTree) loadDiscounts(ctx context.Context, b *pipeline.Batch) error {
	ds := h.store
	var ids []string
	byID := map[string]*pipeline.Item{}
	for _, it := range b.Active() {
		if it.Discounts == nil {
			ids = append(ids, it.CustomerID)
			byID[it.CustomerID] = it
		}
	}
	if len(ids) == 0 {
		return nil
	}
	r := b.Run.Period
	if b.Run.Until.After(r.End) {
		r.End = b.Run.Until
	}
	list, err := ds.Discounts(ctx, ids, r)
	if err != nil {
		return fmt.Errorf("load discounts: %w", err)
	}
	for _, d := range list {
		if it := byID[d.CustomerID]; it != nil {
			it.Discounts = append(it.Discounts, d)
		}
	}
	return nil
}

// discountText describes an invoice discount for its line, e.g.
// "Discount 10% on the invoice (launch offer), valid 2026-10-01 – 2026-12-31".
func discountText(d billing.Discount) string {
	var b strings.Builder
	if d.Percent.IsPos() {
		pct, _ := d.Percent.Mul(decimal.Hundred)
		fmt.Fprintf(&b, "Discount %s%% on the invoice", pct.Trim(0))
	} else {
		fmt.Fprintf(&b, "Discount %s %s on the invoice", d.Amount, d.Currency)
	}
	if d.Reason != "" {
		fmt.Fprintf(&b, " (%s)", d.Reason)
	}
	const f = "2006-01-02"
	w := interval.New(d.Start, d.End)
	end := "open"
	if !w.Open() {
		end = w.End.Add(-time.Second).Format(f)
	}
	fmt.Fprintf(&b, ", valid %s – %s", w.Start.Format(f), end)
	return b.String()
}
