package gnocchi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/govalues/decimal"
)

// Point is one aggregated value: the bucket [Time, Time+Granularity) and its value, read
// exactly from Gnocchi's JSON text (no float rounding on the way to billing).
type Point struct {
	Time        time.Time
	Granularity time.Duration
	Value       decimal.Decimal
}

// UnmarshalJSON reads ["2026-10-01T00:00:00+00:00", 3600.0, 1.5].
func (p *Point) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 3 {
		return fmt.Errorf("measure %s: want [timestamp, granularity, value]", truncate(string(b), 80))
	}
	var ts string
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return fmt.Errorf("measure %s: timestamp: %w", truncate(string(b), 80), err)
	}
	t, err := ParseTime(ts)
	if err != nil {
		return fmt.Errorf("measure timestamp %q: %w", ts, err)
	}
	g, err := strconv.ParseFloat(string(raw[1]), 64)
	if err != nil {
		return fmt.Errorf("measure %s: granularity: %w", truncate(string(b), 80), err)
	}
	v, err := decimal.Parse(string(raw[2]))
	if err != nil {
		return fmt.Errorf("measure %s: value: %w", truncate(string(b), 80), err)
	}
	*p = Point{Time: t, Granularity: time.Duration(g * float64(time.Second)), Value: v}
	return nil
}

// Series are the points of one resource's metrics: metric name → aggregation method → points.
type Series map[string]map[string][]Point

// AggregatesOpts describes one POST /v1/aggregates.
type AggregatesOpts struct {
	// Operations is Gnocchi's expression, e.g. "(metric (vcpus mean) (memory mean))" or
	// "(aggregate sum (metric network.outgoing.bytes rate:mean))". Metric names may be
	// wildcards.
	Operations string
	// ResourceType and Search select the resources whose metrics are read.
	ResourceType string
	Search       any
	// Start and Stop bound the buckets read, [Start, Stop).
	Start, Stop time.Time
	// Granularity must be one of the metrics' archive policy; 0 lets Gnocchi pick.
	Granularity time.Duration
	// GroupBy resource attributes (AggregatesGrouped only).
	GroupBy []string
	// Details asks for the resources read (References), with their attributes.
	Details bool
	// Fill is Gnocchi's fill mode for missing points; empty means "dropna".
	Fill string
}

// Aggregates is the answer of one aggregates call.
type Aggregates struct {
	// ByResource holds (metric …) operations: resource id → series.
	ByResource map[string]Series
	// Aggregated holds the points of an (aggregate …) operation.
	Aggregated []Point
	// References are the resources read (with Details).
	References []Resource
}

// Group is one group of a grouped aggregates call.
type Group struct {
	Group    map[string]any
	Measures Aggregates
}

func (a *Aggregates) UnmarshalJSON(b []byte) error {
	var raw struct {
		Measures   map[string]json.RawMessage `json:"measures"`
		References []Resource                 `json:"references"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*a = Aggregates{ByResource: map[string]Series{}, References: raw.References}
	for k, v := range raw.Measures {
		if k == "aggregated" {
			if err := json.Unmarshal(v, &a.Aggregated); err != nil {
				return fmt.Errorf("aggregated: %w", err)
			}
			continue
		}
		var s Series
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("resource %s: %w", k, err)
		}
		a.ByResource[k] = s
	}
	return nil
}

func (o AggregatesOpts) path(grouped bool) string {
	q := query{}
	q.window(o.Start, o.Stop, o.Granularity)
	if o.Details {
		q.set("details", "true")
	}
	q.set("fill", o.Fill)
	if grouped {
		for _, g := range o.GroupBy {
			q.add("groupby", g)
		}
	}
	return q.encode("aggregates")
}

func (o AggregatesOpts) body() map[string]any {
	b := map[string]any{"operations": o.Operations}
	if o.ResourceType != "" {
		b["resource_type"] = o.ResourceType
		search := o.Search
		if search == nil {
			search = map[string]any{}
		}
		b["search"] = search
	}
	return b
}

// IsNoSuchMetric reports Gnocchi's 400 "Metrics not found" to an aggregates call over a resource
// search: none of the resources found (maybe none at all) has any of the metrics named. Whether
// that is an empty answer or a misspelled metric, only the caller can tell (see
// usage.Source.Check): the client never turns it into an empty answer.
func IsNoSuchMetric(err error) bool {
	var ge *Error
	return asError(err, &ge) && ge.Status == http.StatusBadRequest && strings.HasPrefix(ge.Cause, "Metrics not found")
}

// AggregatesOf runs one aggregates call without grouping. When none of the resources searched
// has any of the metrics, it fails with an error IsNoSuchMetric recognises.
func (c *Client) AggregatesOf(ctx context.Context, o AggregatesOpts) (Aggregates, error) {
	var out Aggregates
	_, err := c.do(ctx, request{method: http.MethodPost, path: o.path(false), body: o.body(), out: &out,
		ok: []int{http.StatusOK}, read: true})
	return out, err
}

// AggregatesGrouped runs one aggregates call grouped by o.GroupBy. When no group has any of the
// metrics, it fails with an error IsNoSuchMetric recognises.
func (c *Client) AggregatesGrouped(ctx context.Context, o AggregatesOpts) ([]Group, error) {
	var out []Group
	_, err := c.do(ctx, request{method: http.MethodPost, path: o.path(true), body: o.body(), out: &out,
		ok: []int{http.StatusOK}, read: true})
	return out, err
}

// MeasuresOpts narrows a read of one metric's measures.
type MeasuresOpts struct {
	Start, Stop time.Time
	Granularity time.Duration
	// Aggregation is the method, e.g. mean (Gnocchi's default).
	Aggregation string
	// Refresh makes Gnocchi process pending measures first.
	Refresh bool
}

func (o MeasuresOpts) encode(path string) string {
	q := query{}
	q.window(o.Start, o.Stop, o.Granularity)
	q.set("aggregation", o.Aggregation)
	if o.Refresh {
		q.set("refresh", "true")
	}
	return q.encode(path)
}

// Measures reads one metric's points by metric id (GET /v1/metric/ID/measures).
func (c *Client) Measures(ctx context.Context, metricID string, o MeasuresOpts) ([]Point, error) {
	var out []Point
	_, err := c.do(ctx, request{method: http.MethodGet, path: o.encode("metric/" + url.PathEscape(metricID) + "/measures"),
		out: &out, ok: []int{http.StatusOK}, read: true})
	return out, err
}

// ResourceMeasures reads a resource's metric by name
// (GET /v1/resource/TYPE/ID/metric/NAME/measures).
func (c *Client) ResourceMeasures(ctx context.Context, resourceType, id, metric string, o MeasuresOpts) ([]Point, error) {
	var out []Point
	p := "resource/" + url.PathEscape(resourceType) + "/" + url.PathEscape(id) + "/metric/" + url.PathEscape(metric) + "/measures"
	_, err := c.do(ctx, request{method: http.MethodGet, path: o.encode(p), out: &out, ok: []int{http.StatusOK}, read: true})
	return out, err
}

// window sets the start, stop and granularity parameters that are set (zero values are left out).
func (q query) window(start, stop time.Time, granularity time.Duration) {
	if !start.IsZero() {
		q.set("start", Timestamp(start))
	}
	if !stop.IsZero() {
		q.set("stop", Timestamp(stop))
	}
	if granularity > 0 {
		q.set("granularity", strconv.FormatInt(int64(granularity/time.Second), 10))
	}
}
