package templates

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

func TestInvoiceTextShowsLinesAndTotals(t *testing.T) {
	d := decimal.MustParse
	oct := interval.Range{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	inv := &invoice.Invoice{Number: "INV-2026-000007", Status: invoice.Issued, CustomerID: "c1", CustomerName: "Zürich Ünïcode Ltd", Currency: "EUR", Period: oct,
		Lines: []invoice.Line{{Section: invoice.Usage, ResourceType: "os.nova.server", ResourceID: "vm-1", Start: oct.Start, End: oct.End,
			Quantity: d("744.0000001"), Unit: "hour", UnitPrice: d("0.02"), Amount: d("14.88")}},
		Subtotal: d("14.88"), TaxRate: d("0.20"), Tax: d("2.98"), Total: d("17.86"), Payments: d("0.00"), PreviousBalance: d("0.00"), BalanceDue: d("17.86")}
	var b bytes.Buffer
	if err := InvoiceText(&b, inv); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Invoice INV-2026-000007", "Zürich Ünïcode Ltd", "vm-1", "2026-10-01T00:00:00Z", " 744 ", "14.88", "Tax 20%", "Balance due        17.86 EUR"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
