package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
)

// BatchTx implements store.BatchDriver.
func (d driver) BatchTx(ctx context.Context, fn func(store.BatchTx) error) error {
	return d.s.write(ctx, func(tx pgx.Tx) error { return fn(batchTx{tx}) })
}

type batchTx struct{ tx pgx.Tx }

// LockRunKey takes a transaction-level advisory lock on the key; the partial unique index on
// runs (key) WHERE status = 'running' backs it up.
func (t batchTx) LockRunKey(ctx context.Context, key string) error {
	_, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('bilean-run:' || $1, 0))`, key)
	return err
}

func (t batchTx) OpenRun(ctx context.Context, key string) (store.Run, bool, error) {
	r, err := scanRun(t.tx.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE key = $1 AND status = 'running'`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

func (t batchTx) InsertRun(ctx context.Context, key string, r store.Run, batches [][]string) error {
	if _, err := t.tx.Exec(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, status, summary, key)
VALUES ($1, $2, $3, $4, $5, 'running', '', $6)`, r.ID, r.Mode, r.Period.Start, r.Period.End, r.StartedAt, key); err != nil {
		return err
	}
	var (
		ids     []string
		batchOf []int32
	)
	for n, b := range batches {
		for _, id := range b {
			ids, batchOf = append(ids, id), append(batchOf, int32(n))
		}
	}
	_, err := t.tx.Exec(ctx, `
INSERT INTO run_batches (run_id, n, customers)
SELECT $1, b, array_agg(id ORDER BY ord)
FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS j(id, b, ord)
GROUP BY b`, r.ID, ids, batchOf)
	return err
}

// ClaimNext uses SELECT … FOR UPDATE SKIP LOCKED: concurrent workers never wait for each
// other's claims and never get the same batch.
func (t batchTx) ClaimNext(ctx context.Context, runID, worker string, staleAfter time.Duration) (*store.Batch, error) {
	var (
		n, attempts int
		ids         []string
	)
	err := t.tx.QueryRow(ctx, `
SELECT n, customers, attempts FROM run_batches
WHERE run_id = $1 AND (status = 'pending' OR (status = 'claimed' AND heartbeat_at < now() - $2 * interval '1 millisecond'))
ORDER BY status = 'claimed', n
LIMIT 1
FOR UPDATE SKIP LOCKED`, runID, staleAfter.Milliseconds()).Scan(&n, &ids, &attempts)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if _, err := t.tx.Exec(ctx, `
UPDATE run_batches SET status = 'claimed', worker = $3, attempts = attempts + 1, claimed_at = now(), heartbeat_at = now()
WHERE run_id = $1 AND n = $2`, runID, n, worker); err != nil {
		return nil, err
	}
	return &store.Batch{RunID: runID, N: n, CustomerIDs: ids, Worker: worker, Attempts: attempts + 1}, nil
}

func (t batchTx) OpenBatches(ctx context.Context, runID string) (int, error) {
	var open int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM run_batches WHERE run_id = $1 AND status <> 'done'`, runID).Scan(&open)
	return open, err
}

func (t batchTx) MarkBatchDone(ctx context.Context, runID string, n int, worker string, res store.BatchResult) (bool, error) {
	tag, err := t.tx.Exec(ctx, `
UPDATE run_batches SET status = 'done', finished_at = now(), heartbeat_at = now(), invoices = $4, skipped = $5, failed = $6
WHERE run_id = $1 AND n = $2 AND worker = $3 AND status = 'claimed'`, runID, n, worker, res.Invoices, res.Skipped, res.Failed)
	return tag.RowsAffected() == 1, err
}

func (t batchTx) FinishRunIfDone(ctx context.Context, runID string) error {
	_, err := t.tx.Exec(ctx, `
UPDATE runs SET status = 'done', finished_at = now(), summary = (
    SELECT json_build_object('customers', coalesce(sum(cardinality(customers)), 0), 'invoices', coalesce(sum(invoices), 0),
                             'skipped', coalesce(sum(skipped), 0), 'failed', coalesce(sum(failed), 0))::text
    FROM run_batches WHERE run_id = $1)
WHERE id = $1 AND status = 'running'
  AND NOT EXISTS (SELECT 1 FROM run_batches WHERE run_id = $1 AND status <> 'done')`, runID)
	return err
}

// Heartbeat implements store.Batches.
func (s *Store) Heartbeat(ctx context.Context, runID string, n int, worker string) error {
	tag, err := s.pool.Exec(ctx, `
UPDATE run_batches SET heartbeat_at = now()
WHERE run_id = $1 AND n = $2 AND worker = $3 AND status = 'claimed'`, runID, n, worker)
	if err != nil {
		return fmt.Errorf("heartbeat batch %d of run %s: %w", n, runID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("heartbeat batch %d of run %s: %w", n, runID, store.ErrLostClaim)
	}
	return nil
}

// ReleaseBatch implements store.Batches.
func (s *Store) ReleaseBatch(ctx context.Context, runID string, n int, worker string) error {
	_, err := s.pool.Exec(ctx, `
UPDATE run_batches SET status = 'pending', worker = ''
WHERE run_id = $1 AND n = $2 AND worker = $3 AND status = 'claimed'`, runID, n, worker)
	if err != nil {
		return fmt.Errorf("release batch %d of run %s: %w", n, runID, err)
	}
	return nil
}

const runCols = `id, mode, period_start, period_end, started_at, finished_at, status, summary`

func scanRun(row pgx.Row) (store.Run, error) {
	var (
		r          store.Run
		start, end time.Time
		started    time.Time
		finished   *time.Time
	)
	if err := row.Scan(&r.ID, &r.Mode, &start, &end, &started, &finished, &r.Status, &r.Summary); err != nil {
		return r, err
	}
	r.Period = interval.Range{Start: utc(start), End: utc(end)}
	r.StartedAt, r.FinishedAt = utc(started), fromNull(finished)
	return r, nil
}

const progressSQL = `
SELECT r.id, r.mode, r.period_start, r.period_end, r.started_at, r.finished_at, r.status, r.summary, r.key,
    count(b.n), count(b.n) FILTER (WHERE b.status = 'pending'), count(b.n) FILTER (WHERE b.status = 'claimed'),
    count(b.n) FILTER (WHERE b.status = 'done'),
    coalesce(sum(cardinality(b.customers)), 0), coalesce(sum(cardinality(b.customers)) FILTER (WHERE b.status = 'done'), 0),
    coalesce(sum(b.skipped), 0), coalesce(sum(b.failed), 0),
    coalesce(array_agg(DISTINCT b.worker) FILTER (WHERE b.status = 'claimed'), '{}'),
    (SELECT count(*) FROM invoices AS i WHERE i.run_id = r.id AND i.status <> 'void')
FROM runs AS r LEFT JOIN run_batches AS b ON b.run_id = r.id`

func scanProgress(row pgx.Row) (store.RunProgress, error) {
	var (
		p                     store.RunProgress
		start, end, started   time.Time
		finished              *time.Time
		batches, pend, claim  int64
		done, cust, custDone  int64
		skipped, failed, invs int64
	)
	err := row.Scan(&p.ID, &p.Mode, &start, &end, &started, &finished, &p.Status, &p.Summary, &p.Key,
		&batches, &pend, &claim, &done, &cust, &custDone, &skipped, &failed, &p.Workers, &invs)
	if err != nil {
		return p, err
	}
	p.Period = interval.Range{Start: utc(start), End: utc(end)}
	p.StartedAt, p.FinishedAt = utc(started), fromNull(finished)
	p.Batches, p.Pending, p.Claimed, p.Done = int(batches), int(pend), int(claim), int(done)
	p.Customers, p.CustomersDone, p.Skipped, p.Failed, p.Invoices = int(cust), int(custDone), int(skipped), int(failed), int(invs)
	return p, nil
}

// ListRuns implements store.Batches.
func (s *Store) ListRuns(ctx context.Context, limit int) ([]store.RunProgress, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, _ := s.pool.Query(ctx, progressSQL+`
GROUP BY r.id
ORDER BY r.started_at DESC, r.id DESC
LIMIT $1`, limit)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.RunProgress, error) { return scanProgress(row) })
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// GetRunProgress implements store.Batches.
func (s *Store) GetRunProgress(ctx context.Context, id string) (*store.RunProgress, error) {
	var p store.RunProgress
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanProgress(tx.QueryRow(ctx, progressSQL+` WHERE r.id = $1 GROUP BY r.id`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
SELECT n, status, worker, cardinality(customers), attempts, claimed_at, heartbeat_at, finished_at, invoices, skipped, failed
FROM run_batches WHERE run_id = $1 ORDER BY n`, id)
		var (
			b                   store.BatchStatus
			claimed, beat, fini *time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&b.N, &b.Status, &b.Worker, &b.Customers, &b.Attempts, &claimed, &beat, &fini,
			&b.Invoices, &b.Skipped, &b.Failed}, func() error {
			x := b
			x.ClaimedAt, x.HeartbeatAt, x.FinishedAt = fromNull(claimed), fromNull(beat), fromNull(fini)
			p.List = append(p.List, x)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return &p, nil
}
