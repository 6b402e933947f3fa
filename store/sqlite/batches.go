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

// BatchTx implements store.BatchDriver.
func (d driver) BatchTx(ctx context.Context, fn func(store.BatchTx) error) error {
	return d.s.write(ctx, func(tx *sql.Tx) error { return fn(batchTx{tx, d.s.now}) })
}

type batchTx struct {
	tx  *sql.Tx
	now func() time.Time
}

// LockRunKey does nothing: the embedded store's write transactions are serialised, so
// checking for an open run and creating one cannot interleave.
func (t batchTx) LockRunKey(context.Context, string) error { return nil }

func (t batchTx) OpenRun(ctx context.Context, key string) (store.Run, bool, error) {
	var out store.Run
	var start, end, started int64
	var finished sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `
SELECT id, mode, period_start, period_end, started_at, finished_at, status, summary FROM runs
WHERE key = ? AND status = 'running'`, key).Scan(&out.ID, &out.Mode, &start, &end, &started, &finished, &out.Status, &out.Summary)
	if errors.Is(err, sql.ErrNoRows) {
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	out.Period = interval.Range{Start: fromSec(start), End: fromSec(end)}
	out.StartedAt, out.FinishedAt = fromSec(started), fromNullSec(finished)
	return out, true, nil
}

func (t batchTx) InsertRun(ctx context.Context, key string, r store.Run, batches [][]string) error {
	if _, err := t.tx.ExecContext(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, status, summary, key) VALUES (?, ?, ?, ?, ?, 'running', '', ?)`,
		r.ID, r.Mode, sec(r.Period.Start), sec(r.Period.End), sec(r.StartedAt), key); err != nil {
		return err
	}
	st, err := t.tx.PrepareContext(ctx, `INSERT INTO run_batches (run_id, n, customers, size) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for n, part := range batches {
		b, err := json.Marshal(part)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, r.ID, n, string(b), len(part)); err != nil {
			return err
		}
	}
	return nil
}

func (t batchTx) ClaimNext(ctx context.Context, runID, worker string, staleAfter time.Duration) (*store.Batch, error) {
	now := t.now()
	var (
		n, attempts int
		customers   string
	)
	err := t.tx.QueryRowContext(ctx, `
SELECT n, customers, attempts FROM run_batches
WHERE run_id = ? AND (status = 'pending' OR (status = 'claimed' AND heartbeat_at < ?))
ORDER BY status = 'claimed', n
LIMIT 1`, runID, ms(now.Add(-staleAfter))).Scan(&n, &customers, &attempts)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal([]byte(customers), &ids); err != nil {
		return nil, fmt.Errorf("batch %d: customers: %w", n, err)
	}
	if _, err := t.tx.ExecContext(ctx, `
UPDATE run_batches SET status = 'claimed', worker = ?, attempts = attempts + 1, claimed_at = ?, heartbeat_at = ?
WHERE run_id = ? AND n = ?`, worker, ms(now), ms(now), runID, n); err != nil {
		return nil, err
	}
	return &store.Batch{RunID: runID, N: n, CustomerIDs: ids, Worker: worker, Attempts: attempts + 1}, nil
}

func (t batchTx) OpenBatches(ctx context.Context, runID string) (int, error) {
	var open int
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM run_batches WHERE run_id = ? AND status <> 'done'`, runID).Scan(&open)
	return open, err
}

func (t batchTx) MarkBatchDone(ctx context.Context, runID string, n int, worker string, res store.BatchResult) (bool, error) {
	now := t.now()
	r, err := t.tx.ExecContext(ctx, `
UPDATE run_batches SET status = 'done', finished_at = ?, heartbeat_at = ?, invoices = ?, skipped = ?, failed = ?
WHERE run_id = ? AND n = ? AND worker = ? AND status = 'claimed'`,
		ms(now), ms(now), res.Invoices, res.Skipped, res.Failed, runID, n, worker)
	if err != nil {
		return false, err
	}
	k, err := r.RowsAffected()
	return err == nil && k > 0, nil
}

func (t batchTx) FinishRunIfDone(ctx context.Context, runID string) error {
	_, err := t.tx.ExecContext(ctx, `
UPDATE runs SET status = 'done', finished_at = ?1, summary = (
    SELECT json_object('customers', coalesce(sum(size), 0), 'invoices', coalesce(sum(invoices), 0),
                       'skipped', coalesce(sum(skipped), 0), 'failed', coalesce(sum(failed), 0))
    FROM run_batches WHERE run_id = ?2)
WHERE id = ?2 AND status = 'running'
  AND NOT EXISTS (SELECT 1 FROM run_batches WHERE run_id = ?2 AND status <> 'done')`, sec(t.now()), runID)
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
