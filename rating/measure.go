package rating

import (
	"fmt"

	"github.com/govalues/decimal"
)

var (
	one            = decimal.MustNew(1, 0)
	secondsPerHour = decimal.MustNew(3600, 0)
	bytesPerGiB    = decimal.MustNew(1<<30, 0)
	// secondsPerHourGiB turns byte-seconds into GiB-hours.
	secondsPerHourGiB = decimal.MustNew(3600<<30, 0)
)

// Measure is what one piece of usage counts for under one pricing: Num / Div units, e.g.
// GB-seconds / 3600 = GB-hours. Keeping the numerator exact and dividing once keeps the amount
// exact to 19 digits whatever the seconds.
type Measure struct {
	Pricing *Pricing
	// Label names the pricing, e.g. "Server m1.small" or "Volume storage ssd": the heading of a
	// period total's lines.
	Label string
	// Description names the piece, e.g. "Volume 20 GB ssd": the description of a per-piece line.
	Description string
	Unit        string // e.g. hour, GB-hour, GB
	Num, Div    decimal.Decimal
	// Granularity is how the piece's seconds were counted (second, minute, hour, day); empty for
	// a meter.
	Granularity string
	// BilledSeconds are the seconds after granularity (0 for a meter).
	BilledSeconds int64
}

// Quantity returns Num / Div.
func (m *Measure) Quantity() (decimal.Decimal, error) {
	q, err := m.Num.Quo(m.Div)
	if err != nil {
		return decimal.Zero, fmt.Errorf("quantity: %w", err)
	}
	return q, nil
}

// display returns Num / Div rounded half-even to 6 decimals, in integer arithmetic when both are
// whole numbers small enough (the usual case: GB × seconds / 3600), else by decimal division.
func (m *Measure) display() (decimal.Decimal, error) {
	const scale = 1_000_000
	n, nf, okn := m.Num.Int64(0)
	d, df, okd := m.Div.Int64(0)
	if okn && okd && m.Num.IsInt() && m.Div.IsInt() && nf == 0 && df == 0 && n >= 0 && n <= 1e12 && d > 0 {
		q, r := n*scale/d, n*scale%d
		if 2*r > d || (2*r == d && q%2 == 1) {
			q++
		}
		return decimal.MustNew(q, 6).Trim(0), nil
	}
	q, err := m.Quantity()
	if err != nil {
		return decimal.Zero, err
	}
	return display(q), nil
}

// Charge prices a per-piece (flat) measure: amount = price × Num / Div, with one division.
func (m *Measure) Charge() (Charge, error) {
	p := m.Pricing
	if p.Model != Flat {
		return Charge{}, fmt.Errorf("pricing model %s prices the period's total, not one piece", p.Model)
	}
	num, err := p.Price.Mul(m.Num)
	if err != nil {
		return Charge{}, fmt.Errorf("amount: %w", err)
	}
	amount, err := num.Quo(m.Div)
	if err != nil {
		return Charge{}, fmt.Errorf("amount: %w", err)
	}
	q, err := m.display()
	if err != nil {
		return Charge{}, err
	}
	ch := Charge{Description: m.Description, Quantity: q, Unit: m.Unit, UnitPrice: p.Price.Decimal, Amount: amount, Granularity: m.Granularity}
	p.minimum(&ch)
	return ch, nil
}

// timed measures size × seconds (after granularity) in units of div seconds, e.g. GB × s / 3600
// = GB-hours.
func timed(p *Pricing, g Granularity, size, div decimal.Decimal, secs int64, unit, label, desc string) (Measure, error) {
	billed := g.Billed(secs)
	num, err := size.Mul(decimal.MustNew(billed, 0))
	if err != nil {
		return Measure{}, fmt.Errorf("quantity: %w", err)
	}
	return Measure{Pricing: p, Label: label, Description: desc, Unit: unit, Num: num, Div: div, Granularity: g.String(), BilledSeconds: billed}, nil
}

// attrDecimal reads a non-negative numeric attribute.
func attrDecimal(u Usage, name string) (decimal.Decimal, error) {
	v, ok := u.Attributes[name]
	if !ok || v == "" {
		return decimal.Zero, fmt.Errorf("%s %s: attribute %q is missing", u.ResourceType, u.ResourceID, name)
	}
	d, err := decimal.Parse(v)
	if err != nil || d.IsNeg() {
		return decimal.Zero, fmt.Errorf("%s %s: attribute %s=%q: want a non-negative number", u.ResourceType, u.ResourceID, name, v)
	}
	return d, nil
}
