package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

// AddRecords stores trigger records in one transaction, creating resources as needed. A record
// is identified by (customer, resource id, start); storing one that exists replaces its end,
// attributes and source, bumps its version and unsettles it when its end or attributes changed,
// and is a no-op otherwise (a different source alone is not a change). The resource type is kept
// on the resource: a record that brings a new type changes the resource's type and bumps and
// unsettles all of its records. Records for an unknown customer are refused, naming the customer
// and the record's index in rs, and nothing is stored.
//
// Bulk path: new resources get keys drawn from their sequence and are written with COPY; the
// records of new resources cannot exist yet and are written with COPY straight into
// usage_records; the records of known resources are copied into a temporary staging table and
// applied with one INSERT … ON CONFLICT. A call costs a handful of round trips whatever its size.
func (s *Store) AddRecords(ctx context.Context, rs []billing.Record) error {
	if len(rs) == 0 {
		return nil
	}
	for i, r := range rs {
		if err := store.CheckRecord(r); err != nil {
			return fmt.Errorf("add records: %w", store.Refuse(i, "", fmt.Sprintf("records[%d] (customer %s resource %s)", i, r.CustomerID, r.ResourceID), err.Error()))
		}
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		w := &recordWriter{tx: tx}
		return w.add(ctx, rs, 0)
	})
	if err != nil {
		return fmt.Errorf("add records: %w", err)
	}
	return nil
}

// AddRecordStream implements store.Importer: every chunk stream hands over is written in one
// transaction, so a file of a million records is all or nothing with memory bounded by two
// chunks. A chunk is written by a second goroutine while stream produces the next one (add copies
// the chunk and returns once the previous chunk is written), so reading the input and writing
// to PostgreSQL overlap.
func (s *Store) AddRecordStream(ctx context.Context, stream func(add func([]billing.Record) error) error) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		w := &recordWriter{tx: tx}
		type job struct {
			rs     []billing.Record
			offset int
		}
		jobs := make(chan job)
		done := make(chan error, 1)
		go func() {
			var err error
			for j := range jobs {
				if err == nil {
					err = w.add(ctx, j.rs, j.offset)
				}
				done <- err
			}
			close(done)
		}()
		var (
			bufs    [2][]billing.Record
			flip    int
			offset  int
			pending bool
			werr    error
		)
		// wait collects the result of the chunk in flight.
		wait := func() error {
			if pending {
				pending = false
				if err := <-done; err != nil && werr == nil {
					werr = err
				}
			}
			return werr
		}
		serr := stream(func(rs []billing.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i, r := range rs {
				if err := store.CheckRecord(r); err != nil {
					return store.Refuse(offset+i, "", fmt.Sprintf("records[%d] (customer %s resource %s)", offset+i, r.CustomerID, r.ResourceID), err.Error())
				}
			}
			if err := wait(); err != nil {
				return err
			}
			// The caller may reuse rs: write a copy.
			bufs[flip] = append(bufs[flip][:0], rs...)
			jobs <- job{rs: bufs[flip], offset: offset}
			pending = true
			flip = 1 - flip
			offset += len(rs)
			return nil
		})
		werr = wait()
		close(jobs)
		for range done {
		}
		if serr != nil {
			return serr
		}
		return werr
	})
	if err != nil {
		return fmt.Errorf("add records: %w", err)
	}
	return nil
}

// recordWriter writes records inside one transaction.
type recordWriter struct {
	tx     pgx.Tx
	staged bool // the staging table exists
}

type resourceName struct{ customer, id string }

// recKey identifies a record within one call.
type recKey struct {
	customer, resource string
	start              int64
}

type resourceRow struct {
	key int64
	typ string
}

// add writes rs; offset is the index of rs[0] in the caller's whole input, for error messages.
//
// INSERT … ON CONFLICT may touch a row only once per statement, so a record given several times
// in one call is applied in generations: the first occurrence of every record, then the second
// ones, and so on. That is exactly what applying the records one after another leaves, and a
// call without repeats (the usual case) is one generation.
func (w *recordWriter) add(ctx context.Context, rs []billing.Record, offset int) error {
	tx := w.tx
	// Customers: one query; the first record of an unknown customer is reported.
	custIDs := make([]string, 0, 16)
	seenCust := map[string]bool{}
	for _, r := range rs {
		if !seenCust[r.CustomerID] {
			seenCust[r.CustomerID] = true
			custIDs = append(custIDs, r.CustomerID)
		}
	}
	known, err := knownCustomers(ctx, tx, custIDs)
	if err != nil {
		return err
	}
	for i, r := range rs {
		if !known[r.CustomerID] {
			return store.Refuse(offset+i, "customer_id", fmt.Sprintf("records[%d] (resource %s)", offset+i, r.ResourceID),
				fmt.Sprintf("customer %q is unknown", r.CustomerID))
		}
	}

	// The type each resource ends with: the last non-empty one the call brings.
	types := map[resourceName]string{}
	var names []resourceName
	for _, r := range rs {
		n := resourceName{r.CustomerID, r.ResourceID}
		t, ok := types[n]
		if !ok {
			names = append(names, n)
		}
		if r.ResourceType != "" {
			t = r.ResourceType
		}
		types[n] = t
	}
	keys, created, err := w.resolve(ctx, names, types)
	if err != nil {
		return fmt.Errorf("records[%d:%d]: resources: %w", offset, offset+len(rs), err)
	}

	// gen[i] is the generation of rs[i]: how many times its key occurred before it.
	gen := make([]int32, len(rs))
	gens := 1
	if len(rs) > 1 {
		seen := make(map[recKey]int32, len(rs))
		for i, r := range rs {
			k := recKey{r.CustomerID, r.ResourceID, interval.Norm(r.Start).Unix()}
			gen[i] = seen[k]
			seen[k] = gen[i] + 1
			gens = max(gens, int(gen[i])+1)
		}
	}
	// First occurrences of records of new resources cannot conflict: straight into the table.
	var direct, staged []int
	for i, r := range rs {
		if gen[i] == 0 && created[resourceName{r.CustomerID, r.ResourceID}] {
			direct = append(direct, i)
		}
	}
	if err := copyRecords(ctx, tx, "usage_records", rs, direct, keys, offset); err != nil {
		return err
	}
	for g := int32(0); g < int32(gens); g++ {
		staged = staged[:0]
		for i, r := range rs {
			if gen[i] == g && (g > 0 || !created[resourceName{r.CustomerID, r.ResourceID}]) {
				staged = append(staged, i)
			}
		}
		if len(staged) == 0 {
			continue
		}
		if err := w.upsert(ctx, rs, staged, keys, offset); err != nil {
			return err
		}
	}
	return nil
}

// resolve returns the key of every named resource, creating the missing ones (with keys drawn
// from the sequence and one COPY) and applying type changes to the known ones; created tells
// which were created. A resource created concurrently by another transaction makes the COPY
// fail: the savepoint is rolled back and the names resolved again.
func (w *recordWriter) resolve(ctx context.Context, names []resourceName, types map[resourceName]string) (map[resourceName]int64, map[resourceName]bool, error) {
	tx := w.tx
	for attempt := 0; ; attempt++ {
		// Customers with no resource yet (a first import) need no lookup by name.
		var custList []string
		seen := map[string]bool{}
		for _, n := range names {
			if !seen[n.customer] {
				seen[n.customer] = true
				custList = append(custList, n.customer)
			}
		}
		rows, _ := tx.Query(ctx, `
SELECT c FROM unnest($1::text[]) AS c WHERE EXISTS (SELECT 1 FROM resources AS r WHERE r.customer_id = c)`, custList)
		withResources := map[string]bool{}
		var c string
		if _, err := pgx.ForEachRow(rows, []any{&c}, func() error {
			withResources[c] = true
			return nil
		}); err != nil {
			return nil, nil, err
		}
		var custs, ids []string
		for _, n := range names {
			if withResources[n.customer] {
				custs, ids = append(custs, n.customer), append(ids, n.id)
			}
		}
		stored := make(map[resourceName]resourceRow, len(names))
		rows, _ = tx.Query(ctx, `
SELECT r.customer_id, r.resource_id, r.key, r.type
FROM unnest($1::text[], $2::text[]) AS j(customer_id, resource_id)
JOIN resources AS r ON r.customer_id = j.customer_id AND r.resource_id = j.resource_id`, custs, ids)
		var (
			n   resourceName
			row resourceRow
		)
		if _, err := pgx.ForEachRow(rows, []any{&n.customer, &n.id, &row.key, &row.typ}, func() error {
			stored[n] = row
			return nil
		}); err != nil {
			return nil, nil, err
		}
		// Type changes: rare; every record of a changed resource is bumped and unsettled.
		var chKeys []int64
		var chTypes []string
		var missing []resourceName
		for _, n := range names {
			row, ok := stored[n]
			switch {
			case !ok:
				missing = append(missing, n)
			case types[n] != "" && types[n] != row.typ:
				chKeys, chTypes = append(chKeys, row.key), append(chTypes, types[n])
			}
		}
		if len(chKeys) > 0 {
			if _, err := tx.Exec(ctx, `
WITH changed AS (
    UPDATE resources AS r SET type = j.type FROM unnest($1::bigint[], $2::text[]) AS j(key, type)
    WHERE r.key = j.key RETURNING r.key
)
UPDATE usage_records AS u SET version = u.version + 1, settled = false FROM changed WHERE u.resource_key = changed.key`,
				chKeys, chTypes); err != nil {
				return nil, nil, fmt.Errorf("type changes: %w", err)
			}
		}
		keys := make(map[resourceName]int64, len(names))
		for n, row := range stored {
			keys[n] = row.key
		}
		created := make(map[resourceName]bool, len(missing))
		if len(missing) == 0 {
			return keys, created, nil
		}
		rows, _ = tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('resources', 'key')) FROM generate_series(1, $1)`, len(missing))
		newKeys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, nil, fmt.Errorf("draw keys: %w", err)
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT new_resources`); err != nil {
			return nil, nil, err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"resources"}, []string{"key", "customer_id", "resource_id", "type"},
			pgx.CopyFromSlice(len(missing), func(i int) ([]any, error) {
				n := missing[i]
				return []any{newKeys[i], n.customer, n.id, types[n]}, nil
			}))
		if err != nil {
			if pgCode(err) == "23505" && attempt < 3 {
				if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT new_resources`); rerr != nil {
					return nil, nil, rerr
				}
				continue
			}
			return nil, nil, err
		}
		if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT new_resources`); err != nil {
			return nil, nil, err
		}
		for i, n := range missing {
			keys[n] = newKeys[i]
			created[n] = true
		}
		return keys, created, nil
	}
}

// recordColumns are the columns copyRecords writes, into usage_records or the staging table.
var recordColumns = []string{"resource_key", "start_at", "end_at", "attributes", "source"}

// copyRecords writes the records rs[idx…] with COPY into table.
func copyRecords(ctx context.Context, tx pgx.Tx, table string, rs []billing.Record, idx []int, keys map[resourceName]int64, offset int) error {
	if len(idx) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, recordColumns, pgx.CopyFromSlice(len(idx), func(j int) ([]any, error) {
		i := idx[j]
		r := &rs[i]
		attrs, err := codec.AttrsJSON(r.Attributes)
		if err != nil {
			return nil, fmt.Errorf("records[%d] (customer %s resource %s): attributes: %w", offset+i, r.CustomerID, r.ResourceID, err)
		}
		var end *time.Time
		if !r.End.IsZero() {
			e := interval.Norm(r.End)
			end = &e
		}
		return []any{keys[resourceName{r.CustomerID, r.ResourceID}], interval.Norm(r.Start), end, attrs, r.Source}, nil
	}))
	if err != nil {
		return fmt.Errorf("records[%d:%d]: copy into %s: %w", offset, offset+len(rs), table, err)
	}
	return nil
}

// upsert stages the records rs[idx…] (at most one per key) and applies them with one
// INSERT … ON CONFLICT.
func (w *recordWriter) upsert(ctx context.Context, rs []billing.Record, idx []int, keys map[resourceName]int64, offset int) error {
	tx := w.tx
	if !w.staged {
		if _, err := tx.Exec(ctx, `
CREATE TEMPORARY TABLE record_stage (
    resource_key bigint NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz,
    attributes   text NOT NULL,
    source       text NOT NULL
) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		w.staged = true
	} else if _, err := tx.Exec(ctx, `TRUNCATE record_stage`); err != nil {
		return fmt.Errorf("empty staging table: %w", err)
	}
	if err := copyRecords(ctx, tx, "record_stage", rs, idx, keys, offset); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO usage_records AS u (resource_key, start_at, end_at, attributes, source)
SELECT resource_key, start_at, end_at, attributes, source FROM record_stage
ON CONFLICT (resource_key, start_at) DO UPDATE SET
    end_at = excluded.end_at, attributes = excluded.attributes, source = excluded.source,
    version = u.version + 1, settled = false
WHERE u.end_at IS DISTINCT FROM excluded.end_at OR u.attributes <> excluded.attributes`); err != nil {
		return fmt.Errorf("records[%d:%d]: %w", offset, offset+len(rs), err)
	}
	return nil
}

// Usage returns, for these customers, every resource that has an unsettled record starting before
// until, with its records from Since on and its live billed ranges ending after Since, sorted by
// customer then resource id. It reads one snapshot with three queries whatever the batch size,
// streaming their rows. Records of one call that have equal attributes share one map: do not
// modify it in place.
func (s *Store) Usage(ctx context.Context, customerIDs []string, until time.Time) ([]store.ResourceUsage, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var out []store.ResourceUsage
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
SELECT r.key, min(u.start_at), r.customer_id, r.resource_id, r.type
FROM resources AS r JOIN usage_records AS u ON u.resource_key = r.key AND NOT u.settled AND u.start_at < $2
WHERE r.customer_id = ANY($1)
GROUP BY r.key
ORDER BY r.customer_id, r.resource_id`, codec.SortedUnique(customerIDs), until)
		var (
			u     store.ResourceUsage
			since time.Time
		)
		_, err := pgx.ForEachRow(rows, []any{&u.ResourceKey, &since, &u.CustomerID, &u.ResourceID, &u.ResourceType}, func() error {
			u.Since = utc(since)
			out = append(out, u)
			return nil
		})
		if err != nil {
			return err
		}
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
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
SELECT key, customer_id, resource_id, type FROM resources
WHERE customer_id = $1 AND resource_id = ANY($2)
ORDER BY resource_id`, customerID, resourceIDs)
		var u store.ResourceUsage
		_, err := pgx.ForEachRow(rows, []any{&u.ResourceKey, &u.CustomerID, &u.ResourceID, &u.ResourceType}, func() error {
			out = append(out, u)
			return nil
		})
		if err != nil {
			return err
		}
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

// farPast and farFuture lie beyond any stored time.
var (
	farPast   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// keysSince returns the resource keys of us with each one's Since (far in the past when
// !afterSince), and the index of each key in us.
func keysSince(us []store.ResourceUsage, afterSince bool) ([]int64, []time.Time, map[int64]int) {
	keys := make([]int64, len(us))
	since := make([]time.Time, len(us))
	index := make(map[int64]int, len(us))
	for i, u := range us {
		keys[i] = u.ResourceKey
		since[i] = farPast
		if afterSince {
			since[i] = u.Since
		}
		index[u.ResourceKey] = i
	}
	return keys, since, index
}

// loadRecords fills Records of us: records starting before until (any when until is zero) and
// ending after Since (any when !afterSince), sorted by start. One query for the whole batch.
func loadRecords(ctx context.Context, tx pgx.Tx, us []store.ResourceUsage, until time.Time, afterSince bool) error {
	if len(us) == 0 {
		return nil
	}
	keys, since, index := keysSince(us, afterSince)
	if until.IsZero() {
		until = farFuture
	}
	rows, _ := tx.Query(ctx, `
SELECT u.resource_key, u.id, u.start_at, u.end_at, u.attributes, u.source, u.version, u.settled
FROM unnest($1::bigint[], $2::timestamptz[]) AS j(key, since)
JOIN usage_records AS u ON u.resource_key = j.key
WHERE u.start_at < $3 AND (u.end_at IS NULL OR u.end_at > j.since)
ORDER BY u.resource_key, u.start_at`, keys, since, until)
	attrCache := map[string]map[string]string{}
	all := make([]billing.Record, 0, 4*len(us))
	owner := make([]int32, 0, 4*len(us))
	var (
		key, id, version int64
		start            time.Time
		end              *time.Time
		attrs, source    string
		settled          bool
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &id, &start, &end, &attrs, &source, &version, &settled}, func() error {
		i, ok := index[key]
		if !ok {
			return fmt.Errorf("record %d: unexpected resource key %d", id, key)
		}
		u := &us[i]
		a, ok := attrCache[attrs]
		if !ok {
			var err error
			if a, err = codec.ParseAttrs(attrs); err != nil {
				return fmt.Errorf("record %d: %w", id, err)
			}
			attrCache[attrs] = a
		}
		all = append(all, billing.Record{
			ID: id, ResourceKey: key, ResourceID: u.ResourceID, ResourceType: u.ResourceType, CustomerID: u.CustomerID,
			Start: utc(start), End: fromNull(end), Attributes: a, Source: source, Version: version, Settled: settled,
		})
		owner = append(owner, int32(i))
		return nil
	})
	if err != nil {
		return err
	}
	// Rows come grouped by resource and sorted by start: hand each resource its run of the
	// shared slice, capped so that appending to one never overwrites the next.
	for j := 0; j < len(all); {
		k := j
		for k < len(all) && owner[k] == owner[j] {
			k++
		}
		us[owner[j]].Records = all[j:k:k]
		j = k
	}
	return nil
}

// loadRanges fills Charged and Credited with the live billed ranges of the resources in us: those
// ending after Since when afterSince, all of them otherwise. One query for the whole batch.
func loadRanges(ctx context.Context, tx pgx.Tx, us []store.ResourceUsage, afterSince bool) error {
	if len(us) == 0 {
		return nil
	}
	keys, since, index := keysSince(us, afterSince)
	charged := make([][]interval.Range, len(us))
	credited := make([][]interval.Range, len(us))
	rows, _ := tx.Query(ctx, `
SELECT b.resource_key, b.kind, lower(b.during), upper(b.during)
FROM unnest($1::bigint[], $2::timestamptz[]) AS j(key, since)
JOIN billed_ranges AS b ON b.resource_key = j.key
WHERE b.live AND upper(b.during) > j.since`, keys, since)
	var (
		key        int64
		kind       int16
		start, end time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &kind, &start, &end}, func() error {
		i := index[key]
		r := interval.Range{Start: utc(start), End: utc(end)}
		switch kind {
		case kindCharge:
			charged[i] = append(charged[i], r)
		case kindCredit:
			credited[i] = append(credited[i], r)
		default:
			return fmt.Errorf("billed range of resource key %d: unknown kind %d", key, kind)
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

// Range kinds as stored in billed_ranges.kind: a smallint keeps the exclusion constraint's key
// integer-only.
const (
	kindCharge int16 = 0
	kindCredit int16 = 1
)

func kindCode(k invoice.RangeKind) (int16, bool) {
	switch k {
	case invoice.Charge:
		return kindCharge, true
	case invoice.Credited:
		return kindCredit, true
	}
	return 0, false
}

func kindName(k int16) invoice.RangeKind {
	if k == kindCredit {
		return invoice.Credited
	}
	return invoice.Charge
}
