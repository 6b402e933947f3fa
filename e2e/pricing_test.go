package e2e

import (
	"context"
	"testing"

	"github.com/bilean/bilean/billing"
)

// tieredPolicy uses the pricing models through the real pipeline and store: volumes tiered over
// the customer's month, servers per started hour with a lower price when stopped, routers flat.
var tieredPolicy = billing.Policy{Name: "tiered", Currency: "EUR", Rules: []billing.RuleSpec{
	{Type: "os.cinder.volume", Spec: `price_per_gb_hour: {model: graduated, tiers: [{up_to: 100000, price: "0.0002"}, {price: "0.0001"}]}`},
	{Type: "os.nova.server", Spec: "flavors: {m1.small: \"0.02\"}\nstates: {stopped: \"0.005\"}\ngranularity: hour"},
	{Type: "os.neutron.router", Spec: `price_per_hour: "0.01"`},
}}

// TestPricingModelsEndToEnd bills October on the tiered policy, then runs October again.
func TestPricingModelsEndToEnd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := h.st.PutPolicies(ctx, []billing.Policy{tieredPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Name: "Tiers", Currency: "EUR", TaxExempt: true, Status: billing.Active}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "tiered", Start: ts("2026-01-01T00:00:00Z")}}); err != nil {
		t.Fatal(err)
	}
	gb100 := map[string]string{"size": "100"}
	h.addRecords(
		billing.Record{ResourceID: "vol-1", ResourceType: "os.cinder.volume", Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z"), Attributes: gb100},
		billing.Record{ResourceID: "vol-2", ResourceType: "os.cinder.volume", Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z"), Attributes: gb100},
		billing.Record{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-10T00:00:00Z"), End: ts("2026-10-10T10:30:00Z"), Attributes: map[string]string{"flavor": "m1.small", "state": "active"}},
		billing.Record{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-10T10:30:00Z"), End: ts("2026-10-10T20:00:00Z"), Attributes: map[string]string{"flavor": "m1.small", "state": "stopped"}},
		billing.Record{ResourceID: "rt-1", ResourceType: "os.neutron.router", Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z")},
	)
	run := h.run("2026-10")
	o := outcome(t, run, "c1")
	if o.Err != "" || o.Number == "" {
		t.Fatalf("outcome %+v", o)
	}
	inv, err := h.st.GetInvoice(ctx, o.Number)
	if err != nil {
		t.Fatal(err)
	}
	// Volumes: 2 × 100 GB × 744 h = 148,800 GB-hours, tiered once for the customer:
	//   100,000 × 0.0002 = 20.00; 48,800 × 0.0001 = 4.88.
	// Router: 744 h × 0.01 = 7.44.
	// vm-1 active 10.5 h → 11 started hours × 0.02 = 0.22; stopped 9.5 h → 10 h × 0.005 = 0.05.
	// Subtotal 32.59, tax exempt.
	// The granularity is stated in the description of lines not counted per second.
	want := []struct{ desc, qty, unit, price, amount string }{
		{"Volume storage, tier 1 (0 to 100000 GB-hour)", "100000", "GB-hour", "0.0002", "20.00"},
		{"Volume storage, tier 2 (above 100000 GB-hour)", "48800", "GB-hour", "0.0001", "4.88"},
		{"Router", "744", "hour", "0.01", "7.44"},
		{"Server m1.small, per started hour", "11", "hour", "0.02", "0.22"},
		{"Server m1.small (stopped), per started hour", "10", "hour", "0.005", "0.05"},
	}
	if len(inv.Lines) != len(want) {
		t.Fatalf("got %d lines: %+v", len(inv.Lines), inv.Lines)
	}
	for i, w := range want {
		l := inv.Lines[i]
		if l.Description != w.desc || l.Quantity.Trim(0).String() != w.qty || l.Unit != w.unit || l.UnitPrice.Trim(0).String() != w.price || l.Amount.String() != w.amount {
			t.Errorf("line %d %q = %s %s × %s = %s, want %q %s %s × %s = %s", i+1, l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount,
				w.desc, w.qty, w.unit, w.price, w.amount)
		}
	}
	if inv.Total.String() != "32.59" {
		t.Errorf("total = %s, want 32.59", inv.Total)
	}
	// Every second of every resource is recorded once, tiered lines or not.
	if n := h.count(`SELECT count(*) FROM billed_ranges`); n != 4 {
		t.Errorf("%d billed ranges, want one per resource (4)", n)
	}
	again := h.run("2026-10")
	if again.Stats.Invoices != 0 || again.Stats.Skipped != 1 {
		t.Fatalf("second run: %d invoices, %d skipped", again.Stats.Invoices, again.Stats.Skipped)
	}
}
