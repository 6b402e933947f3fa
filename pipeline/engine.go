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

// Execute runs the chain for the customers and fills run.Stats. It returns the first
// infrastructure error; per-customer failures are in the statistics.
func (e *Engine) Execute(ctx context.Context, run *Run, customerIDs []string) error {
	if run.Stats == nil {
		run.Stats = NewStats()
	}
	run.Stats.StartedAt = time.Now()
	defer func() { run.Stats.FinishedAt = time.Now() }()
	size, workers := e.BatchSize, e.Workers
	if size < 1 {
		size = 500
	}
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
	batches := make(chan *Batch)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				err := e.process(ctx, b)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if err == nil {
					for _, it := range b.Items {
						run.Stats.record(it)
						if e.OnItem != nil {
							e.OnItem(it)
						}
					}
					done += len(b.Items)
					if e.Progress != nil {
						e.Progress(done, len(customerIDs))
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := 0; i*size < len(customerIDs); i++ {
		end := min((i+1)*size, len(customerIDs))
		b := &Batch{Run: run, Index: i}
		for _, id := range customerIDs[i*size : end] {
			b.Items = append(b.Items, &Item{CustomerID: id})
		}
		select {
		case batches <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(batches)
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
