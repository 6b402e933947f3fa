package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/bilean/bilean/store"
)

// Contract of store.Outbox: one entry per invoice, a claim is exclusive and records the
// Message-ID before any sending, an interrupted send becomes unknown (never pending again by
// itself), an operator's retry is explicit, voiding an invoice cancels its pending delivery.
func init() {
	register(
		Case{"OutboxEnqueueIsIdempotentPerInvoice", testOutboxEnqueueIdempotent},
		Case{"OutboxEnqueueRefusesUnknownInvoice", testOutboxEnqueueUnknownInvoice},
		Case{"OutboxClaimIsExclusiveAndRecordsMessageID", testOutboxClaimExclusive},
		Case{"OutboxTransientFailureWaitsAndKeepsMessageID", testOutboxTransient},
		Case{"OutboxReconcileTurnsInterruptedSendsUnknown", testOutboxReconcile},
		Case{"OutboxRetryFailedReplacesRecipients", testOutboxRetryFailed},
		Case{"OutboxVoidingCancelsPendingDelivery", testOutboxVoidCancels},
		Case{"OutboxFilterAndOrder", testOutboxFilter},
	)
}

// t0 is the outbox tests' clock: whole seconds, UTC.
var t0 = time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)

// outboxInvoices stores one October invoice for each of c1, c2 and c3 and returns their numbers.
func outboxInvoices(t *testing.T, st store.Store) []string {
	t.Helper()
	seed(t, st)
	var out []string
	for _, c := range []string{"c1", "c2", "c3"} {
		out = append(out, mustFinalize(t, st, inv(c, month(10))))
	}
	return out
}

func enqueue(t *testing.T, ob store.Outbox, ds ...store.Delivery) []store.Delivery {
	t.Helper()
	got, err := ob.EnqueueDeliveries(ctx, ds)
	if err != nil {
		t.Fatalf("EnqueueDeliveries: %v", err)
	}
	if len(got) != len(ds) {
		t.Fatalf("EnqueueDeliveries returned %d entries for %d deliveries", len(got), len(ds))
	}
	return got
}

func claim(t *testing.T, ob store.Outbox, id int64, msgID string, at time.Time) (store.Delivery, bool) {
	t.Helper()
	d, ok, err := ob.ClaimDelivery(ctx, id, msgID, at)
	if err != nil {
		t.Fatalf("ClaimDelivery(%d): %v", id, err)
	}
	return d, ok
}

func complete(t *testing.T, ob store.Outbox, id int64, o store.DeliveryOutcome) {
	t.Helper()
	if err := ob.CompleteDelivery(ctx, id, o); err != nil {
		t.Fatalf("CompleteDelivery(%d, %s): %v", id, o.State, err)
	}
}

func getDelivery(t *testing.T, ob store.Outbox, id int64) store.Delivery {
	t.Helper()
	d, err := ob.GetDelivery(ctx, id)
	if err != nil {
		t.Fatalf("GetDelivery(%d): %v", id, err)
	}
	return d
}

func wantState(t *testing.T, d store.Delivery, state store.DeliveryState, attempts int) {
	t.Helper()
	if d.State != state || d.Attempts != attempts {
		t.Errorf("delivery %d of %s: state %s after %d attempts, want %s after %d (last error %q)",
			d.ID, d.Invoice, d.State, d.Attempts, state, attempts, d.LastError)
	}
}

func wantStateError(t *testing.T, err error, state store.DeliveryState) {
	t.Helper()
	var se *store.DeliveryStateError
	if !errors.As(err, &se) || !errors.Is(err, store.ErrDeliveryState) {
		t.Fatalf("err = %v, want *store.DeliveryStateError", err)
	}
	if se.State != state {
		t.Errorf("DeliveryStateError names state %s, want %s", se.State, state)
	}
}

func testOutboxEnqueueIdempotent(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	first := enqueue(t, ob, store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"Ann <ann@c1.example>", "bob@c1.example"},
		Bcc: []string{"ledger@acme.example"}, CreatedAt: t0})[0]
	if first.ID == 0 || first.Invoice != nums[0] || first.CustomerID != "c1" || !first.CreatedAt.Equal(t0) || !first.NextAttempt.Equal(t0) {
		t.Errorf("new entry = %+v", first)
	}
	wantState(t, first, store.DeliveryPending, 0)
	if !reflect.DeepEqual(first.To, []string{"Ann <ann@c1.example>", "bob@c1.example"}) || !reflect.DeepEqual(first.Bcc, []string{"ledger@acme.example"}) {
		t.Errorf("recipients to %q bcc %q did not round-trip", first.To, first.Bcc)
	}
	// A repeated run enqueues the same invoice again, and a new one alongside: the first entry
	// stays exactly as it was, even after it was sent.
	claim(t, ob, first.ID, "m1@bilean", t0)
	complete(t, ob, first.ID, store.DeliveryOutcome{State: store.DeliverySent, At: t0.Add(time.Second)})
	again := enqueue(t, ob,
		store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"other@c1.example"}, CreatedAt: t0.Add(time.Hour)},
		store.Delivery{Invoice: nums[1], CustomerID: "c2", To: []string{"c2@c2.example"}, CreatedAt: t0.Add(time.Hour)})
	if again[0].ID != first.ID || !reflect.DeepEqual(again[0].To, first.To) || !again[0].CreatedAt.Equal(t0) {
		t.Errorf("re-enqueued entry = %+v, want the first one unchanged", again[0])
	}
	wantState(t, again[0], store.DeliverySent, 1)
	if again[1].ID == first.ID || again[1].Invoice != nums[1] {
		t.Errorf("second invoice's entry = %+v", again[1])
	}
	wantState(t, again[1], store.DeliveryPending, 0)
	all, err := ob.Deliveries(ctx, store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("outbox holds %d entries, want 2 (one per invoice)", len(all))
	}
}

func testOutboxEnqueueUnknownInvoice(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	_, err := ob.EnqueueDeliveries(ctx, []store.Delivery{
		{Invoice: nums[0], CustomerID: "c1", CreatedAt: t0},
		{Invoice: "NO-SUCH-INVOICE", CustomerID: "c1", CreatedAt: t0},
	})
	if err == nil {
		t.Fatal("an entry for an invoice that does not exist was accepted")
	}
	all, err := ob.Deliveries(ctx, store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("a refused enqueue left %d entries: want all or nothing", len(all))
	}
	if _, err := ob.GetDelivery(ctx, 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDelivery of a missing id: err = %v, want ErrNotFound", err)
	}
}

func testOutboxClaimExclusive(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	d := enqueue(t, ob, store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"a@c1.example"}, CreatedAt: t0})[0]
	got, ok := claim(t, ob, d.ID, "m1@bilean", t0.Add(time.Minute))
	if !ok {
		t.Fatal("first claim of a pending entry refused")
	}
	wantState(t, got, store.DeliverySending, 1)
	if got.MessageID != "m1@bilean" || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("claimed entry: Message-ID %q updated %s, want m1@bilean at %s", got.MessageID, got.UpdatedAt, t0.Add(time.Minute))
	}
	// A second sender (another worker or process) must not get it.
	if again, ok := claim(t, ob, d.ID, "m2@bilean", t0.Add(time.Minute)); ok || again.MessageID != "m1@bilean" {
		t.Fatalf("second claim: ok %v, Message-ID %q; want refused and m1@bilean kept", ok, again.MessageID)
	}
	complete(t, ob, d.ID, store.DeliveryOutcome{State: store.DeliverySent, At: t0.Add(2 * time.Minute)})
	sent := getDelivery(t, ob, d.ID)
	wantState(t, sent, store.DeliverySent, 1)
	if !sent.SentAt.Equal(t0.Add(2*time.Minute)) || sent.LastError != "" {
		t.Errorf("sent entry: sent at %s, last error %q", sent.SentAt, sent.LastError)
	}
	// A sent entry is never claimed, completed, cancelled or retried again.
	if _, ok := claim(t, ob, d.ID, "m3@bilean", t0.Add(3*time.Minute)); ok {
		t.Error("a sent entry was claimed again")
	}
	wantStateError(t, ob.CompleteDelivery(ctx, d.ID, store.DeliveryOutcome{State: store.DeliveryFailed, At: t0}), store.DeliverySent)
	wantStateError(t, ob.CancelDelivery(ctx, d.ID, "test", t0), store.DeliverySent)
	_, err := ob.RetryDelivery(ctx, d.ID, true, nil, t0)
	wantStateError(t, err, store.DeliverySent)
	wantState(t, getDelivery(t, ob, d.ID), store.DeliverySent, 1)
}

func testOutboxTransient(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	d := enqueue(t, ob, store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"a@c1.example"}, CreatedAt: t0})[0]
	claim(t, ob, d.ID, "m1@bilean", t0)
	retryAt := t0.Add(30 * time.Second)
	complete(t, ob, d.ID, store.DeliveryOutcome{State: store.DeliveryPending, Error: "421 try later", NextAttempt: retryAt, At: t0})
	got := getDelivery(t, ob, d.ID)
	wantState(t, got, store.DeliveryPending, 1)
	if got.LastError != "421 try later" || !got.NextAttempt.Equal(retryAt) {
		t.Errorf("after a transient failure: last error %q, next attempt %s; want \"421 try later\" at %s", got.LastError, got.NextAttempt, retryAt)
	}
	due := func(at time.Time) int {
		ds, err := ob.Deliveries(ctx, store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryPending}, DueBy: at})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	if n := due(retryAt.Add(-time.Second)); n != 0 {
		t.Errorf("%d entries due a second before the backoff ends, want 0", n)
	}
	if n := due(retryAt); n != 1 {
		t.Errorf("%d entries due when the backoff ends, want 1", n)
	}
	again, ok := claim(t, ob, d.ID, "m2@bilean", retryAt)
	if !ok {
		t.Fatal("pending entry not claimed after its backoff")
	}
	wantState(t, again, store.DeliverySending, 2)
	if again.MessageID != "m1@bilean" {
		t.Errorf("retry's Message-ID = %q, want the first one (m1@bilean) kept", again.MessageID)
	}
	complete(t, ob, d.ID, store.DeliveryOutcome{State: store.DeliveryFailed, Error: "550 no such user", At: retryAt})
	failed := getDelivery(t, ob, d.ID)
	wantState(t, failed, store.DeliveryFailed, 2)
	if failed.LastError != "550 no such user" || !failed.SentAt.IsZero() {
		t.Errorf("failed entry: last error %q, sent at %s", failed.LastError, failed.SentAt)
	}
	if _, ok := claim(t, ob, d.ID, "m3@bilean", retryAt); ok {
		t.Error("a failed entry was claimed without a retry")
	}
}

func testOutboxReconcile(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	ds := enqueue(t, ob,
		store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"a@c1.example"}, CreatedAt: t0},
		store.Delivery{Invoice: nums[1], CustomerID: "c2", To: []string{"a@c2.example"}, CreatedAt: t0})
	// The process claims nums[0] and dies before it can record the outcome; nums[1] stays pending.
	claim(t, ob, ds[0].ID, "m1@bilean", t0)
	if got, err := ob.ReconcileDeliveries(ctx, t0.Add(-time.Second), "interrupted"); err != nil || len(got) != 0 {
		t.Fatalf("reconcile before the claim: %v, %v; want nothing (a send may be under way)", got, err)
	}
	got, err := ob.ReconcileDeliveries(ctx, t0, "interrupted while sending")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != ds[0].ID || got[0].State != store.DeliveryUnknown || got[0].MessageID != "m1@bilean" {
		t.Fatalf("reconciled = %+v, want %s unknown with its Message-ID", got, nums[0])
	}
	u := getDelivery(t, ob, ds[0].ID)
	wantState(t, u, store.DeliveryUnknown, 1)
	if u.LastError != "interrupted while sending" {
		t.Errorf("last error %q", u.LastError)
	}
	wantState(t, getDelivery(t, ob, ds[1].ID), store.DeliveryPending, 0)
	// Unknown is never sent by itself: not claimed, not retried without force.
	if _, ok := claim(t, ob, ds[0].ID, "m2@bilean", t0.Add(time.Hour)); ok {
		t.Fatal("an unknown entry was claimed")
	}
	wantStateError(t, ob.CompleteDelivery(ctx, ds[0].ID, store.DeliveryOutcome{State: store.DeliverySent, At: t0}), store.DeliveryUnknown)
	_, err = ob.RetryDelivery(ctx, ds[0].ID, false, nil, t0.Add(time.Hour))
	wantStateError(t, err, store.DeliveryUnknown)
	// The operator checked the mail log: not there. A forced retry sends it again, same Message-ID.
	r, err := ob.RetryDelivery(ctx, ds[0].ID, true, nil, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, r, store.DeliveryPending, 0)
	if r.MessageID != "m1@bilean" || !r.NextAttempt.Equal(t0.Add(time.Hour)) || !reflect.DeepEqual(r.To, []string{"a@c1.example"}) {
		t.Errorf("forced retry = %+v", r)
	}
	if again, ok := claim(t, ob, ds[0].ID, "m2@bilean", t0.Add(time.Hour)); !ok || again.MessageID != "m1@bilean" {
		t.Errorf("claim after a forced retry: ok %v, Message-ID %q", ok, again.MessageID)
	}
}

func testOutboxRetryFailed(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	d := enqueue(t, ob, store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"typo@c1.example"}, Bcc: []string{"ledger@acme.example"}, CreatedAt: t0})[0]
	_, err := ob.RetryDelivery(ctx, d.ID, false, nil, t0)
	wantStateError(t, err, store.DeliveryPending)
	claim(t, ob, d.ID, "m1@bilean", t0)
	complete(t, ob, d.ID, store.DeliveryOutcome{State: store.DeliveryFailed, Error: "550 5.1.1 unknown user", At: t0})
	r, err := ob.RetryDelivery(ctx, d.ID, false, []string{"right@c1.example"}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, r, store.DeliveryPending, 0)
	if !reflect.DeepEqual(r.To, []string{"right@c1.example"}) || !reflect.DeepEqual(r.Bcc, []string{"ledger@acme.example"}) {
		t.Errorf("retried entry to %q bcc %q, want the new contact and the same bcc", r.To, r.Bcc)
	}
	if r.LastError != "550 5.1.1 unknown user" {
		t.Errorf("retry dropped the last error: %q", r.LastError)
	}
	if _, err := ob.RetryDelivery(ctx, 9999, false, nil, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("retry of a missing id: err = %v, want ErrNotFound", err)
	}
}

func testOutboxVoidCancels(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	ds := enqueue(t, ob,
		store.Delivery{Invoice: nums[0], CustomerID: "c1", To: []string{"a@c1.example"}, CreatedAt: t0},
		store.Delivery{Invoice: nums[1], CustomerID: "c2", To: []string{"a@c2.example"}, CreatedAt: t0},
		store.Delivery{Invoice: nums[2], CustomerID: "c3", To: []string{"a@c3.example"}, CreatedAt: t0})
	claim(t, ob, ds[1].ID, "m2@bilean", t0)
	complete(t, ob, ds[1].ID, store.DeliveryOutcome{State: store.DeliverySent, At: t0})
	for _, n := range nums[:2] {
		if err := st.VoidInvoice(ctx, n, "wrong tax rate"); err != nil {
			t.Fatal(err)
		}
	}
	c := getDelivery(t, ob, ds[0].ID)
	wantState(t, c, store.DeliveryCancelled, 0)
	if c.LastError != "invoice voided: wrong tax rate" {
		t.Errorf("cancelled entry's last error = %q", c.LastError)
	}
	if _, ok := claim(t, ob, ds[0].ID, "m1@bilean", t0); ok {
		t.Error("the delivery of a voided invoice was claimed")
	}
	_, err := ob.RetryDelivery(ctx, ds[0].ID, true, nil, t0)
	wantStateError(t, err, store.DeliveryCancelled)
	wantState(t, getDelivery(t, ob, ds[1].ID), store.DeliverySent, 1) // what left stays sent
	wantState(t, getDelivery(t, ob, ds[2].ID), store.DeliveryPending, 0)
	// The sender cancels by itself too (it saw the invoice void before the store did).
	if err := ob.CancelDelivery(ctx, ds[2].ID, "invoice voided", t0); err != nil {
		t.Fatal(err)
	}
	wantState(t, getDelivery(t, ob, ds[2].ID), store.DeliveryCancelled, 0)
	wantStateError(t, ob.CancelDelivery(ctx, ds[2].ID, "again", t0), store.DeliveryCancelled)
}

func testOutboxFilter(t *testing.T, st store.Store) {
	ob := capability[store.Outbox](t, st)
	nums := outboxInvoices(t, st)
	ds := enqueue(t, ob,
		store.Delivery{Invoice: nums[0], CustomerID: "c1", CreatedAt: t0},
		store.Delivery{Invoice: nums[1], CustomerID: "c2", CreatedAt: t0, NextAttempt: t0.Add(time.Hour)},
		store.Delivery{Invoice: nums[2], CustomerID: "c3", CreatedAt: t0})
	claim(t, ob, ds[2].ID, "m3@bilean", t0)
	complete(t, ob, ds[2].ID, store.DeliveryOutcome{State: store.DeliveryFailed, Error: "554", At: t0})
	invoices := func(f store.DeliveryFilter) []string {
		got, err := ob.Deliveries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, d := range got {
			out = append(out, d.Invoice)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.DeliveryFilter
		want []string
	}{
		{"all, oldest first", store.DeliveryFilter{}, nums},
		{"pending", store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryPending}}, nums[:2]},
		{"pending or failed", store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryFailed, store.DeliveryPending}}, nums},
		{"due now", store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryPending}, DueBy: t0}, nums[:1]},
		{"invoice", store.DeliveryFilter{Invoice: nums[1]}, nums[1:2]},
		{"limit", store.DeliveryFilter{Limit: 2}, nums[:2]},
		{"none sent", store.DeliveryFilter{States: []store.DeliveryState{store.DeliverySent}}, []string{}},
	} {
		if got := invoices(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Deliveries(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
