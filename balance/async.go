package balance

import (
	"context"
	"slices"
	"sync"
)

// Refresher refreshes burn states off the listener's commit path: OnCommitted only records which
// customers changed, and one goroutine refreshes them, coalescing the customers of every batch
// committed while it was busy into its next pass. A refresh that fails is logged; the balance jobs
// find the customer stale and retry.
type Refresher struct {
	svc     *Service
	mu      sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}
}

// NewRefresher returns a Refresher over svc; call Run in a goroutine.
func NewRefresher(svc *Service) *Refresher {
	return &Refresher{svc: svc, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// OnCommitted is the listener's hook: it queues the customers and returns at once.
func (r *Refresher) OnCommitted(_ context.Context, customerIDs []string) {
	if len(customerIDs) == 0 {
		return
	}
	r.mu.Lock()
	for _, id := range customerIDs {
		r.pending[id] = struct{}{}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run refreshes queued customers until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		ids := make([]string, 0, len(r.pending))
		for id := range r.pending {
			ids = append(ids, id)
		}
		clear(r.pending)
		r.mu.Unlock()
		slices.Sort(ids)
		if _, err := r.svc.Refresh(ctx, ids, r.svc.now()); err != nil && ctx.Err() == nil {
			r.svc.Log.Warn("balance refresh after commit", "customers", len(ids), "err", err)
		}
	}
}
