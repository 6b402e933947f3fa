package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
)

func init() {
	register(
		Case{"MeterTotalsRoundTripAndIntersect", testMeterTotalsRoundTrip},
		Case{"MeterTotalsReimportIsNoop", testMeterTotalsReimport},
		Case{"MeterTotalsSameIDOtherContentRefused", testMeterTotalsConflict},
		Case{"MeterTotalsUnknownCustomerAtomically", testMeterTotalsUnknownCustomer},
		Case{"MeterTotalsRefuseBadTotals", testMeterTotalsBad},
		Case{"MeterTotalsBumpBurnMark", testMeterTotalsBurnMark},
	)
}

func meter(id, customer, resource string, r interval.Range, qty string) billing.MeterTotal {
	return billing.MeterTotal{ID: id, CustomerID: customer, Meter: "network.outgoing.bytes", ResourceID: resource,
		ResourceType: "instance_network_interface", Range: r, Quantity: dec(qty), Unit: "GB", Aggregation: "sum",
		Attributes: map[string]string{"region": "RegionOne"}, Source: "import"}
}

func addMeters(t *testing.T, st store.Store, ms ...billing.MeterTotal) {
	t.Helper()
	if err := st.AddMeterTotals(ctx, ms); err != nil {
		t.Fatalf("AddMeterTotals: %v", err)
	}
}

func meterIDs(t *testing.T, st store.Store, r interval.Range, customers ...string) []string {
	t.Helper()
	ms, err := st.MeterTotals(ctx, customers, r)
	if err != nil {
		t.Fatalf("MeterTotals: %v", err)
	}
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// Totals read back exactly (quantity scale, attributes, range to the second), sorted by customer,
// meter, resource and start; a range intersects when it shares a second, touching is not enough.
func testMeterTotalsRoundTrip(t *testing.T, st store.Store) {
	seed(t, st)
	oct, nov := month(10), month(11)
	first := rng(day(10, 1), day(10, 16))
	second := rng(day(10, 16), day(11, 1))
	in := []billing.MeterTotal{
		meter("m4", "c2", "port-9", oct, "0.0000027"),
		meter("m2", "c1", "port-2", oct, "12.50"),
		meter("m3", "c1", "port-1", second, "7"),
		meter("m1", "c1", "port-1", first, "1300.000"),
		meter("m5", "c1", "port-1", nov, "3"),
		meter("m6", "c3", "port-3", oct, "1"),
	}
	in[2].Meter = "disk.read.bytes"
	in[1].Attributes = nil
	addMeters(t, st, in...)
	ms, err := st.MeterTotals(ctx, []string{"c2", "c1"}, oct)
	if err != nil {
		t.Fatal(err)
	}
	want := []billing.MeterTotal{in[2], in[3], in[1], in[0]} // c1 disk.read.bytes, c1 network port-1, c1 network port-2, c2
	if len(ms) != len(want) {
		t.Fatalf("got %d totals %+v, want %d", len(ms), ms, len(want))
	}
	for i := range want {
		if ms[i].ID != want[i].ID || !store.SameMeterTotal(ms[i], want[i]) || ms[i].Quantity.String() != want[i].Quantity.String() {
			t.Errorf("total %d = %+v\nwant %+v (quantity exactly as written)", i, ms[i], want[i])
		}
	}
	if got := meterIDs(t, st, rng(day(10, 16), day(10, 17)), "c1"); !reflect.DeepEqual(got, []string{"m3", "m2"}) {
		t.Errorf("totals intersecting Oct 16 = %v, want [m3 m2] (m1 ends where the range starts)", got)
	}
	if got := meterIDs(t, st, interval.Range{Start: day(10, 31)}, "c1"); !reflect.DeepEqual(got, []string{"m3", "m5", "m2"}) {
		t.Errorf("totals from Oct 31 on (open end) = %v, want [m3 m5 m2]", got)
	}
	if got := meterIDs(t, st, interval.Range{End: day(10, 16)}, "c1", "c3"); !reflect.DeepEqual(got, []string{"m1", "m2", "m6"}) {
		t.Errorf("totals before Oct 16 (zero start) = %v, want [m1 m2 m6]", got)
	}
	if got := meterIDs(t, st, oct); len(got) != 0 {
		t.Errorf("totals of no customer = %v", got)
	}
}

// Importing the same totals twice stores each once; an equal quantity written with another scale
// is the same content.
func testMeterTotalsReimport(t *testing.T, st store.Store) {
	seed(t, st)
	a, b := meter("a", "c1", "port-1", month(10), "1.5"), meter("b", "c1", "port-2", month(10), "2")
	addMeters(t, st, a, b)
	a2 := a
	a2.Quantity = dec("1.50")
	addMeters(t, st, a2, b, b) // the same id twice in one call, same content: one row
	if got := meterIDs(t, st, month(10), "c1"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("after re-import: %v, want [a b]", got)
	}
	ms, _ := st.MeterTotals(ctx, []string{"c1"}, month(10))
	if ms[0].Quantity.String() != "1.5" {
		t.Errorf("quantity after a no-op re-import = %s, want the first 1.5", ms[0].Quantity)
	}
}

// The same id with other content is refused, naming the total's index and the id, and nothing of
// the call is stored.
func testMeterTotalsConflict(t *testing.T, st store.Store) {
	seed(t, st)
	addMeters(t, st, meter("a", "c1", "port-1", month(10), "1"))
	changed := meter("a", "c1", "port-1", month(10), "2")
	err := st.AddMeterTotals(ctx, []billing.MeterTotal{meter("new", "c1", "port-2", month(10), "1"), changed})
	me := store.AsMeterTotalError(err)
	if me == nil || me.Index != 1 || me.Field != "id" || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("err = %v (%#v), want a *MeterTotalError for index 1, field id", err, me)
	}
	if got := meterIDs(t, st, month(10), "c1"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("stored after a refused call: %v, want [a]", got)
	}
	// Within one call too.
	b1, b2 := meter("b", "c1", "port-1", month(11), "1"), meter("b", "c1", "port-1", month(11), "1")
	b2.Unit = "MB"
	err = st.AddMeterTotals(ctx, []billing.MeterTotal{b1, b2})
	if me := store.AsMeterTotalError(err); me == nil || me.Index != 1 || me.Field != "id" {
		t.Fatalf("same id twice in one call with other content: err = %v", err)
	}
	if got := meterIDs(t, st, month(11), "c1"); len(got) != 0 {
		t.Errorf("stored after a refused call: %v", got)
	}
}

func testMeterTotalsUnknownCustomer(t *testing.T, st store.Store) {
	seed(t, st)
	err := st.AddMeterTotals(ctx, []billing.MeterTotal{meter("a", "c1", "p", month(10), "1"), meter("b", "nobody", "p", month(10), "1")})
	me := store.AsMeterTotalError(err)
	if me == nil || me.Index != 1 || me.Field != "customer_id" || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("err = %v, want a *MeterTotalError for index 1, field customer_id", err)
	}
	if got := meterIDs(t, st, month(10), "c1"); len(got) != 0 {
		t.Errorf("stored after a refused call: %v", got)
	}
}

func testMeterTotalsBad(t *testing.T, st store.Store) {
	seed(t, st)
	ok := meter("a", "c1", "p", month(10), "1")
	tests := []struct {
		field string
		edit  func(m *billing.MeterTotal)
	}{
		{"id", func(m *billing.MeterTotal) { m.ID = "" }},
		{"customer_id", func(m *billing.MeterTotal) { m.CustomerID = "" }},
		{"meter", func(m *billing.MeterTotal) { m.Meter = "" }},
		{"end", func(m *billing.MeterTotal) { m.Range.End = m.Range.Start }},
		{"quantity", func(m *billing.MeterTotal) { m.Quantity = dec("-0.01") }},
		{"aggregation", func(m *billing.MeterTotal) { m.Aggregation = "median" }},
	}
	for _, tt := range tests {
		m := ok
		tt.edit(&m)
		err := st.AddMeterTotals(ctx, []billing.MeterTotal{ok, m})
		var me *store.MeterTotalError
		if !errors.As(err, &me) || me.Index != 1 || me.Field != tt.field {
			t.Errorf("%s: err = %v, want a *MeterTotalError for index 1, field %s", tt.field, err, tt.field)
		}
	}
	if got := meterIDs(t, st, month(10), "c1"); len(got) != 0 {
		t.Errorf("stored after refused calls: %v", got)
	}
}

// A stored total changes what the customer owes: its burn state goes stale; a no-op re-import
// changes nothing.
func testMeterTotalsBurnMark(t *testing.T, st store.Store) {
	b := capability[store.Balances](t, st)
	seed(t, st)
	before := burnMark(t, b)
	addMeters(t, st, meter("a", "c1", "p", month(10), "1"), meter("b", "c2", "p", month(10), "1"))
	after := burnMark(t, b)
	if after <= before {
		t.Fatalf("change counter of c1 = %d after a meter total was stored, was %d: want it bumped", after, before)
	}
	addMeters(t, st, meter("a", "c1", "p", month(10), "1"))
	if again := burnMark(t, b); again != after {
		t.Errorf("change counter of c1 = %d after a no-op re-import, was %d", again, after)
	}
}
