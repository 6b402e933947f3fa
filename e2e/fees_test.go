package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/invoice"
)

// Policies with fees that are easy to prorate by hand (October 2026 has 31 days = 2,678,400 s).
var (
	basicAdvance = billing.Policy{Name: "basic", Currency: "EUR", Fee: dec("30.00"), FeeTiming: billing.FeeAdvance,
		Rules: []billing.RuleSpec{{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.02"}`}}}
	proAdvance = billing.Policy{Name: "pro", Currency: "EUR", Fee: dec("62.00"), FeeTiming: billing.FeeAdvance,
		Rules: []billing.RuleSpec{{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.018"}`}}}
	annual = billing.Policy{Name: "annual", Currency: "EUR", Fee: dec("1200.00"), FeeInterval: billing.FeeYearly, FeeTiming: billing.FeeAdvance}
)

// oct1st is the billing start of the customers whose subscriptions began before the month these
// tests invoice first: their earlier fees were another system's to bill.
var oct1st = ts("2026-10-01T00:00:00Z")

// feeCustomer stores the policies and customer c (EUR, exempt unless a rate is given) on policy
// from start.
func (h *harness) feeCustomer(c billing.Customer, policy string, start time.Time, ps ...billing.Policy) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.PutPolicies(ctx, ps); err != nil {
		h.t.Fatal(err)
	}
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	c.Status = billing.Active
	if err := h.st.PutCustomers(ctx, []billing.Customer{c}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: c.ID, Policy: policy, Start: start}}); err != nil {
		h.t.Fatal(err)
	}
}

// invoiceOf runs the month for the customer and returns its stored invoice.
func (h *harness) invoiceOf(monthName, customer string) *invoice.Invoice {
	h.t.Helper()
	run := h.run(monthName, customer)
	o := outcome(h.t, run, customer)
	if o.Err != "" || o.Number == "" {
		h.t.Fatalf("%s %s: no invoice: %+v", monthName, customer, o)
	}
	inv, err := h.st.GetInvoice(context.Background(), o.Number)
	if err != nil {
		h.t.Fatal(err)
	}
	return inv
}

type wantLine struct {
	section invoice.Section
	start   string
	end     string
	qty     string
	amount  string
}

func checkLines(t *testing.T, inv *invoice.Invoice, want []wantLine, total string) {
	t.Helper()
	var got []wantLine
	for _, l := range inv.Lines {
		got = append(got, wantLine{l.Section, l.Start.Format(time.RFC3339), l.End.Format(time.RFC3339), l.Quantity.String(), l.Amount.String()})
	}
	if len(got) != len(want) {
		t.Fatalf("%s: lines\n%+v\nwant\n%+v", inv.Number, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: line %d = %+v, want %+v (%s)", inv.Number, i+1, got[i], want[i], inv.Lines[i].Description)
		}
	}
	if inv.Total.String() != total {
		t.Errorf("%s: total %s, want %s", inv.Number, inv.Total, total)
	}
}

// TestPlanChangeMidMonthCreditsUnusedAdvanceFee: basic (30.00 a month in advance) from Sep 1,
// changed to pro (62.00 a month in advance) on Oct 15 at 12:00.
func TestPlanChangeMidMonthCreditsUnusedAdvanceFee(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", TaxExempt: true}, "basic", ts("2026-09-01T00:00:00Z"), basicAdvance, proAdvance)

	// September, the first invoice: September (its own month) and October in advance, 30.00 each.
	checkLines(t, h.invoiceOf("2026-09", "c1"), []wantLine{
		{invoice.Recurring, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", "1", "30.00"},
		{invoice.Recurring, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "1", "30.00"},
	}, "60.00")

	if _, err := h.st.ChangeSubscription(ctx, "c1", "pro", ts("2026-10-15T12:00:00Z")); err != nil {
		t.Fatal(err)
	}
	// October: [Oct 15 12:00, Nov 1) is 16.5 d = 1,425,600 s of 2,678,400 s = 0.532258…
	//   basic credit: 30.00 × 16.5 / 31 = 15.9677… → −15.97 (charged in advance, not used)
	//   pro for the remainder: 62.00 × 16.5 / 31 = 33.00
	//   pro for November in advance: 62.00
	// Total 79.03 (exempt: no tax).
	oct := h.invoiceOf("2026-10", "c1")
	checkLines(t, oct, []wantLine{
		{invoice.Recurring, "2026-10-15T12:00:00Z", "2026-11-01T00:00:00Z", "0.532258", "33.00"},
		{invoice.Recurring, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "1", "62.00"},
		{invoice.Credit, "2026-10-15T12:00:00Z", "2026-11-01T00:00:00Z", "-0.532258", "-15.97"},
	}, "79.03")
	if !strings.Contains(oct.Lines[2].Description, "Policy basic, monthly fee in advance, credit") {
		t.Errorf("credit line says %q", oct.Lines[2].Description)
	}
	// November: only December in advance.
	checkLines(t, h.invoiceOf("2026-11", "c1"), []wantLine{
		{invoice.Recurring, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "1", "62.00"},
	}, "62.00")
}

// TestYearlyFeeInAdvance: 1200.00 a year in advance from Oct 15 12:00 (2026 has 365 d =
// 31,536,000 s).
func TestYearlyFeeInAdvance(t *testing.T) {
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", TaxExempt: true}, "annual", ts("2026-10-15T12:00:00Z"), annual)
	// October: the rest of 2026, [Oct 15 12:00, Jan 1) = 77.5 d = 6,696,000 s:
	// 1200 × 6,696,000 / 31,536,000 = 254.7945… → 254.79; quantity 0.212329 year.
	checkLines(t, h.invoiceOf("2026-10", "c1"), []wantLine{
		{invoice.Recurring, "2026-10-15T12:00:00Z", "2027-01-01T00:00:00Z", "0.212329", "254.79"},
	}, "254.79")
	// November: nothing is due.
	if o := outcome(t, h.run("2026-11", "c1"), "c1"); o.Number != "" || o.Skip != "nothing to bill" {
		t.Fatalf("November: %+v, want nothing to bill", o)
	}
	// December's invoice carries 2027 in advance, whole.
	checkLines(t, h.invoiceOf("2026-12", "c1"), []wantLine{
		{invoice.Recurring, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "1", "1200.00"},
	}, "1200.00")
}

// TestCancellationEndsBillingAtTheSecond: basic, 30.00 in advance from Sep 1, cancelled on
// Oct 20 at 08:30:15.
func TestCancellationEndsBillingAtTheSecond(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", TaxExempt: true}, "basic", ts("2026-09-01T00:00:00Z"), basicAdvance)
	h.invoiceOf("2026-09", "c1") // September and October, 60.00
	if _, err := h.st.CancelSubscription(ctx, "c1", ts("2026-10-20T08:30:15Z")); err != nil {
		t.Fatal(err)
	}
	// Unused: [Oct 20 08:30:15, Nov 1) = 2,678,400 − 1,672,215 = 1,006,185 s:
	// 30 × 1,006,185 / 2,678,400 = 11.2698… → −11.27; nothing for November.
	inv := h.invoiceOf("2026-10", "c1")
	checkLines(t, inv, []wantLine{
		{invoice.Credit, "2026-10-20T08:30:15Z", "2026-11-01T00:00:00Z", "-0.375666", "-11.27"},
	}, "-11.27")
	// A credit invoice: no prepaid credit is applied to it, and it reduces what is due for the
	// unpaid September invoice: 60.00 − 11.27 = 48.73.
	if inv.CreditApplied.String() != "0.00" || inv.AmountDue.String() != "48.73" || inv.BalanceDue.String() != "48.73" {
		t.Errorf("credit applied %s, amount due %s, balance %s; want 0.00, 48.73, 48.73", inv.CreditApplied, inv.AmountDue, inv.BalanceDue)
	}
	// An arrears fee ends at the same second: 49.00 for [Oct 1, Oct 20 08:30:15) = 1,672,215 s:
	// 49 × 1,672,215 / 2,678,400 = 30.5923… → 30.59.
	h2 := newHarness(t)
	h2.feeCustomer(billing.Customer{ID: "c2", BillingStart: oct1st, TaxExempt: true}, "business", ts("2026-09-01T00:00:00Z"), bizPolicy)
	if _, err := h2.st.CancelSubscription(ctx, "c2", ts("2026-10-20T08:30:15Z")); err != nil {
		t.Fatal(err)
	}
	checkLines(t, h2.invoiceOf("2026-10", "c2"), []wantLine{
		{invoice.Recurring, "2026-10-01T00:00:00Z", "2026-10-20T08:30:15Z", "0.624334", "30.59"},
	}, "30.59")
}

// TestTaxPerRegionAndExempt: a full month of business (49.00 in arrears) for three customers of
// region CH, where billing.tax_regions gives CH 8.1 %.
func TestTaxPerRegionAndExempt(t *testing.T) {
	h := newHarness(t)
	h.cfg.Billing.TaxRegions = map[string]string{"CH": "0.081"}
	start := ts("2026-01-01T00:00:00Z")
	h.feeCustomer(billing.Customer{ID: "ch", BillingStart: oct1st, Region: "CH"}, "business", start, bizPolicy)
	h.feeCustomer(billing.Customer{ID: "ch-exempt", BillingStart: oct1st, Region: "CH", TaxExempt: true}, "business", start, bizPolicy)
	h.feeCustomer(billing.Customer{ID: "ch-own", BillingStart: oct1st, Region: "CH", TaxRate: dec("0.20")}, "business", start, bizPolicy)
	h.feeCustomer(billing.Customer{ID: "nowhere", BillingStart: oct1st, Region: "XX"}, "business", start, bizPolicy)
	for _, tc := range []struct {
		customer, rate, region, tax, total string
		exempt                             bool
	}{
		{"ch", "0.081", "CH", "3.97", "52.97", false},   // 49.00 × 0.081 = 3.969 → 3.97
		{"ch-exempt", "0", "", "0.00", "49.00", true},   // exempt wins over the region
		{"ch-own", "0.20", "", "9.80", "58.80", false},  // the customer's own rate wins
		{"nowhere", "0.20", "", "9.80", "58.80", false}, // unlisted region: billing.tax_rate of etc/bilean.yaml
	} {
		inv := h.invoiceOf("2026-10", tc.customer)
		if inv.TaxRate.String() != tc.rate || inv.TaxRegion != tc.region || inv.Tax.String() != tc.tax ||
			inv.Total.String() != tc.total || inv.TaxExempt != tc.exempt {
			t.Errorf("%s: rate %s region %q tax %s total %s exempt %v; want %s %q %s %s %v", tc.customer,
				inv.TaxRate, inv.TaxRegion, inv.Tax, inv.Total, inv.TaxExempt, tc.rate, tc.region, tc.tax, tc.total, tc.exempt)
		}
	}
}

// TestInvoiceDiscountWithinAndOutsideItsWindow: 10 % off invoices in October, 5.00 off in
// December; business fee 49.00 in arrears, tax 20 %.
func TestInvoiceDiscountWithinAndOutsideItsWindow(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", BillingStart: oct1st, TaxRate: dec("0.20")}, "business", ts("2026-01-01T00:00:00Z"), bizPolicy)
	if _, err := h.st.AddDiscounts(ctx, []billing.Discount{
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Percent: dec("0.10"), Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z"), Reason: "launch"},
		{CustomerID: "c1", Scope: billing.DiscountInvoice, Amount: dec("5.00"), Currency: "EUR", Start: ts("2026-12-01T00:00:00Z"), End: ts("2027-01-01T00:00:00Z")},
	}); err != nil {
		t.Fatal(err)
	}
	// October: 49.00 − 10 % (4.90) = 44.10; tax 20 % of the discounted subtotal = 8.82; 52.92.
	oct := h.invoiceOf("2026-10", "c1")
	checkLines(t, oct, []wantLine{
		{invoice.Recurring, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "1", "49.00"},
		{invoice.DiscountSection, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "-0.10", "-4.90"},
	}, "52.92")
	if oct.Subtotal.String() != "44.10" || oct.Tax.String() != "8.82" {
		t.Errorf("October subtotal %s tax %s, want 44.10 and 8.82", oct.Subtotal, oct.Tax)
	}
	if d := oct.Lines[1].Description; d != "Discount 10% on the invoice (launch), valid 2026-10-01 – 2026-10-31" {
		t.Errorf("discount line says %q", d)
	}
	// November: outside both windows, 49.00 + 9.80.
	checkLines(t, h.invoiceOf("2026-11", "c1"), []wantLine{
		{invoice.Recurring, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "1", "49.00"},
	}, "58.80")
	// December: 49.00 − 5.00 = 44.00; tax 8.80; 52.80.
	checkLines(t, h.invoiceOf("2026-12", "c1"), []wantLine{
		{invoice.Recurring, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "1", "49.00"},
		{invoice.DiscountSection, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "-1", "-5.00"},
	}, "52.80")
}

// TestPrepaidCreditPaysBeforeAnythingIsDue: 100.00 paid in October against a 58.80 invoice.
func TestPrepaidCreditPaysBeforeAnythingIsDue(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", BillingStart: oct1st, TaxRate: dec("0.20")}, "business", ts("2026-01-01T00:00:00Z"), bizPolicy)
	if err := h.st.AddPayments(ctx, []billing.Payment{{CustomerID: "c1", Amount: dec("100.00"), Currency: "EUR", ReceivedAt: ts("2026-10-05T09:00:00Z"), Reference: "pre-1"}}); err != nil {
		t.Fatal(err)
	}
	// October: 49.00 + 9.80 tax = 58.80, all paid by the 100.00 credit: 41.20 carried forward.
	oct := h.invoiceOf("2026-10", "c1")
	if oct.CreditApplied.String() != "58.80" || oct.AmountDue.String() != "0.00" || oct.BalanceDue.String() != "-41.20" {
		t.Fatalf("October: credit applied %s, amount due %s, balance %s", oct.CreditApplied, oct.AmountDue, oct.BalanceDue)
	}
	// November: the 41.20 left pays part of 58.80: 17.60 due.
	nov := h.invoiceOf("2026-11", "c1")
	if nov.CreditApplied.String() != "41.20" || nov.AmountDue.String() != "17.60" {
		t.Fatalf("November: credit applied %s, amount due %s", nov.CreditApplied, nov.AmountDue)
	}
}

// TestPolicyVersionSplitsLinesAtTheEffectiveSecond: the standard server price doubles and the
// business fee rises from 49.00 to 59.00, both effective Oct 15 12:00.
func TestPolicyVersionSplitsLinesAtTheEffectiveSecond(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	change := ts("2026-10-15T12:00:00Z")
	h.feeCustomer(billing.Customer{ID: "c1", BillingStart: oct1st, TaxExempt: true}, "business", ts("2026-01-01T00:00:00Z"), bizPolicy)
	h.addRecords(billing.Record{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-01T00:00:00Z"),
		Attributes: map[string]string{"flavor": "m1.small"}})
	if _, err := h.st.AddRule(ctx, "business", billing.RuleSpec{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.036"}`}, change); err != nil {
		t.Fatal(err)
	}
	v3 := bizPolicy
	v3.Fee, v3.EffectiveFrom = dec("59.00"), change.Add(time.Second)
	v3.Rules = []billing.RuleSpec{{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.036"}`}, bizPolicy.Rules[1]}
	if _, err := h.st.AddPolicyVersion(ctx, v3); err != nil {
		t.Fatal(err)
	}
	// Fee 49.00 for [Oct 1, Oct 15 12:00:01) = 1,252,801 s: 49 × 1,252,801 / 2,678,400 = 22.9195… → 22.92;
	// 59.00 for [Oct 15 12:00:01, Nov 1) = 1,425,599 s: 59 × 1,425,599 / 2,678,400 = 31.4032… → 31.40.
	// Server: 348 h × 0.018 = 6.264 → 6.26 until the change, then 396 h × 0.036 = 14.256 → 14.26,
	// split again at 12:00:01 by version 3 (same price): 1 s and 1,425,599 s.
	inv := h.invoiceOf("2026-10", "c1")
	var fees, servers []string
	for _, l := range inv.Lines {
		switch l.ResourceType {
		case billing.SubscriptionType:
			fees = append(fees, l.Start.Format(time.RFC3339)+" "+l.Amount.String())
		case "os.nova.server":
			servers = append(servers, l.Start.Format(time.RFC3339)+" "+l.UnitPrice.String())
		}
	}
	if got := strings.Join(fees, ", "); got != "2026-10-01T00:00:00Z 22.92, 2026-10-15T12:00:01Z 31.40" {
		t.Errorf("fee lines: %s", got)
	}
	if len(servers) < 2 || servers[0] != "2026-10-01T00:00:00Z 0.018" || !strings.HasPrefix(servers[1], "2026-10-15T12:00:00Z 0.036") {
		t.Errorf("server lines are not split at the version change: %v", servers)
	}
}

// With no billing start, a customer's first invoice bills the fees of every month its subscription
// ran and nothing billed: September's business fee (49.00, an adjustment line naming its dates)
// and October's (49.00).
func TestFirstInvoiceBillsEarlierFees(t *testing.T) {
	h := newHarness(t)
	h.feeCustomer(billing.Customer{ID: "c1", TaxExempt: true}, "business", ts("2026-09-01T00:00:00Z"), bizPolicy)
	checkLines(t, h.invoiceOf("2026-10", "c1"), []wantLine{
		{invoice.Recurring, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "1", "49.00"},
		{invoice.Adjustment, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", "1", "49.00"},
	}, "98.00")
}
