package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

func init() {
	register(
		Case{"EventsDuplicateMessageIsNoop", testEventsDuplicate},
		Case{"EventsOrderedByTheirOwnTime", testEventsOutOfOrder},
		Case{"EventsChangeClosesAndOpens", testEventsChange},
		Case{"EventsLateCloseUnsettlesInvoicedSpan", testEventsLateClose},
		Case{"EventsCloseWithoutProjectFindsResource", testEventsOrphanClose},
		Case{"EventsUnknownProjects", testEventsUnknownProjects},
		Case{"EventsQuarantineKeepsEachBodyOnce", testEventsQuarantine},
		Case{"EventsBatchMixesNewAndKnownResources", testEventsMixedBatch},
		Case{"EventsMarkBalancesStaleOncePerBatch", testEventsMarkBalances},
		Case{"EventsRefuseWhatEitherStoreCannotHold", testEventsRefuseUnstorable},
		Case{"EventsQuarantineStoresAnyText", testEventsQuarantineAnyText},
		Case{"EventsSkewedOpenNeverUndoesALaterChange", testEventsSkew},
	)
}

// sec returns a second of 2026-10-03 from 08:00:00 on.
func at(s int) time.Time {
	return time.Date(2026, 10, 3, 8, 0, 0, 0, time.UTC).Add(time.Duration(s) * time.Second)
}

func ev(id string, action notification.Action, s int, flavor string) notification.Event {
	e := notification.Event{
		MessageID: id, EventType: "compute.instance." + string(action), ResourceType: "os.nova.server",
		ResourceID: "srv-1", ProjectID: "c1", Action: action, Time: at(s),
	}
	if flavor != "" {
		e.Attributes = map[string]string{"flavor": flavor}
	}
	return e
}

func recordEvents(t *testing.T, es store.Events, b store.EventBatch) store.EventResult {
	t.Helper()
	res, err := es.RecordEvents(ctx, b)
	if err != nil {
		t.Fatalf("RecordEvents: %v", err)
	}
	return res
}

// spansOf returns the records of a resource as "start-end flavor" in seconds after at(0); an
// open end is "open".
func spansOf(t *testing.T, st store.Store, customer, resource string) []string {
	t.Helper()
	h, err := st.ResourceHistory(ctx, customer, []string{resource})
	if err != nil {
		t.Fatalf("ResourceHistory: %v", err)
	}
	var out []string
	for _, u := range h {
		for _, r := range u.Records {
			end := "open"
			if !r.End.IsZero() {
				end = fmt.Sprint(int(r.End.Sub(at(0)).Seconds()))
			}
			out = append(out, fmt.Sprintf("%d-%s %s", int(r.Start.Sub(at(0)).Seconds()), end, r.Attributes["flavor"]))
			if r.Source != store.ListenerSource || r.ResourceType != u.ResourceType {
				t.Errorf("record %+v: want source %s", r, store.ListenerSource)
			}
		}
	}
	return out
}

func wantSpans(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("records = %q, want %q", got, want)
	}
}

func testEventsDuplicate(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("m1", notification.Open, 10, "m1.small")}})
	if res.Recorded != 1 || res.Duplicates != 0 || !reflect.DeepEqual(res.Customers, []string{"c1"}) {
		t.Errorf("first delivery: %+v, want 1 recorded, customers [c1]", res)
	}
	// Redelivered twice, once in the same batch as itself.
	dup := ev("m1", notification.Open, 10, "m1.small")
	res = recordEvents(t, es, store.EventBatch{Events: []notification.Event{dup, dup}})
	if res.Recorded != 0 || res.Duplicates != 2 || len(res.Customers) != 0 {
		t.Errorf("redelivery: %+v, want 0 recorded, 2 duplicates, no customer changed", res)
	}
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "10-open m1.small")
	h, _ := st.ResourceHistory(ctx, "c1", []string{"srv-1"})
	if v := h[0].Records[0].Version; v != 1 {
		t.Errorf("version after duplicates = %d, want 1 (untouched)", v)
	}
}

func testEventsOutOfOrder(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	// The delete arrives first: nothing is open, nothing is billed.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("del", notification.Close, 3600, "")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"))
	// Then its create: one span [10, 3600).
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("new", notification.Open, 10, "m1.small")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "10-3600 m1.small")
	// A resize that happened in between arrives last: the span splits at its second.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("rsz", notification.Change, 600, "m1.large")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "10-600 m1.small", "600-3600 m1.large")
	// Created and deleted within the same second, in one batch given backwards: zero seconds.
	e1, e2 := ev("z-del", notification.Close, 50, ""), ev("z-new", notification.Open, 50, "m1.tiny")
	e1.ResourceID, e2.ResourceID = "srv-z", "srv-z"
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{e1, e2}})
	wantSpans(t, spansOf(t, st, "c1", "srv-z"))
}

func testEventsChange(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	power := func(id string, s int, state string) notification.Event {
		e := ev(id, notification.Change, s, "m1.small")
		e.Attributes["state"] = state
		return e
	}
	open := ev("a", notification.Open, 0, "m1.small")
	open.Attributes["state"] = "active"
	// The legacy and the versioned create of the same server: one span, not two.
	twin := open
	twin.MessageID = "a-versioned"
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{
		open, twin,
		power("b", 100, "stopped"),
		power("c", 200, "active"),
		power("d", 250, "active"), // nothing changes
		ev("e", notification.Close, 300, ""),
		ev("f", notification.Change, 400, "m1.large"), // after the delete: ignored
	}})
	if res.Recorded != 7 {
		t.Errorf("recorded = %d, want 7", res.Recorded)
	}
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-100 m1.small", "100-200 m1.small", "200-300 m1.small")
	h, _ := st.ResourceHistory(ctx, "c1", []string{"srv-1"})
	var states []string
	for _, r := range h[0].Records {
		states = append(states, r.Attributes["state"])
	}
	if !reflect.DeepEqual(states, []string{"active", "stopped", "active"}) {
		t.Errorf("states = %v, want active, stopped, active", states)
	}
	// A change whose attributes equal the current ones, arriving late, leaves the records alone.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{power("g", 50, "active")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-100 m1.small", "100-200 m1.small", "200-300 m1.small")
	// A late stop before the one at 100 moves the boundary: the record starting at 100 goes.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{power("h", 60, "stopped")}})
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-60 m1.small", "60-200 m1.small", "200-300 m1.small")
}

func testEventsLateClose(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	open := ev("o", notification.Open, 0, "m1.small")
	open.Time = day(10, 1)
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{open}})
	u := usage(t, st, day(11, 1), "c1")
	ref := refsOf(u["srv-1"])[day(10, 1)]
	mustFinalize(t, st, inv("c1", month(10), charge("srv-1", month(10))), ref)
	h, err := st.ResourceHistory(ctx, "c1", []string{"srv-1"})
	if err != nil {
		t.Fatalf("resource history: %v", err)
	}
	if len(h) != 1 || len(h[0].Records) != 1 || !h[0].Records[0].Settled {
		t.Fatalf("history after finalizing October = %+v, want srv-1's one open record settled by Finalize", h)
	}
	// The delete of October 20 arrives after October was invoiced as a whole month.
	cl := ev("c", notification.Close, 0, "")
	cl.Time = day(10, 20)
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{cl}})
	if !reflect.DeepEqual(res.Customers, []string{"c1"}) {
		t.Errorf("customers changed = %v, want [c1]", res.Customers)
	}
	h, _ = st.ResourceHistory(ctx, "c1", []string{"srv-1"})
	r := h[0].Records[0]
	if r.Settled || r.Version != ref.Version+1 || !r.End.Equal(day(10, 20)) {
		t.Errorf("record after the late close = %+v, want unsettled, version %d, ending October 20", r, ref.Version+1)
	}
	wantSet(t, "charged", h[0].Charged, month(10))
}

func testEventsOrphanClose(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	fip := func(id string, action notification.Action, s int, project string) notification.Event {
		return notification.Event{MessageID: id, EventType: "floatingip." + string(action), ResourceType: "os.neutron.floatingip",
			ResourceID: "fip-1", ProjectID: project, Action: action, Time: at(s)}
	}
	// The delete carries only the id and arrives before the create.
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{fip("d", notification.Close, 500, "")}})
	if res.Recorded != 1 || res.Pending != 1 {
		t.Errorf("orphan close: %+v, want recorded and pending", res)
	}
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{fip("c", notification.Open, 20, "c2")}})
	wantSpans(t, spansOf(t, st, "c2", "fip-1"), "20-500 ")
	// The other way round: created, then a delete without a project closes it.
	g := func(e notification.Event) notification.Event { e.ResourceID = "fip-2"; e.MessageID += "2"; return e }
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{g(fip("c", notification.Open, 30, "c2"))}})
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{g(fip("d", notification.Close, 90, ""))}})
	wantSpans(t, spansOf(t, st, "c2", "fip-2"), "30-90 ")
	evs, err := es.ResourceEvents(ctx, "fip-1")
	if err != nil || len(evs) != 2 || evs[0].Action != notification.Open || evs[1].ProjectID != "c2" {
		t.Errorf("ResourceEvents(fip-1) = %+v, %v; want the open, then the close adopted by c2", evs, err)
	}
}

func testEventsUnknownProjects(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	e := ev("x1", notification.Open, 0, "m1.small")
	e.ProjectID = "p-new"
	// Without a template, events of unknown projects are refused (the listener quarantines them).
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("k", notification.Open, 0, "m1.tiny"), e}})
	if !reflect.DeepEqual(res.Refused, []int{1}) || res.Recorded != 1 {
		t.Errorf("no template: %+v, want events[1] refused, 1 recorded", res)
	}
	// With one, the project becomes a customer on first sight, with the template's defaults.
	tpl := &billing.Customer{Currency: "USD", Policy: "standard"}
	res = recordEvents(t, es, store.EventBatch{Events: []notification.Event{e}, NewCustomer: tpl})
	if !reflect.DeepEqual(res.CreatedCustomers, []string{"p-new"}) || res.Recorded != 1 {
		t.Errorf("template: %+v, want p-new created and the event recorded", res)
	}
	cs, err := st.GetCustomers(ctx, []string{"p-new"})
	if err != nil || len(cs) != 1 || cs[0].Currency != "USD" || cs[0].Policy != "standard" || cs[0].Status != billing.Active {
		t.Fatalf("created customer = %+v, %v; want active, USD, policy standard", cs, err)
	}
	wantSpans(t, spansOf(t, st, "p-new", "srv-1"), "0-open m1.small")
	// identity.project.created creates, identity.project.deleted closes.
	proj := func(id string, a notification.Action, s int) notification.Event {
		return notification.Event{MessageID: id, EventType: "identity.project", ResourceType: notification.CustomerType,
			ResourceID: "p-k", ProjectID: "p-k", Action: a, Time: at(s)}
	}
	res = recordEvents(t, es, store.EventBatch{Events: []notification.Event{proj("pc", notification.Open, 0)}, NewCustomer: tpl})
	if !reflect.DeepEqual(res.CreatedCustomers, []string{"p-k"}) {
		t.Errorf("project created: %+v, want p-k created", res)
	}
	res = recordEvents(t, es, store.EventBatch{Events: []notification.Event{proj("pd", notification.Close, 99)}, NewCustomer: tpl})
	cs, _ = st.GetCustomers(ctx, []string{"p-k"})
	if len(cs) != 1 || cs[0].Status != billing.Closed || !reflect.DeepEqual(res.Customers, []string{"p-k"}) {
		t.Errorf("project deleted: customer %+v, result %+v; want closed", cs, res)
	}
	// A deleted project that was never a customer is not created.
	res = recordEvents(t, es, store.EventBatch{Events: []notification.Event{func() notification.Event {
		e := proj("pd2", notification.Close, 5)
		e.ResourceID, e.ProjectID = "p-gone", "p-gone"
		return e
	}()}, NewCustomer: tpl})
	if len(res.CreatedCustomers) != 0 {
		t.Errorf("deleted unknown project created %v", res.CreatedCustomers)
	}
}

func testEventsQuarantine(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	q := store.QuarantinedMessage{Reason: notification.ReasonUnparseable, Detail: "body is not JSON", Exchange: "nova",
		RoutingKey: "notifications.info", Body: []byte("\x00\xffgarbage")}
	q2 := store.QuarantinedMessage{Reason: notification.ReasonUnknownEvent, EventType: "orchestration.stack.create.end",
		MessageID: "m-9", Body: []byte(`{"event_type":"orchestration.stack.create.end","payload":{}}`)}
	res := recordEvents(t, es, store.EventBatch{Quarantine: []store.QuarantinedMessage{q, q2}})
	if res.Quarantined != 2 {
		t.Errorf("quarantined = %d, want 2", res.Quarantined)
	}
	res = recordEvents(t, es, store.EventBatch{Quarantine: []store.QuarantinedMessage{q}}) // redelivered
	if res.Quarantined != 0 {
		t.Errorf("redelivered garbage quarantined again: %+v", res)
	}
	got, err := es.Quarantined(ctx, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("Quarantined = %+v, %v; want 2 messages", got, err)
	}
	if string(got[0].Body) != string(q.Body) || got[0].Reason != q.Reason || got[0].Exchange != "nova" ||
		got[1].EventType != q2.EventType || got[1].MessageID != "m-9" {
		t.Errorf("Quarantined = %+v, want the bodies and reasons as given", got)
	}
}

// One batch holds a resource seen before (its stored events and records are read back), a new
// one (nothing to read), a redelivery and a close that arrives before its open.
func testEventsMixedBatch(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{ev("a-open", notification.Open, 0, "m1.small")}})
	on := func(e notification.Event, resource string) notification.Event { e.ResourceID = resource; return e }
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{
		ev("a-open", notification.Open, 0, "m1.small"),         // redelivered: a no-op
		ev("a-resize", notification.Change, 100, "m1.large"),   // srv-1: stored before this batch
		on(ev("b-close", notification.Close, 80, ""), "srv-2"), // srv-2: new, its close first
		on(ev("b-open", notification.Open, 50, "m1.tiny"), "srv-2"),
	}})
	if res.Recorded != 3 || res.Duplicates != 1 || !reflect.DeepEqual(res.Customers, []string{"c1"}) {
		t.Errorf("mixed batch: %+v, want 3 recorded, 1 duplicate, customers [c1]", res)
	}
	wantSpans(t, spansOf(t, st, "c1", "srv-1"), "0-100 m1.small", "100-open m1.large")
	wantSpans(t, spansOf(t, st, "c1", "srv-2"), "50-80 m1.tiny")
}

// testEventsMarkBalancesStale: a batch that changes a customer's spans makes its stored burn state
// stale (the balance jobs recompute it), and a batch of duplicates does not.
func testEventsMarkBalances(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	bs := capability[store.Balances](t, st)
	seed(t, st)
	marks := func() int64 {
		t.Helper()
		m, err := bs.BurnMarks(ctx, []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		return m["c1"]
	}
	before := marks()
	open := ev("b1", notification.Open, 10, "m1.small")
	resize := ev("b2", notification.Change, 20, "m1.large")
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{open, resize}})
	after := marks()
	if after <= before {
		t.Fatalf("burn mark %d → %d after a batch that opened and changed spans: want it bumped", before, after)
	}
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{open}})
	if m := marks(); m != after {
		t.Errorf("burn mark %d → %d after a batch of duplicates: want it unchanged", after, m)
	}
}

// testEventsRefuseUnstorable: an event with a NUL or a control character in a text field, an id
// over store.EventLimits or a time outside store.EventTimeRange is refused by every backend,
// before anything of its batch is written (PostgreSQL used to fail the commit with SQLSTATE
// 22021 or 54000 where the embedded store accepted it). The limits themselves are accepted.
func testEventsRefuseUnstorable(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	good := ev("good", notification.Open, 0, "m1.small")
	bad := map[string]func(e *notification.Event){
		"NUL in the resource id":     func(e *notification.Event) { e.ResourceID = "abc\x00def" },
		"8192-byte resource id":      func(e *notification.Event) { e.ResourceID = strings.Repeat("x", 8192) },
		"escape in the resource id":  func(e *notification.Event) { e.ResourceID = "srv\x1b[31m" },
		"NUL in the message id":      func(e *notification.Event) { e.MessageID = "m\x00" },
		"long message id":            func(e *notification.Event) { e.MessageID = strings.Repeat("m", store.EventLimits.MessageID+1) },
		"NUL in the project":         func(e *notification.Event) { e.ProjectID = "c1\x00" },
		"NUL in the event type":      func(e *notification.Event) { e.EventType = "compute.\x00" },
		"invalid UTF-8 resource id":  func(e *notification.Event) { e.ResourceID = "srv-\xff" },
		"NUL in an attribute value":  func(e *notification.Event) { e.Attributes = map[string]string{"flavor": "m1.\x00"} },
		"long attribute value":       func(e *notification.Event) { e.Attributes = map[string]string{"flavor": strings.Repeat("f", 256)} },
		"C1 control in an attribute": func(e *notification.Event) { e.Attributes = map[string]string{"fla\u0085vor": "x"} },
		"year 1969":                  func(e *notification.Event) { e.Time = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) },
	}
	for name, spoil := range bad {
		e := ev("bad", notification.Open, 5, "m1.small")
		e.ResourceID = "srv-bad"
		spoil(&e)
		_, err := es.RecordEvents(ctx, store.EventBatch{Events: []notification.Event{good, e}})
		if err == nil {
			t.Errorf("%s: recorded, want refused", name)
			continue
		}
		if !errors.Is(err, store.ErrBadEventField) && name != "year 1969" {
			t.Errorf("%s: %v, want store.ErrBadEventField", name, err)
		}
		if strings.ContainsRune(err.Error(), 0) {
			t.Errorf("%s: the error holds a NUL: %q", name, err)
		}
	}
	if evs, err := es.ResourceEvents(ctx, "srv-1"); err != nil || len(evs) != 0 {
		t.Fatalf("events of srv-1 after refused batches = %+v, %v; want none (all or nothing)", evs, err)
	}
	// At the limits: stored, and read back as given.
	e := ev(strings.Repeat("m", store.EventLimits.MessageID), notification.Open, 7, strings.Repeat("f", store.EventLimits.AttrValue))
	e.ResourceID = strings.Repeat("r", store.EventLimits.ResourceID)
	e.ProjectID = "c1"
	e.Attributes["state"] = "soft_deleted ünïcödé 服务器"
	res := recordEvents(t, es, store.EventBatch{Events: []notification.Event{e}})
	if res.Recorded != 1 {
		t.Fatalf("event at the limits: %+v, want recorded", res)
	}
	got, err := es.ResourceEvents(ctx, e.ResourceID)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Attributes, e.Attributes) || got[0].MessageID != e.MessageID {
		t.Errorf("read back %+v, %v; want %+v", got, err, e)
	}
}

// testEventsQuarantineAnyText: a quarantined message keeps its raw body whatever it holds, and
// its text fields are stored escaped when they hold a NUL, other control characters or invalid
// UTF-8: the quarantine itself never refuses a message.
func testEventsQuarantineAnyText(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	body := []byte("{\"event_type\": \"x\u0000\", \"payload\": {}}\x00\xff")
	q := store.QuarantinedMessage{Reason: notification.ReasonBadField, MessageID: "abc\x00def", EventType: "compute.\x00\xff",
		Detail: "resource id \"abc\x00def\": control character\nsecond line", Exchange: "nova\x00", RoutingKey: "k\x01",
		Body: body}
	res := recordEvents(t, es, store.EventBatch{Quarantine: []store.QuarantinedMessage{q}})
	if res.Quarantined != 1 {
		t.Fatalf("quarantined = %d, want 1", res.Quarantined)
	}
	got, err := es.Quarantined(ctx, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("Quarantined = %+v, %v", got, err)
	}
	g := got[0]
	if string(g.Body) != string(body) {
		t.Errorf("body = %q, want the raw bytes %q", g.Body, body)
	}
	if g.MessageID != `abc\x00def` || g.EventType != `compute.\x00\xff` || g.Exchange != `nova\x00` || g.RoutingKey != `k\x01` {
		t.Errorf("text fields = %q %q %q %q, want escaped", g.MessageID, g.EventType, g.Exchange, g.RoutingKey)
	}
	if !strings.Contains(g.Detail, "\nsecond line") || strings.ContainsRune(g.Detail, 0) {
		t.Errorf("detail = %q, want newlines kept and the NUL escaped", g.Detail)
	}
}

// testEventsSkew: an open is stamped from its payload (launched_at), a change from the envelope;
// with clock skew a change can carry a second before the open of its own life. The open never
// re-applies its older attributes over that change (issue 12, 3): the life starts at the open,
// with the change applied; a later twin open fills but never undoes; a close stamped before the
// first open bills nothing rather than leaving a span open forever. Arrival order never matters.
func testEventsSkew(t *testing.T, st store.Store) {
	es := capability[store.Events](t, st)
	seed(t, st)
	withState := func(e notification.Event, resource, state string) notification.Event {
		e.ResourceID = resource
		e.Attributes = map[string]string{"flavor": "m1.small", "state": state}
		return e
	}
	states := func(resource string) []string {
		t.Helper()
		h, err := st.ResourceHistory(ctx, "c1", []string{resource})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range h {
			for _, r := range u.Records {
				end := "open"
				if !r.End.IsZero() {
					end = fmt.Sprint(int(r.End.Sub(at(0)).Seconds()))
				}
				out = append(out, fmt.Sprintf("%d-%s %s %s", int(r.Start.Sub(at(0)).Seconds()), end, r.Attributes["flavor"], r.Attributes["state"]))
			}
		}
		return out
	}
	// Launched at 100 (payload), stopped at 95 by the envelope of a host 5 s behind: one span
	// from 100, stopped. Both arrival orders, in one batch and in two.
	for i, batches := range [][][]string{{{"open", "change"}}, {{"change", "open"}}, {{"open"}, {"change"}}, {{"change"}, {"open"}}} {
		res := fmt.Sprintf("srv-skew-%d", i)
		mk := map[string]notification.Event{
			"open":   withState(ev(res+"-o", notification.Open, 100, ""), res, "active"),
			"change": withState(ev(res+"-c", notification.Change, 95, ""), res, "stopped"),
		}
		for _, b := range batches {
			var evs []notification.Event
			for _, k := range b {
				evs = append(evs, mk[k])
			}
			recordEvents(t, es, store.EventBatch{Events: evs})
		}
		wantSpans(t, states(res), "100-open m1.small stopped")
	}
	// A change after that, at 200, starts again: the skewed one stays where it was put.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{withState(ev("s0-on", notification.Change, 200, ""), "srv-skew-0", "active")}})
	wantSpans(t, states("srv-skew-0"), "100-200 m1.small stopped", "200-open m1.small active")

	// The legacy create at 0, stopped at 100, the versioned twin create stamped 150: stays stopped.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{
		withState(ev("tw-o", notification.Open, 0, ""), "srv-twin", "active"),
		withState(ev("tw-c", notification.Change, 100, ""), "srv-twin", "stopped"),
	}})
	twin := withState(ev("tw-o2", notification.Open, 150, ""), "srv-twin", "active")
	twin.Attributes["vcpus"] = "1"
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{twin}})
	wantSpans(t, states("srv-twin"), "0-100 m1.small active", "100-open m1.small stopped")

	// Deleted at 48 by one clock, launched at 50 by another: nothing billed, nothing left open.
	recordEvents(t, es, store.EventBatch{Events: []notification.Event{
		withState(ev("ec-c", notification.Close, 48, ""), "srv-early", "deleted"),
		withState(ev("ec-o", notification.Open, 50, ""), "srv-early", "active"),
	}})
	wantSpans(t, states("srv-early"))
}
