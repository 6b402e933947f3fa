package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/pipeline"
)

// walkthroughServer is the walkthrough's example server: m1.small from 2026-09-20 08:00 until a
// resize to m1.large at 2026-10-12 14:07:33, still running.
func walkthroughServer() []billing.Record {
	return []billing.Record{
		{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-09-20T08:00:00Z"), End: ts("2026-10-12T14:07:33Z"), Attributes: map[string]string{"flavor": "m1.small"}},
		{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-12T14:07:33Z"), Attributes: map[string]string{"flavor": "m1.large"}},
	}
}

// invoiceTotal returns the total of a customer's invoice in a run ("" when none was issued).
func invoiceTotal(t *testing.T, run *pipeline.Run) string {
	t.Helper()
	o := outcome(t, run, "c1")
	if o.Err != "" {
		t.Fatalf("outcome %+v", o)
	}
	if o.Number == "" {
		return ""
	}
	return o.Total.String()
}

// Issue 11 (1): usage before a customer's first invoiced month was lost: October started the
// server at Oct 1 and settled its closed record whole, so a later September run could never bill
// Sep 20–30. Now every unbilled second is billed once, whatever order the months are run in.
func TestUsageBeforeTheFirstInvoiceIsBilledOnceInAnyOrder(t *testing.T) {
	// By hand (standard: m1.small 0.02/h, m1.large 0.08/h; no tax):
	//   [Sep 20 08:00, Oct 1)            = 256 h          × 0.02 = 5.12
	//   [Oct 1, Oct 12 14:07:33)         = 278.125833 h   × 0.02 = 5.5625… → 5.56
	//   [Oct 12 14:07:33, Nov 1)         = 465.874167 h   × 0.08 = 37.2699… → 37.27
	//   November                         = 720 h          × 0.08 = 57.60
	tests := []struct {
		name   string
		order  []string
		totals []string // per run, "" when nothing was invoiced
	}{
		{"October first, then September", []string{"2026-10", "2026-09", "2026-11"}, []string{"47.95", "", "57.60"}},
		{"September first", []string{"2026-09", "2026-10", "2026-11"}, []string{"5.12", "42.83", "57.60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
			h.addRecords(walkthroughServer()...)
			for i, p := range tt.order {
				if got := invoiceTotal(t, h.run(p)); got != tt.totals[i] {
					t.Fatalf("run %s: total %q, want %q", p, got, tt.totals[i])
				}
			}
			// The closed m1.small record is settled only now that all of it is billed.
			if n := h.count(`SELECT count(*) FROM usage_records WHERE settled = 1`); n != 1 {
				t.Fatalf("%d records settled, want the closed one", n)
			}
			if got := invoiceTotal(t, h.run("2026-12")); got != "59.52" { // 744 h × 0.08
				t.Fatalf("December total %s, want 59.52", got)
			}
		})
	}
}

// A customer's own billing start (taken over from another system on Oct 1) and the back-billing
// horizon bound what the first invoice reaches back to.
func TestBillingStartAndBackBillingHorizon(t *testing.T) {
	fip := billing.Record{ResourceID: "fip-1", ResourceType: "os.neutron.floatingip", Start: ts("2026-08-01T00:00:00Z")}
	t.Run("customer billing start", func(t *testing.T) {
		h := newHarness(t)
		h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
		c, _ := h.st.GetCustomers(context.Background(), []string{"c1"})
		c[0].BillingStart = ts("2026-10-01T00:00:00Z")
		if err := h.st.PutCustomers(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		h.addRecords(walkthroughServer()...)
		// October only: 5.56 + 37.27 = 42.83; September is before the billing start.
		if got := invoiceTotal(t, h.run("2026-10")); got != "42.83" {
			t.Fatalf("October %s, want 42.83", got)
		}
		if got := invoiceTotal(t, h.run("2026-09")); got != "" {
			t.Fatalf("September billed %s before the billing start", got)
		}
	})
	t.Run("one month of back-billing", func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Billing.BackBillingMonths = 1
		h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
		h.addRecords(fip)
		// October 744 h × 0.005 = 3.72 and September's 720 h = 3.60; August is past the horizon.
		inv := h.invoiceFor(h.run("2026-10"), "c1")
		if inv.Total.String() != "7.32" || len(inv.Lines) != 2 || !inv.Lines[1].Start.Equal(ts("2026-09-01T00:00:00Z")) {
			t.Fatalf("October: total %s, lines %+v", inv.Total, inv.Lines)
		}
	})
}

// Issue 11 (6): discounts on fees were accepted and ignored. A line discount on the
// subscription's pseudo-resource and a rule discount on the rule type "subscription" now reduce
// the fee lines they cover.
func TestDiscountsOnFees(t *testing.T) {
	tests := []struct {
		name  string
		disc  func(subID string) billing.Discount
		lines []string // amounts in order
		total string
	}{
		{
			// Business fee for October, cut at the discount's start on Oct 16:
			//   [Oct 1, Oct 16) 15/31 × 49 = 23.7096… → 23.71; [Oct 16, Nov 1) 16/31 × 49 = 25.2903… → 25.29
			//   10 % of 25.29 = 2.529 → −2.53. Total 46.47.
			name: "10 % on the subscription from Oct 16",
			disc: func(id string) billing.Discount {
				return billing.Discount{Scope: billing.DiscountLine, ResourceID: id, Percent: dec("0.10"), Start: ts("2026-10-16T00:00:00Z")}
			},
			lines: []string{"23.71", "25.29", "-2.53"}, total: "46.47",
		},
		{
			// 5.00 off every fee: 49.00 − 5.00 = 44.00.
			name: "5.00 off the rule type subscription",
			disc: func(string) billing.Discount {
				return billing.Discount{Scope: billing.DiscountRule, RuleType: billing.SubscriptionType, Amount: dec("5.00"), Currency: "EUR", Start: ts("2026-01-01T00:00:00Z")}
			},
			lines: []string{"49.00", "-5.00"}, total: "44.00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seedCustomer("0", billing.Subscription{Policy: "business", Start: ts("2026-10-01T00:00:00Z")})
			subs, err := h.st.Subscriptions(context.Background(), []string{"c1"}, month(t, "2026-10"))
			if err != nil || len(subs) != 1 {
				t.Fatalf("subscriptions %v %v", subs, err)
			}
			d := tt.disc(subs[0].ResourceID())
			d.CustomerID = "c1"
			if _, err := h.st.AddDiscounts(context.Background(), []billing.Discount{d}); err != nil {
				t.Fatal(err)
			}
			inv := h.invoiceFor(h.run("2026-10"), "c1")
			var got []string
			for _, l := range inv.Lines {
				got = append(got, l.Amount.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.lines, " ") || inv.Total.String() != tt.total {
				t.Fatalf("lines %v total %s, want %v and %s", got, inv.Total, tt.lines, tt.total)
			}
			if last := inv.Lines[len(inv.Lines)-1]; !strings.HasPrefix(last.Description, "Discount") {
				t.Fatalf("last line %q is not the discount", last.Description)
			}
		})
	}
}
