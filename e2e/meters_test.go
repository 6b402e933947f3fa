package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bilean/bilean/importer"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
)

// The two example customers of etc/examples/customers.csv.
const (
	acme   = "3f2a9c1e5b7d4e08a1c2b3d4e5f60718" // Acme Cloud GmbH, 19 % tax
	globex = "8b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f" // Globex Research, 20 % tax
)

// importFiles imports files as `bilean import KIND FILE...` does.
func (h *harness) importFiles(kind string, paths ...string) int {
	h.t.Helper()
	n := 0
	for _, p := range paths {
		k, err := importer.ImportFile(context.Background(), h.st, kind, p, importer.Options{ValidateRule: rating.ValidateRuleNode})
		if err != nil {
			h.t.Fatalf("import %s %s: %v", kind, p, err)
		}
		n += k
	}
	return n
}

// writeTemp writes a file for an import.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// meteredCloud imports the shipped policies, the example customers on the metered policy (whose
// meter rule prices network.outgoing.bytes) and the example meter totals, twice.
func meteredCloud(t *testing.T) *harness {
	h := newHarness(t)
	policies, err := filepath.Glob(filepath.Join("..", "etc", "policies", "*.yaml"))
	if err != nil || len(policies) == 0 {
		t.Fatalf("policies: %v %v", policies, err)
	}
	h.importFiles("policies", policies...)
	h.importFiles("customers", filepath.Join("..", "etc", "examples", "customers.csv"))
	h.importFiles("subscriptions", writeTemp(t, "subscriptions.csv", "customer_id,policy,start,end\n"+
		acme+",metered,2026-01-01T00:00:00Z,\n"+globex+",metered,2026-01-01T00:00:00Z,\n"))
	meters := filepath.Join("..", "etc", "examples", "meters.csv")
	for range 2 {
		if n := h.importFiles("meters", meters); n != 3 {
			t.Fatalf("imported %d meter totals, want 3", n)
		}
	}
	if n := h.count(`SELECT COUNT(*) FROM meter_totals`); n != 3 {
		t.Fatalf("%d meter totals stored after importing the file twice, want 3", n)
	}
	return h
}

type trafficLine struct {
	section  invoice.Section
	quantity string
	amount   string
}

func checkInvoice(t *testing.T, h *harness, run *pipeline.Run, customer string, lines []trafficLine, sub, tax, total string) *invoice.Invoice {
	t.Helper()
	o := outcome(t, run, customer)
	if o.Err != "" || o.Number == "" {
		t.Fatalf("%s: outcome %+v", customer, o)
	}
	inv, err := h.st.GetInvoice(context.Background(), o.Number)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Lines) != len(lines) {
		t.Fatalf("%s: %d lines %+v, want %d", customer, len(inv.Lines), inv.Lines, len(lines))
	}
	for i, w := range lines {
		l := inv.Lines[i]
		if l.Section != w.section || l.ResourceType != "meter" || l.Quantity.String() != w.quantity || l.Amount.String() != w.amount {
			t.Errorf("%s line %d = %s %s %s %s %s (%s), want %s meter %s GB %s", customer, i, l.Section, l.ResourceType,
				l.Quantity, l.Unit, l.Amount, l.Description, w.section, w.quantity, w.amount)
		}
	}
	if inv.Subtotal.String() != sub || inv.Tax.String() != tax || inv.Total.String() != total {
		t.Errorf("%s: subtotal %s tax %s total %s, want %s, %s, %s", customer, inv.Subtotal, inv.Tax, inv.Total, sub, tax, total)
	}
	return inv
}

// TestImportedMetersBillTrafficOnce: meter totals imported from a file (no Gnocchi) are billed
// to the cent by the metered policy's meter rule, once: a second run of the month, a run of the
// next month and a re-import of the file bill nothing twice; a total that arrives after its month
// was invoiced is billed on the next invoice as late usage.
func TestImportedMetersBillTrafficOnce(t *testing.T) {
	h := meteredCloud(t)

	// Acme: 1,234,567,890,123 B + 87,654,321,000 B = 1,322,222,211,123 B = 1322.222211123 GB.
	//   The first 100 GB are included (0.00); 1222.222211123 GB beyond them, graduated:
	//   tier 1: 1000 GB × 0.05 = 50.00; tier 2: 222.222211123 GB × 0.03 = 6.66666633369 → 6.67.
	//   Subtotal 56.67; tax 19 % = 10.7673 → 10.77; total 67.44.
	// Globex: 345,678,901,234 B = 345.678901234 GB: 100 included; 245.678901234 GB × 0.05 =
	//   12.2839450617 → 12.28. Tax 20 % = 2.456 → 2.46; total 14.74.
	oct := h.run("2026-10")
	inv := checkInvoice(t, h, oct, acme, []trafficLine{
		{invoice.Usage, "100", "0.00"},
		{invoice.Usage, "1000", "50.00"},
		{invoice.Usage, "222.222211", "6.67"},
	}, "56.67", "10.77", "67.44")
	ports := 0
	for _, br := range inv.Ranges {
		if strings.HasPrefix(br.ResourceID, "meter/network.outgoing.bytes/") && br.Range == month(t, "2026-10") {
			ports++
		}
	}
	if ports != 2 {
		t.Errorf("Acme's invoice records %d meter ranges over October, want one per port: %+v", ports, inv.Ranges)
	}
	checkInvoice(t, h, oct, globex, []trafficLine{
		{invoice.Usage, "100", "0.00"},
		{invoice.Usage, "245.678901", "12.28"},
	}, "12.28", "2.46", "14.74")

	// The same month again: both already invoiced, nothing stored.
	again := h.run("2026-10")
	for _, c := range []string{acme, globex} {
		if o := outcome(t, again, c); o.Number != "" || o.Skip == "" {
			t.Errorf("second run of October for %s: %+v, want it skipped as already invoiced", c, o)
		}
	}

	// The file re-imported and a late total for a second Globex port (12,345,678,901 B): November
	// bills only the late total, as late usage with no included quantity:
	// 12.345678901 GB × 0.05 = 0.61728394505 → 0.62; tax 20 % = 0.124 → 0.12; total 0.74.
	h.importFiles("meters", filepath.Join("..", "etc", "examples", "meters.csv"), writeTemp(t, "late.csv",
		"id,customer_id,meter,resource_id,start,end,quantity,unit\n"+
			"globex-port-2-2026-10,"+globex+",network.outgoing.bytes,port-2,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,12345678901,B\n"))
	nov := h.run("2026-11")
	if o := outcome(t, nov, acme); o.Number != "" || o.Err != "" {
		t.Errorf("November for Acme: %+v, want nothing to bill (October's traffic is billed)", o)
	}
	late := checkInvoice(t, h, nov, globex, []trafficLine{{invoice.Adjustment, "12.345679", "0.62"}}, "0.62", "0.12", "0.74")
	if len(late.Ranges) != 1 || late.Ranges[0].ResourceID != "meter/network.outgoing.bytes/port-2" {
		t.Errorf("November's ranges %+v, want only port-2's", late.Ranges)
	}
	if n := h.count(`SELECT COUNT(*) FROM invoices`); n != 3 {
		t.Errorf("%d invoices, want 3", n)
	}
}

// TestOverlappingImportedMetersFailTheCustomer: two totals of one port's meter under two ids that
// share a second would bill it twice; the customer fails naming both, the others are invoiced.
func TestOverlappingImportedMetersFailTheCustomer(t *testing.T) {
	h := meteredCloud(t)
	h.importFiles("meters", writeTemp(t, "again.csv", "id,customer_id,meter,resource_id,start,end,quantity,unit\n"+
		"acme-port-1-2026-10-second-half,"+acme+",network.outgoing.bytes,7c0e2a1b-4d3f-4a5b-9c8d-1e2f3a4b5c6d,2026-10-16T00:00:00Z,2026-11-01T00:00:00Z,5,GB\n"))
	run := h.run("2026-10")
	o := outcome(t, run, acme)
	if o.Number != "" || !strings.Contains(o.Err, "id acme-port-1-2026-10 ") || !strings.Contains(o.Err, "acme-port-1-2026-10-second-half") || !strings.Contains(o.Err, "overlap") {
		t.Errorf("Acme: %+v, want it failed naming both totals", o)
	}
	if o := outcome(t, run, globex); o.Number == "" {
		t.Errorf("Globex: %+v, want it invoiced", o)
	}
}

// TestRegenerateRepricesImportedMeters: regenerating an invoice that billed imported meter totals
// re-prices exactly those totals (the pricing refuses to go on when one has no total any more).
func TestRegenerateRepricesImportedMeters(t *testing.T) {
	ctx := context.Background()
	h := meteredCloud(t)
	old, err := h.st.GetInvoice(ctx, outcome(t, h.run("2026-10"), acme).Number)
	if err != nil {
		t.Fatal(err)
	}
	var item *pipeline.Item
	if _, err := pipeline.Execute(ctx, h.env(), pipeline.Options{Mode: pipeline.Regenerate, Period: old.Period,
		CustomerIDs: []string{acme}, Replacing: old, OnItem: func(it *pipeline.Item) { item = it }}); err != nil {
		t.Fatal(err)
	}
	if item == nil || item.Err != nil || item.Invoice.Number == "" || item.Invoice.Number == old.Number {
		t.Fatalf("regenerated: %+v", item)
	}
	fresh, err := h.st.GetInvoice(ctx, item.Invoice.Number)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Total.String() != "67.44" || len(fresh.Lines) != 3 || len(fresh.Ranges) != len(old.Ranges) {
		t.Errorf("regenerated invoice: total %s, %d lines, ranges %+v; want 67.44, 3 lines and the old ranges %+v",
			fresh.Total, len(fresh.Lines), fresh.Ranges, old.Ranges)
	}
}
