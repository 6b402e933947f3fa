package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/govalues/decimal"
)

// The Gnocchi-fed tests run against the real Gnocchi .ci/gnocchi.sh starts (BILEAN_TEST_GNOCCHI_URL,
// default http://127.0.0.1:8041, basic auth admin with an empty password). They skip when it is
// down, unless CI=true, where they fail (gnocchitest.Client decides).

// gnocchiConfig is the part of the configuration the Gnocchi-fed runs add to etc/bilean.yaml: a
// standalone Gnocchi, outgoing traffic as a meter (a cumulative byte counter: its increase, in
// GB) and servers' spans read from Gnocchi's instance resources.
const gnocchiConfig = `
openstack:
  auth: basic
  gnocchi_url: %s
  username: admin
  timeout: 30s
  retries: 1
  retry_wait: 50ms
gnocchi:
  enabled: true
  meters:
    - {name: network.outgoing.bytes, metric: network.outgoing.bytes, resource_type: instance_network_interface,
       aggregation: rate, convert: bytes_to_gb}
  spans:
    - {resource_type: instance, billed_as: os.nova.server, source: gnocchi, attributes: {flavor: flavor_name, flavor_id: flavor_id}}
`

// meteredPolicy prices traffic with graduated tiers after 100 GB included a month, and servers
// by flavor. The tiers apply to the traffic beyond the included 100 GB.
var meteredPolicy = billing.Policy{Name: "metered-e2e", Currency: "EUR", Fee: dec("0"),
	Included: map[string]decimal.Decimal{"network.outgoing.bytes": dec("100")},
	Rules: []billing.RuleSpec{
		{Type: "meter", Spec: `{meter: network.outgoing.bytes, unit: GB, description: Outgoing traffic,
  price: {model: graduated, tiers: [{up_to: 1000, price: "0.05"}, {up_to: 1500, price: "0.03"}, {price: "0.02"}]}}`},
		{Type: "os.nova.server", Spec: `flavors: {m1.small: "0.02", m1.large: "0.08"}`},
		{Type: "os.neutron.floatingip", Spec: `price_per_hour: "0.005"`},
	}}

// newGnocchiHarness is a fresh embedded store with etc/bilean.yaml plus gnocchiConfig pointing
// at url. The same configuration is written to h.configPath (with the store's path) for the
// bilean binary.
func newGnocchiHarness(t *testing.T, url string) (*harness, string) {
	t.Helper()
	return newConfiguredHarness(t, fmt.Sprintf(gnocchiConfig, url))
}

// newConfiguredHarness is a fresh embedded store with etc/bilean.yaml plus extra, written to the
// returned configuration path (with the store's path) for the bilean binary.
func newConfiguredHarness(t *testing.T, extra string) (*harness, string) {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("..", "etc", "bilean.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "bilean.db")
	text := strings.Replace(string(base), "url: sqlite:var/bilean.db", "url: sqlite:"+dbPath, 1) + extra
	cfgPath := filepath.Join(dir, "bilean.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{t: t, st: st, cfg: cfg, out: filepath.Join(dir, "invoices")}, cfgPath
}

// seedMetered stores meteredPolicy and the customers, each subscribed to it since January.
func (h *harness) seedMetered(customers ...string) { h.seedOn(meteredPolicy, customers...) }

// seedOn stores the policy and the customers (20 % tax), each subscribed to it since January and
// billed by Bilean from October on: what Gnocchi saw before is an earlier system's.
func (h *harness) seedOn(p billing.Policy, customers ...string) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.PutPolicies(ctx, []billing.Policy{p}); err != nil {
		h.t.Fatal(err)
	}
	var cs []billing.Customer
	var subs []billing.Subscription
	for _, id := range customers {
		cs = append(cs, billing.Customer{ID: id, Name: "Project " + id, Currency: "EUR", TaxRate: dec("0.20"), Status: billing.Active,
			BillingStart: ts("2026-10-01T00:00:00Z")})
		subs = append(subs, billing.Subscription{CustomerID: id, Policy: p.Name, Start: ts("2026-01-01T00:00:00Z")})
	}
	if err := h.st.PutCustomers(ctx, cs); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.AddSubscriptions(ctx, subs); err != nil {
		h.t.Fatal(err)
	}
}

// trafficSeed is what one project was given in Gnocchi, with its outgoing traffic in October
// and November worked out from the increments the seeder posted (not from what Gnocchi answers).
type trafficSeed struct {
	project  string
	nics     []string
	nicOct   map[string]decimal.Decimal // GB per interface that has October traffic
	oct, nov decimal.Decimal            // GB over all interfaces
	// A server seeded in Gnocchi, when there is one: its id, flavor and hours in October.
	instance, flavor, octHours string
}

// nicSpec is one network interface: it lives [start, end) (zero end: still alive), its
// cumulative counter is sampled at HH:30 every hour up to Nov 1 02:00 and grows by inc bytes an
// hour; it restarts from zero at reset (a reboot) when set.
type nicSpec struct {
	start, end time.Time
	inc        int64
	reset      time.Time
}

// seeder collects resources' measures to post them in one call.
type seeder struct {
	t        testing.TB
	gn       *gnocchi.Client
	measures map[string]map[string][]gnocchi.Measure
}

var (
	octStart = ts("2026-10-01T00:00:00Z")
	novStart = ts("2026-11-01T00:00:00Z")
	decStart = ts("2026-12-01T00:00:00Z")
	seedStop = ts("2026-11-01T02:00:00Z")
)

func (s *seeder) create(typ, project string, start, end time.Time, attrs map[string]any, metrics ...string) string {
	s.t.Helper()
	id := gnocchitest.UUID()
	ms := map[string]string{}
	for _, m := range metrics {
		ms[m] = gnocchitest.Policy
	}
	r := gnocchi.NewResource{ID: id, ProjectID: project, UserID: "u-" + project, StartedAt: start, Metrics: ms, Attributes: attrs}
	if !end.IsZero() {
		r.EndedAt = &end
	}
	if _, err := s.gn.CreateResource(context.Background(), typ, r); err != nil {
		s.t.Fatalf("create %s of %s: %v", typ, project, err)
	}
	return id
}

// nic creates one interface and its measures, and adds its traffic to ts.
func (s *seeder) nic(ts *trafficSeed, n nicSpec) {
	id := s.create("instance_network_interface", ts.project, n.start, n.end, map[string]any{"name": "tap-" + ts.project}, "network.outgoing.bytes")
	ts.nics = append(ts.nics, id)
	stop := seedStop
	if !n.end.IsZero() && n.end.Before(stop) {
		stop = n.end
	}
	var counter, oct, nov int64
	var ms []gnocchi.Measure
	for at := n.start.Add(30 * time.Minute); at.Before(stop); at = at.Add(time.Hour) {
		if at.Equal(n.reset) {
			counter = 0
		}
		counter += n.inc
		ms = append(ms, gnocchi.NewMeasure(at, float64(counter)))
		// The increment of an hour belongs to the month of its hourly bucket.
		switch b := at.Truncate(time.Hour); {
		case !b.Before(octStart) && b.Before(novStart):
			oct += n.inc
		case !b.Before(novStart) && b.Before(decStart):
			nov += n.inc
		}
	}
	s.measures[id] = map[string][]gnocchi.Measure{"network.outgoing.bytes": ms}
	gb := func(bytes int64) decimal.Decimal { return decimal.MustNew(bytes, 9) } // 10⁹ bytes a GB
	if oct > 0 {
		ts.nicOct[id] = gb(oct)
	}
	ts.oct, _ = ts.oct.Add(gb(oct))
	ts.nov, _ = ts.nov.Add(gb(nov))
}

func (s *seeder) post() {
	s.t.Helper()
	if err := s.gn.PostResourceMeasures(context.Background(), s.measures); err != nil {
		s.t.Fatalf("post measures: %v", err)
	}
}

// octoberTraffic is the October data of the Gnocchi-fed tests of October, seeded by each test
// under project ids unique to it (so reruns against the same Gnocchi never collide):
//
//   - A: interface a1 lives all October (from Sep 30 20:00), +2,000,123,456 B an hour, its
//     counter restarting on Oct 15 09:30; interface a2 lives Oct 10 12:00 → Oct 20 00:00 (228 h),
//     +500,000,000 B an hour; a server m1.large lives Oct 10 12:00 → Oct 20 00:00 (228 h).
//   - B: interface b1 lives all October, +250,000,999 B an hour; interface b2 ended Sep 15
//     (+9 GB an hour) and must not count; a server m1.small lives from Sep 30 18:00 on (744 h
//     of October).
//   - C: interface c1 lives all October, +1,000,000,000 B an hour.
type octoberTraffic struct {
	a, b, c trafficSeed
}

// seedOctober seeds the October data and waits until Gnocchi has processed it. It skips the
// test when Gnocchi is down (fails it with CI=true).
func seedOctober(t *testing.T) *octoberTraffic {
	t.Helper()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	newSeed := func(name string) trafficSeed {
		return trafficSeed{project: "e2e-" + run + "-" + name, nicOct: map[string]decimal.Decimal{}}
	}
	d := &octoberTraffic{a: newSeed("a"), b: newSeed("b"), c: newSeed("c")}
	s := &seeder{t: t, gn: gn, measures: map[string]map[string][]gnocchi.Measure{}}
	sep30 := ts("2026-09-30T20:00:00Z")
	s.nic(&d.a, nicSpec{start: sep30, inc: 2_000_123_456, reset: ts("2026-10-15T09:30:00Z")})
	s.nic(&d.a, nicSpec{start: ts("2026-10-10T12:00:00Z"), end: ts("2026-10-20T00:00:00Z"), inc: 500_000_000})
	d.a.instance, d.a.flavor, d.a.octHours = s.create("instance", d.a.project, ts("2026-10-10T12:00:00Z"), ts("2026-10-20T00:00:00Z"),
		map[string]any{"flavor_name": "m1.large", "flavor_id": "3", "display_name": "web"}), "m1.large", "228"
	d.b.instance, d.b.flavor, d.b.octHours = s.create("instance", d.b.project, ts("2026-09-30T18:00:00Z"), time.Time{},
		map[string]any{"flavor_name": "m1.small", "flavor_id": "2", "display_name": "db"}), "m1.small", "744"
	s.nic(&d.b, nicSpec{start: sep30, inc: 250_000_999})
	s.nic(&d.b, nicSpec{start: ts("2026-09-01T00:00:00Z"), end: ts("2026-09-15T00:00:00Z"), inc: 9_000_000_000})
	s.nic(&d.c, nicSpec{start: sep30, inc: 1_000_000_000})
	s.post()
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)
	return d
}

// meterLine is an expected meter line of an invoice.
type meterLine struct {
	description string // the end of the description
	quantity    string
	unitPrice   string
	amount      string
}

// meterLines returns the invoice's meter lines, in order.
func meterLines(inv *invoice.Invoice) []invoice.Line {
	var out []invoice.Line
	for _, l := range inv.Lines {
		if l.ResourceType == "meter" {
			out = append(out, l)
		}
	}
	return out
}

// checkMeterLines compares the invoice's meter lines with the expected ones (quantities in GB,
// unit prices and amounts to the cent), and checks that each covers the period.
func checkMeterLines(t *testing.T, inv *invoice.Invoice, want []meterLine) {
	t.Helper()
	got := meterLines(inv)
	if len(got) != len(want) {
		for _, l := range got {
			t.Logf("meter line: %s | %s %s × %s = %s", l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount)
		}
		t.Fatalf("%s: %d meter lines, want %d", inv.CustomerID, len(got), len(want))
	}
	for i, w := range want {
		l := got[i]
		if !strings.HasSuffix(l.Description, w.description) || l.Quantity.String() != w.quantity || l.Unit != "GB" ||
			l.UnitPrice.String() != w.unitPrice || l.Amount.String() != w.amount {
			t.Errorf("%s meter line %d = %q %s %s × %s = %s, want …%q %s GB × %s = %s", inv.CustomerID, i, l.Description,
				l.Quantity, l.Unit, l.UnitPrice, l.Amount, w.description, w.quantity, w.unitPrice, w.amount)
		}
		// (Seconds is not checked: a line of a period total carries the seconds of all the
		// pieces summed, here the period once per interface.)
		if !l.Start.Equal(inv.Period.Start) || !l.End.Equal(inv.Period.End) {
			t.Errorf("%s meter line %d covers [%s, %s), want the period %s", inv.CustomerID, i, l.Start, l.End, inv.Period)
		}
	}
}

// tcpProxy forwards connections to Gnocchi until stopped; a stopped proxy refuses new
// connections and cuts open ones, as a Gnocchi that went down does.
type tcpProxy struct {
	ln     net.Listener
	addr   string
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startTCPProxy(t *testing.T, target, addr string) *tcpProxy {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, addr: ln.Addr().String(), target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
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
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}
