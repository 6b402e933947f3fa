package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// goldenMeters are the meter totals the test feeds for October: p0002 sent 250 GB from its plan
// change on (the step "e2e_meters" stands in for Gnocchi).
var goldenMeters = map[string][]billing.MeterTotal{
	"p0002": {{
		CustomerID: "p0002", Meter: "network.outgoing.bytes", ResourceID: "port-p0002",
		ResourceType: "instance_network_interface",
		Range:        interval.Range{Start: ts("2026-10-15T12:00:00Z"), End: ts("2026-11-01T00:00:00Z")},
		Quantity:     decimal.MustParse("250"), Unit: "GB", Aggregation: "sum", Source: "test",
	}},
}

func init() {
	pipeline.Register("e2e_meters", func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) {
		return pipeline.HandlerFunc(func(_ context.Context, b *pipeline.Batch) error {
			for _, it := range b.Active() {
				it.Meters = append(it.Meters, goldenMeters[it.CustomerID]...)
			}
			return nil
		}), nil
	})
}

// TestGoldenPlanChangeInvoice invoices demo project p0002 for October 2026, a month with:
//   - a plan change: standard until Oct 15 12:00, business (49.00 a month in arrears) from then;
//   - a tiered meter: business version 2 (effective Oct 1) prices network.outgoing.bytes in
//     graduated tiers, 0.05 per GB up to 100 GB then 0.02: 250 GB = 5.00 + 3.00 = 8.00;
//   - a discount: 10 % off the October invoice ("loyalty");
//   - tax: 20 % on the discounted subtotal.
//
// By hand: the lines of the plain demo invoice (258.15) plus the meter (8.00) = 266.15; the
// discount −10 % = −26.615 → −26.62 (half-up); subtotal 239.53; tax 20 % = 47.906 → 47.91;
// total 287.44.
//
// The CSV invoice is compared with testdata/golden_plan_change (go test ./e2e -update rewrites
// it); the arithmetic is checked independently below.
func TestGoldenPlanChangeInvoice(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	var steps []config.Step
	for _, s := range h.cfg.Pipeline.Scheduled {
		steps = append(steps, s)
		if s.Name == "subscription_feeding" {
			steps = append(steps, config.Step{Name: "e2e_meters"})
		}
	}
	h.cfg.Pipeline.Scheduled = steps
	h.loadDemo(5)
	meterRule := billing.RuleSpec{Type: "meter", Spec: `meter: network.outgoing.bytes
unit: GB
description: Outgoing traffic
price: {model: graduated, tiers: [{up_to: 100, price: "0.05"}, {price: "0.02"}]}
`}
	if _, err := h.st.AddRule(ctx, "business", meterRule, ts("2026-10-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AddDiscounts(ctx, []billing.Discount{{CustomerID: "p0002", Scope: billing.DiscountInvoice,
		Percent: dec("0.10"), Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z"), Reason: "loyalty"}}); err != nil {
		t.Fatal(err)
	}
	run := h.run("2026-10", "p0002")
	o := outcome(t, run, "p0002")
	if o.Err != "" || o.Number == "" {
		t.Fatalf("p0002: %+v", o)
	}
	inv, err := h.st.GetInvoice(ctx, o.Number)
	if err != nil {
		t.Fatal(err)
	}
	// Independent checks: the meter line, the discount on the rounded lines, tax on the rounded
	// discounted subtotal.
	lines := dec("0")
	var meter, discount decimal.Decimal
	for _, l := range inv.Lines {
		switch {
		case l.ResourceType == "discount":
			discount = l.Amount
		default:
			lines, _ = lines.Add(l.Amount)
			if strings.HasPrefix(l.ResourceID, "meter/") || l.ResourceType == "meter" {
				meter, _ = meter.Add(l.Amount)
			}
		}
	}
	if meter.String() != "8.00" {
		t.Errorf("meter lines sum to %s, want 5.00 + 3.00 = 8.00", meter)
	}
	wantDiscount := mul(lines, dec("0.10")).Neg()
	if discount.Cmp(wantDiscount.Round(2)) != 0 {
		t.Errorf("discount %s, want −10 %% of %s = %s", discount, lines, wantDiscount)
	}
	sub, _ := lines.Add(discount)
	if inv.Subtotal.Cmp(sub) != 0 || inv.Tax.Cmp(mul(sub, dec("0.20")).Round(2)) != 0 {
		t.Errorf("subtotal %s tax %s, want %s and 20 %% of it", inv.Subtotal, inv.Tax, sub)
	}

	var csv string
	for _, f := range o.Files {
		if strings.HasSuffix(f, ".csv") {
			csv = f
		}
	}
	if csv == "" {
		t.Fatalf("no CSV document among %v", o.Files)
	}
	got, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden_plan_change", "p0002-2026-10.csv")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./e2e -run TestGoldenPlanChangeInvoice -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s:\n%s", csv, golden, got)
	}
}
