package handlers

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Rule adds each subscription's recurring policy fee, prorated to the second: fee × seconds of
// the subscription inside the period ÷ seconds of the period. Billed in arrears; the fee's range
// is recorded under the subscription so it is never billed twice.
type Rule struct {
	rounding invoice.Rounding
}

var _ pipeline.Handler = (*Rule)(nil)

func init() {
	pipeline.Register("rule", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Rule{rounding: env.Config.Billing.Rounding}, nil
	})
}

// Handle adds the fee lines.
func (h *Rule) Handle(_ context.Context, b *pipeline.Batch) error {
	run := b.Run
	window := interval.Range{Start: run.Period.Start, End: run.Until}
	periodSecs := decimal.MustNew(run.Period.Seconds(), 0)
	for _, it := range b.Active() {
		for _, s := range it.Subscriptions {
			p, ok := run.Policies[s.Policy]
			if !ok {
				it.Err = fmt.Errorf("customer %s: subscription %d: policy %q does not exist", it.CustomerID, s.ID, s.Policy)
				break
			}
			if p.Fee.IsZero() {
				continue
			}
			if p.Currency != "" && p.Currency != it.Customer.Currency {
				it.Err = fmt.Errorf("customer %s: policy %s is priced in %s, the customer is billed in %s", it.CustomerID, p.Name, p.Currency, it.Customer.Currency)
				break
			}
			ranges := interval.NewSet(s.Range().Intersect(window))
			if run.Replacing != nil {
				ranges = ranges.Intersect(fixedSet(run.Replacing, s.ResourceID(), invoice.Charge))
			}
			for _, r := range ranges {
				secs := decimal.MustNew(r.Seconds(), 0)
				num, err := p.Fee.Mul(secs)
				if err != nil {
					it.Err = fmt.Errorf("customer %s: fee of %s: %w", it.CustomerID, p.Name, err)
					break
				}
				amount, err := num.Quo(periodSecs)
				if err != nil {
					it.Err = fmt.Errorf("customer %s: fee of %s: %w", it.CustomerID, p.Name, err)
					break
				}
				qty, _ := secs.Quo(periodSecs)
				it.Invoice.Lines = append(it.Invoice.Lines, invoice.Line{
					Section:      invoice.Recurring,
					ResourceID:   s.ResourceID(),
					ResourceType: "subscription",
					Description:  fmt.Sprintf("Policy %s, monthly fee", p.Name),
					Policy:       p.Name,
					Start:        r.Start,
					End:          r.End,
					Seconds:      r.Seconds(),
					Quantity:     qty.Round(6).Trim(0),
					Unit:         "month",
					UnitPrice:    p.Fee,
					Amount:       h.rounding.Round(amount),
				})
				it.Invoice.Ranges = append(it.Invoice.Ranges, invoice.BilledRange{
					ResourceID: s.ResourceID(), ResourceType: "subscription", Kind: invoice.Charge, Range: r,
				})
			}
		}
	}
	return nil
}

// fixedSet returns the ranges an invoice holds for one resource and kind.
func fixedSet(inv *invoice.Invoice, resourceID string, kind invoice.RangeKind) interval.Set {
	var rs []interval.Range
	for _, br := range inv.Ranges {
		if br.ResourceID == resourceID && br.Kind == kind {
			rs = append(rs, br.Range)
		}
	}
	return interval.NewSet(rs...)
}
