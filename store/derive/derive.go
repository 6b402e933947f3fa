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
func Spans(evs []Event) []Span {
	var out []Span
	var cur *Span
	closed := false
	for _, e := range evs {
		switch e.Action {
		case notification.Open, notification.Change:
			if cur == nil {
				if e.Action == notification.Change && closed {
					continue
				}
				cur = &Span{Start: e.At, Attrs: e.Attrs}
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
				continue
			}
			if e.At > cur.Start {
				cur.End = e.At
				out = append(out, *cur)
			}
			cur = nil
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
