package store

import (
	"context"
	"errors"
	"time"
)

// ErrLostClaim is returned by Heartbeat and FinishBatch when the batch is no longer claimed by
// the worker: its heartbeat went stale and another worker took it over.
var ErrLostClaim = errors.New("batch claim lost")

// Batch is one slice of a shared run's customers, as claimed by a worker.
type Batch struct {
	RunID       string
	N           int // 0-based position in the run
	CustomerIDs []string
	Worker      string
	// Attempts counts the claims of this batch, this one included: more than 1 means the batch
	// was taken over (or released after an error) and may be partly finalized already.
	Attempts int
}

// BatchResult is what a worker reports when it finishes a batch.
type BatchResult struct {
	Invoices, Skipped, Failed int
}

// BatchStatus is one batch as `bilean runs show` lists it.
type BatchStatus struct {
	N           int
	Status      string // pending, claimed, done
	Worker      string
	Customers   int
	Attempts    int
	ClaimedAt   time.Time
	HeartbeatAt time.Time
	FinishedAt  time.Time
	BatchResult
}

// RunProgress is a run with the progress of its batches.
type RunProgress struct {
	Run
	// Key identifies a shared run (mode and period); empty for a run no other process can join.
	Key                      string
	Batches                  int
	Pending, Claimed, Done   int
	Customers, CustomersDone int
	// Invoices is the number of live invoices carrying the run's id.
	Invoices int
	// Skipped and Failed are the totals reported by the finished batches.
	Skipped, Failed int
	// Workers are the workers holding a claim now.
	Workers []string
	// List holds every batch (GetRunProgress only).
	List []BatchStatus
}

// Batches lets several workers, in one process or on several hosts, share a run: the run's
// customers are split into batches recorded in the store; each worker claims one batch at a time,
// heartbeats it while it works and marks it done. A batch whose heartbeat is older than the
// staleness limit is taken over by the next worker that asks.
type Batches interface {
	// OpenSharedRun returns the open (running) run with this key, or records r under the key
	// with customerIDs split into batches of size when there is none. Concurrent callers with
	// the same key all get the same run; created tells which one recorded it.
	OpenSharedRun(ctx context.Context, key string, r Run, customerIDs []string, size int) (run Run, created bool, err error)
	// ClaimBatch claims the first pending batch of the run, or else the first claimed batch whose
	// last heartbeat is more than staleAfter old (by the store's clock, so hosts need not agree
	// on the time). It returns nil when there is nothing to claim now; wait then tells whether
	// batches are still claimed by other workers (one may go stale later). When every batch is
	// done it marks the run done.
	ClaimBatch(ctx context.Context, runID, worker string, staleAfter time.Duration) (b *Batch, wait bool, err error)
	// Heartbeat records that the worker still works on the batch; ErrLostClaim when it was
	// taken over.
	Heartbeat(ctx context.Context, runID string, n int, worker string) error
	// FinishBatch marks the batch done with its result; ErrLostClaim when it was taken over.
	FinishBatch(ctx context.Context, runID string, n int, worker string, res BatchResult) error
	// ReleaseBatch puts a batch the worker could not finish back to pending, for another worker.
	ReleaseBatch(ctx context.Context, runID string, n int, worker string) error
	// ListRuns returns the latest runs with their progress (without the batch list), newest
	// first.
	ListRuns(ctx context.Context, limit int) ([]RunProgress, error)
	// GetRunProgress returns one run with every batch; an error wrapping ErrNotFound when the
	// run does not exist.
	GetRunProgress(ctx context.Context, id string) (*RunProgress, error)
}

// BatchClaim names a batch of a shared run held by a worker.
type BatchClaim struct {
	RunID  string
	N      int
	Worker string
}

type batchClaimKey struct{}

// WithBatchClaim returns a context that carries the worker's claim on a batch: a store that
// shares runs between processes (PostgreSQL) checks, inside Finalize's transaction, that the
// claim still holds, and refuses with an error wrapping ErrLostClaim when another worker took the
// batch over (a worker frozen past the staleness limit must not commit late).
func WithBatchClaim(ctx context.Context, c BatchClaim) context.Context {
	return context.WithValue(ctx, batchClaimKey{}, c)
}

// BatchClaimFrom returns the claim WithBatchClaim put in ctx.
func BatchClaimFrom(ctx context.Context) (BatchClaim, bool) {
	c, ok := ctx.Value(batchClaimKey{}).(BatchClaim)
	return c, ok
}
