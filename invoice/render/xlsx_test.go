package render

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bilean/bilean/invoice"
	"github.com/xuri/excelize/v2"
)

func renderXLSX(t testing.TB, o DocumentOptions, inv *invoice.Invoice) []byte {
	t.Helper()
	r, err := NewXLSX(o)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Render(&b, inv); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func openXLSX(t *testing.T, b []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// dumpXLSX lists every non-empty cell of every sheet as the golden files hold them:
// cell, type, raw value, value as formatted by its number format, and formula.
func dumpXLSX(t *testing.T, f *excelize.File) string {
	t.Helper()
	var b strings.Builder
	for _, sh := range f.GetSheetList() {
		fmt.Fprintf(&b, "== %s\n", sh)
		rows, err := f.GetRows(sh, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		for ri, row := range rows {
			for ci := range row {
				cell, _ := excelize.CoordinatesToCellName(ci+1, ri+1)
				raw, _ := f.GetCellValue(sh, cell, excelize.Options{RawCellValue: true})
				shown, _ := f.GetCellValue(sh, cell)
				formula, _ := f.GetCellFormula(sh, cell)
				if raw == "" && formula == "" {
					continue
				}
				typ, _ := f.GetCellType(sh, cell)
				kind := map[excelize.CellType]string{excelize.CellTypeUnset: "number", excelize.CellTypeNumber: "number",
					excelize.CellTypeSharedString: "text", excelize.CellTypeInlineString: "text", excelize.CellTypeFormula: "formula"}[typ]
				if kind == "" {
					kind = fmt.Sprint(typ)
				}
				fmt.Fprintf(&b, "%s\t%s\t%q", cell, kind, raw)
				if shown != raw {
					fmt.Fprintf(&b, "\tshown %q", shown)
				}
				if formula != "" {
					fmt.Fprintf(&b, "\t=%s", formula)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

func TestXLSXGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		inv    *invoice.Invoice
	}{
		{"invoice.xlsx.golden", issued(t)},
		{"invoice_zurich.xlsx.golden", unicodeInvoice(t, "zurich", "Zürich Ünïcode Ltd")},
		{"invoice_tokyo.xlsx.golden", unicodeInvoice(t, "tokyo", "株式会社テスト")},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			f := openXLSX(t, renderXLSX(t, docOptions(), tc.inv))
			golden(t, tc.golden, []byte(dumpXLSX(t, f)))
		})
	}
}

// findLabel returns the row of the Summary cell in column F holding label.
func findLabel(t *testing.T, f *excelize.File, label string) int {
	t.Helper()
	rows, err := f.GetRows(SummarySheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if len(r) > 5 && r[5] == label {
			return i + 1
		}
	}
	t.Fatalf("no %q in the summary", label)
	return 0
}

// TestXLSXTotalsAgree recalculates the total formulas and compares them with the stored
// totals, for the sample (subtotal 10 + 6.33 + 1.41 + 0.36 − 12.50 = 5.60, total 6.72, amount
// due 30 + 6.72 − 100 = −63.28) and for a 300-line invoice.
func TestXLSXTotalsAgree(t *testing.T) {
	for _, inv := range []*invoice.Invoice{issued(t), longInvoice(t, 300)} {
		f := openXLSX(t, renderXLSX(t, docOptions(), inv))
		for _, c := range []struct {
			label string
			want  string
		}{
			{"Subtotal", inv.Subtotal.String()},
			{"Total", inv.Total.String()},
			{"Amount due", inv.BalanceDue.String()},
		} {
			cell := fmt.Sprintf("G%d", findLabel(t, f, c.label))
			formula, _ := f.GetCellFormula(SummarySheet, cell)
			if formula == "" {
				t.Errorf("%s: %s is not a formula", c.label, cell)
			}
			got, err := f.CalcCellValue(SummarySheet, cell, excelize.Options{RawCellValue: true})
			if err != nil {
				t.Fatal(err)
			}
			if !dec(got).Equal(dec(c.want)) {
				t.Errorf("%s: formula %s gives %s, stored %s", c.label, formula, got, c.want)
			}
			cached, _ := f.GetCellValue(SummarySheet, cell, excelize.Options{RawCellValue: true})
			if !dec(cached).Equal(dec(c.want)) {
				t.Errorf("%s: cached value %s, stored %s", c.label, cached, c.want)
			}
		}
		// Detail: one row per line, then the subtotal formula two rows below.
		n := len(inv.Lines)
		cell := fmt.Sprintf("N%d", n+3)
		got, err := f.CalcCellValue(DetailSheet, cell, excelize.Options{RawCellValue: true})
		if err != nil || !dec(got).Equal(inv.Subtotal) {
			t.Errorf("detail subtotal %s = %s, %v; want %s", cell, got, err, inv.Subtotal)
		}
		rows, _ := f.GetRows(DetailSheet)
		if len(rows) != n+3 {
			t.Errorf("detail has %d rows, want %d lines + header + blank + subtotal", len(rows), n)
		}
	}
}

func TestXLSXDetailSheetShape(t *testing.T) {
	inv := issued(t)
	f := openXLSX(t, renderXLSX(t, docOptions(), inv))
	if got := strings.Join(f.GetSheetList(), ","); got != "Summary,Detail" {
		t.Fatalf("sheets %s", got)
	}
	panes, err := f.GetPanes(DetailSheet)
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("detail header not frozen: %+v %v", panes, err)
	}
	tables, err := f.GetTables(DetailSheet)
	if err != nil || len(tables) != 1 || tables[0].Range != "A1:N6" {
		t.Errorf("detail autofilter table: %+v %v", tables, err)
	}
	id, _ := f.GetCellStyle(DetailSheet, "A1")
	if st, err := f.GetStyle(id); err != nil || st.Font == nil || !st.Font.Bold {
		t.Errorf("detail header not bold: %+v %v", st, err)
	}
	// Typed cells: start is a date-time number, seconds an integer, amounts numbers.
	for cell, want := range map[string]string{"G3": "2026-10-01 00:00:00", "H3": "2026-10-03 08:15:41", "I3": "202,541", "N3": "1.41", "N6": "-12.50", "J6": "-500"} {
		got, _ := f.GetCellValue(DetailSheet, cell)
		typ, _ := f.GetCellType(DetailSheet, cell)
		if got != want || (typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber) {
			t.Errorf("%s = %q (type %v), want the number %q", cell, got, typ, want)
		}
	}
}

func TestXLSXNeutralisesFormulas(t *testing.T) {
	inv := issued(t)
	inv.CustomerName = "=cmd|' /C calc'!A0"
	l := &inv.Lines[4]
	l.Description = `=HYPERLINK("http://x")`
	l.ResourceID = "@SUM(A1)"
	l.Region = "+1"
	l.Attributes = map[string]string{"flavor": "-x"}
	f := openXLSX(t, renderXLSX(t, docOptions(), inv))
	dump := dumpXLSX(t, f)
	for _, want := range []string{`"'=cmd|' /C calc'!A0"`, `"'=HYPERLINK(\"http://x\")"`, `"'@SUM(A1)"`, `"'+1"`, `"flavor=-x"`} {
		if !strings.Contains(dump, want) {
			t.Errorf("no neutralised %s in\n%s", want, dump)
		}
	}
	// The credit stays a number.
	if v, _ := f.GetCellValue(DetailSheet, "N6", excelize.Options{RawCellValue: true}); v != "-12.5" {
		t.Errorf("credit amount %q, want the number -12.5", v)
	}
	for _, sh := range f.GetSheetList() {
		rows, _ := f.GetRows(sh)
		for ri, r := range rows {
			for ci := range r {
				cell, _ := excelize.CoordinatesToCellName(ci+1, ri+1)
				if fm, _ := f.GetCellFormula(sh, cell); fm != "" && !strings.HasPrefix(fm, "SUM(") && !strings.HasPrefix(fm, "G") {
					t.Errorf("%s!%s: unexpected formula %q", sh, cell, fm)
				}
			}
		}
	}
}

func TestXLSXStableBytes(t *testing.T) {
	o := docOptions()
	for _, inv := range []*invoice.Invoice{issued(t), unicodeInvoice(t, "tokyo", "株式会社テスト"), longInvoice(t, 300)} {
		a := renderXLSX(t, o, inv)
		for i := 0; i < 3; i++ {
			if b := renderXLSX(t, o, inv); !bytes.Equal(a, b) {
				t.Fatalf("%s: rendering %d differs from the first", inv.CustomerName, i+2)
			}
		}
		f := openXLSX(t, a)
		props, err := f.GetDocProps()
		if err != nil || props.Created != "2026-11-01T02:00:00Z" || props.Modified != "2026-11-01T02:00:00Z" {
			t.Errorf("doc props %+v %v, want the issue date", props, err)
		}
	}
}
