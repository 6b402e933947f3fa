package rating

import (
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
)

// spans returns n server spans of varied lengths inside October.
func benchSpans(n int) []interval.Range {
	out := make([]interval.Range, n)
	for i := range out {
		start := october.Start.Add(time.Duration(i%600) * time.Hour)
		out[i] = interval.Range{Start: start, End: start.Add(time.Duration(3600+i%86400) * time.Second)}
	}
	return out
}

// BenchmarkRateFlat rates spans through a flat per-hour rule: measure and charge each span, as
// the calculation does for a flat pricing. One op is one span; run with -benchtime=1000000x to
// rate a million spans.
func BenchmarkRateFlat(b *testing.B) {
	r, err := Build(billing.RuleSpec{Type: ServerType, Spec: `flavors: {m1.small: "0.02", m1.large: "0.08"}`})
	if err != nil {
		b.Fatal(err)
	}
	spans := benchSpans(1 << 16)
	u := Usage{ResourceType: ServerType, ResourceID: "vm", Attributes: map[string]string{"flavor": "m1.small"}}
	buf := make([]Measure, 0, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u.Range = spans[i&(len(spans)-1)]
		i++
		if buf, err = r.Measure(buf[:0], u); err != nil {
			b.Fatal(err)
		}
		if _, err := buf[0].Charge(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/span")
}

// BenchmarkRateTiered rates spans through a graduated rule: measure each span and add it to the
// customer's tally; the tally is priced once per customer of 1,000 spans, as a run does.
func BenchmarkRateTiered(b *testing.B) {
	r, err := Build(billing.RuleSpec{Type: VolumeType, Spec: `price_per_gb_hour: {model: graduated, tiers: [{up_to: 10000, price: "0.0002"}, {up_to: 100000, price: "0.00015"}, {price: "0.0001"}]}`})
	if err != nil {
		b.Fatal(err)
	}
	spans := benchSpans(1 << 16)
	u := Usage{ResourceType: VolumeType, ResourceID: "vol", Attributes: map[string]string{"size": "100"}}
	buf := make([]Measure, 0, 4)
	var tl Tally
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u.Range = spans[i&(len(spans)-1)]
		i++
		if buf, err = r.Measure(buf[:0], u); err != nil {
			b.Fatal(err)
		}
		m := &buf[0]
		if err := tl.Add(TallyKey{Pricing: m.Pricing, Unit: m.Unit, Rule: VolumeType, Part: "usage"}, m, u.Range); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 0 {
			if _, err := tl.Price(nil); err != nil {
				b.Fatal(err)
			}
			tl = Tally{}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/span")
}
