package usage_test

import (
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

func pts(start time.Time, vals ...string) []gnocchi.Point {
	out := make([]gnocchi.Point, len(vals))
	for i, v := range vals {
		out[i] = gnocchi.Point{Time: start.Add(time.Duration(i) * time.Hour), Granularity: time.Hour, Value: decimal.MustParse(v)}
	}
	return out
}

func TestReduceByAggregation(t *testing.T) {
	day := interval.Range{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)}
	before := day.Start.Add(-time.Hour)
	tests := []struct {
		name    string
		agg     string
		points  []gnocchi.Point
		started bool
		want    string // "" means no points count
	}{
		{"sum of hourly means", "sum", pts(day.Start, "1", "2", "3.5"), false, "6.5"},
		{"sum ignores the bucket before the range", "sum", pts(before, "100", "1", "2"), false, "3"},
		{"sum ignores the bucket at the range end", "sum", append(pts(day.Start, "1"), pts(day.End, "50")...), false, "1"},
		{"mean", "mean", pts(day.Start, "1", "2", "4"), false, "2.333333333333333333"},
		{"max", "max", pts(day.Start, "3", "9", "4"), false, "9"},
		{"last", "last", pts(day.Start, "3", "9", "4"), false, "4"},
		// counter 100 before the range, then 150, 180: +50 +30
		{"rate from the baseline", "rate", pts(before, "100", "150", "180"), false, "80"},
		// 100 → 150 (+50), reset → 20 (+20), → 45 (+25)
		{"rate across a reset", "rate", pts(before, "100", "150", "20", "45"), false, "95"},
		// no baseline: the first value is the baseline for a resource older than the range…
		{"rate without baseline, old resource", "rate", pts(day.Start, "500", "700"), false, "200"},
		// …and counts whole for a resource born in the range (its counter started at 0)
		{"rate without baseline, new resource", "rate", pts(day.Start, "500", "700"), true, "700"},
		{"no points", "sum", nil, false, ""},
		{"only points outside", "max", pts(before, "5"), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := usage.Reduce(tc.agg, tc.points, day, tc.started)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("got %s, want no quantity", got)
				}
				return
			}
			if !ok || got.Cmp(decimal.MustParse(tc.want)) != 0 {
				t.Fatalf("got %s (ok %v), want %s", got, ok, tc.want)
			}
		})
	}
	if _, _, err := usage.Reduce("median", pts(day.Start, "1"), day, false); err == nil {
		t.Error("unknown aggregation accepted")
	}
}

func TestConversions(t *testing.T) {
	tests := []struct {
		m    config.Meter
		in   string
		want string
	}{
		{config.Meter{Convert: "bytes_to_gb"}, "2170000000", "2.17"},
		{config.Meter{Convert: "bytes_to_gib"}, "3221225472", "3"},
		{config.Meter{Convert: "seconds_to_hours"}, "5400", "1.5"},
		{config.Meter{Convert: "nanoseconds_to_hours"}, "7200000000000", "2"},
		{config.Meter{Convert: "mib_to_gib"}, "512", "0.5"},
		{config.Meter{Factor: "0.001"}, "2500", "2.5"},
		{config.Meter{}, "42", "42"},
	}
	for _, tc := range tests {
		got, err := tc.m.Apply(decimal.MustParse(tc.in))
		if err != nil || got.Cmp(decimal.MustParse(tc.want)) != 0 {
			t.Errorf("%+v(%s) = %s, %v; want %s", tc.m, tc.in, got, err, tc.want)
		}
	}
}

func TestSpansFromRevisions(t *testing.T) {
	at := func(d, h int) time.Time { return time.Date(2026, 10, d, h, 0, 0, 0, time.UTC) }
	ptr := func(t time.Time) *time.Time { return &t }
	sp := config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server", Attributes: map[string]string{"flavor": "flavor_name"}}
	rev := func(start time.Time, end *time.Time, flavor string, ended *time.Time) gnocchi.Resource {
		return gnocchi.Resource{ID: "vm1", ProjectID: "p1", StartedAt: at(1, 6), EndedAt: ended, RevisionStart: start, RevisionEnd: end,
			Attributes: map[string]any{"flavor_name": flavor, "display_name": "x"}}
	}
	// Created (in Gnocchi) at 1 Oct 07:00 though started 06:00, renamed on the 3rd (no billed
	// change), resized on the 5th at 12:00, deleted on the 9th at 00:00 — given out of order.
	revs := []gnocchi.Resource{
		rev(at(5, 12), ptr(at(9, 0)), "m1.large", nil),
		rev(at(1, 7), ptr(at(3, 0)), "m1.small", nil),
		rev(at(9, 0), nil, "m1.large", ptr(at(9, 0))),
		rev(at(3, 0), ptr(at(5, 12)), "m1.small", nil),
	}
	got := usage.Spans(revs, sp)
	if len(got) != 2 {
		t.Fatalf("spans = %+v, want 2", got)
	}
	if !got[0].Start.Equal(at(1, 6)) || !got[0].End.Equal(at(5, 12)) || got[0].Attributes["flavor"] != "m1.small" {
		t.Errorf("first span = %+v, want [1 Oct 06:00, 5 Oct 12:00) m1.small", got[0])
	}
	if !got[1].Start.Equal(at(5, 12)) || !got[1].End.Equal(at(9, 0)) || got[1].Attributes["flavor"] != "m1.large" {
		t.Errorf("second span = %+v, want [5 Oct 12:00, 9 Oct 00:00) m1.large", got[1])
	}
	for _, r := range got {
		if r.Source != "gnocchi" || r.ResourceType != "os.nova.server" || r.CustomerID != "p1" {
			t.Errorf("span = %+v", r)
		}
	}
	// A living resource has an open span.
	live := usage.Spans([]gnocchi.Resource{rev(at(1, 7), nil, "m1.small", nil)}, sp)
	if len(live) != 1 || !live[0].End.IsZero() || !live[0].Start.Equal(at(1, 6)) {
		t.Errorf("living resource spans = %+v", live)
	}
}
