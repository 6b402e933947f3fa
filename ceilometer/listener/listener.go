// Package listener consumes OpenStack notifications from RabbitMQ (amqp091-go) and records them
// as events through store.Events.
//
// Invariants:
//   - ack after commit: a batch is acknowledged with one multiple-ack only after the transaction
//     holding its events and quarantined messages committed; a crash before that redelivers the
//     batch, and the store's message-id dedup makes the redelivery a no-op;
//   - every message ends somewhere: recorded, a duplicate, ignored by the definitions, or
//     quarantined with its reason and raw body; none is redelivered forever;
//   - the listener survives broker restarts (reconnect with backoff) and drains on shutdown: the
//     batch in hand is committed and acknowledged before Run returns.
//
// Several listeners may consume the same queue (competing consumers).
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

// Config is what the listener needs from the configuration (see config.Listener).
type Config struct {
	URL         string
	Exchanges   []string
	Durable     bool // exchange durability, as the cloud declares them
	Queue       string
	RoutingKeys []string
	Prefetch    int
	BatchSize   int
	BatchWait   time.Duration
	// NewCustomer is the template of customers created on their project's first event; nil
	// quarantines the events of unknown projects.
	NewCustomer *billing.Customer
	// MaxBackoff caps the wait between reconnection attempts. Defaults to 30s.
	MaxBackoff time.Duration
}

// Listener consumes notifications.
type Listener struct {
	cfg     Config
	defs    *notification.Definitions
	store   store.Events
	log     *slog.Logger
	metrics *Metrics
	// OnCommitted, when set, is called after each committed batch with the customers whose
	// records or status changed (sorted). It runs on the writer: keep it short.
	OnCommitted func(ctx context.Context, customerIDs []string)
	now         func() time.Time
}

// New returns a listener. metrics may be nil.
func New(cfg Config, defs *notification.Definitions, st store.Events, log *slog.Logger, m *Metrics) *Listener {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2000 // with batches of 1000: the fastest on 2 cores (BenchmarkCapture)
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > cfg.Prefetch {
		cfg.BatchSize = max(1, cfg.Prefetch/2)
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Listener{cfg: cfg, defs: defs, store: st, log: log, metrics: m, now: time.Now}
}

// Run consumes until ctx is done, reconnecting with exponential backoff when the connection is
// lost. On cancellation it stops consuming, commits and acknowledges what it holds, and returns
// nil.
func (l *Listener) Run(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		started := time.Now()
		err := l.session(ctx)
		l.metrics.Connected.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = 250 * time.Millisecond
		}
		l.metrics.Reconnects.Inc()
		l.log.Warn("listener: connection lost, reconnecting", "err", err, "in", backoff, "url", redact(l.cfg.URL))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

// item is one delivery, parsed.
type item struct {
	tag    uint64
	d      amqp.Delivery
	event  *notification.Event
	qmsg   *store.QuarantinedMessage
	ignore bool
}

type batch struct {
	items   []item
	lastTag uint64
}

// Setup declares the exchanges, the queue and its bindings on ch.
func (c Config) Setup(ch *amqp.Channel) error {
	for _, ex := range c.Exchanges {
		if err := ch.ExchangeDeclare(ex, amqp.ExchangeTopic, c.Durable, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s (durable=%t; it must match how the cloud declares it): %w", ex, c.Durable, err)
		}
	}
	if _, err := ch.QueueDeclare(c.Queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", c.Queue, err)
	}
	for _, ex := range c.Exchanges {
		for _, rk := range c.RoutingKeys {
			if err := ch.QueueBind(c.Queue, rk, ex, false, nil); err != nil {
				return fmt.Errorf("bind queue %s to %s with %s: %w", c.Queue, ex, rk, err)
			}
		}
	}
	return nil
}

// session runs one connection until it fails or ctx is done (then drains).
func (l *Listener) session(ctx context.Context) error {
	conn, err := amqp.DialConfig(l.cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "bilean listen"},
	})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(l.cfg.URL), err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := l.cfg.Setup(ch); err != nil {
		return err
	}
	if err := ch.Qos(l.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", l.cfg.Prefetch, err)
	}
	tag := fmt.Sprintf("bilean-%d", time.Now().UnixNano())
	deliveries, err := ch.Consume(l.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", l.cfg.Queue, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	l.metrics.Connected.Set(1)
	l.log.Info("listener: consuming", "url", redact(l.cfg.URL), "queue", l.cfg.Queue,
		"exchanges", l.cfg.Exchanges, "routing_keys", l.cfg.RoutingKeys, "prefetch", l.cfg.Prefetch, "batch", l.cfg.BatchSize)

	// The writer commits and acknowledges batches while this goroutine reads and parses the
	// next one; the queue of one batch keeps at most two batches in hand (prefetch covers both).
	work := make(chan batch, 1)
	werr := make(chan error, 1)
	go func() {
		var err error
		for {
			idle := time.Now()
			b, ok := <-work
			l.metrics.WriterIdle.Add(time.Since(idle).Seconds())
			if !ok {
				break
			}
			if err == nil {
				err = l.commit(ctx, ch, b)
				if err != nil {
					werr <- err
				}
			}
		}
		close(werr)
	}()
	finish := func(err error) error {
		close(work)
		if werr := <-werr; werr != nil && err == nil {
			err = werr
		}
		return err
	}

	cur := batch{items: make([]item, 0, l.cfg.BatchSize)}
	timer := time.NewTimer(l.cfg.BatchWait)
	timer.Stop()
	flush := func() bool {
		if len(cur.items) == 0 {
			return true
		}
		blocked := time.Now()
		select {
		case work <- cur:
		case err := <-werr:
			werr <- err
			return false
		}
		l.metrics.ReaderBlocked.Add(time.Since(blocked).Seconds())
		cur = batch{items: make([]item, 0, l.cfg.BatchSize)}
		return true
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				flush()
				return finish(errors.New("deliveries closed by the broker"))
			}
			l.metrics.Received.Inc()
			if len(cur.items) == 0 {
				timer.Reset(l.cfg.BatchWait)
			}
			cur.items = append(cur.items, l.parse(d))
			cur.lastTag = d.DeliveryTag
			if len(cur.items) >= l.cfg.BatchSize {
				timer.Stop()
				if !flush() {
					return finish(nil)
				}
			}
		case <-timer.C:
			if !flush() {
				return finish(nil)
			}
		case err := <-werr:
			werr <- err
			return finish(nil)
		case e := <-closed:
			return finish(fmt.Errorf("connection closed: %v", e))
		case <-ctx.Done():
			// Drain: stop deliveries, handle what the broker already sent, commit, ack.
			timer.Stop()
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			done := make(chan struct{})
			go func() { _ = ch.Cancel(tag, false); close(done) }()
		drain:
			for {
				select {
				case d, ok := <-deliveries:
					if !ok {
						break drain
					}
					l.metrics.Received.Inc()
					cur.items = append(cur.items, l.parse(d))
					cur.lastTag = d.DeliveryTag
				case <-cctx.Done():
					break drain
				}
			}
			cancel()
			<-done
			flush()
			err := finish(nil)
			l.log.Info("listener: drained and stopped", "err", err)
			return err
		}
	}
}

// parse turns a delivery into an event, a quarantined message or an ignored one.
func (l *Listener) parse(d amqp.Delivery) item {
	it := item{tag: d.DeliveryTag, d: d}
	m, err := notification.Parse(d.Body)
	if err == nil {
		var ev notification.Event
		ev, err = l.defs.Event(m)
		if err == nil {
			it.event = &ev
			return it
		}
		if errors.Is(err, notification.ErrIgnored) {
			it.ignore = true
			return it
		}
	}
	it.qmsg = l.quarantine(d, m, notification.ReasonOf(err), err.Error())
	return it
}

func (l *Listener) quarantine(d amqp.Delivery, m *notification.Message, reason, detail string) *store.QuarantinedMessage {
	q := &store.QuarantinedMessage{Reason: reason, Detail: detail, Exchange: d.Exchange, RoutingKey: d.RoutingKey, Body: d.Body}
	if m != nil {
		q.MessageID, q.EventType = m.MessageID, m.EventType
	}
	return q
}

// commit writes one batch and acknowledges it with one multiple-ack.
func (l *Listener) commit(ctx context.Context, ch *amqp.Channel, b batch) error {
	start := time.Now()
	eb := store.EventBatch{NewCustomer: l.cfg.NewCustomer, ReceivedAt: l.now()}
	var srcs []item // the item of each event, for refusals
	var ignored int
	var newest time.Time
	for _, it := range b.items {
		switch {
		case it.event != nil:
			eb.Events = append(eb.Events, *it.event)
			srcs = append(srcs, it)
			if it.event.Sent.After(newest) {
				newest = it.event.Sent
			}
		case it.qmsg != nil:
			eb.Quarantine = append(eb.Quarantine, *it.qmsg)
		default:
			ignored++
		}
	}
	// The store call is not bound to ctx: a shutdown still commits the batch in hand.
	wctx := context.WithoutCancel(ctx)
	var res store.EventResult
	if len(eb.Events)+len(eb.Quarantine) > 0 {
		var err error
		if res, err = l.store.RecordEvents(wctx, eb); err != nil {
			return fmt.Errorf("commit batch of %d messages: %w", len(b.items), err)
		}
		if len(res.Refused) > 0 {
			qb := store.EventBatch{ReceivedAt: eb.ReceivedAt}
			for _, i := range res.Refused {
				it := srcs[i]
				q := l.quarantine(it.d, nil, notification.ReasonUnknownProject,
					fmt.Sprintf("project %s is not a customer (listener.unknown_projects.mode is quarantine)", it.event.ProjectID))
				q.MessageID, q.EventType = it.event.MessageID, it.event.EventType
				qb.Quarantine = append(qb.Quarantine, *q)
			}
			qr, err := l.store.RecordEvents(wctx, qb)
			if err != nil {
				return fmt.Errorf("quarantine %d events of unknown projects: %w", len(qb.Quarantine), err)
			}
			res.Quarantined += qr.Quarantined
		}
	}
	if err := ch.Ack(b.lastTag, true); err != nil {
		return fmt.Errorf("acknowledge batch up to %d: %w", b.lastTag, err)
	}
	l.metrics.Batch.Observe(time.Since(start).Seconds())
	l.metrics.Recorded.Add(float64(res.Recorded))
	l.metrics.Duplicates.Add(float64(res.Duplicates))
	l.metrics.Ignored.Add(float64(ignored))
	for _, q := range eb.Quarantine {
		l.metrics.Quarantined.WithLabelValues(q.Reason).Inc()
	}
	for range res.Refused {
		l.metrics.Quarantined.WithLabelValues(notification.ReasonUnknownProject).Inc()
	}
	if !newest.IsZero() {
		l.metrics.Lag.Set(l.now().Sub(newest).Seconds())
	}
	if len(eb.Quarantine) > 0 || len(res.Refused) > 0 {
		l.log.Warn("listener: messages quarantined", "count", len(eb.Quarantine)+len(res.Refused), "first_reason",
			firstReason(eb.Quarantine, res.Refused))
	}
	if len(res.CreatedCustomers) > 0 {
		l.log.Info("listener: customers created from notifications", "customers", res.CreatedCustomers)
	}
	if res.Conflicts > 0 {
		l.log.Warn("listener: events contradict settled records; left as invoiced", "records", res.Conflicts)
	}
	l.log.Debug("listener: batch committed", "messages", len(b.items), "recorded", res.Recorded,
		"duplicates", res.Duplicates, "ignored", ignored, "took", time.Since(start))
	if l.OnCommitted != nil && len(res.Customers) > 0 {
		l.OnCommitted(ctx, res.Customers)
	}
	return nil
}

func firstReason(qs []store.QuarantinedMessage, refused []int) string {
	if len(qs) > 0 {
		return qs[0].Reason
	}
	if len(refused) > 0 {
		return notification.ReasonUnknownProject
	}
	return ""
}

// redact masks the password of an AMQP URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
