// Package derive turns the stored notification events of one resource into its trigger records
// (spans). Both store backends derive records this way, so the embedded store and PostgreSQL
// agree span for span on the same events.
package derive

import "github.com/bilean/bilean/ceilometer/notification"

// Event is a stored event as the derivation needs it.
type Event struct {
	Seq      int64 // arrival order
	Customer string
	Resource string
	Type     string
	Action   notification.Action
	At       int64 // Unix seconds
	Attrs    map[string]string
}

// Less orders events as they are applied: by customer and resource, then their own time, then
// open before change before close, then arrival.
func Less(a, b Event) bool {
	if a.Customer != b.Customer {
		return a.Customer < b.Customer
	}
	if a.Resource != b.Resource {
		return a.Resource < b.Resource
	}
	if a.At != b.At {
		return a.At < b.At
	}
	if ra, rb := a.Action.Rank(), b.Action.Rank(); ra != rb {
		return ra < rb
	}
	return a.Seq < b.Seq
}

// Span is one derived trigger record.
type Span struct {
	Start, End int64 // Unix seconds; End 0: open
	Attrs      map[string]string
}

// Spans turns one resource's events, ordered by Less, into its records: an open starts a span, a
// change with different attributes ends it and starts the next (same second: replaces it), a
// close ends it. A change before any open opens (the resource predates the events); a change
// after a close is ignored; an open after a close starts a new life. Zero-length spans vanish.
//
// Times come from two clocks: an open is stamped from its payload (launched_at, on the compute
// host), a change from the envelope (the host that sent it), so a change can carry a second
// before the open of its own life. Causality settles it, since nothing of a life precedes its
// birth:
//   - a change stamped before the open of its life takes effect at the open's second: the life
//     starts there with the open's attributes updated by those changes, and the open never
//     re-applies its older attributes over them;
//   - a second open in a life (the legacy and the versioned create of one server) only adds the
//     attributes the span lacks, and never undoes a change;
//   - a close stamped before the resource's first open ends that open's life at once: nothing
//     is billed, rather than a span that never ends.
func Spans(evs []Event) []Span {
	var out []Span
	var cur *Span
	closed := false
	opened := false     // an open began the current life
	lifeStart := 0      // out[lifeStart:] are the spans of the current life
	everOpened := false // an open was seen at all
	earlyClose := false // a close came before any open: it ends the first life
	for _, e := range evs {
		switch e.Action {
		case notification.Open:
			everOpened = true
			switch {
			case earlyClose && cur == nil:
				// The close of this life was stamped before its birth (skew): zero seconds.
				earlyClose = false
				continue
			case cur == nil:
				cur = &Span{Start: e.At, Attrs: e.Attrs}
				lifeStart, opened = len(out), true
				continue
			case !opened:
				// Changes stamped before this open belong to its life (skew): the life starts at
				// the open, with its attributes updated by them.
				cur = &Span{Start: e.At, Attrs: mergeAttrs(e.Attrs, cur.Attrs)}
				out, opened = out[:lifeStart], true
				continue
			}
			// A second open in the life: fill what the span lacks, in place.
			for k, v := range e.Attrs {
				if _, ok := cur.Attrs[k]; !ok {
					cur.Attrs = mergeAttrs(cur.Attrs, map[string]string{k: v})
				}
			}
		case notification.Change:
			if cur == nil {
				if closed {
					continue
				}
				cur = &Span{Start: e.At, Attrs: e.Attrs}
				lifeStart = len(out)
				continue
			}
			next := mergeAttrs(cur.Attrs, e.Attrs)
			if equalAttrs(next, cur.Attrs) {
				continue
			}
			if e.At == cur.Start {
				cur.Attrs = next
				continue
			}
			cur.End = e.At
			out = append(out, *cur)
			cur = &Span{Start: e.At, Attrs: next}
		case notification.Close:
			closed = true
			if cur == nil {
				if !everOpened {
					earlyClose = true
				}
				continue
			}
			if e.At > cur.Start {
				cur.End = e.At
				out = append(out, *cur)
			}
			cur, opened = nil, false
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// mergeAttrs returns old updated by upd; old itself when upd is empty.
func mergeAttrs(old, upd map[string]string) map[string]string {
	if len(upd) == 0 {
		return old
	}
	m := make(map[string]string, len(old)+len(upd))
	for k, v := range old {
		m[k] = v
	}
	for k, v := range upd {
		m[k] = v
	}
	return m
}

func equalAttrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
