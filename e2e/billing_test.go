package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
)

// TestProrationAndSpanSplitting prices small months whose amounts are worked out by hand below.
func TestProrationAndSpanSplitting(t *testing.T) {
	open := time.Time{}
	change := ts("2026-10-15T12:00:00Z")
	type line struct {
		section invoice.Section
		start   string
		amount  string
	}
	tests := []struct {
		name    string
		subs    []billing.Subscription
		records []billing.Record
		tax     string
		lines   []line
		sub     string
		total   string
	}{
		{
			// Business fee from Oct 15 12:00: 1,425,600 s of 2,678,400 s × 49.00 = 26.0806… → 26.08.
			// Server m1.small from Sep 20, never invoiced before: its September part is late usage
			// on this first invoice (billing starts at the customer's first record):
			//   [Oct 1, Oct 15 12:00) = 348 h × 0.02 (standard) = 6.96
			//   [Oct 15 12:00, Oct 20 10:00) = 118 h × 0.018 (business) = 2.124 → 2.12
			//   [Sep 20, Oct 1) = 264 h × 0.02 (standard) = 5.28, an adjustment line
			// Subtotal 40.44; tax 20 % = 8.088 → 8.09; total 48.53.
			name:    "policy change mid-month",
			subs:    []billing.Subscription{{Policy: "standard", Start: ts("2026-01-01T00:00:00Z"), End: change}, {Policy: "business", Start: change}},
			records: []billing.Record{{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-09-20T00:00:00Z"), End: ts("2026-10-20T10:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}}},
			tax:     "0.20",
			lines: []line{
				{invoice.Recurring, "2026-10-15T12:00:00Z", "26.08"},
				{invoice.Usage, "2026-10-01T00:00:00Z", "6.96"},
				{invoice.Usage, "2026-10-15T12:00:00Z", "2.12"},
				{invoice.Adjustment, "2026-09-20T00:00:00Z", "5.28"},
			},
			sub: "40.44", total: "48.53",
		},
		{
			// m1.large for 4 d 11:26:32 = 386,792 s: 386792 × 0.08 / 3600 = 8.5953… → 8.60.
			// Tax 20 % = 1.72; total 10.32.
			name:    "odd seconds round half-up once per line",
			subs:    []billing.Subscription{{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")}},
			records: []billing.Record{{ResourceID: "vm-2", ResourceType: "os.nova.server", Start: ts("2026-10-03T08:15:41Z"), End: ts("2026-10-07T19:42:13Z"), Attributes: map[string]string{"flavor": "m1.large"}}},
			tax:     "0.20",
			lines:   []line{{invoice.Usage, "2026-10-03T08:15:41Z", "8.60"}},
			sub:     "8.60", total: "10.32",
		},
		{
			// One second of a floating IP at 0.005/h is 0.0000013…: a line of 0.00, not a lost span.
			name:    "a span of one second",
			subs:    []billing.Subscription{{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")}},
			records: []billing.Record{{ResourceID: "fip-1", ResourceType: "os.neutron.floatingip", Start: ts("2026-10-05T10:00:00Z"), End: ts("2026-10-05T10:00:01Z")}},
			tax:     "0",
			lines:   []line{{invoice.Usage, "2026-10-05T10:00:00Z", "0.00"}},
			sub:     "0.00", total: "0.00",
		},
		{
			// A 50 GB volume open since August, never invoiced: October 744 h × 50 × 0.0001 = 3.72,
			// and August–September (61 d = 1,464 h) × 50 × 0.0001 = 7.32 as late usage.
			// A server running across midnight of Nov 1: October takes [22:00, 24:00) = 2 h × 0.02 = 0.04.
			name: "open spans and spans crossing the period end",
			subs: []billing.Subscription{{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")}},
			records: []billing.Record{
				{ResourceID: "vol-1", ResourceType: "os.cinder.volume", Start: ts("2026-08-01T00:00:00Z"), End: open, Attributes: map[string]string{"size": "50"}},
				{ResourceID: "vm-3", ResourceType: "os.nova.server", Start: ts("2026-10-31T22:00:00Z"), End: ts("2026-11-01T02:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}},
			},
			tax:   "0",
			lines: []line{{invoice.Usage, "2026-10-01T00:00:00Z", "3.72"}, {invoice.Usage, "2026-10-31T22:00:00Z", "0.04"}, {invoice.Adjustment, "2026-08-01T00:00:00Z", "7.32"}},
			sub:   "11.08", total: "11.08",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.seedCustomer(tt.tax, tt.subs...)
			h.addRecords(tt.records...)
			run := h.run("2026-10")
			o := outcome(t, run, "c1")
			if o.Err != "" || o.Number == "" {
				t.Fatalf("outcome %+v", o)
			}
			inv, err := h.st.GetInvoice(context.Background(), o.Number)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Lines) != len(tt.lines) {
				t.Fatalf("got %d lines: %+v", len(inv.Lines), inv.Lines)
			}
			for i, w := range tt.lines {
				l := inv.Lines[i]
				if l.Section != w.section || !l.Start.Equal(ts(w.start)) || l.Amount.String() != w.amount {
					t.Errorf("line %d = %s %s %s (%s), want %s %s %s", i, l.Section, l.Start.Format(time.RFC3339), l.Amount, l.Description, w.section, w.start, w.amount)
				}
			}
			if inv.Subtotal.String() != tt.sub || inv.Total.String() != tt.total {
				t.Errorf("subtotal %s total %s, want %s and %s", inv.Subtotal, inv.Total, tt.sub, tt.total)
			}
		})
	}
}

// TestSecondRunBillsNothingTwice runs October twice: the second run issues nothing and stores
// nothing, and reports every customer as already invoiced.
func TestSecondRunBillsNothingTwice(t *testing.T) {
	h := newHarness(t)
	h.loadDemo(20)
	first := h.run("2026-10")
	if first.Stats.Invoices != 20 || first.Stats.Failed != 0 {
		t.Fatalf("first run: %d invoices, %d failed", first.Stats.Invoices, first.Stats.Failed)
	}
	ranges := h.count(`SELECT count(*) FROM billed_ranges`)
	second := h.run("2026-10")
	if second.Stats.Invoices != 0 || second.Stats.Skipped != 20 {
		t.Fatalf("second run: %d invoices, %d skipped", second.Stats.Invoices, second.Stats.Skipped)
	}
	for _, o := range second.Stats.Outcomes {
		if !strings.HasPrefix(o.Skip, "already invoiced on INV-2026-") {
			t.Errorf("%s: skip reason %q", o.CustomerID, o.Skip)
		}
	}
	if n := h.count(`SELECT count(*) FROM invoices`); n != 20 {
		t.Fatalf("%d invoices stored after two runs", n)
	}
	if n := h.count(`SELECT count(*) FROM billed_ranges`); n != ranges {
		t.Fatalf("billed ranges went from %d to %d", ranges, n)
	}
}

// TestLateRecordIsBilledOnceOnTheNextInvoice adds an October span after October was invoiced:
// it appears once, as an adjustment line naming its dates, on November's invoice, and never again.
func TestLateRecordIsBilledOnceOnTheNextInvoice(t *testing.T) {
	h := newHarness(t)
	h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
	h.addRecords(billing.Record{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-10-02T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	oct := h.run("2026-10")
	if o := outcome(t, oct, "c1"); o.Total.String() != "0.48" { // 24 h × 0.02
		t.Fatalf("october total %s", o.Total)
	}
	// 4 d 2 h 30 min = 354,600 s × 0.02 / 3600 = 1.97.
	h.addRecords(billing.Record{ResourceID: "vm-late", ResourceType: "os.nova.server", Start: ts("2026-10-05T10:00:00Z"), End: ts("2026-10-09T12:30:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	if again := h.run("2026-10"); again.Stats.Invoices != 0 {
		t.Fatal("october invoiced twice")
	}
	nov := h.run("2026-11")
	o := outcome(t, nov, "c1")
	inv, err := h.st.GetInvoice(context.Background(), o.Number)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Lines) != 1 {
		t.Fatalf("november lines: %+v", inv.Lines)
	}
	l := inv.Lines[0]
	if l.Section != invoice.Adjustment || l.Amount.String() != "1.97" || l.ResourceID != "vm-late" ||
		!strings.Contains(l.Description, "2026-10-05 10:00:00 – 2026-10-09 12:30:00") {
		t.Fatalf("adjustment line = %+v", l)
	}
	for _, p := range []string{"2026-11", "2026-12"} {
		run := h.run(p)
		if o := outcome(t, run, "c1"); o.Number != "" && o.Total.String() != "0.00" || o.Err != "" {
			t.Fatalf("%s billed the late span again: %+v", p, o)
		}
	}
}

// TestSpanClosedLateIsCreditedOnce closes, after October was invoiced to its end, a span that
// really ended on Oct 20: November credits the 12 days once.
func TestSpanClosedLateIsCreditedOnce(t *testing.T) {
	h := newHarness(t)
	h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
	fip := billing.Record{ResourceID: "fip-1", ResourceType: "os.neutron.floatingip", Start: ts("2026-09-01T00:00:00Z")}
	h.addRecords(fip)
	// October 744 h × 0.005 = 3.72, and September (720 h) 3.60 as late usage.
	if o := outcome(t, h.run("2026-10"), "c1"); o.Total.String() != "7.32" {
		t.Fatalf("october total %s", o.Total)
	}
	fip.End = ts("2026-10-20T00:00:00Z")
	h.addRecords(fip)
	o := outcome(t, h.run("2026-11"), "c1")
	inv, err := h.st.GetInvoice(context.Background(), o.Number)
	if err != nil {
		t.Fatal(err)
	}
	// [Oct 20, Nov 1) = 288 h × 0.005 = 1.44 back.
	if len(inv.Lines) != 1 || inv.Lines[0].Section != invoice.Credit || inv.Lines[0].Amount.String() != "-1.44" || inv.Total.String() != "-1.44" {
		t.Fatalf("november: %+v total %s", inv.Lines, inv.Total)
	}
	if o := outcome(t, h.run("2026-12"), "c1"); o.Skip != "nothing to bill" {
		t.Fatalf("december: %+v", o)
	}
}

// TestInterimLeavesTheStoreUnchanged prices November so far for a demo customer and checks that
// nothing in the store moved.
func TestInterimLeavesTheStoreUnchanged(t *testing.T) {
	h := newHarness(t)
	h.loadDemo(5)
	h.run("2026-10")
	snapshot := func() string {
		var s string
		q := `SELECT (SELECT count(*) FROM invoices) || '/' || (SELECT count(*) FROM invoice_lines) || '/' ||
		 (SELECT count(*) FROM billed_ranges) || '/' || (SELECT count(*) FROM usage_records WHERE settled = 1) || '/' ||
		 (SELECT coalesce(sum(last), 0) FROM invoice_series) || '/' || (SELECT count(*) FROM runs)`
		if err := h.st.DB().QueryRow(q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	at := ts("2026-11-15T12:00:00Z")
	var got *pipeline.Item
	_, err := pipeline.Execute(context.Background(), h.env(), pipeline.Options{Mode: pipeline.Interim, Period: month(t, "2026-11"), Until: at, CustomerIDs: []string{"p0001"}, OnItem: func(it *pipeline.Item) { got = it }})
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Err != nil || got.Invoice == nil || got.Invoice.Number != "" {
		t.Fatalf("interim item %+v", got)
	}
	if len(got.Invoice.Lines) == 0 {
		t.Fatal("interim invoice has no lines")
	}
	for _, l := range got.Invoice.Lines {
		if l.End.After(at) || l.Start.Before(ts("2026-11-01T00:00:00Z")) {
			t.Errorf("interim line outside [Nov 1, at): %+v", l)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("interim changed the store: %s → %s", before, after)
	}
}

// TestRegenerateIssuesANewNumberForTheSameRanges voids an October invoice and re-prices exactly
// its ranges with today's prices.
func TestRegenerateIssuesANewNumberForTheSameRanges(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.loadDemo(5)
	h.run("2026-10")
	old, err := h.st.GetInvoice(ctx, outcome(t, h.run("2026-10"), "p0001").Invoiced)
	if err != nil {
		t.Fatal(err)
	}
	// Today's data: the standard price of every server flavor doubles.
	ps, err := h.st.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	std := ps["standard"]
	std.Rules[0].Spec = strings.NewReplacer(`"0.0100"`, `"0.0200"`, `"0.0200"`, `"0.0400"`, `"0.0400"`, `"0.0800"`, `"0.0800"`, `"0.1600"`, `"0.1600"`, `"0.3200"`).Replace(std.Rules[0].Spec)
	if err := h.st.PutPolicies(ctx, []billing.Policy{std}); err != nil {
		t.Fatal(err)
	}
	var item *pipeline.Item
	if _, err := pipeline.Execute(ctx, h.env(), pipeline.Options{Mode: pipeline.Regenerate, Period: old.Period, CustomerIDs: []string{old.CustomerID}, Replacing: old, OnItem: func(it *pipeline.Item) { item = it }}); err != nil {
		t.Fatal(err)
	}
	if item.Err != nil || item.Invoice.Number == "" || item.Invoice.Number == old.Number {
		t.Fatalf("regenerated: err %v number %q", item.Err, item.Invoice.Number)
	}
	if item.Invoice.Number != "INV-2026-000006" {
		t.Fatalf("new number %s, want the next of the series INV-2026-000006", item.Invoice.Number)
	}
	voided, err := h.st.GetInvoice(ctx, old.Number)
	if err != nil {
		t.Fatal(err)
	}
	if voided.Status != invoice.Void || voided.ReplacedBy != item.Invoice.Number {
		t.Fatalf("old invoice: status %s replaced by %q", voided.Status, voided.ReplacedBy)
	}
	fresh, err := h.st.GetInvoice(ctx, item.Invoice.Number)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Replaces != old.Number {
		t.Fatalf("new invoice replaces %q", fresh.Replaces)
	}
	if a, b := rangeKeys(old.Ranges), rangeKeys(fresh.Ranges); a != b {
		t.Fatalf("ranges differ:\nold %s\nnew %s", a, b)
	}
	// Servers cost twice as much: the usage lines for servers doubled (each rounded once).
	var oldServers, newServers int64
	for _, l := range old.Lines {
		if l.ResourceType == "os.nova.server" {
			oldServers += cents(t, l.Amount.String())
		}
	}
	for _, l := range fresh.Lines {
		if l.ResourceType == "os.nova.server" {
			newServers += cents(t, l.Amount.String())
		}
	}
	if oldServers == 0 || newServers < 2*oldServers-int64(len(old.Lines)) || newServers > 2*oldServers+int64(len(old.Lines)) {
		t.Fatalf("server amounts %d → %d cents, want about double", oldServers, newServers)
	}
	// The regenerated month is still billed once: a scheduled run finds it invoiced.
	if o := outcome(t, h.run("2026-10"), "p0001"); o.Skip != "already invoiced on "+fresh.Number {
		t.Fatalf("after regeneration: %+v", o)
	}
}

func rangeKeys(rs []invoice.BilledRange) string {
	var b strings.Builder
	for _, r := range invoice.MergeRanges(rs) {
		b.WriteString(r.ResourceID + string(r.Kind) + r.Range.String() + ";")
	}
	return b.String()
}

func cents(t *testing.T, s string) int64 {
	d := dec(s)
	w, f, ok := d.Int64(2)
	if !ok {
		t.Fatalf("amount %s", s)
	}
	return w*100 + f
}

// TestStoreRefusesOverlapEvenWhenHandlersAreBypassed writes an overlapping billed range through
// the store's Finalize directly, with no handler in the way.
func TestStoreRefusesOverlapEvenWhenHandlersAreBypassed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
	h.addRecords(billing.Record{ResourceID: "vm-1", ResourceType: "os.nova.server", Start: ts("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	first := outcome(t, h.run("2026-10"), "c1").Number
	inv := &invoice.Invoice{Kind: invoice.Scheduled, CustomerID: "c1", Currency: "EUR", Period: month(t, "2026-11"),
		Ranges: []invoice.BilledRange{{ResourceID: "vm-1", ResourceType: "os.nova.server", Kind: invoice.Charge}}}
	inv.Ranges[0].Range.Start = ts("2026-10-31T23:59:59Z")
	inv.Ranges[0].Range.End = ts("2026-11-02T00:00:00Z")
	nf, err := config.ParseNumberFormat(h.cfg.Numbering.Format)
	if err != nil {
		t.Fatal(err)
	}
	err = h.st.Finalize(ctx, store.FinalizeRequest{Invoice: inv, Series: nf.Series(2026), NumberFormat: nf.Format})
	var overlap *store.OverlapError
	if !errors.As(err, &overlap) || overlap.Invoice != first {
		t.Fatalf("error = %v, want an overlap naming %s", err, first)
	}
	if n := h.count(`SELECT count(*) FROM invoices`); n != 1 {
		t.Fatalf("%d invoices after a refused finalize", n)
	}
}

// TestRerunWritesMissingDocuments loses a document after the invoices were stored (as when a run
// dies between finalizing and rendering): the next run writes it again, byte for byte, and
// bills nothing.
func TestRerunWritesMissingDocuments(t *testing.T) {
	h := newHarness(t)
	h.loadDemo(5)
	first := outcome(t, h.run("2026-10"), "p0003")
	want, err := os.ReadFile(first.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(first.Files[0]); err != nil {
		t.Fatal(err)
	}
	second := h.run("2026-10")
	if second.Stats.Invoices != 0 {
		t.Fatalf("the rerun issued %d invoices", second.Stats.Invoices)
	}
	o := outcome(t, second, "p0003")
	if len(o.Files) != 1 || o.Files[0] != first.Files[0] {
		t.Fatalf("rerun wrote %v, want %s", o.Files, first.Files[0])
	}
	got, err := os.ReadFile(first.Files[0])
	if err != nil || string(got) != string(want) {
		t.Fatalf("rewritten document differs (%v)", err)
	}
	if o := outcome(t, second, "p0001"); len(o.Files) != 0 {
		t.Fatalf("an existing document was rewritten: %v", o.Files)
	}
}
