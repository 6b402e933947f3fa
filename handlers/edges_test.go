package handlers

import (
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Issue 11 (2): an interim invoice (or a balance) after the month was invoiced billed the
// month's meter totals a second time. What a meter's live billed ranges cover is not billed again;
// only the rest is, pro rata.
func TestMeterTotalsSubtractWhatIsBilled(t *testing.T) {
	p := policy(rating.MeterType, `{meter: traffic, unit: GB, price: "0.05"}`)
	total := billing.MeterTotal{Meter: "traffic", ResourceID: "port-1", Range: octRange, Quantity: decimal.MustNew(744, 0), Unit: "GB"}
	half := interval.Range{Start: oct1, End: oct1.Add(372 * time.Hour)}
	tests := []struct {
		name   string
		billed store.BilledSets
		want   []wantLine
		total  string
	}{
		// 744 GB × 0.05 = 37.20.
		{"nothing billed", store.BilledSets{}, []wantLine{{invoice.Usage, "744", "0.05", "37.20"}}, "37.20"},
		// The October invoice billed the whole range: nothing is left.
		{"month invoiced", store.BilledSets{Charged: interval.NewSet(octRange)}, nil, "0.00"},
		// The first 372 of 744 hours were billed: the other half, 372 GB × 0.05 = 18.60.
		{"half billed", store.BilledSets{Charged: interval.NewSet(half)}, []wantLine{{invoice.Usage, "372", "0.05", "18.60"}}, "18.60"},
		// Billed, then credited (its invoice's ranges were credited): billable again.
		{"billed and credited", store.BilledSets{Charged: interval.NewSet(octRange), Credited: interval.NewSet(octRange)}, []wantLine{{invoice.Usage, "744", "0.05", "37.20"}}, "37.20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := customer("c1")
			it.Meters = []billing.MeterTotal{total}
			it.MeterBilled = map[string]store.BilledSets{"meter/traffic/port-1": tt.billed}
			calculate(t, octRange, []billing.Policy{p}, it)
			checkInvoice(t, it.Invoice, tt.total, tt.want)
		})
	}
}

// Issue 11 (7): a meter total was priced under the policy in force at its start. It is now split
// pro rata by seconds at a policy version change (and at subscription changes), each part at the
// price of its own version, the parts adding up to the total exactly.
func TestMeterTotalSplitAtPolicyVersion(t *testing.T) {
	v1 := policy(rating.MeterType, `{meter: traffic, unit: GB, price: "0.05"}`)
	v1.Version = 1
	v2 := policy(rating.MeterType, `{meter: traffic, unit: GB, price: "0.02"}`)
	v2.Version, v2.EffectiveFrom = 2, day(11) // Oct 11 00:00
	it := customer("c1")
	// 100 GB over October's 744 h: Oct 1–11 is 240 h → 100 × 240/744 = 32.258064516… GB at 0.05
	// = 1.6129… → 1.61; the remaining 67.741935483… GB at 0.02 = 1.3548… → 1.35.
	it.Meters = []billing.MeterTotal{{Meter: "traffic", ResourceID: "port-1", Range: octRange, Quantity: decimal.MustNew(100, 0), Unit: "GB"}}
	calculate(t, octRange, []billing.Policy{v1, v2}, it)
	if len(it.Invoice.Lines) != 2 {
		t.Fatalf("lines: %+v", it.Invoice.Lines)
	}
	a, b := it.Invoice.Lines[0], it.Invoice.Lines[1]
	if a.Amount.String() != "1.61" || b.Amount.String() != "1.35" || !a.End.Equal(day(11)) || !b.Start.Equal(day(11)) {
		t.Fatalf("lines = %s [%s, %s) and %s [%s, %s)", a.Amount, a.Start, a.End, b.Amount, b.Start, b.End)
	}
	if q, _ := a.Quantity.Add(b.Quantity); q.Cmp(decimal.MustNew(100, 0)) != 0 {
		t.Fatalf("quantities %s + %s = %s, want exactly 100", a.Quantity, b.Quantity, q)
	}
	if len(it.Invoice.Ranges) != 2 {
		t.Fatalf("ranges %+v", it.Invoice.Ranges)
	}
}
