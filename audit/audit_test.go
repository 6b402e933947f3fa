package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var oct = interval.New(ts("2026-10-01T00:00:00Z"), ts("2026-11-01T00:00:00Z"))

func TestCheckOverlapsAndCoverage(t *testing.T) {
	rng := func(id string, kind invoice.RangeKind, a, b string) invoice.BilledRange {
		return invoice.BilledRange{ResourceID: id, Kind: kind, Range: interval.New(ts(a), ts(b))}
	}
	octInv := &invoice.Invoice{Number: "INV-1", Ranges: []invoice.BilledRange{rng("vm", invoice.Charge, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")}}
	tests := []struct {
		name    string
		invs    []*invoice.Invoice
		records []billing.Record
		want    []string // "severity check resource" of each finding
	}{
		{"one month within its record", []*invoice.Invoice{octInv},
			[]billing.Record{{ResourceID: "vm", Start: ts("2026-09-01T00:00:00Z")}}, nil},
		{"two invoices bill the same second", []*invoice.Invoice{octInv, {Number: "INV-2", Ranges: []invoice.BilledRange{
			rng("vm", invoice.Charge, "2026-10-31T23:59:59Z", "2026-11-02T00:00:00Z")}}},
			[]billing.Record{{ResourceID: "vm", Start: ts("2026-09-01T00:00:00Z")}}, []string{"error overlap vm"}},
		{"closed after the month was invoiced: a credit is due", []*invoice.Invoice{octInv},
			[]billing.Record{{ResourceID: "vm", Start: ts("2026-09-01T00:00:00Z"), End: ts("2026-10-20T00:00:00Z")}}, []string{"note coverage vm"}},
		{"credited since: nothing left", []*invoice.Invoice{octInv, {Number: "INV-2", Ranges: []invoice.BilledRange{
			rng("vm", invoice.Credited, "2026-10-20T00:00:00Z", "2026-11-01T00:00:00Z")}}},
			[]billing.Record{{ResourceID: "vm", Start: ts("2026-09-01T00:00:00Z"), End: ts("2026-10-20T00:00:00Z")}}, nil},
		{"billed with no record at all", []*invoice.Invoice{octInv}, nil, []string{"error coverage vm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := map[string][]billing.Record{}
			for _, r := range tt.records {
				recs[r.ResourceID] = append(recs[r.ResourceID], r)
			}
			var got []string
			for _, f := range append(CheckOverlaps(tt.invs), CheckCoverage(tt.invs, recs)...) {
				got = append(got, f.Severity+" "+f.Check+" "+f.Resource)
			}
			if strings.Join(got, ";") != strings.Join(tt.want, ";") {
				t.Fatalf("findings %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckNumberingAndTotals(t *testing.T) {
	got := CheckNumbering([]string{"INV-2026-000001", "INV-2026-000002", "INV-2026-000004", "CN-2026-000001", "INV-2027-000001", "INV-2026-000004"})
	var details []string
	for _, f := range got {
		details = append(details, f.Detail)
	}
	want := []string{`series "INV-2026-": number 3 is missing`, `series "INV-2026-": number 4 is used twice`}
	if strings.Join(details, ";") != strings.Join(want, ";") {
		t.Fatalf("numbering %q, want %q", details, want)
	}
	inv := &invoice.Invoice{Number: "INV-1", Subtotal: decimal.MustParse("10.00"), Tax: decimal.MustParse("2.00"), Total: decimal.MustParse("12.00"),
		Lines: []invoice.Line{{Amount: decimal.MustParse("6.00")}, {Amount: decimal.MustParse("4.00")}}}
	if fs := CheckTotals(inv); len(fs) != 0 {
		t.Fatalf("healthy totals: %v", fs)
	}
	inv.Lines[1].Amount = decimal.MustParse("4.01")
	inv.Total = decimal.MustParse("12.01")
	if fs := CheckTotals(inv); len(fs) != 2 || fs[0].Field != "subtotal" || fs[1].Field != "total" {
		t.Fatalf("broken totals: %v", fs)
	}
}

func TestCompareLinesNamesLineAndField(t *testing.T) {
	l := invoice.Line{Section: invoice.Usage, ResourceID: "vm", Start: oct.Start, End: oct.End, Description: "Server",
		Quantity: decimal.MustParse("744"), UnitPrice: decimal.MustParse("0.02"), Amount: decimal.MustParse("14.88")}
	bad := l
	bad.Amount = decimal.MustParse("14.89")
	extra := l
	extra.ResourceID = "vm-2"
	fs := CompareLines("INV-1", []invoice.Line{bad}, []invoice.Line{l, extra})
	if len(fs) != 2 || fs[0].Line != 1 || fs[0].Field != "amount" || fs[0].Stored != "14.89" || fs[0].Derived != "14.88" ||
		!strings.Contains(fs[1].Detail, "missing from the stored invoice") {
		t.Fatalf("findings %v", fs)
	}
}
