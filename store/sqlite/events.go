package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
	"github.com/bilean/bilean/store/derive"
)

var _ store.Events = (*Store)(nil)

// EventTx implements store.EventDriver. The balance triggers on usage_records stand aside for
// the transaction; each customer whose records changed is marked once at the end (Done) instead
// of once per record.
func (d driver) EventTx(ctx context.Context, fn func(store.EventTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO balance_burn_pause (one) VALUES (1)`); err != nil {
			return fmt.Errorf("pause balance triggers: %w", err)
		}
		return fn(eventTx{tx})
	})
}

type eventTx struct{ tx *sql.Tx }

func (t eventTx) Quarantine(ctx context.Context, qs []store.QuarantinedMessage, received time.Time, res *store.EventResult) error {
	return quarantineTx(ctx, t.tx, qs, received.Unix(), res)
}

// LockResources does nothing: the one writer at a time makes batches take turns.
func (t eventTx) LockResources(context.Context, []string) error { return nil }

func (t eventTx) LoadEvents(ctx context.Context, ids []string) ([]derive.Event, error) {
	return loadEvents(ctx, t.tx, ids)
}

func (t eventTx) KnownCustomers(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM customers WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		known[id] = true
		return nil
	})
	return known, err
}

func (t eventTx) CreateCustomers(ctx context.Context, tpl billing.Customer, create map[string]bool) ([]string, error) {
	ids := make([]string, 0, len(create))
	for id := range create {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var created []string
	for _, id := range ids {
		c := tpl
		c.ID = id
		if c.Status == "" {
			c.Status = billing.Active
		}
		contacts, _ := json.Marshal(c.Contacts)
		if contacts == nil || string(contacts) == "null" {
			contacts = []byte("[]")
		}
		r, err := t.tx.ExecContext(ctx, `
INSERT INTO customers (id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.Name, c.Currency, c.Timezone, string(contacts), dec(c.TaxRate), boolInt(c.TaxExempt), c.Status, c.Policy)
		if err != nil {
			return nil, fmt.Errorf("create customer %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			created = append(created, id)
		}
	}
	return created, nil
}

func (t eventTx) InsertEvents(ctx context.Context, evs []notification.Event, received time.Time) ([]derive.Event, error) {
	return insertEvents(ctx, t.tx, evs, received.Unix())
}

func (t eventTx) AdoptOrphans(ctx context.Context, all []derive.Event) error {
	return adoptOrphans(ctx, t.tx, all)
}

func (t eventTx) CloseCustomers(ctx context.Context, ids []string) ([]string, error) {
	var closed []string
	for _, id := range ids {
		r, err := t.tx.ExecContext(ctx, `UPDATE customers SET status = 'closed' WHERE id = ? AND status <> 'closed'`, id)
		if err != nil {
			return nil, fmt.Errorf("close customer %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			closed = append(closed, id)
		}
	}
	return closed, nil
}

func (t eventTx) ListenerRecords(ctx context.Context, pairs [][2]string) ([]store.ListenerRecord, error) {
	pj, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	var out []store.ListenerRecord
	rows, err := t.tx.QueryContext(ctx, `
SELECT res.customer_id, res.resource_id, r.id, r.start_at, r.end_at, r.attributes, r.settled
FROM json_each(?) AS j
CROSS JOIN resources AS res
CROSS JOIN usage_records AS r
WHERE res.customer_id = j.value ->> 0 AND res.resource_id = j.value ->> 1
  AND r.resource_key = res.key AND r.source = ?`, string(pj), store.ListenerSource)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var e store.ListenerRecord
		var end sql.NullInt64
		if err := rows.Scan(&e.CustomerID, &e.ResourceID, &e.ID, &e.Start, &end, &e.Attrs, &e.Settled); err != nil {
			return err
		}
		e.End = end.Int64
		out = append(out, e)
		return nil
	})
	return out, err
}

func (t eventTx) DeleteRecords(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM usage_records WHERE id = ? AND settled = 0`, id); err != nil {
			return fmt.Errorf("remove superseded record %d: %w", id, err)
		}
	}
	return nil
}

func (t eventTx) WriteRecords(ctx context.Context, rs []billing.Record) error {
	return writeListenerRecords(ctx, t.tx, rs)
}

// Done marks the balances of the changed customers stale and lets the triggers work again.
func (t eventTx) Done(ctx context.Context, customers []string) error {
	if err := bumpBurnMarks(ctx, t.tx, customers); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `DELETE FROM balance_burn_pause`)
	return err
}

// bumpBurnMarks does for a batch what the balance triggers do per record: it counts one change
// for each customer, so their stored burn states become stale.
func bumpBurnMarks(ctx context.Context, tx *sql.Tx, customers []string) error {
	if len(customers) == 0 {
		return nil
	}
	ids, err := json.Marshal(customers)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO balance_burn (customer_id, changes) SELECT value, 1 FROM json_each(?1) WHERE true
ON CONFLICT (customer_id) DO UPDATE SET changes = changes + 1`, string(ids))
	if err != nil {
		return fmt.Errorf("mark balances stale: %w", err)
	}
	return nil
}

// insertEvents stores evs and returns those that were new (message id not stored before and not
// repeated earlier in evs), as stored.
func insertEvents(ctx context.Context, tx *sql.Tx, evs []notification.Event, received int64) ([]derive.Event, error) {
	const chunk = 100
	out := make([]derive.Event, 0, len(evs))
	byID := make(map[string]int, len(evs))
	args := make([]any, 0, 9*chunk)
	var full *sql.Stmt // the statement of a full chunk, prepared once per call
	for i := 0; i < len(evs); i += chunk {
		part := evs[i:min(i+chunk, len(evs))]
		st := full
		if len(part) < chunk || full == nil {
			var q strings.Builder
			q.WriteString(`INSERT INTO events (message_id, customer_id, resource_id, resource_type, event_type, action, at, attributes, received_at) VALUES `)
			for j := range part {
				if j > 0 {
					q.WriteByte(',')
				}
				q.WriteString(`(?,?,?,?,?,?,?,?,?)`)
			}
			q.WriteString(` ON CONFLICT (message_id) DO NOTHING RETURNING message_id, seq`)
			var err error
			if st, err = tx.PrepareContext(ctx, q.String()); err != nil {
				return nil, fmt.Errorf("store events: %w", err)
			}
			defer st.Close()
			if len(part) == chunk {
				full = st
			}
		}
		args = args[:0]
		for j, e := range part {
			attrs, err := codec.AttrsJSON(e.Attributes)
			if err != nil {
				return nil, err
			}
			byID[e.MessageID] = i + j
			args = append(args, e.MessageID, e.ProjectID, e.ResourceID, e.ResourceType, e.EventType,
				string(e.Action), e.Time.Unix(), attrs, received)
		}
		rows, err := st.QueryContext(ctx, args...)
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				return err
			}
			e := evs[byID[id]]
			out = append(out, derive.Event{Seq: seq, Customer: e.ProjectID, Resource: e.ResourceID, Type: e.ResourceType,
				Action: e.Action, At: e.Time.Unix(), Attrs: e.Attributes})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store events: %w", err)
		}
	}
	return out, nil
}

// loadEvents reads every stored event of these resource ids.
func loadEvents(ctx context.Context, tx *sql.Tx, resIDs []string) ([]derive.Event, error) {
	var all []derive.Event
	attrCache := map[string]map[string]string{}
	rows, err := tx.QueryContext(ctx, `
SELECT e.seq, e.customer_id, e.resource_id, e.resource_type, e.action, e.at, e.attributes
FROM json_each(?) AS j CROSS JOIN events AS e WHERE e.resource_id = j.value`, idsJSON(resIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var r derive.Event
		var action, attrs string
		if err := rows.Scan(&r.Seq, &r.Customer, &r.Resource, &r.Type, &action, &r.At, &attrs); err != nil {
			return err
		}
		r.Action = notification.Action(action)
		a, ok := attrCache[attrs]
		if !ok {
			var err error
			if a, err = codec.ParseAttrs(attrs); err != nil {
				return fmt.Errorf("event %d: %w", r.Seq, err)
			}
			attrCache[attrs] = a
		}
		r.Attrs = a
		all = append(all, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return all, nil
}

// adoptOrphans gives the closes stored without a project the project of their resource once
// it is known, in all and in the table.
func adoptOrphans(ctx context.Context, tx *sql.Tx, all []derive.Event) error {
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
	for i, r := range all {
		if r.Customer == "" && owner[r.Resource] != "" {
			all[i].Customer = owner[r.Resource]
			if _, err := tx.ExecContext(ctx, `UPDATE events SET customer_id = ? WHERE seq = ?`, all[i].Customer, r.Seq); err != nil {
				return fmt.Errorf("adopt event %d: %w", r.Seq, err)
			}
		}
	}
	return nil
}

// writeListenerRecords writes derived records with the semantics of addRecordsTx (same upsert,
// same handling of a resource whose type changed), for customers the caller has checked. It
// finds or creates every resource with one statement per 200, since most are new.
func writeListenerRecords(ctx context.Context, tx *sql.Tx, rs []billing.Record) error {
	type want struct {
		name resourceName
		typ  string
	}
	var order []want
	index := make(map[resourceName]int, len(rs))
	for _, r := range rs {
		n := resourceName{r.CustomerID, r.ResourceID}
		i, ok := index[n]
		if !ok {
			i = len(order)
			index[n] = i
			order = append(order, want{name: n})
		}
		if r.ResourceType != "" {
			order[i].typ = r.ResourceType
		}
	}
	// The no-op update on conflict makes RETURNING give existing resources too, with their
	// stored type.
	keys := make(map[resourceName]int64, len(order))
	const chunk = 200
	var full *sql.Stmt
	for i := 0; i < len(order); i += chunk {
		part := order[i:min(i+chunk, len(order))]
		q := resourcesUpsertSQL(len(part))
		st := full
		if len(part) < chunk || full == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return err
			}
			defer st.Close()
			if len(part) == chunk {
				full = st
			}
		}
		args := make([]any, 0, 3*len(part))
		for _, w := range part {
			args = append(args, w.name.customer, w.name.id, w.typ)
		}
		var retyped []resourceRow
		rows, err := st.QueryContext(ctx, args...)
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var n resourceName
			var row resourceRow
			if err := rows.Scan(&n.customer, &n.id, &row.key, &row.typ); err != nil {
				return err
			}
			keys[n] = row.key
			if w := order[index[n]]; w.typ != "" && w.typ != row.typ {
				retyped = append(retyped, resourceRow{key: row.key, typ: w.typ})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("resources: %w", err)
		}
		// A type change (rare): as addRecordsTx, the records change version and unsettle.
		for _, r := range retyped {
			if _, err := tx.ExecContext(ctx, `UPDATE resources SET type = ? WHERE key = ?`, r.typ, r.key); err != nil {
				return fmt.Errorf("resource %d: %w", r.key, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE usage_records SET version = version + 1, settled = 0 WHERE resource_key = ?`, r.key); err != nil {
				return fmt.Errorf("resource %d: %w", r.key, err)
			}
		}
	}
	recKeys := make([]int64, len(rs))
	for i, r := range rs {
		key, ok := keys[resourceName{r.CustomerID, r.ResourceID}]
		if !ok {
			return fmt.Errorf("resource %s of customer %s was not created", r.ResourceID, r.CustomerID)
		}
		recKeys[i] = key
	}
	return upsertRecordsTx(ctx, tx, rs, recKeys, 0)
}

// resourcesUpsertSQL finds or creates n resources (customer, resource id, type).
func resourcesUpsertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO resources (customer_id, resource_id, type) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?)`)
	}
	b.WriteString(` ON CONFLICT (customer_id, resource_id) DO UPDATE SET type = resources.type
RETURNING customer_id, resource_id, key, type`)
	return b.String()
}

// quarantineTx stores quarantined messages, once per body.
func quarantineTx(ctx context.Context, tx *sql.Tx, qs []store.QuarantinedMessage, received int64, res *store.EventResult) error {
	if len(qs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `
INSERT INTO quarantine (digest, message_id, event_type, reason, detail, exchange, routing_key, body, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	defer st.Close()
	for _, q := range qs {
		q = store.CleanQuarantine(q) // storable text, whatever the message held
		sum := sha256.Sum256(q.Body)
		at := received
		if !q.ReceivedAt.IsZero() {
			at = q.ReceivedAt.Unix()
		}
		body := q.Body
		if body == nil {
			body = []byte{}
		}
		r, err := st.ExecContext(ctx, hex.EncodeToString(sum[:]), q.MessageID, q.EventType, q.Reason, q.Detail,
			q.Exchange, q.RoutingKey, body, at)
		if err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			res.Quarantined++
		}
	}
	return nil
}

// Quarantined implements store.Events.
func (s *Store) Quarantined(ctx context.Context, limit int) ([]store.QuarantinedMessage, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []store.QuarantinedMessage
	rows, err := s.db.QueryContext(ctx, `
SELECT id, message_id, event_type, reason, detail, exchange, routing_key, body, received_at
FROM quarantine ORDER BY id LIMIT ?`, limit)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var q store.QuarantinedMessage
		var at int64
		if err := rows.Scan(&q.ID, &q.MessageID, &q.EventType, &q.Reason, &q.Detail, &q.Exchange, &q.RoutingKey, &q.Body, &at); err != nil {
			return err
		}
		q.ReceivedAt = fromSec(at)
		out = append(out, q)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quarantined messages: %w", err)
	}
	return out, nil
}

// ResourceEvents implements store.Events.
func (s *Store) ResourceEvents(ctx context.Context, resourceID string) ([]notification.Event, error) {
	var rows []derive.Event
	var meta []struct{ id, typ string }
	q, err := s.db.QueryContext(ctx, `
SELECT seq, customer_id, resource_id, resource_type, action, at, attributes, message_id, event_type
FROM events WHERE resource_id = ?`, resourceID)
	err = eachRow(q, err, func(q *sql.Rows) error {
		var r derive.Event
		var action, attrs, mid, et string
		if err := q.Scan(&r.Seq, &r.Customer, &r.Resource, &r.Type, &action, &r.At, &attrs, &mid, &et); err != nil {
			return err
		}
		r.Action = notification.Action(action)
		a, err := codec.ParseAttrs(attrs)
		if err != nil {
			return err
		}
		r.Attrs = a
		rows = append(rows, r)
		meta = append(meta, struct{ id, typ string }{mid, et})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events of resource %s: %w", resourceID, err)
	}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return derive.Less(rows[idx[a]], rows[idx[b]]) })
	out := make([]notification.Event, len(rows))
	for i, k := range idx {
		r := rows[k]
		out[i] = notification.Event{
			MessageID: meta[k].id, EventType: meta[k].typ, ResourceType: r.Type, ResourceID: r.Resource,
			ProjectID: r.Customer, Action: r.Action, Time: time.Unix(r.At, 0).UTC(), Attributes: r.Attrs,
		}
	}
	return out, nil
}
