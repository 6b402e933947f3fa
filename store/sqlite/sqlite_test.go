package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/storetest"
	"github.com/govalues/decimal"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "bilean.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

var bg = context.Background()

func day(m, d int) time.Time { return time.Date(2026, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

func month(m int) interval.Range { return interval.Range{Start: day(m, 1), End: day(m+1, 1)} }

// billOctober stores customer c1 and an invoice charging resource r1 over October; it returns
// the invoice number, its id and the resource key.
func billOctober(t *testing.T, st *Store) (number string, invoiceID, key int64) {
	t.Helper()
	if err := st.PutCustomers(bg, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	in := &invoice.Invoice{Kind: invoice.Scheduled, CustomerID: "c1", Currency: "EUR", Period: month(10),
		Ranges: []invoice.BilledRange{{ResourceID: "r1", ResourceType: "os.nova.server", Kind: invoice.Charge, Range: month(10)}}}
	if err := st.Finalize(bg, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: testNumber}); err != nil {
		t.Fatal(err)
	}
	return in.Number, in.ID, in.Ranges[0].ResourceKey
}

// The trigger refuses an overlapping live range even when SQL bypasses the Go code.
func TestTriggerRefusesRawOverlap(t *testing.T) {
	st := openTemp(t)
	defer st.Close()
	number, invID, key := billOctober(t, st)
	insert := func(kind string, start, end time.Time, void int) error {
		_, err := st.DB().ExecContext(bg, `
INSERT INTO billed_ranges (customer_id, resource_key, invoice_id, kind, start_at, end_at, void)
VALUES ('c1', ?, ?, ?, ?, ?, ?)`, key, invID, kind, start.Unix(), end.Unix(), void)
		return err
	}
	for _, tc := range []struct {
		name       string
		kind       string
		start, end time.Time
		void       int
		refused    bool
	}{
		{"overlapping", "charge", day(10, 31), day(11, 2), 0, true},
		{"inside", "charge", day(10, 5), day(10, 6), 0, true},
		{"covering", "charge", day(9, 1), day(12, 1), 0, true},
		{"void rows never block", "charge", day(10, 5), day(10, 6), 1, false},
		{"adjacent", "charge", day(11, 1), day(11, 2), 0, false},
		{"credit kind", "credit", day(10, 5), day(10, 6), 0, false},
		{"overlapping the adjacent one", "charge", day(11, 1).Add(-time.Second), day(11, 1).Add(time.Second), 0, true},
	} {
		err := insert(tc.kind, tc.start, tc.end, tc.void)
		switch {
		case tc.refused && err == nil:
			t.Errorf("%s: raw INSERT accepted", tc.name)
		case tc.refused && !strings.Contains(err.Error(), overlapTag):
			t.Errorf("%s: err = %v, want the overlap message (Finalize then names %s through NameOverlap)", tc.name, err, number)
		case !tc.refused && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := insert("charge", day(12, 2), day(12, 1), 0); err == nil {
		t.Error("range ending before it starts accepted")
	}
	if err := insert("charge", day(12, 1), day(12, 1), 0); err == nil {
		t.Error("empty range accepted")
	}

	// Reviving the void row, or stretching a live one over another, is refused by the update trigger.
	if _, err := st.DB().ExecContext(bg, `UPDATE billed_ranges SET void = 0 WHERE void = 1`); err == nil ||
		!strings.Contains(err.Error(), overlapTag) {
		t.Errorf("reviving an overlapping void range: err = %v", err)
	}
	if _, err := st.DB().ExecContext(bg, `UPDATE billed_ranges SET end_at = ? WHERE invoice_id = ? AND kind = 'charge' AND start_at = ?`,
		day(11, 5).Unix(), invID, day(10, 1).Unix()); err == nil || !strings.Contains(err.Error(), overlapTag) {
		t.Errorf("stretching a range over the next one: err = %v", err)
	}
	// Voiding the October range frees it for a raw insert.
	if _, err := st.DB().ExecContext(bg, `UPDATE billed_ranges SET void = 1 WHERE invoice_id = ? AND start_at = ?`, invID, day(10, 1).Unix()); err != nil {
		t.Fatal(err)
	}
	if err := insert("charge", day(10, 5), day(10, 7), 0); err != nil {
		t.Errorf("insert over a void range: %v", err)
	}
}

// The partial unique index refuses a second live scheduled invoice even from raw SQL.
func TestUniqueLiveScheduledInvoiceRaw(t *testing.T) {
	st := openTemp(t)
	defer st.Close()
	billOctober(t, st)
	_, err := st.DB().ExecContext(bg, `
INSERT INTO invoices (number, kind, status, customer_id, currency, period_start, period_end, issued_at,
    subtotal, tax_rate, tax, total, payments, previous_balance, balance_due)
SELECT 'RAW-1', 'scheduled', 'issued', customer_id, currency, period_start, period_end, issued_at,
    '0', '0', '0', '0', '0', '0', '0' FROM invoices`)
	if err == nil {
		t.Error("second live scheduled invoice for the same period accepted")
	}
}

// Opening the same file twice applies nothing the second time and keeps the data.
func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bilean.db")
	st, err := Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutCustomers(bg, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(bg, st.DB()); err != nil {
		t.Fatalf("Migrate on a migrated database: %v", err)
	}
	st.Close()
	st, err = Open(bg, path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer st.Close()
	ids, err := st.CustomerIDs(bg, store.CustomerFilter{})
	if err != nil || len(ids) != 1 {
		t.Errorf("after reopening: ids %v, err %v", ids, err)
	}
	var mode string
	if err := st.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := st.DB().QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

// A path with URI metacharacters is a plain file name.
func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%d")
	path := filepath.Join(dir, "bilean.db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at %s", path)
	}
}

// Two processes' worth of writers on one file: every finalize waits for the write lock and the
// numbers stay gapless and unique.
func TestConcurrentFinalizeKeepsNumbersGapless(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bilean.db")
	a, err := Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 40
	var cs []billing.Customer
	for i := range n {
		cs = append(cs, billing.Customer{ID: fmt.Sprintf("c%02d", i), Currency: "EUR"})
	}
	if err := a.PutCustomers(bg, cs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	numbers := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			in := &invoice.Invoice{CustomerID: cs[i].ID, Currency: "EUR", Period: month(10),
				Ranges: []invoice.BilledRange{{ResourceID: "shared-name", Kind: invoice.Charge, Range: month(10)}}}
			errs[i] = st.Finalize(bg, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: testNumber})
			numbers[i] = in.Number
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("finalize %d: %v", i, errs[i])
		}
		seen[numbers[i]] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[testNumber("2026", int64(i))] {
			t.Errorf("number %s missing", testNumber("2026", int64(i)))
		}
	}
}

// A refused finalize hands back *store.OverlapError unwrapped enough for errors.As, with the
// range it tried to store.
func TestOverlapErrorDetails(t *testing.T) {
	st := openTemp(t)
	defer st.Close()
	number, _, _ := billOctober(t, st)
	r := interval.Range{Start: day(10, 30), End: day(11, 30)}
	in := &invoice.Invoice{CustomerID: "c1", Currency: "EUR", Period: month(11), Total: decimal.MustParse("1.00"),
		Ranges: []invoice.BilledRange{{ResourceID: "r1", Kind: invoice.Charge, Range: r}}}
	err := st.Finalize(bg, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: testNumber})
	var oe *store.OverlapError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v", err)
	}
	want := store.OverlapError{CustomerID: "c1", ResourceID: "r1", Range: r, Invoice: number}
	if *oe != want {
		t.Errorf("OverlapError = %+v, want %+v", *oe, want)
	}
}

// The hot queries must stay index lookups driven by their JSON parameter: a full scan of
// usage_records or billed_ranges would make a batch cost grow with the whole history.
func TestHotQueriesUseIndexes(t *testing.T) {
	st := openTemp(t)
	defer st.Close()
	keys := `{"1": 2}`
	pairs := `[["c1", "r1"]]`
	for _, tc := range []struct {
		name string
		q    string
		args []any
	}{
		{"usage resources", usageResourcesSQL, []any{`["c1"]`, 1}},
		{"usage records", usageRecordsSQL, []any{keys, 1}},
		{"usage ranges", usageRangesSQL, []any{keys}},
		{"record resources", recordResourcesSQL, []any{pairs}},
		{"settle", settleSQL, []any{`[[1, 1]]`, "c1"}},
		{"unsettle", unsettleSQL, []any{1}},
		{"upsert", upsertSQL(2), make([]any, 12)},
		{"meter totals", meterTotalsSQL, []any{`["c1"]`, 1, 2}},
	} {
		name, q := tc.name, tc.q
		rows, err := st.DB().QueryContext(bg, "EXPLAIN QUERY PLAN "+q, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		t.Logf("%s:\n  %s", name, strings.Join(plan, "\n  "))
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "VIRTUAL TABLE") &&
				!strings.Contains(step, "VALUES CLAUSE") && step != "SCAN u" {
				t.Errorf("%s: plan scans a table: %q\n%s", name, step, strings.Join(plan, "\n"))
			}
		}
	}
}

// testNumber formats invoice numbers in these tests: INV-<series>-<seq:06>.
func testNumber(series string, seq int64) string { return fmt.Sprintf("INV-%s-%06d", series, seq) }
