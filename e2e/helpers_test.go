// Package e2e holds Bilean's end-to-end tests and whole-run benchmarks: the real pipeline, the
// real handlers and the real embedded store, fed by the synthetic cloud.
package e2e

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	_ "github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/bilean/bilean/synthcloud"
	"github.com/govalues/decimal"
)

var update = flag.Bool("update", false, "rewrite golden files")

// harness is a fresh embedded store with the shipped configuration.
type harness struct {
	t   testing.TB
	st  *sqlite.Store
	cfg *config.Config
	out string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "etc", "bilean.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "bilean.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{t: t, st: st, cfg: cfg, out: filepath.Join(dir, "invoices")}
}

func (h *harness) env() pipeline.Env {
	return pipeline.Env{Store: h.st, Config: h.cfg, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), OutputDir: h.out}
}

func month(t testing.TB, name string) interval.Range {
	m, err := interval.Month(name, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run executes a scheduled run and fails the test on an infrastructure error.
func (h *harness) run(name string, customers ...string) *pipeline.Run {
	h.t.Helper()
	o := pipeline.Options{Mode: pipeline.Scheduled, Period: month(h.t, name)}
	if len(customers) > 0 {
		o.CustomerIDs = customers
	}
	run, err := pipeline.Execute(context.Background(), h.env(), o)
	if err != nil {
		h.t.Fatal(err)
	}
	return run
}

// loadDemo loads the synthetic cloud.
func (h *harness) loadDemo(projects int) {
	h.t.Helper()
	if _, err := synthcloud.Load(context.Background(), h.st, synthcloud.Options{Projects: projects, Month: month(h.t, "2026-10"), Seed: 1, SpansPerProject: 12}); err != nil {
		h.t.Fatal(err)
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dec(s string) decimal.Decimal { return decimal.MustParse(s) }

// count returns a single integer from SQL, for checking what the store holds.
func (h *harness) count(q string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.st.DB().QueryRow(q, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// outcome returns the run's outcome for a customer.
func outcome(t testing.TB, run *pipeline.Run, customer string) pipeline.Outcome {
	t.Helper()
	for _, o := range run.Stats.Outcomes {
		if o.CustomerID == customer {
			return o
		}
	}
	t.Fatalf("no outcome for %s", customer)
	return pipeline.Outcome{}
}

// policies used by the hand-worked tests: prices easy to check by hand.
var (
	stdPolicy = billing.Policy{Name: "standard", Currency: "EUR", Fee: dec("0"), Rules: []billing.RuleSpec{
		{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.02", m1.large: "0.08"}`},
		{Type: "os.cinder.volume", Spec: `price_per_gb_hour: "0.0001"`},
		{Type: "os.neutron.floatingip", Spec: `price_per_hour: "0.005"`},
	}}
	bizPolicy = billing.Policy{Name: "business", Currency: "EUR", Fee: dec("49.00"), Rules: []billing.RuleSpec{
		{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.018", m1.large: "0.072"}`},
		{Type: "os.neutron.floatingip", Spec: `price_per_hour: "0.0045"`},
	}}
)

// seedCustomer stores one customer "c1" on the given subscriptions.
func (h *harness) seedCustomer(taxRate string, subs ...billing.Subscription) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.PutPolicies(ctx, []billing.Policy{stdPolicy, bizPolicy}); err != nil {
		h.t.Fatal(err)
	}
	c := billing.Customer{ID: "c1", Name: "Customer One", Currency: "EUR", TaxRate: dec(taxRate), TaxExempt: taxRate == "0", Status: billing.Active}
	if err := h.st.PutCustomers(ctx, []billing.Customer{c}); err != nil {
		h.t.Fatal(err)
	}
	for i := range subs {
		subs[i].CustomerID = "c1"
	}
	if _, err := h.st.AddSubscriptions(ctx, subs); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) addRecords(rs ...billing.Record) {
	h.t.Helper()
	for i := range rs {
		if rs[i].CustomerID == "" {
			rs[i].CustomerID = "c1"
		}
		if rs[i].Source == "" {
			rs[i].Source = "test"
		}
	}
	if err := h.st.AddRecords(context.Background(), rs); err != nil {
		h.t.Fatal(err)
	}
}
