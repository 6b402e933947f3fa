package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/bilean/bilean/synthcloud"
)

// BenchmarkPostgresScheduledRun invoices a generated cloud of N projects × ~100 trigger records
// (10,000 projects ≈ 1M spans; BILEAN_BENCH_PROJECTS sizes it) for October on PostgreSQL, in one
// process with the configured workers, through the shared-run path (batches claimed from the
// database). The chain is the shipped one up to finalizing: rendering is measured by the
// embedded-store benchmark. Loading the cloud is outside the timer. Reported: customers/s,
// spans/s, peak heap in use (sampled every 5 ms) and peak RSS of the test process (PostgreSQL's
// own memory is not included).
func BenchmarkPostgresScheduledRun(b *testing.B) {
	sizes := []int{10000}
	if s := os.Getenv("BILEAN_BENCH_PROJECTS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, projects := range sizes {
		b.Run(fmt.Sprintf("projects=%d", projects), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ctx := context.Background()
				cfg, err := config.Load(filepath.Join("..", "etc", "bilean.yaml"))
				if err != nil {
					b.Fatal(err)
				}
				for j, s := range cfg.Pipeline.Scheduled {
					if s.Name == "finalizing" {
						cfg.Pipeline.Scheduled = cfg.Pipeline.Scheduled[:j+1]
						break
					}
				}
				if limit, err := config.ParseBytes(cfg.Pipeline.MemoryLimit); err == nil && limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
					debug.SetMemoryLimit(limit)
				}
				st, err := postgres.Open(ctx, pgtest.URL(b))
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				stats, err := synthcloud.Load(ctx, st, synthcloud.Options{Projects: projects, Month: month(b, "2026-10"), Seed: 1, SpansPerProject: 100})
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("loaded %d projects, %d records in %s", stats.Customers, stats.Records, time.Since(t0).Round(time.Millisecond))
				if _, err := st.Pool().Exec(ctx, `ANALYZE`); err != nil {
					b.Fatal(err)
				}
				env := pipeline.Env{Store: st, Config: cfg, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), OutputDir: b.TempDir()}
				runtime.GC()
				peak := sampleHeap()
				b.StartTimer()
				start := time.Now()
				run, err := pipeline.Execute(ctx, env, pipeline.Options{Mode: pipeline.Scheduled, Period: month(b, "2026-10")})
				took := time.Since(start)
				b.StopTimer()
				heap := peak()
				if err != nil {
					b.Fatal(err)
				}
				if run.Stats.Invoices != projects || run.Stats.Failed != 0 {
					b.Fatalf("%d invoices, %d failed", run.Stats.Invoices, run.Stats.Failed)
				}
				b.ReportMetric(float64(projects)/took.Seconds(), "customers/s")
				b.ReportMetric(float64(run.Stats.Spans)/took.Seconds(), "spans/s")
				b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
				b.ReportMetric(float64(peakRSS())/(1<<10), "peak-RSS-MB")
				b.ReportMetric(took.Seconds(), "run-s")
				var handlers []string
				for name, d := range run.Stats.Handlers {
					handlers = append(handlers, fmt.Sprintf("%s=%s", name, d.Round(time.Millisecond)))
				}
				b.Logf("%d spans, %d lines; handler time (summed over workers): %s", run.Stats.Spans, run.Stats.Lines, strings.Join(handlers, " "))
				st.Close()
			}
		})
	}
}
