package usage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// withDefaults applies the configuration's defaults to a gnocchi section, as config.Load does.
func withDefaults(g config.Gnocchi) config.Gnocchi {
	cfg := &config.Config{Gnocchi: g}
	cfg.WithDefaults()
	return cfg.Gnocchi
}

// seedVolume creates a volume of a project with a volume.size metric and hourly size samples
// (at HH:10) from start to stop: size before change, after from change on.
func seedVolume(t *testing.T, gn *gnocchi.Client, project string, start time.Time, end *time.Time, stop, change time.Time, before, after float64) string {
	t.Helper()
	id := gnocchitest.UUID()
	if _, err := gn.CreateResource(context.Background(), "volume", gnocchi.NewResource{ID: id, ProjectID: project, StartedAt: start, EndedAt: end,
		Metrics: map[string]string{"volume.size": gnocchitest.Policy}, Attributes: map[string]any{"volume_type": "ssd", "display_name": "data"}}); err != nil {
		t.Fatal(err)
	}
	var ms []gnocchi.Measure
	for h := start.Truncate(time.Hour).Add(10 * time.Minute); h.Before(stop); h = h.Add(time.Hour) {
		v := before
		if !h.Before(change) {
			v = after
		}
		ms = append(ms, gnocchi.NewMeasure(h, v))
	}
	if len(ms) > 0 {
		if err := gn.PostResourceMeasures(context.Background(), map[string]map[string][]gnocchi.Measure{id: {"volume.size": ms}}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestMisspelledMetricFailsTheRun: a metric no resource of its type carries (volume.sizeX), or
// a resource type Gnocchi does not know, is a configuration error naming the setting — Gnocchi's
// "Metrics not found" is no longer an empty answer. It holds when the misspelled metric shares
// one aggregates call with a correct one (Gnocchi then answers the correct one only). A resource
// with no measures in the window, and a project with no resource at all, are legitimately empty.
func TestMisspelledMetricFailsTheRun(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	project := "typo-" + gnocchitest.UUID()[:8]
	// A volume with a size in September only: no measures in October.
	seedVolume(t, gn, project, ts("2026-09-01T00:00:00Z"), nil, ts("2026-09-03T00:00:00Z"), time.Time{}, 10, 10)
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)

	size := config.Meter{Name: "volume.size", Metric: "volume.size", ResourceType: "volume", Aggregation: "sum", Method: "mean"}
	tests := []struct {
		name   string
		meters []config.Meter
		field  string
		want   string
		also   string // what the error suggests instead
	}{
		{"misspelled metric", []config.Meter{{Name: "v", Metric: "volume.sizeX", ResourceType: "volume"}},
			"gnocchi.meters[0].metric", `no volume resource in Gnocchi has a metric "volume.sizeX" (metrics seen on volume resources: `, "volume.size"},
		{"misspelled next to a good one", []config.Meter{size, {Name: "v2", Metric: "volume.sizeX", ResourceType: "volume", Method: "mean"}},
			"gnocchi.meters[1].metric", `"volume.sizeX"`, "volume.size"},
		{"unknown resource type", []config.Meter{{Name: "v", Metric: "volume.size", ResourceType: "volumes"}},
			"gnocchi.meters[0].resource_type", `Gnocchi has no resource type "volumes" (it has: `, "instance, "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := usage.New(gn, withDefaults(config.Gnocchi{Enabled: true, Meters: tt.meters, Spans: []config.SpanSource{}}))
			_, err := src.Fetch(ctx, []string{project}, october, usage.Options{})
			var ce *usage.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a ConfigError on %s saying %q", err, tt.field, tt.want)
			}
			if !strings.Contains(err.Error(), tt.also) {
				t.Errorf("error %v does not suggest %q", err, tt.also)
			}
		})
	}
	// The correct name: no measures in October is no total, and no error; nor is a project with
	// no volume at all.
	src := usage.New(gn, withDefaults(config.Gnocchi{Enabled: true, Meters: []config.Meter{size}, Spans: []config.SpanSource{}}))
	u, err := src.Fetch(ctx, []string{project, "nobody-" + project}, october, usage.Options{})
	if err != nil || len(u.Meters) != 0 {
		t.Fatalf("no measures in the window: %+v, %v; want nothing and no error", u.Meters, err)
	}
	// September has them: 2 days × 24 hourly means of 10 = 480 GB-hours.
	sep := october
	sep.Start, sep.End = ts("2026-09-01T00:00:00Z"), october.Start
	u, err = src.Fetch(ctx, []string{project}, sep, usage.Options{})
	if err != nil || len(u.Meters) != 1 || u.Meters[0].Quantity.Trim(0).String() != "480" {
		t.Fatalf("September: %+v, %v; want 480", u.Meters, err)
	}
}

// TestVolumeSizeFromMetricCutsTheSpan: a volume is a span from Gnocchi with its size read from
// its volume.size metric; a resize (the metric's value changes) cuts the span at the bucket
// where the new size appears. A volume sampled only before the period keeps its last sampled
// size. A volume without any size sample gets no size attribute (its rule then refuses it: an
// error for its customer, never a guessed size).
func TestVolumeSizeFromMetricCutsTheSpan(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	project := "vol-" + gnocchitest.UUID()[:8]
	// Lives Sep 30 18:00 → Oct 25 06:30; 10 GB, then 20 GB from the Oct 15 12:10 sample on.
	end := ts("2026-10-25T06:30:00Z")
	resized := seedVolume(t, gn, project, ts("2026-09-30T18:00:00Z"), &end, end, ts("2026-10-15T12:00:00Z"), 10, 20)
	// Lives all October at 5 GB, one size all along: one span.
	steady := seedVolume(t, gn, project, ts("2026-10-01T00:00:00Z"), nil, ts("2026-11-01T02:00:00Z"), time.Time{}, 5, 5)
	// No sample at all.
	bare := seedVolume(t, gn, project, ts("2026-10-03T00:00:00Z"), nil, time.Time{}, time.Time{}, 0, 0)
	// Sampled in early September only (30 GB), alive all October: its last value before October.
	old := seedVolume(t, gn, project, ts("2026-09-01T00:00:00Z"), nil, ts("2026-09-03T00:00:00Z"), time.Time{}, 30, 30)
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)

	spans := []config.SpanSource{{ResourceType: "volume", BilledAs: "os.cinder.volume", Source: config.SourceGnocchi}}
	src := usage.New(gn, withDefaults(config.Gnocchi{Enabled: true, Spans: spans}))
	if got := src.Config().Spans[0].AttributesFromMetrics["size"]; got != "volume.size" {
		t.Fatalf("default attributes_from_metrics of volume: size ← %q, want volume.size", got)
	}
	u, err := src.Fetch(ctx, []string{project}, october, usage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id         string
		start, end string
		size       string
	}{
		// The span starts at started_at (the feeding clips it to what it bills); the first
		// sample read is Sep 30 23:00's (the bucket before October), 10 GB.
		{resized, "2026-09-30T18:00:00Z", "2026-10-15T12:00:00Z", "10"},
		{resized, "2026-10-15T12:00:00Z", "2026-10-25T06:30:00Z", "20"},
		{steady, "2026-10-01T00:00:00Z", "", "5"},
		{bare, "2026-10-03T00:00:00Z", "", ""},
		{old, "2026-09-01T00:00:00Z", "", "30"},
	}
	byID := map[string][]billing.Record{}
	for _, r := range u.Records {
		byID[r.ResourceID] = append(byID[r.ResourceID], r)
	}
	var got []billing.Record
	for _, id := range []string{resized, steady, bare, old} {
		got = append(got, byID[id]...)
	}
	if len(got) != len(want) {
		t.Fatalf("records = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		wantEnd := time.Time{}
		if w.end != "" {
			wantEnd = ts(w.end)
		}
		if g.ResourceID != w.id || !g.Start.Equal(ts(w.start)) || !g.End.Equal(wantEnd) || g.Attributes["size"] != w.size ||
			g.Attributes["volume_type"] != "ssd" || g.ResourceType != "os.cinder.volume" || g.Source != "gnocchi" {
			t.Errorf("record %d = %+v, want %s [%s, %s) size %q ssd", i, g, w.id, w.start, w.end, w.size)
		}
	}
	// A finer granularity than the metric's archive policy keeps is Gnocchi's error, with the
	// setting to check.
	spans[0].MetricsGranularity = time.Minute
	src = usage.New(gn, withDefaults(config.Gnocchi{Enabled: true, Spans: spans}))
	if _, err := src.Fetch(ctx, []string{project}, october, usage.Options{}); err == nil {
		t.Error("a granularity the archive policy lacks gave no error")
	}
}
