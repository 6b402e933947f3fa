package balance

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/govalues/decimal"
)

var bg = context.Background()

func d(s string) decimal.Decimal { return decimal.MustParse(s) }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const baseConfig = `
billing:
  tax_rate: "0"
  default_policy: standard
pipeline:
  scheduled: [subscription_feeding, subscription_tree, rule, invoice_calculation, finalizing]
  interim: [subscription_feeding, subscription_tree, rule, invoice_calculation]
`

// fixture is a real embedded store, the real pipeline and a Service on a settable clock.
type fixture struct {
	st  *sqlite.Store
	cfg *config.Config
	svc *Service
	now time.Time
}

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(baseConfig+extra))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(bg, filepath.Join(t.TempDir(), "bilean.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, cfg: cfg}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if f.svc, err = New(st, cfg, log); err != nil {
		t.Fatal(err)
	}
	f.svc.Now = func() time.Time { return f.now }
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (f *fixture) policy(t *testing.T, name, fee string, rules ...billing.RuleSpec) {
	t.Helper()
	if err := f.st.PutPolicies(bg, []billing.Policy{{Name: name, Currency: "EUR", Fee: d(fee), Rules: rules}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) customer(t *testing.T, c billing.Customer) {
	t.Helper()
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if err := f.st.PutCustomers(bg, []billing.Customer{c}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) records(t *testing.T, rs ...billing.Record) {
	t.Helper()
	if err := f.st.AddRecords(bg, rs); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pay(t *testing.T, cust, amount string, when time.Time, ref string) {
	t.Helper()
	if err := f.st.AddPayments(bg, []billing.Payment{{CustomerID: cust, Amount: d(amount), Currency: "EUR", ReceivedAt: when, Reference: ref}}); err != nil {
		t.Fatal(err)
	}
}

// interimBalance is −BalanceDue of a real interim run for the customer up to t.
func (f *fixture) interimBalance(t *testing.T, cust string, until time.Time) decimal.Decimal {
	t.Helper()
	var item *pipeline.Item
	_, err := pipeline.Execute(bg, pipeline.Env{Store: f.st, Config: f.cfg, Log: slog.New(slog.DiscardHandler)}, pipeline.Options{
		Mode: pipeline.Interim, Period: interval.MonthOf(until, time.UTC), Until: until, Now: until,
		CustomerIDs: []string{cust}, OnItem: func(it *pipeline.Item) { item = it },
	})
	if err != nil {
		t.Fatal(err)
	}
	if item == nil || item.Err != nil || item.Invoice == nil {
		t.Fatalf("interim for %s: %+v", cust, item)
	}
	return item.Invoice.BalanceDue.Neg()
}

func server(flavors string) billing.RuleSpec {
	return billing.RuleSpec{Type: "os.nova.server", Spec: "flavors: {" + flavors + "}"}
}

func (f *fixture) balance(t *testing.T, cust string, when time.Time) Status {
	t.Helper()
	st, err := f.svc.Balance(bg, cust, when)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func audit(t *testing.T, st store.Balances, cust, action string) []store.AuditEvent {
	t.Helper()
	evs, err := st.ListAudit(bg, store.AuditFilter{CustomerID: cust, Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// The balance at T, computed in O(1) from a burn state refreshed earlier, equals the balance of
// a real interim invoice priced up to T, to the cent.
func TestBalanceMatchesInterimInvoice(t *testing.T) {
	f := newFixture(t, "")
	// 0.0365 per hour: no hour, minute or second count gives a round amount.
	f.policy(t, "standard", "0", server(`m1.small: "0.0365", m1.large: "0.1460"`))
	f.customer(t, billing.Customer{ID: "p1"})
	f.pay(t, "p1", "100.00", at("2026-10-01T00:00:00Z"), "bank-1")
	f.records(t,
		// closed: 3 d 3 h 17 min 29 s of m1.large = 271049 s × 0.1460 / 3600 = 10.992542… → 10.99
		billing.Record{CustomerID: "p1", ResourceID: "vm-a", ResourceType: "os.nova.server", Start: at("2026-10-02T10:00:00Z"), End: at("2026-10-05T13:17:29Z"), Attributes: map[string]string{"flavor": "m1.large"}},
		// open since Oct 3 08:00:07 at 0.0365 per hour
		billing.Record{CustomerID: "p1", ResourceID: "vm-b", ResourceType: "os.nova.server", Start: at("2026-10-03T08:00:07Z"), Attributes: map[string]string{"flavor": "m1.small"}},
	)
	refreshAt := at("2026-10-10T12:00:00Z")
	if n, err := f.svc.Refresh(bg, []string{"p1"}, refreshAt); err != nil || n != 1 {
		t.Fatalf("Refresh = %d, %v", n, err)
	}
	b, err := f.svc.Balances.BurnState(bg, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if b.Rate.Cmp(d("0.0365")) != 0 || b.OpenSpans != 1 || b.Stale {
		t.Fatalf("burn state = %+v, want rate 0.0365 per hour, 1 open span, fresh", b)
	}
	// At the refresh: 100 − 10.99 − 0.0365 × 619193 s / 3600 (6.277929…) = 82.732071… → 82.73.
	for _, when := range []string{
		"2026-10-10T12:00:00Z", "2026-10-10T12:00:01Z", "2026-10-10T15:17:43Z",
		"2026-10-20T00:00:09Z", "2026-10-31T23:59:59Z",
	} {
		T := at(when)
		st, err := StatusAt(b, T, f.cfg.Billing.Rounding.Round)
		if err != nil {
			t.Fatal(err)
		}
		want := f.interimBalance(t, "p1", T)
		if st.Rounded.Cmp(want) != 0 {
			t.Errorf("at %s: balance %s (exact %s), interim invoice %s", when, st.Rounded, st.Balance, want)
		}
	}
	if got := f.balance(t, "p1", refreshAt).Rounded; got.Cmp(d("82.73")) != 0 {
		t.Errorf("balance at refresh = %s, want 82.73 (worked out by hand)", got)
	}
}

// With tax, a subscription fee, two open spans, an issued invoice for September and payments in
// both months, the O(1) balance stays within the interim invoice's own rounding of its growing
// lines: half a cent per open line and for the tax, times (1 + tax).
func TestBalanceWithTaxFeeAndInvoiceTracksInterim(t *testing.T) {
	f := newFixture(t, "")
	f.policy(t, "standard", "30", server(`m1.small: "0.0365"`),
		billing.RuleSpec{Type: "os.cinder.volume", Spec: `price_per_gb_hour: "0.00015"`})
	f.customer(t, billing.Customer{ID: "p2", TaxRate: d("0.20")})
	if _, err := f.st.AddSubscriptions(bg, []billing.Subscription{{CustomerID: "p2", Policy: "standard", Start: at("2026-09-01T00:00:00Z")}}); err != nil {
		t.Fatal(err)
	}
	f.pay(t, "p2", "50.00", at("2026-09-01T00:00:00Z"), "sep")
	f.pay(t, "p2", "80.00", at("2026-10-04T00:00:00Z"), "oct")
	f.records(t,
		billing.Record{CustomerID: "p2", ResourceID: "vm-1", ResourceType: "os.nova.server", Start: at("2026-09-20T06:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}},
		billing.Record{CustomerID: "p2", ResourceID: "vol-1", ResourceType: "os.cinder.volume", Start: at("2026-09-25T00:00:00Z"), Attributes: map[string]string{"size": "20"}},
	)
	// September is invoiced for real (stored, numbered).
	if _, err := pipeline.Execute(bg, pipeline.Env{Store: f.st, Config: f.cfg, Log: slog.New(slog.DiscardHandler)}, pipeline.Options{
		Mode: pipeline.Scheduled, Period: interval.Range{Start: at("2026-09-01T00:00:00Z"), End: at("2026-10-01T00:00:00Z")},
		Now: at("2026-10-01T00:05:00Z"), CustomerIDs: []string{"p2"},
	}); err != nil {
		t.Fatal(err)
	}
	refreshAt := at("2026-10-05T00:00:00Z")
	if _, err := f.svc.Refresh(bg, []string{"p2"}, refreshAt); err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Balances.BurnState(bg, "p2")
	if err != nil {
		t.Fatal(err)
	}
	// (0.0365 + 20 × 0.00015 + 30 × 3600 / 2678400) × 1.2 per hour.
	fee, _ := d("108000").Quo(d("2678400"))
	pre, _ := d("0.0395").Add(fee)
	wantRate, _ := pre.Mul(d("1.2"))
	if b.Rate.Cmp(wantRate) != 0 || b.OpenSpans != 2 {
		t.Fatalf("rate = %s (%d open), want %s (2 open)", b.Rate, b.OpenSpans, wantRate)
	}
	settled, err := f.svc.Balances.SettledBalance(bg, "p2", refreshAt)
	if err != nil {
		t.Fatal(err)
	}
	if settled.Cmp(b.Settled) != 0 {
		t.Errorf("settled: store says %s, burn state %s", settled, b.Settled)
	}
	tol := d("0.024") // (3 lines + tax) × 0.005 × 1.2
	for _, when := range []string{"2026-10-05T00:00:00Z", "2026-10-05T07:13:21Z", "2026-10-17T19:00:01Z", "2026-10-31T23:59:59Z"} {
		T := at(when)
		v, err := At(b, T)
		if err != nil {
			t.Fatal(err)
		}
		want := f.interimBalance(t, "p2", T)
		diff, _ := v.Sub(want)
		if diff.Abs().Cmp(tol) > 0 {
			t.Errorf("at %s: balance %s, interim invoice %s (off by %s)", when, v, want, diff)
		}
	}
}

// The trigger-maintained change counter makes a state stale when a record arrives, whoever
// writes it; the jobs then refresh it without any hook.
func TestRecordMakesStateStaleAndJobsRefresh(t *testing.T) {
	f := newFixture(t, "")
	f.policy(t, "standard", "0", server(`m1.small: "1.00"`))
	f.customer(t, billing.Customer{ID: "p3"})
	f.pay(t, "p3", "1000", at("2026-10-01T00:00:00Z"), "x")
	f.now = at("2026-10-02T00:00:00Z")
	if _, err := f.svc.RunJobs(bg); err != nil {
		t.Fatal(err)
	}
	b, _ := f.svc.Balances.BurnState(bg, "p3")
	if b.Stale || !b.Rate.IsZero() {
		t.Fatalf("after jobs: %+v", b)
	}
	f.records(t, billing.Record{CustomerID: "p3", ResourceID: "vm", ResourceType: "os.nova.server", Start: at("2026-10-02T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	b, _ = f.svc.Balances.BurnState(bg, "p3")
	if !b.Stale {
		t.Fatal("a new record did not make the burn state stale")
	}
	f.now = at("2026-10-02T10:00:00Z")
	rep, err := f.svc.RunJobs(bg)
	if err != nil || rep.Refreshed != 1 {
		t.Fatalf("jobs: %+v, %v", rep, err)
	}
	// 1000 − 10 h × 1.00 = 990.
	if got := f.balance(t, "p3", f.now).Balance; got.Cmp(d("990")) != 0 {
		t.Errorf("balance = %s, want 990", got)
	}
}

// A price of 0.01 per hour (0.0000027… per second) still arms the warning: 0.50 lasts 50 hours,
// under the 72-hour threshold. The original Bilean rounded the rate to 0.00 and never warned.
func TestOneCentPerHourArmsTheWarning(t *testing.T) {
	f := newFixture(t, "balance: {warn_before: 72h}\n")
	f.policy(t, "standard", "0", server(`tiny: "0.01"`))
	f.customer(t, billing.Customer{ID: "p4", Contacts: []string{"ops@example.org"}})
	f.customer(t, billing.Customer{ID: "p5"})
	f.pay(t, "p4", "0.60", at("2026-10-01T00:00:00Z"), "a")
	f.pay(t, "p5", "0.80", at("2026-10-01T00:00:00Z"), "b")
	for _, c := range []string{"p4", "p5"} {
		f.records(t, billing.Record{CustomerID: c, ResourceID: "vm-" + c, ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "tiny"}})
	}
	var notices []Notice
	f.svc.Notifier = notifierFunc(func(n Notice) { notices = append(notices, n) })
	// After 10 h: p4 has 0.50 left (50 h < 72 h: warn), p5 0.70 (70 h < 72 h: warn too)… at
	// 5 h: p5 has 0.75 (75 h: no warning), p4 0.55 (55 h: warning).
	f.now = at("2026-10-01T05:00:00Z")
	if _, err := f.svc.RunJobs(bg); err != nil {
		t.Fatal(err)
	}
	if got := audit(t, f.svc.Balances, "p4", NoticeLow); len(got) != 1 {
		t.Fatalf("p4 warnings = %+v, want 1", got)
	}
	if got := audit(t, f.svc.Balances, "p5", NoticeLow); len(got) != 0 {
		t.Fatalf("p5 (75 h left) was warned: %+v", got)
	}
	if len(notices) != 1 || notices[0].Customer.ID != "p4" || notices[0].TimeLeft != 55*time.Hour || notices[0].Customer.Contacts[0] != "ops@example.org" {
		t.Fatalf("notices = %+v", notices)
	}
	// Warned once, not at every pass.
	f.now = at("2026-10-01T06:00:00Z")
	if _, err := f.svc.RunJobs(bg); err != nil {
		t.Fatal(err)
	}
	if got := audit(t, f.svc.Balances, "p4", NoticeLow); len(got) != 1 {
		t.Fatalf("p4 warned %d times", len(got))
	}
	// What the original did: the per-second rate rounded to 2 decimals is zero.
	perSecond, _ := d("0.01").Quo(d("3600"))
	if !perSecond.Round(2).IsZero() || perSecond.IsZero() {
		t.Fatalf("per-second rate %s", perSecond)
	}
}

type notifierFunc func(Notice)

func (f notifierFunc) Notify(_ context.Context, n Notice) error { f(n); return nil }

func TestCostAndTimeLeftExtremes(t *testing.T) {
	tests := []struct {
		name, rate string
		secs       int64
		want       string
	}{
		{"one cent per hour, one second", "0.01", 1, "0.0000027777777777778"},
		{"one cent per hour, one hour", "0.01", 3600, "0.01"},
		{"one cent per hour, ten years", "0.01", 315360000, "876"},
		{"a billionth per hour, a second", "0.000000001", 1, "0.0000000000002777778"},
		{"a billion per hour, ten years", "1000000000", 315360000, "87600000000000"},
		{"odd rate", "0.0365", 619193, "6.277929027777777778"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Cost(d(tc.rate), tc.secs)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cmp(d(tc.want)) != 0 {
				t.Errorf("Cost(%s, %d) = %s, want %s", tc.rate, tc.secs, got, tc.want)
			}
		})
	}
	if _, err := Cost(d("1000000000000000"), 315360000000); err == nil {
		t.Error("an overflowing cost was not refused")
	}
	left, ok := TimeLeft(d("0.50"), d("0.01"))
	if !ok || left != 50*time.Hour {
		t.Errorf("TimeLeft(0.50, 0.01/h) = %s, %v", left, ok)
	}
	if _, ok := TimeLeft(d("5"), decimal.Zero); ok {
		t.Error("a zero rate has a time left")
	}
	low, _ := Low(d("0.72"), d("0.01"), 72*time.Hour) // exactly 72 h: not under
	if low {
		t.Error("72 h left is not under 72 h")
	}
	low, _ = Low(d("0.7199999999"), d("0.01"), 72*time.Hour)
	if !low {
		t.Error("a hair under 72 h is not low")
	}
	b := store.BurnState{CustomerID: "x", AsOf: at("2026-10-01T00:00:00Z"), Base: d("0.01"), Rate: d("0.01")}
	if z, ok := ZeroAt(b); !ok || !z.Equal(at("2026-10-01T01:00:00Z")) {
		t.Errorf("ZeroAt = %s, %v", z, ok)
	}
}

func TestRechargeRefusesBadInput(t *testing.T) {
	f := newFixture(t, "")
	f.policy(t, "standard", "0", server(`m1.small: "1"`))
	f.customer(t, billing.Customer{ID: "p6"})
	f.now = at("2026-10-01T00:00:00Z")
	for _, tc := range []struct{ cust, amount, cur, want string }{
		{"p6", "0", "", "want more than 0"},
		{"p6", "-5", "", "want more than 0"},
		{"p6", "5", "USD", "billed in EUR"},
		{"nobody", "5", "", "does not exist"},
	} {
		_, err := f.svc.Recharge(bg, tc.cust, d(tc.amount), tc.cur, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Recharge(%s, %s, %q) = %v, want %q", tc.cust, tc.amount, tc.cur, err, tc.want)
		}
	}
	res, err := f.svc.Recharge(bg, "p6", d("12.50"), "", "wire 4711")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.Balance.Cmp(d("12.50")) != 0 || res.Lifted {
		t.Errorf("after recharge: %+v", res)
	}
	evs := audit(t, f.svc.Balances, "p6", "recharge")
	if len(evs) != 1 || !strings.Contains(evs[0].Detail, "wire 4711") {
		t.Errorf("audit = %+v", evs)
	}
}

// Issue 11 (3): a customer with October usage and no October invoice yet. The balance at
// 10-31T23:59:59 was −72.58 and at 11-15 it was 0.00 (November's interim forgot October), and the
// balance job then lifted a freeze on that artefact. Now the balance is continuous across the
// month edge: November's interim bills October's unbilled usage as late usage, a burn state is
// never extrapolated across the period edge, and the freeze holds.
func TestBalanceIsContinuousAcrossTheMonthEdge(t *testing.T) {
	f := newFixture(t, "")
	f.policy(t, "standard", "0", server(`m1.large: "0.1000"`))
	f.customer(t, billing.Customer{ID: "p3"})
	f.pay(t, "p3", "10.00", at("2026-10-01T00:00:00Z"), "bank-3")
	// m1.large from Oct 1 at 0.10/h, still running.
	f.records(t, billing.Record{CustomerID: "p3", ResourceID: "vm-c", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.large"}})
	// Oct 31 23:59:59: 2,678,399 s × 0.10 / 3600 = 74.399972… → 10.00 − 74.40 = −64.40.
	end := f.balance(t, "p3", at("2026-10-31T23:59:59Z"))
	if end.Rounded.Cmp(d("-64.40")) != 0 {
		t.Fatalf("balance at 10-31T23:59:59 = %s, want -64.40", end.Rounded)
	}
	// Nov 1 00:00:00 and 00:00:01: one more second each, still -64.40 to the cent.
	for _, when := range []string{"2026-11-01T00:00:00Z", "2026-11-01T00:00:01Z"} {
		if got := f.balance(t, "p3", at(when)).Rounded; got.Cmp(d("-64.40")) != 0 {
			t.Fatalf("balance at %s = %s, want -64.40", when, got)
		}
	}
	// Nov 15 00:00: October 744 h (74.40) + November 336 h (33.60) = 108.00 → −98.00; the same
	// as the interim invoice at that second.
	mid := at("2026-11-15T00:00:00Z")
	got := f.balance(t, "p3", mid).Rounded
	if got.Cmp(d("-98.00")) != 0 || got.Cmp(f.interimBalance(t, "p3", mid)) != 0 {
		t.Fatalf("balance at 11-15 = %s, interim %s, want -98.00", got, f.interimBalance(t, "p3", mid))
	}
	// A frozen customer stays frozen: nothing positive to lift it.
	if err := f.st.PutFreeze(bg, store.Freeze{CustomerID: "p3", State: store.FreezeFrozen, FrozenAt: at("2026-10-20T00:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	f.now = mid
	if _, err := f.svc.RunJobs(bg); err != nil {
		t.Fatal(err)
	}
	fs, err := f.st.GetFreezes(bg, []string{"p3"})
	if err != nil {
		t.Fatal(err)
	}
	if fs["p3"].State != store.FreezeFrozen {
		t.Fatalf("freeze state %q after the jobs at 11-15, want frozen", fs["p3"].State)
	}
	if n := len(audit(t, f.st, "p3", "lift")); n != 0 {
		t.Fatalf("%d lift audits", n)
	}
}
