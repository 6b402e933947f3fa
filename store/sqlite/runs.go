package sqlite

import (
	"context"
	"time"

	"github.com/bilean/bilean/store"
)

// InsertRunRow implements store.RunDriver.
func (d driver) InsertRunRow(ctx context.Context, r store.Run) error {
	_, err := d.s.db.ExecContext(ctx, `
INSERT INTO runs (id, mode, period_start, period_end, started_at, finished_at, status, summary)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Mode, sec(r.Period.Start), sec(r.Period.End), sec(r.StartedAt), nullSec(r.FinishedAt), r.Status, r.Summary)
	return err
}

// FinishRunRow implements store.RunDriver.
func (d driver) FinishRunRow(ctx context.Context, id, status, summary string, at time.Time) (bool, error) {
	res, err := d.s.db.ExecContext(ctx, `UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?`,
		sec(at), status, summary, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err != nil || n > 0, nil
}
