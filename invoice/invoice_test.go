package invoice

import (
	"time"

	"github.com/bilean/bilean/interval"
	"testing"

	"github.com/govalues/decimal"
)

func d(s string) decimal.Decimal { return decimal.MustParse(s) }

func TestRoundingModes(t *testing.T) {
	tests := []struct {
		mode RoundingMode
		in   string
		want string
	}{
		{HalfUp, "2.345", "2.35"},
		{HalfUp, "-2.345", "-2.35"},
		{HalfUp, "2.3449999", "2.34"},
		{HalfUp, "0.005", "0.01"},
		{HalfUp, "0.0049999999999", "0.00"},
		{HalfUp, "7", "7.00"},
		{HalfEven, "2.345", "2.34"},
		{HalfEven, "2.355", "2.36"},
		{Up, "2.341", "2.35"},
		{Up, "-2.341", "-2.35"},
		{Down, "2.349", "2.34"},
		{Down, "-2.349", "-2.34"},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+" "+tt.in, func(t *testing.T) {
			got := Rounding{Mode: tt.mode, Scale: 2}.Round(d(tt.in))
			if got.String() != tt.want {
				t.Fatalf("Round(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestInvoiceTotalIsSumOfRoundedLines(t *testing.T) {
	// Three lines of 0.333 each round to 0.33: the subtotal is 0.99, not round(0.999) = 1.00.
	r := DefaultRounding
	inv := &Invoice{TaxRate: d("0.20"), Payments: d("0.50"), PreviousBalance: d("10")}
	for range 3 {
		inv.Lines = append(inv.Lines, Line{Amount: r.Round(d("0.333"))})
	}
	if err := inv.Calculate(r); err != nil {
		t.Fatal(err)
	}
	// Tax 0.99 × 0.20 = 0.198 → 0.20; total 1.19; due 10 + 1.19 − 0.50 = 10.69.
	for name, got := range map[string]decimal.Decimal{"subtotal": inv.Subtotal, "tax": inv.Tax, "total": inv.Total, "due": inv.BalanceDue} {
		want := map[string]string{"subtotal": "0.99", "tax": "0.20", "total": "1.19", "due": "10.69"}[name]
		if got.String() != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func TestMergeRangesKeepsOneRangePerContinuousUse(t *testing.T) {
	// Merging is per resource and kind; the store keeps what MergeRanges returns.
	in := []BilledRange{
		{ResourceID: "a", Kind: Charge, Range: rng(0, 10)},
		{ResourceID: "a", Kind: Charge, Range: rng(10, 20)},
		{ResourceID: "a", Kind: Credited, Range: rng(20, 30)},
		{ResourceID: "b", Kind: Charge, Range: rng(5, 6)},
		{ResourceID: "a", Kind: Charge, Range: rng(25, 30)},
	}
	out := MergeRanges(in)
	if len(out) != 4 {
		t.Fatalf("got %d ranges: %+v", len(out), out)
	}
	if out[0].Range != rng(0, 20) {
		t.Fatalf("first range %v", out[0].Range)
	}
}

func rng(a, b int64) interval.Range {
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	return interval.Range{Start: base.Add(time.Duration(a) * time.Second), End: base.Add(time.Duration(b) * time.Second)}
}
