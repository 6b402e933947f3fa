package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

var _ store.Meters = (*Store)(nil)

// meterColumns are the columns of meter_totals as scanMeter reads them.
const meterColumns = `id, customer_id, meter, resource_id, resource_type, start_at, end_at, quantity::text, unit, aggregation, attributes::text, source`

// insertMetersSQL writes a whole call's new totals in one statement from one array per column;
// an id a concurrent import stored first is skipped here and compared by the caller.
const insertMetersSQL = `
INSERT INTO meter_totals (id, customer_id, meter, resource_id, resource_type, start_at, end_at, quantity, unit, aggregation, attributes, source)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                     $8::text[]::numeric[], $9::text[], $10::text[], $11::text[]::jsonb[], $12::text[])
ON CONFLICT (id) DO NOTHING
RETURNING id`

// AddMeterTotals implements store.Meters in one transaction and four round trips whatever the
// size of the call: the customers, the ids already stored, one multi-row insert (arrays unnested)
// and, only when a concurrent import stored some of the same ids meanwhile, their comparison.
func (s *Store) AddMeterTotals(ctx context.Context, ms []billing.MeterTotal) error {
	ws, idx, err := store.PrepareMeterTotals(ms)
	if err != nil {
		return fmt.Errorf("add meter totals: %w", err)
	}
	if len(ws) == 0 {
		return nil
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		custs := make([]string, len(ws))
		ids := make([]string, len(ws))
		for i, m := range ws {
			custs[i], ids[i] = m.CustomerID, m.ID
		}
		known := map[string]bool{}
		rows, _ := tx.Query(ctx, `SELECT id FROM customers WHERE id = ANY($1)`, codec.SortedUnique(custs))
		var id string
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { known[id] = true; return nil }); err != nil {
			return err
		}
		for i, m := range ws {
			if !known[m.CustomerID] {
				return store.UnknownMeterCustomer(idx[i], m)
			}
		}
		check := func(ids []string) ([]billing.MeterTotal, error) {
			stored, err := readMeters(ctx, tx, `SELECT `+meterColumns+` FROM meter_totals WHERE id = ANY($1)`, ids)
			if err != nil {
				return nil, err
			}
			byID := make(map[string]billing.MeterTotal, len(stored))
			for _, m := range stored {
				byID[m.ID] = m
			}
			var fresh []billing.MeterTotal
			for i, m := range ws {
				old, ok := byID[m.ID]
				if !ok {
					fresh = append(fresh, m)
					continue
				}
				if !store.SameMeterTotal(old, m) {
					return nil, store.MeterConflict(idx[i], m, old, "stored")
				}
			}
			return fresh, nil
		}
		fresh, err := check(ids)
		if err != nil || len(fresh) == 0 {
			return err
		}
		n := len(fresh)
		cols := struct {
			id, cust, meter, res, typ, qty, unit, agg, attrs, src []string
			start, end                                            []time.Time
		}{}
		for _, m := range fresh {
			attrs, err := codec.AttrsJSON(m.Attributes)
			if err != nil {
				return fmt.Errorf("meter total %s: attributes: %w", m.ID, err)
			}
			cols.id = append(cols.id, m.ID)
			cols.cust = append(cols.cust, m.CustomerID)
			cols.meter = append(cols.meter, m.Meter)
			cols.res = append(cols.res, m.ResourceID)
			cols.typ = append(cols.typ, m.ResourceType)
			cols.start = append(cols.start, m.Range.Start)
			cols.end = append(cols.end, m.Range.End)
			cols.qty = append(cols.qty, m.Quantity.String())
			cols.unit = append(cols.unit, m.Unit)
			cols.agg = append(cols.agg, m.Aggregation)
			cols.attrs = append(cols.attrs, attrs)
			cols.src = append(cols.src, m.Source)
		}
		rows, _ = tx.Query(ctx, insertMetersSQL, cols.id, cols.cust, cols.meter, cols.res, cols.typ,
			cols.start, cols.end, cols.qty, cols.unit, cols.agg, cols.attrs, cols.src)
		inserted := make(map[string]bool, n)
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { inserted[id] = true; return nil }); err != nil {
			return err
		}
		if len(inserted) == n {
			return nil
		}
		// Stored by a concurrent import after our read: the same content is a no-op.
		var raced []string
		for _, m := range fresh {
			if !inserted[m.ID] {
				raced = append(raced, m.ID)
			}
		}
		_, err = check(raced)
		return err
	})
	if err != nil {
		return fmt.Errorf("add meter totals: %w", err)
	}
	return nil
}

// MeterTotals implements store.Meters.
func (s *Store) MeterTotals(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.MeterTotal, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	end := interval.Forever
	if !r.End.IsZero() {
		end = r.End
	}
	var out []billing.MeterTotal
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		out, err = readMeters(ctx, tx, `
SELECT `+meterColumns+` FROM meter_totals
WHERE customer_id = ANY($1) AND start_at < $3 AND end_at > $2
ORDER BY customer_id, meter, resource_id, start_at, id`, codec.SortedUnique(customerIDs), r.Start, end)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meter totals: %w", err)
	}
	return out, nil
}

// readMeters runs a query of meterColumns.
func readMeters(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]billing.MeterTotal, error) {
	rows, _ := tx.Query(ctx, q, args...)
	var (
		out             []billing.MeterTotal
		m               billing.MeterTotal
		start, end      time.Time
		quantity, attrs string
	)
	_, err := pgx.ForEachRow(rows, []any{&m.ID, &m.CustomerID, &m.Meter, &m.ResourceID, &m.ResourceType,
		&start, &end, &quantity, &m.Unit, &m.Aggregation, &attrs, &m.Source}, func() error {
		m.Range = interval.Range{Start: utc(start), End: utc(end)}
		q, err := codec.Decimal(quantity, "meter total "+m.ID+" quantity")
		if err != nil {
			return err
		}
		m.Quantity = q
		if m.Attributes, err = codec.ParseAttrs(attrs); err != nil {
			return fmt.Errorf("meter total %s: %w", m.ID, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}
