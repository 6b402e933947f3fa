package postgres

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/store"
)

// StartRun records the start of a pipeline run. A zero StartedAt means now; an empty Status
// means running.
func (s *Store) StartRun(ctx context.Context, r store.Run) error {
	if r.ID == "" {
		return fmt.Errorf("start run: id: required")
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = s.now()
	}
	if r.Status == "" {
		r.Status = "running"
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, finished_at, status, summary)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.Mode, r.Period.Start, r.Period.End, r.StartedAt, nullTime(r.FinishedAt), r.Status, r.Summary)
	if err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

// FinishRun records the end of a run with its status and JSON summary.
func (s *Store) FinishRun(ctx context.Context, id, status, summary string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET finished_at = $2, status = $3, summary = $4 WHERE id = $1`,
		id, s.now(), status, summary)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish run %s: %w", id, store.ErrNotFound)
	}
	return nil
}
