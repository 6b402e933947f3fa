package synthcloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

var october = DefaultMonth

// collect returns every record of the cloud (copied out of the reused chunk) and checks that
// no chunk is larger than asked.
func collect(t testing.TB, o Options, chunk int) []billing.Record {
	t.Helper()
	c := Generate(o)
	var out []billing.Record
	err := c.Records(o, func(rs []billing.Record) error {
		if chunk > 0 && len(rs) > chunk {
			t.Fatalf("chunk of %d records, asked for at most %d", len(rs), chunk)
		}
		if len(rs) == 0 {
			t.Fatal("empty chunk")
		}
		out = append(out, rs...)
		return nil
	}, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeRecord writes a canonical text form of r (attributes sorted by key).
func writeRecord(b *bytes.Buffer, r billing.Record) {
	fmt.Fprintf(b, "%s|%s|%s|%d|%d|%s", r.CustomerID, r.ResourceType, r.ResourceID, r.Start.Unix(), r.End.Unix(), r.Source)
	for _, k := range slices.Sorted(maps.Keys(r.Attributes)) {
		fmt.Fprintf(b, "|%s=%s", k, r.Attributes[k])
	}
	b.WriteByte('\n')
}

func hashRecords(rs []billing.Record) string {
	var b bytes.Buffer
	h := sha256.New()
	for _, r := range rs {
		b.Reset()
		writeRecord(&b, r)
		h.Write(b.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashCloud(c *Cloud) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprintf("%#v|%#v|%#v|%#v", c.Customers, c.Policies, c.Subscriptions, c.Payments))))
}

func recordsOf(rs []billing.Record, customer string) []billing.Record {
	var out []billing.Record
	for _, r := range rs {
		if r.CustomerID == customer {
			out = append(out, r)
		}
	}
	return out
}

func TestSameOptionsGiveIdenticalCloud(t *testing.T) {
	o := Options{Projects: 30, Month: october, Seed: 7}
	a, b := Generate(o), Generate(o)
	if hashCloud(a) != hashCloud(b) {
		t.Fatal("two generations with the same options differ in customers, policies, subscriptions or payments")
	}
	// Different chunk sizes must not change the stream either.
	ha, hb := hashRecords(collect(t, o, 0)), hashRecords(collect(t, o, 17))
	if ha != hb {
		t.Fatalf("records differ between two generations: %s vs %s", ha, hb)
	}
	if hashRecords(collect(t, Options{Projects: 30, Month: october, Seed: 8}, 0)) == ha {
		t.Fatal("a different seed gave the same records")
	}
}

func TestDefaultsAreTheDemo(t *testing.T) {
	d := Options{}.WithDefaults()
	want := Options{Projects: 20, Month: october, Seed: 1, SpansPerProject: 12}
	if !sameOptions(d, want) {
		t.Fatalf("defaults = %+v, want %+v", d, want)
	}
	if hashRecords(collect(t, Options{}, 0)) != hashRecords(collect(t, want, 0)) {
		t.Fatal("zero options and explicit defaults give different clouds")
	}
}

func TestProjectDoesNotDependOnCloudSize(t *testing.T) {
	small, big := Options{Projects: 5}, Options{Projects: 50}
	rs5, rs50 := recordsOf(collect(t, small, 0), "p0003"), recordsOf(collect(t, big, 0), "p0003")
	if len(rs5) == 0 {
		t.Fatal("p0003 has no records")
	}
	if hashRecords(rs5) != hashRecords(rs50) {
		t.Fatal("p0003's records differ between a 5- and a 50-project cloud")
	}
	c5, c50 := Generate(small), Generate(big)
	if fmt.Sprintf("%#v", c5.Customers[2]) != fmt.Sprintf("%#v", c50.Customers[2]) {
		t.Fatalf("p0003 differs:\n%#v\n%#v", c5.Customers[2], c50.Customers[2])
	}
	for i, s := range c5.Subscriptions {
		if fmt.Sprintf("%#v", s) != fmt.Sprintf("%#v", c50.Subscriptions[i]) {
			t.Fatalf("subscription %d differs: %#v vs %#v", i, s, c50.Subscriptions[i])
		}
	}
	for i, p := range c5.Payments {
		if fmt.Sprintf("%#v", p) != fmt.Sprintf("%#v", c50.Payments[i]) {
			t.Fatalf("payment %d differs: %#v vs %#v", i, p, c50.Payments[i])
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkInvariants verifies every record invariant of the package doc and returns counts of the
// interesting cases seen.
func checkInvariants(t *testing.T, o Options, rs []billing.Record) map[string]int {
	t.Helper()
	o = o.WithDefaults()
	seen := map[string]int{}
	known := map[string]bool{}
	for i := 1; i <= o.Projects; i++ {
		known[CustomerID(i)] = true
	}
	byResource := map[string][]billing.Record{}
	owner := map[string]string{}
	for _, r := range rs {
		if !known[r.CustomerID] {
			t.Fatalf("record for unknown customer %q", r.CustomerID)
		}
		if !uuidRE.MatchString(r.ResourceID) {
			t.Fatalf("resource id %q is not a v4 UUID", r.ResourceID)
		}
		if c, ok := owner[r.ResourceID]; ok && c != r.CustomerID {
			t.Fatalf("resource %s belongs to %s and %s", r.ResourceID, c, r.CustomerID)
		}
		owner[r.ResourceID] = r.CustomerID
		if r.Source != Source {
			t.Fatalf("source %q", r.Source)
		}
		for _, tm := range []time.Time{r.Start, r.End} {
			if tm.IsZero() {
				continue
			}
			if tm.Location() != time.UTC || tm.Nanosecond() != 0 {
				t.Fatalf("time %v is not whole UTC seconds", tm)
			}
		}
		if r.Start.IsZero() {
			t.Fatalf("record without start: %+v", r)
		}
		if !r.End.IsZero() && !r.End.After(r.Start) {
			t.Fatalf("record %s ends %v, not after its start %v", r.ResourceID, r.End, r.Start)
		}
		if !r.Range().Overlaps(o.Month) {
			t.Fatalf("record %s %v does not touch the month %v", r.ResourceID, r.Range(), o.Month)
		}
		if r.Attributes["region"] != "RegionOne" && r.Attributes["region"] != "RegionTwo" {
			t.Fatalf("region %q", r.Attributes["region"])
		}
		switch r.ResourceType {
		case ServerType:
			if !slices.Contains(Flavors, r.Attributes["flavor"]) {
				t.Fatalf("flavor %q", r.Attributes["flavor"])
			}
		case VolumeType:
			var gb int
			if _, err := fmt.Sscan(r.Attributes["size"], &gb); err != nil || gb < 10 || gb > 500 {
				t.Fatalf("volume size %q", r.Attributes["size"])
			}
			if vt := r.Attributes["volume_type"]; vt != "standard" && vt != "ssd" {
				t.Fatalf("volume_type %q", vt)
			}
		case ImageType:
			var n int64
			if _, err := fmt.Sscan(r.Attributes["size"], &n); err != nil || n <= 0 {
				t.Fatalf("image size %q", r.Attributes["size"])
			}
		case FloatingIPType:
		default:
			t.Fatalf("resource type %q", r.ResourceType)
		}
		if r.Start.Before(o.Month.Start) && r.End.IsZero() {
			seen["open across the month"]++
		}
		if r.Start.Second()%2 == 1 {
			seen["odd second"]++
		}
		if !r.End.IsZero() {
			seen["closed"]++
		}
		if r.Attributes["region"] == "RegionTwo" {
			seen["RegionTwo"]++
		}
		seen[r.ResourceType]++
		byResource[r.ResourceID] = append(byResource[r.ResourceID], r)
	}
	for id, list := range byResource {
		// Emitted in time order already; verify rather than sort.
		for i := 1; i < len(list); i++ {
			prev, cur := list[i-1], list[i]
			if prev.End.IsZero() || prev.End.After(cur.Start) {
				t.Fatalf("resource %s: records %v and %v overlap", id, prev.Range(), cur.Range())
			}
			// A resource lives once, so consecutive records are a resize: contiguous, changed.
			if !prev.End.Equal(cur.Start) {
				t.Fatalf("resource %s: resize pair %v, %v is not contiguous", id, prev.Range(), cur.Range())
			}
			if maps.Equal(prev.Attributes, cur.Attributes) {
				t.Fatalf("resource %s: resize at %v changes nothing", id, cur.Start)
			}
			if !o.Month.Contains(cur.Start) {
				t.Fatalf("resource %s: resize at %v outside the month", id, cur.Start)
			}
			seen["resize "+cur.ResourceType]++
		}
	}
	return seen
}

func TestRecordInvariants(t *testing.T) {
	for _, o := range []Options{
		{},
		{Projects: 50, Seed: 3},
		{Projects: 40, SpansPerProject: 100, Seed: 99},
		{Projects: 10, SpansPerProject: 1},
		{Projects: 10, Month: interval.Range{Start: time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}},
	} {
		t.Run(fmt.Sprintf("%d×%d/seed%d", o.Projects, o.SpansPerProject, o.Seed), func(t *testing.T) {
			seen := checkInvariants(t, o, collect(t, o, 1000))
			if o.SpansPerProject == 1 {
				return
			}
			for _, k := range []string{"open across the month", "odd second", "closed", ServerType, VolumeType, ImageType, FloatingIPType, "resize " + ServerType} {
				if seen[k] == 0 {
					t.Errorf("no record is %q: %v", k, seen)
				}
			}
		})
	}
}

func TestDemoCloudShowsEveryCase(t *testing.T) {
	seen := checkInvariants(t, Options{}, collect(t, Options{}, 0))
	for _, k := range []string{"resize " + VolumeType, "RegionTwo"} {
		if seen[k] == 0 {
			t.Errorf("the 20-project demo has no record that is %q: %v", k, seen)
		}
	}
}

func TestAverageRecordsPerProject(t *testing.T) {
	for _, o := range []Options{{Projects: 50}, {Projects: 200, SpansPerProject: 100}, {Projects: 100, SpansPerProject: 3}} {
		rs := collect(t, o, 0)
		o = o.WithDefaults()
		avg := float64(len(rs)) / float64(o.Projects)
		if lo, hi := 0.8*float64(o.SpansPerProject), 1.2*float64(o.SpansPerProject); avg < lo || avg > hi {
			t.Errorf("%d projects × %d spans: average %.2f records per project, want %.1f–%.1f", o.Projects, o.SpansPerProject, avg, lo, hi)
		}
		per := map[string]int{}
		for _, r := range rs {
			per[r.CustomerID]++
		}
		if len(per) != o.Projects {
			t.Errorf("%d of %d projects have records", len(per), o.Projects)
		}
	}
}

func TestP0002ChangesPolicyMidMonth(t *testing.T) {
	c := Generate(Options{})
	var subs []billing.Subscription
	for _, s := range c.Subscriptions {
		if s.CustomerID == "p0002" {
			subs = append(subs, s)
		}
	}
	at := time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)
	if len(subs) != 2 {
		t.Fatalf("p0002 has %d subscriptions, want 2", len(subs))
	}
	if subs[0].Policy != Standard || subs[1].Policy != Business {
		t.Fatalf("p0002 policies %s → %s, want standard → business", subs[0].Policy, subs[1].Policy)
	}
	if !subs[0].End.Equal(at) || !subs[1].Start.Equal(at) || !subs[1].End.IsZero() {
		t.Fatalf("p0002 subscriptions %v and %v do not meet at %v", subs[0].Range(), subs[1].Range(), at)
	}
	if !PolicyChangeAt(october).Equal(at) {
		t.Fatalf("PolicyChangeAt = %v", PolicyChangeAt(october))
	}
}

func TestSubscriptionsCoverTheMonth(t *testing.T) {
	c := Generate(Options{Projects: 70})
	policies := map[string]billing.Policy{}
	for _, p := range c.Policies {
		policies[p.Name] = p
	}
	byCustomer := map[string][]billing.Subscription{}
	for _, s := range c.Subscriptions {
		byCustomer[s.CustomerID] = append(byCustomer[s.CustomerID], s)
	}
	for _, cu := range c.Customers {
		subs := byCustomer[cu.ID]
		if len(subs) == 0 {
			t.Fatalf("%s has no subscription", cu.ID)
		}
		if !subs[0].Start.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s subscribed from %v, want 2026-01-01", cu.ID, subs[0].Start)
		}
		if !subs[len(subs)-1].End.IsZero() {
			t.Errorf("%s's last subscription is not open", cu.ID)
		}
		for _, s := range subs {
			p, ok := policies[s.Policy]
			if !ok || p.Currency != cu.Currency {
				t.Errorf("%s (%s) subscribed to %q (%s)", cu.ID, cu.Currency, s.Policy, p.Currency)
			}
		}
		if p, ok := policies[cu.Policy]; !ok || p.Currency != cu.Currency {
			t.Errorf("%s default policy %q", cu.ID, cu.Policy)
		}
	}
	if got := byCustomer["p0035"][0].Policy; got != BusinessUSD {
		t.Errorf("p0035 (every 5th and every 7th) is on %q, want business-usd", got)
	}
}

func TestCustomers(t *testing.T) {
	c := Generate(Options{Projects: 30})
	var nonASCII, formula, zurich, usd, exempt int
	for i, cu := range c.Customers {
		idx := i + 1
		if err := cu.Validate(); err != nil {
			t.Errorf("%s: %v", cu.ID, err)
		}
		if want := fmt.Sprintf("p%04d", idx); cu.ID != want {
			t.Errorf("id %q, want %q", cu.ID, want)
		}
		if !strings.Contains(cu.Name, fmt.Sprintf("Project %04d", idx)) {
			t.Errorf("name %q lacks the project number", cu.Name)
		}
		if want := "billing@" + cu.ID + ".example"; len(cu.Contacts) != 1 || cu.Contacts[0] != want {
			t.Errorf("%s contacts %v", cu.ID, cu.Contacts)
		}
		if strings.ContainsFunc(cu.Name, func(r rune) bool { return r > 127 && r != '—' }) {
			nonASCII++
		}
		if strings.HasPrefix(cu.Name, "=") {
			formula++
		}
		if cu.Timezone == "Europe/Zurich" {
			zurich++
		}
		if wantUSD := idx%7 == 0; (cu.Currency == "USD") != wantUSD || (!wantUSD && cu.Currency != "EUR") {
			t.Errorf("%s currency %s", cu.ID, cu.Currency)
		}
		if cu.Currency == "USD" {
			usd++
		}
		if wantExempt := idx%11 == 0; cu.TaxExempt != wantExempt || (wantExempt && !cu.TaxRate.IsZero()) || (!wantExempt && cu.TaxRate.String() != "0.20") {
			t.Errorf("%s tax %s exempt %v", cu.ID, cu.TaxRate, cu.TaxExempt)
		}
		if cu.TaxExempt {
			exempt++
		}
	}
	if nonASCII < 2 || formula < 1 || zurich < 1 || usd < 1 || exempt < 1 {
		t.Errorf("non-ASCII names %d, names starting with = %d, Zurich %d, USD %d, exempt %d", nonASCII, formula, zurich, usd, exempt)
	}
	if c.Customers[3].Name[0] != '=' {
		t.Errorf("p0004 name %q should start with =", c.Customers[3].Name)
	}
}

func TestP0003Pays(t *testing.T) {
	c := Generate(Options{})
	var got []billing.Payment
	for _, p := range c.Payments {
		if p.CustomerID == "p0003" {
			got = append(got, p)
		}
		if !p.Amount.IsPos() {
			t.Errorf("payment %s amount %s", p.Reference, p.Amount)
		}
	}
	if len(got) != 1 {
		t.Fatalf("p0003 has %d payments, want 1", len(got))
	}
	p := got[0]
	if p.Amount.String() != "100.00" || p.Currency != "EUR" || p.Reference != "wire-p0003-1" ||
		!p.ReceivedAt.Equal(time.Date(2026, 10, 20, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("p0003 payment %+v", p)
	}
	if len(c.Payments) < 4 {
		t.Errorf("only %d payments in the demo", len(c.Payments))
	}
}

// Strict decoding of the rule specs, the way the rule plugins read them.
type priceSpec struct {
	Flavors        map[string]string `yaml:"flavors"`
	PricePerGBHour string            `yaml:"price_per_gb_hour"`
	PricePerHour   string            `yaml:"price_per_hour"`
}

func decodeSpec(t *testing.T, s string) priceSpec {
	t.Helper()
	var p priceSpec
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("spec %q: %v", s, err)
	}
	return p
}

func TestPolicies(t *testing.T) {
	ps := Policies()
	byName := map[string]billing.Policy{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	if len(byName) != 4 {
		t.Fatalf("%d policies", len(byName))
	}
	nine := decimal.MustParse("0.9")
	for _, pair := range [][2]string{{Standard, Business}, {StandardUSD, BusinessUSD}} {
		std, biz := byName[pair[0]], byName[pair[1]]
		if std.Fee.String() != "0" || biz.Fee.String() != "49.00" {
			t.Errorf("fees %s / %s", std.Fee, biz.Fee)
		}
		if len(std.Rules) != 4 || len(biz.Rules) != 4 {
			t.Fatalf("rules %d / %d", len(std.Rules), len(biz.Rules))
		}
		for i := range std.Rules {
			if std.Rules[i].Type != biz.Rules[i].Type {
				t.Fatalf("rule %d types %s / %s", i, std.Rules[i].Type, biz.Rules[i].Type)
			}
			s, b := decodeSpec(t, std.Rules[i].Spec), decodeSpec(t, biz.Rules[i].Spec)
			check := func(what, sv, bv string) {
				sd, err1 := decimal.Parse(sv)
				bd, err2 := decimal.Parse(bv)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %q / %q", what, sv, bv)
				}
				if want, _ := sd.Mul(nine); want.Cmp(bd) != 0 {
					t.Errorf("%s %s: business %s, want %s", std.Rules[i].Type, what, bd, want)
				}
			}
			switch std.Rules[i].Type {
			case ServerType:
				if len(s.Flavors) != len(Flavors) {
					t.Errorf("%d flavors priced", len(s.Flavors))
				}
				for _, f := range Flavors {
					check(f, s.Flavors[f], b.Flavors[f])
				}
			case VolumeType, ImageType:
				check("price_per_gb_hour", s.PricePerGBHour, b.PricePerGBHour)
			case FloatingIPType:
				check("price_per_hour", s.PricePerHour, b.PricePerHour)
			default:
				t.Errorf("rule type %s", std.Rules[i].Type)
			}
		}
	}
	if byName[Standard].Currency != "EUR" || byName[StandardUSD].Currency != "USD" || byName[BusinessUSD].Currency != "USD" {
		t.Error("policy currencies")
	}
	if s := decodeSpec(t, byName[Business].Rules[0].Spec); s.Flavors["m1.small"] != "0.0180" {
		t.Errorf("business m1.small = %q, want 0.0180", s.Flavors["m1.small"])
	}
	// Policies returns fresh slices: a caller editing one cannot change another's.
	ps[0].Rules[0].Spec = "changed"
	if Policies()[0].Rules[0].Spec == "changed" || ps[2].Rules[0].Spec == "changed" {
		t.Error("Policies shares rule slices")
	}
}

func TestRecordsRefusesOtherOptions(t *testing.T) {
	c := Generate(Options{Projects: 5})
	err := c.Records(Options{Projects: 6}, func([]billing.Record) error { return nil }, 0)
	if err == nil {
		t.Fatal("Records accepted options that differ from the cloud's")
	}
}

func TestRecordsStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	err := Generate(Options{}).Records(Options{}, func([]billing.Record) error { calls++; return boom }, 10)
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want boom after 1", err, calls)
	}
}

// fakeImporter keeps what it is given, copying records out of the reused chunk.
type fakeImporter struct {
	calls     []string
	customers map[string]billing.Customer
	policies  []billing.Policy
	subs      []billing.Subscription
	payments  []billing.Payment
	records   []billing.Record
	chunks    []int
	failAfter int // fail AddRecords after this many chunks (0: never)
}

func (f *fakeImporter) PutCustomers(_ context.Context, cs []billing.Customer) error {
	f.calls = append(f.calls, "customers")
	f.customers = map[string]billing.Customer{}
	for _, c := range cs {
		f.customers[c.ID] = c
	}
	return nil
}

func (f *fakeImporter) PutPolicies(_ context.Context, ps []billing.Policy) error {
	f.calls = append(f.calls, "policies")
	f.policies = append(f.policies, ps...)
	return nil
}

func (f *fakeImporter) AddSubscriptions(_ context.Context, ss []billing.Subscription) ([]billing.Subscription, error) {
	f.calls = append(f.calls, "subscriptions")
	out := make([]billing.Subscription, len(ss))
	for i, s := range ss {
		s.ID = int64(len(f.subs) + 1)
		f.subs = append(f.subs, s)
		out[i] = s
	}
	return out, nil
}

func (f *fakeImporter) AddPayments(_ context.Context, ps []billing.Payment) error {
	f.calls = append(f.calls, "payments")
	f.payments = append(f.payments, ps...)
	return nil
}

func (f *fakeImporter) AddRecords(_ context.Context, rs []billing.Record) error {
	if len(f.calls) == 0 || f.calls[len(f.calls)-1] != "records" {
		f.calls = append(f.calls, "records")
	}
	if f.failAfter > 0 && len(f.chunks) == f.failAfter {
		return errors.New("disk full")
	}
	for _, r := range rs {
		if _, ok := f.customers[r.CustomerID]; !ok {
			return fmt.Errorf("unknown customer %s", r.CustomerID)
		}
	}
	f.chunks = append(f.chunks, len(rs))
	f.records = append(f.records, rs...)
	return nil
}

func TestLoadWritesEverythingInOrder(t *testing.T) {
	o := Options{Projects: 120, SpansPerProject: 100}
	f := &fakeImporter{}
	st, err := Load(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, ","); got != "policies,customers,subscriptions,payments,records" {
		t.Fatalf("calls %s", got)
	}
	c := Generate(o)
	if st.Customers != 120 || len(f.customers) != 120 || len(f.subs) != len(c.Subscriptions) || len(f.payments) != len(c.Payments) || len(f.policies) != 4 {
		t.Fatalf("stats %+v; stored %d customers, %d subscriptions, %d payments, %d policies", st, len(f.customers), len(f.subs), len(f.payments), len(f.policies))
	}
	if st.Records != len(f.records) || hashRecords(f.records) != hashRecords(collect(t, o, 0)) {
		t.Fatalf("stats say %d records, stored %d, or they differ from Records", st.Records, len(f.records))
	}
	if len(f.chunks) < 2 {
		t.Fatalf("chunks %v: want several", f.chunks)
	}
	for i, n := range f.chunks {
		if n > LoadChunk || (i < len(f.chunks)-1 && n != LoadChunk) {
			t.Fatalf("chunk sizes %v", f.chunks)
		}
	}
}

func TestLoadReportsStoreErrors(t *testing.T) {
	f := &fakeImporter{failAfter: 1}
	st, err := Load(context.Background(), f, Options{Projects: 200, SpansPerProject: 100})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "10001") {
		t.Fatalf("err %v", err)
	}
	if st.Records != LoadChunk {
		t.Fatalf("stats %+v after one stored chunk", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, &fakeImporter{}, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

func BenchmarkRecords(b *testing.B) {
	o := Options{Projects: 10000, SpansPerProject: 100}
	c := Generate(o)
	b.ReportAllocs()
	var n int
	start := time.Now()
	for b.Loop() {
		n = 0
		if err := c.Records(o, func(rs []billing.Record) error { n += len(rs); return nil }, LoadChunk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(n), "records/op")
}

// AddRecordStream hands each chunk to AddRecords (the fake has no transactions).
func (f *fakeImporter) AddRecordStream(ctx context.Context, stream func(add func([]billing.Record) error) error) error {
	return stream(func(rs []billing.Record) error { return f.AddRecords(ctx, rs) })
}
