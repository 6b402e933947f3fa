package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

func init() {
	register(
		Case{"BalancesRechargeAndSettled", testBalancesRecharge},
		Case{"BalancesBurnStateStaleOnChange", testBurnStateStale},
		Case{"BalancesFreezeSetsCustomerStatus", testFreezeStatus},
	)
}

func testBalancesRecharge(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	p, err := b.Recharge(ctx, billing.Payment{CustomerID: "c1", Amount: decimal.MustParse("0.0000027"), Currency: "EUR", ReceivedAt: day(10, 2)}, "tiny")
	if err != nil || p.ID == 0 || p.Reference == "" {
		t.Fatalf("Recharge = %+v, %v", p, err)
	}
	if _, err := b.Recharge(ctx, billing.Payment{CustomerID: "nobody", Amount: decimal.One, Currency: "EUR", ReceivedAt: day(10, 2)}, ""); err == nil {
		t.Error("a recharge for an unknown customer was stored")
	}
	// Received on Oct 2: not in the balance at Oct 2 00:00 (half-open), in it a second later.
	for _, tc := range []struct {
		at   time.Time
		want string
	}{{day(10, 2), "0"}, {day(10, 2).Add(time.Second), "0.0000027"}} {
		got, err := b.SettledBalance(ctx, "c1", tc.at)
		if err != nil || got.Cmp(decimal.MustParse(tc.want)) != 0 {
			t.Errorf("SettledBalance(%s) = %s, %v; want %s", tc.at, got, err, tc.want)
		}
	}
}

func testBurnStateStale(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}, {ID: "c2", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.BurnState(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BurnState of a new customer: %v", err)
	}
	stale, err := b.StaleCustomers(ctx, day(10, 1), day(10, 1), 0)
	if err != nil || len(stale) != 2 {
		t.Fatalf("StaleCustomers = %v, %v; want both", stale, err)
	}
	marks, _ := b.BurnMarks(ctx, []string{"c1"})
	in := store.BurnState{CustomerID: "c1", Currency: "EUR", AsOf: day(10, 5), Settled: decimal.MustParse("10"), Accrued: decimal.MustParse("1.5"),
		Base: decimal.MustParse("8.5"), Rate: decimal.MustParse("0.0000000001"), OpenSpans: 3, Mark: marks["c1"]}
	if err := b.PutBurnStates(ctx, []store.BurnState{in}); err != nil {
		t.Fatal(err)
	}
	got, err := b.BurnState(ctx, "c1")
	if err != nil || got.Stale || got.Rate.Cmp(in.Rate) != 0 || got.Base.Cmp(in.Base) != 0 || !got.AsOf.Equal(in.AsOf) || got.OpenSpans != 3 {
		t.Fatalf("BurnState = %+v, %v", got, err)
	}
	if stale, _ = b.StaleCustomers(ctx, day(10, 1), day(10, 1), 0); len(stale) != 1 || stale[0] != "c2" {
		t.Fatalf("StaleCustomers after put = %v, want [c2]", stale)
	}
	// A record, whoever writes it, makes the state stale.
	if err := st.AddRecords(ctx, []billing.Record{{CustomerID: "c1", ResourceID: "r1", ResourceType: "os.nova.server", Start: day(10, 6)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ = b.BurnState(ctx, "c1"); !got.Stale {
		t.Error("a new record did not make the burn state stale")
	}
	open, err := b.OpenRecords(ctx, []string{"c1", "c2"})
	if err != nil || len(open) != 1 || open[0].ResourceID != "r1" || !open[0].End.IsZero() {
		t.Errorf("OpenRecords = %+v, %v", open, err)
	}
	n := 0
	if err := b.EachBurnState(ctx, func(store.BurnState) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("EachBurnState saw %d, %v", n, err)
	}
}

func testFreezeStatus(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		cs, _ := st.GetCustomers(ctx, []string{"c1"})
		return cs[0].Status
	}
	f := store.Freeze{CustomerID: "c1", State: store.FreezeFrozen, DepletedAt: day(10, 1), FrozenAt: day(10, 2), Action: "stop", Servers: []string{"s1", "s2"}}
	if err := b.PutFreeze(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, _ := b.GetFreezes(ctx, []string{"c1"})
	if g := got["c1"]; g.State != store.FreezeFrozen || len(g.Servers) != 2 || !g.FrozenAt.Equal(day(10, 2)) || status() != billing.Frozen {
		t.Fatalf("frozen: %+v, status %s", g, status())
	}
	if err := b.PutFreeze(ctx, store.Freeze{CustomerID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = b.GetFreezes(ctx, []string{"c1"}); len(got) != 0 || status() != billing.Active {
		t.Fatalf("lifted: %+v, status %s", got, status())
	}
	if err := b.AddAudit(ctx, []store.AuditEvent{{At: day(10, 2), CustomerID: "c1", Action: "stop", Target: "s1", DryRun: true}}); err != nil {
		t.Fatal(err)
	}
	evs, err := b.ListAudit(ctx, store.AuditFilter{CustomerID: "c1"})
	if err != nil || len(evs) != 1 || !evs[0].DryRun || evs[0].Target != "s1" {
		t.Errorf("ListAudit = %+v, %v", evs, err)
	}
}
