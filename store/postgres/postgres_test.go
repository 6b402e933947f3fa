package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/govalues/decimal"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"

	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/bilean/bilean/store/storetest"
)

// open returns a store on a fresh schema of the test server.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestContract runs the backend contract suite, the same test functions the embedded store
// passes, against PostgreSQL.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func day(m, d int) time.Time { return time.Date(2026, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

func octInvoice(customer string, ranges ...invoice.BilledRange) *invoice.Invoice {
	in := &invoice.Invoice{Kind: invoice.Scheduled, CustomerID: customer, Currency: "EUR",
		Period: interval.Range{Start: day(10, 1), End: day(11, 1)}, IssuedAt: day(11, 1), Ranges: ranges}
	if err := in.Calculate(invoice.DefaultRounding); err != nil {
		panic(err)
	}
	return in
}

func numFmt(series string, seq int64) string { return fmt.Sprintf("INV-%s-%06d", series, seq) }

// The promise the store is built around: PostgreSQL itself refuses an overlapping live range,
// even when it is written with plain SQL that bypasses the Go code; a void range does not count.
func TestExclusionConstraintRefusesRawOverlap(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	first := octInvoice("c1", invoice.BilledRange{ResourceID: "vm-1", Kind: invoice.Charge, Range: interval.Range{Start: day(10, 1), End: day(10, 20)}})
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: first, Series: "2026", NumberFormat: numFmt}); err != nil {
		t.Fatal(err)
	}
	key := first.Ranges[0].ResourceKey
	db := st.Pool()
	insert := func(kind int, r string) error {
		_, err := db.Exec(ctx, `INSERT INTO billed_ranges (resource_key, invoice_id, kind, during) VALUES ($1, $2, $3, $4::tstzrange)`,
			key, first.ID, kind, r)
		return err
	}
	for _, tc := range []struct {
		name    string
		kind    int
		r       string
		refused bool
	}{
		{"overlapping by one second", 0, "[2026-10-19 23:59:59+00, 2026-10-25 00:00:00+00)", true},
		{"covering", 0, "[2026-09-01 00:00:00+00, 2026-12-01 00:00:00+00)", true},
		{"adjacent (half-open)", 0, "[2026-10-20 00:00:00+00, 2026-10-25 00:00:00+00)", false},
		{"other kind (credit)", 1, "[2026-10-02 00:00:00+00, 2026-10-03 00:00:00+00)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := insert(tc.kind, tc.r)
			var pe *pgconn.PgError
			if tc.refused {
				if !errors.As(err, &pe) || pe.Code != "23P01" || pe.ConstraintName != "billed_ranges_no_overlap" {
					t.Fatalf("raw INSERT of %s: err = %v, want exclusion_violation on billed_ranges_no_overlap", tc.r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("raw INSERT of %s: %v", tc.r, err)
			}
		})
	}
	// Voiding releases: the same overlapping row is accepted once the invoice is void, and the
	// constraint applies again if someone flips a released range back to live.
	if err := st.VoidInvoice(ctx, first.Number, "test"); err != nil {
		t.Fatal(err)
	}
	if err := insert(0, "[2026-10-10 00:00:00+00, 2026-10-11 00:00:00+00)"); err != nil {
		t.Fatalf("insert over a void range: %v", err)
	}
	if _, err := db.Exec(ctx, `UPDATE billed_ranges SET live = true WHERE NOT live`); pgCode(err) != "23P01" {
		t.Errorf("reviving a released overlapping range: err = %v, want exclusion_violation", err)
	}
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Many goroutines finalizing invoices of the same series and the same customers at once: each
// customer is invoiced once, the losers get AlreadyInvoicedError or OverlapError naming the
// winner, and the numbers that were issued are exactly 1..n.
func TestConcurrentFinalizeIsGaplessAndOnce(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	const customers, tries = 20, 4
	var cs []billing.Customer
	for i := range customers {
		cs = append(cs, billing.Customer{ID: fmt.Sprintf("c%02d", i), Currency: "EUR"})
	}
	if err := st.PutCustomers(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		numbers  []string
		refusals int
	)
	for try := range tries {
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Odd tries bill the same range under another period: the exclusion constraint,
				// not the one-invoice-per-period index, has to refuse those.
				in := octInvoice(c.ID, invoice.BilledRange{ResourceID: "vm", Kind: invoice.Charge, Range: interval.Range{Start: day(10, 1), End: day(11, 1)}})
				if try%2 == 1 {
					in.Period = interval.Range{Start: day(10, 2), End: day(11, 1)}
				}
				err := st.Finalize(ctx, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: numFmt})
				var ae *store.AlreadyInvoicedError
				var oe *store.OverlapError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					numbers = append(numbers, in.Number)
				case errors.As(err, &ae) && ae.Invoice != "", errors.As(err, &oe) && oe.Invoice != "":
					refusals++
				default:
					t.Errorf("finalize %s: %v", c.ID, err)
				}
			}()
		}
	}
	wg.Wait()
	if len(numbers) != customers || refusals != customers*(tries-1) {
		t.Fatalf("%d invoices and %d refusals, want %d and %d", len(numbers), refusals, customers, customers*(tries-1))
	}
	sort.Strings(numbers)
	for i, n := range numbers {
		if want := numFmt("2026", int64(i+1)); n != want {
			t.Fatalf("numbers = %v, want INV-2026-000001 … %06d without gaps", numbers, customers)
		}
	}
}

func dec(s string) decimal.Decimal { return decimal.MustParse(s) }
