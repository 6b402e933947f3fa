package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store"
)

// Options describe one run.
type Options struct {
	Mode Mode
	// Period is the billing period. For an interim run it is the month containing Until.
	Period interval.Range
	// Until is where usage stops being priced (Period.End unless interim).
	Until time.Time
	// CustomerIDs limits the run; nil means every active customer.
	CustomerIDs []string
	// Replacing is the invoice a regenerate run re-prices.
	Replacing *invoice.Invoice
	// Now is the run's clock; zero means time.Now().
	Now      time.Time
	Progress func(done, total int)
	OnItem   func(*Item)
	// Local keeps a scheduled run of every customer to this process: it is not shared through
	// the store with other workers.
	Local bool
	// StaleAfter is how old the heartbeat of a claimed batch of a shared run must be before
	// another worker takes it over. Zero means DefaultStaleAfter.
	StaleAfter time.Duration
	// Worker names this process's workers in the store (hostname:pid by default).
	Worker string
}

// DefaultStaleAfter is how long a shared run waits for the heartbeat of a claimed batch before
// another worker takes the batch over.
const DefaultStaleAfter = time.Minute

// Execute builds the chain for the mode from env.Config, runs it over the customers and, for
// runs that store invoices, records the run in the store. The returned Run carries the stats even
// when an error is returned.
func Execute(ctx context.Context, env Env, o Options) (*Run, error) {
	cfg := env.Config
	steps := cfg.Pipeline.Scheduled
	switch o.Mode {
	case Interim:
		steps = cfg.Pipeline.Interim
	case Verify:
		steps = untilFinalizing(steps)
	}
	chain, err := Build(env, string(chainName(o.Mode)), steps, DefaultMiddleware...)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	until := o.Until
	if until.IsZero() {
		until = o.Period.End
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	run := &Run{ID: newRunID(now), Mode: o.Mode, Period: o.Period, Until: interval.Norm(until), Now: interval.Norm(now), Replacing: o.Replacing, Log: log, Stats: NewStats()}
	ids := o.CustomerIDs
	if ids == nil {
		if ids, err = env.Store.CustomerIDs(ctx, store.CustomerFilter{}); err != nil {
			return run, fmt.Errorf("list customers: %w", err)
		}
	}
	eng := &Engine{Chain: chain, BatchSize: cfg.Pipeline.BatchSize, Workers: cfg.Pipeline.Workers, Progress: o.Progress, OnItem: o.OnItem}
	// A scheduled run of every customer is shared through the store when it can: every process
	// started for the same mode and period joins it and claims batches.
	if o.Mode == Scheduled && o.CustomerIDs == nil && !o.Local {
		return executeShared(ctx, env.Store, eng, run, ids, o, log)
	}
	stored := o.Mode != Interim && o.Mode != Verify
	if stored {
		if err := env.Store.StartRun(ctx, store.Run{ID: run.ID, Mode: string(o.Mode), Period: o.Period, StartedAt: run.Now, Status: "running"}); err != nil {
			return run, fmt.Errorf("record run: %w", err)
		}
	}
	log.Info("run started", "run", run.ID, "mode", o.Mode, "period", o.Period.String(), "customers", len(ids))
	runErr := eng.Execute(ctx, run, ids)
	if stored {
		status := "done"
		if runErr != nil {
			status = "failed"
		}
		summary, _ := json.Marshal(map[string]any{"customers": run.Stats.Customers, "invoices": run.Stats.Invoices, "skipped": run.Stats.Skipped, "failed": run.Stats.Failed, "spans": run.Stats.Spans})
		if err := env.Store.FinishRun(context.WithoutCancel(ctx), run.ID, status, string(summary)); err != nil && runErr == nil {
			runErr = fmt.Errorf("record run: %w", err)
		}
	}
	log.Info("run finished", "run", run.ID, "invoices", run.Stats.Invoices, "skipped", run.Stats.Skipped, "failed", run.Stats.Failed, "took", run.Stats.FinishedAt.Sub(run.Stats.StartedAt).Round(time.Millisecond))
	return run, runErr
}

// SharedRunKey identifies a shared run: its mode and period. Processes that start the same run
// find each other through it.
func SharedRunKey(mode Mode, period interval.Range) string {
	return string(mode) + " " + period.String()
}

// executeShared runs the chain over the batches of the shared run with the run's key, creating
// it (split into batches of the configured size) when no open run has the key. Each worker
// claims a batch, heartbeats it while the chain works on it and marks it done; a batch whose
// heartbeat went stale is taken over. The call returns when no batch is left open, so a process
// that joins late waits for, and if need be takes over, the batches of the others. The store
// marks the run done when its last batch is done.
func executeShared(ctx context.Context, st store.Batches, eng *Engine, run *Run, ids []string, o Options, log *slog.Logger) (*Run, error) {
	key := SharedRunKey(o.Mode, o.Period)
	sr, created, err := st.OpenSharedRun(ctx, key, store.Run{ID: run.ID, Mode: string(o.Mode), Period: o.Period, StartedAt: run.Now}, ids, eng.BatchSize)
	if err != nil {
		return run, fmt.Errorf("record run: %w", err)
	}
	run.ID = sr.ID
	stale := o.StaleAfter
	if stale <= 0 {
		stale = DefaultStaleAfter
	}
	worker := o.Worker
	if worker == "" {
		host, _ := os.Hostname()
		worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	src := &sharedSource{st: st, runID: sr.ID, worker: worker, stale: stale, log: log, total: len(ids)}
	if created {
		log.Info("run started", "run", run.ID, "mode", o.Mode, "period", o.Period.String(), "customers", len(ids), "worker", worker)
	} else {
		log.Info("run joined", "run", run.ID, "mode", o.Mode, "period", o.Period.String(), "worker", worker)
	}
	runErr := eng.ExecuteFrom(ctx, run, src)
	log.Info("run finished", "run", run.ID, "invoices", run.Stats.Invoices, "skipped", run.Stats.Skipped, "failed", run.Stats.Failed,
		"batches", src.claimed.Load(), "taken_over", src.takenOver.Load(), "took", run.Stats.FinishedAt.Sub(run.Stats.StartedAt).Round(time.Millisecond))
	return run, runErr
}

// sharedSource hands out the batches of a shared run claimed from the store.
type sharedSource struct {
	st     store.Batches
	runID  string
	worker string
	stale  time.Duration
	log    *slog.Logger
	total  int

	claimed, takenOver atomic.Int64
	// busy counts this process's workers that hold a batch.
	busy atomic.Int64
}

func (s *sharedSource) Total() int { return s.total }

// Next claims a batch for worker w; while batches are claimed by others it polls, so that a
// batch whose worker died is taken over once its heartbeat is stale.
func (s *sharedSource) Next(ctx context.Context, w int) (*Claim, error) {
	name := fmt.Sprintf("%s/%d", s.worker, w)
	poll := min(max(s.stale/4, 50*time.Millisecond), 5*time.Second)
	for {
		b, wait, err := s.st.ClaimBatch(ctx, s.runID, name, s.stale)
		if err != nil {
			return nil, err
		}
		if b != nil {
			return s.claim(ctx, b), nil
		}
		// Nothing to claim now. While another of this process's workers still works, this one
		// may stop: that worker asks again when it is done. The last one waits for the batches
		// other processes hold, to take them over if their heartbeats go stale.
		if !wait || s.busy.Load() > 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(poll):
		}
	}
}

// claim starts the heartbeat of a claimed batch and returns it to the engine.
func (s *sharedSource) claim(ctx context.Context, b *store.Batch) *Claim {
	s.claimed.Add(1)
	s.busy.Add(1)
	if b.Attempts > 1 {
		s.takenOver.Add(1)
		s.log.Warn("batch taken over", "run", s.runID, "batch", b.N, "attempt", b.Attempts, "worker", b.Worker)
	}
	bctx, cancel := context.WithCancelCause(store.WithBatchClaim(ctx, store.BatchClaim{RunID: s.runID, N: b.N, Worker: b.Worker}))
	stop := make(chan struct{})
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		t := time.NewTicker(max(s.stale/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				err := s.st.Heartbeat(context.WithoutCancel(ctx), s.runID, b.N, b.Worker)
				if errors.Is(err, store.ErrLostClaim) {
					s.log.Warn("batch claim lost: another worker took it over", "run", s.runID, "batch", b.N, "worker", b.Worker)
					cancel(err)
					return
				}
				if err != nil {
					s.log.Warn("heartbeat failed", "run", s.runID, "batch", b.N, "err", err)
				}
			}
		}
	}()
	return &Claim{
		Index:       b.N,
		CustomerIDs: b.CustomerIDs,
		Context:     bctx,
		Finish: func(batch *Batch, err error) (bool, error) {
			defer s.busy.Add(-1)
			close(stop)
			<-beat
			// Lost when the heartbeat found the batch taken over, or when the store refused to
			// finalize under a claim that is no longer ours.
			lost := errors.Is(context.Cause(bctx), store.ErrLostClaim) || errors.Is(err, store.ErrLostClaim)
			cancel(nil)
			bg := context.WithoutCancel(ctx)
			if err != nil {
				if lost {
					s.log.Warn("batch claim lost: another worker finishes it", "run", s.runID, "batch", b.N, "worker", b.Worker)
					return false, nil // the worker that took it over finishes it
				}
				if rerr := s.st.ReleaseBatch(bg, s.runID, b.N, b.Worker); rerr != nil {
					s.log.Warn("release batch", "run", s.runID, "batch", b.N, "err", rerr)
				}
				return false, err
			}
			var res store.BatchResult
			for _, it := range batch.Items {
				switch {
				case it.Err != nil:
					res.Failed++
				case it.Skip != "":
					res.Skipped++
				case it.Invoice != nil:
					res.Invoices++
				}
			}
			if ferr := s.st.FinishBatch(bg, s.runID, b.N, b.Worker, res); ferr != nil && !errors.Is(ferr, store.ErrLostClaim) {
				return true, ferr
			}
			return true, nil
		},
	}
}

// untilFinalizing is the part of a scheduled chain before its finalizing step: what prices.
func untilFinalizing(steps []config.Step) []config.Step {
	for i, s := range steps {
		if s.Name == "finalizing" {
			return steps[:i]
		}
	}
	return steps
}

func chainName(m Mode) string {
	if m == Interim {
		return InterimChain
	}
	return ScheduledChain
}

func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
