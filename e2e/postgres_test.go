package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two `bilean run --period 2026-10` processes started at the same moment against one PostgreSQL
// database: they share the run and between them invoice every customer exactly once, with
// gapless numbers.
func TestPostgresConcurrentRunsInvoiceOnce(t *testing.T) {
	c := newPGCloud(t, 200, 12, 10)
	bin := bileanBinary(t)
	a := c.start(bin, "run", "--period", "2026-10")
	b := c.start(bin, "run", "--period", "2026-10")
	a.wait(t, 2*time.Minute)
	b.wait(t, 2*time.Minute)
	c.checkComplete()
	issued := issuedOf(t, a.out.String()) + issuedOf(t, b.out.String())
	if issued != c.projects {
		t.Errorf("the two processes issued %d invoices between them, want %d\n--- a:\n%s\n--- b:\n%s", issued, c.projects, a.out.String(), b.out.String())
	}
	if n := c.count(`SELECT count(DISTINCT run_id) FROM invoices`); n != 1 {
		t.Errorf("invoices carry %d run ids, want 1 (the second process joins the first one's run)", n)
	}
	if n := c.count(`SELECT count(*) FROM runs WHERE status = 'done'`); n != 1 {
		t.Errorf("%d runs done, want the one shared run", n)
	}
	// Running again bills nothing twice.
	again := c.start(bin, "run", "--period", "2026-10")
	again.wait(t, time.Minute)
	if n := issuedOf(t, again.out.String()); n != 0 {
		t.Errorf("a third run issued %d invoices, want 0", n)
	}
	c.checkComplete()
}

// A process killed with SIGKILL while it finalizes leaves no partial invoice; running the same
// command again takes over the dead process's batches once their heartbeat is stale and
// completes the set, gapless.
func TestPostgresKilledRunLeavesNoPartialInvoice(t *testing.T) {
	c := newPGCloud(t, 300, 12, 10)
	bin := bileanBinary(t)
	p := c.start(bin, "run", "--period", "2026-10", "--stale-after", "2s")
	waitFor(t, 60*time.Second, "the first invoices", func() bool { return c.count(`SELECT count(*) FROM invoices`) >= 20 })
	p.kill(t) // SIGKILL, then Wait: the process is reaped.
	// The process is gone, but a COMMIT it sent just before (or whose WAL flush was under way)
	// is still carried out by its server session: under load, that commit can land after a
	// count taken here. Count once the server has ended every session of the process.
	reaped := c.count(`SELECT count(*) FROM invoices`)
	c.waitSessionsGone(p)
	got := c.count(`SELECT count(*) FROM invoices`)
	if got != reaped {
		t.Logf("%d invoice(s) committed by the server after the killed process was reaped", got-reaped)
	}
	if got >= c.projects {
		t.Fatalf("the run finished (%d invoices) before it could be killed", got)
	}
	if n := c.count(`SELECT count(*) FROM invoices AS i WHERE NOT EXISTS (SELECT 1 FROM invoice_lines AS l WHERE l.invoice_id = i.id)`); n != 0 {
		t.Errorf("%d invoices without lines after SIGKILL", n)
	}
	if n := c.count(`SELECT count(*) FROM invoice_lines AS l WHERE NOT EXISTS (SELECT 1 FROM invoices AS i WHERE i.id = l.invoice_id)`); n != 0 {
		t.Errorf("%d invoice lines without an invoice after SIGKILL", n)
	}
	claimed := c.count(`SELECT count(*) FROM run_batches WHERE status = 'claimed'`)
	t.Logf("killed with %d of %d invoices stored and %d batches claimed", got, c.projects, claimed)

	rerun := c.start(bin, "run", "--period", "2026-10", "--stale-after", "2s")
	rerun.wait(t, 2*time.Minute)
	c.checkComplete()
	if n := issuedOf(t, rerun.out.String()); n != c.projects-got {
		t.Errorf("the rerun issued %d invoices, want the %d missing", n, c.projects-got)
	}
	if claimed > 0 {
		if n := c.count(`SELECT count(*) FROM run_batches WHERE attempts > 1 AND status = 'done'`); n < claimed {
			t.Errorf("%d batches were taken over, want the %d the killed process held", n, claimed)
		}
	}
}

// Three worker processes share a run; one is killed in the middle of a batch. The others take
// its batch over once the heartbeat is stale, every customer is invoiced once, and `bilean runs
// show` reports the run done with the takeover.
func TestPostgresWorkersTakeOverDeadWorkersBatch(t *testing.T) {
	c := newPGCloud(t, 300, 12, 20)
	bin := bileanBinary(t)
	var ps []*proc
	for range 3 {
		ps = append(ps, c.start(bin, "run", "--period", "2026-10", "--workers", "1", "--stale-after", "2s"))
	}
	victim := ps[0]
	pid := victim.cmd.Process.Pid
	var batch int
	waitFor(t, 60*time.Second, "the first worker to hold a batch with invoices", func() bool {
		// The victim's claimed batch, once some of its customers are invoiced: mid-batch.
		err := c.st.Pool().QueryRow(context.Background(), `
SELECT b.n FROM run_batches AS b
WHERE b.status = 'claimed' AND b.worker LIKE '%:' || $1 || '/%'
  AND EXISTS (SELECT 1 FROM invoices AS i WHERE i.customer_id = ANY(b.customers))`, fmt.Sprint(pid)).Scan(&batch)
		return err == nil
	})
	victim.kill(t)
	c.waitSessionsGone(victim)
	held := c.count(`SELECT count(*) FROM run_batches WHERE status = 'claimed' AND worker LIKE '%:' || $1 || '/%'`, fmt.Sprint(pid))
	if held == 0 {
		t.Fatalf("the killed worker held no batch at its death (batch %d finished in between); output:\n%s", batch, victim.out.String())
	}
	for _, p := range ps[1:] {
		p.wait(t, 2*time.Minute)
	}
	c.checkComplete()
	var worker string
	var attempts int
	if err := c.st.Pool().QueryRow(context.Background(), `SELECT worker, attempts FROM run_batches WHERE n = $1`, batch).Scan(&worker, &attempts); err != nil {
		t.Fatal(err)
	}
	if attempts < 2 || strings.Contains(worker, fmt.Sprintf(":%d/", pid)) {
		t.Errorf("batch %d: worker %s after %d attempts, want it taken over by another worker", batch, worker, attempts)
	}
	// The progress report tells the same story.
	var runID string
	if err := c.st.Pool().QueryRow(context.Background(), `SELECT id FROM runs`).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	show := c.start(bin, "runs", "show", runID)
	show.wait(t, 30*time.Second)
	out := show.out.String()
	for _, want := range []string{"Status     done", fmt.Sprintf("Batches    15: 15 done, 0 claimed, 0 pending"), fmt.Sprintf("Invoices   %d", c.projects)} {
		if !strings.Contains(out, want) {
			t.Errorf("runs show lacks %q:\n%s", want, out)
		}
	}
	list := c.start(bin, "runs", "list")
	list.wait(t, 30*time.Second)
	if !strings.Contains(list.out.String(), runID) || !strings.Contains(list.out.String(), "15/0/0") {
		t.Errorf("runs list:\n%s", list.out.String())
	}
}

// Three worker processes share a run; one is frozen with SIGSTOP inside its finalize
// transaction, idle in transaction while it holds the invoice counter's row lock. The others'
// lock waits time out (lock_timeout) and are retried; the server ends the frozen session
// (idle_in_transaction_session_timeout), which releases the lock and rolls its invoice back;
// the frozen worker's batch is taken over once its heartbeat is stale, and the run completes:
// every customer invoiced once, numbers gapless. Woken with SIGCONT, the frozen worker's late
// commit is refused: no duplicate, no gap.
func TestPostgresFrozenWorkerDoesNotStallTheRun(t *testing.T) {
	c := newPGCloudWith(t, 300, 12, 10, "database:\n  lock_timeout: 300ms\n  idle_in_transaction_session_timeout: 4s\n")
	bin := bileanBinary(t)
	var ps []*proc
	for range 3 {
		ps = append(ps, c.start(bin, "run", "--period", "2026-10", "--workers", "1", "--stale-after", "2s"))
	}
	victim := ps[0]
	t.Cleanup(func() { _ = victim.cmd.Process.Signal(syscall.SIGCONT) })
	// holdsCounter: a session of the victim is idle inside a transaction that bumped the
	// invoice counter (it holds its row lock until it commits).
	holdsCounter := func() bool {
		return c.count(`
SELECT count(*) FROM pg_stat_activity AS a JOIN pg_locks AS l ON l.pid = a.pid
WHERE a.application_name = $1 AND a.state = 'idle in transaction'
  AND l.locktype = 'relation' AND l.relation = 'invoice_series'::regclass AND l.granted`, victim.appName()) > 0
	}
	var frozenAt time.Time
	for attempt := 1; frozenAt.IsZero(); attempt++ {
		if attempt > 50 {
			t.Fatalf("could not stop the victim inside a finalize transaction in %d attempts", attempt-1)
		}
		waitFor(t, 60*time.Second, "the victim inside a finalize transaction", holdsCounter)
		victim.signal(t, syscall.SIGSTOP)
		// What it sent before the stop is processed by now: is it still inside?
		time.Sleep(200 * time.Millisecond)
		if holdsCounter() {
			frozenAt = time.Now()
		} else {
			victim.signal(t, syscall.SIGCONT)
		}
	}
	var frozenBatch int
	if err := c.st.Pool().QueryRow(context.Background(), `SELECT n FROM run_batches WHERE status = 'claimed' AND worker LIKE '%:' || $1 || '/%'`,
		fmt.Sprint(victim.cmd.Process.Pid)).Scan(&frozenBatch); err != nil {
		t.Fatalf("the frozen worker's batch: %v", err)
	}
	issuedBefore := c.count(`SELECT count(*) FROM invoices`)
	t.Logf("victim frozen in a finalize transaction of batch %d, %d invoices stored", frozenBatch, issuedBefore)

	// The two others complete the whole run while the victim stays frozen.
	for _, p := range ps[1:] {
		p.wait(t, 2*time.Minute)
	}
	t.Logf("the others finished %s after the freeze", time.Since(frozenAt).Round(time.Millisecond))
	c.checkComplete()
	if holdsCounter() {
		t.Errorf("the frozen worker's transaction is still open after the run: the server did not end it")
	}
	var worker string
	var attempts int
	if err := c.st.Pool().QueryRow(context.Background(), `SELECT worker, attempts FROM run_batches WHERE n = $1 AND status = 'done'`, frozenBatch).Scan(&worker, &attempts); err != nil {
		t.Fatalf("the frozen worker's batch %d is not done: %v", frozenBatch, err)
	}
	if attempts < 2 || strings.Contains(worker, fmt.Sprintf(":%d/", victim.cmd.Process.Pid)) {
		t.Errorf("batch %d: worker %s after %d attempts, want it taken over", frozenBatch, worker, attempts)
	}
	retried := false
	for _, p := range ps[1:] {
		out := p.out.String()
		if strings.Contains(out, "FAILED") {
			t.Errorf("a worker failed customers:\n%s", out)
		}
		retried = retried || strings.Contains(out, "reason=lock")
	}
	// Whether the others asked for the lock while the victim was frozen depends on where they
	// were (on a loaded machine they may have been feeding); the retry itself is pinned by
	// store/postgres TestFinalizeRetriesALockTimeout.
	t.Logf("a lock wait timed out and was retried: %v", retried)

	// Woken, the frozen worker tries to go on with its transaction: refused.
	victim.signal(t, syscall.SIGCONT)
	err := victim.exited(t, time.Minute)
	c.waitSessionsGone(victim)
	t.Logf("the woken worker exited (%v):\n%s", err, victim.out.String())
	if err != nil {
		t.Errorf("the woken worker: %v (its batch was taken over: it has nothing to fail)", err)
	}
	if n := issuedOf(t, victim.out.String()); n > issuedBefore {
		t.Errorf("the woken worker reports %d invoices issued, more than the %d stored when it froze", n, issuedBefore)
	}
	c.checkComplete()
}

// issuedOf reads "Invoices issued N" from a run's summary.
func issuedOf(t testing.TB, out string) int {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "Invoices issued"); ok {
			var n int
			if _, err := fmt.Sscan(strings.TrimSpace(rest), &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no 'Invoices issued' in the output:\n%s", out)
	return 0
}

// waitFor polls cond every 5 ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
