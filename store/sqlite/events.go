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

// RecordEvents implements store.Events in one write transaction.
func (s *Store) RecordEvents(ctx context.Context, b store.EventBatch) (store.EventResult, error) {
	var res store.EventResult
	// Both backends refuse the same events, before writing anything (store.CheckEvent).
	if err := store.CheckEvents(b.Events); err != nil {
		return res, fmt.Errorf("record events: %w", err)
	}
	received := b.ReceivedAt
	if received.IsZero() {
		received = s.now()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res = store.EventResult{}
		// The balance triggers on usage_records stand aside for this transaction; each customer
		// whose records changed is marked once at the end instead of once per record.
		if _, err := tx.ExecContext(ctx, `INSERT INTO balance_burn_pause (one) VALUES (1)`); err != nil {
			return fmt.Errorf("pause balance triggers: %w", err)
		}
		if err := recordEventsTx(ctx, tx, b, received.Unix(), &res); err != nil {
			return err
		}
		if err := bumpBurnMarks(ctx, tx, res.Customers); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM balance_burn_pause`)
		return err
	})
	if err != nil {
		return store.EventResult{}, fmt.Errorf("record events: %w", err)
	}
	return res, nil
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

func recordEventsTx(ctx context.Context, tx *sql.Tx, b store.EventBatch, received int64, res *store.EventResult) error {
	if err := quarantineTx(ctx, tx, b.Quarantine, received, res); err != nil {
		return err
	}
	if len(b.Events) == 0 {
		return nil
	}
	evs := make([]notification.Event, len(b.Events))
	copy(evs, b.Events)

	// The events already stored for these resources: what the new ones are ordered with, and
	// where a close without a project finds its resource's project. A resource seen for the
	// first time (most of them) reads nothing here and nothing in applyEvents.
	resIDs := make([]string, 0, len(evs))
	seenRes := make(map[string]bool, len(evs))
	for _, e := range evs {
		if !seenRes[e.ResourceID] {
			seenRes[e.ResourceID] = true
			resIDs = append(resIDs, e.ResourceID)
		}
	}
	prior, err := loadEvents(ctx, tx, resIDs)
	if err != nil {
		return err
	}

	// Closes without a project: the project of the resource's other events, in this batch or
	// stored. Still unknown: kept with customer '' until the resource appears.
	batchOwner := map[string]string{}
	for _, r := range prior {
		if r.Customer != "" && r.Customer > batchOwner[r.Resource] {
			batchOwner[r.Resource] = r.Customer
		}
	}
	for _, e := range evs {
		if e.ProjectID != "" && e.ResourceType != notification.CustomerType {
			batchOwner[e.ResourceID] = e.ProjectID
		}
	}
	for i := range evs {
		if evs[i].ProjectID == "" {
			evs[i].ProjectID = batchOwner[evs[i].ResourceID]
		}
	}

	// Customers: create unknown ones from the template, or refuse their events.
	var custIDs []string
	for _, e := range evs {
		if e.ProjectID != "" {
			custIDs = append(custIDs, e.ProjectID)
		}
	}
	known := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM customers WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(custIDs))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		known[id] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("read customers: %w", err)
	}
	// A customer-type close (project deleted) never creates the customer; anything else does.
	create := map[string]bool{}
	keep := evs[:0:0]
	for i, e := range evs {
		switch {
		case e.ProjectID == "" || known[e.ProjectID]:
		case b.NewCustomer == nil:
			if e.ResourceType != notification.CustomerType {
				res.Refused = append(res.Refused, i)
				continue
			}
		case e.ResourceType == notification.CustomerType && e.Action == notification.Close:
		default:
			create[e.ProjectID] = true
		}
		keep = append(keep, e)
	}
	evs = keep
	if len(create) > 0 {
		ids := make([]string, 0, len(create))
		for id := range create {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			c := *b.NewCustomer
			c.ID = id
			if c.Status == "" {
				c.Status = billing.Active
			}
			contacts, _ := json.Marshal(c.Contacts)
			if contacts == nil || string(contacts) == "null" {
				contacts = []byte("[]")
			}
			r, err := tx.ExecContext(ctx, `
INSERT INTO customers (id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				c.ID, c.Name, c.Currency, c.Timezone, string(contacts), dec(c.TaxRate), boolInt(c.TaxExempt), c.Status, c.Policy)
			if err != nil {
				return fmt.Errorf("create customer %s: %w", id, err)
			}
			if n, _ := r.RowsAffected(); n > 0 {
				res.CreatedCustomers = append(res.CreatedCustomers, id)
				known[id] = true
			}
		}
	}

	// Store the events; a message id already stored is a duplicate.
	inserted, err := insertEvents(ctx, tx, evs, received)
	if err != nil {
		return err
	}
	res.Recorded = len(inserted)
	res.Duplicates = len(evs) - len(inserted)
	if len(inserted) == 0 {
		return nil
	}

	// Re-derive every resource a new event touches, from all of its events: those stored
	// before this batch and the new ones.
	affected := make(map[string]bool, len(inserted))
	all := make([]derive.Event, 0, len(inserted))
	for _, e := range inserted {
		affected[e.Resource] = true
		all = append(all, e)
	}
	hasPrior := map[string]bool{}
	for _, r := range prior {
		if affected[r.Resource] {
			all = append(all, r)
			hasPrior[r.Resource] = true
		}
	}
	if err := adoptOrphans(ctx, tx, all); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return derive.Less(all[i], all[j]) })
	return applyEvents(ctx, tx, all, hasPrior, res)
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

// applyEvents derives the records of the resources in all (sorted by eventLess) and writes what
// changed; for customer-type events it creates or closes the customer. hasPrior names the
// resources that had events before this batch: only they can have listener records to compare
// with (the listener writes records only from stored events).
func applyEvents(ctx context.Context, tx *sql.Tx, all []derive.Event, hasPrior map[string]bool, res *store.EventResult) error {
	type group struct {
		customer, resource, typ string
		evs                     []derive.Event
	}
	var groups []group
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].Customer == all[i].Customer && all[j].Resource == all[i].Resource {
			j++
		}
		if all[i].Customer != "" { // an orphan close alone derives nothing yet
			groups = append(groups, group{all[i].Customer, all[i].Resource, all[j-1].Type, all[i:j]})
		} else {
			res.Pending += j - i
		}
		i = j
	}
	changed := map[string]bool{}
	for _, c := range res.CreatedCustomers {
		changed[c] = true
	}

	// Customers: the last event (by time) of a project decides; deleted closes the customer.
	var resources []group
	for _, g := range groups {
		if g.typ != notification.CustomerType {
			resources = append(resources, g)
			continue
		}
		if g.evs[len(g.evs)-1].Action == notification.Close {
			r, err := tx.ExecContext(ctx, `UPDATE customers SET status = 'closed' WHERE id = ? AND status <> 'closed'`, g.resource)
			if err != nil {
				return fmt.Errorf("close customer %s: %w", g.resource, err)
			}
			if n, _ := r.RowsAffected(); n > 0 {
				changed[g.resource] = true
			}
		}
	}
	if len(resources) > 0 {
		// The listener's records of these resources as stored.
		type existing struct {
			id, start int64
			end       sql.NullInt64
			attrs     string
			settled   bool
		}
		stored := map[resourceName][]existing{}
		var pairs [][2]string
		for _, g := range resources {
			if hasPrior[g.resource] {
				pairs = append(pairs, [2]string{g.customer, g.resource})
			}
		}
		pj, err := json.Marshal(pairs)
		if err != nil {
			return err
		}
		var rows *sql.Rows
		if len(pairs) > 0 {
			rows, err = tx.QueryContext(ctx, `
SELECT res.customer_id, res.resource_id, r.id, r.start_at, r.end_at, r.attributes, r.settled
FROM json_each(?) AS j
CROSS JOIN resources AS res
CROSS JOIN usage_records AS r
WHERE res.customer_id = j.value ->> 0 AND res.resource_id = j.value ->> 1
  AND r.resource_key = res.key AND r.source = ?`, string(pj), store.ListenerSource)
		}
		err = eachRowIf(rows, err, func(rows *sql.Rows) error {
			var n resourceName
			var e existing
			if err := rows.Scan(&n.customer, &n.id, &e.id, &e.start, &e.end, &e.attrs, &e.settled); err != nil {
				return err
			}
			stored[n] = append(stored[n], e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read listener records: %w", err)
		}
		var upserts []billing.Record
		var deletes []int64
		for _, g := range resources {
			spans := derive.Spans(g.evs)
			n := resourceName{g.customer, g.resource}
			have := map[int64]existing{}
			for _, e := range stored[n] {
				have[e.start] = e
			}
			want := map[int64]bool{}
			for _, sp := range spans {
				want[sp.Start] = true
				attrs, err := codec.AttrsJSON(sp.Attrs)
				if err != nil {
					return err
				}
				if e, ok := have[sp.Start]; ok && e.attrs == attrs &&
					((sp.End == 0 && !e.end.Valid) || (e.end.Valid && e.end.Int64 == sp.End)) {
					continue
				}
				r := billing.Record{
					ResourceID: g.resource, ResourceType: g.typ, CustomerID: g.customer,
					Start: fromSec(sp.Start), Attributes: sp.Attrs, Source: store.ListenerSource,
				}
				if sp.End != 0 {
					r.End = fromSec(sp.End)
				}
				upserts = append(upserts, r)
				changed[g.customer] = true
			}
			for _, e := range stored[n] {
				if want[e.start] {
					continue
				}
				if e.settled {
					res.Conflicts++
					continue
				}
				deletes = append(deletes, e.id)
				changed[g.customer] = true
			}
		}
		for _, id := range deletes {
			if _, err := tx.ExecContext(ctx, `DELETE FROM usage_records WHERE id = ? AND settled = 0`, id); err != nil {
				return fmt.Errorf("remove superseded record %d: %w", id, err)
			}
		}
		if len(upserts) > 0 {
			if err := writeListenerRecords(ctx, tx, upserts); err != nil {
				return fmt.Errorf("write records: %w", err)
			}
		}
	}
	for c := range changed {
		res.Customers = append(res.Customers, c)
	}
	sort.Strings(res.Customers)
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

// eachRowIf is eachRow for a query that may not have run (rows nil, no error): no rows.
func eachRowIf(rows *sql.Rows, err error, fn func(*sql.Rows) error) error {
	if rows == nil && err == nil {
		return nil
	}
	return eachRow(rows, err, fn)
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
