package handlers

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"gopkg.in/yaml.v3"
)

// Calculation prices each item's usage through the calculator (calc.Price: usage, meters, line and
// rule discounts) and totals its invoice (invoice.Calculate: invoice discounts, tax, credit). A
// customer with nothing to bill in a scheduled or interim run is skipped.
type Calculation struct {
	rounding      invoice.Rounding
	defaultPolicy string
}

var _ pipeline.Handler = (*Calculation)(nil)

func init() {
	pipeline.Register("invoice_calculation", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Calculation{rounding: env.Config.Billing.Rounding, defaultPolicy: env.Config.Billing.DefaultPolicy}, nil
	})
}

// Handle prices the usage of every active item and totals its invoice.
func (h *Calculation) Handle(_ context.Context, b *pipeline.Batch) error {
	for _, it := range b.Active() {
		if it.Invoice == nil {
			continue
		}
		if err := calc.Price(b.Run, it, calc.Options{Rounding: h.rounding, DefaultPolicy: h.defaultPolicy}); err != nil {
			it.Err = fmt.Errorf("customer %s: %w", it.CustomerID, err)
			continue
		}
		if err := it.Invoice.Calculate(h.rounding); err != nil {
			it.Err = err
			continue
		}
		if len(it.Invoice.Lines) == 0 && it.Invoice.Payments.IsZero() && !b.Run.Replaying() {
			it.Skip = "nothing to bill"
		}
	}
	return nil
}
