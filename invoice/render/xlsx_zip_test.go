package render

import (
	"bytes"
	"sync"
	"testing"

	"github.com/bilean/bilean/invoice"
)

// TestXLSXConcurrentRendersAgree renders invoices from several goroutines at once, as a run
// with two workers does: the compressed parts shared between workbooks (theme, styles...) and
// the pooled compressors must not leak from one workbook into another, so every rendering
// equals the one made alone. Run it with -race.
func TestXLSXConcurrentRendersAgree(t *testing.T) {
	o := docOptions()
	invs := []*invoice.Invoice{issued(t), unicodeInvoice(t, "tokyo", "株式会社テスト"),
		unicodeInvoice(t, "zurich", "Zürich Ünïcode Ltd"), longInvoice(t, 120)}
	want := make([][]byte, len(invs))
	for i, inv := range invs {
		want[i] = renderXLSX(t, o, inv)
	}
	r, err := NewXLSX(o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				for i := range invs {
					i := (i + g) % len(invs)
					var b bytes.Buffer
					if err := r.Render(&b, invs[i]); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(b.Bytes(), want[i]) {
						t.Errorf("goroutine %d: %s differs from its rendering alone", g, invs[i].CustomerName)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestXLSXColumnWidths checks the widths an accountant sees on both sheets.
func TestXLSXColumnWidths(t *testing.T) {
	f := openXLSX(t, renderXLSX(t, docOptions(), issued(t)))
	for _, c := range []struct {
		sheet, col string
		want       float64
	}{
		{SummarySheet, "A", 46}, {SummarySheet, "B", 24}, {SummarySheet, "G", 15},
		{DetailSheet, "B", 38}, {DetailSheet, "D", 40}, {DetailSheet, "N", 14},
	} {
		if got, err := f.GetColWidth(c.sheet, c.col); err != nil || got != c.want {
			t.Errorf("%s column %s width %v (%v), want %v", c.sheet, c.col, got, err, c.want)
		}
	}
}
