package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
	"github.com/bilean/bilean/store/derive"
)

var _ store.Events = (*Store)(nil)

// EventTx implements store.EventDriver.
func (d driver) EventTx(ctx context.Context, fn func(store.EventTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(eventTx{tx}) })
}

type eventTx struct{ tx pgx.Tx }

func (t eventTx) Quarantine(ctx context.Context, qs []store.QuarantinedMessage, received time.Time, res *store.EventResult) error {
	return quarantineTx(ctx, t.tx, qs, received, res)
}

// LockResources takes transaction-level advisory locks on the resources, in one order.
func (t eventTx) LockResources(ctx context.Context, ids []string) error {
	_, err := t.tx.Exec(ctx, `
SELECT pg_advisory_xact_lock(h) FROM (
    SELECT DISTINCT hashtextextended('bilean-resource:' || id, 0) AS h FROM unnest($1::text[]) AS id ORDER BY h
) AS l`, ids)
	return err
}

func (t eventTx) LoadEvents(ctx context.Context, ids []string) ([]derive.Event, error) {
	return loadEvents(ctx, t.tx, ids)
}

func (t eventTx) KnownCustomers(ctx context.Context, ids []string) (map[string]bool, error) {
	return knownCustomers(ctx, t.tx, ids)
}

func (t eventTx) CreateCustomers(ctx context.Context, tpl billing.Customer, ids map[string]bool) ([]string, error) {
	return createCustomers(ctx, t.tx, tpl, ids)
}

func (t eventTx) InsertEvents(ctx context.Context, evs []notification.Event, received time.Time) ([]derive.Event, error) {
	return insertEvents(ctx, t.tx, evs, received)
}

func (t eventTx) AdoptOrphans(ctx context.Context, all []derive.Event) error {
	return adoptOrphans(ctx, t.tx, all)
}

func (t eventTx) CloseCustomers(ctx context.Context, ids []string) ([]string, error) {
	rows, _ := t.tx.Query(ctx, `UPDATE customers SET status = 'closed' WHERE id = ANY($1) AND status <> 'closed' RETURNING id`, ids)
	closed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("close customers: %w", err)
	}
	return closed, nil
}

func (t eventTx) ListenerRecords(ctx context.Context, pairs [][2]string) ([]store.ListenerRecord, error) {
	custs, ids := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		custs[i], ids[i] = p[0], p[1]
	}
	rows, _ := t.tx.Query(ctx, `
SELECT r.customer_id, r.resource_id, u.id, u.start_at, u.end_at, u.attributes, u.settled
FROM unnest($1::text[], $2::text[]) AS j(customer_id, resource_id)
JOIN resources AS r ON r.customer_id = j.customer_id AND r.resource_id = j.resource_id
JOIN usage_records AS u ON u.resource_key = r.key AND u.source = $3`, custs, ids, store.ListenerSource)
	var (
		out   []store.ListenerRecord
		e     store.ListenerRecord
		start time.Time
		end   *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&e.CustomerID, &e.ResourceID, &e.ID, &start, &end, &e.Attrs, &e.Settled}, func() error {
		x := e
		x.Start, x.End = start.Unix(), 0
		if end != nil {
			x.End = end.Unix()
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

func (t eventTx) DeleteRecords(ctx context.Context, ids []int64) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM usage_records WHERE id = ANY($1) AND NOT settled`, ids); err != nil {
		return fmt.Errorf("remove superseded records: %w", err)
	}
	return nil
}

// WriteRecords takes the import's path: the same upsert semantics (a changed span is bumped and
// unsettled), new resources and their records by COPY.
func (t eventTx) WriteRecords(ctx context.Context, rs []billing.Record) error {
	w := &recordWriter{tx: t.tx}
	return w.add(ctx, rs, 0)
}

// Done does nothing: the balance triggers of PostgreSQL are statement-level.
func (t eventTx) Done(context.Context, []string) error { return nil }

// createCustomers creates the customers from the template, in one statement, and returns those
// that did not exist, sorted.
func createCustomers(ctx context.Context, tx pgx.Tx, tpl billing.Customer, ids map[string]bool) ([]string, error) {
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	status := tpl.Status
	if status == "" {
		status = billing.Active
	}
	contacts := tpl.Contacts
	if contacts == nil {
		contacts = []string{}
	}
	rows, _ := tx.Query(ctx, `
INSERT INTO customers (id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region)
SELECT id, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10 FROM unnest($1::text[]) AS id ORDER BY id
ON CONFLICT (id) DO NOTHING
RETURNING id`, list, tpl.Name, tpl.Currency, tpl.Timezone, contacts, tpl.TaxRate.String(), tpl.TaxExempt, status, tpl.Policy, tpl.Region)
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("create customers: %w", err)
	}
	sort.Strings(created)
	return created, nil
}

// insertEvents stores evs with one statement and returns those that were new (message id not
// stored before and not repeated earlier in evs), as stored.
func insertEvents(ctx context.Context, tx pgx.Tx, evs []notification.Event, received time.Time) ([]derive.Event, error) {
	n := len(evs)
	ids, custs, res, types, etypes, actions, attrs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	for i, e := range evs {
		a, err := codec.AttrsJSON(e.Attributes)
		if err != nil {
			return nil, fmt.Errorf("events[%d]: attributes: %w", i, err)
		}
		ids[i], custs[i], res[i], types[i], etypes[i], actions[i], attrs[i] = e.MessageID, e.ProjectID, e.ResourceID,
			e.ResourceType, e.EventType, string(e.Action), a
		ats[i] = e.Time.UTC().Truncate(time.Second)
	}
	rows, _ := tx.Query(ctx, `
INSERT INTO events (message_id, customer_id, resource_id, resource_type, event_type, action, at, attributes, received_at)
SELECT mid, cust, rid, typ, etype, action, at, attrs, $9
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[])
    WITH ORDINALITY AS j(mid, cust, rid, typ, etype, action, at, attrs, n)
ORDER BY n
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id, seq`, ids, custs, res, types, etypes, actions, ats, attrs, received)
	byID := make(map[string]int, n)
	for i, e := range evs {
		if _, ok := byID[e.MessageID]; !ok {
			byID[e.MessageID] = i
		}
	}
	out := make([]derive.Event, 0, n)
	var (
		id  string
		seq int64
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		e := evs[byID[id]]
		out = append(out, derive.Event{Seq: seq, Customer: e.ProjectID, Resource: e.ResourceID, Type: e.ResourceType,
			Action: e.Action, At: e.Time.Unix(), Attrs: e.Attributes})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	return out, nil
}

// loadEvents reads every stored event of these resource ids.
func loadEvents(ctx context.Context, tx pgx.Tx, resIDs []string) ([]derive.Event, error) {
	var all []derive.Event
	attrCache := map[string]map[string]string{}
	rows, _ := tx.Query(ctx, `
SELECT seq, customer_id, resource_id, resource_type, action, at, attributes
FROM events WHERE resource_id = ANY($1)`, resIDs)
	var (
		r             derive.Event
		action, attrs string
		at            time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&r.Seq, &r.Customer, &r.Resource, &r.Type, &action, &at, &attrs}, func() error {
		row := r
		row.Action = notification.Action(action)
		row.At = at.Unix()
		a, ok := attrCache[attrs]
		if !ok {
			var err error
			if a, err = codec.ParseAttrs(attrs); err != nil {
				return fmt.Errorf("event %d: %w", row.Seq, err)
			}
			attrCache[attrs] = a
		}
		row.Attrs = a
		all = append(all, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return all, nil
}

// adoptOrphans gives the closes stored without a project the project of their resource once it
// is known, in all and in the table (one statement).
func adoptOrphans(ctx context.Context, tx pgx.Tx, all []derive.Event) error {
	owner := map[string]string{}
	orphans := false
	for _, r := range all {
		if r.Customer != "" && r.Type != notification.CustomerType {
			owner[r.Resource] = r.Customer
		}
		orphans = orphans || r.Customer == ""
	}
	if !orphans {
		return nil
	}
	var seqs []int64
	var custs []string
	for i, r := range all {
		if r.Customer == "" && owner[r.Resource] != "" {
			all[i].Customer = owner[r.Resource]
			seqs, custs = append(seqs, r.Seq), append(custs, all[i].Customer)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `
UPDATE events AS e SET customer_id = j.cust FROM unnest($1::bigint[], $2::text[]) AS j(seq, cust) WHERE e.seq = j.seq`,
		seqs, custs); err != nil {
		return fmt.Errorf("adopt orphan closes: %w", err)
	}
	return nil
}

// quarantineTx stores quarantined messages, once per body, with one statement.
func quarantineTx(ctx context.Context, tx pgx.Tx, qs []store.QuarantinedMessage, received time.Time, res *store.EventResult) error {
	if len(qs) == 0 {
		return nil
	}
	n := len(qs)
	digests, mids, etypes, reasons, details, exchanges, keys := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	bodies := make([][]byte, n)
	ats := make([]time.Time, n)
	for i, q := range qs {
		q = store.CleanQuarantine(q) // storable text, whatever the message held
		sum := sha256.Sum256(q.Body)
		at := received
		if !q.ReceivedAt.IsZero() {
			at = q.ReceivedAt.UTC().Truncate(time.Second)
		}
		body := q.Body
		if body == nil {
			body = []byte{}
		}
		digests[i], mids[i], etypes[i], reasons[i], details[i], exchanges[i], keys[i] = hex.EncodeToString(sum[:]),
			q.MessageID, q.EventType, q.Reason, q.Detail, q.Exchange, q.RoutingKey
		bodies[i], ats[i] = body, at
	}
	tag, err := tx.Exec(ctx, `
INSERT INTO quarantine (digest, message_id, event_type, reason, detail, exchange, routing_key, body, received_at)
SELECT d, mid, etype, reason, detail, exch, rkey, body, at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::timestamptz[])
    WITH ORDINALITY AS j(d, mid, etype, reason, detail, exch, rkey, body, at, n)
ORDER BY n
ON CONFLICT (digest) DO NOTHING`, digests, mids, etypes, reasons, details, exchanges, keys, bodies, ats)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	res.Quarantined += int(tag.RowsAffected())
	return nil
}

// Quarantined implements store.Events.
func (s *Store) Quarantined(ctx context.Context, limit int) ([]store.QuarantinedMessage, error) {
	q := `SELECT id, message_id, event_type, reason, detail, exchange, routing_key, body, received_at
FROM quarantine ORDER BY id`
	var args []any
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.QuarantinedMessage, error) {
		var m store.QuarantinedMessage
		var at time.Time
		err := row.Scan(&m.ID, &m.MessageID, &m.EventType, &m.Reason, &m.Detail, &m.Exchange, &m.RoutingKey, &m.Body, &at)
		m.ReceivedAt = utc(at)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantined messages: %w", err)
	}
	return out, nil
}

// ResourceEvents implements store.Events: the stored events of a resource id, in the order they
// are applied (sorted in Go, byte order, as the derivation sorts them).
func (s *Store) ResourceEvents(ctx context.Context, resourceID string) ([]notification.Event, error) {
	type row struct {
		key derive.Event
		ev  notification.Event
	}
	rows, _ := s.pool.Query(ctx, `
SELECT seq, customer_id, resource_id, resource_type, action, at, attributes, message_id, event_type
FROM events WHERE resource_id = $1`, resourceID)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var action, attrs string
		var at time.Time
		if err := r.Scan(&x.key.Seq, &x.ev.ProjectID, &x.ev.ResourceID, &x.ev.ResourceType, &action, &at, &attrs,
			&x.ev.MessageID, &x.ev.EventType); err != nil {
			return x, err
		}
		x.ev.Action, x.ev.Time = notification.Action(action), utc(at)
		x.key.Customer, x.key.Resource, x.key.Action, x.key.At = x.ev.ProjectID, x.ev.ResourceID, x.ev.Action, at.Unix()
		var err error
		x.ev.Attributes, err = codec.ParseAttrs(attrs)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of resource %s: %w", resourceID, err)
	}
	sort.Slice(got, func(i, j int) bool { return derive.Less(got[i].key, got[j].key) })
	out := make([]notification.Event, len(got))
	for i, x := range got {
		out[i] = x.ev
	}
	return out, nil
}
