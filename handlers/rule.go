package handlers

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// Rule adds the recurring fees of each subscription, prorated to the second, as calc.Fees prices
// them: it loads the fee ranges billed already and hands each subscription to the calculator.
type Rule struct {
	fees  calc.Fees
	store store.Store
}

var _ pipeline.Handler = (*Rule)(nil)

func init() {
	pipeline.Register("rule", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Rule{fees: calc.Fees{Rounding: env.Config.Billing.Rounding, Loc: env.Config.Location()}, store: env.Store}, nil
	})
}

// Handle adds the fee lines.
func (h *Rule) Handle(ctx context.Context, b *pipeline.Batch) error {
	run := b.Run
	fixed := calc.IndexRanges(run.Replacing)
	var ids []string
	for _, it := range b.Active() {
		if len(it.Subscriptions) > 0 {
			ids = append(ids, it.CustomerID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// What the fees billed already (a regenerate run bills exactly the replaced invoice's ranges).
	var billed map[string]store.BilledSets
	if fixed == nil {
		var err error
		if billed, err = h.store.SubscriptionRanges(ctx, ids); err != nil {
			return fmt.Errorf("load subscription fee ranges: %w", err)
		}
	}
	for _, it := range b.Active() {
		for _, s := range it.Subscriptions {
			// The billing start: zero is since ever (calc.BillingStart).
			if err := h.fees.Subscription(run, it, s, it.BillingStart, billed[s.ResourceID()], fixed); err != nil {
				it.Err = fmt.Errorf("customer %s: subscription %d: %w", it.CustomerID, s.ID, err)
				break
			}
		}
	}
	return nil
}
