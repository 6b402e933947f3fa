package synthcloud_test

import (
	"context"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/bilean/bilean/synthcloud"
)

// TestLoadIntoSQLite loads a 50-project cloud into the embedded store and reads the counts back.
func TestLoadIntoSQLite(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir()+"/b.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := synthcloud.Options{Projects: 50}
	st, err := synthcloud.Load(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	c := synthcloud.Generate(o)
	var want int
	if err := c.Records(o, func(rs []billing.Record) error { want += len(rs); return nil }, 0); err != nil {
		t.Fatal(err)
	}
	if st.Customers != 50 || st.Records != want {
		t.Fatalf("stats %+v, want 50 customers and %d records", st, want)
	}

	ids, err := s.CustomerIDs(ctx, store.CustomerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 50 || ids[0] != "p0001" || ids[49] != "p0050" {
		t.Fatalf("customer ids %v", ids)
	}
	ps, err := s.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 || ps[synthcloud.Business].Fee.String() != "49.00" {
		t.Fatalf("policies %v", ps)
	}
	month := o.WithDefaults().Month
	subs, err := s.Subscriptions(ctx, ids, month)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != len(c.Subscriptions) {
		t.Fatalf("%d subscriptions stored, want %d", len(subs), len(c.Subscriptions))
	}
	for _, sub := range subs {
		if sub.ID == 0 {
			t.Fatalf("subscription without id: %+v", sub)
		}
	}
	inMonth := 0
	for _, p := range c.Payments {
		if month.Contains(p.ReceivedAt) {
			inMonth++
		}
	}
	pays, err := s.Payments(ctx, ids, month)
	if err != nil {
		t.Fatal(err)
	}
	if len(pays) != inMonth {
		t.Fatalf("%d payments in the month stored, want %d", len(pays), inMonth)
	}
	us, err := s.Usage(ctx, ids, month.End)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, u := range us {
		got += len(u.Records)
	}
	if got != want {
		t.Fatalf("%d records read back over %d resources, want %d", got, len(us), want)
	}
}
