package e2e

import (
	"context"
	"fmt"
	"gopkg.in/yaml.v3"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/synthcloud"
)

// BenchmarkScheduledRun invoices a generated cloud of N projects × ~100 trigger records for
// October on the embedded store, rendering the formats of BILEAN_BENCH_FORMATS (default csv;
// e.g. csv,pdf,xlsx for every document). Loading the cloud is outside the timer.
// Reported: customers/s, spans/s, peak heap in use (sampled every 5 ms) and peak RSS.
func BenchmarkScheduledRun(b *testing.B) {
	formats := []string{"csv"}
	if s := os.Getenv("BILEAN_BENCH_FORMATS"); s != "" {
		formats = strings.Split(s, ",")
	}
	sizes := []int{1000, 10000}
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
				h := newHarness(b)
				setRenderFormats(b, h.cfg, formats)
				// The memory limit bilean applies from pipeline.memory_limit.
				if limit, err := config.ParseBytes(h.cfg.Pipeline.MemoryLimit); err == nil && limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
					debug.SetMemoryLimit(limit)
				}
				t0 := time.Now()
				stats, err := synthcloud.Load(context.Background(), h.st, synthcloud.Options{Projects: projects, Month: month(b, "2026-10"), Seed: 1, SpansPerProject: 100})
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("loaded %d projects, %d records in %s", stats.Customers, stats.Records, time.Since(t0).Round(time.Millisecond))
				runtime.GC()
				peak := sampleHeap()
				b.StartTimer()
				start := time.Now()
				run := h.run("2026-10")
				took := time.Since(start)
				b.StopTimer()
				heap := peak()
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
			}
		})
	}
}

// setRenderFormats makes the scheduled chain's render step write these formats.
func setRenderFormats(b *testing.B, cfg *config.Config, formats []string) {
	for i, st := range cfg.Pipeline.Scheduled {
		if st.Name != "render" || st.Node == nil {
			continue
		}
		var node yaml.Node
		if err := node.Encode(formats); err != nil {
			b.Fatal(err)
		}
		n := st.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "formats" {
				n.Content[j+1] = &node
			}
		}
		cfg.Pipeline.Scheduled[i] = st
		return
	}
	b.Fatal("no render step in the scheduled chain")
}

// sampleHeap samples HeapInuse until the returned function is called, which returns the peak.
func sampleHeap() func() uint64 {
	var (
		mu   sync.Mutex
		peak uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM), 0 where unknown.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
