package rating

import (
	"fmt"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

// TallyKey says which measures are summed together before pricing: one pricing of one rule of
// one policy version, in one unit, in one caller-defined part (e.g. usage of the period versus
// late usage, or inside versus outside a discount's window).
type TallyKey struct {
	Pricing *Pricing
	Unit    string
	Rule    string // rule type or meter name: included quantities are keyed by it
	Policy  *Policy
	Part    string
}

// Group is the period's total of one TallyKey.
type Group struct {
	TallyKey
	Label       string
	Granularity string
	Quantity    decimal.Decimal
	Start, End  time.Time // the earliest start and latest end of the pieces summed
	Seconds     int64     // the seconds of the pieces summed
	Pieces      int
	// Shares is the part of Quantity added under each non-empty tag (see AddTagged), e.g. the
	// quantity inside a discount's window.
	Shares map[string]decimal.Decimal
	// num / div is the part of Quantity not divided yet: numerators of one divisor are summed
	// exactly and divided once.
	num, div decimal.Decimal
}

// flush divides the pending numerator into Quantity.
func (g *Group) flush() error {
	if g.num.IsZero() {
		return nil
	}
	q, err := g.num.Quo(g.div)
	if err == nil {
		g.Quantity, err = g.Quantity.Add(q)
	}
	if err != nil {
		return fmt.Errorf("%s: total quantity: %w", g.Label, err)
	}
	g.num = decimal.Zero
	return nil
}

// Tally sums the measures of one customer's period per TallyKey, for pricings that price the
// total: graduated, volume and package tiers apply to the total, not to each piece.
type Tally struct {
	idx    map[TallyKey]int
	groups []*Group
}

// Add adds one measure of a piece of usage over r.
func (t *Tally) Add(k TallyKey, m *Measure, r interval.Range) error { return t.AddTagged(k, m, r, "") }

// AddTagged adds one measure and, under a non-empty tag, records its quantity in the group's
// Shares, so that a caller can tell which share of a total a discount covers without splitting
// the total (tiers apply to the whole).
func (t *Tally) AddTagged(k TallyKey, m *Measure, r interval.Range, tag string) error {
	if t.idx == nil {
		t.idx = map[TallyKey]int{}
	}
	i, ok := t.idx[k]
	if !ok {
		i = len(t.groups)
		t.idx[k] = i
		t.groups = append(t.groups, &Group{TallyKey: k, Label: m.Label, Granularity: m.Granularity, Quantity: decimal.Zero, Start: r.Start, End: r.End, div: m.Div})
	}
	g := t.groups[i]
	if m.Div != g.div {
		if err := g.flush(); err != nil {
			return err
		}
		g.div = m.Div
	}
	sum, err := g.num.Add(m.Num)
	if err != nil { // too many digits for one numerator: divide what is pending first
		if err := g.flush(); err != nil {
			return err
		}
		sum = m.Num
	}
	g.num = sum
	if tag != "" {
		q, err := m.Quantity()
		if err != nil {
			return err
		}
		if g.Shares == nil {
			g.Shares = map[string]decimal.Decimal{}
		}
		if g.Shares[tag], err = g.Shares[tag].Add(q); err != nil {
			return fmt.Errorf("%s: share: %w", m.Label, err)
		}
	}
	if r.Start.Before(g.Start) {
		g.Start = r.Start
	}
	if r.End.After(g.End) {
		g.End = r.End
	}
	g.Seconds += r.Seconds()
	g.Pieces++
	return nil
}

// Len is the number of groups.
func (t *Tally) Len() int { return len(t.groups) }

// Priced is a group with its charges.
type Priced struct {
	Group   *Group
	Charges []Charge
}

// Price prices every group once. included returns, for a group, the pool its free quantity is
// drawn from and the pool's size; groups of one pool draw from it in the order they were first
// added, so a free quantity is given once however many pricings share it. An empty pool means
// nothing is included.
func (t *Tally) Price(included func(g *Group) (pool string, amount decimal.Decimal)) ([]Priced, error) {
	left := map[string]decimal.Decimal{}
	out := make([]Priced, 0, len(t.groups))
	for _, g := range t.groups {
		if err := g.flush(); err != nil {
			return nil, err
		}
		free := decimal.Zero
		if included != nil {
			if pool, amount := included(g); pool != "" {
				rest, seen := left[pool]
				if !seen {
					rest = amount
				}
				free = rest.Min(g.Quantity)
				if free.IsNeg() {
					free = decimal.Zero
				}
				left[pool], _ = rest.Sub(free)
			}
		}
		chs, err := g.Pricing.Total(g.Quantity, free, g.Unit, g.Label)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Label, err)
		}
		for i := range chs {
			chs[i].Granularity = g.Granularity
		}
		out = append(out, Priced{Group: g, Charges: chs})
	}
	return out, nil
}
