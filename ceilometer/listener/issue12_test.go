package listener_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

// queueDepth returns the messages ready in the test's queue.
func queueDepth(t *testing.T, conn *amqp.Connection, queue string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// Issue 12, 1: a valid create whose instance_id holds a NUL or is 8,192 characters long, or whose
// time is impossible, used to fail the PostgreSQL batch commit (SQLSTATE 22021 / 54000) forever
// while the embedded store took it. Now each is quarantined (bad_field) before the store, on
// both stores alike, and the messages around it, in the same batch, are recorded and acked.
func TestPoisonMessagesQuarantinedNotBlocking(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		cfg.BatchWait = 300 * time.Millisecond // everything below in one batch
		p := newPublisher(t, conn)
		nova := cfg.Exchanges[0]
		create := sample(t, "compute.instance.create.end.json")
		pub := func(id string, fields map[string]any) {
			p.publish(nova, "notifications.info", envelope(t, create, id, "2026-10-03 08:15:42", fields))
		}
		// Published before the listener starts: one batch holds them all.
		pub("ok-1", map[string]any{"payload.instance_id": "srv-ok-1"})
		pub("nul", map[string]any{"payload.instance_id": "abc\u0000def"})
		pub("long", map[string]any{"payload.instance_id": strings.Repeat("x", 8192)})
		pub("ctl", map[string]any{"payload.instance_id": "srv\u001b[31m"})
		pub("y1999", map[string]any{"payload.instance_id": "srv-1999", "payload.launched_at": "1999-12-31T23:59:59.000000"})
		pub("future", map[string]any{"payload.instance_id": "srv-future",
			"payload.launched_at": time.Now().UTC().Add(49 * time.Hour).Format("2006-01-02T15:04:05.000000")})
		pub("nul-flavor", map[string]any{"payload.instance_id": "srv-nul-flavor", "payload.instance_type": "m1.\u0000small"})
		pub("ok-2", map[string]any{"payload.instance_id": "srv-ok-2"})

		m := listener.NewMetrics(nil)
		runListener(t, listener.New(cfg, shippedDefs(t), b.st, quiet(), m))
		eventually(t, 15*time.Second, "8 messages handled", func() bool {
			return value(m.Received) == 8 && value(m.Recorded) == 2 &&
				value(m.Quarantined.WithLabelValues(notification.ReasonBadField)) == 6
		})
		if got := b.count(t, `SELECT COUNT(*) FROM events`); got != 2 {
			t.Errorf("events = %d, want 2 (ok-1, ok-2)", got)
		}
		if r := value(m.Reconnects); r != 0 {
			t.Errorf("reconnects = %v, want 0: no message may fail the batch", r)
		}
		qs, err := b.st.Quarantined(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, q := range qs {
			ids = append(ids, q.MessageID)
			if q.Reason != notification.ReasonBadField || len(q.Body) == 0 {
				t.Errorf("quarantined %s: reason %s, body %d bytes; want bad_field and the raw body", q.MessageID, q.Reason, len(q.Body))
			}
			if strings.ContainsRune(q.Detail, 0) || len(q.Detail) > 4096 {
				t.Errorf("quarantine detail of %s holds a NUL or is %d bytes", q.MessageID, len(q.Detail))
			}
		}
		sort.Strings(ids)
		if want := []string{"ctl", "future", "long", "nul", "nul-flavor", "y1999"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("quarantined %v, want %v", ids, want)
		}
		eventually(t, 5*time.Second, "an empty queue", func() bool { return queueDepth(t, conn, cfg.Queue) == 0 })
	})
}

// Issue 12, 1: whatever the check before the store misses, a batch the database refuses is
// written in halves down to the message it refuses; that one is quarantined with reason
// store_refused and the database's own error, the others are committed and acknowledged, and
// the listener never reconnects to retry the same batch. The refusal here is a constraint the
// test adds to the events table (PostgreSQL: a CHECK, SQLSTATE 23514; the embedded store: a
// trigger), standing for any refusal Bilean cannot foresee.
func TestBatchRefusedByTheStoreIsSplit(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		switch b.name {
		case "postgres":
			mustExec(t, b, `ALTER TABLE events ADD CONSTRAINT no_poison CHECK (resource_id <> 'srv-poison')`)
		case "sqlite":
			mustExec(t, b, `CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.resource_id = 'srv-poison'
BEGIN SELECT RAISE(ABORT, 'no_poison: srv-poison refused'); END`)
		}
		conn := rabbit(t)
		cfg := topology(t, conn)
		cfg.BatchWait = 300 * time.Millisecond
		p := newPublisher(t, conn)
		create := sample(t, "compute.instance.create.end.json")
		var want []string
		for _, id := range []string{"a", "b", "c", "poison", "d", "e", "f"} {
			p.publish(cfg.Exchanges[0], "notifications.info", envelope(t, create, "m-"+id, "2026-10-03 08:15:42",
				map[string]any{"payload.instance_id": "srv-" + id}))
			if id != "poison" {
				want = append(want, "m-"+id)
			}
		}
		m := listener.NewMetrics(nil)
		runListener(t, listener.New(cfg, shippedDefs(t), b.st, quiet(), m))
		eventually(t, 15*time.Second, "6 recorded, 1 refused", func() bool {
			return value(m.Recorded) == 6 && value(m.Quarantined.WithLabelValues(notification.ReasonStoreRefused)) == 1
		})
		if got := b.count(t, `SELECT COUNT(*) FROM events WHERE message_id <> 'm-poison'`); got != 6 {
			t.Errorf("events = %d, want the 6 others", got)
		}
		qs, err := b.st.Quarantined(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 1 || qs[0].MessageID != "m-poison" || qs[0].Reason != notification.ReasonStoreRefused ||
			!strings.Contains(qs[0].Detail, "no_poison") || len(qs[0].Body) == 0 {
			t.Fatalf("quarantine = %+v, want m-poison, store_refused, the database's reason (no_poison), the body", qs)
		}
		if b.name == "postgres" && !strings.Contains(qs[0].Detail, "23514") {
			t.Errorf("detail %q: want the SQLSTATE", qs[0].Detail)
		}
		if r := value(m.Reconnects); r != 0 {
			t.Errorf("reconnects = %v, want 0", r)
		}
		eventually(t, 5*time.Second, "an empty queue", func() bool { return queueDepth(t, conn, cfg.Queue) == 0 })
	})
}

func mustExec(t *testing.T, b *backend, q string) {
	t.Helper()
	if err := b.exec(q); err != nil {
		t.Fatal(err)
	}
}

// Issue 12, 2: a soft-deleted server stops being billed at the soft delete (state soft_deleted,
// which the server rule prices at 0 unless the policy says otherwise) and is billed again from
// its restore; Nova reclaiming it (delete.end) ends the span. Versioned and legacy alike.
func TestSoftDeleteStopsComputeBilling(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		runListener(t, listener.New(cfg, shippedDefs(t), b.st, quiet(), nil))
		p := newPublisher(t, conn)
		nova := cfg.Exchanges[0]
		const versioned, legacy = "versioned_notifications.info", "notifications.info"
		v := func(id, typ, ts, state string, extra map[string]any) {
			fields := map[string]any{"event_type": typ, "payload.nova.state": state}
			for k, x := range extra {
				fields[k] = x
			}
			p.publish(nova, versioned, envelope(t, sample(t, "instance-power_off-end.json"), id, ts, fields))
		}
		// Versioned: created 13:42:11, soft-deleted at 14:00, restored at 15:00, soft-deleted at
		// 16:00 and reclaimed by Nova at 17:00.
		p.publish(nova, versioned, envelope(t, sample(t, "instance-create-end.json"), "sd-1", "2012-10-29 13:42:12", nil))
		v("sd-2", "instance.soft_delete.end", "2012-10-29 14:00:00.4", "soft-delete", nil)
		v("sd-3", "instance.restore.end", "2012-10-29 15:00:00.1", "active", nil)
		v("sd-4", "instance.soft_delete.end", "2012-10-29 16:00:00.9", "soft-delete", nil)
		p.publish(nova, versioned, envelope(t, sample(t, "instance-delete-end.json"), "sd-5", "2012-10-29 17:00:01",
			map[string]any{"payload.nova.deleted_at": "2012-10-29T17:00:00Z"}))

		// Legacy: created 08:15:41, soft-deleted at 09:00, force-deleted (delete.end) at 10:00.
		create := sample(t, "compute.instance.create.end.json")
		p.publish(nova, legacy, envelope(t, create, "sdl-1", "2026-10-03 08:15:42", nil))
		p.publish(nova, legacy, envelope(t, create, "sdl-2", "2026-10-03 09:00:00",
			map[string]any{"event_type": "compute.instance.soft_delete.end", "payload.state": "soft-delete"}))
		p.publish(nova, legacy, envelope(t, sample(t, "compute.instance.delete.end.json"), "sdl-3", "2026-10-03 10:00:01",
			map[string]any{"payload.deleted_at": "2026-10-03T10:00:00.000000", "payload.instance_type": "m1.small",
				"payload.instance_flavor_id": "2", "payload.vcpus": 1, "payload.memory_mb": 2048, "payload.root_gb": 20}))

		eventually(t, 10*time.Second, "8 events", func() bool { return b.count(t, `SELECT COUNT(*) FROM events`) == 8 })
		const novaProj, proj = "6f70656e737461636b20342065766572", "8f4c3b2a1d0e4f5a9b8c7d6e5f4a3b2c"
		want := []string{
			"2012-10-29T13:42:11Z 2012-10-29T14:00:00Z state=active",
			"2012-10-29T14:00:00Z 2012-10-29T15:00:00Z state=soft_deleted",
			"2012-10-29T15:00:00Z 2012-10-29T16:00:00Z state=active",
			"2012-10-29T16:00:00Z 2012-10-29T17:00:00Z state=soft_deleted",
		}
		eventually(t, 5*time.Second, "versioned spans", func() bool {
			return reflect.DeepEqual(spans(t, b.st, novaProj, "178b0921-8f85-4257-88b6-2e743b5a975c", "state"), want)
		})
		wantLegacy := []string{
			"2026-10-03T08:15:41Z 2026-10-03T09:00:00Z state=active",
			"2026-10-03T09:00:00Z 2026-10-03T10:00:00Z state=soft_deleted",
		}
		eventually(t, 5*time.Second, "legacy spans", func() bool {
			return reflect.DeepEqual(spans(t, b.st, proj, "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", "state"), wantLegacy)
		})
	})
}

// Issue 12, 3: a create stamped from launched_at (the compute host's clock) that lands after a
// power-off stamped from its envelope (another clock, 3 s behind) no longer turns the server
// back to active: the life starts at launched_at, stopped. Delivered in either order.
func TestSkewedCreateNeverUndoesALaterChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		runListener(t, listener.New(cfg, shippedDefs(t), b.st, quiet(), nil))
		p := newPublisher(t, conn)
		nova, key := cfg.Exchanges[0], "versioned_notifications.info"
		const novaProj = "6f70656e737461636b20342065766572"
		for i, createFirst := range []bool{true, false} {
			srv := fmt.Sprintf("skew-srv-%d", i)
			create := envelope(t, sample(t, "instance-create-end.json"), srv+"-c", "2012-10-29 14:00:06",
				map[string]any{"payload.nova.uuid": srv, "payload.nova.launched_at": "2012-10-29T14:00:05Z"})
			off := envelope(t, sample(t, "instance-power_off-end.json"), srv+"-off", "2012-10-29 14:00:02.5",
				map[string]any{"payload.nova.uuid": srv})
			if createFirst {
				p.publish(nova, key, create)
				p.publish(nova, key, off)
			} else {
				p.publish(nova, key, off)
				p.publish(nova, key, create)
			}
			want := []string{"2012-10-29T14:00:05Z - state=stopped"}
			eventually(t, 10*time.Second, srv+" spans", func() bool {
				return reflect.DeepEqual(spans(t, b.st, novaProj, srv, "state"), want)
			})
		}
	})
}

// flakyStore fails its first calls the way a database that went away does.
type flakyStore struct {
	testStore
	fails atomic.Int32
}

func (f *flakyStore) RecordEvents(ctx context.Context, b store.EventBatch) (store.EventResult, error) {
	if f.fails.Add(-1) >= 0 {
		return store.EventResult{}, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.testStore.RecordEvents(ctx, b)
}

// A store that is down is not a message the store refuses: nothing is quarantined, nothing is
// acknowledged, the listener reconnects and the batch is recorded when the store is back.
func TestStoreDownQuarantinesNothing(t *testing.T) {
	conn := rabbit(t)
	cfg := topology(t, conn)
	st := openStore(t)
	fs := &flakyStore{testStore: st}
	fs.fails.Store(3)
	p := newPublisher(t, conn)
	create := sample(t, "compute.instance.create.end.json")
	for _, id := range []string{"a", "b", "c"} {
		p.publish(cfg.Exchanges[0], "notifications.info", envelope(t, create, "down-"+id, "2026-10-03 08:15:42",
			map[string]any{"payload.instance_id": "srv-down-" + id}))
	}
	m := listener.NewMetrics(nil)
	runListener(t, listener.New(cfg, shippedDefs(t), fs, quiet(), m))
	eventually(t, 20*time.Second, "3 events once the store is back", func() bool {
		return count(t, st, `SELECT COUNT(*) FROM events`) == 3
	})
	if n := count(t, st, `SELECT COUNT(*) FROM quarantine`); n != 0 {
		t.Errorf("quarantined %d messages while the store was down, want 0", n)
	}
	if r := value(m.Reconnects); r < 1 {
		t.Errorf("reconnects = %v, want ≥ 1 (the batch is redelivered, not acked)", r)
	}
}
