package listener_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/servicetest"
	"github.com/bilean/bilean/store"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// spans returns the records of a resource as "start end attr=value…" (RFC 3339, open end "-").
func spans(t *testing.T, st store.Store, customer, resource string, attrs ...string) []string {
	t.Helper()
	h, err := st.ResourceHistory(context.Background(), customer, []string{resource})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range h {
		for _, r := range u.Records {
			end := "-"
			if !r.End.IsZero() {
				end = r.End.Format(time.RFC3339)
			}
			s := r.Start.Format(time.RFC3339) + " " + end
			for _, a := range attrs {
				s += " " + a + "=" + r.Attributes[a]
			}
			out = append(out, s)
		}
	}
	return out
}

// The real samples, published in their oslo envelopes on the exchanges OpenStack uses, become
// records that start and end at the second the payloads say.
func TestSamplesRecordedToTheSecond(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		st := b.st
		var mu sync.Mutex
		var committed []string
		l := listener.New(cfg, shippedDefs(t), st, quiet(), nil)
		l.OnCommitted = func(_ context.Context, ids []string) {
			mu.Lock()
			committed = append(committed, ids...)
			mu.Unlock()
		}
		runListener(t, l)
		p := newPublisher(t, conn)
		nova, cinder, neutron, glance := cfg.Exchanges[0], cfg.Exchanges[1], cfg.Exchanges[2], cfg.Exchanges[3]
		const legacy, versioned = "notifications.info", "versioned_notifications.info"

		// Legacy: a server created (launched 08:15:41) and deleted (17:02:09), a volume, a floating
		// IP, an image. The envelope timestamps are a second after; the payload times win.
		p.publish(nova, legacy, sample(t, "legacy-compute.instance.create.end.json")) // the wire sample as is
		p.publish(nova, legacy, envelope(t, sample(t, "compute.instance.delete.end.json"), "m-del", "2026-10-21 17:02:10.388211", nil))
		p.publish(cinder, legacy, envelope(t, sample(t, "volume.create.end.json"), "m-vol", "2026-10-05 12:00:04.000001", nil))
		p.publish(neutron, legacy, envelope(t, sample(t, "floatingip.create.end.json"), "m-fip", "2026-10-07 16:20:12.5", nil))
		p.publish(glance, legacy, envelope(t, sample(t, "image.upload.json"), "m-img", "2026-10-09 13:04:41.0", nil))
		// Neutron's delete carries only the id: the span is found by it.
		p.publish(neutron, legacy, envelope(t, []byte(`{"event_type": "floatingip.delete.end", "priority": "INFO",
			"payload": {"floatingip_id": "7e3a9c1b-5d2f-4e8a-b1c3-9f6d2a4e8c07"}}`), "m-fip-del", "2026-10-08 09:30:00.75", nil))

		// Versioned: created 13:42:11, powered off at 14:00:00, on at 15:00:00, resized to
		// other_flavor at 16:00:00 (all envelope times), deleted at 18:00:00 (deleted_at).
		p.publish(nova, versioned, envelope(t, sample(t, "instance-create-end.json"), "v-1", "2012-10-29 13:42:12.1", nil))
		p.publish(nova, versioned, envelope(t, sample(t, "instance-power_off-end.json"), "v-2", "2012-10-29 14:00:00.9", nil))
		p.publish(nova, versioned, envelope(t, sample(t, "instance-power_on-end.json"), "v-3", "2012-10-29 15:00:00.0", nil))
		p.publish(nova, versioned, envelope(t, sample(t, "instance-resize_finish-end.json"), "v-4", "2012-10-29 16:00:00.2", nil))
		p.publish(nova, versioned, envelope(t, sample(t, "instance-delete-end.json"), "v-5", "2012-10-29 18:00:01.0",
			map[string]any{"payload.nova.deleted_at": "2012-10-29T18:00:00Z"}))

		eventually(t, 10*time.Second, "11 events", func() bool { return b.count(t, `SELECT COUNT(*) FROM events`) == 11 })

		const proj, novaProj = "8f4c3b2a1d0e4f5a9b8c7d6e5f4a3b2c", "6f70656e737461636b20342065766572"
		tests := []struct {
			customer, resource string
			attrs              []string
			want               []string
		}{
			{proj, "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", []string{"flavor", "state"},
				[]string{"2026-10-03T08:15:41Z 2026-10-21T17:02:09Z flavor=m1.small state=active"}},
			{proj, "9a1f6e3d-2c4b-4a7e-8f1d-3b5c7e9a2d04", []string{"size"}, []string{"2026-10-05T12:00:03Z - size=100"}},
			{proj, "7e3a9c1b-5d2f-4e8a-b1c3-9f6d2a4e8c07", nil, []string{"2026-10-07T16:20:11Z 2026-10-08T09:30:00Z"}},
			{proj, "4b9d2f6a-8c1e-4a3b-9e5d-2f7c1a8b6e09", []string{"size"}, []string{"2026-10-09T13:04:40Z - size=2361393152"}},
			{novaProj, "178b0921-8f85-4257-88b6-2e743b5a975c", []string{"flavor", "state"}, []string{
				"2012-10-29T13:42:11Z 2012-10-29T14:00:00Z flavor=test_flavor state=active",
				"2012-10-29T14:00:00Z 2012-10-29T15:00:00Z flavor=test_flavor state=stopped",
				"2012-10-29T15:00:00Z 2012-10-29T16:00:00Z flavor=test_flavor state=active",
				"2012-10-29T16:00:00Z 2012-10-29T18:00:00Z flavor=other_flavor state=active",
			}},
		}
		for _, tc := range tests {
			eventually(t, 5*time.Second, "records of "+tc.resource, func() bool {
				return reflect.DeepEqual(spans(t, st, tc.customer, tc.resource, tc.attrs...), tc.want)
			})
		}
		// Both projects became customers (unknown_projects: create), and the hook heard of them.
		cs, err := st.GetCustomers(context.Background(), []string{proj, novaProj})
		if err != nil || len(cs) != 2 || cs[0].Currency != "EUR" {
			t.Errorf("customers = %+v, %v; want both created in EUR", cs, err)
		}
		eventually(t, 5*time.Second, "OnCommitted", func() bool {
			mu.Lock()
			defer mu.Unlock()
			seen := map[string]bool{}
			for _, c := range committed {
				seen[c] = true
			}
			return seen[proj] && seen[novaProj]
		})
	})
}

// Duplicates, out-of-order pairs, garbage, unknown event types and payloads without their
// project each end where they should, and the listener keeps consuming.
func TestEveryMessageEndsSomewhere(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		st := b.st
		m := listener.NewMetrics(nil)
		l := listener.New(cfg, shippedDefs(t), st, quiet(), m)
		runListener(t, l)
		p := newPublisher(t, conn)
		nova, cinder := cfg.Exchanges[0], cfg.Exchanges[1]
		const key = "notifications.info"
		const proj = "8f4c3b2a1d0e4f5a9b8c7d6e5f4a3b2c"

		create := sample(t, "legacy-compute.instance.create.end.json")
		p.publish(nova, key, create)
		p.publish(nova, key, create) // a duplicate: same message_id
		// An out-of-order pair: the volume's delete (at 20:00:00) before its create (12:00:03).
		p.publish(cinder, key, envelope(t, []byte(`{"event_type": "volume.delete.end", "payload": {"volume_id": "9a1f6e3d-2c4b-4a7e-8f1d-3b5c7e9a2d04", "tenant_id": "`+proj+`", "size": 100}}`),
			"m-vdel", "2026-10-05 20:00:00.0", nil))
		p.publish(cinder, key, envelope(t, sample(t, "volume.create.end.json"), "m-vnew", "2026-10-05 12:00:04.0", nil))
		garbage := []byte("\x00\x9f\xfe{{ not a notification")
		p.publish(nova, key, garbage)
		p.publish(nova, key, envelope(t, []byte(`{"event_type": "magnum.cluster.create.end", "payload": {"uuid": "c1"}}`), "m-unknown", "2026-10-05 12:00:00", nil))
		p.publish(cinder, key, envelope(t, []byte(`{"event_type": "volume.create.end", "payload": {"volume_id": "v-orphan", "size": 1}}`), "m-noproj", "2026-10-05 12:00:00", nil))
		p.publish(nova, key, envelope(t, []byte(`{"event_type": "compute.instance.create_ip.end", "payload": {"instance_id": "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", "tenant_id": "`+proj+`"}}`), "m-nic", "2026-10-05 12:00:00", nil))
		// After all that, a valid message is still recorded.
		p.publish(nova, key, envelope(t, sample(t, "compute.instance.delete.end.json"), "m-last", "2026-10-21 17:02:10", nil))

		eventually(t, 10*time.Second, "the last message", func() bool {
			return b.count(t, `SELECT COUNT(*) FROM events WHERE message_id = 'm-last'`) == 1
		})
		eventually(t, 5*time.Second, "all 9 received and handled", func() bool {
			return value(m.Received) == 9 && value(m.Recorded)+value(m.Duplicates) == 5
		})
		if got := b.count(t, `SELECT COUNT(*) FROM events`); got != 4 {
			t.Errorf("events = %d, want 4 (create, volume delete and create, last)", got)
		}
		if d := value(m.Duplicates); d != 1 {
			t.Errorf("duplicates = %v, want 1", d)
		}
		if got := value(m.Ignored); got != 1 {
			t.Errorf("ignored = %v, want 1 (create_ip.end)", got)
		}
		qs, err := st.Quarantined(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, q := range qs {
			reasons = append(reasons, q.Reason)
			if q.Reason == notification.ReasonUnparseable && string(q.Body) != string(garbage) {
				t.Errorf("garbage quarantined as %q, want the raw bytes", q.Body)
			}
			if q.Exchange == "" || q.RoutingKey != key {
				t.Errorf("quarantined %s without its exchange and routing key: %+v", q.Reason, q)
			}
		}
		sort.Strings(reasons)
		if want := []string{"missing_field", "unknown_event", "unparseable"}; !reflect.DeepEqual(reasons, want) {
			t.Errorf("quarantine reasons = %v, want %v", reasons, want)
		}
		for _, r := range []string{"missing_field", "unknown_event", "unparseable"} {
			if got := value(m.Quarantined.WithLabelValues(r)); got != 1 {
				t.Errorf("quarantined{%s} = %v, want 1", r, got)
			}
		}
		if got := spans(t, st, proj, "9a1f6e3d-2c4b-4a7e-8f1d-3b5c7e9a2d04"); !reflect.DeepEqual(got, []string{"2026-10-05T12:00:03Z 2026-10-05T20:00:00Z"}) {
			t.Errorf("volume delivered delete-first: %v, want [12:00:03, 20:00:00)", got)
		}
		if got := spans(t, st, proj, "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", "flavor"); !reflect.DeepEqual(got, []string{"2026-10-03T08:15:41Z 2026-10-21T17:02:09Z flavor=m1.small"}) {
			t.Errorf("server (NIC attach ignored, duplicate create): %v", got)
		}
		// Nothing is left in the queue: every message was acknowledged.
		stop := runListener(t, listener.New(cfg, shippedDefs(t), st, quiet(), nil))
		stop()
		ch, _ := conn.Channel()
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(cfg.Queue, true, false, false, false, nil)
		if err != nil || q.Messages != 0 {
			t.Errorf("queue %s after the run: %d messages, %v; want 0", cfg.Queue, q.Messages, err)
		}
	})
}

// With unknown_projects: quarantine, events of projects that are not customers are quarantined
// and acknowledged; those of customers are recorded.
func TestUnknownProjectQuarantined(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		conn := rabbit(t)
		cfg := topology(t, conn)
		cfg.NewCustomer = nil
		st := b.st
		m := listener.NewMetrics(nil)
		runListener(t, listener.New(cfg, shippedDefs(t), st, quiet(), m))
		p := newPublisher(t, conn)
		p.publish(cfg.Exchanges[0], "notifications.info", sample(t, "legacy-compute.instance.create.end.json"))
		eventually(t, 10*time.Second, "quarantined unknown project", func() bool {
			return value(m.Quarantined.WithLabelValues(notification.ReasonUnknownProject)) == 1
		})
		qs, _ := st.Quarantined(context.Background(), 0)
		if len(qs) != 1 || qs[0].MessageID != "6a1d3c5e-7f9b-4d2e-8a4c-1e3b5d7f9a0c" || qs[0].EventType != "compute.instance.create.end" {
			t.Errorf("quarantine = %+v", qs)
		}
		if n := b.count(t, `SELECT COUNT(*) FROM customers`); n != 0 {
			t.Errorf("%d customers created in quarantine mode", n)
		}
	})
}

// A broker that drops the connection (as on restart) is reconnected to, and consumption resumes.
func TestReconnectsAfterConnectionLoss(t *testing.T) {
	conn := rabbit(t)
	cfg := topology(t, conn)
	st := openStore(t)
	m := listener.NewMetrics(nil)
	runListener(t, listener.New(cfg, shippedDefs(t), st, quiet(), m))
	p := newPublisher(t, conn)
	create := sample(t, "compute.instance.create.end.json")
	p.publish(cfg.Exchanges[0], "notifications.info", envelope(t, create, "before", "2026-10-03 08:15:42", nil))
	eventually(t, 10*time.Second, "first event", func() bool { return count(t, st, `SELECT COUNT(*) FROM events`) == 1 })
	// Force-close the listener's connection the way a broker restart does.
	out, err := runCtl("close_all_connections", "test restart")
	if err != nil {
		err = fmt.Errorf("%w: %s", err, out)
	}
	servicetest.Require(t, err, "rabbitmqctl (to simulate a broker restart)", "run .ci/rabbitmq.sh")
	conn2 := rabbit(t) // ours was closed too
	p = newPublisher(t, conn2)
	p.publish(cfg.Exchanges[0], "notifications.info", envelope(t, create, "after", "2026-10-03 08:15:43", map[string]any{"payload.instance_id": "srv-2"}))
	eventually(t, 15*time.Second, "event after the reconnect", func() bool { return count(t, st, `SELECT COUNT(*) FROM events`) == 2 })
	if r := value(m.Reconnects); r < 1 {
		t.Errorf("reconnects = %v, want ≥ 1", r)
	}
}
