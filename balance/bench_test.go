package balance

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/govalues/decimal"
)

// BenchmarkBalanceQuery measures Service.Balance (what `bilean balance` computes: one burn-state
// row, one freeze lookup, the arithmetic) on an embedded store holding 100,000 customers. It
// reports the 50th and 99th percentile of single queries and the setup time.
func BenchmarkBalanceQuery(b *testing.B) {
	const customers = 100_000
	cfg, err := config.Parse("bench.yaml", []byte(baseConfig))
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(bg, filepath.Join(b.TempDir(), "bilean.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	setup := time.Now()
	cs := make([]billing.Customer, 0, customers)
	states := make([]store.BurnState, 0, customers)
	asOf := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range customers {
		id := fmt.Sprintf("p%06d", i)
		cs = append(cs, billing.Customer{ID: id, Currency: "EUR"})
		states = append(states, store.BurnState{CustomerID: id, Currency: "EUR", AsOf: asOf,
			Base: decimal.MustNew(int64(1000+i), 2), Rate: decimal.MustNew(int64(1+i%500), 4), OpenSpans: 1 + i%7})
	}
	if err := st.PutCustomers(bg, cs); err != nil {
		b.Fatal(err)
	}
	if err := st.PutBurnStates(bg, states); err != nil {
		b.Fatal(err)
	}
	setupTime := time.Since(setup)
	svc, err := New(st, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	now := asOf.Add(36 * time.Hour)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := cs[(i*7919)%customers].ID
		t0 := time.Now()
		s, err := svc.Balance(bg, id, now)
		lat = append(lat, time.Since(t0))
		if err != nil || s.Rate.IsZero() {
			b.Fatalf("%s: %+v %v", id, s, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(setupTime.Seconds(), "setup-s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
