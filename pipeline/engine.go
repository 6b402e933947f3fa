package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Engine runs a chain over customers in batches.
type Engine struct {
	Chain     *Chain
	BatchSize int
	Workers   int
	// Progress, when set, is called after each batch with the customers done so far.
	Progress func(done, total int)
	// OnItem, when set, is called for each finished item (serially).
	OnItem func(*Item)
}

// Claim is one batch of customers handed to a worker by a Source.
type Claim struct {
	Index       int
	CustomerIDs []string
	// Context, when set, is the context the batch is processed under (a shared run cancels it
	// when the claim is lost to another worker).
	Context context.Context
	// Finish, when set, is called with the processed batch and the error processing returned.
	// It reports whether the batch's items count for this process's statistics, and the error
	// that stops the run (nil to go on).
	Finish func(b *Batch, err error) (keep bool, _ error)
}

// Source hands batches to the engine's workers: a slice of customer ids in one process, or the
// batches of a run shared through the store by several processes.
type Source interface {
	// Next returns the next batch for the worker, or nil when nothing is left for it.
	Next(ctx context.Context, worker int) (*Claim, error)
	// Total is the number of customers of the whole run, for progress reports.
	Total() int
}

// sliceSource cuts a list of customers into batches of size.
type sliceSource struct {
	mu   sync.Mutex
	ids  []string
	size int
	next int
}

func (s *sliceSource) Next(ctx context.Context, _ int) (*Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.next * s.size
	if start >= len(s.ids) {
		return nil, nil
	}
	c := &Claim{Index: s.next, CustomerIDs: s.ids[start:min(start+s.size, len(s.ids))]}
	s.next++
	return c, nil
}

func (s *sliceSource) Total() int { return len(s.ids) }

// Execute runs the chain for the customers and fills run.Stats. It returns the first
// infrastructure error; per-customer failures are in the statistics.
func (e *Engine) Execute(ctx context.Context, run *Run, customerIDs []string) error {
	size := e.BatchSize
	if size < 1 {
		size = 500
	}
	return e.ExecuteFrom(ctx, run, &sliceSource{ids: customerIDs, size: size})
}

// ExecuteFrom runs the chain over the batches src hands out, with e.Workers workers each asking
// src for its next batch, and fills run.Stats. It returns the first infrastructure error;
// per-customer failures are in the statistics.
func (e *Engine) ExecuteFrom(ctx context.Context, run *Run, src Source) error {
	if run.Stats == nil {
		run.Stats = NewStats()
	}
	run.Stats.StartedAt = time.Now()
	defer func() { run.Stats.FinishedAt = time.Now() }()
	workers := e.Workers
	if workers < 1 {
		workers = 1
	}
	for _, s := range e.Chain.Steps {
		if st, ok := s.Handler.(Starter); ok {
			if err := st.Start(ctx, run); err != nil {
				return fmt.Errorf("start %s: %w", s.Name, err)
			}
		}
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     int
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := src.Next(ctx, w)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				if c == nil {
					return
				}
				b := &Batch{Run: run, Index: c.Index}
				for _, id := range c.CustomerIDs {
					b.Items = append(b.Items, &Item{CustomerID: id})
				}
				bctx := ctx
				if c.Context != nil {
					bctx = c.Context
				}
				err = e.process(bctx, b)
				keep := err == nil
				if c.Finish != nil {
					keep, err = c.Finish(b, err)
				}
				if err != nil {
					fail(err)
					return
				}
				if !keep {
					continue
				}
				mu.Lock()
				for _, it := range b.Items {
					run.Stats.record(it)
					if e.OnItem != nil {
						e.OnItem(it)
					}
				}
				done += len(b.Items)
				if e.Progress != nil {
					e.Progress(done, src.Total())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var finishErrs []error
	for _, s := range e.Chain.Steps {
		if f, ok := s.Handler.(Finisher); ok {
			if err := f.Finish(context.WithoutCancel(ctx), run); err != nil {
				finishErrs = append(finishErrs, fmt.Errorf("finish %s: %w", s.Name, err))
			}
		}
	}
	if firstErr == nil && parent.Err() != nil {
		firstErr = fmt.Errorf("run interrupted: %w", parent.Err())
	}
	return errors.Join(append([]error{firstErr}, finishErrs...)...)
}

func (e *Engine) process(ctx context.Context, b *Batch) error {
	for _, s := range e.Chain.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.Handler.Handle(ctx, b); err != nil {
			return fmt.Errorf("batch %d: %s: %w", b.Index, s.Name, err)
		}
	}
	return nil
}
