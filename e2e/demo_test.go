package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/synthcloud"
	"github.com/govalues/decimal"
)

// goldenProjects are demo projects whose October invoices are kept as golden CSV files:
// p0001 plain, p0002 changes policy mid-month, p0003 pays during the month, p0004's name starts
// with "=", p0006 is in Europe/Zurich with a UTF-8 name, p0007 is billed in USD, p0011 is tax
// exempt.
var goldenProjects = []string{"p0001", "p0002", "p0003", "p0004", "p0006", "p0007", "p0011"}

// TestDemoMonthGolden invoices the demo cloud for October and compares the CSV invoices of a
// handful of projects with testdata/golden (go test ./e2e -update rewrites them).
func TestDemoMonthGolden(t *testing.T) {
	h := newHarness(t)
	h.loadDemo(20)
	run := h.run("2026-10")
	if run.Stats.Failed != 0 || run.Stats.Invoices != 20 {
		t.Fatalf("run: %d invoices, %d failed: %+v", run.Stats.Invoices, run.Stats.Failed, run.Stats.Outcomes)
	}
	for _, id := range goldenProjects {
		o := outcome(t, run, id)
		// The render step writes csv, pdf and xlsx; the CSV carries every figure of the invoice
		// (the documents have their own golden tests in invoice/render).
		var csvFile string
		for _, f := range o.Files {
			if filepath.Ext(f) == ".csv" {
				csvFile = f
			}
		}
		if len(o.Files) != 3 || csvFile == "" {
			t.Fatalf("%s: files %v, want csv, pdf and xlsx", id, o.Files)
		}
		got, err := os.ReadFile(csvFile)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", filepath.Base(csvFile))
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./e2e -update to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s:\n%s", o.Files[0], golden, got)
		}
	}
}

// TestInvoiceTotalsAreSumsOfRoundedLines checks every demo invoice as an accountant would.
func TestInvoiceTotalsAreSumsOfRoundedLines(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.loadDemo(20)
	run := h.run("2026-10")
	for _, o := range run.Stats.Outcomes {
		inv, err := h.st.GetInvoice(ctx, o.Number)
		if err != nil {
			t.Fatal(err)
		}
		sum := dec("0")
		for _, l := range inv.Lines {
			if l.Amount.Scale() != 2 {
				t.Errorf("%s: line amount %s is not rounded to the cent", inv.Number, l.Amount)
			}
			sum, _ = sum.Add(l.Amount)
		}
		tax := invoice.DefaultRounding.Round(mul(inv.Subtotal, inv.TaxRate))
		total, _ := inv.Subtotal.Add(inv.Tax)
		due, _ := inv.PreviousBalance.Add(inv.Total)
		due, _ = due.Sub(inv.Payments)
		switch {
		case sum.Cmp(inv.Subtotal) != 0:
			t.Errorf("%s: lines sum to %s, subtotal %s", inv.Number, sum, inv.Subtotal)
		case tax.Cmp(inv.Tax) != 0:
			t.Errorf("%s: tax %s, want round(%s × %s) = %s", inv.Number, inv.Tax, inv.Subtotal, inv.TaxRate, tax)
		case total.Cmp(inv.Total) != 0:
			t.Errorf("%s: total %s ≠ subtotal + tax %s", inv.Number, inv.Total, total)
		case due.Cmp(inv.BalanceDue) != 0:
			t.Errorf("%s: balance due %s, want %s", inv.Number, inv.BalanceDue, due)
		}
	}
}

func mul(a, b decimal.Decimal) decimal.Decimal {
	p, err := a.Mul(b)
	if err != nil {
		panic(err)
	}
	return p
}

// TestEverySecondIsBilledOnce compares, per resource, the seconds on the demo invoices with the
// seconds the generated trigger records cover in October: nothing lost, nothing twice.
func TestEverySecondIsBilledOnce(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.loadDemo(20)
	run := h.run("2026-10")
	oct := month(t, "2026-10")
	o := synthcloud.Options{Projects: 20, Month: oct, Seed: 1, SpansPerProject: 12}
	cloud := synthcloud.Generate(o)
	want := map[string][]interval.Range{}
	err := cloud.Records(o, func(chunk []billing.Record) error {
		for _, r := range chunk {
			want[r.ResourceID] = append(want[r.ResourceID], r.Range().Intersect(oct))
		}
		return nil
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, oc := range run.Stats.Outcomes {
		inv, err := h.st.GetInvoice(ctx, oc.Number)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range inv.Lines {
			if l.Section == invoice.Usage {
				got[l.ResourceID] += l.Seconds
			}
		}
	}
	for id, rs := range want {
		if w := interval.NewSet(rs...).Seconds(); got[id] != w {
			t.Errorf("resource %s: %d s billed, %d s used", id, got[id], w)
		}
		delete(got, id)
	}
	for id, s := range got {
		t.Errorf("resource %s billed %d s but has no record", id, s)
	}
}
