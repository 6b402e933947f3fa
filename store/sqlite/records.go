package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

// resourceRow is a resources row as the write paths need it.
type resourceRow struct {
	key int64
	typ string
}

type resourceName struct{ customer, id string }

// upsertBatch is the number of records one multi-row upsert statement carries.
const upsertBatch = 100

// AddRecords stores trigger records in one transaction, creating resources as needed. A record
// is identified by (customer, resource id, start); storing one that exists replaces its end,
// attributes and source, bumps its version and unsettles it when its end or attributes changed,
// and is a no-op otherwise (a different source alone is not a change). The resource type is kept
// on the resource: a record that brings a new type changes the resource's type and bumps and
// unsettles all of its records. Records for an unknown customer are refused, naming the
// customer and the record's index in rs, and nothing is stored.
func (s *Store) AddRecords(ctx context.Context, rs []billing.Record) error {
	if len(rs) == 0 {
		return nil
	}
	for i, r := range rs {
		if err := store.CheckRecord(r); err != nil {
			return fmt.Errorf("add records: %w", store.Refuse(i, "", fmt.Sprintf("records[%d] (customer %s resource %s)", i, r.CustomerID, r.ResourceID), err.Error()))
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error { return addRecordsTx(ctx, tx, rs, 0) })
	if err != nil {
		return fmt.Errorf("add records: %w", err)
	}
	return nil
}

// AddRecordStream implements store.Importer: every chunk stream hands over is stored in one
// transaction, so a file of a million records is all or nothing with memory bounded by a chunk.
func (s *Store) AddRecordStream(ctx context.Context, stream func(add func([]billing.Record) error) error) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		offset := 0
		return stream(func(rs []billing.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i, r := range rs {
				if err := store.CheckRecord(r); err != nil {
					return store.Refuse(offset+i, "", fmt.Sprintf("records[%d] (customer %s resource %s)", offset+i, r.CustomerID, r.ResourceID), err.Error())
				}
			}
			if err := addRecordsTx(ctx, tx, rs, offset); err != nil {
				return err
			}
			offset += len(rs)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("add records: %w", err)
	}
	return nil
}

// addRecordsTx upserts records inside tx; offset is the index of rs[0] in the caller's whole
// input, for error messages.
func addRecordsTx(ctx context.Context, tx *sql.Tx, rs []billing.Record, offset int) error {
	keys, err := resolveRecordResources(ctx, tx, rs, offset)
	if err != nil {
		return err
	}
	return upsertRecordsTx(ctx, tx, rs, keys, offset)
}

// upsertRecordsTx writes rs, whose resource keys are keys[i], with the upsert of upsertSQL in
// statements of upsertBatch rows. offset is the index of rs[0] in the caller's input.
func upsertRecordsTx(ctx context.Context, tx *sql.Tx, rs []billing.Record, keys []int64, offset int) error {
	full, err := tx.PrepareContext(ctx, upsertSQL(upsertBatch))
	if err != nil {
		return err
	}
	defer full.Close()
	args := make([]any, 0, 6*upsertBatch)
	for i := 0; i < len(rs); i += upsertBatch {
		batch := rs[i:min(i+upsertBatch, len(rs))]
		args = args[:0]
		for j, r := range batch {
			attrs, err := codec.AttrsJSON(r.Attributes)
			if err != nil {
				return fmt.Errorf("records[%d] (customer %s resource %s): attributes: %w", offset+i+j, r.CustomerID, r.ResourceID, err)
			}
			args = append(args, keys[i+j], r.CustomerID, sec(interval.Norm(r.Start)), nullSec(normEnd(r.End)), attrs, r.Source)
		}
		st := full
		if len(batch) < upsertBatch {
			if st, err = tx.PrepareContext(ctx, upsertSQL(len(batch))); err != nil {
				return err
			}
			defer st.Close()
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("records[%d:%d]: %w", offset+i, offset+i+len(batch), err)
		}
	}
	return nil
}

// upsertSQL is the upsert of n records. Rows of one statement are applied in order, so a record
// given twice in a call ends as the later one, as with one statement per record.
func upsertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO usage_records (resource_key, customer_id, start_at, end_at, attributes, source) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?)`)
	}
	b.WriteString(`
ON CONFLICT (resource_key, start_at) DO UPDATE SET
    end_at = excluded.end_at, attributes = excluded.attributes, source = excluded.source,
    version = usage_records.version + 1, settled = 0
WHERE usage_records.end_at IS NOT excluded.end_at OR usage_records.attributes <> excluded.attributes`)
	return b.String()
}

// resolveRecordResources checks the customers of rs and returns the resource key of every record,
// creating missing resources and applying type changes, with a few set-based queries per call.
// offset is the index of rs[0] in the caller's whole input, for error messages.
func resolveRecordResources(ctx context.Context, tx *sql.Tx, rs []billing.Record, offset int) ([]int64, error) {
	// Customers: one query; the first record of an unknown customer is reported.
	var custIDs []string
	seenCust := map[string]bool{}
	names := map[resourceName]string{} // resource → type the call brings (last non-empty)
	var order []resourceName
	for _, r := range rs {
		if !seenCust[r.CustomerID] {
			seenCust[r.CustomerID] = true
			custIDs = append(custIDs, r.CustomerID)
		}
		n := resourceName{r.CustomerID, r.ResourceID}
		typ, ok := names[n]
		if !ok {
			order = append(order, n)
		}
		if r.ResourceType != "" {
			typ = r.ResourceType
		}
		names[n] = typ
	}
	known := make(map[string]bool, len(custIDs))
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
		return nil, err
	}
	for i, r := range rs {
		if !known[r.CustomerID] {
			return nil, store.Refuse(offset+i, "customer_id", fmt.Sprintf("records[%d] (resource %s)", offset+i, r.ResourceID),
				fmt.Sprintf("customer %q is unknown", r.CustomerID))
		}
	}

	// Existing resources: one query.
	pairs := make([][2]string, len(order))
	for i, n := range order {
		pairs[i] = [2]string{n.customer, n.id}
	}
	pj, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	stored := make(map[resourceName]resourceRow, len(order))
	rows, err = tx.QueryContext(ctx, recordResourcesSQL, string(pj))
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var n resourceName
		var row resourceRow
		if err := rows.Scan(&n.customer, &n.id, &row.key, &row.typ); err != nil {
			return err
		}
		stored[n] = row
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Type changes: rare, one resource at a time.
	for _, n := range order {
		row, ok := stored[n]
		if !ok || names[n] == "" || names[n] == row.typ {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE resources SET type = ? WHERE key = ?`, names[n], row.key); err != nil {
			return nil, fmt.Errorf("resource %s of customer %s: %w", n.id, n.customer, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE usage_records SET version = version + 1, settled = 0 WHERE resource_key = ?`, row.key); err != nil {
			return nil, fmt.Errorf("resource %s of customer %s: %w", n.id, n.customer, err)
		}
	}

	// Missing resources: multi-row inserts.
	var missing []resourceName
	for _, n := range order {
		if _, ok := stored[n]; !ok {
			missing = append(missing, n)
		}
	}
	const batch = 200
	for i := 0; i < len(missing); i += batch {
		part := missing[i:min(i+batch, len(missing))]
		var q strings.Builder
		q.WriteString(`INSERT INTO resources (customer_id, resource_id, type) VALUES `)
		args := make([]any, 0, 3*len(part))
		for j, n := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteString(`(?,?,?)`)
			args = append(args, n.customer, n.id, names[n])
		}
		q.WriteString(` RETURNING customer_id, resource_id, key`)
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var n resourceName
			var row resourceRow
			if err := rows.Scan(&n.customer, &n.id, &row.key); err != nil {
				return err
			}
			stored[n] = row
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	keys := make([]int64, len(rs))
	for i, r := range rs {
		row, ok := stored[resourceName{r.CustomerID, r.ResourceID}]
		if !ok {
			return nil, fmt.Errorf("records[%d]: resource %s of customer %s was not created", offset+i, r.ResourceID, r.CustomerID)
		}
		keys[i] = row.key
	}
	return keys, nil
}

func normEnd(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return interval.Norm(t)
}

// Usage returns, for these customers, every resource that has an unsettled record starting before
// until, with its records from Since on and its live billed ranges ending after Since, sorted by
// customer then resource id. It reads one snapshot with three queries whatever the batch size.
// Records of one call that have equal attributes share one map: do not modify it in place.
func (s *Store) Usage(ctx context.Context, customerIDs []string, until time.Time) ([]store.ResourceUsage, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []store.ResourceUsage
	err := s.read(ctx, func(tx *sql.Tx) error {
		// The resources with an unsettled record starting before until and their Since, read
		// from the covering partial index of unsettled records alone.
		rows, err := tx.QueryContext(ctx, usageResourcesSQL, idsJSON(customerIDs), sec(until))
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var u store.ResourceUsage
			var since int64
			if err := rows.Scan(&u.ResourceKey, &since, &u.CustomerID, &u.ResourceID, &u.ResourceType); err != nil {
				return err
			}
			u.Since = fromSec(since)
			out = append(out, u)
			return nil
		})
		if err != nil {
			return err
		}
		sortUsage(out)
		if err := loadRecords(ctx, tx, out, until, true); err != nil {
			return err
		}
		return loadRanges(ctx, tx, out, true)
	})
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return out, nil
}

// ResourceHistory returns every record and every live billed range of the named resources of one
// customer, with Since zero. Resources that exist but have no record (a subscription's fee
// pseudo-resource) are returned with their ranges; unknown resource ids are skipped.
func (s *Store) ResourceHistory(ctx context.Context, customerID string, resourceIDs []string) ([]store.ResourceUsage, error) {
	if len(resourceIDs) == 0 {
		return nil, nil
	}
	var out []store.ResourceUsage
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
SELECT res.key, res.customer_id, res.resource_id, res.type
FROM json_each(?2) AS c CROSS JOIN resources AS res
WHERE res.customer_id = ?1 AND res.resource_id = c.value`, customerID, idsJSON(resourceIDs))
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var u store.ResourceUsage
			if err := rows.Scan(&u.ResourceKey, &u.CustomerID, &u.ResourceID, &u.ResourceType); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
		if err != nil {
			return err
		}
		sortUsage(out)
		if err := loadRecords(ctx, tx, out, time.Time{}, false); err != nil {
			return err
		}
		return loadRanges(ctx, tx, out, false)
	})
	if err != nil {
		return nil, fmt.Errorf("resource history of customer %s: %w", customerID, err)
	}
	return out, nil
}

// sortUsage sorts by customer then resource id.
func sortUsage(us []store.ResourceUsage) {
	sort.Slice(us, func(i, j int) bool {
		if us[i].CustomerID != us[j].CustomerID {
			return us[i].CustomerID < us[j].CustomerID
		}
		return us[i].ResourceID < us[j].ResourceID
	})
}

// keysSince encodes the resources of us as one JSON object parameter {"<key>": since, ...}, so a
// query reads each resource's key and Since from json_each without parsing JSON per row. Since is
// far in the past when !afterSince.
func keysSince(us []store.ResourceUsage, afterSince bool) (string, map[int64]int) {
	index := make(map[int64]int, len(us))
	b := make([]byte, 0, 24*len(us)+2)
	b = append(b, '{')
	for i, u := range us {
		if i > 0 {
			b = append(b, ',')
		}
		since := int64(minSec)
		if afterSince {
			since = sec(u.Since)
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, u.ResourceKey, 10)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, since, 10)
		index[u.ResourceKey] = i
	}
	return string(append(b, '}')), index
}

// loadRecords fills Records of us: records starting before until (any when until is zero) and
// ending after Since (any when !afterSince), sorted by start. One query for the whole batch.
func loadRecords(ctx context.Context, tx *sql.Tx, us []store.ResourceUsage, until time.Time, afterSince bool) error {
	if len(us) == 0 {
		return nil
	}
	param, index := keysSince(us, afterSince)
	limit := int64(maxSec)
	if !until.IsZero() {
		limit = sec(until)
	}
	// No ORDER BY: for each resource the rows come from the (resource_key, start_at) index, so
	// they arrive grouped by resource and sorted by start; the Go code checks both.
	attrCache := map[string]map[string]string{}
	var (
		all   = make([]billing.Record, 0, 4*len(us))
		owner = make([]int32, 0, 4*len(us))

		key, id, start, version, settled int64
		end                              sql.NullInt64
		attrs, source                    string
	)
	rows, err := tx.QueryContext(ctx, usageRecordsSQL,
		param, limit)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		err := rows.Scan(&key, &id, &start, &end, &attrs, &source, &version, &settled)
		if err != nil {
			return err
		}
		i, ok := index[key]
		if !ok {
			return fmt.Errorf("record %d: unexpected resource key %d", id, key)
		}
		u := &us[i]
		a, ok := attrCache[attrs]
		if !ok {
			if a, err = codec.ParseAttrs(attrs); err != nil {
				return fmt.Errorf("record %d: %w", id, err)
			}
			attrCache[attrs] = a
		}
		all = append(all, billing.Record{
			ID:           id,
			ResourceKey:  key,
			ResourceID:   u.ResourceID,
			ResourceType: u.ResourceType,
			CustomerID:   u.CustomerID,
			Start:        fromSec(start),
			End:          fromNullSec(end),
			Attributes:   a,
			Source:       source,
			Version:      version,
			Settled:      settled != 0,
		})
		owner = append(owner, int32(i))
		return nil
	})
	if err != nil {
		return err
	}
	// Hand each resource its run of the shared slice (capped, so appending to one resource's
	// records never overwrites the next); fall back to copying if a resource's rows were split.
	grouped := true
	for j := 0; j < len(all); {
		k := j
		for k < len(all) && owner[k] == owner[j] {
			k++
		}
		u := &us[owner[j]]
		if u.Records != nil {
			grouped = false
			break
		}
		u.Records = all[j:k:k]
		j = k
	}
	if !grouped {
		for i := range us {
			us[i].Records = nil
		}
		for j := range all {
			u := &us[owner[j]]
			u.Records = append(u.Records, all[j])
		}
	}
	for i := range us {
		recs := us[i].Records
		if !sort.SliceIsSorted(recs, func(a, b int) bool { return recs[a].Start.Before(recs[b].Start) }) {
			sort.SliceStable(recs, func(a, b int) bool { return recs[a].Start.Before(recs[b].Start) })
		}
	}
	return nil
}

// loadRanges fills Charged and Credited with the live billed ranges of the resources in us: those
// ending after Since when afterSince, all of them otherwise. One query for the whole batch.
func loadRanges(ctx context.Context, tx *sql.Tx, us []store.ResourceUsage, afterSince bool) error {
	if len(us) == 0 {
		return nil
	}
	param, index := keysSince(us, afterSince)
	charged := make([][]interval.Range, len(us))
	credited := make([][]interval.Range, len(us))
	rows, err := tx.QueryContext(ctx, usageRangesSQL, param)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		var key, start, end int64
		var kind string
		if err := rows.Scan(&key, &kind, &start, &end); err != nil {
			return err
		}
		i := index[key]
		r := interval.Range{Start: fromSec(start), End: fromSec(end)}
		switch invoice.RangeKind(kind) {
		case invoice.Charge:
			charged[i] = append(charged[i], r)
		case invoice.Credited:
			credited[i] = append(credited[i], r)
		default:
			return fmt.Errorf("billed range of resource key %d: unknown kind %q", key, kind)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range us {
		us[i].Charged = interval.NewSet(charged[i]...)
		us[i].Credited = interval.NewSet(credited[i]...)
	}
	return nil
}

// minSec and maxSec lie beyond any stored time.
const (
	minSec = -1 << 62
	maxSec = 1 << 62
)

// usageResourcesSQL finds, among the customers of the JSON array ?1, the resources with an
// unsettled record starting before ?2, and their Since, from the covering partial index alone.
const usageResourcesSQL = `
WITH u AS (
    SELECT r.resource_key AS k, MIN(r.start_at) AS since
    FROM json_each(?1) AS c CROSS JOIN usage_records AS r
    WHERE r.customer_id = c.value AND r.settled = 0 AND r.start_at < ?2
    GROUP BY r.resource_key
)
SELECT u.k, u.since, res.customer_id, res.resource_id, res.type
FROM u CROSS JOIN resources AS res
WHERE res.key = u.k`

// usageRecordsSQL reads the records of the resources of the JSON object ?1 {"<key>": since}
// that start before ?2 and end after their Since.
const usageRecordsSQL = `
SELECT r.resource_key, r.id, r.start_at, r.end_at, r.attributes, r.source, r.version, r.settled
FROM json_each(?1) AS j CROSS JOIN usage_records AS r
WHERE r.resource_key = CAST(j.key AS INTEGER) AND r.start_at < ?2 AND (r.end_at IS NULL OR r.end_at > j.value)`

// usageRangesSQL reads the live billed ranges of the resources of the JSON object ?1
// {"<key>": since} that end after their Since.
const usageRangesSQL = `
SELECT br.resource_key, br.kind, br.start_at, br.end_at
FROM json_each(?1) AS j CROSS JOIN billed_ranges AS br
WHERE br.resource_key = CAST(j.key AS INTEGER) AND br.void = 0 AND br.end_at > j.value`

// recordResourcesSQL reads the resources named by the JSON array ?1 of [customer, resource id].
const recordResourcesSQL = `
SELECT r.customer_id, r.resource_id, r.key, r.type
FROM json_each(?) AS j CROSS JOIN resources AS r
WHERE r.customer_id = j.value ->> 0 AND r.resource_id = j.value ->> 1`
