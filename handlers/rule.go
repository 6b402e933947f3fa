package handlers

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/billing"
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
	fixed := indexRanges(run.Replacing)
	for _, it := range b.Active() {
		for _, s := range it.Subscriptions {
			if err := h.fee(run, it, s, fixed); err != nil {
				it.Err = fmt.Errorf("customer %s: subscription %d: %w", it.CustomerID, s.ID, err)
				break
			}
		}
	}
	return nil
}

// fee adds the prorated fee lines of one subscription: fee × seconds inside the period (up to the
// run's end) ÷ seconds of the period; a regenerate run keeps exactly the replaced fee ranges.
func (h *Rule) fee(run *pipeline.Run, it *pipeline.Item, s billing.Subscription, fixed rangeIndex) error {
	p, err := policyNamed(run, it, s.Policy)
	if err != nil || p.Fee.IsZero() {
		return err
	}
	ranges := interval.NewSet(s.Range().Intersect(interval.Range{Start: run.Period.Start, End: run.Until}))
	if fixed != nil {
		ranges = ranges.Intersect(fixed[rangeKey{s.ResourceID(), invoice.Charge}])
	}
	periodSecs := decimal.MustNew(run.Period.Seconds(), 0)
	for _, r := range ranges {
		secs := decimal.MustNew(r.Seconds(), 0)
		num, err := p.Fee.Mul(secs)
		if err != nil {
			return fmt.Errorf("fee of %s: %w", p.Name, err)
		}
		amount, err := num.Quo(periodSecs)
		if err != nil {
			return fmt.Errorf("fee of %s: %w", p.Name, err)
		}
		qty, _ := secs.Quo(periodSecs)
		it.Invoice.Lines = append(it.Invoice.Lines, invoice.Line{
			Section:      invoice.Recurring,
			ResourceID:   s.ResourceID(),
			ResourceType: billing.SubscriptionType,
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
			ResourceID: s.ResourceID(), ResourceType: billing.SubscriptionType, Kind: invoice.Charge, Range: r,
		})
	}
	return nil
}
