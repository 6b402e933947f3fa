package postgres_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/synthcloud"
)

// benchProjects is BILEAN_BENCH_PROJECTS (the first size when it lists several), else def.
func benchProjects(def int) int {
	if s := os.Getenv("BILEAN_BENCH_PROJECTS"); s != "" {
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == ',' {
				if n, err := strconv.Atoi(s[:i]); err == nil && n > 0 {
					return n
				}
				break
			}
		}
	}
	return def
}

// BenchmarkImportRecords imports the synthetic cloud's trigger records (10,000 projects × ~100
// spans ≈ 1M records; BILEAN_BENCH_PROJECTS sizes it) with AddRecordStream in chunks of 10,000:
// COPY into the staging table, then the set-based upserts, all in one transaction.
func BenchmarkImportRecords(b *testing.B) {
	projects := benchProjects(10_000)
	ctx := context.Background()
	o := synthcloud.Options{Projects: projects, Month: interval.Range{Start: day(10, 1), End: day(11, 1)}, Seed: 1, SpansPerProject: 100}
	cloud := synthcloud.Generate(o)
	for b.Loop() {
		b.StopTimer()
		st := open(b)
		if err := st.PutCustomers(ctx, cloud.Customers); err != nil {
			b.Fatal(err)
		}
		var m0 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		t0 := time.Now()
		n := 0
		err := st.AddRecordStream(ctx, func(add func([]billing.Record) error) error {
			return cloud.Records(o, func(rs []billing.Record) error {
				n += len(rs)
				return add(rs)
			}, synthcloud.LoadChunk)
		})
		took := time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(n), "records")
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(n), "B-alloc/record")
		b.Logf("%d records in %s", n, took.Round(time.Millisecond))
		st.Close()
		b.StartTimer()
	}
}

// BenchmarkFinalize finalizes invoices of 20 lines and 20 ranges (20 resources) with 100 settled
// records each, one transaction per invoice as the finalizing handler does, on one connection
// and then on four concurrent workers; "without-exclusion" drops the exclusion constraint first,
// to show what the database-enforced non-overlap costs.
func BenchmarkFinalize(b *testing.B) {
	for _, tc := range []struct {
		name      string
		exclusion bool
		workers   int
	}{
		{"exclusion/workers=1", true, 1},
		{"exclusion/workers=4", true, 4},
		{"without-exclusion/workers=1", false, 1},
		{"without-exclusion/workers=4", false, 4},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const customers = 2000
			ctx := context.Background()
			st := open(b)
			if !tc.exclusion {
				if _, err := st.Pool().Exec(ctx, `ALTER TABLE billed_ranges DROP CONSTRAINT billed_ranges_no_overlap`); err != nil {
					b.Fatal(err)
				}
			}
			var cs []billing.Customer
			var rs []billing.Record
			for i := range customers {
				id := fmt.Sprintf("b%05d", i)
				cs = append(cs, billing.Customer{ID: id, Currency: "EUR"})
				for r := range 20 {
					for s := range 5 {
						start := day(10, 1).Add(time.Duration(s*6*24) * time.Hour)
						rs = append(rs, billing.Record{CustomerID: id, ResourceID: fmt.Sprintf("vm-%02d", r), ResourceType: "os.nova.server",
							Start: start, End: start.Add(6 * 24 * time.Hour), Attributes: map[string]string{"flavor": "m1.small"}, Source: "bench"})
					}
				}
			}
			if err := st.PutCustomers(ctx, cs); err != nil {
				b.Fatal(err)
			}
			if err := st.AddRecords(ctx, rs); err != nil {
				b.Fatal(err)
			}
			ids := make([]string, customers)
			for i, c := range cs {
				ids[i] = c.ID
			}
			us, err := st.Usage(ctx, ids, day(11, 1))
			if err != nil {
				b.Fatal(err)
			}
			reqs := map[string]*store.FinalizeRequest{}
			for _, u := range us {
				req := reqs[u.CustomerID]
				if req == nil {
					req = &store.FinalizeRequest{Invoice: octInvoice(u.CustomerID), Series: "2026", NumberFormat: numFmt}
					reqs[u.CustomerID] = req
				}
				r := interval.Range{Start: u.Records[0].Start, End: u.Records[len(u.Records)-1].End}
				req.Invoice.Ranges = append(req.Invoice.Ranges, invoice.BilledRange{ResourceKey: u.ResourceKey, ResourceID: u.ResourceID, Kind: invoice.Charge, Range: r})
				req.Invoice.Lines = append(req.Invoice.Lines, invoice.Line{Section: invoice.Usage, ResourceID: u.ResourceID, Start: r.Start, End: r.End,
					Seconds: r.Seconds(), Quantity: dec("720"), Unit: "h", UnitPrice: dec("0.02"), Amount: dec("14.40")})
				for _, rec := range u.Records {
					req.Settle = append(req.Settle, billing.Ref{ID: rec.ID, Version: rec.Version})
				}
			}
			b.ResetTimer()
			next := make(chan string)
			errs := make(chan error, tc.workers)
			t0 := time.Now()
			for range tc.workers {
				go func() {
					for id := range next {
						if err := st.Finalize(ctx, *reqs[id]); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			n := 0
			for i := 0; i < b.N; i++ {
				if i >= customers {
					break // each customer once; b.N beyond that measures nothing new
				}
				next <- ids[i]
				n++
			}
			close(next)
			for range tc.workers {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(t0)
			b.ReportMetric(float64(n)/took.Seconds(), "invoices/s")
			b.ReportMetric(float64(20*n)/took.Seconds(), "ranges/s")
		})
	}
}

// BenchmarkExclusionKeys copies 200,000 billed ranges into three tables, as in
// shared/reference/postgres.md: a plain table, an exclusion constraint keyed on (text, text,
// range) and one keyed on (bigint, range), which is this store's design. It measures the key
// choice alone; BILEAN_BENCH_RANGES sizes it.
func BenchmarkExclusionKeys(b *testing.B) {
	n := 200_000
	if s := os.Getenv("BILEAN_BENCH_RANGES"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	ctx := context.Background()
	for _, tc := range []struct{ name, ddl string }{
		{"plain", `CREATE TABLE r (customer text, resource text, rkey bigint, during tstzrange, invoice bigint);
CREATE INDEX ON r (customer, resource)`},
		{"exclusion-text-keys", `CREATE TABLE r (customer text, resource text, rkey bigint, during tstzrange, invoice bigint,
EXCLUDE USING gist (customer WITH =, resource WITH =, during WITH &&))`},
		{"exclusion-bigint-key", `CREATE TABLE r (customer text, resource text, rkey bigint, during tstzrange, invoice bigint,
EXCLUDE USING gist (rkey WITH =, during WITH &&))`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st := open(b)
				conn, err := st.Pool().Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Exec(ctx, tc.ddl); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0 := time.Now()
				// 2,000 customers × 100 resources, one month each; customer and resource ids
				// shaped like Keystone and Nova UUIDs.
				_, err = conn.CopyFrom(ctx, pgx.Identifier{"r"}, []string{"customer", "resource", "rkey", "during", "invoice"},
					pgx.CopyFromSlice(n, func(i int) ([]any, error) {
						c, r := i/100, i%100
						start := day(10, 1)
						during := pgtype.Range[pgtype.Timestamptz]{
							Lower: pgtype.Timestamptz{Time: start, Valid: true}, Upper: pgtype.Timestamptz{Time: start.AddDate(0, 1, 0), Valid: true},
							LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true}
						return []any{fmt.Sprintf("%032x", c), fmt.Sprintf("%08x-0000-4000-8000-%012x", c, r), int64(i + 1), during, int64(c)}, nil
					}))
				took := time.Since(t0)
				b.StopTimer()
				conn.Release()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
				st.Close()
				b.StartTimer()
			}
		})
	}
}
