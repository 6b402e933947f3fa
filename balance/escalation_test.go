package balance

import (
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
)

// escalationFixture: p7 pays 1.00 and runs one m1.small at 1.00 per hour from 00:00, so its
// balance reaches zero at 01:00; the fake Nova lists its ACTIVE server and another project's.
func escalationFixture(t *testing.T, extra string) (*fixture, *fakeOpenStack) {
	f := newFixture(t, extra)
	os := newFakeOpenStack(t)
	f.svc.Cloud = os.cloud(t)
	f.policy(t, "standard", "0", server(`m1.small: "1.00"`))
	f.customer(t, billing.Customer{ID: "p7"})
	f.customer(t, billing.Customer{ID: "other"})
	f.pay(t, "p7", "1.00", at("2026-10-01T00:00:00Z"), "a")
	f.pay(t, "other", "1000", at("2026-10-01T00:00:00Z"), "b")
	f.records(t, billing.Record{CustomerID: "p7", ResourceID: "srv-1", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	os.addServer("srv-1", "p7", "ACTIVE", "m1.small", "2026-10-01T00:00:00Z")
	os.addServer("srv-other", "other", "ACTIVE", "m1.small", "2026-10-01T00:00:00Z")
	return f, os
}

func (f *fixture) jobsAt(t *testing.T, when string) JobReport {
	t.Helper()
	f.now = at(when)
	rep, err := f.svc.RunJobs(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("jobs at %s: %v", when, rep.Errors)
	}
	return rep
}

func TestEscalationStopsAfterGraceAndRechargeLifts(t *testing.T) {
	f, os := escalationFixture(t, "balance: {escalation: stop, grace_period: 2h}\n")
	f.jobsAt(t, "2026-10-01T00:30:00Z") // 0.50 left: warned (30 min < 72 h)
	f.jobsAt(t, "2026-10-01T01:30:00Z") // −0.50: depleted at 01:00, grace until 03:00
	f.jobsAt(t, "2026-10-01T02:59:59Z")
	if n := os.count("os-stop"); n != 0 {
		t.Fatalf("stopped during the grace period: %s", os)
	}
	fz, _ := f.svc.Balances.GetFreezes(bg, []string{"p7"})
	if fz["p7"].State != store.FreezeDepleted || !fz["p7"].DepletedAt.Equal(at("2026-10-01T01:00:00Z")) {
		t.Fatalf("freeze = %+v, want depleted at 01:00", fz["p7"])
	}
	f.jobsAt(t, "2026-10-01T03:00:00Z")
	f.jobsAt(t, "2026-10-01T04:00:00Z")
	if got := os.calls(); len(got) != 1 || got[0] != "os-stop srv-1" {
		t.Fatalf("Nova actions = %v, want one os-stop of srv-1", got)
	}
	stops := audit(t, f.svc.Balances, "p7", "stop")
	if len(stops) != 1 || stops[0].Target != "srv-1" || stops[0].DryRun || !stops[0].At.Equal(at("2026-10-01T03:00:00Z")) {
		t.Fatalf("stop audit = %+v", stops)
	}
	for _, a := range []string{NoticeLow, NoticeDepleted, NoticeFrozen} {
		if n := len(audit(t, f.svc.Balances, "p7", a)); n != 1 {
			t.Errorf("%d %s audit events, want 1", n, a)
		}
	}
	cs, _ := f.st.GetCustomers(bg, []string{"p7"})
	if cs[0].Status != billing.Frozen {
		t.Errorf("customer status = %s, want frozen", cs[0].Status)
	}
	os.setStatus("srv-1", "SHUTOFF")

	// 4 h burned 4.00 of 1.00: −3.00. A recharge of 2 leaves −1.00: still frozen, nothing started.
	f.now = at("2026-10-01T04:00:00Z")
	res, err := f.svc.Recharge(bg, "p7", d("2"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Lifted || os.count("os-start") != 0 {
		t.Fatalf("a recharge that leaves the balance negative lifted the freeze: %+v %s", res, os)
	}
	res, err = f.svc.Recharge(bg, "p7", d("10"), "", "card")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Lifted || os.count("os-start srv-1") != 1 || len(res.Messages) == 0 {
		t.Fatalf("recharge to +9: %+v, Nova %s", res, os)
	}
	if n := len(audit(t, f.svc.Balances, "p7", "start")); n != 1 {
		t.Errorf("%d start audit events", n)
	}
	cs, _ = f.st.GetCustomers(bg, []string{"p7"})
	fz, _ = f.svc.Balances.GetFreezes(bg, []string{"p7"})
	if cs[0].Status != billing.Active || fz["p7"].State != "" {
		t.Errorf("after lift: status %s, freeze %+v", cs[0].Status, fz["p7"])
	}
	if os.count("os-stop srv-other")+os.count("os-start srv-other") != 0 {
		t.Errorf("another project's server was touched: %s", os)
	}
}

func TestEscalationDryRunCallsNothing(t *testing.T) {
	f, os := escalationFixture(t, "balance: {escalation: suspend, grace_period: 1h, dry_run: true}\n")
	f.jobsAt(t, "2026-10-01T01:30:00Z")
	f.jobsAt(t, "2026-10-01T02:00:00Z")
	f.jobsAt(t, "2026-10-01T03:00:00Z")
	if got := os.calls(); len(got) != 0 {
		t.Fatalf("dry run called Nova: %v", got)
	}
	evs := audit(t, f.svc.Balances, "p7", "suspend")
	if len(evs) != 1 || !evs[0].DryRun || evs[0].Target != "srv-1" {
		t.Fatalf("dry-run audit = %+v", evs)
	}
	cs, _ := f.st.GetCustomers(bg, []string{"p7"})
	if cs[0].Status != billing.Active {
		t.Errorf("a dry run froze the customer: %s", cs[0].Status)
	}
}

func TestNotifyEscalationNeverCallsNova(t *testing.T) {
	f, os := escalationFixture(t, "")
	f.jobsAt(t, "2026-10-01T01:30:00Z")
	f.jobsAt(t, "2026-10-03T00:00:00Z")
	if len(os.calls()) != 0 {
		t.Fatalf("notify escalation called Nova: %s", os)
	}
	if n := len(audit(t, f.svc.Balances, "p7", NoticeDepleted)); n != 1 {
		t.Errorf("%d depleted events", n)
	}
}

func TestReconcileOpensMissingAndClosesVanished(t *testing.T) {
	f := newFixture(t, "")
	os := newFakeOpenStack(t)
	f.svc.Cloud = os.cloud(t)
	f.policy(t, "standard", "0", server(`m1.small: "1.00"`))
	f.customer(t, billing.Customer{ID: "p8"})
	f.pay(t, "p8", "1000", at("2026-10-01T00:00:00Z"), "a")
	// srv-gone has an open span, but Nova no longer lists it (its delete notification was lost);
	// srv-new runs since 06:00 and no span knows it (its create notification was lost).
	f.records(t, billing.Record{CustomerID: "p8", ResourceID: "srv-gone", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}, Source: "listener"})
	os.addServer("srv-new", "p8", "ACTIVE", "m1.small", "2026-10-01T06:00:00Z")
	f.now = at("2026-10-01T12:00:00Z")

	fixes, err := f.svc.Reconcile(bg, "p8", true)
	if err != nil || len(fixes) != 2 {
		t.Fatalf("dry run: %+v, %v", fixes, err)
	}
	if open, _ := f.svc.Balances.OpenRecords(bg, []string{"p8"}); len(open) != 1 || open[0].ResourceID != "srv-gone" {
		t.Fatalf("a dry run wrote records: %+v", open)
	}

	fixes, err = f.svc.Reconcile(bg, "p8", false)
	if err != nil || len(fixes) != 2 {
		t.Fatalf("reconcile: %+v, %v", fixes, err)
	}
	open, _ := f.svc.Balances.OpenRecords(bg, []string{"p8"})
	if len(open) != 1 || open[0].ResourceID != "srv-new" || !open[0].Start.Equal(at("2026-10-01T06:00:00Z")) ||
		open[0].Source != SourceReconcile || open[0].Attributes["reconciled"] != "true" || open[0].Attributes["flavor"] != "m1.small" {
		t.Fatalf("open spans after reconcile = %+v", open)
	}
	last, _ := f.svc.Balances.LastRecords(bg, "p8", []string{"srv-gone"})
	g := last["srv-gone"]
	if !g.End.Equal(at("2026-10-01T12:00:00Z")) || g.Source != SourceReconcile || g.Attributes["reconciled"] != "true" {
		t.Fatalf("srv-gone after reconcile = %+v", g)
	}
	if n := len(audit(t, f.svc.Balances, "p8", "reconcile_open")); n != 2 { // one dry, one real
		t.Errorf("%d reconcile_open events, want 2", n)
	}
	// The balance was refreshed: 1000 − 12 h (srv-gone) − 6 h (srv-new) = 982, burning 1.00/h.
	b := f.balance(t, "p8", f.now)
	if b.Balance.Cmp(d("982")) != 0 || b.Rate.Cmp(d("1")) != 0 {
		t.Errorf("balance after reconcile = %s at %s/h, want 982 at 1/h", b.Balance, b.Rate)
	}
	// Run again: nothing left to fix.
	if fixes, err = f.svc.Reconcile(bg, "", false); err != nil || len(fixes) != 0 {
		t.Errorf("second reconcile: %+v, %v", fixes, err)
	}
	_ = time.Second
}
