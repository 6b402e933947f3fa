package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Shared runs (see Batches) once, over a driver's typed operations.

// OpenSharedRun implements Batches.OpenSharedRun over a driver.
func OpenSharedRun(ctx context.Context, d BatchDriver, key string, r Run, customerIDs []string, size int) (Run, bool, error) {
	if key == "" || r.ID == "" {
		return Run{}, false, errors.New("open shared run: key and id are required")
	}
	if size < 1 {
		size = 500
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = d.Now()
	}
	r.Status = "running"
	var (
		out     Run
		created bool
	)
	err := d.BatchTx(ctx, func(tx BatchTx) error {
		if err := tx.LockRunKey(ctx, key); err != nil {
			return err
		}
		got, found, err := tx.OpenRun(ctx, key)
		if err != nil || found {
			out = got
			return err
		}
		var batches [][]string
		for n := 0; n*size < len(customerIDs); n++ {
			batches = append(batches, customerIDs[n*size:min((n+1)*size, len(customerIDs))])
		}
		if err := tx.InsertRun(ctx, key, r, batches); err != nil {
			return err
		}
		out, created = r, true
		return nil
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("open shared run %s: %w", key, err)
	}
	return out, created, nil
}

// ClaimBatch implements Batches.ClaimBatch over a driver.
func ClaimBatch(ctx context.Context, d BatchDriver, runID, worker string, staleAfter time.Duration) (*Batch, bool, error) {
	var (
		b    *Batch
		wait bool
	)
	err := d.BatchTx(ctx, func(tx BatchTx) error {
		var err error
		if b, err = tx.ClaimNext(ctx, runID, worker, staleAfter); err != nil || b != nil {
			return err
		}
		open, err := tx.OpenBatches(ctx, runID)
		if err != nil {
			return err
		}
		if open > 0 {
			wait = true
			return nil
		}
		return tx.FinishRunIfDone(ctx, runID)
	})
	if err != nil {
		return nil, false, fmt.Errorf("claim batch of run %s: %w", runID, err)
	}
	return b, wait, nil
}

// FinishBatch implements Batches.FinishBatch over a driver: the last batch to finish marks the
// run done.
func FinishBatch(ctx context.Context, d BatchDriver, runID string, n int, worker string, res BatchResult) error {
	err := d.BatchTx(ctx, func(tx BatchTx) error {
		done, err := tx.MarkBatchDone(ctx, runID, n, worker, res)
		if err != nil {
			return err
		}
		if !done {
			return ErrLostClaim
		}
		return tx.FinishRunIfDone(ctx, runID)
	})
	if err != nil {
		return fmt.Errorf("finish batch %d of run %s: %w", n, runID, err)
	}
	return nil
}
