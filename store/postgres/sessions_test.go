package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
)

func openWith(t *testing.T, url string, o postgres.Options) *postgres.Store {
	t.Helper()
	st, err := postgres.OpenWith(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func show(t *testing.T, st *postgres.Store, name string) string {
	t.Helper()
	var v string
	if err := st.Pool().QueryRow(context.Background(), "SHOW "+name).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", name, err)
	}
	return v
}

// Every session of the pool carries the configured timeouts and keepalive; a setting the URL
// names itself wins.
func TestSessionSettings(t *testing.T) {
	url := pgtest.URL(t)
	st := openWith(t, url, postgres.Options{LockTimeout: 1500 * time.Millisecond, IdleInTransactionSessionTimeout: 7 * time.Second,
		StatementTimeout: 2 * time.Minute, TCPKeepAlive: 20 * time.Second})
	for name, want := range map[string]string{"lock_timeout": "1500ms", "idle_in_transaction_session_timeout": "7s",
		"statement_timeout": "2min", "tcp_keepalives_idle": "20"} {
		if strings.Contains(url, "host=/") && strings.HasPrefix(name, "tcp_") {
			continue // a Unix socket has no TCP keepalive
		}
		if got := show(t, st, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if got := show(t, st, "application_name"); !strings.HasPrefix(got, "bilean[") {
		t.Errorf("application_name = %q, want bilean[PID]", got)
	}
	st2 := openWith(t, url+"&lock_timeout=250", postgres.DefaultOptions())
	if got := show(t, st2, "lock_timeout"); got != "250ms" {
		t.Errorf("lock_timeout with ?lock_timeout=250 in the URL = %s", got)
	}
	if got := show(t, st2, "idle_in_transaction_session_timeout"); got != "1min" {
		t.Errorf("default idle_in_transaction_session_timeout = %s, want 1min", got)
	}
}

// A finalize whose wait for the invoice counter's row lock hits lock_timeout is rolled back and
// retried: it succeeds, with the next number, once the holder lets go.
func TestFinalizeRetriesALockTimeout(t *testing.T) {
	st := openWith(t, pgtest.URL(t), postgres.Options{LockTimeout: 100 * time.Millisecond, IdleInTransactionSessionTimeout: 10 * time.Second})
	ctx := context.Background()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}, {ID: "c2", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	vm := invoice.BilledRange{ResourceID: "vm", Kind: invoice.Charge, Range: interval.Range{Start: day(10, 1), End: day(11, 1)}}
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: octInvoice("c1", vm), Series: "2026", NumberFormat: numFmt}); err != nil {
		t.Fatal(err)
	}
	// Another session holds the counter's row for 800 ms: eight lock timeouts' worth.
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE invoice_series SET last = last WHERE series = '2026'`); err != nil {
		t.Fatal(err)
	}
	release := time.AfterFunc(800*time.Millisecond, func() { _ = tx.Rollback(ctx) })
	defer release.Stop()
	start := time.Now()
	in := octInvoice("c2", vm)
	if err := st.Finalize(ctx, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: numFmt}); err != nil {
		t.Fatalf("finalize behind a held lock: %v", err)
	}
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("finalized in %s while the counter was held for 800ms", took)
	}
	if in.Number != numFmt("2026", 2) {
		t.Errorf("number %s, want %s", in.Number, numFmt("2026", 2))
	}
}

// Inside a batch claim, Finalize checks in its transaction that the claim still holds: a worker
// whose batch was taken over cannot commit.
func TestFinalizeRefusesALostClaim(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	run, _, err := st.OpenSharedRun(ctx, "scheduled 2026-10", store.Run{ID: "r1", Mode: "scheduled", Period: interval.Range{Start: day(10, 1), End: day(11, 1)}}, []string{"c1"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := st.ClaimBatch(ctx, run.ID, "old", time.Hour)
	if err != nil || old == nil {
		t.Fatalf("claim: %v %v", old, err)
	}
	// The old worker froze; its heartbeat went stale; "new" took the batch over.
	if _, err := st.Pool().Exec(ctx, `UPDATE run_batches SET heartbeat_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	nb, _, err := st.ClaimBatch(ctx, run.ID, "new", time.Minute)
	if err != nil || nb == nil || nb.Attempts != 2 {
		t.Fatalf("takeover: %+v %v", nb, err)
	}
	vm := invoice.BilledRange{ResourceID: "vm", Kind: invoice.Charge, Range: interval.Range{Start: day(10, 1), End: day(11, 1)}}
	late := store.WithBatchClaim(ctx, store.BatchClaim{RunID: run.ID, N: old.N, Worker: "old"})
	err = st.Finalize(late, store.FinalizeRequest{Invoice: octInvoice("c1", vm), Series: "2026", NumberFormat: numFmt})
	if !errors.Is(err, store.ErrLostClaim) {
		t.Fatalf("finalize under a lost claim: %v, want ErrLostClaim", err)
	}
	var n int
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM invoices) + (SELECT coalesce(sum(last), 0) FROM invoice_series)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused finalize left %d invoices and numbers (%v)", n, err)
	}
	cur := store.WithBatchClaim(ctx, store.BatchClaim{RunID: run.ID, N: nb.N, Worker: "new"})
	in := octInvoice("c1", vm)
	if err := st.Finalize(cur, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: numFmt}); err != nil {
		t.Fatal(err)
	}
	if in.Number != numFmt("2026", 1) {
		t.Errorf("number %s", in.Number)
	}
}
