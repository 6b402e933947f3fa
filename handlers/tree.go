package handlers

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// SubscriptionTree opens one draft invoice per customer with the payments of the period and the
// balance brought forward.
type SubscriptionTree struct {
	defaultTax decimal.Decimal
}

var _ pipeline.Handler = (*SubscriptionTree)(nil)

func init() {
	pipeline.Register("subscription_tree", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &SubscriptionTree{defaultTax: env.Config.DefaultTaxRate()}, nil
	})
}

// Handle creates the draft invoices.
func (h *SubscriptionTree) Handle(_ context.Context, b *pipeline.Batch) error {
	run := b.Run
	kind := invoice.Scheduled
	if run.Mode == pipeline.Interim {
		kind = invoice.Interim
	}
	for _, it := range b.Active() {
		c := it.Customer
		rate := h.defaultTax
		switch {
		case c.TaxExempt:
			rate = decimal.Zero
		case !c.TaxRate.IsZero():
			rate = c.TaxRate
		}
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
			Payments:        paid,
			PreviousBalance: it.PreviousBalance,
			RunID:           run.ID,
		}
		if run.Replacing != nil {
			it.Invoice.Replaces = run.Replacing.Number
		}
	}
	return nil
}
