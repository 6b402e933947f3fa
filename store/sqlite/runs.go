package sqlite

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
	_, err := s.db.ExecContext(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, finished_at, status, summary)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Mode, sec(r.Period.Start), sec(r.Period.End), sec(r.StartedAt), nullSec(r.FinishedAt), r.Status, r.Summary)
	if err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

// FinishRun records the end of a run with its status and JSON summary.
func (s *Store) FinishRun(ctx context.Context, id, status, summary string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?`,
		sec(s.now()), status, summary, id)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("finish run %s: %w", id, store.ErrNotFound)
	}
	return nil
}
