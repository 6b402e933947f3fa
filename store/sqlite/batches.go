package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
)

var _ store.Batches = (*Store)(nil)

// ms stores a time as Unix milliseconds (heartbeats need better than seconds).
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromNullMs(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// OpenSharedRun implements store.Batches. The embedded store's write transactions are
// serialised, so checking for an open run and creating one cannot interleave.
func (s *Store) OpenSharedRun(ctx context.Context, key string, r store.Run, customerIDs []string, size int) (store.Run, bool, error) {
	if key == "" || r.ID == "" {
		return store.Run{}, false, errors.New("open shared run: key and id are required")
	}
	if size < 1 {
		size = 500
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = s.now()
	}
	r.Status = "running"
	var (
		out     store.Run
		created bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var start, end, started int64
		var finished sql.NullInt64
		err := tx.QueryRowContext(ctx, `
SELECT id, mode, period_start, period_end, started_at, finished_at, status, summary FROM runs
WHERE key = ? AND status = 'running'`, key).Scan(&out.ID, &out.Mode, &start, &end, &started, &finished, &out.Status, &out.Summary)
		if err == nil {
			out.Period = interval.Range{Start: fromSec(start), End: fromSec(end)}
			out.StartedAt, out.FinishedAt = fromSec(started), fromNullSec(finished)
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, status, summary, key) VALUES (?, ?, ?, ?, ?, 'running', '', ?)`,
			r.ID, r.Mode, sec(r.Period.Start), sec(r.Period.End), sec(r.StartedAt), key); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO run_batches (run_id, n, customers, size) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for n := 0; n*size < len(customerIDs); n++ {
			part := customerIDs[n*size : min((n+1)*size, len(customerIDs))]
			b, err := json.Marshal(part)
			if err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, r.ID, n, string(b), len(part)); err != nil {
				return err
			}
		}
		out, created = r, true
		return nil
	})
	if err != nil {
		return store.Run{}, false, fmt.Errorf("open shared run %s: %w", key, err)
	}
	return out, created, nil
}

// ClaimBatch implements store.Batches.
func (s *Store) ClaimBatch(ctx context.Context, runID, worker string, staleAfter time.Duration) (*store.Batch, bool, error) {
	var (
		b    *store.Batch
		wait bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		var (
			n, attempts int
			customers   string
		)
		err := tx.QueryRowContext(ctx, `
SELECT n, customers, attempts FROM run_batches
WHERE run_id = ? AND (status = 'pending' OR (status = 'claimed' AND heartbeat_at < ?))
ORDER BY status = 'claimed', n
LIMIT 1`, runID, ms(now.Add(-staleAfter))).Scan(&n, &customers, &attempts)
		switch {
		case err == nil:
			var ids []string
			if err := json.Unmarshal([]byte(customers), &ids); err != nil {
				return fmt.Errorf("batch %d: customers: %w", n, err)
			}
			if _, err := tx.ExecContext(ctx, `
UPDATE run_batches SET status = 'claimed', worker = ?, attempts = attempts + 1, claimed_at = ?, heartbeat_at = ?
WHERE run_id = ? AND n = ?`, worker, ms(now), ms(now), runID, n); err != nil {
				return err
			}
			b = &store.Batch{RunID: runID, N: n, CustomerIDs: ids, Worker: worker, Attempts: attempts + 1}
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM run_batches WHERE run_id = ? AND status <> 'done'`, runID).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			wait = true
			return nil
		}
		return s.finishRunIfDone(ctx, tx, runID)
	})
	if err != nil {
		return nil, false, fmt.Errorf("claim batch of run %s: %w", runID, err)
	}
	return b, wait, nil
}

// finishRunIfDone marks the run done with a summary summed over its batches when no batch is
// left open.
func (s *Store) finishRunIfDone(ctx context.Context, tx *sql.Tx, runID string) error {
	_, err := tx.ExecContext(ctx, `
UPDATE runs SET status = 'done', finished_at = ?1, summary = (
    SELECT json_object('customers', coalesce(sum(size), 0), 'invoices', coalesce(sum(invoices), 0),
                       'skipped', coalesce(sum(skipped), 0), 'failed', coalesce(sum(failed), 0))
    FROM run_batches WHERE run_id = ?2)
WHERE id = ?2 AND status = 'running'
  AND NOT EXISTS (SELECT 1 FROM run_batches WHERE run_id = ?2 AND status <> 'done')`, sec(s.now()), runID)
	return err
}

// Heartbeat implements store.Batches.
func (s *Store) Heartbeat(ctx context.Context, runID string, n int, worker string) error {
	var affected int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE run_batches SET heartbeat_at = ? WHERE run_id = ? AND n = ? AND worker = ? AND status = 'claimed'`,
			ms(s.now()), runID, n, worker)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("heartbeat batch %d of run %s: %w", n, runID, err)
	}
	if affected == 0 {
		return fmt.Errorf("heartbeat batch %d of run %s: %w", n, runID, store.ErrLostClaim)
	}
	return nil
}

// FinishBatch implements store.Batches; the last batch to finish marks the run done.
func (s *Store) FinishBatch(ctx context.Context, runID string, n int, worker string, res store.BatchResult) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		r, err := tx.ExecContext(ctx, `
UPDATE run_batches SET status = 'done', finished_at = ?, heartbeat_at = ?, invoices = ?, skipped = ?, failed = ?
WHERE run_id = ? AND n = ? AND worker = ? AND status = 'claimed'`,
			ms(now), ms(now), res.Invoices, res.Skipped, res.Failed, runID, n, worker)
		if err != nil {
			return err
		}
		if k, err := r.RowsAffected(); err != nil || k == 0 {
			return store.ErrLostClaim
		}
		return s.finishRunIfDone(ctx, tx, runID)
	})
	if err != nil {
		return fmt.Errorf("finish batch %d of run %s: %w", n, runID, err)
	}
	return nil
}

// ReleaseBatch implements store.Batches.
func (s *Store) ReleaseBatch(ctx context.Context, runID string, n int, worker string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
UPDATE run_batches SET status = 'pending', worker = '' WHERE run_id = ? AND n = ? AND worker = ? AND status = 'claimed'`,
			runID, n, worker)
		return err
	})
	if err != nil {
		return fmt.Errorf("release batch %d of run %s: %w", n, runID, err)
	}
	return nil
}

const progressSQL = `
SELECT r.id, r.mode, r.period_start, r.period_end, r.started_at, r.finished_at, r.status, r.summary, r.key,
    count(b.n), count(b.n) FILTER (WHERE b.status = 'pending'), count(b.n) FILTER (WHERE b.status = 'claimed'),
    count(b.n) FILTER (WHERE b.status = 'done'),
    coalesce(sum(b.size), 0), coalesce(sum(b.size) FILTER (WHERE b.status = 'done'), 0),
    coalesce(sum(b.skipped), 0), coalesce(sum(b.failed), 0),
    coalesce((SELECT json_group_array(DISTINCT w.worker) FROM run_batches AS w WHERE w.run_id = r.id AND w.status = 'claimed'), '[]'),
    (SELECT count(*) FROM invoices AS i WHERE i.run_id = r.id AND i.status <> 'void')
FROM runs AS r LEFT JOIN run_batches AS b ON b.run_id = r.id`

func scanProgress(sc scanner) (store.RunProgress, error) {
	var (
		p                   store.RunProgress
		start, end, started int64
		finished            sql.NullInt64
		workers             string
	)
	err := sc.Scan(&p.ID, &p.Mode, &start, &end, &started, &finished, &p.Status, &p.Summary, &p.Key,
		&p.Batches, &p.Pending, &p.Claimed, &p.Done, &p.Customers, &p.CustomersDone, &p.Skipped, &p.Failed, &workers, &p.Invoices)
	if err != nil {
		return p, err
	}
	p.Period = interval.Range{Start: fromSec(start), End: fromSec(end)}
	p.StartedAt, p.FinishedAt = fromSec(started), fromNullSec(finished)
	if err := json.Unmarshal([]byte(workers), &p.Workers); err != nil {
		return p, fmt.Errorf("run %s: workers: %w", p.ID, err)
	}
	if len(p.Workers) == 0 {
		p.Workers = nil
	}
	return p, nil
}

// ListRuns implements store.Batches.
func (s *Store) ListRuns(ctx context.Context, limit int) ([]store.RunProgress, error) {
	if limit <= 0 {
		limit = 20
	}
	var out []store.RunProgress
	rows, err := s.db.QueryContext(ctx, progressSQL+`
GROUP BY r.id
ORDER BY r.started_at DESC, r.id DESC
LIMIT ?`, limit)
	err = eachRow(rows, err, func(rows *sql.Rows) error {
		p, err := scanProgress(rows)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// GetRunProgress implements store.Batches.
func (s *Store) GetRunProgress(ctx context.Context, id string) (*store.RunProgress, error) {
	var p store.RunProgress
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = scanProgress(tx.QueryRowContext(ctx, progressSQL+` WHERE r.id = ? GROUP BY r.id`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
SELECT n, status, worker, size, attempts, claimed_at, heartbeat_at, finished_at, invoices, skipped, failed
FROM run_batches WHERE run_id = ? ORDER BY n`, id)
		return eachRow(rows, err, func(rows *sql.Rows) error {
			var b store.BatchStatus
			var claimed, beat, fini sql.NullInt64
			if err := rows.Scan(&b.N, &b.Status, &b.Worker, &b.Customers, &b.Attempts, &claimed, &beat, &fini,
				&b.Invoices, &b.Skipped, &b.Failed); err != nil {
				return err
			}
			b.ClaimedAt, b.HeartbeatAt, b.FinishedAt = fromNullMs(claimed), fromNullMs(beat), fromNullMs(fini)
			p.List = append(p.List, b)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return &p, nil
}
