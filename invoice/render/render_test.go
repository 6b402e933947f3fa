package render

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

var update = flag.Bool("update", false, "rewrite golden files")

func dec(s string) decimal.Decimal { return decimal.MustParse(s) }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// sample is a hand-built October 2026 invoice with one line of every section.
func sample(t *testing.T) *invoice.Invoice {
	t.Helper()
	period, err := interval.Month("2026-10", nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &invoice.Invoice{
		Number:       "INV-2026-000123",
		Kind:         invoice.Scheduled,
		Status:       invoice.Issued,
		CustomerID:   "4f2a9c0e1b7d4e8f9a6b3c2d1e0f9a8b",
		CustomerName: "ACME, \"the\" GmbH",
		Currency:     "EUR",
		Period:       period,
		TaxRate:      dec("0.20"),
		Lines: []invoice.Line{
			{Section: invoice.Recurring, ResourceID: "subscription/7", ResourceType: "subscription",
				Description: "Policy standard, monthly fee", Policy: "standard",
				Start: period.Start, End: period.End, Seconds: 2678400, Quantity: dec("1.000000"),
				Unit: "month", UnitPrice: dec("10.00"), Amount: dec("10.00")},
			{Section: invoice.Usage, ResourceID: "vm-1", ResourceType: "os.nova.server", Region: "RegionOne",
				Description: "Server web-1 (m1.small)", Policy: "standard",
				Start: at("2026-10-01T00:00:00Z"), End: at("2026-10-03T08:15:41Z"), Seconds: 202541,
				Quantity: dec("56.2613888888888889"), Unit: "hour", UnitPrice: dec("0.0250"), Amount: dec("1.41"),
				Attributes: map[string]string{"flavor": "m1.small", "image": "ubuntu-24.04"}},
			{Section: invoice.Usage, ResourceID: "vol-1", ResourceType: "os.cinder.volume", Region: "RegionOne",
				Description: "Volume data\nsecond line", Policy: "standard",
				Start: at("2026-10-02T10:00:00Z"), End: at("2026-10-20T00:00:00Z"), Seconds: 1519200,
				Quantity: dec("42200.000000"), Unit: "GB-hour", UnitPrice: dec("0.00015"), Amount: dec("6.33"),
				Attributes: map[string]string{"size": "100"}},
			{Section: invoice.Adjustment, ResourceID: "fip-1", ResourceType: "os.neutron.floatingip",
				Region: "RegionTwo", Description: "Floating IP, usage reported late for 2026-09",
				Start: at("2026-09-28T00:00:00Z"), End: at("2026-10-01T00:00:00Z"), Seconds: 259200,
				Quantity: dec("72"), Unit: "hour", UnitPrice: dec("0.005"), Amount: dec("0.36")},
			{Section: invoice.Credit, ResourceID: "vm-9", ResourceType: "os.nova.server", Region: "RegionOne",
				Description: "Server deleted earlier than billed", Start: at("2026-09-15T00:00:00Z"),
				End: at("2026-10-01T00:00:00Z"), Seconds: 1382400, Quantity: dec("-500"), Unit: "hour",
				UnitPrice: dec("0.025"), Amount: dec("-12.50")},
		},
		Payments:        dec("100"),
		PreviousBalance: dec("30"),
	}
	if err := inv.Calculate(invoice.DefaultRounding); err != nil {
		t.Fatal(err)
	}
	return inv
}

func render(t *testing.T, o CSVOptions, inv *invoice.Invoice) []byte {
	t.Helper()
	r, err := NewCSV(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Render(&b, inv); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking the change):\ngot\n%s\nwant\n%s", path, got, want)
	}
}

func TestCSVGolden(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		golden string
		opts   CSVOptions
	}{
		{"invoice.csv.golden", CSVOptions{}},
		// Custom columns, ';' and a timezone: what a German accountant's ERP import wants.
		{"invoice_custom.csv.golden", CSVOptions{
			Columns:   []string{"invoice", "customer", "customer_name", "resource_id", "attr:flavor", "description", "start", "end", "quantity", "amount", "currency"},
			Delimiter: ';',
			Timezone:  berlin,
		}},
		{"invoice_nototals.csv.golden", CSVOptions{Columns: []string{"resource_id", "amount"}, OmitTotals: true}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			inv := sample(t)
			got := render(t, tc.opts, inv)
			golden(t, tc.golden, got)
			// Deterministic: a second rendering is byte-identical.
			if again := render(t, tc.opts, inv); !bytes.Equal(got, again) {
				t.Error("second rendering differs")
			}
		})
	}
}

func TestCSVDoesNotRecompute(t *testing.T) {
	inv := sample(t)
	inv.Total = dec("999.99") // inconsistent on purpose: the renderer prints what it is given
	inv.Lines[0].Amount = dec("1.5")
	rows := parse(t, render(t, CSVOptions{Columns: []string{"description", "amount"}}, inv), ',')
	if rows[1][1] != "1.5" {
		t.Errorf("line amount %q, want 1.5 as stored", rows[1][1])
	}
	if got := rows[len(inv.Lines)+3]; got[0] != "Total" || got[1] != "999.99" {
		t.Errorf("total row %q, want Total 999.99", got)
	}
}

func parse(t *testing.T, b []byte, delim rune) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma = delim
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCSVNeutralisesFormulas(t *testing.T) {
	inv := sample(t)
	inv.CustomerName = "-2+3"
	l := &inv.Lines[4]
	l.Description = `=HYPERLINK("http://x")`
	l.ResourceID = "@SUM(A1)"
	l.Region = "\tRegion"
	l.Attributes = map[string]string{"flavor": "+cmd|' /C calc'!A0", "note": "\rx"}
	cols := []string{"customer_name", "resource_id", "region", "description", "attr:flavor", "attr:note",
		"seconds", "quantity", "unit_price", "amount"}
	rows := parse(t, render(t, CSVOptions{Columns: cols}, inv), ',')
	want := []string{"'-2+3", "'@SUM(A1)", "'\tRegion", `'=HYPERLINK("http://x")`, "'+cmd|' /C calc'!A0", "'\rx",
		"1382400", "-500", "0.025", "-12.50"}
	got := rows[5]
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %s: got %q, want %q", cols[i], got[i], want[i])
		}
	}
	// Totals stay numbers too, and the label is ours.
	for _, r := range rows[len(inv.Lines)+1:] {
		if strings.HasPrefix(r[9], "'") || strings.HasPrefix(r[3], "'") {
			t.Errorf("summary row neutralised: %q", r)
		}
	}
}

func TestCSVOptions(t *testing.T) {
	d := CSVOptions{}.WithDefaults()
	if strings.Join(d.Columns, ",") != strings.Join(DefaultCSVColumns, ",") || d.Delimiter != ',' ||
		d.Timezone != time.UTC || d.OmitTotals {
		t.Errorf("defaults = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		opts CSVOptions
		want string
	}{
		{CSVOptions{Columns: []string{"amount", "colour"}}, `csv column "colour": unknown, want one of invoice, customer, customer_name, section, region, resource_type, resource_id, description, policy, start, end, seconds, quantity, unit, unit_price, amount, currency or attr:<name>`},
		{CSVOptions{Columns: []string{"attr:"}}, `csv column "attr:": want attr:<name>, e.g. attr:flavor`},
		{CSVOptions{Columns: []string{"amount", "amount"}}, `csv column "amount": given twice`},
		{CSVOptions{Columns: []string{}}, `csv columns: none given`},
		{CSVOptions{Delimiter: '"'}, `csv delimiter '"': want a character such as ',' or ';' (not a quote or line break)`},
	} {
		_, err := NewCSV(tc.opts)
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewCSV(%+v) = %v, want %s", tc.opts, err, tc.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	reg := Default()
	r, err := reg.Lookup("csv")
	if err != nil || r.Format() != "csv" || r.Extension() != "csv" {
		t.Fatalf("Lookup(csv) = %v, %v", r, err)
	}
	if _, err := reg.Lookup("pdf"); err == nil || err.Error() != `render: unknown format "pdf", want one of csv` {
		t.Errorf("Lookup(pdf) = %v", err)
	}
	if err := reg.Register(r); err == nil {
		t.Error("registered csv twice")
	}
	var empty Registry
	if err := empty.Register(r); err != nil || strings.Join(empty.Formats(), ",") != "csv" {
		t.Errorf("zero registry: %v %v", err, empty.Formats())
	}
}

func TestFileName(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	inv := sample(t)
	berlinOct, _ := interval.Month("2026-10", berlin)
	for _, tc := range []struct {
		template, customer, name string
		period                   interval.Range
		loc                      *time.Location
		want                     string
	}{
		{template: "", want: "4f2a9c0e1b7d4e8f9a6b3c2d1e0f9a8b-2026-10-01-2026-11-01-INV-2026-000123.csv"},
		{template: "{number}_{period}.{ext}", want: "INV-2026-000123_2026-10.csv"},
		{template: "{customer_name} {period}.{ext}", want: "ACME_the_GmbH 2026-10-INV-2026-000123.csv"},
		// The period of a Berlin customer starts at 22:00 UTC the day before.
		{template: "{start}-{end}-{period}_{number}.{ext}", period: berlinOct, loc: berlin, want: "2026-10-01-2026-11-01-2026-10_INV-2026-000123.csv"},
		{template: "{start}.{ext}", period: berlinOct, want: "2026-09-30-INV-2026-000123.csv"},
		// Malicious ids never leave the directory.
		{template: "", customer: "../../etc/passwd", want: "etc_passwd-2026-10-01-2026-11-01-INV-2026-000123.csv"},
		{template: "{customer}.{ext}", customer: "..", want: "_-INV-2026-000123.csv"},
		{template: "{number}-{customer}.{ext}", customer: ".hidden/../..\\x", want: "INV-2026-000123-hidden_._._x.csv"},
		{template: "{customer_name}.{ext}", name: "/", want: "_-INV-2026-000123.csv"},
		{template: "{customer_name}.{ext}", name: "Ärzte\x00 & Co. KG", want: "Ärzte_Co._KG-INV-2026-000123.csv"},
	} {
		inv := *inv
		if tc.customer != "" {
			inv.CustomerID = tc.customer
		}
		if tc.name != "" {
			inv.CustomerName = tc.name
		}
		if !tc.period.Start.IsZero() {
			inv.Period = tc.period
		}
		got, err := FileName(tc.template, &inv, "csv", tc.loc)
		if err != nil || got != tc.want {
			t.Errorf("FileName(%q) for %q = %q, %v; want %q", tc.template, inv.CustomerID, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ template, want string }{
		{"{customer}-{month}.{ext}", `file name template "{customer}-{month}.{ext}": unknown placeholder {month}, want {customer}, {customer_name}, {number}, {start}, {end}, {period}, {ext}`},
		{"{customer.{ext}", `file name template "{customer.{ext}": unbalanced '{'`},
		{"customer}.csv", `file name template "customer}.csv": unbalanced '}'`},
		{"out/{customer}.{ext}", `file name template "out/{customer}.{ext}": "out/" has a path separator`},
		{".{customer}", `file name template ".{customer}": starts with a dot`},
		{"{customer}..{ext}", `file name template "{customer}..{ext}": ".." contains ".."`},
	} {
		if _, err := FileName(tc.template, inv, "csv", nil); err == nil || err.Error() != tc.want {
			t.Errorf("FileName(%q) = %v, want %s", tc.template, err, tc.want)
		}
	}
	draft := *inv
	draft.Number = ""
	if _, err := FileName("{number}.{ext}", &draft, "csv", nil); err == nil ||
		err.Error() != `file name template "{number}.{ext}": {number}: the invoice has no number yet` {
		t.Errorf("draft: %v", err)
	}
}

// TestFileTemplate: the invoice number is always part of a file name. A template without
// {number} gets it before the extension; a template that would put several formats, or two
// invoices that differ only in their number, into one file is refused.
func TestFileTemplate(t *testing.T) {
	inv := sample(t)
	other := *inv
	other.Number = "INV-2026-000124"
	for _, tc := range []struct {
		template string
		exts     []string
		want     string // the effective template, or the error
	}{
		{"", []string{"csv", "pdf", "xlsx"}, DefaultFileName},
		{"{customer_name}-{period}.{ext}", []string{"csv"}, "{customer_name}-{period}-{number}.{ext}"},
		{"{customer}.csv", []string{"csv"}, "{customer}-{number}.csv"},
		{"{customer}.{ext}.gz", []string{"csv", "pdf"}, "{customer}-{number}.{ext}.gz"},
		{"{customer}_final.{ext}", nil, "{customer}_final-{number}.{ext}"},
		{"{start}.{end}", nil, "{start}.{end}-{number}"},
		{"invoice.{ext}", nil, "invoice-{number}.{ext}"},
		{"{number}", []string{"csv"}, "{number}"},
		{"{period}/{number}.{ext}", nil, `file name template "{period}/{number}.{ext}": "/" has a path separator`},
		{"{customer}.csv", []string{"csv", "pdf"}, `file name template "{customer}.csv" has no {ext}: the csv, pdf documents of an invoice would all be written to one file`},
		{"{customer}-{month}.{ext}", nil, `file name template "{customer}-{month}.{ext}": unknown placeholder {month}, want {customer}, {customer_name}, {number}, {start}, {end}, {period}, {ext}`},
	} {
		got, err := FileTemplate(tc.template, tc.exts...)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("FileTemplate(%q, %v) = %q, want %q", tc.template, tc.exts, got, tc.want)
			continue
		}
		if err != nil {
			continue
		}
		// FileName applies the same rule to the configured template: two invoices that differ
		// only in their number get two names, each with its number.
		a, errA := FileName(tc.template, inv, "csv", nil)
		b, errB := FileName(tc.template, &other, "csv", nil)
		if errA != nil || errB != nil || a == b || !strings.Contains(a, inv.Number) || !strings.Contains(b, other.Number) {
			t.Errorf("FileName(%q): %q (%v) and %q (%v), want two names holding their numbers", tc.template, a, errA, b, errB)
		}
		if viaEffective, err := FileName(got, inv, "csv", nil); err != nil || viaEffective != a {
			t.Errorf("FileName(%q) = %q (%v), FileName(%q) = %q: want the same", got, viaEffective, err, tc.template, a)
		}
	}
}
