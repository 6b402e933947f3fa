// Package usage turns what Gnocchi stores into what Bilean bills: meter totals per customer,
// resource and meter over a period (billing.MeterTotal), and trigger records built from
// resources' lifespans and history (billing.Record with Source "gnocchi"), Artifice style.
//
// Invariants:
//   - a meter total is computed from the exact decimal text of Gnocchi's points, then converted
//     once (bytes → GB, seconds → hours…); no float arithmetic on the way;
//   - a point counts for a range when its bucket starts in it: periods must start and end on a
//     multiple of the meter's granularity (whole hours for 1h, UTC midnight for 1d);
//   - a span is [max(started_at, revision_start), min(ended_at, revision_end)) in whole seconds;
//     the first revision starts at started_at (Ceilometer creates resources after they start),
//     and consecutive revisions with the same billed attributes are one span;
//   - requests are batched (one search and one aggregates call per batch of customers, resource
//     type and granularity, for all the meters at once) and at most Concurrency are in flight.
package usage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
	"golang.org/x/sync/errgroup"
)

// SourceName marks what this package produces.
const SourceName = "gnocchi"

// Source reads usage from one Gnocchi. It is safe for concurrent use; the bound on requests in
// flight holds across all callers.
type Source struct {
	gn  *gnocchi.Client
	cfg config.Gnocchi
	sem chan struct{}

	checkMu  sync.Mutex
	checked  bool
	checkErr error
}

// New returns a source reading with gn as cfg (defaults applied) says.
func New(gn *gnocchi.Client, cfg config.Gnocchi) *Source {
	n := cfg.Concurrency
	if n < 1 {
		n = 1
	}
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 100
	}
	return &Source{gn: gn, cfg: cfg, sem: make(chan struct{}, n)}
}

// Client returns the Gnocchi client.
func (s *Source) Client() *gnocchi.Client { return s.gn }

// Config returns the configuration the source reads with.
func (s *Source) Config() config.Gnocchi { return s.cfg }

// Usage is what one fetch found.
type Usage struct {
	Meters  []billing.MeterTotal
	Records []billing.Record
}

// Options narrows a fetch.
type Options struct {
	// Meters to compute; nil means all configured meters.
	Meters []config.Meter
	// Spans lists the Gnocchi resource types whose spans to read; nil means the types whose
	// source is gnocchi.
	Spans []config.SpanSource
	// NoMeters and NoSpans skip one half.
	NoMeters, NoSpans bool
}

// Fetch reads the meter totals and spans of these customers over r, in batches of
// cfg.BatchSize customers, with at most cfg.Concurrency requests in flight. The first error
// cancels the rest: nothing partial is returned.
func (s *Source) Fetch(ctx context.Context, customerIDs []string, r interval.Range, o Options) (Usage, error) {
	if len(customerIDs) == 0 || r.Empty() {
		return Usage{}, nil
	}
	if err := s.Check(ctx); err != nil {
		return Usage{}, err
	}
	meters := o.Meters
	if meters == nil {
		meters = s.cfg.Meters
	}
	spans := o.Spans
	if spans == nil {
		for _, sp := range s.cfg.Spans {
			if sp.Source == config.SourceGnocchi {
				spans = append(spans, sp)
			}
		}
	}
	if o.NoMeters {
		meters = nil
	}
	if o.NoSpans {
		spans = nil
	}
	groups := groupMeters(meters)
	var chunks [][]string
	for i := 0; i < len(customerIDs); i += s.cfg.BatchSize {
		chunks = append(chunks, customerIDs[i:min(i+s.cfg.BatchSize, len(customerIDs))])
	}
	type result struct {
		meters  []billing.MeterTotal
		records []billing.Record
	}
	results := make([][]result, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	for ci, chunk := range chunks {
		results[ci] = make([]result, len(groups)+len(spans))
		for gi, mg := range groups {
			g.Go(func() error {
				ms, err := s.meterGroup(gctx, chunk, r, mg)
				results[ci][gi].meters = ms
				return err
			})
		}
		for si, sp := range spans {
			g.Go(func() error {
				rs, err := s.spans(gctx, chunk, r, sp)
				results[ci][len(groups)+si].records = rs
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, rs := range results {
		for _, res := range rs {
			u.Meters = append(u.Meters, res.meters...)
			u.Records = append(u.Records, res.records...)
		}
	}
	sort.Slice(u.Meters, func(i, j int) bool {
		a, b := u.Meters[i], u.Meters[j]
		if a.CustomerID != b.CustomerID {
			return a.CustomerID < b.CustomerID
		}
		if a.Meter != b.Meter {
			return a.Meter < b.Meter
		}
		return a.ResourceID < b.ResourceID
	})
	sort.Slice(u.Records, func(i, j int) bool {
		a, b := u.Records[i], u.Records[j]
		if a.CustomerID != b.CustomerID {
			return a.CustomerID < b.CustomerID
		}
		if a.ResourceID != b.ResourceID {
			return a.ResourceID < b.ResourceID
		}
		return a.Start.Before(b.Start)
	})
	return u, nil
}

// acquire takes a slot of the concurrency bound.
func (s *Source) acquire(ctx context.Context) (func(), error) {
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lifespanFilter selects the resources of these projects that lived during r.
func lifespanFilter(projects []string, r interval.Range) map[string]any {
	and := []any{
		map[string]any{"in": map[string]any{"project_id": projects}},
		map[string]any{"<": map[string]any{"started_at": gnocchi.Timestamp(r.End)}},
		map[string]any{"or": []any{
			map[string]any{"=": map[string]any{"ended_at": nil}},
			map[string]any{">": map[string]any{"ended_at": gnocchi.Timestamp(r.Start)}},
		}},
	}
	return map[string]any{"and": and}
}

// meterGroup is the meters read by one aggregates call: one resource type, one granularity.
type meterGroup struct {
	resourceType string
	granularity  time.Duration
	meters       []config.Meter
	rate         bool // some meter needs the point before the range
}

func groupMeters(ms []config.Meter) []meterGroup {
	idx := map[string]int{}
	var out []meterGroup
	for _, m := range ms {
		k := m.ResourceType + "|" + m.Granularity.String()
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, meterGroup{resourceType: m.ResourceType, granularity: m.Granularity})
		}
		out[i].meters = append(out[i].meters, m)
		if m.Aggregation == config.AggRate {
			out[i].rate = true
		}
	}
	return out
}

// operations is the (metric …) expression reading every (metric, method) pair of the group once.
func (mg meterGroup) operations() string {
	seen := map[string]bool{}
	var b strings.Builder
	b.WriteString("(metric")
	for _, m := range mg.meters {
		k := m.Metric + " " + m.Method
		if seen[k] {
			continue
		}
		seen[k] = true
		fmt.Fprintf(&b, " (%s %s)", quoteMetric(m.Metric), m.Method)
	}
	b.WriteString(")")
	return b.String()
}

// quoteMetric quotes a metric name for Gnocchi's operations syntax when needed.
func quoteMetric(name string) string {
	if strings.ContainsAny(name, " ()\"") {
		return `"` + strings.ReplaceAll(name, `"`, `\"`) + `"`
	}
	return name
}

// meterGroup reads one group's meters for one batch of customers in one aggregates call.
func (s *Source) meterGroup(ctx context.Context, projects []string, r interval.Range, mg meterGroup) ([]billing.MeterTotal, error) {
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	start := r.Start
	if mg.rate {
		start = start.Add(-mg.granularity)
	}
	agg, err := s.gn.AggregatesOf(ctx, gnocchi.AggregatesOpts{
		Operations: mg.operations(), ResourceType: mg.resourceType, Search: lifespanFilter(projects, r),
		Start: start, Stop: r.End, Granularity: mg.granularity, Details: true,
	})
	release()
	if gnocchi.IsNoSuchMetric(err) {
		// None of these customers' resources has any of the group's metrics: Check made sure
		// each metric exists for the resource type, so they simply have no usage of it.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read meters of %s from Gnocchi: %w", mg.resourceType, err)
	}
	refs := make(map[string]gnocchi.Resource, len(agg.References))
	for _, ref := range agg.References {
		refs[ref.ID] = ref
	}
	var out []billing.MeterTotal
	ids := make([]string, 0, len(agg.ByResource))
	for id := range agg.ByResource {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		series := agg.ByResource[id]
		ref, ok := refs[id]
		if !ok {
			return nil, fmt.Errorf("gnocchi aggregates of %s: resource %s has measures but no reference", mg.resourceType, id)
		}
		for _, m := range mg.meters {
			pts := series[m.Metric][m.Method]
			q, ok, err := Reduce(m.Aggregation, pts, r, !ref.StartedAt.Before(r.Start))
			if err != nil {
				return nil, fmt.Errorf("meter %s of %s %s: %w", m.Name, mg.resourceType, id, err)
			}
			if !ok {
				continue
			}
			if q, err = m.Apply(q); err != nil {
				return nil, fmt.Errorf("meter %s of %s %s: convert: %w", m.Name, mg.resourceType, id, err)
			}
			out = append(out, billing.MeterTotal{
				CustomerID: ref.ProjectID, Meter: m.Name, ResourceID: id, ResourceType: mg.resourceType,
				Range: r, Quantity: q, Unit: m.Unit, Aggregation: m.Aggregation,
				Attributes: attributes(ref), Source: SourceName,
			})
		}
	}
	return out, nil
}

// attributes are a resource's type attributes as text, for line descriptions and rules.
func attributes(r gnocchi.Resource) map[string]string {
	out := make(map[string]string, len(r.Attributes))
	for k := range r.Attributes {
		if v := r.Attr(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// Reduce turns one resource's points into one quantity over r:
//
//	sum  Σ values            mean  Σ values / count      max  largest value
//	last value of the latest bucket
//	rate increase of a cumulative counter: Σ of positive differences between consecutive points;
//	     a drop is a counter reset, so the value after it counts whole. The point just before r
//	     (when read) is the baseline; without one, the first value counts whole only when the
//	     resource started in r (its counter started at zero), else it is the baseline.
//
// Only points whose bucket starts in r count (the baseline excepted). ok is false when no point
// counts.
func Reduce(aggregation string, pts []gnocchi.Point, r interval.Range, startedInRange bool) (decimal.Decimal, bool, error) {
	var (
		acc      decimal.Decimal
		n        int64
		prev     decimal.Decimal
		havePrev bool
		lastT    time.Time
		err      error
	)
	pts = append([]gnocchi.Point(nil), pts...)
	sort.Slice(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
	for _, p := range pts {
		if p.Time.Before(r.Start) {
			prev, havePrev = p.Value, true
			continue
		}
		if !p.Time.Before(r.End) {
			break
		}
		switch aggregation {
		case config.AggSum, config.AggMean:
			acc, err = acc.Add(p.Value)
		case config.AggMax:
			if n == 0 || p.Value.Cmp(acc) > 0 {
				acc = p.Value
			}
		case config.AggLast:
			if n == 0 || !p.Time.Before(lastT) {
				acc, lastT = p.Value, p.Time
			}
		case config.AggRate:
			var d decimal.Decimal
			switch {
			case havePrev:
				d, err = p.Value.Sub(prev)
				if err == nil && d.IsNeg() {
					d = p.Value // reset: the counter restarted from zero
				}
			case startedInRange:
				d = p.Value
			}
			if err == nil {
				acc, err = acc.Add(d)
			}
			prev, havePrev = p.Value, true
		default:
			return decimal.Decimal{}, false, fmt.Errorf("aggregation %q: want sum, mean, max, last or rate", aggregation)
		}
		if err != nil {
			return decimal.Decimal{}, false, err
		}
		n++
	}
	if n == 0 {
		return decimal.Decimal{}, false, nil
	}
	if aggregation == config.AggMean {
		acc, err = acc.Quo(decimal.MustNew(n, 0))
		if err != nil {
			return decimal.Decimal{}, false, err
		}
	}
	return acc, true, nil
}

// spans reads one resource type's history for a batch of customers and builds its records.
func (s *Source) spans(ctx context.Context, projects []string, r interval.Range, sp config.SpanSource) ([]billing.Record, error) {
	byID := map[string][]gnocchi.Resource{}
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	err = s.gn.SearchResources(ctx, sp.ResourceType, gnocchi.SearchOpts{
		Filter: lifespanFilter(projects, r), History: true, PageSize: s.cfg.PageSize,
	}, func(page []gnocchi.Resource) error {
		for _, res := range page {
			byID[res.ID] = append(byID[res.ID], res)
		}
		return nil
	})
	release()
	if err != nil {
		return nil, fmt.Errorf("read %s history from Gnocchi: %w", sp.ResourceType, err)
	}
	var values map[string]map[string][]gnocchi.Point
	if len(sp.AttributesFromMetrics) > 0 && len(byID) > 0 {
		if values, err = s.metricValues(ctx, projects, r, sp, byID); err != nil {
			return nil, err
		}
	}
	var out []billing.Record
	for id, revs := range byID {
		// A history search matches each revision on its own attributes: the revisions of a
		// resource deleted before r (ended_at set by a later revision) still match while their
		// ended_at was null. Only the current revision says whether, and until when, the resource
		// lived: without it in the answer, the resource did not live in r.
		if !hasCurrent(revs) {
			continue
		}
		out = append(out, SpansWithMetrics(revs, sp, values[id])...)
	}
	return out, nil
}

// metricValues reads the points of the span type's attribute metrics (AttributesFromMetrics) for
// a batch of customers over r, and the bucket before it: resource id → record attribute → points.
// A resource that started before r and has no point of a metric in that window (a size sampled
// only when it changes) is read again up to r.Start, one call per such resource and metric, for
// its last value.
func (s *Source) metricValues(ctx context.Context, projects []string, r interval.Range, sp config.SpanSource,
	byID map[string][]gnocchi.Resource) (map[string]map[string][]gnocchi.Point, error) {
	var b strings.Builder
	b.WriteString("(metric")
	seen := map[string]bool{}
	for _, k := range sortedKeys(sp.AttributesFromMetrics) {
		if m := sp.AttributesFromMetrics[k]; !seen[m] {
			seen[m] = true
			fmt.Fprintf(&b, " (%s %s)", quoteMetric(m), sp.MetricsMethod)
		}
	}
	b.WriteString(")")
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	start := r.Start.Add(-sp.MetricsGranularity)
	stop := r.End
	if stop.IsZero() || stop.Equal(interval.Forever) {
		stop = time.Time{}
	}
	agg, err := s.gn.AggregatesOf(ctx, gnocchi.AggregatesOpts{
		Operations: b.String(), ResourceType: sp.ResourceType, Search: lifespanFilter(projects, r),
		Start: start, Stop: stop, Granularity: sp.MetricsGranularity,
	})
	release()
	if err != nil && !gnocchi.IsNoSuchMetric(err) { // no such metric: no resource here has a point
		return nil, fmt.Errorf("read %s of %s from Gnocchi: %w", b.String(), sp.ResourceType, err)
	}
	out := make(map[string]map[string][]gnocchi.Point, len(byID))
	for id, series := range agg.ByResource {
		vs := map[string][]gnocchi.Point{}
		for k, m := range sp.AttributesFromMetrics {
			if pts := series[m][sp.MetricsMethod]; len(pts) > 0 {
				vs[k] = pts
			}
		}
		out[id] = vs
	}
	for _, id := range sortedKeys(byID) {
		revs := byID[id]
		if !hasCurrent(revs) || !revs[0].StartedAt.Before(r.Start) {
			continue
		}
		for _, k := range sortedKeys(sp.AttributesFromMetrics) {
			if len(out[id][k]) > 0 {
				continue
			}
			m := sp.AttributesFromMetrics[k]
			release, err := s.acquire(ctx)
			if err != nil {
				return nil, err
			}
			pts, err := s.gn.ResourceMeasures(ctx, sp.ResourceType, id, m, gnocchi.MeasuresOpts{
				Stop: r.Start, Granularity: sp.MetricsGranularity, Aggregation: sp.MetricsMethod})
			release()
			if ge := (*gnocchi.Error)(nil); errors.As(err, &ge) && ge.Status == http.StatusNotFound && !strings.Contains(ge.Cause, "ggregation") {
				continue // the resource has no such metric: no value (its rule will say so)
			}
			if err != nil {
				return nil, fmt.Errorf("read %s of %s %s before %s from Gnocchi: %w", m, sp.ResourceType, id, r.Start.Format(time.RFC3339), err)
			}
			if len(pts) == 0 {
				continue
			}
			if out[id] == nil {
				out[id] = map[string][]gnocchi.Point{}
			}
			out[id][k] = pts[len(pts)-1:]
		}
	}
	return out, nil
}

// Spans builds the trigger records of one resource from its revisions (any order).
func Spans(revs []gnocchi.Resource, sp config.SpanSource) []billing.Record {
	return SpansWithMetrics(revs, sp, nil)
}

// SpansWithMetrics is Spans with attributes read from metrics (SpanSource.AttributesFromMetrics):
// values maps a record attribute to the resource's points of its metric. The value at a second
// is that of the latest bucket starting at or before it (before the first point, the first
// point's); a change of value cuts the span at the bucket's start.
func SpansWithMetrics(revs []gnocchi.Resource, sp config.SpanSource, values map[string][]gnocchi.Point) []billing.Record {
	if len(revs) == 0 {
		return nil
	}
	revs = append([]gnocchi.Resource(nil), revs...)
	sort.Slice(revs, func(i, j int) bool { return revs[i].RevisionStart.Before(revs[j].RevisionStart) })
	cur := revs[len(revs)-1]
	for _, rv := range revs {
		if rv.RevisionEnd == nil {
			cur = rv
		}
	}
	life := interval.Range{Start: interval.Norm(cur.StartedAt), End: interval.Forever}
	if cur.EndedAt != nil {
		life.End = interval.Norm(*cur.EndedAt)
	}
	mv := newMetricValues(values)
	type piece struct {
		r     interval.Range
		attrs map[string]string
	}
	var out []piece
	add := func(seg interval.Range, attrs map[string]string) {
		if n := len(out); n > 0 && sameAttrs(out[n-1].attrs, attrs) && !out[n-1].r.End.Before(seg.Start) {
			out[n-1].r.End = interval.Later(out[n-1].r.End, seg.End)
			return
		}
		out = append(out, piece{seg, attrs})
	}
	for i, rv := range revs {
		seg := life
		if i > 0 {
			seg.Start = interval.Later(seg.Start, interval.Norm(rv.RevisionStart))
		}
		if i < len(revs)-1 && rv.RevisionEnd != nil {
			seg.End = interval.Earlier(seg.End, interval.Norm(*rv.RevisionEnd))
		}
		if seg.Empty() {
			continue
		}
		attrs := make(map[string]string, len(sp.Attributes)+len(values))
		for to, from := range sp.Attributes {
			if v := rv.Attr(from); v != "" {
				attrs[to] = v
			}
		}
		if mv == nil {
			add(seg, attrs)
			continue
		}
		cuts := append(mv.cuts(seg), seg.End)
		from := seg.Start
		for _, at := range cuts {
			a := make(map[string]string, len(attrs)+len(values))
			for k, v := range attrs {
				a[k] = v
			}
			mv.set(a, from)
			add(interval.Range{Start: from, End: at}, a)
			from = at
		}
	}
	recs := make([]billing.Record, 0, len(out))
	for _, p := range out {
		rec := billing.Record{
			ResourceID: cur.ID, ResourceType: sp.BilledAs, CustomerID: cur.ProjectID,
			Start: p.r.Start, Attributes: p.attrs, Source: SourceName,
		}
		if !p.r.End.Equal(interval.Forever) {
			rec.End = p.r.End
		}
		recs = append(recs, rec)
	}
	return recs
}

// metricValues are one resource's attribute values from metrics, as points sorted by time.
type metricValues map[string][]gnocchi.Point

func newMetricValues(values map[string][]gnocchi.Point) metricValues {
	if len(values) == 0 {
		return nil
	}
	mv := make(metricValues, len(values))
	for k, pts := range values {
		pts = append([]gnocchi.Point(nil), pts...)
		sort.Slice(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
		mv[k] = pts
	}
	return mv
}

// at returns the value of one attribute at t: the latest point at or before t, else the first.
func (mv metricValues) at(k string, t time.Time) string {
	pts := mv[k]
	if len(pts) == 0 {
		return ""
	}
	i := sort.Search(len(pts), func(i int) bool { return pts[i].Time.After(t) })
	if i > 0 {
		i--
	}
	return pts[i].Value.Trim(0).String()
}

// set puts every attribute's value at t into attrs.
func (mv metricValues) set(attrs map[string]string, t time.Time) {
	for k := range mv {
		if v := mv.at(k, t); v != "" {
			attrs[k] = v
		}
	}
}

// cuts returns the seconds inside seg (after its start, before its end) where some value
// changes, in order.
func (mv metricValues) cuts(seg interval.Range) []time.Time {
	set := map[time.Time]bool{}
	for _, pts := range mv {
		for i, p := range pts {
			t := interval.Norm(p.Time)
			if !t.After(seg.Start) || !t.Before(seg.End) || i == 0 {
				continue
			}
			if !p.Value.Equal(pts[i-1].Value) {
				set[t] = true
			}
		}
	}
	out := make([]time.Time, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// hasCurrent reports whether the revisions include the resource's current one.
func hasCurrent(revs []gnocchi.Resource) bool {
	for _, rv := range revs {
		if rv.RevisionEnd == nil {
			return true
		}
	}
	return false
}

func sameAttrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
