package usage_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
)

// benchProjects is the number of projects the benchmark reads (BILEAN_BENCH_PROJECTS, default
// 1000). They are seeded once and kept in the test Gnocchi: later runs only read.
func benchProjects() int {
	if n, err := strconv.Atoi(os.Getenv("BILEAN_BENCH_PROJECTS")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// seedBench makes sure projects bench-0000… each have one instance (vcpus) and one network
// interface (a cumulative byte counter) with hourly measures for October 2026.
func seedBench(b *testing.B, ctx context.Context, gn *gnocchi.Client, n int) []string {
	have := map[string]bool{}
	err := gn.SearchResources(ctx, "instance", gnocchi.SearchOpts{Filter: map[string]any{"like": map[string]any{"project_id": "bench-%"}}},
		func(p []gnocchi.Resource) error {
			for _, r := range p {
				have[r.ProjectID] = true
			}
			return nil
		})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	start := time.Now()
	seeded := 0
	batch := map[string]map[string][]gnocchi.Measure{}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := gn.PostResourceMeasures(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = map[string]map[string][]gnocchi.Measure{}
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%04d", i)
		if have[ids[i]] {
			continue
		}
		seeded++
		inst, nic := gnocchitest.UUID(), gnocchitest.UUID()
		for _, r := range []struct {
			typ, id, metric string
			attrs           map[string]any
		}{
			{"instance", inst, "vcpus", map[string]any{"flavor_name": "m1.small", "flavor_id": "1"}},
			{"instance_network_interface", nic, "network.outgoing.bytes", map[string]any{"name": "tap0"}},
		} {
			if _, err := gn.CreateResource(ctx, r.typ, gnocchi.NewResource{ID: r.id, ProjectID: ids[i],
				StartedAt: october.Start.Add(-time.Hour), Metrics: map[string]string{r.metric: gnocchitest.Policy}, Attributes: r.attrs}); err != nil {
				b.Fatal(err)
			}
		}
		var vcpus, bytes []gnocchi.Measure
		counter := 0.0
		for h := october.Start.Add(-time.Hour); h.Before(october.End); h = h.Add(time.Hour) {
			vcpus = append(vcpus, gnocchi.NewMeasure(h, float64(1+i%4)))
			counter += float64(1_000_000 * (1 + h.Hour()%5))
			bytes = append(bytes, gnocchi.NewMeasure(h.Add(30*time.Minute), counter))
		}
		batch[inst] = map[string][]gnocchi.Measure{"vcpus": vcpus}
		batch[nic] = map[string][]gnocchi.Measure{"network.outgoing.bytes": bytes}
		if len(batch) >= 100 {
			flush()
		}
	}
	flush()
	if seeded > 0 {
		posted := time.Since(start)
		gnocchitest.WaitProcessed(b, gnocchitest.URL(), 2*time.Hour)
		b.Logf("seeded %d projects (2 resources, 2×745 hourly measures each): posted in %s, processed by metricd after %s",
			seeded, posted.Round(time.Second), time.Since(start).Round(time.Second))
	}
	return ids
}

// BenchmarkFetchMonth reads a month of usage (two meters and the instance spans) for
// BILEAN_BENCH_PROJECTS projects: one aggregates call per 100 projects and meter group, one
// history search per 100 projects, two in flight.
func BenchmarkFetchMonth(b *testing.B) {
	ctx := context.Background()
	gn := gnocchitest.Client(b, gnocchi.Options{})
	n := benchProjects()
	ids := seedBench(b, ctx, gn, n)
	src := newSource(gn, 100, 2, 1000, config.SpanSource{ResourceType: "instance", BilledAs: "os.nova.server",
		Source: config.SourceGnocchi, Attributes: map[string]string{"flavor": "flavor_name"}})
	var reqs int64
	var totals, spans int
	b.ResetTimer()
	for b.Loop() {
		before := gn.Requests()
		u, err := src.Fetch(ctx, ids, october, usage.Options{Meters: meters()[:1:1]})
		if err != nil {
			b.Fatal(err)
		}
		u2, err := src.Fetch(ctx, ids, october, usage.Options{Meters: meters()[2:], NoSpans: true})
		if err != nil {
			b.Fatal(err)
		}
		reqs += gn.Requests() - before
		totals, spans = len(u.Meters)+len(u2.Meters), len(u.Records)
	}
	b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
	b.ReportMetric(float64(n), "projects")
	b.ReportMetric(float64(totals), "meter-totals")
	b.ReportMetric(float64(spans), "spans")
}
