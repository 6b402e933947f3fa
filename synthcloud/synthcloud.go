// Package synthcloud generates a deterministic synthetic OpenStack cloud: customers (Keystone
// projects) with their policies, subscriptions and payments, and the trigger records of their
// servers, volumes, floating IPs and images. `bilean demo`, `make demo`, the golden tests and the
// benchmarks all use it, so they all see the same cloud.
//
// Invariants:
//   - the same Options give byte-identical output, on every machine and Go version (math/rand/v2's
//     PCG is a specified algorithm; nothing depends on map order, the clock or the environment);
//   - a project's data depends only on Seed, Month, SpansPerProject and its own index: project
//     p0003 is the same in a 5-project and in a 10,000-project cloud;
//   - every record is a non-empty span [Start, End) in whole UTC seconds, or open (zero End), and
//     overlaps the month; the records of one resource never overlap, and a resize closes one
//     record and opens the next at the same second;
//   - usage is streamed in chunks, so memory is bounded by the chunk size, not by the cloud.
package synthcloud

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Defaults applied by Options.WithDefaults.
const (
	DefaultProjects        = 20
	DefaultSeed            = 1
	DefaultSpansPerProject = 12
	// LoadChunk is the number of records Load hands to the store per AddRecords call.
	LoadChunk = 10000
	// Source is the Source of every generated record.
	Source = "demo"
)

// DefaultMonth is October 2026 in UTC, the month the demo bills.
var DefaultMonth = interval.Range{
	Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
	End:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
}

// Options describe the cloud to generate.
type Options struct {
	// Projects is the number of customers, p0001 … pNNNN. Defaults to 20.
	Projects int
	// Month is the billed month; usage lies inside it or across it. Defaults to DefaultMonth
	// (October 2026). An End not after Start is replaced by Start plus one month.
	Month interval.Range
	// Seed selects the cloud. Defaults to 1; the same seed and options give identical output.
	Seed uint64
	// SpansPerProject is the average number of trigger records per project: each project gets
	// between half and one and a half times this many. Defaults to 12; the benchmark uses 100.
	SpansPerProject int
}

// WithDefaults returns o with every zero field set to its default and the month normalised.
func (o Options) WithDefaults() Options {
	if o.Projects <= 0 {
		o.Projects = DefaultProjects
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.SpansPerProject <= 0 {
		o.SpansPerProject = DefaultSpansPerProject
	}
	if o.Month.Start.IsZero() {
		o.Month = DefaultMonth
	}
	o.Month.Start = interval.Norm(o.Month.Start)
	if !o.Month.End.After(o.Month.Start) {
		o.Month.End = o.Month.Start.AddDate(0, 1, 0)
	}
	o.Month.End = interval.Norm(o.Month.End)
	return o
}

// Cloud is the reference data of a synthetic cloud: everything but usage, which Records streams.
type Cloud struct {
	Customers     []billing.Customer
	Policies      []billing.Policy
	Subscriptions []billing.Subscription // IDs are zero until stored
	Payments      []billing.Payment
	opts          Options
}

// Stats counts what Load wrote.
type Stats struct {
	Customers int
	Records   int
}

// Customer tweaks, by project index (1-based). Each applies to every n-th project.
const (
	usdEvery        = 7  // currency USD, policies *-usd
	exemptEvery     = 11 // tax rate 0.00, TaxExempt
	businessEvery   = 5  // subscribed to "business"
	zurichEvery     = 10 // timezone Europe/Zurich when index%10 == zurichRemainder
	zurichRemainder = 6
)

// Project indices with a scripted story.
const (
	policyChangeProject = 2 // standard until mid-month, business from then on
	payingProject       = 3 // pays 100.00 on day 20 at 09:30
)

// companies are the company-ish parts of customer names, used in turn. They include what breaks
// naive exports: non-ASCII letters, a leading "=" (CSV/spreadsheet formula injection), a comma,
// an ampersand and double quotes.
var companies = []string{
	"Acme Cloud Services GmbH",
	"Blue Heron Analytics Ltd",
	"Copperleaf Logistics AG",
	"=1+1 Formula Injection Ltd", // p0004: the whole name starts with "="
	"Delta Fjord Shipping AS",
	"Zürich Ünïcode Ltd",
	"Evergreen Health Labs Inc.",
	"Foxglove Media SARL",
	"Łódź Żółć Software Sp. z o.o.",
	"Granite Peak Robotics LLC",
	"Harbor & Lighthouse, Inc.",
	`Indigo "Quoted" Systems BV`,
	"Juniper Data Co-op",
}

// CustomerID returns the id of the project with the given 1-based index: p0001, …, p10000.
func CustomerID(index int) string { return fmt.Sprintf("p%04d", index) }

// customerName returns "Project 0001 — Acme Cloud Services GmbH", or for a company name that
// starts with "=" that name first, so the cell really begins with "=".
func customerName(index int) string {
	c := companies[(index-1)%len(companies)]
	if c[0] == '=' {
		return fmt.Sprintf("%s — Project %04d", c, index)
	}
	return fmt.Sprintf("Project %04d — %s", index, c)
}

// Generate builds the customers, policies, subscriptions and payments of the cloud. It is cheap
// even for 10,000 projects; usage comes from Records.
func Generate(o Options) *Cloud {
	o = o.WithDefaults()
	c := &Cloud{Policies: Policies(), opts: o}
	c.Customers = make([]billing.Customer, 0, o.Projects)
	c.Subscriptions = make([]billing.Subscription, 0, o.Projects+1)
	for i := 1; i <= o.Projects; i++ {
		cust := customer(i)
		// Every synthetic project was billed by an earlier system up to the billed month.
		cust.BillingStart = o.Month.Start
		c.Customers = append(c.Customers, cust)
		c.Subscriptions = append(c.Subscriptions, subscriptions(o, i, cust)...)
		c.Payments = append(c.Payments, payments(o, i, cust)...)
	}
	return c
}

func customer(i int) billing.Customer {
	id := CustomerID(i)
	c := billing.Customer{
		ID:       id,
		Name:     customerName(i),
		Currency: "EUR",
		Timezone: "UTC",
		Contacts: []string{"billing@" + id + ".example"},
		TaxRate:  decimal.MustNew(20, 2),
		Status:   billing.Active,
	}
	if i%usdEvery == 0 {
		c.Currency = "USD"
	}
	if i%exemptEvery == 0 {
		c.TaxRate = decimal.MustNew(0, 2)
		c.TaxExempt = true
	}
	if i%zurichEvery == zurichRemainder {
		c.Timezone = "Europe/Zurich"
	}
	tier := Standard
	if i%businessEvery == 0 {
		tier = Business
	}
	c.Policy = policyFor(tier, c.Currency)
	return c
}

// SubscriptionStart is when every synthetic subscription begins: nine months before the billed
// month (2026-01-01 for October 2026).
func SubscriptionStart(month interval.Range) time.Time { return month.Start.AddDate(0, -9, 0) }

// PolicyChangeAt is the second at which p0002 moves from standard to business: day 15 of the
// month at 12:00 UTC (2026-10-15T12:00:00Z for October 2026).
func PolicyChangeAt(month interval.Range) time.Time {
	return month.Start.Add(14*24*time.Hour + 12*time.Hour)
}

func subscriptions(o Options, i int, c billing.Customer) []billing.Subscription {
	start := SubscriptionStart(o.Month)
	if i == policyChangeProject {
		at := PolicyChangeAt(o.Month)
		return []billing.Subscription{
			{CustomerID: c.ID, Policy: policyFor(Standard, c.Currency), Start: start, End: at},
			{CustomerID: c.ID, Policy: policyFor(Business, c.Currency), Start: at},
		}
	}
	return []billing.Subscription{{CustomerID: c.ID, Policy: c.Policy, Start: start}}
}

// PCG streams: usage and payments draw from different streams of the same project seed, so a
// change to payments never shifts a project's usage.
const (
	usageStream   = 0x62696c65616e2d75 // "bilean-u"
	paymentStream = 0x62696c65616e2d70 // "bilean-p"
)

var paymentAmounts = []string{"25.00", "50.00", "120.50", "200.00", "75.25", "1000.00"}

// payments: p0003 pays 100.00 on day 20 at 09:30:00 ("wire-p0003-1"); every 4th project pays
// once during the month; every 9th paid once in the month before.
func payments(o Options, i int, c billing.Customer) []billing.Payment {
	mk := func(n int, amount string, at time.Time) billing.Payment {
		return billing.Payment{
			CustomerID: c.ID,
			Amount:     decimal.MustParse(amount),
			Currency:   c.Currency,
			ReceivedAt: at,
			Reference:  fmt.Sprintf("wire-%s-%d", c.ID, n),
		}
	}
	if i == payingProject {
		return []billing.Payment{mk(1, "100.00", o.Month.Start.Add(19*24*time.Hour+9*time.Hour+30*time.Minute))}
	}
	var out []billing.Payment
	if i%9 != 0 && i%4 != 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(projectSeed(o.Seed, i), paymentStream))
	if i%9 == 0 {
		prev := interval.Range{Start: o.Month.Start.AddDate(0, -1, 0), End: o.Month.Start}
		out = append(out, mk(len(out)+1, paymentAmounts[r.IntN(len(paymentAmounts))], randTime(r, prev)))
	}
	if i%4 == 0 {
		out = append(out, mk(len(out)+1, paymentAmounts[r.IntN(len(paymentAmounts))], randTime(r, o.Month)))
	}
	return out
}

func randTime(r *rand.Rand, in interval.Range) time.Time {
	return time.Unix(in.Start.Unix()+r.Int64N(in.Seconds()), 0).UTC()
}

// projectSeed mixes the cloud seed and a project index into a PCG seed (splitmix64 finaliser),
// so neighbouring projects get unrelated streams.
func projectSeed(seed uint64, index int) uint64 {
	z := seed + uint64(index)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Records streams the trigger records of every project, in project order and, within a project,
// resource by resource with each resource's records in time order. It calls fn with chunks of at
// most chunk records (10,000 when chunk <= 0); the chunk's backing array is reused, so fn must not
// keep the slice after it returns (the records' Attributes maps are fresh and may be kept).
// An error from fn stops the stream and is returned.
//
// o must be the options the cloud was generated with (after defaults); Records refuses others.
func (c *Cloud) Records(o Options, fn func(chunk []billing.Record) error, chunk int) error {
	o = o.WithDefaults()
	if c.opts != (Options{}) && !sameOptions(c.opts, o) {
		return fmt.Errorf("synthcloud: records: options %+v differ from those the cloud was generated with (%+v)", o, c.opts)
	}
	if chunk <= 0 {
		chunk = LoadChunk
	}
	g := newGenerator(o)
	buf := make([]billing.Record, 0, chunk)
	g.emit = func(r billing.Record) error {
		buf = append(buf, r)
		if len(buf) < chunk {
			return nil
		}
		err := fn(buf)
		clear(buf)
		buf = buf[:0]
		return err
	}
	for i := 1; i <= o.Projects; i++ {
		if err := g.project(i); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

func sameOptions(a, b Options) bool {
	return a.Projects == b.Projects && a.Seed == b.Seed && a.SpansPerProject == b.SpansPerProject &&
		a.Month.Start.Equal(b.Month.Start) && a.Month.End.Equal(b.Month.End)
}

// Load generates the cloud and writes it through imp: policies, customers, subscriptions,
// payments, then the records in chunks of LoadChunk. Each call is one transaction of the store;
// ctx is checked between chunks.
func Load(ctx context.Context, imp store.Importer, o Options) (Stats, error) {
	o = o.WithDefaults()
	c := Generate(o)
	var st Stats
	if err := imp.PutPolicies(ctx, c.Policies); err != nil {
		return st, fmt.Errorf("synthcloud: load policies: %w", err)
	}
	if err := imp.PutCustomers(ctx, c.Customers); err != nil {
		return st, fmt.Errorf("synthcloud: load customers: %w", err)
	}
	st.Customers = len(c.Customers)
	subs, err := imp.AddSubscriptions(ctx, c.Subscriptions)
	if err != nil {
		return st, fmt.Errorf("synthcloud: load subscriptions: %w", err)
	}
	if len(subs) != len(c.Subscriptions) {
		return st, fmt.Errorf("synthcloud: load subscriptions: stored %d of %d", len(subs), len(c.Subscriptions))
	}
	c.Subscriptions = subs
	if len(c.Payments) > 0 {
		if err := imp.AddPayments(ctx, c.Payments); err != nil {
			return st, fmt.Errorf("synthcloud: load payments: %w", err)
		}
	}
	err = c.Records(o, func(rs []billing.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := imp.AddRecords(ctx, rs); err != nil {
			return fmt.Errorf("synthcloud: load records %d–%d: %w", st.Records+1, st.Records+len(rs), err)
		}
		st.Records += len(rs)
		return nil
	}, LoadChunk)
	return st, err
}

// generator produces one project's usage at a time. It reuses one PCG, reseeded per project.
type generator struct {
	o      Options
	pcg    *rand.PCG
	r      *rand.Rand
	ms, me int64 // month edges, Unix seconds
	early  int64 // earliest start of a resource created before the month
	emit   func(billing.Record) error

	cust   string
	bounds []int64 // scratch: change seconds of the current resource
}

func newGenerator(o Options) *generator {
	pcg := rand.NewPCG(0, usageStream)
	return &generator{
		o:     o,
		pcg:   pcg,
		r:     rand.New(pcg),
		ms:    o.Month.Start.Unix(),
		me:    o.Month.End.Unix(),
		early: SubscriptionStart(o.Month).Unix() + 86400,
	}
}

// project emits the records of project i: between SpansPerProject/2 and 3·SpansPerProject/2
// records (uniform, so the average is SpansPerProject), the first resource always a server.
func (g *generator) project(i int) error {
	g.pcg.Seed(projectSeed(g.o.Seed, i), usageStream)
	g.cust = CustomerID(i)
	s := g.o.SpansPerProject
	h := s / 2
	target := s - h + g.r.IntN(2*h+1)
	for n := 0; n < target; {
		var k int
		var err error
		switch roll := g.r.IntN(100); {
		case n == 0 || roll < 50:
			k, err = g.server(target - n)
		case roll < 75:
			k, err = g.volume(target - n)
		case roll < 90:
			k, err = g.floatingIP()
		default:
			k, err = g.image()
		}
		if err != nil {
			return err
		}
		n += k
	}
	return nil
}

// life draws a resource's life: start before the month (60 %) or inside it, and an end inside the
// month (20 %) or none (0). A resource created in the month lives at least ten minutes.
func (g *generator) life() (start, end int64) {
	r := g.r
	if r.IntN(100) < 60 {
		start = g.instant(g.early, g.ms)
	} else {
		start = g.instant(g.ms, g.me-3600)
	}
	if r.IntN(100) < 20 {
		end = g.instant(max(start, g.ms)+600, g.me)
	}
	return start, end
}

// instant returns a second in [lo, hi): mostly any second (so per-second billing shows), a quarter
// of the time on a whole minute as operators' scripts tend to create things.
func (g *generator) instant(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	t := lo + g.r.Int64N(hi-lo)
	if g.r.IntN(4) == 0 && t-t%60 >= lo {
		t -= t % 60
	}
	return t
}

// changes fills g.bounds with up to k distinct sorted seconds strictly inside the part of
// [start, end) that lies in the month (end 0 means open: up to the month's end).
func (g *generator) changes(start, end int64, k int) []int64 {
	g.bounds = g.bounds[:0]
	lo := max(start, g.ms) + 1
	hi := g.me
	if end != 0 {
		hi = end
	}
	if k <= 0 || hi-lo < int64(2*k) {
		return g.bounds
	}
	for range k {
		g.bounds = append(g.bounds, g.instant(lo, hi))
	}
	// insertion sort of at most a few values, dropping duplicates
	b := g.bounds
	for i := 1; i < len(b); i++ {
		for j := i; j > 0 && b[j] < b[j-1]; j-- {
			b[j], b[j-1] = b[j-1], b[j]
		}
	}
	out := b[:1]
	for _, t := range b[1:] {
		if t != out[len(out)-1] {
			out = append(out, t)
		}
	}
	g.bounds = out
	return out
}

func (g *generator) region() string {
	if g.r.IntN(10) == 0 {
		return "RegionTwo"
	}
	return "RegionOne"
}

// flavorWeights favour small flavors, as real clouds do.
var flavorWeights = [...]int{20, 35, 25, 14, 6} // sums to 100

func (g *generator) flavor() int {
	roll := g.r.IntN(100)
	for i, w := range flavorWeights {
		if roll < w {
			return i
		}
		roll -= w
	}
	return len(flavorWeights) - 1
}

func (g *generator) record(id, typ string, start, end int64, attrs map[string]string) error {
	rec := billing.Record{
		ResourceID:   id,
		ResourceType: typ,
		CustomerID:   g.cust,
		Start:        time.Unix(start, 0).UTC(),
		Attributes:   attrs,
		Source:       Source,
	}
	if end != 0 {
		rec.End = time.Unix(end, 0).UTC()
	}
	return g.emit(rec)
}

// server: 30 % are resized once or twice during the month (never more records than room).
func (g *generator) server(room int) (int, error) {
	id := g.uuid()
	region := g.region()
	start, end := g.life()
	k := 0
	if room > 1 && g.r.IntN(100) < 30 {
		k = min(1+g.r.IntN(2), room-1)
	}
	f := g.flavor()
	at := start
	for _, t := range g.changes(start, end, k) {
		if err := g.record(id, ServerType, at, t, map[string]string{"flavor": Flavors[f], "region": region}); err != nil {
			return 0, err
		}
		f = (f + 1 + g.r.IntN(len(Flavors)-1)) % len(Flavors) // any other flavor
		at = t
	}
	n := len(g.bounds) + 1
	return n, g.record(id, ServerType, at, end, map[string]string{"flavor": Flavors[f], "region": region})
}

var volumeSizes = [...]int{10, 20, 40, 50, 80, 100, 150, 200, 250, 300, 400, 500}

// volume: 10 % are extended once during the month (never past 500 GB).
func (g *generator) volume(room int) (int, error) {
	id := g.uuid()
	region := g.region()
	vtype := "standard"
	if g.r.IntN(3) == 0 {
		vtype = "ssd"
	}
	size := volumeSizes[g.r.IntN(len(volumeSizes))]
	start, end := g.life()
	k := 0
	if room > 1 && size < 500 && g.r.IntN(100) < 10 {
		k = 1
	}
	attrs := func() map[string]string {
		return map[string]string{"size": strconv.Itoa(size), "volume_type": vtype, "region": region}
	}
	at := start
	for _, t := range g.changes(start, end, k) {
		if err := g.record(id, VolumeType, at, t, attrs()); err != nil {
			return 0, err
		}
		size = min(500, size+10*(1+g.r.IntN(10)))
		at = t
	}
	n := len(g.bounds) + 1
	return n, g.record(id, VolumeType, at, end, attrs())
}

func (g *generator) floatingIP() (int, error) {
	id := g.uuid()
	region := g.region()
	net := "203.0.113."
	if region == "RegionTwo" {
		net = "198.51.100."
	}
	addr := net + strconv.Itoa(1+g.r.IntN(254))
	start, end := g.life()
	return 1, g.record(id, FloatingIPType, start, end, map[string]string{"floating_ip_address": addr, "region": region})
}

// imageSizes are typical image sizes in bytes (a CirrOS image, 512 MiB, 1, 2, 8 and 20 GiB).
var imageSizes = [...]int64{21430272, 536870912, 1073741824, 2147483648, 8589934592, 21474836480}

func (g *generator) image() (int, error) {
	id := g.uuid()
	region := g.region()
	size := imageSizes[g.r.IntN(len(imageSizes))]
	if g.r.IntN(3) == 0 { // an uploaded image of no round size
		size = 300_000_000 + g.r.Int64N(4_000_000_000)
	}
	format := "qcow2"
	if g.r.IntN(4) == 0 {
		format = "raw"
	}
	start, end := g.life()
	return 1, g.record(id, ImageType, start, end, map[string]string{"size": strconv.FormatInt(size, 10), "disk_format": format, "region": region})
}

// uuid returns a random (version 4) UUID drawn from the project's rng.
func (g *generator) uuid() string {
	const hexd = "0123456789abcdef"
	a, b := g.r.Uint64(), g.r.Uint64()
	a = a&^(0xf<<12) | 0x4<<12 // version 4
	b = b&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	var out [36]byte
	j := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			out[j] = '-'
			j++
		}
		v := a
		sh := 60 - 4*i
		if i >= 16 {
			v = b
			sh = 60 - 4*(i-16)
		}
		out[j] = hexd[(v>>uint(sh))&0xf]
		j++
	}
	return string(out[:])
}
