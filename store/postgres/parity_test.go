package postgres_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
)

// Every writer that moves a prepaid balance bumps the customer's change counter in its own
// transaction, whichever path it takes (COPY import, staged upsert, meter totals, finalize, void, payments,
// subscriptions, customer pricing, policy versions, and plain SQL that bypasses the Go code),
// and a re-import that changes nothing leaves it alone.
func TestBurnMarksFollowEveryWriter(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}, {ID: "c2", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	mark := func(c string) int64 {
		t.Helper()
		m, err := st.BurnMarks(ctx, []string{c})
		if err != nil {
			t.Fatal(err)
		}
		return m[c]
	}
	open := billing.Record{CustomerID: "c1", ResourceID: "vm-1", ResourceType: "os.nova.server", Start: day(10, 1),
		Attributes: map[string]string{"flavor": "m1.small"}, Source: "test"}
	closed := open
	closed.End = day(10, 11)
	traffic := billing.MeterTotal{ID: "t1", CustomerID: "c1", Meter: "network.outgoing.bytes", ResourceID: "port-1",
		Range: interval.Range{Start: day(10, 1), End: day(11, 1)}, Quantity: dec("12.5"), Unit: "GB", Aggregation: "sum"}
	var oct string
	steps := []struct {
		name   string
		do     func() error
		bumped bool
	}{
		{"a record of a new resource (COPY)", func() error { return st.AddRecords(ctx, []billing.Record{open}) }, true},
		{"the same record again (no change)", func() error { return st.AddRecords(ctx, []billing.Record{open}) }, false},
		{"the record closed (staged upsert)", func() error { return st.AddRecords(ctx, []billing.Record{closed}) }, true},
		{"an invoice settling it", func() error {
			us, err := st.Usage(ctx, []string{"c1"}, day(11, 1))
			if err != nil {
				return err
			}
			in := octInvoice("c1", invoice.BilledRange{ResourceID: "vm-1", Kind: invoice.Charge, Range: interval.Range{Start: day(10, 1), End: day(10, 11)}})
			err = st.Finalize(ctx, store.FinalizeRequest{Invoice: in, Series: "2026", NumberFormat: numFmt,
				Settle: []billing.Ref{{ID: us[0].Records[0].ID, Version: us[0].Records[0].Version}}})
			oct = in.Number
			return err
		}, true},
		{"the invoice voided", func() error { return st.VoidInvoice(ctx, oct, "test") }, true},
		{"a payment", func() error {
			return st.AddPayments(ctx, []billing.Payment{{CustomerID: "c1", Amount: dec("5"), Currency: "EUR", ReceivedAt: day(10, 3), Reference: "p1"}})
		}, true},
		{"a subscription", func() error {
			_, err := st.AddSubscriptions(ctx, []billing.Subscription{{CustomerID: "c1", Policy: "basic", Start: day(1, 1)}})
			return err
		}, true},
		{"the customer's tax rate", func() error {
			return st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR", TaxRate: dec("0.20")}})
		}, true},
		{"the customer unchanged", func() error {
			return st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR", TaxRate: dec("0.20")}})
		}, false},
		{"a policy", func() error {
			return st.PutPolicies(ctx, []billing.Policy{{Name: "basic", Currency: "EUR", Fee: dec("3.00")}})
		}, true},
		{"the same policy again", func() error {
			return st.PutPolicies(ctx, []billing.Policy{{Name: "basic", Currency: "EUR", Fee: dec("3.00")}})
		}, false},
		{"a meter total", func() error {
			return st.AddMeterTotals(ctx, []billing.MeterTotal{traffic})
		}, true},
		{"the same meter total again", func() error {
			return st.AddMeterTotals(ctx, []billing.MeterTotal{traffic})
		}, false},
		{"plain SQL deleting a meter total", func() error {
			_, err := st.Pool().Exec(ctx, `DELETE FROM meter_totals`)
			return err
		}, true},
		{"plain SQL closing a span", func() error {
			_, err := st.Pool().Exec(ctx, `UPDATE usage_records SET end_at = end_at + interval '1 second'`)
			return err
		}, true},
	}
	for _, s := range steps {
		before, other := mark("c1"), mark("c2")
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		after := mark("c1")
		if s.bumped && after <= before {
			t.Errorf("%s: mark %d → %d, want it bumped", s.name, before, after)
		}
		if !s.bumped && after != before {
			t.Errorf("%s: mark %d → %d, want it unchanged", s.name, before, after)
		}
		// A policy moves every customer's prices; nothing else touches c2.
		if got := mark("c2"); got != other && s.name != "a policy" {
			t.Errorf("%s: the other customer's mark moved %d → %d", s.name, other, got)
		}
	}
}

// Two listeners consuming one queue record events of the same server at the same moment, in
// batches that interleave: the records derived at the end are those of all the events, as if
// they had been recorded one after another.
func TestConcurrentListenersDeriveTheSameRecords(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 10, 3, 8, 0, 0, 0, time.UTC)
	ev := func(i int, a notification.Action, flavor string) notification.Event {
		e := notification.Event{MessageID: fmt.Sprintf("m%03d", i), EventType: "compute.instance", ResourceType: "os.nova.server",
			ResourceID: "srv-1", ProjectID: "c1", Action: a, Time: base.Add(time.Duration(i) * time.Minute)}
		if flavor != "" {
			e.Attributes = map[string]string{"flavor": flavor}
		}
		return e
	}
	// An open, 119 resizes alternating between two flavors, a close: 120 spans.
	const spans = 120
	var all []notification.Event
	all = append(all, ev(0, notification.Open, "f0"))
	for i := 1; i < spans; i++ {
		all = append(all, ev(i, notification.Change, fmt.Sprintf("f%d", i%2)))
	}
	all = append(all, ev(spans, notification.Close, ""))
	var wg sync.WaitGroup
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker w records every fourth event, newest first, one per batch.
			for i := len(all) - 1 - w; i >= 0; i -= workers {
				batch := []notification.Event{all[i]}
				if _, err := st.RecordEvents(ctx, store.EventBatch{Events: batch}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h, err := st.ResourceHistory(ctx, "c1", []string{"srv-1"})
	if err != nil || len(h) != 1 {
		t.Fatalf("ResourceHistory = %+v, %v", h, err)
	}
	var got, want []string
	for _, r := range h[0].Records {
		got = append(got, fmt.Sprintf("%s-%s %s", r.Start.Format("15:04"), r.End.Format("15:04"), r.Attributes["flavor"]))
	}
	for i := 0; i < spans; i++ {
		want = append(want, fmt.Sprintf("%s-%s f%d", base.Add(time.Duration(i)*time.Minute).Format("15:04"),
			base.Add(time.Duration(i+1)*time.Minute).Format("15:04"), i%2))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records after concurrent listeners =\n%q\nwant\n%q", got, want)
	}
}
