package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

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
}

// Execute builds the chain for the mode from env.Config, runs it over the customers and, for
// runs that store invoices, records the run in the store. The returned Run carries the stats even
// when an error is returned.
func Execute(ctx context.Context, env Env, o Options) (*Run, error) {
	cfg := env.Config
	steps := cfg.Pipeline.Scheduled
	if o.Mode == Interim {
		steps = cfg.Pipeline.Interim
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
	stored := o.Mode != Interim
	if stored {
		if err := env.Store.StartRun(ctx, store.Run{ID: run.ID, Mode: string(o.Mode), Period: o.Period, StartedAt: run.Now, Status: "running"}); err != nil {
			return run, fmt.Errorf("record run: %w", err)
		}
	}
	eng := &Engine{Chain: chain, BatchSize: cfg.Pipeline.BatchSize, Workers: cfg.Pipeline.Workers, Progress: o.Progress, OnItem: o.OnItem}
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

func chainName(m Mode) string {
	if m == Interim {
		return "interim"
	}
	return "scheduled"
}

func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
