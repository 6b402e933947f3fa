package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/bilean/bilean/store/sqlite"
)

// backends open a fresh store of each kind: the embedded SQLite and the real PostgreSQL (which
// skips on a laptop without it and fails with CI=true, see pgtest).
var backends = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bilean.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// importerOnly hides the store's readers, so the importer cannot check customers beforehand and
// the store's own refusal is what gets reported.
type importerOnly struct{ store.Importer }

// usageRows returns a usage CSV of n servers of customer p1, with customer p9 (unknown) at the
// records given, and the line of record i.
func usageRows(n int, unknown ...int) string {
	var b strings.Builder
	b.WriteString("resource_id,resource_type,customer_id,start,end,flavor\n")
	for i := range n {
		cust := "p1"
		for _, u := range unknown {
			if i == u {
				cust = "p9"
			}
		}
		fmt.Fprintf(&b, "vm-%05d,os.nova.server,%s,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,m1.small\n", i, cust)
	}
	return b.String()
}

// usageJSONL is usageRows as JSON lines with a blank line before every 100th record, so that
// line and record index drift apart.
func usageJSONL(n int, unknown int) string {
	var b strings.Builder
	for i := range n {
		if i%100 == 0 {
			b.WriteString("\n")
		}
		cust := "p1"
		if i == unknown {
			cust = "p9"
		}
		fmt.Fprintf(&b, `{"resource_id":"vm-%05d","resource_type":"os.nova.server","customer_id":"%s","start":"2026-10-01T00:00:00Z","attributes":{"flavor":"m1.small"}}`+"\n", i, cust)
	}
	return b.String()
}

// TestStoreRefusalsNameFileLineAndField: what only the store can know (the customer exists, its
// currency, a payment reference already stored) is reported at the file's line and field, on
// both stores, and nothing of the file is stored.
func TestStoreRefusalsNameFileLineAndField(t *testing.T) {
	fixNow(t, "2026-12-03T08:00:00Z")
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		kind      string
		file      string // base name
		content   string
		chunk     int
		storeOnly bool // hide the store's readers: the store's own refusal is reported
		want      string
	}{
		{name: "payment in USD for an EUR customer", kind: "payments", file: "payments.csv",
			content: "customer_id,amount,currency,received_at,reference\np1,10.00,EUR,2026-10-01,r1\np1,12.50,USD,2026-10-02,r2\np9,1.00,EUR,2026-10-02,r3\n",
			want: `payments.csv:3: currency "USD": customer "p1" is billed in EUR; a payment must be in its customer's currency` + "\n" +
				`payments.csv:4: customer_id "p9": unknown customer (import the customers first)`},
		{name: "payment in USD for an EUR customer, refused by the store", kind: "payments", file: "payments.csv", storeOnly: true,
			content: "customer_id,amount,currency,received_at,reference\np1,10.00,EUR,2026-10-01,r1\np1,12.50,USD,2026-10-02,r2\n",
			want:    `payments.csv:3: currency: payment in USD, but customer "p1" is billed in EUR`},
		{name: "payment of an unknown customer, refused by the store", kind: "payments", file: "payments.yaml", storeOnly: true,
			content: "payments:\n  - customer: p1\n    amount: 1\n    currency: EUR\n    received_at: 2026-10-01\n  - customer: p9\n    amount: 1\n    currency: EUR\n    received_at: 2026-10-01\n",
			want:    `payments.yaml:6: payments[1].customer: customer "p9" is unknown`},
		{name: "payment reference stored with another amount", kind: "payments", file: "payments.csv",
			content: "customer_id,amount,currency,received_at,reference\np1,5.00,EUR,2026-10-01,r2\np1,11.00,EUR,2026-09-30,seed-1\n",
			want:    `payments.csv:3: reference: reference "seed-1" is already stored as 10.00 EUR received 2026-09-30T00:00:00Z, not 11.00 EUR received 2026-09-30T00:00:00Z`},
		{name: "subscription of an unknown customer", kind: "subscriptions", file: "subscriptions.yaml",
			content: "subscriptions:\n  - customer: p1\n    policy: standard\n    start: 2026-10-01\n  - customer: p9\n    policy: standard\n    start: 2026-10-01\n",
			want:    `subscriptions.yaml:5: subscriptions[1].customer "p9": unknown customer (import the customers first)`},
		{name: "subscription to an unknown policy or one in another currency", kind: "subscriptions", file: "subscriptions.csv",
			content: "customer_id,policy,start\np1,standard,2026-10-01\np1,gold,2026-10-01\np1,dollar,2026-10-01\n",
			want: `subscriptions.csv:3: policy "gold": unknown policy (import the policies first)` + "\n" +
				`subscriptions.csv:4: policy "dollar": priced in USD, customer "p1" is billed in EUR`},
		{name: "customer whose default policy is in another currency", kind: "customers", file: "customers.yaml",
			content: "customers:\n  - id: p2\n    currency: EUR\n    policy: dollar\n  - id: p3\n    currency: EUR\n    policy: not-yet-imported\n",
			want:    `customers.yaml:4: customers[0].policy "dollar": priced in USD, customer "p2" is billed in EUR`},
		{name: "subscription of an unknown customer, refused by the store", kind: "subscriptions", file: "subscriptions.csv", storeOnly: true,
			content: "customer_id,policy,start\np1,standard,2026-10-01\np9,standard,2026-10-01\n",
			want:    `subscriptions.csv:3: customer_id: customer "p9" is unknown`},
		{name: "usage of an unknown customer, whole file", kind: "usage", file: "usage.csv",
			content: usageRows(2600, 2500), want: `usage.csv:2502: customer_id: customer "p9" is unknown`},
		{name: "usage of an unknown customer, in chunks", kind: "usage", file: "usage.csv", chunk: 1000,
			content: usageRows(2600, 2500, 2550), want: `usage.csv:2502: customer_id: customer "p9" is unknown`},
		{name: "usage of an unknown customer, JSON lines with blank lines, in chunks", kind: "usage", file: "usage.jsonl", chunk: 300,
			content: usageJSONL(2600, 2500), want: `usage.jsonl:2527: customer_id: customer "p9" is unknown`},
		{name: "NUL in a customer name", kind: "customers", file: "customers.csv",
			content: "id,name,currency\np1,ACME,EUR\np2,\"Beta\x00\",EUR\n",
			want:    `customers.csv:3: name "Beta\x00": control character U+0000 at byte 4, want printable text`},
	} {
		for _, b := range backends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				st := b.open(t)
				seed := []billing.Customer{{ID: "p1", Name: "ACME", Currency: "EUR"}}
				if err := st.PutCustomers(ctx, seed); err != nil {
					t.Fatal(err)
				}
				if err := st.PutPolicies(ctx, []billing.Policy{{Name: "standard", Currency: "EUR"}, {Name: "dollar", Currency: "USD"}}); err != nil {
					t.Fatal(err)
				}
				if err := st.AddPayments(ctx, []billing.Payment{{CustomerID: "p1", Amount: dec("10.00"), Currency: "EUR",
					ReceivedAt: ts("2026-09-30T00:00:00Z"), Reference: "seed-1"}}); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), tc.file)
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
				var imp store.Importer = st
				if tc.storeOnly {
					imp = importerOnly{st}
				}
				_, err := ImportFile(ctx, imp, tc.kind, path, Options{Chunk: tc.chunk})
				if err == nil {
					t.Fatal("imported")
				}
				if g, w := strings.ReplaceAll(err.Error(), filepath.Dir(path)+"/", ""), tc.want; g != w {
					t.Errorf("got\n%s\nwant\n%s", g, w)
				}
				// All or nothing: the store holds only the seed.
				ps, err := st.Payments(ctx, []string{"p1", "p9"}, interval.New(ts("2000-01-01T00:00:00Z"), time.Time{}))
				if err != nil || len(ps) != 1 {
					t.Errorf("payments after the refusal: %v (%v), want the seed only", ps, err)
				}
				us, err := st.Usage(ctx, []string{"p1", "p9"}, interval.Forever)
				if err != nil || len(us) != 0 {
					t.Errorf("usage after the refusal: %d resources (%v), want none", len(us), err)
				}
				cs, err := st.GetCustomers(ctx, []string{"p1", "p2"})
				if err != nil || len(cs) != 1 || cs[0].Name != "ACME" {
					t.Errorf("customers after the refusal: %+v (%v), want the seed", cs, err)
				}
			})
		}
	}
}
