package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/codec"
)

var _ store.Meters = (*Store)(nil)

// meterBatch is the number of totals one multi-row insert carries (12 parameters each).
const meterBatch = 100

// meterColumns are the columns of meter_totals in the order meterArgs and scanMeter use.
const meterColumns = `id, customer_id, meter, resource_id, resource_type, start_at, end_at, quantity, unit, aggregation, attributes, source`

// AddMeterTotals implements store.Meters: one transaction; the customers and the ids already
// stored are read with one query each, the new totals written with multi-row inserts.
func (s *Store) AddMeterTotals(ctx context.Context, ms []billing.MeterTotal) error {
	ws, idx, err := store.PrepareMeterTotals(ms)
	if err != nil {
		return fmt.Errorf("add meter totals: %w", err)
	}
	if len(ws) == 0 {
		return nil
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		custs := make([]string, len(ws))
		ids := make([]string, len(ws))
		for i, m := range ws {
			custs[i], ids[i] = m.CustomerID, m.ID
		}
		known := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM customers WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(custs))
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			known[id] = true
			return nil
		})
		if err != nil {
			return err
		}
		for i, m := range ws {
			if !known[m.CustomerID] {
				return store.UnknownMeterCustomer(idx[i], m)
			}
		}
		stored := map[string]billing.MeterTotal{}
		rows, err = tx.QueryContext(ctx, `SELECT `+meterColumns+` FROM meter_totals WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
		err = eachRow(rows, err, func(rows *sql.Rows) error {
			m, err := scanMeter(rows)
			if err != nil {
				return err
			}
			stored[m.ID] = m
			return nil
		})
		if err != nil {
			return err
		}
		fresh := ws[:0:0]
		for i, m := range ws {
			old, ok := stored[m.ID]
			if !ok {
				fresh = append(fresh, m)
				continue
			}
			if !store.SameMeterTotal(old, m) {
				return store.MeterConflict(idx[i], m, old, "stored")
			}
		}
		for i := 0; i < len(fresh); i += meterBatch {
			part := fresh[i:min(i+meterBatch, len(fresh))]
			var q strings.Builder
			q.WriteString(`INSERT INTO meter_totals (` + meterColumns + `) VALUES `)
			args := make([]any, 0, 12*len(part))
			for j, m := range part {
				if j > 0 {
					q.WriteByte(',')
				}
				q.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?)`)
				attrs, err := codec.AttrsJSON(m.Attributes)
				if err != nil {
					return fmt.Errorf("meter total %s: attributes: %w", m.ID, err)
				}
				args = append(args, m.ID, m.CustomerID, m.Meter, m.ResourceID, m.ResourceType,
					sec(m.Range.Start), sec(m.Range.End), dec(m.Quantity), m.Unit, m.Aggregation, attrs, m.Source)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
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
	end := int64(maxSec)
	if !r.End.IsZero() {
		end = sec(r.End)
	}
	start := int64(minSec)
	if !r.Start.IsZero() {
		start = sec(r.Start)
	}
	var out []billing.MeterTotal
	rows, err := s.db.QueryContext(ctx, meterTotalsSQL, idsJSON(customerIDs), start, end)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		m, err := scanMeter(rows)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meter totals: %w", err)
	}
	return out, nil
}

// meterTotalsSQL reads the totals of the customers of the JSON array ?1 that intersect [?2, ?3),
// through the index on (customer_id, start_at).
const meterTotalsSQL = `
SELECT m.id, m.customer_id, m.meter, m.resource_id, m.resource_type, m.start_at, m.end_at, m.quantity,
       m.unit, m.aggregation, m.attributes, m.source
FROM json_each(?1) AS c CROSS JOIN meter_totals AS m
WHERE m.customer_id = c.value AND m.start_at < ?3 AND m.end_at > ?2
ORDER BY m.customer_id, m.meter, m.resource_id, m.start_at, m.id`

// scanMeter reads one meter_totals row of meterColumns.
func scanMeter(rows *sql.Rows) (billing.MeterTotal, error) {
	var (
		m               billing.MeterTotal
		start, end      int64
		quantity, attrs string
	)
	if err := rows.Scan(&m.ID, &m.CustomerID, &m.Meter, &m.ResourceID, &m.ResourceType, &start, &end,
		&quantity, &m.Unit, &m.Aggregation, &attrs, &m.Source); err != nil {
		return m, err
	}
	m.Range = interval.Range{Start: fromSec(start), End: fromSec(end)}
	q, err := codec.Decimal(quantity, "meter total "+m.ID+" quantity")
	if err != nil {
		return m, err
	}
	m.Quantity = q
	if m.Attributes, err = codec.ParseAttrs(attrs); err != nil {
		return m, fmt.Errorf("meter total %s: %w", m.ID, err)
	}
	return m, nil
}
