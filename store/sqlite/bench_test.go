package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// benchCustomers stores n customers named b0000… and returns their ids.
func benchCustomers(b testing.TB, st *Store, n int) []string {
	b.Helper()
	cs := make([]billing.Customer, n)
	ids := make([]string, n)
	for i := range cs {
		ids[i] = fmt.Sprintf("b%04d", i)
		cs[i] = billing.Customer{ID: ids[i], Currency: "EUR"}
	}
	if err := st.PutCustomers(bg, cs); err != nil {
		b.Fatal(err)
	}
	return ids
}

// benchRecords returns perCustomer records for each customer: resources of 5 consecutive spans
// each (a resize every 6 days through October), the last one open.
func benchRecords(ids []string, perCustomer int) []billing.Record {
	const spans = 5
	out := make([]billing.Record, 0, len(ids)*perCustomer)
	for _, c := range ids {
		for r := 0; r < perCustomer/spans; r++ {
			for s := 0; s < spans; s++ {
				start := day(9, 20).Add(time.Duration(s*6*24) * time.Hour)
				end := start.Add(6 * 24 * time.Hour)
				if s == spans-1 {
					end = time.Time{}
				}
				out = append(out, billing.Record{
					CustomerID: c, ResourceID: fmt.Sprintf("%s-server-%03d", c, r), ResourceType: "os.nova.server",
					Start: start, End: end, Source: "bench",
					Attributes: map[string]string{"flavor": fmt.Sprintf("m1.size%d", s), "region": "RegionOne"},
				})
			}
		}
	}
	return out
}

// BenchmarkAddRecords inserts 100,000 new records (1,000 customers × 100) in calls of 10,000.
func BenchmarkAddRecords(b *testing.B) {
	const chunk = 10_000
	var total time.Duration
	var n int
	for b.Loop() {
		b.StopTimer()
		st := openTemp(b)
		rs := benchRecords(benchCustomers(b, st, 1000), 100)
		b.StartTimer()
		t0 := time.Now()
		for i := 0; i < len(rs); i += chunk {
			if err := st.AddRecords(bg, rs[i:min(i+chunk, len(rs))]); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(t0)
		n += len(rs)
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/total.Seconds(), "records/s")
}

// BenchmarkUsage reads one pipeline batch: 500 customers × 100 unsettled records (20 resources of
// 5 spans each), every resource with a billed range from the previous period.
func BenchmarkUsage(b *testing.B) {
	st := openTemp(b)
	defer st.Close()
	ids := benchCustomers(b, st, 500)
	rs := benchRecords(ids, 100)
	for i := 0; i < len(rs); i += 10_000 {
		if err := st.AddRecords(bg, rs[i:min(i+10_000, len(rs))]); err != nil {
			b.Fatal(err)
		}
	}
	// September invoices: a range per resource, so Charged is filled.
	for _, c := range ids {
		in := &invoice.Invoice{CustomerID: c, Currency: "EUR", Period: month(9)}
		for r := 0; r < 20; r++ {
			in.Ranges = append(in.Ranges, invoice.BilledRange{ResourceID: fmt.Sprintf("%s-server-%03d", c, r),
				Kind: invoice.Charge, Range: month(9)})
		}
		if err := st.Finalize(bg, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: testNumber}); err != nil {
			b.Fatal(err)
		}
	}
	var records int
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		us, err := st.Usage(bg, ids, day(11, 1))
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		records = 0
		for _, u := range us {
			records += len(u.Records)
			if len(u.Charged) != 1 {
				b.Fatalf("resource %s: charged %v", u.ResourceID, u.Charged)
			}
		}
		if records != len(rs) {
			b.Fatalf("Usage returned %d records, want %d", records, len(rs))
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/batch")
	b.ReportMetric(float64(records*b.N)/total.Seconds(), "records/s")
}

// BenchmarkFinalize stores invoices of 20 lines and 20 ranges that settle 100 records each, as the
// pipeline does for every customer of a batch.
func BenchmarkFinalize(b *testing.B) {
	st := openTemp(b)
	defer st.Close()
	ids := benchCustomers(b, st, 1000)
	rs := benchRecords(ids, 100)
	for i := 0; i < len(rs); i += 10_000 {
		if err := st.AddRecords(bg, rs[i:min(i+10_000, len(rs))]); err != nil {
			b.Fatal(err)
		}
	}
	us, err := st.Usage(bg, ids, day(11, 1))
	if err != nil {
		b.Fatal(err)
	}
	byCustomer := map[string][]store.ResourceUsage{}
	for _, u := range us {
		byCustomer[u.CustomerID] = append(byCustomer[u.CustomerID], u)
	}
	n := 0
	t0 := time.Now()
	for b.Loop() {
		c := ids[n%len(ids)]
		period := month(10)
		if n >= len(ids) { // every customer invoiced: bill a later month without settling
			period = interval.Range{Start: day(1, 1).AddDate(0, 2*(n/len(ids)), 0), End: day(1, 1).AddDate(0, 2*(n/len(ids))+1, 0)}
		}
		in := &invoice.Invoice{CustomerID: c, Currency: "EUR", Period: period}
		var settle []billing.Ref
		for _, u := range byCustomer[c] {
			in.Lines = append(in.Lines, invoice.Line{Section: invoice.Usage, ResourceID: u.ResourceID, Start: period.Start, End: period.End,
				Quantity: decimal.MustParse("744"), UnitPrice: decimal.MustParse("0.02"), Amount: decimal.MustParse("14.88")})
			in.Ranges = append(in.Ranges, invoice.BilledRange{ResourceKey: u.ResourceKey, ResourceID: u.ResourceID, Kind: invoice.Charge, Range: period})
			for _, r := range u.Records {
				settle = append(settle, billing.Ref{ID: r.ID, Version: r.Version})
			}
		}
		if err := st.Finalize(bg, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: testNumber, Settle: settle}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "invoices/s")
}
