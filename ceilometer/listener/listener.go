// Package listener consumes OpenStack notifications from RabbitMQ (amqp091-go) and records them
// as events through store.Events.
//
// Invariants:
//   - ack after commit: a batch is acknowledged with one multiple-ack only after the transaction
//     holding its events and quarantined messages committed; a crash before that redelivers the
//     batch, and the store's message-id dedup makes the redelivery a no-op;
//   - every message ends somewhere: recorded, a duplicate, ignored by the definitions, or
//     quarantined with its reason and raw body; none is redelivered forever;
//   - one message never blocks the others: an event is checked before the store (store.CheckEvent:
//     no NUL or control character, ids within store.EventLimits; a time within
//     [MinEventTime, now+MaxEventAhead]) and quarantined with reason bad_field when refused; a
//     batch the store still refuses is split in halves down to the message it refuses, which is
//     quarantined with reason store_refused and the database's error, while the rest commits;
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
	"net"
	"net/url"
	"sort"
	"strings"
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
	// MinEventTime is the earliest event time taken as real: an event before it is quarantined
	// (bad_field). Defaults to 2000-01-01T00:00:00Z.
	MinEventTime time.Time
	// MaxEventAhead is how far past the listener's clock an event time may be: later is
	// quarantined (bad_field). Defaults to 24h.
	MaxEventAhead time.Duration
}

// Defaults of the event time window.
var (
	DefaultMinEventTime  = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	DefaultMaxEventAhead = 24 * time.Hour
)

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
	if cfg.MinEventTime.IsZero() {
		cfg.MinEventTime = DefaultMinEventTime
	}
	if cfg.MaxEventAhead <= 0 {
		cfg.MaxEventAhead = DefaultMaxEventAhead
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
			if err = l.Check(ev); err == nil {
				it.event = &ev
				return it
			}
		}
		if errors.Is(err, notification.ErrIgnored) {
			it.ignore = true
			return it
		}
	}
	it.qmsg = l.quarantine(d, m, notification.ReasonOf(err), err.Error())
	return it
}

// Check is what an event passes before it reaches the store: store.CheckEvent (what both
// stores can hold: no NUL or control character, ids within store.EventLimits) and a time within
// [MinEventTime, now + MaxEventAhead]. A refusal is a *notification.Error with reason bad_field.
func (l *Listener) Check(e notification.Event) error {
	if err := store.CheckEvent(e); err != nil {
		return &notification.Error{Reason: notification.ReasonBadField, EventType: e.EventType, Err: err}
	}
	if e.Time.Before(l.cfg.MinEventTime) {
		return &notification.Error{Reason: notification.ReasonBadField, EventType: e.EventType,
			Err: fmt.Errorf("time %s: before %s (listener.min_event_time): not a real event time",
				e.Time.UTC().Format(time.RFC3339), l.cfg.MinEventTime.UTC().Format(time.RFC3339))}
	}
	if limit := l.now().Add(l.cfg.MaxEventAhead); e.Time.After(limit) {
		return &notification.Error{Reason: notification.ReasonBadField, EventType: e.EventType,
			Err: fmt.Errorf("time %s: more than %s ahead of this host's clock (listener.max_event_ahead)",
				e.Time.UTC().Format(time.RFC3339), l.cfg.MaxEventAhead)}
	}
	return nil
}

func (l *Listener) quarantine(d amqp.Delivery, m *notification.Message, reason, detail string) *store.QuarantinedMessage {
	q := &store.QuarantinedMessage{Reason: reason, Detail: detail, Exchange: d.Exchange, RoutingKey: d.RoutingKey, Body: d.Body}
	if m != nil {
		q.MessageID, q.EventType = m.MessageID, m.EventType
	}
	return q
}

// tally is what the store calls of one batch did.
type tally struct {
	res     store.EventResult
	reasons []string // of every quarantined message, in order
	splits  int      // times a refused part of the batch was split
}

func (t *tally) add(r store.EventResult) {
	t.res.Recorded += r.Recorded
	t.res.Duplicates += r.Duplicates
	t.res.Quarantined += r.Quarantined
	t.res.Pending += r.Pending
	t.res.Conflicts += r.Conflicts
	t.res.Customers = append(t.res.Customers, r.Customers...)
	t.res.CreatedCustomers = append(t.res.CreatedCustomers, r.CreatedCustomers...)
}

// commit writes one batch and acknowledges it with one multiple-ack.
func (l *Listener) commit(ctx context.Context, ch *amqp.Channel, b batch) error {
	start := time.Now()
	receivedAt := l.now()
	var ignored int
	var newest time.Time
	work := make([]item, 0, len(b.items))
	for _, it := range b.items {
		switch {
		case it.event != nil:
			work = append(work, it)
			if it.event.Sent.After(newest) {
				newest = it.event.Sent
			}
		case it.qmsg != nil:
			work = append(work, it)
		default:
			ignored++
		}
	}
	// The store call is not bound to ctx: a shutdown still commits the batch in hand.
	wctx := context.WithoutCancel(ctx)
	var t tally
	if len(work) > 0 {
		if err := l.record(wctx, work, receivedAt, &t); err != nil {
			return fmt.Errorf("commit batch of %d messages: %w", len(b.items), err)
		}
	}
	if err := ch.Ack(b.lastTag, true); err != nil {
		return fmt.Errorf("acknowledge batch up to %d: %w", b.lastTag, err)
	}
	res := t.res
	l.metrics.Batch.Observe(time.Since(start).Seconds())
	l.metrics.Recorded.Add(float64(res.Recorded))
	l.metrics.Duplicates.Add(float64(res.Duplicates))
	l.metrics.Ignored.Add(float64(ignored))
	for _, r := range t.reasons {
		l.metrics.Quarantined.WithLabelValues(r).Inc()
	}
	if !newest.IsZero() {
		l.metrics.Lag.Set(l.now().Sub(newest).Seconds())
	}
	if len(t.reasons) > 0 {
		l.log.Warn("listener: messages quarantined", "count", len(t.reasons), "first_reason", t.reasons[0])
	}
	if len(res.CreatedCustomers) > 0 {
		sort.Strings(res.CreatedCustomers)
		l.log.Info("listener: customers created from notifications", "customers", res.CreatedCustomers)
	}
	if res.Conflicts > 0 {
		l.log.Warn("listener: events contradict settled records; left as invoiced", "records", res.Conflicts)
	}
	l.log.Debug("listener: batch committed", "messages", len(b.items), "recorded", res.Recorded,
		"duplicates", res.Duplicates, "ignored", ignored, "splits", t.splits, "took", time.Since(start))
	if l.OnCommitted != nil && len(res.Customers) > 0 {
		l.OnCommitted(ctx, uniqueSorted(res.Customers))
	}
	return nil
}

// record writes items (events and quarantined messages) in one transaction. When the store
// refuses it, the items are split in halves, each written on its own, down to the one message
// the store refuses: that one is quarantined with reason store_refused and the store's error,
// and everything else commits. A single message that fails and whose quarantine row cannot be
// written either means the store itself is failing: the error is returned, nothing is
// acknowledged, and the batch is redelivered after the reconnect.
func (l *Listener) record(ctx context.Context, items []item, receivedAt time.Time, t *tally) error {
	err := l.recordOnce(ctx, items, receivedAt, t)
	if err == nil {
		return nil
	}
	if transient(err) {
		return err // the store, not a message: redelivered after the reconnect
	}
	if len(items) > 1 {
		t.splits++
		l.log.Warn("listener: the store refused a batch; writing it in halves to find the message", "messages", len(items), "err", err)
		half := len(items) / 2
		if err := l.record(ctx, items[:half], receivedAt, t); err != nil {
			return err
		}
		return l.record(ctx, items[half:], receivedAt, t)
	}
	// One message. A failure of the connection, not of this message, is as likely on a first
	// try: try once more before blaming the message; a failure that says the database is
	// unavailable, busy or lost a race is never the message's.
	if err = l.recordOnce(ctx, items, receivedAt, t); err == nil {
		return nil
	} else if transient(err) {
		return err
	}
	it := items[0]
	q := l.quarantine(it.d, nil, notification.ReasonStoreRefused, "the store refused this message: "+err.Error())
	if it.event != nil {
		q.MessageID, q.EventType = it.event.MessageID, it.event.EventType
	} else if it.qmsg != nil {
		q.MessageID, q.EventType = it.qmsg.MessageID, it.qmsg.EventType
		q.Detail = fmt.Sprintf("%s (quarantined first as %s: %s)", q.Detail, it.qmsg.Reason, it.qmsg.Detail)
	}
	qr, qerr := l.store.RecordEvents(ctx, store.EventBatch{Quarantine: []store.QuarantinedMessage{*q}, ReceivedAt: receivedAt})
	if qerr != nil {
		return fmt.Errorf("%w; and quarantining the message failed too: %v", err, qerr)
	}
	l.log.Warn("listener: message refused by the store, quarantined", "message_id", store.Printable(q.MessageID, 80),
		"event_type", store.Printable(q.EventType, 80), "err", err)
	t.add(qr)
	t.reasons = append(t.reasons, notification.ReasonStoreRefused)
	return nil
}

// recordOnce writes items in one transaction, then quarantines the events the store refused
// for an unknown project.
func (l *Listener) recordOnce(ctx context.Context, items []item, receivedAt time.Time, t *tally) error {
	eb := store.EventBatch{NewCustomer: l.cfg.NewCustomer, ReceivedAt: receivedAt}
	var srcs []item // the item of each event, for refusals
	for _, it := range items {
		switch {
		case it.event != nil:
			eb.Events = append(eb.Events, *it.event)
			srcs = append(srcs, it)
		case it.qmsg != nil:
			eb.Quarantine = append(eb.Quarantine, *it.qmsg)
		}
	}
	res, err := l.store.RecordEvents(ctx, eb)
	if err != nil {
		return err
	}
	t.add(res)
	for _, q := range eb.Quarantine {
		t.reasons = append(t.reasons, q.Reason)
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
		qr, err := l.store.RecordEvents(ctx, qb)
		if err != nil {
			return fmt.Errorf("quarantine %d events of unknown projects: %w", len(qb.Quarantine), err)
		}
		t.res.Quarantined += qr.Quarantined
		for range res.Refused {
			t.reasons = append(t.reasons, notification.ReasonUnknownProject)
		}
	}
	return nil
}

// transient reports whether err says the store could not take a transaction just now
// (connection lost, shut down, out of resources, a serialization failure or deadlock, SQLite
// busy), rather than that it refuses what it was given.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		switch code := se.SQLState(); {
		case len(code) < 2:
		case code[:2] == "08", code[:2] == "40", code[:2] == "53", code[:2] == "57", code[:2] == "58":
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "closed pool")
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// redact masks the password of an AMQP URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
