package storetest

import (
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

func init() {
	register(
		Case{"BalancesBurnStaleOnSubscriptionDelete", testBurnStaleOnSubscriptionDelete},
		Case{"BalancesBurnStaleOnRecordDelete", testBurnStaleOnRecordDelete},
	)
}

// burnMark reads customer c1's change counter.
func burnMark(t *testing.T, b store.Balances) int64 {
	t.Helper()
	marks, err := b.BurnMarks(ctx, []string{"c1"})
	if err != nil {
		t.Fatalf("BurnMarks: %v", err)
	}
	return marks["c1"]
}

// A subscription cancelled at its own start never applied and is deleted: the customer's burn
// state must go stale, as for any other subscription change.
func testBurnStaleOnSubscriptionDelete(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	sc := capability[store.SubscriptionChanges](t, st)
	seed(t, st)
	if err := st.PutPolicies(ctx, []billing.Policy{{Name: "basic", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "basic", Start: day(10, 1)}}); err != nil {
		t.Fatal(err)
	}
	before := burnMark(t, b)
	ended, err := sc.CancelSubscription(ctx, "c1", day(10, 1))
	if err != nil {
		t.Fatalf("cancel at the subscription's start: %v", err)
	}
	if !ended.End.Equal(ended.Start) {
		t.Fatalf("cancelled = %+v, want it deleted (end = start)", ended)
	}
	subs, err := st.Subscriptions(ctx, []string{"c1"}, month(10))
	if err != nil || len(subs) != 0 {
		t.Fatalf("subscriptions after the cancel = %+v, %v; want none (deleted)", subs, err)
	}
	if after := burnMark(t, b); after <= before {
		t.Errorf("change counter of c1 = %d after its subscription was deleted, was %d: want it bumped", after, before)
	}
}

// A late close before a resize deletes the unsettled record the resize opened: the customer's burn
// state must go stale.
func testBurnStaleOnRecordDelete(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	es := capability[store.Events](t, st)
	seed(t, st)
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{
		ev("o", notification.Open, 0, "m1.small"), ev("r", notification.Change, 100, "m1.large")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-100 m1.small", "100-open m1.large")
	before := burnMark(t, b)
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("c", notification.Close, 50, "")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-50 m1.small")
	if after := burnMark(t, b); after <= before {
		t.Errorf("change counter of c1 = %d after its record [100, open) was deleted, was %d: want it bumped", after, before)
	}
}
