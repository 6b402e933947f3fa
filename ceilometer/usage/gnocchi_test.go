package usage_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

var october = interval.Range{
	Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
	End:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
}

// meters are the meter definitions the tests bill, as an operator would write them.
func meters() []config.Meter {
	cfg := &config.Config{Gnocchi: config.Gnocchi{Meters: []config.Meter{
		// vcpus is a gauge sampled hourly: the sum of hourly means is vCPU-hours.
		{Name: "vcpu.hours", Metric: "vcpus", ResourceType: "instance", Aggregation: "sum", Method: "mean", Unit: "vCPU-hour"},
		{Name: "vcpus.max", Metric: "vcpus", ResourceType: "instance", Aggregation: "max"},
		// a cumulative byte counter: its increase, in GB.
		{Name: "network.outgoing.bytes", Metric: "network.outgoing.bytes", ResourceType: "instance_network_interface",
			Aggregation: "rate", Convert: "bytes_to_gb"},
	}}}
	cfg.WithDefaults()
	return cfg.Gnocchi.Meters
}

// seeded is what one project was given, and what the test works out it must be billed.
type seeded struct {
	project      string
	vcpuHours    int64 // Σ hourly vcpus over the resource's October hours
	vcpusMax     int64 // largest hourly vcpus of the whole-month instance
	bytesOut     int64 // Σ counter increments in October
	instances    []string
	partial      string // instance that lived Oct 10 12:00 → Oct 20 00:00
	partialHours int64
}

// seedProject creates, for one project: an instance living all October (and before), an instance
// living part of it, an instance that ended in September, and a network interface whose
// cumulative counter resets once. Measures are hourly.
func seedProject(t testing.TB, ctx context.Context, c *gnocchi.Client, project string, k int64) seeded {
	t.Helper()
	s := seeded{project: project}
	measures := map[string]map[string][]gnocchi.Measure{}
	mk := func(typ string, start time.Time, end *time.Time, attrs map[string]any, metrics ...string) string {
		id := gnocchitest.UUID()
		ms := map[string]string{}
		for _, m := range metrics {
			ms[m] = gnocchitest.Policy
		}
		if _, err := c.CreateResource(ctx, typ, gnocchi.NewResource{ID: id, ProjectID: project, UserID: "u-" + project,
			StartedAt: start, EndedAt: end, Metrics: ms, Attributes: attrs}); err != nil {
			t.Fatalf("create %s: %v", typ, err)
		}
		measures[id] = map[string][]gnocchi.Measure{}
		return id
	}
	// Whole month: vcpus = 1 + (hour % 3) + k%2, from Sep 30 18:00 to Nov 1 02:00 (points outside
	// October must not count).
	full := mk("instance", time.Date(2026, 9, 30, 18, 0, 0, 0, time.UTC), nil,
		map[string]any{"flavor_name": "m1.small", "flavor_id": "1", "display_name": "web-" + project}, "vcpus")
	for h := time.Date(2026, 9, 30, 18, 0, 0, 0, time.UTC); h.Before(time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)); h = h.Add(time.Hour) {
		v := 1 + int64(h.Hour()%3) + k%2
		measures[full]["vcpus"] = append(measures[full]["vcpus"], gnocchi.NewMeasure(h, float64(v)))
		if october.Contains(h) {
			s.vcpuHours += v
			s.vcpusMax = max(s.vcpusMax, v)
		}
	}
	// Part of the month: 4 vCPUs from Oct 10 12:00 to Oct 20 00:00 = 228 hours.
	pStart, pEnd := time.Date(2026, 10, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	s.partial = mk("instance", pStart, &pEnd, map[string]any{"flavor_name": "m1.large", "flavor_id": "3"}, "vcpus")
	for h := pStart; h.Before(pEnd); h = h.Add(time.Hour) {
		measures[s.partial]["vcpus"] = append(measures[s.partial]["vcpus"], gnocchi.NewMeasure(h, 4))
		s.vcpuHours += 4
		s.partialHours++
	}
	// Ended in September: must be absent from October.
	sepStart, sepEnd := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)
	gone := mk("instance", sepStart, &sepEnd, map[string]any{"flavor_name": "m1.small"}, "vcpus")
	for h := sepStart; h.Before(sepEnd); h = h.Add(time.Hour) {
		measures[gone]["vcpus"] = append(measures[gone]["vcpus"], gnocchi.NewMeasure(h, 8))
	}
	s.instances = []string{full, s.partial}
	// A cumulative counter sampled at HH:30; the increment of hour h is 1_000_000*(1+h%5)+k, the
	// counter restarts from zero on Oct 15 09:30 (the VM rebooted).
	nic := mk("instance_network_interface", time.Date(2026, 9, 30, 20, 0, 0, 0, time.UTC), nil,
		map[string]any{"name": "tap0", "instance_id": full}, "network.outgoing.bytes")
	var counter int64
	reset := time.Date(2026, 10, 15, 9, 30, 0, 0, time.UTC)
	for h := time.Date(2026, 9, 30, 20, 30, 0, 0, time.UTC); h.Before(time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)); h = h.Add(time.Hour) {
		inc := 1_000_000*(1+int64(h.Hour()%5)) + k
		if h.Equal(reset) {
			counter = 0
		}
		counter += inc
		measures[nic]["network.outgoing.bytes"] = append(measures[nic]["network.outgoing.bytes"], gnocchi.NewMeasure(h, float64(counter)))
		// The bucket of the first October point is 00:00; the Sep 30 23:00 bucket is the baseline.
		if october.Contains(h.Truncate(time.Hour)) {
			s.bytesOut += inc
		}
	}
	if err := c.PostResourceMeasures(ctx, measures); err != nil {
		t.Fatalf("post measures: %v", err)
	}
	return s
}

func find(ms []billing.MeterTotal, project, meter, resource string) (billing.MeterTotal, bool) {
	for _, m := range ms {
		if m.CustomerID == project && m.Meter == meter && m.ResourceID == resource {
			return m, true
		}
	}
	return billing.MeterTotal{}, false
}

func sumMeter(ms []billing.MeterTotal, project, meter string) decimal.Decimal {
	total := decimal.Zero
	for _, m := range ms {
		if m.CustomerID == project && m.Meter == meter {
			total, _ = total.Add(m.Quantity)
		}
	}
	return total
}

func newSource(gn *gnocchi.Client, batch, conc, page int, spans ...config.SpanSource) *usage.Source {
	cfg := config.Gnocchi{Enabled: true, BatchSize: batch, Concurrency: conc, PageSize: page, Meters: meters(), Spans: spans}
	return usage.New(gn, cfg)
}

// TestTotalsEqualSeededMeasures: per customer, each meter's total equals what the test seeded,
// worked out from the raw values; resources of other projects and resources that ended before
// the period are not counted; a resource that lived part of the month counts its own hours.
func TestTotalsEqualSeededMeasures(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	var seeds []seeded
	for k := int64(0); k < 3; k++ {
		seeds = append(seeds, seedProject(t, ctx, gn, fmt.Sprintf("tot-%s-%d", run, k), k))
	}
	other := seedProject(t, ctx, gn, "tot-"+run+"-other", 9)
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 3*time.Minute)

	src := newSource(gn, 2, 2, 1000, config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server",
		Source: config.SourceGnocchi, Attributes: map[string]string{"flavor": "flavor_name"}})
	ids := []string{seeds[0].project, seeds[1].project, seeds[2].project}
	u, err := src.Fetch(ctx, ids, october, usage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		// e.g. project 0: Σ over 744 hours of 1+(h%3) = 248×(1+2+3) = 1488, plus 228 h × 4 = 912.
		if got, want := sumMeter(u.Meters, s.project, "vcpu.hours"), decimal.MustNew(s.vcpuHours, 0); got.Cmp(want) != 0 {
			t.Errorf("%s vcpu.hours = %s, want %d", s.project, got, s.vcpuHours)
		}
		if m, ok := find(u.Meters, s.project, "vcpu.hours", s.partial); !ok || m.Quantity.Cmp(decimal.MustNew(4*s.partialHours, 0)) != 0 {
			t.Errorf("%s partial instance vcpu.hours = %v (found %v), want %d", s.project, m.Quantity, ok, 4*s.partialHours)
		}
		if got := sumMeter(u.Meters, s.project, "vcpus.max"); got.Cmp(decimal.MustNew(s.vcpusMax+4, 0)) != 0 {
			// two instances: the full one's max plus the partial one's 4
			t.Errorf("%s Σ vcpus.max = %s, want %d", s.project, got, s.vcpusMax+4)
		}
		wantGB := decimal.MustNew(s.bytesOut, 9) // bytes → GB is a shift of 9 decimals
		if got := sumMeter(u.Meters, s.project, "network.outgoing.bytes"); got.Cmp(wantGB) != 0 {
			t.Errorf("%s network.outgoing.bytes = %s GB, want %s", s.project, got, wantGB)
		}
		var nic billing.MeterTotal
		for _, m := range u.Meters {
			if m.CustomerID == s.project && m.Meter == "network.outgoing.bytes" {
				nic = m
			}
		}
		if nic.Unit != "GB" || nic.Source != "gnocchi" || nic.Range != october || nic.Attributes["name"] != "tap0" {
			t.Errorf("%s meter total = %+v", s.project, nic)
		}
		// Spans: the whole-month instance and the partial one, nothing from September.
		var recs []billing.Record
		for _, r := range u.Records {
			if r.CustomerID == s.project {
				recs = append(recs, r)
			}
		}
		if len(recs) != 2 {
			t.Fatalf("%s records = %+v, want 2", s.project, recs)
		}
		for _, r := range recs {
			if r.ResourceID == s.partial {
				if !r.Start.Equal(time.Date(2026, 10, 10, 12, 0, 0, 0, time.UTC)) || !r.End.Equal(time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)) ||
					r.Attributes["flavor"] != "m1.large" || r.Source != "gnocchi" || r.ResourceType != "os.nova.server" {
					t.Errorf("partial record = %+v", r)
				}
			} else if !r.End.IsZero() || r.Attributes["flavor"] != "m1.small" {
				t.Errorf("full record = %+v", r)
			}
		}
	}
	for _, m := range u.Meters {
		if m.CustomerID == other.project {
			t.Errorf("meter of a project not asked for: %+v", m)
		}
	}
}

// TestPaginationOverManyResources: a search that needs several pages returns every resource
// once.
func TestPaginationOverManyResources(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{PageSize: 7})
	project := "page-" + gnocchitest.UUID()[:8]
	const n = 23
	for i := 0; i < n; i++ {
		if _, err := gn.CreateResource(ctx, "instance", gnocchi.NewResource{ID: gnocchitest.UUID(), ProjectID: project,
			StartedAt: october.Start.Add(time.Duration(i) * time.Hour), Attributes: map[string]any{"flavor_name": "m1.tiny"}}); err != nil {
			t.Fatal(err)
		}
	}
	src := newSource(gn, 10, 1, 7, config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server",
		Source: config.SourceGnocchi, Attributes: map[string]string{"flavor": "flavor_name"}})
	if err := src.Check(ctx); err != nil { // once per source: not counted below
		t.Fatal(err)
	}
	before := gn.Requests()
	u, err := src.Fetch(ctx, []string{project}, october, usage.Options{NoMeters: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range u.Records {
		if seen[r.ResourceID] {
			t.Errorf("resource %s twice", r.ResourceID)
		}
		seen[r.ResourceID] = true
	}
	if len(seen) != n {
		t.Errorf("resources = %d, want %d", len(seen), n)
	}
	// 23 resources, one revision each, 7 a page: 4 pages.
	if got := gn.Requests() - before; got != 4 {
		t.Errorf("requests = %d, want 4 pages", got)
	}
}

// TestFlavorChangeMakesTwoSpans: a resize recorded in Gnocchi's history splits the resource's
// life into two spans at the revision time, each with its own flavor. Gnocchi stamps revisions
// with the current time, so this test bills the current month.
func TestFlavorChangeMakesTwoSpans(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	now := time.Now().UTC()
	month := interval.Range{Start: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)}
	month.End = month.Start.AddDate(0, 1, 0)
	project := "resize-" + gnocchitest.UUID()[:8]
	id := gnocchitest.UUID()
	if _, err := gn.CreateResource(ctx, "instance", gnocchi.NewResource{ID: id, ProjectID: project, StartedAt: month.Start,
		Attributes: map[string]any{"flavor_name": "m1.small", "flavor_id": "1", "display_name": "db"}}); err != nil {
		t.Fatal(err)
	}
	// A rename is a revision too, but not a billed change: it must not split the span.
	if _, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"display_name": "db-renamed"}); err != nil {
		t.Fatal(err)
	}
	resized, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"flavor_name": "m1.large", "flavor_id": "3"})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := gn.ResourceHistory(ctx, "instance", id)
	if err != nil || len(hist) != 3 {
		t.Fatalf("history = %d revisions, %v; want 3", len(hist), err)
	}
	src := newSource(gn, 10, 1, 1000, config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server",
		Source: config.SourceGnocchi, Attributes: map[string]string{"flavor": "flavor_name", "flavor_id": "flavor_id"}})
	u, err := src.Fetch(ctx, []string{project}, month, usage.Options{NoMeters: true})
	if err != nil {
		t.Fatal(err)
	}
	at := interval.Norm(resized.RevisionStart)
	want := []billing.Record{
		{ResourceID: id, ResourceType: "os.nova.server", CustomerID: project, Start: month.Start, End: at,
			Attributes: map[string]string{"flavor": "m1.small", "flavor_id": "1"}, Source: "gnocchi"},
		{ResourceID: id, ResourceType: "os.nova.server", CustomerID: project, Start: at,
			Attributes: map[string]string{"flavor": "m1.large", "flavor_id": "3"}, Source: "gnocchi"},
	}
	if len(u.Records) != 2 {
		t.Fatalf("records = %+v, want 2 spans split at %s", u.Records, at)
	}
	for i, w := range want {
		g := u.Records[i]
		if g.ResourceID != w.ResourceID || !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Attributes["flavor"] != w.Attributes["flavor"] ||
			g.Attributes["flavor_id"] != w.Attributes["flavor_id"] || g.Source != w.Source || g.ResourceType != w.ResourceType {
			t.Errorf("span %d = %+v, want %+v", i, g, w)
		}
	}
}

// proxy forwards TCP connections to Gnocchi until it is stopped; a stopped proxy refuses new
// connections and cuts open ones, as a crashed Gnocchi does.
type proxy struct {
	ln       net.Listener
	addr     string
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	accepted atomic.Int64
}

func startProxy(t *testing.T, target, addr string) *proxy {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, addr: ln.Addr().String(), target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

// TestGnocchiDownMidRunFailsCleanlyAndRerunSucceeds: when Gnocchi goes away between two batches
// the fetch fails with an error that says Gnocchi did not answer and what to check, returns
// nothing partial, and a rerun once it is back gives the full answer.
func TestGnocchiDownMidRunFailsCleanlyAndRerunSucceeds(t *testing.T) {
	ctx := context.Background()
	direct := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	var ids []string
	var seeds []seeded
	for k := int64(0); k < 3; k++ {
		s := seedProject(t, ctx, direct, fmt.Sprintf("down-%s-%d", run, k), k)
		seeds = append(seeds, s)
		ids = append(ids, s.project)
	}
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 3*time.Minute)

	target := strings.TrimPrefix(gnocchitest.URL(), "http://")
	p := startProxy(t, target, "")
	defer p.stop()
	gn := gnocchitest.ClientAt(t, "http://"+p.addr, gnocchi.Options{Retries: 2, Backoff: 20 * time.Millisecond})
	src := newSource(gn, 1, 1, 1000)       // one project per call, one call at a time: 3 calls
	if err := src.Check(ctx); err != nil { // the configuration check, before the batches
		t.Fatal(err)
	}
	// Stop Gnocchi (the proxy) once the first call has gone through.
	stopped := make(chan struct{})
	base := gn.Requests()
	go func() {
		for gn.Requests() < base+2 {
			time.Sleep(time.Millisecond)
		}
		p.stop()
		close(stopped)
	}()
	u, err := src.Fetch(ctx, ids, october, usage.Options{NoSpans: true})
	<-stopped
	if err == nil {
		t.Fatalf("fetch with Gnocchi down succeeded: %d meters", len(u.Meters))
	}
	if len(u.Meters) != 0 || len(u.Records) != 0 {
		t.Errorf("a failed fetch returned partial usage: %d meters", len(u.Meters))
	}
	msg := err.Error()
	for _, want := range []string{"gnocchi POST /v1/aggregates", "Gnocchi did not answer", "openstack.gnocchi_url"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	t.Logf("error seen by the operator: %v", err)

	// Gnocchi is back on the same address: the rerun gets everything.
	p2 := startProxy(t, target, p.addr)
	defer p2.stop()
	u, err = src.Fetch(ctx, ids, october, usage.Options{NoSpans: true})
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	for _, s := range seeds {
		if got := sumMeter(u.Meters, s.project, "vcpu.hours"); got.Cmp(decimal.MustNew(s.vcpuHours, 0)) != 0 {
			t.Errorf("rerun %s vcpu.hours = %s, want %d", s.project, got, s.vcpuHours)
		}
	}
}

// TestDeletedResourceIsNotInLaterPeriods: Ceilometer ends a resource by setting its ended_at,
// which leaves a revision from before (ended_at null) in Gnocchi's history. That revision matches
// a later period's lifespan filter on its own; the resource must still not be billed for it.
func TestDeletedResourceIsNotInLaterPeriods(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	project := "gone-" + gnocchitest.UUID()[:8]
	id := gnocchitest.UUID()
	if _, err := gn.CreateResource(ctx, "instance", gnocchi.NewResource{ID: id, ProjectID: project,
		StartedAt: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), Attributes: map[string]any{"flavor_name": "m1.small"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"ended_at": gnocchi.Timestamp(time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC))}); err != nil {
		t.Fatal(err)
	}
	src := newSource(gn, 10, 1, 1000, config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server",
		Source: config.SourceGnocchi, Attributes: map[string]string{"flavor": "flavor_name"}})
	u, err := src.Fetch(ctx, []string{project}, october, usage.Options{NoMeters: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Records) != 0 {
		t.Errorf("October records of a server deleted on Sep 20: %+v", u.Records)
	}
	sep := interval.Range{Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), End: october.Start}
	if u, err = src.Fetch(ctx, []string{project}, sep, usage.Options{NoMeters: true}); err != nil {
		t.Fatal(err)
	}
	if len(u.Records) != 1 || !u.Records[0].End.Equal(time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("September records = %+v, want one ending Sep 20", u.Records)
	}
}
