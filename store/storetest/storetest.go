// Package storetest is the behaviour contract every store backend passes. A backend's test calls
// Run with a function that opens a fresh, empty store; every subtest gets its own store.
//
// The subtests are named after the invariants of package store: billed ranges never overlap,
// numbering is gapless, one live scheduled invoice per customer and period, finalizing is all or
// nothing, settling respects record versions, money round-trips exactly.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Run runs the contract suite; open must return a fresh, empty store for each call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"FinalizeRefusesOverlap", testFinalizeRefusesOverlap},
		{"FinalizeIsAllOrNothing", testFinalizeIsAllOrNothing},
		{"FinalizeRequiresNumbering", testFinalizeRequiresNumbering},
		{"FinalizeSetsNumberAndResolvesResources", testFinalizeSetsNumber},
		{"NumberingIsGapless", testNumberingIsGapless},
		{"OneLiveScheduledInvoicePerCustomerAndPeriod", testOneLiveScheduledInvoice},
		{"RegenerationVoidsOldInvoiceInOneTransaction", testRegeneration},
		{"VoidReleasesRangesAndUnsettlesRecords", testVoidReleasesRanges},
		{"UsageReturnsUnsettledHistory", testUsage},
		{"UsageIncludesSettledRecordsOverlappingUnsettledHistory", testUsageSettledOverlap},
		{"SettlingRespectsVersions", testSettlingRespectsVersions},
		{"AddRecordsUpserts", testAddRecordsUpserts},
		{"AddRecordsRepeatedInOneCall", testAddRecordsRepeatedInOneCall},
		{"AddRecordsRefusesUnknownCustomerAtomically", testAddRecordsUnknownCustomer},
		{"AddRecordStreamIsOneTransaction", testAddRecordStreamIsOneTransaction},
		{"AddRecordsRefusesBadRecords", testAddRecordsBadRecords},
		{"ResourceHistoryReturnsEverything", testResourceHistory},
		{"BalancesToTheCent", testBalances},
		{"DecimalsRoundTripExactly", testDecimalsRoundTrip},
		{"PaymentsReimportIsNoop", testPaymentsReimport},
		{"CustomersUpsertFilterAndOrder", testCustomers},
		{"PoliciesRoundTrip", testPolicies},
		{"SubscriptionsOverlappingPeriod", testSubscriptions},
		{"ListAndGetInvoices", testListAndGetInvoices},
		{"Runs", testRuns},
	}
	for _, c := range extensions {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, st store.Store)
		}{c.Name, c.Fn})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() { st.Close() })
			tc.fn(t, st)
		})
	}
}

// --- fixtures -------------------------------------------------------------------------------------

var ctx = context.Background()

// day returns midnight UTC of a day in 2026.
func day(month, d int) time.Time { return time.Date(2026, time.Month(month), d, 0, 0, 0, 0, time.UTC) }

// month returns the 2026 calendar month as a range.
func month(m int) interval.Range { return interval.Range{Start: day(m, 1), End: day(m+1, 1)} }

func rng(a, b time.Time) interval.Range { return interval.Range{Start: a, End: b} }

func numFmt(series string, seq int64) string { return fmt.Sprintf("T-%s-%04d", series, seq) }

func dec(s string) decimal.Decimal { return decimal.MustParse(s) }

// seed stores customers c1, c2 and c3 (EUR, 20 % tax).
func seed(t *testing.T, st store.Store) {
	t.Helper()
	var cs []billing.Customer
	for _, id := range []string{"c1", "c2", "c3"} {
		cs = append(cs, billing.Customer{ID: id, Name: "Customer " + id, Currency: "EUR", TaxRate: dec("0.20"), Status: billing.Active})
	}
	if err := st.PutCustomers(ctx, cs); err != nil {
		t.Fatalf("PutCustomers: %v", err)
	}
}

func rec(customer, resource string, start, end time.Time) billing.Record {
	return billing.Record{
		CustomerID: customer, ResourceID: resource, ResourceType: "os.nova.server",
		Start: start, End: end, Attributes: map[string]string{"flavor": "m1.small"}, Source: "test",
	}
}

func addRecords(t *testing.T, st store.Store, rs ...billing.Record) {
	t.Helper()
	if err := st.AddRecords(ctx, rs); err != nil {
		t.Fatalf("AddRecords: %v", err)
	}
}

func charge(resource string, r interval.Range) invoice.BilledRange {
	return invoice.BilledRange{ResourceID: resource, ResourceType: "os.nova.server", Kind: invoice.Charge, Range: r}
}

func credit(resource string, r interval.Range) invoice.BilledRange {
	return invoice.BilledRange{ResourceID: resource, ResourceType: "os.nova.server", Kind: invoice.Credited, Range: r}
}

// inv builds a scheduled invoice with one usage line per range and a total of 1.00 per line.
func inv(customer string, period interval.Range, ranges ...invoice.BilledRange) *invoice.Invoice {
	in := &invoice.Invoice{
		Kind: invoice.Scheduled, CustomerID: customer, CustomerName: "Customer " + customer, Currency: "EUR",
		Period: period, IssuedAt: period.End, Ranges: ranges, TaxRate: dec("0.20"), RunID: "run-1",
	}
	for _, br := range ranges {
		in.Lines = append(in.Lines, invoice.Line{
			Section: invoice.Usage, ResourceID: br.ResourceID, ResourceType: br.ResourceType,
			Description: "usage", Start: br.Range.Start, End: br.Range.End, Seconds: br.Range.Seconds(),
			Quantity: dec("1"), Unit: "h", UnitPrice: dec("1.00"), Amount: dec("1.00"),
		})
	}
	if err := in.Calculate(invoice.DefaultRounding); err != nil {
		panic(err)
	}
	return in
}

func finalize(st store.Store, in *invoice.Invoice, settle ...billing.Ref) error {
	return st.Finalize(ctx, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: numFmt, Settle: settle})
}

func mustFinalize(t *testing.T, st store.Store, in *invoice.Invoice, settle ...billing.Ref) string {
	t.Helper()
	if err := finalize(st, in, settle...); err != nil {
		t.Fatalf("Finalize %s %s: %v", in.CustomerID, in.Period, err)
	}
	return in.Number
}

// usage returns Usage of the customers until `until`, keyed by resource id.
func usage(t *testing.T, st store.Store, until time.Time, customers ...string) map[string]store.ResourceUsage {
	t.Helper()
	us, err := st.Usage(ctx, customers, until)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	out := map[string]store.ResourceUsage{}
	for _, u := range us {
		out[u.ResourceID] = u
	}
	return out
}

// refs returns the refs of the records of a resource, by start day.
func refsOf(u store.ResourceUsage) map[time.Time]billing.Ref {
	out := map[time.Time]billing.Ref{}
	for _, r := range u.Records {
		out[r.Start] = billing.Ref{ID: r.ID, Version: r.Version}
	}
	return out
}

func wantSet(t *testing.T, what string, got interval.Set, want ...interval.Range) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual([]interval.Range(got), want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantOverlap(t *testing.T, err error, number, resource string) {
	t.Helper()
	var oe *store.OverlapError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want *store.OverlapError", err)
	}
	if oe.Invoice != number || oe.ResourceID != resource {
		t.Errorf("OverlapError names invoice %q resource %q, want %q %q (%v)", oe.Invoice, oe.ResourceID, number, resource, oe)
	}
}

// --- billed ranges --------------------------------------------------------------------------------

func testFinalizeRefusesOverlap(t *testing.T, st store.Store) {
	seed(t, st)
	first := mustFinalize(t, st, inv("c1", month(10), charge("r1", month(10)), credit("r9", month(10))))

	tests := []struct {
		name    string
		r       invoice.BilledRange
		overlap bool
	}{
		{"same range", charge("r1", month(10)), true},
		{"overlapping end", charge("r1", rng(day(10, 15), day(11, 15))), true},
		{"overlapping start", charge("r1", rng(day(9, 15), day(10, 2))), true},
		{"contained", charge("r1", rng(day(10, 2), day(10, 3))), true},
		{"covering", charge("r1", rng(day(9, 1), day(12, 1))), true},
		{"one second", charge("r1", rng(day(11, 1).Add(-time.Second), day(11, 1))), true},
		{"credit overlapping credit", credit("r9", rng(day(10, 5), day(10, 6))), true},
		{"adjacent after", charge("r1", rng(day(11, 1), day(12, 1))), false},
		{"adjacent before", charge("r1", rng(day(9, 1), day(10, 1))), false},
		{"other resource", charge("r2", month(10)), false},
		{"credit kind", credit("r1", month(10)), false},
	}
	p := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each attempt uses its own period so the one-invoice-per-period rule stays out of the way.
			p++
			period := rng(day(1, 1).AddDate(0, 0, p), day(1, 1).AddDate(0, 0, p+1))
			in := inv("c1", period, tc.r)
			err := finalize(st, in)
			if !tc.overlap {
				if err != nil {
					t.Fatalf("Finalize: %v", err)
				}
				// Release it again so later cases only meet the first invoice.
				if err := st.VoidInvoice(ctx, in.Number, "test"); err != nil {
					t.Fatalf("VoidInvoice: %v", err)
				}
				return
			}
			wantOverlap(t, err, first, tc.r.ResourceID)
			var oe *store.OverlapError
			if errors.As(err, &oe) && oe.CustomerID != "c1" {
				t.Errorf("OverlapError.CustomerID = %q, want c1", oe.CustomerID)
			}
			if in.Number != "" {
				t.Errorf("refused invoice got number %q", in.Number)
			}
		})
	}
	// Another customer's resource with the same id is a different resource.
	mustFinalize(t, st, inv("c2", month(10), charge("r1", month(10))))
}

func testFinalizeIsAllOrNothing(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st, rec("c1", "r1", day(10, 1), day(10, 20)), rec("c1", "r2", day(10, 1), day(10, 20)))
	u := usage(t, st, day(11, 1), "c1")
	first := mustFinalize(t, st, inv("c1", month(9), charge("r2", rng(day(10, 10), day(10, 11)))))

	// r1 is free, r2 overlaps: nothing of the invoice may remain, r1's range included.
	in := inv("c1", month(10), charge("r1", month(10)), charge("r2", month(10)))
	err := finalize(st, in, refsOf(u["r1"])[day(10, 1)], refsOf(u["r2"])[day(10, 1)])
	wantOverlap(t, err, first, "r2")

	list, err := st.ListInvoices(ctx, store.InvoiceFilter{CustomerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Number != first {
		t.Errorf("invoices after refused finalize = %v, want only %s", numbers(list), first)
	}
	if got, _ := st.Invoiced(ctx, []string{"c1"}, month(10)); len(got) != 0 {
		t.Errorf("Invoiced(October) = %v after a refused finalize", got)
	}
	u2 := usage(t, st, day(11, 1), "c1")
	if len(u2["r1"].Records) != 1 || u2["r1"].Records[0].Settled {
		t.Errorf("r1 after refused finalize = %+v, want its record still unsettled", u2["r1"].Records)
	}
	wantSet(t, "r1 charged", u2["r1"].Charged)
	// r1 can be billed now: its range was not left behind.
	mustFinalize(t, st, inv("c1", month(10), charge("r1", month(10))))
}

func testFinalizeRequiresNumbering(t *testing.T, st store.Store) {
	seed(t, st)
	for _, req := range []store.FinalizeRequest{
		{Invoice: inv("c1", month(10)), NumberFormat: numFmt},
		{Invoice: inv("c1", month(10)), Series: "2026"},
	} {
		if err := st.Finalize(ctx, req); err == nil || !strings.Contains(err.Error(), "numbering") {
			t.Fatalf("finalize without full numbering: %v", err)
		}
	}
	if got, err := st.ListInvoices(ctx, store.InvoiceFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("%d invoices stored (%v)", len(got), err)
	}
}

func testFinalizeSetsNumber(t *testing.T, st store.Store) {
	seed(t, st)
	subs, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "basic", Start: day(1, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	sub := subs[0]
	in := inv("c1", month(10),
		invoice.BilledRange{ResourceID: sub.ResourceID(), ResourceType: "subscription", Kind: invoice.Charge, Range: rng(day(10, 1), day(10, 15))},
		invoice.BilledRange{ResourceID: sub.ResourceID(), ResourceType: "subscription", Kind: invoice.Charge, Range: rng(day(10, 15), day(11, 1))},
	)
	in.IssuedAt = time.Time{}
	mustFinalize(t, st, in)
	if in.Number != "T-2026-0001" || in.ID == 0 || in.Status != invoice.Issued || in.IssuedAt.IsZero() {
		t.Errorf("after Finalize: number %q id %d status %q issued %v", in.Number, in.ID, in.Status, in.IssuedAt)
	}
	got, err := st.GetInvoice(ctx, in.Number)
	if err != nil {
		t.Fatal(err)
	}
	// Contiguous ranges of one resource are merged before they are stored.
	if len(got.Ranges) != 1 || got.Ranges[0].Range != month(10) || got.Ranges[0].ResourceID != sub.ResourceID() ||
		got.Ranges[0].ResourceType != "subscription" || got.Ranges[0].ResourceKey == 0 {
		t.Errorf("stored ranges = %+v, want one merged subscription range over October", got.Ranges)
	}
	h, err := st.ResourceHistory(ctx, "c1", []string{sub.ResourceID()})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || len(h[0].Records) != 0 {
		t.Fatalf("ResourceHistory(subscription) = %+v, want the resource with no records", h)
	}
	wantSet(t, "subscription charged", h[0].Charged, month(10))
	// Billing the fee again for part of October is refused.
	wantOverlap(t, finalize(st, inv("c1", month(11),
		invoice.BilledRange{ResourceID: sub.ResourceID(), Kind: invoice.Charge, Range: rng(day(10, 31), day(11, 30))})), in.Number, sub.ResourceID())

	// Interim invoices are never stored.
	interim := inv("c2", month(10))
	interim.Kind = invoice.Interim
	if err := finalize(st, interim); err == nil {
		t.Error("Finalize stored an interim invoice")
	}
}

func numbers(list []invoice.Invoice) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.Number)
	}
	return out
}

func testNumberingIsGapless(t *testing.T, st store.Store) {
	seed(t, st)
	var issued []string
	issued = append(issued, mustFinalize(t, st, inv("c1", month(9), charge("r1", month(9)))))
	// Refused by overlap.
	if err := finalize(st, inv("c1", month(10), charge("r1", rng(day(9, 30), day(11, 1))))); err == nil {
		t.Fatal("overlapping finalize succeeded")
	}
	// Refused: already invoiced.
	if err := finalize(st, inv("c1", month(9))); err == nil {
		t.Fatal("second invoice for the period succeeded")
	}
	// Refused: replaces an unknown invoice.
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: inv("c2", month(9)), Series: "2026", NumberFormat: numFmt, Replaces: "nope"}); err == nil {
		t.Fatal("finalize replacing an unknown invoice succeeded")
	}
	issued = append(issued, mustFinalize(t, st, inv("c1", month(10), charge("r1", month(10)))))
	issued = append(issued, mustFinalize(t, st, inv("c2", month(10))))
	want := []string{"T-2026-0001", "T-2026-0002", "T-2026-0003"}
	if !reflect.DeepEqual(issued, want) {
		t.Errorf("numbers = %v, want %v", issued, want)
	}
	// Another series counts on its own.
	in := inv("c3", month(10))
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: in, Series: "CN", NumberFormat: numFmt}); err != nil {
		t.Fatal(err)
	}
	if in.Number != "T-CN-0001" {
		t.Errorf("first number of series CN = %q, want T-CN-0001", in.Number)
	}
	if n := mustFinalize(t, st, inv("c3", month(11))); n != "T-2026-0004" {
		t.Errorf("next number of series 2026 = %q, want T-2026-0004", n)
	}
}

func testOneLiveScheduledInvoice(t *testing.T, st store.Store) {
	seed(t, st)
	first := mustFinalize(t, st, inv("c1", month(10)))
	err := finalize(st, inv("c1", month(10), charge("r1", month(10))))
	var ae *store.AlreadyInvoicedError
	if !errors.As(err, &ae) {
		t.Fatalf("second invoice for c1 October: err = %v, want *store.AlreadyInvoicedError", err)
	}
	if ae.Invoice != first || ae.CustomerID != "c1" {
		t.Errorf("AlreadyInvoicedError = %+v, want customer c1 invoice %s", ae, first)
	}
	other := mustFinalize(t, st, inv("c2", month(10)))
	nov := mustFinalize(t, st, inv("c1", month(11)))
	got, err := st.Invoiced(ctx, []string{"c1", "c2", "c3", "unknown"}, month(10))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"c1": first, "c2": other}; !reflect.DeepEqual(got, want) {
		t.Errorf("Invoiced(October) = %v, want %v", got, want)
	}
	got, _ = st.Invoiced(ctx, []string{"c1"}, month(11))
	if got["c1"] != nov {
		t.Errorf("Invoiced(November) = %v, want c1: %s", got, nov)
	}
	// Once voided, the period can be invoiced again.
	if err := st.VoidInvoice(ctx, first, "wrong address"); err != nil {
		t.Fatal(err)
	}
	again := mustFinalize(t, st, inv("c1", month(10)))
	got, _ = st.Invoiced(ctx, []string{"c1"}, month(10))
	if got["c1"] != again {
		t.Errorf("Invoiced(October) after void and reissue = %v, want c1: %s", got, again)
	}
}

func testRegeneration(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st, rec("c1", "r1", day(10, 1), day(10, 20)))
	u := usage(t, st, day(11, 1), "c1")
	ref := refsOf(u["r1"])[day(10, 1)]
	old := inv("c1", month(10), charge("r1", rng(day(10, 1), day(10, 20))), credit("r2", rng(day(10, 1), day(10, 2))))
	mustFinalize(t, st, old, ref)

	// The regeneration bills exactly the same ranges: possible only because the old invoice is
	// voided in the same transaction.
	regen := inv("c1", month(10), charge("r1", rng(day(10, 1), day(10, 20))), credit("r2", rng(day(10, 1), day(10, 2))))
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: regen, Series: "2026", NumberFormat: numFmt,
		Replaces: old.Number, Settle: []billing.Ref{ref}}); err != nil {
		t.Fatalf("regenerate: %v", err)
	}
	o, err := st.GetInvoice(ctx, old.Number)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != invoice.Void || o.ReplacedBy != regen.Number || !strings.Contains(o.VoidReason, regen.Number) {
		t.Errorf("old invoice: status %q replaced_by %q reason %q, want void replaced by %s", o.Status, o.ReplacedBy, o.VoidReason, regen.Number)
	}
	if len(o.Ranges) != 2 {
		t.Errorf("old invoice lists %d ranges, want its 2 (released) ranges", len(o.Ranges))
	}
	n, err := st.GetInvoice(ctx, regen.Number)
	if err != nil {
		t.Fatal(err)
	}
	if n.Status != invoice.Issued || n.Replaces != old.Number {
		t.Errorf("new invoice: status %q replaces %q, want issued replacing %s", n.Status, n.Replaces, old.Number)
	}
	got, _ := st.Invoiced(ctx, []string{"c1"}, month(10))
	if got["c1"] != regen.Number {
		t.Errorf("Invoiced = %v, want c1: %s", got, regen.Number)
	}
	// The record is settled again by the regeneration.
	if u := usage(t, st, day(11, 1), "c1"); len(u) != 0 {
		t.Errorf("Usage after regeneration = %v, want nothing unsettled", u)
	}
	// The ranges now belong to the new invoice.
	wantOverlap(t, finalize(st, inv("c1", month(11), charge("r1", rng(day(10, 19), day(11, 1))))), regen.Number, "r1")
	// A void invoice cannot be replaced again.
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: inv("c1", month(10)), Series: "2026", NumberFormat: numFmt,
		Replaces: old.Number}); err == nil {
		t.Error("replacing a void invoice succeeded")
	}
	// Another customer's invoice cannot be replaced.
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: inv("c2", month(10)), Series: "2026", NumberFormat: numFmt,
		Replaces: regen.Number}); err == nil {
		t.Error("replacing another customer's invoice succeeded")
	}
	// Replacing an unknown invoice is ErrNotFound.
	err = st.Finalize(ctx, store.FinalizeRequest{Invoice: inv("c1", month(10)), Series: "2026", NumberFormat: numFmt, Replaces: "nope"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("replacing an unknown invoice: err = %v, want ErrNotFound", err)
	}
}

func testVoidReleasesRanges(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st, rec("c1", "r1", day(10, 1), day(10, 20)), rec("c1", "r2", day(9, 1), day(9, 5)))
	u := usage(t, st, day(11, 1), "c1")
	in := inv("c1", month(10), charge("r1", month(10)))
	mustFinalize(t, st, in, refsOf(u["r1"])[day(10, 1)], refsOf(u["r2"])[day(9, 1)])
	if u := usage(t, st, day(11, 1), "c1"); len(u) != 0 {
		t.Fatalf("Usage after finalize = %v, want nothing unsettled", u)
	}
	if err := st.VoidInvoice(ctx, in.Number, "customer disputed"); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetInvoice(ctx, in.Number)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != invoice.Void || got.VoidReason != "customer disputed" {
		t.Errorf("voided invoice: status %q reason %q", got.Status, got.VoidReason)
	}
	// The record the void invoice billed is unsettled so the usage is not lost; r2 was settled
	// without a range on this invoice and stays settled.
	u = usage(t, st, day(11, 1), "c1")
	if len(u) != 1 || len(u["r1"].Records) != 1 {
		t.Fatalf("Usage after void = %v, want r1 unsettled again", u)
	}
	wantSet(t, "r1 charged after void", u["r1"].Charged)
	mustFinalize(t, st, inv("c1", month(10), charge("r1", month(10))))

	if err := st.VoidInvoice(ctx, in.Number, "again"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("voiding a void invoice: err = %v, want a refusal", err)
	}
	if err := st.VoidInvoice(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("voiding an unknown invoice: err = %v, want ErrNotFound", err)
	}
}

// --- usage ----------------------------------------------------------------------------------------

func testUsage(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st,
		rec("c1", "r1", day(8, 1), time.Time{}),  // open since August
		rec("c1", "r2", day(8, 1), day(8, 10)),   // settled by the August invoice
		rec("c1", "r3", day(11, 5), time.Time{}), // starts after until
		rec("c2", "r4", day(10, 3), day(10, 4)),
		rec("c3", "r5", day(10, 3), day(10, 4)), // customer not asked for
	)
	u := usage(t, st, day(9, 1), "c1")
	aug := inv("c1", month(8), charge("r1", month(8)), charge("r2", rng(day(8, 1), day(8, 10))))
	mustFinalize(t, st, aug, refsOf(u["r2"])[day(8, 1)])

	// Resized on September 20: the open record is closed and a new one opens.
	resized := rec("c1", "r1", day(9, 20), time.Time{})
	resized.Attributes = map[string]string{"flavor": "m1.large"}
	addRecords(t, st, rec("c1", "r1", day(8, 1), day(9, 20)), resized)
	// A credit and a charge from earlier invoices that end after Since, and one that does not.
	mustFinalize(t, st, inv("c1", month(9), charge("r1", month(9)), credit("r1", rng(day(9, 25), day(9, 26)))))

	us, err := st.Usage(ctx, []string{"c2", "c1", "c1"}, day(11, 1))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range us {
		ids = append(ids, x.CustomerID+"/"+x.ResourceID)
	}
	if want := []string{"c1/r1", "c2/r4"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("Usage resources = %v, want %v (sorted by customer, resource; settled-only, later and unasked excluded)", ids, want)
	}
	r1 := us[0]
	if !r1.Since.Equal(day(8, 1)) {
		t.Errorf("r1 Since = %v, want %v", r1.Since, day(8, 1))
	}
	if len(r1.Records) != 2 || !r1.Records[0].Start.Equal(day(8, 1)) || !r1.Records[1].Start.Equal(day(9, 20)) {
		t.Fatalf("r1 records = %+v, want August and September 20, sorted", r1.Records)
	}
	a, b := r1.Records[0], r1.Records[1]
	if !a.End.Equal(day(9, 20)) || a.Version != 2 || a.Settled || !b.End.IsZero() || b.Version != 1 {
		t.Errorf("r1 records = %+v", r1.Records)
	}
	if b.Attributes["flavor"] != "m1.large" || b.ResourceType != "os.nova.server" || b.CustomerID != "c1" ||
		b.ResourceID != "r1" || b.ResourceKey != r1.ResourceKey || b.ResourceKey == 0 || b.Source != "test" {
		t.Errorf("r1 second record = %+v", b)
	}
	wantSet(t, "r1 charged", r1.Charged, rng(day(8, 1), day(10, 1)))
	wantSet(t, "r1 credited", r1.Credited, rng(day(9, 25), day(9, 26)))

	// Since moves forward once the August record is settled: ranges ending before it drop out.
	u = usage(t, st, day(11, 1), "c1")
	mustFinalize(t, st, inv("c1", month(10), charge("r1", month(10))), refsOf(u["r1"])[day(8, 1)])
	u = usage(t, st, day(11, 1), "c1")
	r1 = u["r1"]
	if !r1.Since.Equal(day(9, 20)) || len(r1.Records) != 1 || !r1.Records[0].Start.Equal(day(9, 20)) {
		t.Errorf("r1 after settling August: since %v records %+v, want since September 20 and one record", r1.Since, r1.Records)
	}
	wantSet(t, "r1 charged", r1.Charged, rng(day(9, 1), day(11, 1)))
	wantSet(t, "r1 credited", r1.Credited, rng(day(9, 25), day(9, 26)))

	// until is exclusive: a record starting at until is not yet due.
	if u := usage(t, st, day(11, 5), "c1"); len(u["r3"].Records) != 0 {
		t.Errorf("record starting at until is returned: %+v", u["r3"])
	}
	if u := usage(t, st, day(11, 5).Add(time.Second), "c1"); len(u["r3"].Records) != 1 {
		t.Errorf("record starting before until is missing: %+v", u)
	}
	if us, err := st.Usage(ctx, nil, day(12, 1)); err != nil || len(us) != 0 {
		t.Errorf("Usage(no customers) = %v, %v", us, err)
	}
}

func testUsageSettledOverlap(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st,
		rec("c1", "r1", day(9, 1), day(9, 5)),  // settled, ends before Since
		rec("c1", "r1", day(9, 5), day(9, 25)), // settled, overlaps the unsettled history
		rec("c1", "r1", day(9, 20), time.Time{}),
	)
	u := usage(t, st, day(10, 1), "c1")
	refs := refsOf(u["r1"])
	mustFinalize(t, st, inv("c1", month(9)), refs[day(9, 1)], refs[day(9, 5)])
	u = usage(t, st, day(10, 1), "c1")
	r1 := u["r1"]
	if !r1.Since.Equal(day(9, 20)) {
		t.Errorf("Since = %v, want September 20", r1.Since)
	}
	if len(r1.Records) != 2 || !r1.Records[0].Start.Equal(day(9, 5)) || !r1.Records[0].Settled || r1.Records[1].Settled {
		t.Errorf("records = %+v, want the settled September 5 record then the unsettled one", r1.Records)
	}
}

func testSettlingRespectsVersions(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st, rec("c1", "r1", day(10, 1), day(10, 10)), rec("c1", "r2", day(10, 1), day(10, 10)))
	u := usage(t, st, day(11, 1), "c1") // the calculation loads version 1
	loaded := refsOf(u["r1"])[day(10, 1)]
	// Meanwhile the span is re-imported with a later end.
	addRecords(t, st, rec("c1", "r1", day(10, 1), day(10, 15)))
	mustFinalize(t, st, inv("c1", month(10), charge("r1", rng(day(10, 1), day(10, 10)))), loaded, refsOf(u["r2"])[day(10, 1)])

	u = usage(t, st, day(11, 1), "c1")
	if _, ok := u["r2"]; ok {
		t.Error("r2 (settled at its current version) is still returned")
	}
	r1, ok := u["r1"]
	if !ok || len(r1.Records) != 1 {
		t.Fatalf("r1 re-imported after loading must stay unsettled; Usage = %v", u)
	}
	if r := r1.Records[0]; r.Settled || r.Version != loaded.Version+1 || !r.End.Equal(day(10, 15)) {
		t.Errorf("r1 record = %+v, want unsettled version %d ending October 15", r, loaded.Version+1)
	}
	wantSet(t, "r1 charged", r1.Charged, rng(day(10, 1), day(10, 10)))
}

func testAddRecordsUpserts(t *testing.T, st store.Store) {
	seed(t, st)
	base := rec("c1", "r1", day(10, 1), day(10, 10))
	tests := []struct {
		name        string
		change      func(r *billing.Record)
		wantVersion int64
		wantSettled bool
	}{
		{"identical is a no-op", func(r *billing.Record) {}, 1, true},
		{"identical with another source is a no-op", func(r *billing.Record) { r.Source = "listener" }, 1, true},
		{"sub-second start and end are truncated", func(r *billing.Record) {
			r.Start = r.Start.Add(300 * time.Millisecond)
			r.End = r.End.Add(999 * time.Millisecond)
		}, 1, true},
		{"changed end", func(r *billing.Record) { r.End = day(10, 12) }, 2, false},
		{"opened end", func(r *billing.Record) { r.End = time.Time{} }, 2, false},
		{"changed attributes", func(r *billing.Record) { r.Attributes = map[string]string{"flavor": "m1.large"} }, 2, false},
		{"changed type", func(r *billing.Record) { r.ResourceType = "os.cinder.volume" }, 2, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.ResourceID = fmt.Sprintf("r%d", i)
			addRecords(t, st, r)
			u := usage(t, st, day(11, 1), "c1")
			ref := refsOf(u[r.ResourceID])[day(10, 1)]
			if ref.Version != 1 {
				t.Fatalf("new record version = %d, want 1", ref.Version)
			}
			if err := finalize(st, inv("c1", rng(day(1, 1).AddDate(0, 0, i), day(1, 2).AddDate(0, 0, i))), ref); err != nil {
				t.Fatal(err)
			}
			tc.change(&r)
			addRecords(t, st, r)
			h, err := st.ResourceHistory(ctx, "c1", []string{r.ResourceID})
			if err != nil || len(h) != 1 || len(h[0].Records) != 1 {
				t.Fatalf("ResourceHistory = %+v, %v; want one resource with one record (same start is the same record)", h, err)
			}
			got := h[0].Records[0]
			if got.Version != tc.wantVersion || got.Settled != tc.wantSettled {
				t.Errorf("after re-import: version %d settled %v, want %d %v", got.Version, got.Settled, tc.wantVersion, tc.wantSettled)
			}
			if got.ID != ref.ID {
				t.Errorf("record id changed from %d to %d", ref.ID, got.ID)
			}
			if !got.End.Equal(interval.Norm(r.End)) && !(r.End.IsZero() && got.End.IsZero()) {
				t.Errorf("end = %v, want %v", got.End, r.End)
			}
			if tc.wantVersion > 1 && (!reflect.DeepEqual(got.Attributes, r.Attributes) || got.ResourceType != r.ResourceType) {
				t.Errorf("record = %+v, want attributes %v type %s", got, r.Attributes, r.ResourceType)
			}
		})
	}
}

// A record given twice in one call ends as the later one, exactly as two calls would leave it.
func testAddRecordsRepeatedInOneCall(t *testing.T, st store.Store) {
	seed(t, st)
	first := rec("c1", "r1", day(10, 1), day(10, 5))
	later := rec("c1", "r1", day(10, 1), day(10, 9))
	same := rec("c1", "r2", day(10, 1), day(10, 5))
	addRecords(t, st, first, same, later, same)
	h, err := st.ResourceHistory(ctx, "c1", []string{"r1", "r2"})
	if err != nil || len(h) != 2 || len(h[0].Records) != 1 || len(h[1].Records) != 1 {
		t.Fatalf("ResourceHistory = %+v, %v", h, err)
	}
	if r := h[0].Records[0]; !r.End.Equal(day(10, 9)) || r.Version != 2 {
		t.Errorf("r1 = end %v version %d, want the later end at version 2", r.End, r.Version)
	}
	if r := h[1].Records[0]; r.Version != 1 {
		t.Errorf("r2 given twice unchanged: version %d, want 1", r.Version)
	}
}

func testAddRecordsUnknownCustomer(t *testing.T, st store.Store) {
	seed(t, st)
	err := st.AddRecords(ctx, []billing.Record{
		rec("c1", "r1", day(10, 1), time.Time{}),
		rec("c2", "r2", day(10, 1), time.Time{}),
		rec("nobody", "r3", day(10, 1), time.Time{}),
	})
	if err == nil {
		t.Fatal("AddRecords accepted a record of an unknown customer")
	}
	if !strings.Contains(err.Error(), "nobody") || !strings.Contains(err.Error(), "2") {
		t.Errorf("error %q should name the customer and the record index 2", err)
	}
	if u := usage(t, st, day(12, 1), "c1", "c2", "nobody"); len(u) != 0 {
		t.Errorf("records stored despite the refusal: %v", u)
	}
	if h, _ := st.ResourceHistory(ctx, "c1", []string{"r1"}); len(h) != 0 {
		t.Errorf("resource created despite the refusal: %v", h)
	}
}

func testAddRecordStreamIsOneTransaction(t *testing.T, st store.Store) {
	seed(t, st)
	chunks := [][]billing.Record{
		{rec("c1", "r1", day(10, 1), time.Time{}), rec("c1", "r2", day(10, 2), time.Time{})},
		{rec("c2", "r3", day(10, 1), time.Time{}), rec("nobody", "r4", day(10, 1), time.Time{})},
	}
	stream := func(add func([]billing.Record) error) error {
		for _, c := range chunks {
			if err := add(c); err != nil {
				return err
			}
		}
		return nil
	}
	err := st.AddRecordStream(ctx, stream)
	if err == nil || !strings.Contains(err.Error(), "nobody") || !strings.Contains(err.Error(), "3") {
		t.Fatalf("error = %v, want it to name customer nobody and record 3 of the stream", err)
	}
	if u := usage(t, st, day(12, 1), "c1", "c2"); len(u) != 0 {
		t.Fatalf("the first chunk was stored although a later one was refused: %v", u)
	}
	chunks[1] = chunks[1][:1]
	if err := st.AddRecordStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, st, day(12, 1), "c1", "c2"); len(u) != 3 {
		t.Fatalf("stored %d resources from the stream, want 3", len(u))
	}
}

func testAddRecordsBadRecords(t *testing.T, st store.Store) {
	seed(t, st)
	bad := []billing.Record{
		rec("c1", "r1", day(10, 2), day(10, 1)),
		rec("c1", "r1", day(10, 2), day(10, 2)),
		rec("c1", "", day(10, 2), time.Time{}),
		rec("", "r1", day(10, 2), time.Time{}),
		rec("c1", "r1", time.Time{}, time.Time{}),
	}
	for i, r := range bad {
		if err := st.AddRecords(ctx, []billing.Record{rec("c1", "ok", day(10, 1), time.Time{}), r}); err == nil {
			t.Errorf("bad record %d (%+v) accepted", i, r)
		}
	}
	if u := usage(t, st, day(12, 1), "c1"); len(u) != 0 {
		t.Errorf("records stored despite refusals: %v", u)
	}
}

func testResourceHistory(t *testing.T, st store.Store) {
	seed(t, st)
	addRecords(t, st, rec("c1", "r1", day(8, 1), day(9, 1)), rec("c1", "r1", day(9, 1), time.Time{}), rec("c1", "r2", day(8, 1), day(8, 2)))
	u := usage(t, st, day(11, 1), "c1")
	refs := refsOf(u["r1"])
	mustFinalize(t, st, inv("c1", month(8), charge("r1", month(8))), refs[day(8, 1)])
	voided := inv("c1", month(7), charge("r1", month(7)))
	mustFinalize(t, st, voided)
	if err := st.VoidInvoice(ctx, voided.Number, "test"); err != nil {
		t.Fatal(err)
	}
	h, err := st.ResourceHistory(ctx, "c1", []string{"r1", "unknown", "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].ResourceID != "r1" || !h[0].Since.IsZero() {
		t.Fatalf("ResourceHistory = %+v, want r1 only with zero Since", h)
	}
	if len(h[0].Records) != 2 || !h[0].Records[0].Settled || h[0].Records[1].Settled {
		t.Errorf("records = %+v, want both, settled first", h[0].Records)
	}
	wantSet(t, "charged (live only)", h[0].Charged, month(8))
	if h, _ := st.ResourceHistory(ctx, "c2", []string{"r1"}); len(h) != 0 {
		t.Errorf("another customer's resource returned: %+v", h)
	}
}

// --- money ----------------------------------------------------------------------------------------

func testBalances(t *testing.T, st store.Store) {
	seed(t, st)
	withTotal := func(customer string, period interval.Range, total string) *invoice.Invoice {
		in := inv(customer, period)
		in.Total = dec(total)
		return in
	}
	mustFinalize(t, st, withTotal("c1", month(8), "100.10"))
	mustFinalize(t, st, withTotal("c1", month(9), "33.33"))
	void := withTotal("c1", month(10), "999.99")
	mustFinalize(t, st, void)
	if err := st.VoidInvoice(ctx, void.Number, "test"); err != nil {
		t.Fatal(err)
	}
	mustFinalize(t, st, withTotal("c1", month(11), "7.77")) // period starts at `before`: excluded
	mustFinalize(t, st, withTotal("c2", month(9), "0.01"))
	pay := func(customer, amount string, at time.Time, ref string) billing.Payment {
		return billing.Payment{CustomerID: customer, Amount: dec(amount), Currency: "EUR", ReceivedAt: at, Reference: ref}
	}
	if err := st.AddPayments(ctx, []billing.Payment{
		pay("c1", "50.05", day(9, 15), "p1"),
		pay("c1", "83.37", day(11, 1).Add(-time.Second), "p2"),
		pay("c1", "5.00", day(11, 1), "p3"), // at `before`: excluded
		pay("c3", "0.10", day(10, 1), ""),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Balances(ctx, []string{"c1", "c2", "c3", "nobody"}, day(11, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"c1": "0.01", "c2": "0.01", "c3": "-0.10"}
	if len(got) != len(want) {
		t.Errorf("Balances = %v, want %v", got, want)
	}
	for c, w := range want {
		if got[c].Cmp(dec(w)) != 0 {
			t.Errorf("balance of %s = %s, want %s", c, got[c], w)
		}
	}
	ps, err := st.Payments(ctx, []string{"c1", "c3"}, month(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Reference != "p2" || ps[1].CustomerID != "c3" {
		t.Errorf("Payments(October) = %+v, want p2 then c3's", ps)
	}
}

func testDecimalsRoundTrip(t *testing.T, st store.Store) {
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR", TaxRate: dec("0.200")}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPolicies(ctx, []billing.Policy{{Name: "p", Currency: "EUR", Fee: dec("0.0000027")}}); err != nil {
		t.Fatal(err)
	}
	in := inv("c1", month(10), charge("r1", month(10)))
	in.Lines[0].Quantity = dec("744.000000")
	in.Lines[0].UnitPrice = dec("0.0000027")
	in.Lines[0].Amount = dec("0.00")
	in.Subtotal, in.Tax, in.Total = dec("12.50"), dec("2.500"), dec("-0.0000001")
	in.Payments, in.PreviousBalance, in.BalanceDue = dec("0"), dec("1234567890.123456789"), dec("100")
	in.TaxRate = dec("0.20")
	mustFinalize(t, st, in)
	got, err := st.GetInvoice(ctx, in.Number)
	if err != nil {
		t.Fatal(err)
	}
	pairs := []struct{ name, got, want string }{
		{"subtotal", got.Subtotal.String(), "12.50"},
		{"tax", got.Tax.String(), "2.500"},
		{"total", got.Total.String(), "-0.0000001"},
		{"payments", got.Payments.String(), "0"},
		{"previous balance", got.PreviousBalance.String(), "1234567890.123456789"},
		{"balance due", got.BalanceDue.String(), "100"},
		{"tax rate", got.TaxRate.String(), "0.20"},
		{"quantity", got.Lines[0].Quantity.String(), "744.000000"},
		{"unit price", got.Lines[0].UnitPrice.String(), "0.0000027"},
		{"amount", got.Lines[0].Amount.String(), "0.00"},
	}
	cs, err := st.GetCustomers(ctx, []string{"c1"})
	if err != nil || len(cs) != 1 {
		t.Fatalf("GetCustomers = %v, %v", cs, err)
	}
	ps, err := st.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pairs = append(pairs,
		struct{ name, got, want string }{"customer tax rate", cs[0].TaxRate.String(), "0.200"},
		struct{ name, got, want string }{"policy fee", ps["p"].Fee.String(), "0.0000027"},
	)
	if err := st.AddPayments(ctx, []billing.Payment{{CustomerID: "c1", Amount: dec("12.50"), Currency: "EUR", ReceivedAt: day(10, 3)}}); err != nil {
		t.Fatal(err)
	}
	pays, err := st.Payments(ctx, []string{"c1"}, month(10))
	if err != nil || len(pays) != 1 {
		t.Fatalf("Payments = %v, %v", pays, err)
	}
	pairs = append(pairs, struct{ name, got, want string }{"payment", pays[0].Amount.String(), "12.50"})
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s read back as %q, want %q", p.name, p.got, p.want)
		}
	}
}

func testPaymentsReimport(t *testing.T, st store.Store) {
	seed(t, st)
	file := []billing.Payment{
		{CustomerID: "c1", Amount: dec("10.00"), Currency: "EUR", ReceivedAt: day(10, 2), Reference: "bank-1"},
		{CustomerID: "c1", Amount: dec("5.00"), Currency: "EUR", ReceivedAt: day(10, 3), Reference: "bank-2"},
		{CustomerID: "c2", Amount: dec("10.00"), Currency: "EUR", ReceivedAt: day(10, 2), Reference: "bank-1"},
	}
	for i := 0; i < 2; i++ {
		if err := st.AddPayments(ctx, file); err != nil {
			t.Fatalf("import %d: %v", i+1, err)
		}
	}
	ps, err := st.Payments(ctx, []string{"c1", "c2"}, month(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Errorf("after importing the file twice: %d payments, want 3", len(ps))
	}
	// The same reference with another amount is refused, and nothing of the call is stored.
	changed := []billing.Payment{
		{CustomerID: "c3", Amount: dec("1.00"), Currency: "EUR", ReceivedAt: day(10, 2), Reference: "new"},
		{CustomerID: "c1", Amount: dec("11.00"), Currency: "EUR", ReceivedAt: day(10, 2), Reference: "bank-1"},
	}
	if err := st.AddPayments(ctx, changed); err == nil || !strings.Contains(err.Error(), "bank-1") {
		t.Errorf("changed payment under a known reference: err = %v, want a refusal naming bank-1", err)
	}
	if ps, _ := st.Payments(ctx, []string{"c3"}, month(10)); len(ps) != 0 {
		t.Errorf("payments stored despite the refusal: %v", ps)
	}
	// Payments without a reference cannot be recognised: both are kept.
	noRef := billing.Payment{CustomerID: "c3", Amount: dec("1.00"), Currency: "EUR", ReceivedAt: day(10, 2)}
	if err := st.AddPayments(ctx, []billing.Payment{noRef, noRef}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := st.Payments(ctx, []string{"c3"}, month(10)); len(ps) != 2 {
		t.Errorf("payments without reference: %d stored, want 2", len(ps))
	}
	if err := st.AddPayments(ctx, []billing.Payment{{CustomerID: "nobody", Amount: dec("1"), Currency: "EUR", ReceivedAt: day(10, 2)}}); err == nil {
		t.Error("payment of an unknown customer accepted")
	}
}

// --- reference data -------------------------------------------------------------------------------

func testCustomers(t *testing.T, st store.Store) {
	cs := []billing.Customer{
		{ID: "b", Name: "B", Currency: "EUR", Timezone: "Europe/Berlin", Contacts: []string{"x@example.org", "y@example.org"},
			TaxRate: dec("0.19"), Status: billing.Active, Policy: "basic"},
		{ID: "a", Name: "A", Currency: "USD", TaxRate: dec("0"), TaxExempt: true, Status: billing.Frozen},
		{ID: "c", Name: "C", Currency: "EUR", TaxRate: dec("0.20")},
	}
	if err := st.PutCustomers(ctx, cs); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetCustomers(ctx, []string{"c", "nobody", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []billing.Customer{cs[2], cs[0], cs[1]}
	want[0].Status = billing.Active // empty status is stored as active
	if len(got) != 3 {
		t.Fatalf("GetCustomers = %+v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Name != w.Name || g.Currency != w.Currency || g.Timezone != w.Timezone ||
			!reflect.DeepEqual(g.Contacts, w.Contacts) || g.TaxRate.String() != w.TaxRate.String() ||
			g.TaxExempt != w.TaxExempt || g.Status != w.Status || g.Policy != w.Policy {
			t.Errorf("GetCustomers[%d] = %+v, want %+v", i, g, w)
		}
	}
	// Upsert.
	cs[1].Status = billing.Active
	cs[1].Name = "A renamed"
	if err := st.PutCustomers(ctx, cs[1:2]); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetCustomers(ctx, []string{"a"}); len(got) != 1 || got[0].Name != "A renamed" {
		t.Errorf("after upsert: %+v", got)
	}
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "d", Currency: "EUR"}, {ID: "e", Currency: "EURO"}}); err == nil {
		t.Error("invalid customer accepted")
	}
	if got, _ := st.GetCustomers(ctx, []string{"d"}); len(got) != 0 {
		t.Error("customer stored despite a refused batch")
	}
	cs[0].Status = billing.Closed
	if err := st.PutCustomers(ctx, cs[:1]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    store.CustomerFilter
		want []string
	}{
		{store.CustomerFilter{}, []string{"a", "b", "c"}},
		{store.CustomerFilter{Status: billing.Active}, []string{"a", "c"}},
		{store.CustomerFilter{Status: billing.Closed}, []string{"b"}},
		{store.CustomerFilter{IDs: []string{"c", "b", "zz"}}, []string{"b", "c"}},
		{store.CustomerFilter{IDs: []string{"c", "b"}, Status: billing.Active}, []string{"c"}},
	} {
		got, err := st.CustomerIDs(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CustomerIDs(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testPolicies(t *testing.T, st store.Store) {
	ps := []billing.Policy{
		{Name: "basic", Currency: "EUR", Description: "Basic", Fee: dec("10.00"), Rules: []billing.RuleSpec{
			{Type: "os.nova.server", Spec: "flavors:\n  m1.small: 0.02\n"},
			{Type: "os.cinder.volume", Spec: "per_gb_hour: 0.0001\n"},
		}},
		{Name: "empty", Currency: "USD"},
	}
	if err := st.PutPolicies(ctx, ps); err != nil {
		t.Fatal(err)
	}
	ps[1].Description = "updated"
	if err := st.PutPolicies(ctx, ps[1:]); err != nil {
		t.Fatal(err)
	}
	got, err := st.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Policies = %+v", got)
	}
	for _, w := range ps {
		g := got[w.Name]
		if g.Name != w.Name || g.Currency != w.Currency || g.Description != w.Description ||
			g.Fee.String() != w.Fee.String() || !reflect.DeepEqual(g.Rules, w.Rules) {
			t.Errorf("policy %s = %+v, want %+v", w.Name, g, w)
		}
	}
}

func testSubscriptions(t *testing.T, st store.Store) {
	seed(t, st)
	subs, err := st.AddSubscriptions(ctx, []billing.Subscription{
		{CustomerID: "c2", Policy: "basic", Start: day(1, 1)},
		{CustomerID: "c1", Policy: "basic", Start: day(1, 1), End: day(10, 15)},
		{CustomerID: "c1", Policy: "pro", Start: day(10, 15)},
		{CustomerID: "c1", Policy: "old", Start: day(1, 1), End: day(10, 1)}, // ends at the period start
		{CustomerID: "c3", Policy: "later", Start: day(11, 1)},               // starts at the period end
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if s.ID == 0 {
			t.Errorf("subscription %d has no id", i)
		}
	}
	got, err := st.Subscriptions(ctx, []string{"c1", "c2", "c3"}, month(10))
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, s := range got {
		desc = append(desc, s.CustomerID+":"+s.Policy)
	}
	if want := []string{"c1:basic", "c1:pro", "c2:basic"}; !reflect.DeepEqual(desc, want) {
		t.Errorf("Subscriptions(October) = %v, want %v", desc, want)
	}
	if len(got) == 3 && (!got[1].End.IsZero() || !got[0].End.Equal(day(10, 15)) || got[1].ID != subs[2].ID) {
		t.Errorf("subscriptions = %+v", got)
	}
	if _, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "nobody", Policy: "basic", Start: day(1, 1)}}); err == nil {
		t.Error("subscription of an unknown customer accepted")
	}
}

func testListAndGetInvoices(t *testing.T, st store.Store) {
	seed(t, st)
	a := mustFinalize(t, st, inv("c1", month(9), charge("r1", month(9))))
	b := mustFinalize(t, st, inv("c2", month(10)))
	full := inv("c1", month(10), charge("r1", month(10)), credit("r2", rng(day(10, 1), day(10, 2))))
	full.Lines[0].Attributes = map[string]string{"flavor": "m1.small"}
	full.Lines[0].Region = "RegionOne"
	full.Lines[0].Policy = "basic"
	c := mustFinalize(t, st, full)
	if err := st.VoidInvoice(ctx, a, "test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    store.InvoiceFilter
		want []string
	}{
		{"all newest first", store.InvoiceFilter{}, []string{c, b, a}},
		{"customer", store.InvoiceFilter{CustomerID: "c1"}, []string{c, a}},
		{"status", store.InvoiceFilter{Status: invoice.Issued}, []string{c, b}},
		{"period", store.InvoiceFilter{Period: &interval.Range{Start: day(10, 1), End: day(12, 1)}}, []string{c, b}},
		{"limit", store.InvoiceFilter{Limit: 1}, []string{c}},
	} {
		got, err := st.ListInvoices(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(numbers(got), tc.want) {
			t.Errorf("ListInvoices(%s) = %v, want %v", tc.name, numbers(got), tc.want)
		}
		for _, in := range got {
			if len(in.Lines) != 0 || len(in.Ranges) != 0 {
				t.Errorf("ListInvoices returns lines or ranges for %s", in.Number)
			}
		}
	}
	got, err := st.GetInvoice(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Number != c || got.ID != full.ID || got.CustomerID != "c1" || got.CustomerName != "Customer c1" ||
		got.Currency != "EUR" || got.Period != month(10) || !got.IssuedAt.Equal(full.IssuedAt) ||
		got.Kind != invoice.Scheduled || got.Status != invoice.Issued || got.RunID != "run-1" ||
		got.Total.String() != full.Total.String() {
		t.Errorf("GetInvoice = %+v, want %+v", got, full)
	}
	if !reflect.DeepEqual(got.Lines, full.Lines) {
		t.Errorf("lines = %+v\nwant    %+v", got.Lines, full.Lines)
	}
	if len(got.Ranges) != 2 {
		t.Fatalf("ranges = %+v", got.Ranges)
	}
	for i, w := range full.Ranges {
		g := got.Ranges[i]
		if g.ResourceID != w.ResourceID || g.ResourceType != w.ResourceType || g.Kind != w.Kind || g.Range != w.Range || g.ResourceKey == 0 {
			t.Errorf("range %d = %+v, want %+v", i, g, w)
		}
	}
	if _, err := st.GetInvoice(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInvoice(unknown): err = %v, want ErrNotFound", err)
	}
}

func testRuns(t *testing.T, st store.Store) {
	r := store.Run{ID: "run-1", Mode: "scheduled", Period: month(10), StartedAt: day(11, 1), Status: "running"}
	if err := st.StartRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := st.StartRun(ctx, r); err == nil {
		t.Error("a run id was started twice")
	}
	if err := st.FinishRun(ctx, "run-1", "done", `{"invoices": 3}`); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, "nope", "done", "{}"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishRun(unknown): err = %v, want ErrNotFound", err)
	}
}
