package handlers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
	"pgregory.net/rapid"
)

// propPolicy prices servers per second at uneven rates, volumes per GB-hour and traffic by
// graduated tiers.
func propPolicy() billing.Policy {
	return policy(
		rating.ServerType, `flavors: {m1.small: "0.0213", m1.large: "0.0877"}`,
		rating.VolumeType, `price_per_gb_hour: "0.000137"`,
		rating.MeterType, `{meter: traffic, unit: GB, price: {model: graduated, tiers: [{up_to: 100, price: "0.09"}, {price: "0.04"}]}}`,
	)
}

// drawUsage draws a customer's usage inside October: servers and volumes with random spans.
func drawUsage(t *rapid.T, id string) []store.ResourceUsage {
	n := rapid.IntRange(0, 6).Draw(t, id+" resources")
	out := make([]store.ResourceUsage, 0, n)
	month := octRange.Seconds()
	for i := 0; i < n; i++ {
		a := rapid.Int64Range(0, month-1).Draw(t, "start")
		b := rapid.Int64Range(a+1, month).Draw(t, "end")
		r := interval.Range{Start: oct1.Add(time.Duration(a) * time.Second), End: oct1.Add(time.Duration(b) * time.Second)}
		rid := fmt.Sprintf("%s-r%d", id, i)
		if rapid.Bool().Draw(t, "server") {
			out = append(out, resource(rid, rating.ServerType, map[string]string{"flavor": rapid.SampledFrom([]string{"m1.small", "m1.large"}).Draw(t, "flavor")}, r))
		} else {
			out = append(out, resource(rid, rating.VolumeType, map[string]string{"size": fmt.Sprint(rapid.IntRange(1, 2000).Draw(t, "size"))}, r))
		}
	}
	return out
}

func cents(d decimal.Decimal) int64 {
	w, f, _ := d.Int64(2)
	return w*100 + f
}

// TestBillingInTwoHalvesEqualsBillingWhole: cutting the month at any second changes the total
// by at most one cent per line the cut splits (each part is rounded on its own).
func TestBillingInTwoHalvesEqualsBillingWhole(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		usage := drawUsage(t, "c")
		mid := oct1.Add(time.Duration(rapid.Int64Range(1, octRange.Seconds()-1).Draw(t, "mid")) * time.Second)
		whole := customer("c", usage...)
		calculate(t, octRange, []billing.Policy{propPolicy()}, whole)
		first := customer("c", usage...)
		calculate(t, interval.Range{Start: oct1, End: mid}, []billing.Policy{propPolicy()}, first)
		second := customer("c", usage...)
		calculate(t, interval.Range{Start: mid, End: nov1}, []billing.Policy{propPolicy()}, second)
		split := len(first.Invoice.Lines) + len(second.Invoice.Lines) - len(whole.Invoice.Lines)
		diff := cents(whole.Invoice.Subtotal) - cents(first.Invoice.Subtotal) - cents(second.Invoice.Subtotal)
		if diff < 0 {
			diff = -diff
		}
		if diff > int64(split) {
			t.Fatalf("whole %s, halves %s + %s: %d cents apart with %d lines split", whole.Invoice.Subtotal, first.Invoice.Subtotal, second.Invoice.Subtotal, diff, split)
		}
	})
}

// TestAddingAFreeRuleChangesNothing: a rule at price zero for usage that was unpriced adds
// zero lines and changes no amount.
func TestAddingAFreeRuleChangesNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		usage := drawUsage(t, "c")
		r := interval.Range{Start: oct1, End: day(rapid.IntRange(2, 31).Draw(t, "router end"))}
		usage = append(usage, resource("router", rating.RouterType, nil, r))
		traffic := []billing.MeterTotal{{Meter: "traffic", ResourceID: "port", Range: octRange, Quantity: decimal.MustNew(int64(rapid.IntRange(0, 500).Draw(t, "GB")), 0), Unit: "GB"},
			{Meter: "calls", Range: octRange, Quantity: decimal.MustNew(int64(rapid.IntRange(0, 500).Draw(t, "calls")), 0)}}
		base := customer("c", usage...)
		base.Meters = traffic
		calculate(t, octRange, []billing.Policy{propPolicy()}, base)
		free := propPolicy()
		free.Rules = append(free.Rules,
			billing.RuleSpec{Type: rating.RouterType, Spec: `price_per_hour: "0"`},
			billing.RuleSpec{Type: rating.MeterType, Spec: `{meter: calls, price: {model: volume, tiers: [{up_to: 10, price: "0"}, {price: "0"}]}}`})
		with := customer("c", usage...)
		with.Meters = traffic
		calculate(t, octRange, []billing.Policy{free}, with)
		if with.Invoice.Subtotal != base.Invoice.Subtotal {
			t.Fatalf("subtotal %s with the free rule, %s without", with.Invoice.Subtotal, base.Invoice.Subtotal)
		}
		var kept []invoice.Line
		for _, l := range with.Invoice.Lines {
			if l.ResourceType == rating.RouterType || l.Attributes["meter"] == "calls" || strings.HasPrefix(l.Description, "calls") {
				if !l.Amount.IsZero() {
					t.Fatalf("free line %q costs %s", l.Description, l.Amount)
				}
				continue
			}
			kept = append(kept, l)
		}
		if fmt.Sprint(kept) != fmt.Sprint(base.Invoice.Lines) {
			t.Fatalf("lines changed:\n%v\n%v", kept, base.Invoice.Lines)
		}
	})
}

// TestSumsAreInvariantToCustomerOrder: the same customers in any order get the same invoices.
func TestSumsAreInvariantToCustomerOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "customers")
		usage := make([][]store.ResourceUsage, n)
		meters := make([][]billing.MeterTotal, n)
		ids := make([]int, n)
		for i := range usage {
			id := fmt.Sprintf("c%d", i)
			usage[i] = drawUsage(t, id)
			meters[i] = []billing.MeterTotal{{Meter: "traffic", Range: octRange, Quantity: decimal.MustNew(int64(rapid.IntRange(0, 300).Draw(t, "GB")), 0), Unit: "GB"}}
			ids[i] = i
		}
		batch := func(order []int) map[string]string {
			items := make([]*pipeline.Item, len(order))
			for j, i := range order {
				items[j] = customer(fmt.Sprintf("c%d", i), usage[i]...)
				items[j].Meters = meters[i]
			}
			calculate(t, octRange, []billing.Policy{propPolicy()}, items...)
			out := map[string]string{}
			total := decimal.Zero
			for _, it := range items {
				out[it.CustomerID] = fmt.Sprint(it.Invoice.Subtotal, it.Invoice.Lines)
				total, _ = total.Add(it.Invoice.Subtotal)
			}
			out["total"] = total.String()
			return out
		}
		a := batch(ids)
		b := batch(rapid.Permutation(ids).Draw(t, "order"))
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("order changed the invoices:\n%v\n%v", a, b)
		}
	})
}
