package listener_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

// BenchmarkCapture measures sustained capture from RabbitMQ into the embedded store with
// ack-after-commit. b.N distinct legacy create notifications (oslo envelopes, ~1.8 KB, each a new
// server, over 100 projects) are queued first, outside the timer; then the listener alone is
// timed until every message is recorded, with the listener's default prefetch and batch size
// (2000, 1000) and others, one multiple-ack per committed batch. It reports msgs/s, the
// process's peak resident memory and peak live heap, the CPU time per message of the process
// and of RabbitMQ (they share the 2 cores), and where the time went: the share of the run the
// writer spent committing (commit-%) and waiting for the reader to hand it a batch
// (writer-idle-%), and the share the reader spent blocked on a busy writer (reader-blocked-%).
//
//	go test ./ceilometer/listener -run '^$' -bench Capture -benchtime 100000x
func BenchmarkCapture(b *testing.B) {
	for _, tc := range []struct{ prefetch, batch int }{{0, 0}, {500, 250}, {1000, 500}, {3000, 1000}} {
		name := fmt.Sprintf("prefetch=%d/batch=%d", tc.prefetch, tc.batch)
		if tc.prefetch == 0 {
			name = "defaults"
		}
		b.Run(name, func(b *testing.B) { benchCapture(b, tc.prefetch, tc.batch, sqliteEvents) })
	}
	b.Run("postgres/defaults", func(b *testing.B) { benchCapture(b, 0, 0, postgresEvents) })
}

// eventStore opens a fresh event store for a benchmark and returns it with a function counting
// its stored events.
type eventStore func(b *testing.B) (store.Events, func() int)

func sqliteEvents(b *testing.B) (store.Events, func() int) {
	st := openStore(b)
	return st, func() int { return count(b, st, `SELECT COUNT(*) FROM events`) }
}

func postgresEvents(b *testing.B) (store.Events, func() int) {
	url := pgtest.URL(b)
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, func() int {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
}

func benchCapture(b *testing.B, prefetch, batch int, open eventStore) {
	conn := rabbit(b)
	cfg := topology(b, conn)
	cfg.Prefetch, cfg.BatchSize, cfg.BatchWait = prefetch, batch, 0 // 0: the listener's defaults
	st, events := open(b)
	if err := publishAll(b, conn, cfg.Exchanges[0], bodies(b, b.N)); err != nil {
		b.Fatal(err)
	}
	waitQueued(b, conn, cfg.Queue, b.N)
	// The published bodies are garbage now: return them and reset the peak resident set, so it
	// measures the listener.
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	m := listener.NewMetrics(nil)
	l := listener.New(cfg, shippedDefs(b), st, quiet(), m)

	heap := peakHeap()
	cpu0, broker0 := processCPU(), brokerCPU()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- l.Run(ctx) }()
	deadline := start.Add(10 * time.Minute)
	for value(m.Recorded) < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %v of %d recorded", value(m.Recorded), b.N)
		}
		heap.sample()
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu, broker := processCPU()-cpu0, brokerCPU()-broker0
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if n := events(); n != b.N {
		b.Fatalf("events = %d, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(heap.peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	if broker0 > 0 {
		b.ReportMetric(float64(broker.Microseconds())/float64(b.N), "broker-cpu-µs/msg")
	}
	b.ReportMetric(100*histogramSum(m)/elapsed.Seconds(), "commit-%")
	b.ReportMetric(100*value(m.WriterIdle)/elapsed.Seconds(), "writer-idle-%")
	b.ReportMetric(100*value(m.ReaderBlocked)/elapsed.Seconds(), "reader-blocked-%")
}

// waitQueued waits until the queue holds n messages (publishing without confirms is
// asynchronous).
func waitQueued(b *testing.B, conn *amqp.Connection, queue string, n int) {
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	eventually(b, 5*time.Minute, "messages queued", func() bool {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		return q.Messages >= n
	})
}

func histogramSum(m *listener.Metrics) float64 {
	var d dto.Metric
	if err := m.Batch.Write(&d); err != nil {
		panic(err)
	}
	return d.Histogram.GetSampleSum()
}

// heapPeak samples the live heap (runtime/metrics, no stop-the-world).
type heapPeak struct {
	s    []metrics.Sample
	peak uint64
}

func peakHeap() *heapPeak {
	return &heapPeak{s: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (h *heapPeak) sample() {
	metrics.Read(h.s)
	h.peak = max(h.peak, h.s[0].Value.Uint64())
}

// processCPU returns the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// brokerCPU returns the CPU time RabbitMQ (the local beam.smp) used so far, 0 when it is not
// found: on two cores, the broker's share is what the listener cannot have.
func brokerCPU() time.Duration {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("(beam.smp)")) {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) < 13 {
			return 0
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, stime: fields 14 and 15 of stat
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return 0
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes, 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkRecordEvents measures the writer alone: parsed batches of new servers written to the
// embedded store, one transaction per batch, without RabbitMQ.
//
//	go test ./ceilometer/listener -run '^$' -bench RecordEvents -benchtime 20000x
func BenchmarkRecordEvents(b *testing.B) {
	const batch = 500
	defs := shippedDefs(b)
	evs := make([]notification.Event, b.N)
	for i, body := range bodies(b, b.N) {
		m, err := notification.Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		if evs[i], err = defs.Event(m); err != nil {
			b.Fatal(err)
		}
	}
	st := openStore(b)
	tmpl := &billing.Customer{Currency: "EUR", Status: billing.Active}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		res, err := st.RecordEvents(context.Background(), store.EventBatch{Events: evs[i:min(i+batch, b.N)], NewCustomer: tmpl})
		if err != nil {
			b.Fatal(err)
		}
		if res.Recorded != min(batch, b.N-i) {
			b.Fatalf("recorded %d of %d", res.Recorded, min(batch, b.N-i))
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
