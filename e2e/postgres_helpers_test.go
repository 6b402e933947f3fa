package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/bilean/bilean/synthcloud"
)

// pgCloud is a synthetic cloud loaded into a fresh PostgreSQL schema, with a configuration file
// for the bilean binary that points at it.
type pgCloud struct {
	t        testing.TB
	url      string
	st       *postgres.Store
	dir      string
	config   string
	projects int
}

// newPGCloud loads projects × spans into a fresh schema and writes a configuration with the
// shipped billing settings and chains (without rendering), batches of batchSize customers.
func newPGCloud(t testing.TB, projects, spans, batchSize int) *pgCloud {
	t.Helper()
	return newPGCloudWith(t, projects, spans, batchSize, "")
}

// newPGCloudWith is newPGCloud with extra configuration appended (e.g. a database: section).
func newPGCloudWith(t testing.TB, projects, spans, batchSize int, extra string) *pgCloud {
	t.Helper()
	url := pgtest.URL(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := synthcloud.Load(ctx, st, synthcloud.Options{Projects: projects, Month: month(t, "2026-10"), Seed: 1, SpansPerProject: spans}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &pgCloud{t: t, url: url, st: st, dir: dir, config: filepath.Join(dir, "bilean.yaml"), projects: projects}
	if err := os.WriteFile(c.config, []byte(pgConfig(t, batchSize)+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// pgConfig is the shipped configuration's billing, numbering and chains, without the handlers
// after finalizing (rendering, email), with batches of batchSize.
func pgConfig(t testing.TB, batchSize int) string {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "etc", "bilean.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "billing:\n  timezone: %s\n  tax_rate: %q\n", cfg.Billing.Timezone, cfg.Billing.TaxRate)
	if cfg.Billing.DefaultPolicy != "" {
		fmt.Fprintf(&b, "  default_policy: %s\n", cfg.Billing.DefaultPolicy)
	}
	fmt.Fprintf(&b, "numbering:\n  format: %q\n", cfg.Numbering.Format)
	fmt.Fprintf(&b, "pipeline:\n  batch_size: %d\n  workers: 2\n  scheduled:\n", batchSize)
	for _, s := range cfg.Pipeline.Scheduled {
		fmt.Fprintf(&b, "    - %s\n", s.Name)
		if s.Name == "finalizing" {
			break
		}
	}
	b.WriteString("  interim:\n")
	for _, s := range cfg.Pipeline.Interim {
		fmt.Fprintf(&b, "    - %s\n", s.Name)
	}
	b.WriteString("log:\n  level: warn\n")
	return b.String()
}

// bileanBinary builds cmd/bilean into the test's temporary folder.
func bileanBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bilean")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/bilean").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a bilean process started by a test.
type proc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan struct{}
	err    error
	killed bool
}

// start runs bin with args against the cloud's database; the process is killed when the test
// ends if it still runs.
func (c *pgCloud) start(bin string, args ...string) *proc {
	c.t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--config", c.config}, args...)...)
	p.cmd.Dir = c.dir
	p.cmd.Env = append(os.Environ(), "BILEAN_DATABASE_URL="+c.url)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and fails the test if it did not exit 0 in time.
func (p *proc) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not finish in %s:\n%s", p.cmd.Args, timeout, p.out.String())
	}
	if p.err != nil {
		t.Fatalf("%v: %v\n%s", p.cmd.Args, p.err, p.out.String())
	}
}

// kill sends SIGKILL and waits for the process to die.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.killed = true
}

// signal sends sig to the process.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v: %v", sig, err)
	}
}

// exited waits for the process to exit, whatever its status, failing the test after timeout.
func (p *proc) exited(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not exit in %s:\n%s", p.cmd.Args, timeout, p.out.String())
		return nil
	}
}

// appName is the application_name of the process's PostgreSQL sessions.
func (p *proc) appName() string { return fmt.Sprintf("bilean[%d]", p.cmd.Process.Pid) }

// sessions counts the process's sessions on the server.
func (c *pgCloud) sessions(p *proc) int {
	return c.count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, p.appName())
}

// waitSessionsGone waits until the server has no session left of a process that is gone. A
// process killed while its COMMIT was on the wire (or being flushed) leaves a server session
// that still commits after the process was reaped: what the database holds is only final once
// those sessions have ended.
func (c *pgCloud) waitSessionsGone(p *proc) {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, "the server to end the sessions of "+p.appName(), func() bool { return c.sessions(p) == 0 })
}

// count returns a single integer from SQL.
func (c *pgCloud) count(q string, args ...any) int {
	c.t.Helper()
	var n int
	if err := c.st.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	return n
}

// checkComplete checks what the issue promises after any mix of concurrent, killed and repeated
// runs: every customer has exactly one live invoice for October, no invoice is partial (each has
// its lines and ranges, and its subtotal is the sum of its lines), and the numbers are exactly
// 1..n of the series, without gap or repeat.
func (c *pgCloud) checkComplete() {
	c.t.Helper()
	if n := c.count(`SELECT count(*) FROM (SELECT customer_id FROM invoices WHERE status = 'issued' AND period_start = '2026-10-01Z' GROUP BY customer_id HAVING count(*) = 1) AS x`); n != c.projects {
		c.t.Errorf("%d customers have exactly one live October invoice, want all %d", n, c.projects)
	}
	if n := c.count(`SELECT count(*) FROM invoices`); n != c.projects {
		c.t.Errorf("%d invoices stored, want %d (one per customer)", n, c.projects)
	}
	if n := c.count(`
SELECT count(*) FROM invoices AS i
WHERE NOT EXISTS (SELECT 1 FROM invoice_lines AS l WHERE l.invoice_id = i.id)
   OR NOT EXISTS (SELECT 1 FROM billed_ranges AS b WHERE b.invoice_id = i.id)
   OR i.subtotal <> (SELECT sum(amount) FROM invoice_lines AS l WHERE l.invoice_id = i.id)`); n != 0 {
		c.t.Errorf("%d partial invoices (no lines, no ranges, or a subtotal that is not the sum of the lines)", n)
	}
	if n := c.count(`
SELECT count(*) FROM (SELECT number, row_number() OVER (ORDER BY number) AS k FROM invoices) AS x
WHERE x.number <> 'INV-2026-' || lpad(x.k::text, 6, '0')`); n != 0 {
		c.t.Errorf("%d invoice numbers are not INV-2026-000001 … %06d in sequence", n, c.projects)
	}
	if n := c.count(`SELECT coalesce(sum(last), 0) FROM invoice_series`); n != c.projects {
		c.t.Errorf("series counter = %d, want %d", n, c.projects)
	}
}
