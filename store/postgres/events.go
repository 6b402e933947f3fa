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

// RecordEvents implements store.Events in one read-committed transaction whose cost does not
// grow with the number of events in statements: the quarantine, the events, the customers
// created, the adopted orphans, the closed customers and the removed records are one statement
// each over arrays, and the derived records are written by the import's bulk path (COPY).
//
// Listeners may run side by side on one queue: the resources a batch touches are locked
// (transaction-level advisory locks, in one order) before their stored events are read, so two
// batches deriving the same resource take turns and the second sees the first's events.
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
	received = received.UTC().Truncate(time.Second)
	err := s.write(ctx, func(tx pgx.Tx) error {
		res = store.EventResult{}
		return recordEventsTx(ctx, tx, b, received, &res)
	})
	if err != nil {
		return store.EventResult{}, fmt.Errorf("record events: %w", err)
	}
	return res, nil
}

func recordEventsTx(ctx context.Context, tx pgx.Tx, b store.EventBatch, received time.Time, res *store.EventResult) error {
	if err := quarantineTx(ctx, tx, b.Quarantine, received, res); err != nil {
		return err
	}
	if len(b.Events) == 0 {
		return nil
	}
	evs := make([]notification.Event, len(b.Events))
	copy(evs, b.Events)

	resIDs := make([]string, 0, len(evs))
	seenRes := make(map[string]bool, len(evs))
	for _, e := range evs {
		if !seenRes[e.ResourceID] {
			seenRes[e.ResourceID] = true
			resIDs = append(resIDs, e.ResourceID)
		}
	}
	if _, err := tx.Exec(ctx, `
SELECT pg_advisory_xact_lock(h) FROM (
    SELECT DISTINCT hashtextextended('bilean-resource:' || id, 0) AS h FROM unnest($1::text[]) AS id ORDER BY h
) AS l`, resIDs); err != nil {
		return fmt.Errorf("lock resources: %w", err)
	}
	// The events already stored for these resources: what the new ones are ordered with, and
	// where a close without a project finds its resource's project.
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
	known, err := knownCustomers(ctx, tx, custIDs)
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
		created, err := createCustomers(ctx, tx, *b.NewCustomer, create)
		if err != nil {
			return err
		}
		res.CreatedCustomers = created
	}

	// Store the events; a message id already stored (or repeated in the batch) is a duplicate.
	inserted, err := insertEvents(ctx, tx, evs, received)
	if err != nil {
		return err
	}
	res.Recorded = len(inserted)
	res.Duplicates = len(evs) - len(inserted)
	if len(inserted) == 0 {
		return nil
	}

	// Re-derive every resource a new event touches, from all of its events.
	affected := make(map[string]bool, len(inserted))
	all := make([]derive.Event, 0, len(inserted)+len(prior))
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

// applyEvents derives the records of the resources in all (sorted by eventLess) and writes what
// changed; for customer-type events it closes the customer. hasPrior names the resources that
// had events before this batch: only they can have listener records to compare with.
func applyEvents(ctx context.Context, tx pgx.Tx, all []derive.Event, hasPrior map[string]bool, res *store.EventResult) error {
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
	var closing []string
	for _, g := range groups {
		if g.typ != notification.CustomerType {
			resources = append(resources, g)
			continue
		}
		if g.evs[len(g.evs)-1].Action == notification.Close {
			closing = append(closing, g.resource)
		}
	}
	if len(closing) > 0 {
		rows, _ := tx.Query(ctx, `UPDATE customers SET status = 'closed' WHERE id = ANY($1) AND status <> 'closed' RETURNING id`, closing)
		closed, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("close customers: %w", err)
		}
		for _, c := range closed {
			changed[c] = true
		}
	}
	if len(resources) > 0 {
		// The listener's records of these resources as stored: one query.
		type existing struct {
			id, start int64
			end       *time.Time
			attrs     string
			settled   bool
		}
		stored := map[resourceName][]existing{}
		var custs, ids []string
		for _, g := range resources {
			if hasPrior[g.resource] {
				custs, ids = append(custs, g.customer), append(ids, g.resource)
			}
		}
		if len(ids) > 0 {
			rows, _ := tx.Query(ctx, `
SELECT r.customer_id, r.resource_id, u.id, u.start_at, u.end_at, u.attributes, u.settled
FROM unnest($1::text[], $2::text[]) AS j(customer_id, resource_id)
JOIN resources AS r ON r.customer_id = j.customer_id AND r.resource_id = j.resource_id
JOIN usage_records AS u ON u.resource_key = r.key AND u.source = $3`, custs, ids, store.ListenerSource)
			var (
				n     resourceName
				e     existing
				start time.Time
			)
			if _, err := pgx.ForEachRow(rows, []any{&n.customer, &n.id, &e.id, &start, &e.end, &e.attrs, &e.settled}, func() error {
				x := e
				x.start = start.Unix()
				stored[n] = append(stored[n], x)
				return nil
			}); err != nil {
				return fmt.Errorf("read listener records: %w", err)
			}
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
					((sp.End == 0 && e.end == nil) || (e.end != nil && e.end.Unix() == sp.End)) {
					continue
				}
				r := billing.Record{
					ResourceID: g.resource, ResourceType: g.typ, CustomerID: g.customer,
					Start: time.Unix(sp.Start, 0).UTC(), Attributes: sp.Attrs, Source: store.ListenerSource,
				}
				if sp.End != 0 {
					r.End = time.Unix(sp.End, 0).UTC()
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
		if len(deletes) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM usage_records WHERE id = ANY($1) AND NOT settled`, deletes); err != nil {
				return fmt.Errorf("remove superseded records: %w", err)
			}
		}
		if len(upserts) > 0 {
			// The import's path: the same upsert semantics (a changed span is bumped and
			// unsettled), new resources and their records by COPY.
			w := &recordWriter{tx: tx}
			if err := w.add(ctx, upserts, 0); err != nil {
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
