package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the listener's Prometheus metrics.
type Metrics struct {
	Received    prometheus.Counter
	Recorded    prometheus.Counter
	Duplicates  prometheus.Counter
	Ignored     prometheus.Counter
	Quarantined *prometheus.CounterVec // by reason
	Batch       prometheus.Histogram   // seconds to write and acknowledge a batch
	Lag         prometheus.Gauge       // seconds from the sender's timestamp to the commit
	// WriterIdle is the time the writer waited for the next batch (the broker or the parsing is
	// the bottleneck); ReaderBlocked the time the reader waited for a busy writer (the store is).
	WriterIdle    prometheus.Counter
	ReaderBlocked prometheus.Counter
	Reconnects    prometheus.Counter
	Connected     prometheus.Gauge
}

// NewMetrics creates the metrics and registers them (and the Go and process collectors) with
// reg; a nil reg leaves them unregistered (tests, benchmarks).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_received_total",
			Help: "Messages received from RabbitMQ."}),
		Recorded: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_recorded_total",
			Help: "Events stored for the first time."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_duplicates_total",
			Help: "Events whose message id was already stored (redeliveries): no-ops."}),
		Ignored: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_ignored_total",
			Help: "Notifications of types the event definitions ignore."}),
		Quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bilean_listener_quarantined_total",
			Help: "Messages quarantined, by reason."}, []string{"reason"}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bilean_listener_batch_seconds",
			Help:    "Time to commit and acknowledge one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bilean_listener_lag_seconds",
			Help: "Seconds between the newest committed notification's timestamp and its commit."}),
		WriterIdle: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_writer_idle_seconds_total",
			Help: "Seconds the writer waited for a batch to commit (reading or parsing is slower)."}),
		ReaderBlocked: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_reader_blocked_seconds_total",
			Help: "Seconds the reader waited for the writer to take a full batch (the store is slower)."}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "bilean_listener_reconnects_total",
			Help: "Connections to RabbitMQ lost and retried."}),
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bilean_listener_connected",
			Help: "1 while consuming from RabbitMQ."}),
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Recorded, m.Duplicates, m.Ignored, m.Quarantined, m.Batch, m.Lag,
			m.WriterIdle, m.ReaderBlocked, m.Reconnects, m.Connected, collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// ServeMetrics serves reg at http://addr/metrics until ctx is done. It returns once listening, so
// a port in use is reported at start-up.
func ServeMetrics(ctx context.Context, addr string, reg prometheus.Gatherer, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	return nil
}
