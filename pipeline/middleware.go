package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Middleware wraps a named handler.
type Middleware func(name string, next Handler) Handler

// wrapped keeps the inner handler reachable for Starter and Finisher; around, when set, wraps
// Start and Finish as the middleware wraps Handle.
type wrapped struct {
	Handler
	inner  Handler
	around func(phase string, fn func() error) error
}

func (w wrapped) call(phase string, fn func() error) error {
	if w.around == nil {
		return fn()
	}
	return w.around(phase, fn)
}

func (w wrapped) Start(ctx context.Context, r *Run) error {
	if s, ok := w.inner.(Starter); ok {
		return w.call("start", func() error { return s.Start(ctx, r) })
	}
	return nil
}

func (w wrapped) Finish(ctx context.Context, r *Run) error {
	if f, ok := w.inner.(Finisher); ok {
		return w.call("finish", func() error { return f.Finish(ctx, r) })
	}
	return nil
}

// Recover turns a panic in a handler (in Handle, Start or Finish) into an error naming it, so no
// panic reaches the user.
func Recover(name string, next Handler) Handler {
	return wrapped{inner: next, Handler: HandlerFunc(func(ctx context.Context, b *Batch) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler %s panicked on batch %d: %v\n%s", name, b.Index, p, debug.Stack())
			}
		}()
		return next.Handle(ctx, b)
	}), around: func(phase string, fn func() error) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler %s panicked in %s: %v\n%s", name, phase, p, debug.Stack())
			}
		}()
		return fn()
	}}
}

// Timing adds each handler's time to the run's statistics (Handle's; Start and Finish are
// wrapped in the same way so that a middleware outside it sees them).
func Timing(name string, next Handler) Handler {
	return wrapped{inner: next, Handler: HandlerFunc(func(ctx context.Context, b *Batch) error {
		t := time.Now()
		err := next.Handle(ctx, b)
		if b.Run.Stats != nil {
			b.Run.Stats.AddHandlerTime(name, time.Since(t))
		}
		return err
	})}
}

// DefaultMiddleware is applied to every chain the CLI builds: Recover outermost, then Timing.
var DefaultMiddleware = []Middleware{Recover, Timing}
