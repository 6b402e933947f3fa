package calc

import (
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// RangeKey names one resource's billed ranges of one kind.
type RangeKey struct {
	ResourceID string
	Kind       invoice.RangeKind
}

// RangeIndex holds an invoice's billed ranges by resource and kind, so that a regenerate run
// prices exactly them without rescanning the invoice for every resource. Nil when not replacing.
type RangeIndex map[RangeKey]interval.Set

// IndexRanges indexes an invoice's billed ranges; nil for nil.
func IndexRanges(inv *invoice.Invoice) RangeIndex {
	if inv == nil {
		return nil
	}
	grouped := map[RangeKey][]interval.Range{}
	for _, br := range inv.Ranges {
		k := RangeKey{br.ResourceID, br.Kind}
		grouped[k] = append(grouped[k], br.Range)
	}
	idx := make(RangeIndex, len(grouped))
	for k, rs := range grouped {
		idx[k] = interval.NewSet(rs...)
	}
	return idx
}

// SubscriptionBounds returns every subscription edge, where a piece of usage must be cut.
func SubscriptionBounds(subs []billing.Subscription) []time.Time {
	out := make([]time.Time, 0, 2*len(subs))
	for _, s := range subs {
		r := s.Range()
		out = append(out, r.Start, r.End)
	}
	return out
}
