// Package interval holds half-open time ranges [Start, End) in whole UTC seconds and the set
// operations billing needs on them: intersection, union, difference and splitting at boundaries.
//
// Invariants:
//   - every Range is normalised to UTC and truncated to whole seconds;
//   - a Range with End <= Start is empty and is dropped by every set operation;
//   - a Set is sorted by Start, its ranges never overlap and never touch (touching ranges merge).
package interval

import (
	"fmt"
	"sort"
	"time"
)

// Forever is the End of a range that has not ended yet (an open trigger record or subscription).
// It is far enough in the future for any billing arithmetic and still fits a Unix second in int64.
var Forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Range is the half-open interval [Start, End).
type Range struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// New returns [start, end) normalised to UTC whole seconds. A zero end means Forever.
func New(start, end time.Time) Range {
	if end.IsZero() {
		end = Forever
	}
	return Range{Start: Norm(start), End: Norm(end)}
}

// Norm returns t in UTC truncated to the whole second.
func Norm(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Empty reports whether the range holds no second.
func (r Range) Empty() bool { return !r.End.After(r.Start) }

// Open reports whether the range has no known end.
func (r Range) Open() bool { return !r.End.Before(Forever) }

// Seconds returns the number of whole seconds in the range (0 when empty).
func (r Range) Seconds() int64 {
	if r.Empty() {
		return 0
	}
	return r.End.Unix() - r.Start.Unix()
}

// Contains reports whether t lies in [Start, End).
func (r Range) Contains(t time.Time) bool { return !t.Before(r.Start) && t.Before(r.End) }

// Overlaps reports whether r and o share at least one second.
func (r Range) Overlaps(o Range) bool { return r.Start.Before(o.End) && o.Start.Before(r.End) }

// Intersect returns r ∩ o, possibly empty.
func (r Range) Intersect(o Range) Range {
	s, e := r.Start, r.End
	if o.Start.After(s) {
		s = o.Start
	}
	if o.End.Before(e) {
		e = o.End
	}
	return Range{Start: s, End: e}
}

// SplitAt cuts r at every boundary that falls strictly inside it and returns the pieces in order.
// Boundaries need not be sorted or unique.
func (r Range) SplitAt(bounds ...time.Time) []Range {
	if r.Empty() {
		return nil
	}
	inside := make([]time.Time, 0, len(bounds))
	for _, b := range bounds {
		if b.After(r.Start) && b.Before(r.End) {
			inside = append(inside, b)
		}
	}
	sort.Slice(inside, func(i, j int) bool { return inside[i].Before(inside[j]) })
	out := make([]Range, 0, len(inside)+1)
	start := r.Start
	for _, b := range inside {
		if b.Equal(start) {
			continue
		}
		out = append(out, Range{Start: start, End: b})
		start = b
	}
	return append(out, Range{Start: start, End: r.End})
}

// String formats the range as [start, end) in RFC 3339; an open end prints as "open".
func (r Range) String() string {
	end := r.End.Format(time.RFC3339)
	if r.Open() {
		end = "open"
	}
	return fmt.Sprintf("[%s, %s)", r.Start.Format(time.RFC3339), end)
}

// Set is a sorted list of disjoint, non-touching ranges.
type Set []Range

// NewSet builds a normalised Set from ranges in any order, merging overlapping and touching ones.
func NewSet(rs ...Range) Set {
	in := make([]Range, 0, len(rs))
	for _, r := range rs {
		if !r.Empty() {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return nil
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Start.Before(in[j].Start) })
	out := Set{in[0]}
	for _, r := range in[1:] {
		last := &out[len(out)-1]
		if !r.Start.After(last.End) {
			if r.End.After(last.End) {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Seconds returns the total number of seconds in the set.
func (s Set) Seconds() int64 {
	var n int64
	for _, r := range s {
		n += r.Seconds()
	}
	return n
}

// Union returns s ∪ o.
func (s Set) Union(o Set) Set {
	return NewSet(append(append(make([]Range, 0, len(s)+len(o)), s...), o...)...)
}

// IntersectRange returns s ∩ r.
func (s Set) IntersectRange(r Range) Set {
	var out Set
	for _, x := range s {
		if y := x.Intersect(r); !y.Empty() {
			out = append(out, y)
		}
	}
	return out
}

// Intersect returns s ∩ o.
func (s Set) Intersect(o Set) Set {
	var out Set
	i, j := 0, 0
	for i < len(s) && j < len(o) {
		if y := s[i].Intersect(o[j]); !y.Empty() {
			out = append(out, y)
		}
		if s[i].End.Before(o[j].End) {
			i++
		} else {
			j++
		}
	}
	return out
}

// Subtract returns s − o.
func (s Set) Subtract(o Set) Set {
	var out Set
	j := 0
	for _, r := range s {
		cur := r
		for j < len(o) && !o[j].End.After(cur.Start) {
			j++
		}
		k := j
		for k < len(o) && o[k].Start.Before(cur.End) {
			if o[k].Start.After(cur.Start) {
				out = append(out, Range{Start: cur.Start, End: o[k].Start})
			}
			if o[k].End.After(cur.Start) {
				cur.Start = o[k].End
			}
			if !cur.End.After(cur.Start) {
				break
			}
			k++
		}
		if cur.End.After(cur.Start) {
			out = append(out, cur)
		}
	}
	return out
}

// Earlier returns the earlier of two times.
func Earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Later returns the later of two times.
func Later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
