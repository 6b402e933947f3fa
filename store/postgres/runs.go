package postgres

import (
	"context"
	"time"

	"github.com/bilean/bilean/store"
)

// InsertRunRow implements store.RunDriver.
func (d driver) InsertRunRow(ctx context.Context, r store.Run) error {
	_, err := d.s.pool.Exec(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, finished_at, status, summary)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.Mode, r.Period.Start, r.Period.End, r.StartedAt, nullTime(r.FinishedAt), r.Status, r.Summary)
	return err
}

// FinishRunRow implements store.RunDriver.
func (d driver) FinishRunRow(ctx context.Context, id, status, summary string, at time.Time) (bool, error) {
	tag, err := d.s.pool.Exec(ctx, `UPDATE runs SET finished_at = $2, status = $3, summary = $4 WHERE id = $1`,
		id, at, status, summary)
	return tag.RowsAffected() > 0, err
}
