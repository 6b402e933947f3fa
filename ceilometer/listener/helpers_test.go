package listener_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/etc"
	"github.com/bilean/bilean/servicetest"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/postgres"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/bilean/bilean/store/sqlite"
)

const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// rabbit connects to the RabbitMQ on 127.0.0.1:5672; it skips when it is missing, unless CI=true.
func rabbit(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	servicetest.Require(t, err, "RabbitMQ on 127.0.0.1:5672", "run .ci/rabbitmq.sh")
	t.Cleanup(func() { conn.Close() })
	return conn
}

var seq atomic.Int64

// topology returns a listener configuration with exchanges and a queue unique to this test, and
// deletes them when the test ends.
func topology(t testing.TB, conn *amqp.Connection) listener.Config {
	t.Helper()
	id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), seq.Add(1))
	cfg := listener.Config{
		URL:         rabbitURL,
		Exchanges:   []string{"t-nova-" + id, "t-openstack-" + id, "t-neutron-" + id, "t-glance-" + id, "t-keystone-" + id},
		Queue:       "t-bilean-" + id,
		RoutingKeys: []string{"notifications.info", "versioned_notifications.info"},
		Prefetch:    800,
		BatchSize:   400,
		BatchWait:   20 * time.Millisecond,
		NewCustomer: &billing.Customer{Currency: "EUR", Status: billing.Active},
		MaxBackoff:  time.Second,
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Setup(ch); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	t.Cleanup(func() {
		c, err := amqp.Dial(rabbitURL)
		if err != nil {
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return
		}
		ch.QueueDelete(cfg.Queue, false, false, false)
		for _, ex := range cfg.Exchanges {
			ch.ExchangeDelete(ex, false, false)
		}
	})
	return cfg
}

// publisher publishes to the test's exchanges.
type publisher struct {
	t  testing.TB
	ch *amqp.Channel
}

func newPublisher(t testing.TB, conn *amqp.Connection) *publisher {
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return &publisher{t: t, ch: ch}
}

func (p *publisher) publish(exchange, key string, body []byte) {
	p.t.Helper()
	c, err := p.ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, key, false, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	if err != nil {
		p.t.Fatal(err)
	}
	if ok, err := c.WaitContext(context.Background()); !ok || err != nil {
		p.t.Fatalf("publish not confirmed: %v", err)
	}
}

// envelope wraps a bare notification as oslo.messaging publishes it; fields set or replace
// payload keys when given as "payload.key".
func envelope(t testing.TB, bare []byte, messageID, timestamp string, fields map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(bare, &m); err != nil {
		t.Fatal(err)
	}
	m["message_id"] = messageID
	m["timestamp"] = timestamp
	m["_context_request_id"] = "req-" + messageID
	m["_unique_id"] = strings.ReplaceAll(messageID, "-", "")
	for k, v := range fields {
		if rest, ok := strings.CutPrefix(k, "payload.nova."); ok {
			m["payload"].(map[string]any)["nova_object.data"].(map[string]any)[rest] = v
		} else if rest, ok := strings.CutPrefix(k, "payload."); ok {
			m["payload"].(map[string]any)[rest] = v
		} else {
			m[k] = v
		}
	}
	inner, _ := json.Marshal(m)
	out, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(inner)})
	return out
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shippedDefs(t testing.TB) *notification.Definitions {
	t.Helper()
	d, err := notification.ParseDefinitions("etc/events.yaml", etc.Events)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bilean.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testStore is what the listener writes to and the tests read back.
type testStore interface {
	store.Store
	store.Events
}

// backend is a store under test and a way to count its rows.
type backend struct {
	name  string
	st    testStore
	query func(q string) (int, error)
	exec  func(q string) error
}

func (b *backend) count(t testing.TB, q string) int {
	t.Helper()
	n, err := b.query(q)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eachBackend runs fn against the embedded store and against PostgreSQL (a fresh schema of
// BILEAN_TEST_DATABASE_URL: skipped when it is unreachable, failing with CI=true): the listener's
// contract is the same on both.
func eachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Run("sqlite", func(t *testing.T) {
		st := openStore(t)
		fn(t, &backend{name: "sqlite", st: st, query: func(q string) (n int, err error) {
			err = st.DB().QueryRow(q).Scan(&n)
			return n, err
		}, exec: func(q string) error { _, err := st.DB().Exec(q); return err }})
	})
	t.Run("postgres", func(t *testing.T) {
		st := openPostgres(t)
		fn(t, &backend{name: "postgres", st: st, query: func(q string) (n int, err error) {
			err = st.Pool().QueryRow(context.Background(), q).Scan(&n)
			return n, err
		}, exec: func(q string) error { _, err := st.Pool().Exec(context.Background(), q); return err }})
	})
}

func openPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count returns the result of a COUNT(*) query on the store.
func count(t testing.TB, st *sqlite.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// runListener runs l until the test ends; it returns a stop function that drains and waits.
func runListener(t testing.TB, l *listener.Listener) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("listener did not stop within 20 s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// runCtl runs rabbitmqctl with a timeout.
func runCtl(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
}

// value reads a counter or gauge.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
