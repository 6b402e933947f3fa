package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// fataler is what calculate needs of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// calculate runs the invoice calculation for items over a period with the given policies, as the
// pipeline does after the subscription tree.
func calculate(t fataler, period interval.Range, ps []billing.Policy, items ...*pipeline.Item) *pipeline.Run {
	t.Helper()
	cat, err := rating.CompileCatalog(ps)
	if err != nil {
		t.Fatal(err)
	}
	run := &pipeline.Run{Mode: pipeline.Scheduled, Period: period, Until: period.End, Policies: cat.Policies(), Stats: pipeline.NewStats()}
	for _, it := range items {
		it.BillingStart = period.Start
		it.Invoice = &invoice.Invoice{CustomerID: it.CustomerID, Currency: "EUR", Period: period}
	}
	h := &Calculation{rounding: invoice.DefaultRounding}
	if err := h.Handle(context.Background(), &pipeline.Batch{Run: run, Items: items}); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Err != nil {
			t.Fatal(it.Err)
		}
	}
	return run
}

func customer(id string, usage ...store.ResourceUsage) *pipeline.Item {
	return &pipeline.Item{CustomerID: id, Customer: billing.Customer{ID: id, Currency: "EUR", Policy: "std"}, Usage: usage}
}

func resource(id, typ string, attrs map[string]string, spans ...interval.Range) store.ResourceUsage {
	ru := store.ResourceUsage{ResourceID: id, ResourceType: typ}
	for i, s := range spans {
		ru.Records = append(ru.Records, billing.Record{ID: int64(i + 1), Version: 1, ResourceID: id, ResourceType: typ, Start: s.Start, End: s.End, Attributes: attrs})
	}
	ru.Since = spans[0].Start
	return ru
}

func policy(rules ...string) billing.Policy {
	p := billing.Policy{Name: "std", Currency: "EUR"}
	for i := 0; i+1 < len(rules); i += 2 {
		p.Rules = append(p.Rules, billing.RuleSpec{Type: rules[i], Spec: rules[i+1]})
	}
	return p
}

var octRange = interval.Range{Start: oct1, End: nov1}

type wantLine struct {
	section            invoice.Section
	qty, price, amount string
}

func checkInvoice(t *testing.T, inv *invoice.Invoice, total string, want []wantLine) {
	t.Helper()
	if inv.Subtotal.String() != total {
		t.Errorf("subtotal = %s, want %s", inv.Subtotal, total)
	}
	if len(inv.Lines) != len(want) {
		for _, l := range inv.Lines {
			t.Logf("%s %s %s × %s = %s", l.Section, l.Description, l.Quantity, l.UnitPrice, l.Amount)
		}
		t.Fatalf("got %d lines, want %d", len(inv.Lines), len(want))
	}
	for i, w := range want {
		l := inv.Lines[i]
		if l.Section != w.section || l.Quantity.Trim(0).String() != w.qty || l.UnitPrice.Trim(0).String() != w.price || l.Amount.String() != w.amount {
			t.Errorf("line %d %q = %s %s × %s = %s, want %s %s × %s = %s", i+1, l.Description, l.Section, l.Quantity.Trim(0), l.UnitPrice.Trim(0), l.Amount,
				w.section, w.qty, w.price, w.amount)
		}
	}
}

var small = map[string]string{"flavor": "m1.small"}

// TestALineCrossingAPriceChangeIsSplitAtThatSecond: version 2 of the policy doubles the price
// from 15 October 12:00.
func TestALineCrossingAPriceChangeIsSplitAtThatSecond(t *testing.T) {
	v1 := policy(rating.ServerType, `flavors: {m1.small: "0.02"}`)
	v1.Version = 1
	v2 := policy(rating.ServerType, `flavors: {m1.small: "0.04"}`)
	v2.Version, v2.EffectiveFrom = 2, day(15, 12)
	it := customer("c1", resource("vm", rating.ServerType, small, octRange))
	calculate(t, octRange, []billing.Policy{v1, v2}, it)
	// 1 Oct – 15 Oct 12:00 = 14.5 days = 348 h × 0.02 = 6.96;
	// 15 Oct 12:00 – 1 Nov = 16.5 days = 396 h × 0.04 = 15.84. Total 22.80.
	checkInvoice(t, it.Invoice, "22.80", []wantLine{{invoice.Usage, "348", "0.02", "6.96"}, {invoice.Usage, "396", "0.04", "15.84"}})
	if got := it.Invoice.Lines[1].Start; !got.Equal(day(15, 12)) {
		t.Errorf("split at %s", got)
	}
	if rs := invoice.MergeRanges(it.Invoice.Ranges); len(rs) != 1 || rs[0].Range != octRange {
		t.Errorf("ranges = %+v, want the month once", rs)
	}
}

// TestTiersApplyToTheCustomersPeriodTotal: two 100 GB volumes for the whole of October are
// 2 × 100 × 744 = 148,800 GB-hours, tiered once.
func TestTiersApplyToTheCustomersPeriodTotal(t *testing.T) {
	p := policy(rating.VolumeType, `price_per_gb_hour: {model: graduated, tiers: [{up_to: 100000, price: "0.0002"}, {price: "0.0001"}]}`)
	gb100 := map[string]string{"size": "100"}
	it := customer("c1", resource("vol-1", rating.VolumeType, gb100, octRange), resource("vol-2", rating.VolumeType, gb100, octRange))
	calculate(t, octRange, []billing.Policy{p}, it)
	// 100,000 × 0.0002 = 20.00; 48,800 × 0.0001 = 4.88. Total 24.88.
	checkInvoice(t, it.Invoice, "24.88", []wantLine{{invoice.Usage, "100000", "0.0002", "20.00"}, {invoice.Usage, "48800", "0.0001", "4.88"}})

	// With 10,000 GB-hours included by the policy: 10,000 free, then the tiers apply to the
	// 138,800 left: 100,000 × 0.0002 = 20.00; 38,800 × 0.0001 = 3.88. Total 23.88.
	p.Included = map[string]decimal.Decimal{rating.VolumeType: decimal.MustNew(10000, 0)}
	it = customer("c1", resource("vol-1", rating.VolumeType, gb100, octRange), resource("vol-2", rating.VolumeType, gb100, octRange))
	calculate(t, octRange, []billing.Policy{p}, it)
	checkInvoice(t, it.Invoice, "23.88", []wantLine{{invoice.Usage, "10000", "0", "0.00"}, {invoice.Usage, "100000", "0.0002", "20.00"}, {invoice.Usage, "38800", "0.0001", "3.88"}})
}

// TestMetersArePricedAndRecorded: outgoing traffic of two ports, in bytes, priced per GB with a
// graduated pricing over the customer's total.
func TestMetersArePricedAndRecorded(t *testing.T) {
	p := policy(rating.MeterType, `{meter: network.outgoing.bytes, unit: GB, description: Outgoing traffic, price: {model: graduated, tiers: [{up_to: 1000, price: "0.05"}, {price: "0.02"}]}}`,
		rating.MeterType, `{meter: network.incoming.bytes, unit: GB, price: "0"}`)
	it := customer("c1")
	mt := func(port string, bytes int64) billing.MeterTotal {
		return billing.MeterTotal{CustomerID: "c1", Meter: "network.outgoing.bytes", ResourceID: port, Range: octRange, Quantity: decimal.MustNew(bytes, 0), Unit: "B", Aggregation: "sum"}
	}
	it.Meters = []billing.MeterTotal{mt("port-1", 600e9), mt("port-2", 700e9),
		{CustomerID: "c1", Meter: "network.incoming.bytes", ResourceID: "port-1", Range: octRange, Quantity: decimal.MustNew(5e9, 0), Unit: "B"},
		{CustomerID: "c1", Meter: "disk.read.bytes", ResourceID: "vm", Range: octRange, Quantity: decimal.One, Unit: "B"}}
	run := calculate(t, octRange, []billing.Policy{p}, it)
	// 600 + 700 = 1,300 GB: 1,000 × 0.05 = 50.00; 300 × 0.02 = 6.00. Incoming: 5 GB × 0 = 0.00.
	// Lines of a period total name no single resource, so they sort first.
	checkInvoice(t, it.Invoice, "56.00", []wantLine{
		{invoice.Usage, "1000", "0.05", "50.00"}, {invoice.Usage, "300", "0.02", "6.00"}, {invoice.Usage, "5", "0", "0.00"}})
	var ids []string
	for _, br := range it.Invoice.Ranges {
		ids = append(ids, br.ResourceID)
	}
	want := "meter/network.outgoing.bytes/port-1 meter/network.outgoing.bytes/port-2 meter/network.incoming.bytes/port-1 meter/disk.read.bytes/vm"
	if strings.Join(ids, " ") != want {
		t.Errorf("ranges = %v, want %s", ids, want)
	}
	if run.Stats.Unpriced["meter disk.read.bytes"] != 1 {
		t.Errorf("unpriced = %v", run.Stats.Unpriced)
	}
}

func TestLineAndRuleDiscounts(t *testing.T) {
	p := policy(rating.ServerType, `flavors: {m1.small: "0.02"}`)
	vm1 := resource("vm-1", rating.ServerType, small, octRange)
	vm2 := resource("vm-2", rating.ServerType, small, interval.Range{Start: oct1, End: day(5, 4)})
	it := customer("c1", vm1, vm2)
	it.Discounts = []billing.Discount{
		// 50 % on servers from 16 October: vm-1 is cut there.
		{ID: 1, Scope: billing.DiscountRule, RuleType: rating.ServerType, Percent: decimal.MustParse("0.5"), Start: day(16)},
		// 5.00 off vm-2, more than its usage.
		{ID: 2, Scope: billing.DiscountLine, ResourceID: "vm-2", Amount: decimal.MustNew(5, 0), Currency: "EUR", Start: oct1, Reason: "goodwill"},
		// Invoice scope is the subscription tree's: ignored here.
		{ID: 3, Scope: billing.DiscountInvoice, Percent: decimal.MustParse("0.1")},
	}
	calculate(t, octRange, []billing.Policy{p}, it)
	// vm-1: 1–16 Oct = 360 h × 0.02 = 7.20; 16 Oct – 1 Nov = 384 h × 0.02 = 7.68.
	// vm-2: 1 Oct – 5 Oct 04:00 = 100 h × 0.02 = 2.00.
	// Discount 1: 50 % of 7.68 = −3.84. Discount 2: 5.00 limited to vm-2's 2.00 = −2.00.
	// Subtotal 7.20 + 7.68 + 2.00 − 3.84 − 2.00 = 11.04.
	checkInvoice(t, it.Invoice, "11.04", []wantLine{
		{invoice.Usage, "360", "0.02", "7.20"}, {invoice.Usage, "384", "0.02", "7.68"}, {invoice.Usage, "100", "0.02", "2.00"},
		{calc.RuleDiscountSection, "1", "-2", "-2.00"}, {calc.RuleDiscountSection, "7.68", "-0.5", "-3.84"}})
	if d := it.Invoice.Lines[3].Description; !strings.Contains(d, "limited to the 2.00") || !strings.Contains(d, "goodwill") {
		t.Errorf("description = %q", d)
	}

	it = customer("c1", vm1)
	it.Discounts = []billing.Discount{{ID: 9, Scope: billing.DiscountLine, ResourceID: "vm-1", Amount: decimal.One, Currency: "USD"}}
	cat, _ := rating.CompileCatalog([]billing.Policy{p})
	it.Invoice = &invoice.Invoice{}
	h := &Calculation{rounding: invoice.DefaultRounding}
	_ = h.Handle(context.Background(), &pipeline.Batch{Run: &pipeline.Run{Period: octRange, Until: nov1, Policies: cat.Policies()}, Items: []*pipeline.Item{it}})
	if it.Err == nil || !strings.Contains(it.Err.Error(), "discount 9: amount is in USD") {
		t.Errorf("err = %v", it.Err)
	}
}

// TestDaylightSavingInTheCustomersTimezone: with billing.timezone Europe/Berlin, October 2026
// ends on the 25th's extra hour (CEST → CET), so the month has 745 hours.
func TestDaylightSavingInTheCustomersTimezone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded: the zone is always there
	}
	period, err := interval.Month("2026-10", berlin)
	if err != nil {
		t.Fatal(err)
	}
	if h := period.Seconds() / 3600; h != 745 {
		t.Fatalf("October 2026 in Berlin has %d hours", h)
	}
	p := policy(rating.ServerType, `flavors: {m1.small: "0.02"}`, rating.FloatingIPType, "{price_per_hour: \"0.02\", granularity: day}")
	// 25 October 00:00 to 26 October 00:00 Berlin time is 25 hours.
	dstDay := interval.New(time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), time.Date(2026, 10, 26, 0, 0, 0, 0, berlin))
	it := customer("c1", resource("vm", rating.ServerType, small, period), resource("fip", rating.FloatingIPType, nil, dstDay))
	calculate(t, period, []billing.Policy{p}, it)
	// The server: 745 h × 0.02 = 14.90. The floating IP per started day: 25 h is 2 days = 48 h ×
	// 0.02 = 0.96 (0.50 if counted per second).
	checkInvoice(t, it.Invoice, "15.86", []wantLine{{invoice.Usage, "48", "0.02", "0.96"}, {invoice.Usage, "745", "0.02", "14.90"}})
	if g := it.Invoice.Lines[0].Granularity; g != "day" {
		t.Errorf("granularity = %q", g)
	}
}

func TestLeapDayAndOneSecond(t *testing.T) {
	feb := interval.Range{Start: time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)}
	leap := time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)
	p := policy(rating.ServerType, `flavors: {m1.small: "0.02"}`, rating.FloatingIPType, `price_per_hour: {price: "0.005", minimum: "0.01"}`)
	it := customer("c1", resource("vm", rating.ServerType, small, interval.Range{Start: leap, End: feb.End}),
		resource("fip", rating.FloatingIPType, nil, interval.Range{Start: leap, End: leap.Add(time.Second)}))
	calculate(t, feb, []billing.Policy{p}, it)
	// The 29th: 24 h × 0.02 = 0.48. One second of a floating IP: 0.0000014 raised to the 0.01
	// minimum charge.
	checkInvoice(t, it.Invoice, "0.49", []wantLine{{invoice.Usage, "0.000278", "0.005", "0.01"}, {invoice.Usage, "24", "0.02", "0.48"}})
}

func TestZeroUsageGivesNoLine(t *testing.T) {
	p := policy(rating.MeterType, `{meter: traffic, price: {model: graduated, tiers: [{up_to: 1, price: "1"}, {price: "2"}]}}`,
		rating.MeterType, `{meter: calls, price: "1"}`)
	it := customer("c1")
	it.Meters = []billing.MeterTotal{{Meter: "traffic", Range: octRange, Quantity: decimal.Zero}, {Meter: "calls", Range: octRange, Quantity: decimal.Zero}}
	calculate(t, octRange, []billing.Policy{p}, it)
	checkInvoice(t, it.Invoice, "0.00", nil)
	if len(it.Invoice.Ranges) != 2 {
		t.Errorf("zero totals are still recorded as billed: %+v", it.Invoice.Ranges)
	}
}

func ExampleCalculation_tiers() {
	p := policy(rating.MeterType, `{meter: network.outgoing.bytes, unit: GB, description: Traffic, price: {model: graduated, tiers: [{up_to: 1000, price: "0.05"}, {price: "0.02"}]}}`)
	it := customer("c1")
	it.Meters = []billing.MeterTotal{{Meter: "network.outgoing.bytes", ResourceID: "port-1", Range: octRange, Quantity: decimal.MustNew(1300, 0), Unit: "GB"}}
	calculate(&testing.T{}, octRange, []billing.Policy{p}, it)
	for _, l := range it.Invoice.Lines {
		fmt.Printf("%s: %s %s × %s = %s\n", l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount)
	}
	// Output:
	// Traffic, tier 1 (0 to 1000 GB): 1000 GB × 0.05 = 50.00
	// Traffic, tier 2 (above 1000 GB): 300 GB × 0.02 = 6.00
}

// TestRegenerateRepricesExactlyTheBilledMeterTotals: a regenerate run prices the meter totals
// the replaced invoice billed and refuses to drop one it cannot find.
func TestRegenerateRepricesExactlyTheBilledMeterTotals(t *testing.T) {
	p := policy(rating.MeterType, `{meter: traffic, unit: GB, price: "0.05"}`)
	cat, err := rating.CompileCatalog([]billing.Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	billed := billing.MeterTotal{Meter: "traffic", ResourceID: "port-1", Range: octRange, Quantity: decimal.MustNew(100, 0), Unit: "GB"}
	other := billing.MeterTotal{Meter: "traffic", ResourceID: "port-2", Range: octRange, Quantity: decimal.MustNew(7, 0), Unit: "GB"}
	old := &invoice.Invoice{Ranges: []invoice.BilledRange{{ResourceID: "meter/traffic/port-1", Kind: invoice.Charge, Range: octRange}}}
	regen := func(meters ...billing.MeterTotal) *pipeline.Item {
		it := customer("c1")
		it.Meters, it.BillingStart = meters, oct1
		it.Invoice = &invoice.Invoice{CustomerID: "c1", Currency: "EUR", Period: octRange}
		run := &pipeline.Run{Mode: pipeline.Regenerate, Period: octRange, Until: nov1, Policies: cat.Policies(), Replacing: old}
		h := &Calculation{rounding: invoice.DefaultRounding}
		if err := h.Handle(context.Background(), &pipeline.Batch{Run: run, Items: []*pipeline.Item{it}}); err != nil {
			t.Fatal(err)
		}
		return it
	}
	// port-1: 100 GB × 0.05 = 5.00; port-2 was not on the replaced invoice.
	it := regen(billed, other)
	if it.Err != nil {
		t.Fatal(it.Err)
	}
	checkInvoice(t, it.Invoice, "5.00", []wantLine{{invoice.Usage, "100", "0.05", "5.00"}})
	if it := regen(other); it.Err == nil || !strings.Contains(it.Err.Error(), "meter/traffic/port-1: no meter total matches") {
		t.Errorf("err = %v", it.Err)
	}
}

// TestADiscountWindowDoesNotSplitTiers: a discount from 16 October on tiered volumes covers its
// share of the month's total; the tiers still apply to the whole month.
func TestADiscountWindowDoesNotSplitTiers(t *testing.T) {
	p := policy(rating.VolumeType, `price_per_gb_hour: {model: graduated, tiers: [{up_to: 100000, price: "0.0002"}, {price: "0.0001"}]}`)
	gb100 := map[string]string{"size": "100"}
	it := customer("c1", resource("vol-1", rating.VolumeType, gb100, octRange), resource("vol-2", rating.VolumeType, gb100, octRange))
	it.Discounts = []billing.Discount{{ID: 1, Scope: billing.DiscountRule, RuleType: rating.VolumeType, Percent: decimal.MustParse("0.10"), Start: day(16)}}
	calculate(t, octRange, []billing.Policy{p}, it)
	// The month: 148,800 GB-hours → 20.00 + 4.88 = 24.88, as without a discount.
	// Inside the window: 2 × 100 GB × 384 h = 76,800 GB-hours, so the discount covers
	// 24.88 × 76,800 / 148,800 = 12.8412… → 12.84, and takes 10 %: −1.284 → −1.28.
	// Subtotal 24.88 − 1.28 = 23.60.
	checkInvoice(t, it.Invoice, "23.60", []wantLine{
		{invoice.Usage, "100000", "0.0002", "20.00"}, {invoice.Usage, "48800", "0.0001", "4.88"}, {calc.RuleDiscountSection, "12.84", "-0.1", "-1.28"}})
}

// TestRoundingOncePerLineWithTheConfiguredMode: 2.5 GB × 0.05 = 0.125 exactly, then a credit of
// the same amount, under each mode.
func TestRoundingOncePerLineWithTheConfiguredMode(t *testing.T) {
	p := policy(rating.MeterType, `{meter: traffic, unit: GB, price: "0.05"}`)
	cat, err := rating.CompileCatalog([]billing.Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode invoice.RoundingMode
		want string
	}{
		{invoice.HalfUp, "0.13"},   // the tie goes away from zero
		{invoice.HalfEven, "0.12"}, // the tie goes to the even cent
		{invoice.Up, "0.13"},
		{invoice.Down, "0.12"},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			it := customer("c1")
			it.Meters = []billing.MeterTotal{{Meter: "traffic", ResourceID: "p", Range: octRange, Quantity: decimal.MustParse("2.5"), Unit: "GB"}}
			it.BillingStart, it.Invoice = oct1, &invoice.Invoice{CustomerID: "c1", Currency: "EUR"}
			r := invoice.Rounding{Mode: tt.mode, Scale: 2}
			h := &Calculation{rounding: r}
			run := &pipeline.Run{Mode: pipeline.Scheduled, Period: octRange, Until: nov1, Policies: cat.Policies()}
			if err := h.Handle(context.Background(), &pipeline.Batch{Run: run, Items: []*pipeline.Item{it}}); err != nil || it.Err != nil {
				t.Fatal(err, it.Err)
			}
			if got := it.Invoice.Lines[0].Amount.String(); got != tt.want || it.Invoice.Subtotal.String() != tt.want {
				t.Errorf("line %s, subtotal %s, want %s", got, it.Invoice.Subtotal, tt.want)
			}
		})
	}
}
