package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/bilean/bilean/rating"
	"github.com/govalues/decimal"
)

// Meter aggregations: how the points of one resource's metric over the period become one quantity.
const (
	AggSum  = "sum"  // the sum of the points (delta meters, or hourly means of a gauge → unit-hours)
	AggMean = "mean" // the mean of the points (e.g. mean GB stored)
	AggMax  = "max"  // the largest point
	AggLast = "last" // the last point of the period
	AggRate = "rate" // the increase of a cumulative counter, counter resets handled
)

// Span sources: which source's spans a resource type is billed from.
const (
	SourceStore   = "store"   // trigger records in the store (listener, import): the default
	SourceGnocchi = "gnocchi" // Gnocchi's resource lifespans and history
)

// Gnocchi configures usage read from Gnocchi (Ceilometer's storage): meter definitions, and per
// resource type whether the spans come from the store or from Gnocchi. A new meter is
// configuration, no code:
//
//	gnocchi:
//	  enabled: true
//	  meters:
//	    - name: network.outgoing.bytes
//	      resource_type: instance_network_interface
//	      aggregation: rate
//	      convert: bytes_to_gb
//	  spans:
//	    - {resource_type: instance, billed_as: os.nova.server, source: gnocchi}
type Gnocchi struct {
	// Enabled makes the subscription_feeding handler read meters (and spans whose source is
	// gnocchi) from Gnocchi. Defaults to false.
	Enabled bool `yaml:"enabled"`
	// BatchSize is the number of projects per Gnocchi call (one search filter, one aggregates
	// call per resource type and granularity). Defaults to 100.
	BatchSize int `yaml:"batch_size"`
	// Concurrency is the number of Gnocchi calls in flight at once, over all pipeline workers.
	// Defaults to 2.
	Concurrency int `yaml:"concurrency"`
	// PageSize is the page size of resource searches; Gnocchi caps it at its [api] max_limit.
	// Defaults to 1000.
	PageSize int `yaml:"page_size"`
	// Meters are the metrics billed as meter totals.
	Meters []Meter `yaml:"meters"`
	// Spans map Gnocchi resource types to Bilean resource types and say which source is
	// authoritative. Defaults to instance → os.nova.server and volume → os.cinder.volume, both
	// from the store.
	Spans []SpanSource `yaml:"spans"`
}

// Meter is one billed metric.
type Meter struct {
	// Name is the meter's name on invoices and in meter rules. Defaults to Metric.
	Name string `yaml:"name"`
	// Metric is the Gnocchi metric name on each resource, e.g. network.outgoing.bytes.
	Metric string `yaml:"metric"`
	// ResourceType is the Gnocchi resource type that carries the metric, e.g.
	// instance_network_interface. Required.
	ResourceType string `yaml:"resource_type"`
	// Aggregation is sum, mean, max, last or rate (see the Agg constants). Defaults to sum.
	Aggregation string `yaml:"aggregation"`
	// Method is the Gnocchi aggregation method of the points read (it must be in the metric's
	// archive policy). Defaults by aggregation: sum → sum, mean → mean, max → max, last → mean,
	// rate → max.
	Method string `yaml:"method"`
	// Granularity of the points read; it must be in the metric's archive policy and divide the
	// billing period's edges. Defaults to 1h.
	Granularity time.Duration `yaml:"granularity"`
	// Unit is the billing unit after conversion, e.g. GB. Defaults to the conversion's unit.
	Unit string `yaml:"unit"`
	// Convert is a named conversion: bytes_to_gb, bytes_to_gib, mb_to_gb, mib_to_gib,
	// seconds_to_hours, nanoseconds_to_hours. Exclusive with Factor.
	Convert string `yaml:"convert"`
	// Factor multiplies the aggregated value, as decimal text, e.g. "0.001". Exclusive with Convert.
	Factor string `yaml:"factor"`
	// Rule is the rule type that prices the meter: a registered meter rule type (rating.MeterTypes;
	// Bilean ships meter, which prices at one price or per value of resource attributes such as
	// flavor_name). A policy that prices this meter with a rule of another type fails the run.
	// Defaults to meter.
	Rule string `yaml:"rule"`
}

// SpanSource maps one Gnocchi resource type to a Bilean resource type.
type SpanSource struct {
	// ResourceType is Gnocchi's, e.g. instance.
	ResourceType string `yaml:"resource_type"`
	// BilledAs is Bilean's resource type, the one rules price, e.g. os.nova.server.
	BilledAs string `yaml:"billed_as"`
	// Source is store or gnocchi: where this type's spans are billed from. Defaults to store.
	Source string `yaml:"source"`
	// Attributes maps a record attribute to the Gnocchi resource attribute it is read from, e.g.
	// {flavor: flavor_name}. A change of any of them in the resource's history starts a new
	// span. Defaults for instance: flavor ← flavor_name, flavor_id ← flavor_id; for volume:
	// volume_type ← volume_type.
	Attributes map[string]string `yaml:"attributes"`
	// AttributesFromMetrics maps a record attribute to a metric of the resource whose value is
	// that attribute, for what Gnocchi keeps as a measure rather than a resource attribute: a
	// volume's size, {size: volume.size}. The value at a second is the point of the bucket it
	// falls in (the last point before it when Gnocchi has none; the first one before the first
	// point; for a resource with no point in the period, its last point before the period); a
	// change of value starts a new span at the bucket's start. A resource of a
	// Gnocchi-sourced type without any point of such a metric gets no attribute, and its rule
	// refuses it (e.g. a volume without a size): an error for its customer, never a guess.
	// Defaults for volume: {size: volume.size}.
	AttributesFromMetrics map[string]string `yaml:"attributes_from_metrics"`
	// MetricsGranularity is the granularity of the points read for AttributesFromMetrics: the
	// precision of a cut. It must be in the metric's archive policy. Defaults to 1h.
	MetricsGranularity time.Duration `yaml:"metrics_granularity"`
	// MetricsMethod is the aggregation method of those points (it must be in the metric's
	// archive policy). Defaults to mean: in a bucket where the value changed, evenly spaced
	// samples give the time-weighted value, so GB-hours stay right to the sample.
	MetricsMethod string `yaml:"metrics_method"`
}

// conversions are the named unit conversions: the value is divided by div, in the unit shown.
var conversions = map[string]struct {
	div  decimal.Decimal
	unit string
}{
	"bytes_to_gb":          {decimal.MustNew(1_000_000_000, 0), "GB"},
	"bytes_to_gib":         {decimal.MustNew(1<<30, 0), "GiB"},
	"mb_to_gb":             {decimal.MustNew(1000, 0), "GB"},
	"mib_to_gib":           {decimal.MustNew(1024, 0), "GiB"},
	"seconds_to_hours":     {decimal.MustNew(3600, 0), "hour"},
	"nanoseconds_to_hours": {decimal.MustNew(3_600_000_000_000, 0), "hour"},
}

var meterNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:/-]+$`)

var defaultSpans = []SpanSource{
	{ResourceType: "instance", BilledAs: "os.nova.server", Source: SourceStore,
		Attributes: map[string]string{"flavor": "flavor_name", "flavor_id": "flavor_id"}},
	{ResourceType: "volume", BilledAs: "os.cinder.volume", Source: SourceStore,
		Attributes: map[string]string{"volume_type": "volume_type"}, AttributesFromMetrics: map[string]string{"size": "volume.size"}},
}

func (s *Gnocchi) defaults() {
	if s.BatchSize == 0 {
		s.BatchSize = 100
	}
	if s.Concurrency == 0 {
		s.Concurrency = 2
	}
	if s.PageSize == 0 {
		s.PageSize = 1000
	}
	for i := range s.Meters {
		m := &s.Meters[i]
		if m.Name == "" {
			m.Name = m.Metric
		}
		if m.Aggregation == "" {
			m.Aggregation = AggSum
		}
		if m.Method == "" {
			m.Method = map[string]string{AggSum: "sum", AggMean: "mean", AggMax: "max", AggLast: "mean", AggRate: "max"}[m.Aggregation]
		}
		if m.Granularity == 0 {
			m.Granularity = time.Hour
		}
		if m.Unit == "" {
			if c, ok := conversions[m.Convert]; ok {
				m.Unit = c.unit
			}
		}
		if m.Rule == "" {
			m.Rule = "meter"
		}
	}
	if s.Spans == nil {
		for _, d := range defaultSpans {
			d.Attributes = copyMap(d.Attributes)
			s.Spans = append(s.Spans, d)
		}
	}
	for i := range s.Spans {
		sp := &s.Spans[i]
		if sp.Source == "" {
			sp.Source = SourceStore
		}
		for _, d := range defaultSpans {
			if d.ResourceType != sp.ResourceType {
				continue
			}
			if sp.Attributes == nil {
				sp.Attributes = copyMap(d.Attributes)
			}
			if sp.AttributesFromMetrics == nil && d.AttributesFromMetrics != nil {
				sp.AttributesFromMetrics = copyMap(d.AttributesFromMetrics)
			}
		}
		if sp.MetricsGranularity == 0 {
			sp.MetricsGranularity = time.Hour
		}
		if sp.MetricsMethod == "" {
			sp.MetricsMethod = "mean"
		}
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Gnocchi) validate(add func(field string, err error)) {
	if s.BatchSize < 1 || s.BatchSize > 10000 {
		add("gnocchi.batch_size", fmt.Errorf("%d: want 1 to 10000", s.BatchSize))
	}
	if s.Concurrency < 1 || s.Concurrency > 64 {
		add("gnocchi.concurrency", fmt.Errorf("%d: want 1 to 64", s.Concurrency))
	}
	if s.PageSize < 1 || s.PageSize > 10000 {
		add("gnocchi.page_size", fmt.Errorf("%d: want 1 to 10000", s.PageSize))
	}
	names := map[string]int{}
	for i, m := range s.Meters {
		f := fmt.Sprintf("gnocchi.meters[%d]", i)
		if m.Metric == "" {
			add(f+".metric", errors.New("required: the Gnocchi metric name, e.g. network.outgoing.bytes"))
		}
		if m.ResourceType == "" {
			add(f+".resource_type", errors.New("required: the Gnocchi resource type, e.g. instance_network_interface"))
		}
		if m.Name != "" && !meterNameRe.MatchString(m.Name) {
			add(f+".name", fmt.Errorf("%q: use letters, digits and . _ - : /", m.Name))
		}
		if j, dup := names[m.Name]; dup && m.Name != "" {
			add(f+".name", fmt.Errorf("%q is already the name of gnocchi.meters[%d]", m.Name, j))
		} else {
			names[m.Name] = i
		}
		switch m.Aggregation {
		case AggSum, AggMean, AggMax, AggLast, AggRate:
		default:
			add(f+".aggregation", fmt.Errorf("%q: want sum, mean, max, last or rate", m.Aggregation))
		}
		if m.Granularity < time.Second || m.Granularity%time.Second != 0 {
			add(f+".granularity", fmt.Errorf("%s: want whole seconds, e.g. 1h or 300s", m.Granularity))
		}
		if m.Convert != "" && m.Factor != "" {
			add(f, errors.New("set convert or factor, not both"))
		}
		if m.Convert != "" {
			if _, ok := conversions[m.Convert]; !ok {
				add(f+".convert", fmt.Errorf("%q: want one of %s", m.Convert, conversionNames()))
			}
		}
		if m.Factor != "" {
			if d, err := decimal.Parse(m.Factor); err != nil || !d.IsPos() {
				add(f+".factor", fmt.Errorf("%q: want a positive decimal number such as \"0.001\"", m.Factor))
			}
		}
		if !rating.IsMeterType(m.Rule) {
			add(f+".rule", fmt.Errorf("%q: no registered rule type prices a meter (meter rule types: %s)", m.Rule,
				strings.Join(rating.MeterTypes(), ", ")))
		}
	}
	seen := map[string]int{}
	for i, sp := range s.Spans {
		f := fmt.Sprintf("gnocchi.spans[%d]", i)
		if sp.ResourceType == "" {
			add(f+".resource_type", errors.New("required: the Gnocchi resource type, e.g. instance"))
		}
		if sp.BilledAs == "" {
			add(f+".billed_as", errors.New("required: the Bilean resource type, e.g. os.nova.server"))
		}
		if j, dup := seen[sp.ResourceType]; dup {
			add(f+".resource_type", fmt.Errorf("%q is already mapped by gnocchi.spans[%d]", sp.ResourceType, j))
		} else {
			seen[sp.ResourceType] = i
		}
		switch sp.Source {
		case SourceStore, SourceGnocchi:
		default:
			add(f+".source", fmt.Errorf("%q: want store or gnocchi", sp.Source))
		}
		for _, k := range sortedKeys(sp.AttributesFromMetrics) {
			m := sp.AttributesFromMetrics[k]
			switch {
			case m == "":
				add(f+".attributes_from_metrics."+k, errors.New("required: the Gnocchi metric name, e.g. volume.size"))
			case !meterNameRe.MatchString(m):
				add(f+".attributes_from_metrics."+k, fmt.Errorf("%q: not a metric name", m))
			}
			if _, dup := sp.Attributes[k]; dup {
				add(f+".attributes_from_metrics."+k, fmt.Errorf("%q is also in attributes: read it from one place", k))
			}
		}
		if sp.MetricsGranularity < time.Second || sp.MetricsGranularity%time.Second != 0 {
			add(f+".metrics_granularity", fmt.Errorf("%s: want whole seconds, e.g. 1h or 300s", sp.MetricsGranularity))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func conversionNames() string {
	out := make([]string, 0, len(conversions))
	for k := range conversions {
		out = append(out, k)
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// Apply applies the meter's conversion (Convert or Factor) to an aggregated value. A division
// keeps the 19 significant digits the decimal type holds.
func (m Meter) Apply(v decimal.Decimal) (decimal.Decimal, error) {
	if c, ok := conversions[m.Convert]; ok {
		return v.Quo(c.div)
	}
	if m.Factor != "" {
		f, err := decimal.Parse(m.Factor)
		if err != nil {
			return decimal.Decimal{}, fmt.Errorf("meter %s: factor %q: %w", m.Name, m.Factor, err)
		}
		return v.Mul(f)
	}
	return v, nil
}

// Span returns the span mapping of a Gnocchi resource type, and false when the type is
// not mapped.
func (s Gnocchi) Span(gnocchiType string) (SpanSource, bool) {
	for _, sp := range s.Spans {
		if sp.ResourceType == gnocchiType {
			return sp, true
		}
	}
	return SpanSource{}, false
}
