package calc

import (
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
)

func day(d int, hms ...int) time.Time {
	t := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d-1)
	if len(hms) > 0 {
		t = t.Add(time.Duration(hms[0]) * time.Hour)
	}
	return t
}

var (
	oct1 = day(1)
	nov1 = day(32)
	dec1 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func rec(id int64, start, end time.Time) billing.Record {
	return billing.Record{ID: id, Version: 1, ResourceID: "vm", ResourceType: "os.nova.server", Start: start, End: end, Attributes: map[string]string{"flavor": "m1.small"}}
}

func set(rs ...interval.Range) interval.Set { return interval.NewSet(rs...) }

func TestPiecesBillWhatWasUsedAndNotBilled(t *testing.T) {
	type want struct {
		r      interval.Range
		credit bool
		rec    int64
	}
	tests := []struct {
		name      string
		ru        store.ResourceUsage
		lower     time.Time
		until     time.Time
		replacing *invoice.Invoice
		want      []want
	}{
		{
			name:  "open record, first invoice: the period only",
			ru:    store.ResourceUsage{Records: []billing.Record{rec(1, day(1).AddDate(0, -1, 0), time.Time{})}, Since: day(1).AddDate(0, -1, 0)},
			lower: oct1, until: nov1,
			want: []want{{interval.Range{Start: oct1, End: nov1}, false, 1}},
		},
		{
			name:  "open record billed last month: this month only, no credit",
			ru:    store.ResourceUsage{Records: []billing.Record{rec(1, day(5), time.Time{})}, Since: day(5), Charged: set(interval.Range{Start: day(5), End: nov1})},
			lower: oct1, until: dec1,
			want: []want{{interval.Range{Start: nov1, End: dec1}, false, 1}},
		},
		{
			name:  "span closed late: the unused, billed part is credited at the record's price",
			ru:    store.ResourceUsage{Records: []billing.Record{rec(1, day(10), day(20))}, Since: day(10), Charged: set(interval.Range{Start: day(10), End: nov1})},
			lower: oct1, until: dec1,
			want: []want{{interval.Range{Start: day(20), End: nov1}, true, 1}},
		},
		{
			name:  "late record for an invoiced month: charged once",
			ru:    store.ResourceUsage{Records: []billing.Record{rec(7, day(5, 3), day(9, 12))}, Since: day(5, 3)},
			lower: oct1, until: dec1,
			want: []want{{interval.Range{Start: day(5, 3), End: day(9, 12)}, false, 7}},
		},
		{
			name: "resize: each record bills its own part",
			ru: store.ResourceUsage{Records: []billing.Record{rec(1, day(1), day(15, 6)), rec(2, day(15, 6), time.Time{})},
				Since: day(1)},
			lower: oct1, until: nov1,
			want: []want{{interval.Range{Start: oct1, End: day(15, 6)}, false, 1}, {interval.Range{Start: day(15, 6), End: nov1}, false, 2}},
		},
		{
			name:  "a credit already given is not given again",
			ru:    store.ResourceUsage{Records: []billing.Record{rec(1, day(10), day(20))}, Since: day(10), Charged: set(interval.Range{Start: day(10), End: nov1}), Credited: set(interval.Range{Start: day(20), End: nov1})},
			lower: oct1, until: dec1,
			want: nil,
		},
		{
			name:  "regenerate: exactly the old ranges, the uncovered rest at the old record's price",
			ru:    store.ResourceUsage{ResourceID: "vm", Records: []billing.Record{rec(1, day(10), day(20))}},
			lower: oct1, until: nov1,
			replacing: &invoice.Invoice{Ranges: []invoice.BilledRange{
				{ResourceID: "vm", Kind: invoice.Charge, Range: interval.Range{Start: day(10), End: nov1}},
				{ResourceID: "other", Kind: invoice.Charge, Range: interval.Range{Start: oct1, End: nov1}},
			}},
			want: []want{{interval.Range{Start: day(10), End: day(20)}, false, 1}, {interval.Range{Start: day(20), End: nov1}, false, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pieces(&tt.ru, tt.lower, tt.until, IndexRanges(tt.replacing))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d pieces %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].r != w.r || got[i].credit != w.credit || got[i].rec.ID != w.rec {
					t.Errorf("piece %d = %v credit=%v rec=%d, want %v credit=%v rec=%d", i, got[i].r, got[i].credit, got[i].rec.ID, w.r, w.credit, w.rec)
				}
			}
		})
	}
}
