package rating

import (
	"fmt"
	"strings"

	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Pricing models.
const (
	// Flat prices each piece of usage at one unit price: per hour for a floating IP (flat per unit
	// of time), per GB-hour or per GB (per unit of quantity). One line per piece of usage.
	Flat = "flat"
	// PerUnit is another name for Flat, for quantities that are not time.
	PerUnit = "per_unit"
	// Graduated prices the period's total quantity tier by tier, each tier at its own rate.
	Graduated = "graduated"
	// Volume prices the whole period's quantity at the rate of the tier the total reaches.
	Volume = "volume"
	// Package prices the period's total quantity per started block of Size units.
	Package = "package"
)

// Pricing is how a quantity becomes money. Wherever a rule spec takes a price it takes a pricing:
// either a plain number (a flat price) or a mapping:
//
//	"0.02"                                        # flat
//	{price: "0.02", minimum: "0.50"}              # flat with a minimum charge per line
//	{model: graduated, tiers: [{up_to: 1000, price: "0.0002"}, {price: "0.0001"}]}
//	{model: volume,    tiers: [{up_to: 1000, price: "0.0002"}, {price: "0.0001"}]}
//	{model: package, size: 100, price: "5.00"}    # 5.00 per started 100 units
//
// Tiers are ordered by up_to, which is inclusive (a total of exactly 1000 stays in the first
// tier); the last tier has no up_to. Graduated, volume and package price the total of the period
// (per customer, per rule and pricing), not each piece of usage; so does flat when the policy
// includes a free quantity of the rule.
type Pricing struct {
	Model   string
	Price   Number
	Tiers   []Tier
	Size    Number // package size
	Minimum Number // minimum charge per line; zero: none
	Line    int
	scalar  bool        // written as a plain number
	errs    []SpecError // field relative to the pricing
}

// Tier is one step of a graduated or volume pricing: quantities up to and including UpTo (the
// last tier: any quantity) at Price per unit.
type Tier struct {
	UpTo  Number
	Price Number
}

var pricingKeys = []string{"model", "price", "tiers", "size", "minimum"}

// UnmarshalYAML reads a number (flat price) or a pricing mapping; problems are kept for check.
func (p *Pricing) UnmarshalYAML(n *yaml.Node) error {
	p.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		p.Model, p.scalar = Flat, true
		return p.Price.UnmarshalYAML(n)
	case yaml.MappingNode:
	default:
		p.errs = append(p.errs, SpecError{Line: n.Line, Msg: `want a price such as "0.02" or a mapping with model, price, tiers, size, minimum`})
		return nil
	}
	for _, kv := range mappingPairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "model":
			p.Model = v.Value
			if p.Model == PerUnit {
				p.Model = Flat
			}
			switch p.Model {
			case Flat, Graduated, Volume, Package:
			default:
				p.errs = append(p.errs, SpecError{Line: v.Line, Field: "model", Msg: fmt.Sprintf("%q: want flat, per_unit, graduated, volume or package", v.Value)})
			}
		case "price":
			_ = p.Price.UnmarshalYAML(v)
		case "size":
			_ = p.Size.UnmarshalYAML(v)
		case "minimum":
			_ = p.Minimum.UnmarshalYAML(v)
		case "tiers":
			if v.Kind != yaml.SequenceNode {
				p.errs = append(p.errs, SpecError{Line: v.Line, Field: "tiers", Msg: "want a list of {up_to, price}"})
				continue
			}
			for i, tn := range v.Content {
				p.Tiers = append(p.Tiers, p.tier(tn, fmt.Sprintf("tiers[%d]", i)))
			}
		default:
			p.errs = append(p.errs, SpecError{Line: k.Line, Field: k.Value, Msg: "unknown key (allowed: " + strings.Join(pricingKeys, ", ") + ")"})
		}
	}
	if p.Model == "" {
		p.Model = Flat
	}
	return nil
}

func (p *Pricing) tier(n *yaml.Node, field string) Tier {
	var t Tier
	if n.Kind != yaml.MappingNode {
		p.errs = append(p.errs, SpecError{Line: n.Line, Field: field, Msg: "want a mapping {up_to, price}"})
		return t
	}
	for _, kv := range mappingPairs(n) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "up_to":
			_ = t.UpTo.UnmarshalYAML(v)
		case "price":
			_ = t.Price.UnmarshalYAML(v)
		default:
			p.errs = append(p.errs, SpecError{Line: k.Line, Field: field + "." + k.Value, Msg: "unknown key (allowed: up_to, price)"})
		}
	}
	if !t.Price.Set() {
		p.errs = append(p.errs, SpecError{Line: n.Line, Field: field + ".price", Msg: "required"})
	}
	return t
}

// check reports every problem of the pricing under field.
func (p *Pricing) check(c *checker, field string) {
	if p == nil {
		return
	}
	for _, e := range p.errs {
		c.add(e.Line, join(field, e.Field), "%s", e.Msg)
	}
	if p.scalar {
		p.Price.check(c, field)
	} else {
		p.Price.check(c, join(field, "price"))
	}
	p.Size.check(c, join(field, "size"))
	p.Minimum.check(c, join(field, "minimum"))
	forbid := func(set bool, line int, key string) {
		if set {
			c.add(line, join(field, key), "not used by model %s", p.Model)
		}
	}
	switch p.Model {
	case Flat:
		if !p.Price.Set() {
			c.add(p.Line, join(field, "price"), "required")
		}
		forbid(len(p.Tiers) > 0, p.Line, "tiers")
		forbid(p.Size.Set(), p.Size.Line, "size")
	case Package:
		if !p.Price.Set() {
			c.add(p.Line, join(field, "price"), "required")
		}
		if !p.Size.Set() {
			c.add(p.Line, join(field, "size"), "required: the units in one package")
		} else if p.Size.bad == "" && !p.Size.IsPos() {
			c.add(p.Size.Line, join(field, "size"), "must be above zero")
		}
		forbid(len(p.Tiers) > 0, p.Line, "tiers")
	case Graduated, Volume:
		forbid(p.Price.Set(), p.Price.Line, "price")
		forbid(p.Size.Set(), p.Size.Line, "size")
		if len(p.Tiers) == 0 {
			c.add(p.Line, join(field, "tiers"), "at least one tier is required")
		}
		prev := decimal.Zero
		for i, t := range p.Tiers {
			tf := join(field, fmt.Sprintf("tiers[%d]", i))
			t.Price.check(c, tf+".price")
			t.UpTo.check(c, tf+".up_to")
			last := i == len(p.Tiers)-1
			switch {
			case !t.UpTo.Set() && !last:
				c.add(t.Price.Line, tf+".up_to", "required: only the last tier is open")
			case t.UpTo.Set() && last:
				c.add(t.UpTo.Line, tf+".up_to", "the last tier must be open (no up_to) so that every quantity has a price")
			case t.UpTo.Set() && t.UpTo.bad == "" && t.UpTo.Cmp(prev) <= 0:
				if i == 0 {
					c.add(t.UpTo.Line, tf+".up_to", "%s must be above zero", t.UpTo.Decimal)
				} else {
					c.add(t.UpTo.Line, tf+".up_to", "%s is not above the previous tier's %s: tiers must be ordered and must not overlap", t.UpTo.Decimal, prev)
				}
			}
			if t.UpTo.Set() && t.UpTo.bad == "" && t.UpTo.Cmp(prev) > 0 {
				prev = t.UpTo.Decimal
			}
		}
	}
}

// required checks a pricing that must be given (a map value, a required key).
func required(c *checker, p *Pricing, field string) {
	if p == nil {
		c.add(0, field, "required: a price such as \"0.02\" or a pricing mapping")
		return
	}
	p.check(c, field)
}

// PerPiece reports whether the pricing prices each piece of usage on its own line (flat, no
// included quantity); otherwise the period's total is priced once (see Tally).
func (p *Pricing) PerPiece(included decimal.Decimal) bool {
	return p.Model == Flat && !included.IsPos()
}

// Charge is one priced invoice line before rounding: Quantity × UnitPrice = Amount (except for
// a minimum charge, stated in the description). Amount is exact; the invoice rounds it once.
type Charge struct {
	Description string
	Quantity    decimal.Decimal // rounded to 6 decimals for display; the amount uses the exact value
	Unit        string          // e.g. hour, GB-hour, GB, package of 100 GB
	UnitPrice   decimal.Decimal
	Amount      decimal.Decimal
	// Granularity is how time was counted (second, minute, hour, day); empty for meters.
	Granularity string
	// Minimum is set when the amount was raised to the pricing's minimum charge.
	Minimum bool
}

// minimum raises a positive charge to the pricing's minimum.
func (p *Pricing) minimum(ch *Charge) {
	if p.Minimum.IsPos() && ch.Amount.IsPos() && ch.Amount.Cmp(p.Minimum.Decimal) < 0 {
		ch.Amount = p.Minimum.Decimal
		ch.Minimum = true
		ch.Description += " (minimum charge " + p.Minimum.Decimal.String() + ")"
	}
}

// Total prices a period's total quantity q of one pricing, of which the first included units
// are free: an "included" line at zero when any, then the model's lines. Zero usage gives no
// line. Quantities are in unit; desc heads every line.
func (p *Pricing) Total(q, included decimal.Decimal, unit, desc string) ([]Charge, error) {
	if !q.IsPos() {
		return nil, nil
	}
	var out []Charge
	if included.IsPos() {
		free := q.Min(included)
		out = append(out, Charge{Description: desc + ", included in the policy", Quantity: display(free), Unit: unit, UnitPrice: decimal.Zero, Amount: decimal.Zero})
		var err error
		if q, err = q.Sub(free); err != nil {
			return nil, err
		}
		if !q.IsPos() {
			return out, nil
		}
		desc += ", beyond the included " + included.Trim(0).String()
	}
	add := func(ch Charge) { p.minimum(&ch); out = append(out, ch) }
	switch p.Model {
	case Flat:
		a, err := q.Mul(p.Price.Decimal)
		if err != nil {
			return nil, fmt.Errorf("amount: %w", err)
		}
		add(Charge{Description: desc, Quantity: display(q), Unit: unit, UnitPrice: p.Price.Decimal, Amount: a})
	case Graduated:
		lo := decimal.Zero
		for i, t := range p.Tiers {
			if q.Cmp(lo) <= 0 {
				break
			}
			slice := q
			label := fmt.Sprintf("%s, tier %d (above %s %s)", desc, i+1, lo.Trim(0), unit)
			if t.UpTo.Set() {
				slice = q.Min(t.UpTo.Decimal)
				label = fmt.Sprintf("%s, tier %d (%s to %s %s)", desc, i+1, lo.Trim(0), t.UpTo.Trim(0), unit)
			}
			part, err := slice.Sub(lo)
			if err != nil {
				return nil, err
			}
			a, err := part.Mul(t.Price.Decimal)
			if err != nil {
				return nil, fmt.Errorf("amount: %w", err)
			}
			add(Charge{Description: label, Quantity: display(part), Unit: unit, UnitPrice: t.Price.Decimal, Amount: a})
			lo = t.UpTo.Decimal
		}
	case Volume:
		lo := decimal.Zero
		for i, t := range p.Tiers {
			if t.UpTo.Set() && q.Cmp(t.UpTo.Decimal) > 0 {
				lo = t.UpTo.Decimal
				continue
			}
			label := fmt.Sprintf("%s, volume tier %d (above %s %s), whole quantity", desc, i+1, lo.Trim(0), unit)
			if t.UpTo.Set() {
				label = fmt.Sprintf("%s, volume tier %d (%s to %s %s), whole quantity", desc, i+1, lo.Trim(0), t.UpTo.Trim(0), unit)
			}
			a, err := q.Mul(t.Price.Decimal)
			if err != nil {
				return nil, fmt.Errorf("amount: %w", err)
			}
			add(Charge{Description: label, Quantity: display(q), Unit: unit, UnitPrice: t.Price.Decimal, Amount: a})
			break
		}
	case Package:
		n, err := q.Quo(p.Size.Decimal)
		if err != nil {
			return nil, err
		}
		n = n.Ceil(0)
		a, err := n.Mul(p.Price.Decimal)
		if err != nil {
			return nil, fmt.Errorf("amount: %w", err)
		}
		size := p.Size.Trim(0).String()
		add(Charge{Description: fmt.Sprintf("%s, %s %s in started packages of %s", desc, display(q), unit, size), Quantity: n,
			Unit: "package of " + size + " " + unit, UnitPrice: p.Price.Decimal, Amount: a})
	default:
		return nil, fmt.Errorf("pricing model %q", p.Model)
	}
	return out, nil
}

// display rounds a quantity to 6 decimals for the line.
func display(q decimal.Decimal) decimal.Decimal { return q.Round(6).Trim(0) }
