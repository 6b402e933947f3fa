package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
	"pgregory.net/rapid"
)

// TestRandomHistoriesAreBilledExactlyOnce draws histories of floating IPs (a flat 0.005 per hour,
// per second) whose spans straddle months between July and December, some closed only after
// their months were invoiced, and runs the months August to December in a random order, with an
// interim invoice at a random second in between. Whatever the order:
//   - every second of every span up to the last run's end is billed exactly once (the live billed
//     ranges of each resource are its spans, no more, no less);
//   - Σ live invoice totals equals the exact price of the whole history, to within half a cent
//     per line (each line is rounded once);
//   - the interim invoice at T plus the invoices issued before T equal the exact price of the
//     history up to T, within the same rounding.
func TestRandomHistoriesAreBilledExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("the full pass runs it; the race pass (-short) would take minutes")
	}
	jul1 := ts("2026-07-01T00:00:00Z")
	jan1 := ts("2027-01-01T00:00:00Z")
	price := dec("0.005")
	months := []string{"2026-08", "2026-09", "2026-10", "2026-11", "2026-12"}
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(t)
		h.seedCustomer("0", billing.Subscription{Policy: "standard", Start: ts("2026-01-01T00:00:00Z")})
		span := int64(jan1.Sub(jul1) / time.Second)
		n := rapid.IntRange(1, 5).Draw(rt, "resources")
		var recs []billing.Record
		for i := 0; i < n; i++ {
			a := rapid.Int64Range(0, span-2).Draw(rt, "start")
			b := rapid.Int64Range(a+1, span).Draw(rt, "end")
			r := billing.Record{ResourceID: fmt.Sprintf("fip-%d", i), ResourceType: "os.neutron.floatingip",
				Start: jul1.Add(time.Duration(a) * time.Second), End: jul1.Add(time.Duration(b) * time.Second)}
			recs = append(recs, r)
		}
		// Each span is first stored open; it is closed before a randomly chosen run.
		closeBefore := make([]int, n)
		for i := range recs {
			open := recs[i]
			open.End = time.Time{}
			h.addRecords(open)
			closeBefore[i] = rapid.IntRange(0, len(months)).Draw(rt, "close before run")
		}
		order := rapid.Permutation(months).Draw(rt, "order")
		lines := 0
		for k, m := range order {
			for i := range recs {
				if closeBefore[i] == k {
					h.addRecords(recs[i])
				}
			}
			run := h.run(m)
			if run.Stats.Failed != 0 {
				rt.Fatalf("run %s failed: %+v", m, run.Stats.Outcomes)
			}
			lines += run.Stats.Lines
		}
		// An interim invoice at a random second T of January, when every month up to December is
		// invoiced: with the live invoices it prices the store's history up to T, where spans whose
		// close has not arrived yet still run at T (exact to within half a cent per line).
		T := jan1.Add(time.Duration(rapid.Int64Range(1, 31*24*3600-1).Draw(rt, "T")) * time.Second)
		interim := h.interim(rt, T)
		atT := decimal.Zero
		for i, r := range recs {
			end := r.End
			if closeBefore[i] == len(months) {
				end = T // still open in the store
			}
			c, _ := price.Mul(decimal.MustNew(int64(end.Sub(r.Start)/time.Second), 0))
			c, _ = c.Quo(decimal.MustNew(3600, 0))
			atT, _ = atT.Add(c)
		}
		sum, _ := h.liveTotal(rt).Add(interim.Total)
		d, _ := sum.Sub(atT)
		tolT, _ := decimal.MustParse("0.005").Mul(decimal.MustNew(int64(lines+len(interim.Lines))+1, 0))
		if d.Abs().Cmp(tolT) > 0 {
			rt.Fatalf("at %s: invoices + interim = %s, history up to T costs %s: off by %s", T.Format(time.RFC3339), sum, atT, d)
		}
		for i := range recs {
			if closeBefore[i] == len(months) {
				h.addRecords(recs[i])
			}
		}
		// Once every span is closed, one more December-or-later pass bills what is left (credits
		// for spans closed late, usage run before their months were invoiced).
		final := h.run("2027-01")
		lines += final.Stats.Lines
		// The exact price of the history up to Feb 1 (every span ends before Jan 1).
		exact := decimal.Zero
		for _, r := range recs {
			c, _ := price.Mul(decimal.MustNew(int64(r.End.Sub(r.Start)/time.Second), 0))
			c, _ = c.Quo(decimal.MustNew(3600, 0))
			exact, _ = exact.Add(c)
		}
		total := h.liveTotal(rt)
		diff, _ := total.Sub(exact)
		tol, _ := decimal.MustParse("0.005").Mul(decimal.MustNew(int64(lines)+1, 0))
		if diff.Abs().Cmp(tol) > 0 {
			rt.Fatalf("invoiced %s, history costs %s (%d lines): off by %s", total, exact, lines, diff)
		}
		// Live billed seconds per resource: the span, once.
		for _, r := range recs {
			var charged, credited int64
			rows, err := h.st.DB().Query(`SELECT b.kind, COALESCE(SUM(b.end_at - b.start_at), 0) FROM billed_ranges b JOIN resources x ON x.key = b.resource_key
WHERE x.resource_id = ? AND b.void = 0 GROUP BY b.kind`, r.ResourceID)
			if err != nil {
				rt.Fatal(err)
			}
			for rows.Next() {
				var kind string
				var s int64
				if err := rows.Scan(&kind, &s); err != nil {
					rt.Fatal(err)
				}
				if kind == string(invoice.Credited) {
					credited += s
				} else {
					charged += s
				}
			}
			rows.Close()
			if want := int64(r.End.Sub(r.Start) / time.Second); charged-credited != want {
				rt.Fatalf("%s %s: billed %d s net (%d charged, %d credited), want %d", r.ResourceID, interval.New(r.Start, r.End), charged-credited, charged, credited, want)
			}
		}
	})
}

// liveTotal sums the totals of the live issued invoices.
func (h *harness) liveTotal(t interface{ Fatal(...any) }) decimal.Decimal {
	sum := decimal.Zero
	rows, err := h.st.DB().Query(`SELECT total FROM invoices WHERE status = 'issued'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		sum, _ = sum.Add(decimal.MustParse(s))
	}
	return sum
}

// interim runs the interim chain for c1 up to T and returns its invoice.
func (h *harness) interim(t interface{ Fatal(...any) }, T time.Time) *invoice.Invoice {
	var item *pipeline.Item
	_, err := pipeline.Execute(context.Background(), h.env(), pipeline.Options{
		Mode: pipeline.Interim, Period: interval.MonthOf(T, time.UTC), Until: T, Now: T,
		CustomerIDs: []string{"c1"}, OnItem: func(it *pipeline.Item) { item = it },
	})
	if err != nil || item == nil || item.Err != nil || item.Invoice == nil {
		t.Fatal(fmt.Sprintf("interim at %s: %v %+v", T, err, item))
	}
	return item.Invoice
}
