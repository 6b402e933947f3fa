package rating

import (
	"fmt"
	"strings"

	"github.com/govalues/decimal"
)

// MeterType is the generic rule over any Gnocchi/Ceilometer meter: a new meter needs
// configuration only. A policy may hold one meter rule per meter name.
const MeterType = "meter"

func init() { Register(MeterType, newMeter) }

// MeterSpec prices one meter's total over the period (e.g. bytes sent, summed), converted from
// the meter's unit to Unit.
//
//	meter: network.outgoing.bytes
//	unit: GB                 # optional; the meter's own unit when absent
//	description: Outgoing traffic
//	price: {model: graduated, tiers: [{up_to: 1000, price: "0.05"}, {price: "0.02"}]}
//
// Units convert within a family: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB (bytes) and s, min, h,
// hour, day (time); anything else must match the meter's unit exactly.
type MeterSpec struct {
	Meter       string   `yaml:"meter"`
	Unit        string   `yaml:"unit"`
	Description string   `yaml:"description"`
	Price       *Pricing `yaml:"price"`
}

func (s *MeterSpec) check(c *checker) {
	if strings.TrimSpace(s.Meter) == "" {
		c.add(0, "meter", "required: the meter name, e.g. network.outgoing.bytes")
	}
	required(c, s.Price, "price")
}

type meter struct {
	spec  MeterSpec
	label string
}

func newMeter(s Spec) (Rule, error) {
	var spec MeterSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	label := spec.Description
	if label == "" {
		label = spec.Meter
	}
	return &meter{spec: spec, label: label}, nil
}

// MeterName is the meter the rule prices.
func (r *meter) MeterName() string { return r.spec.Meter }

func (r *meter) Measure(dst []Measure, u Usage) ([]Measure, error) {
	if u.Meter != r.spec.Meter {
		return dst, fmt.Errorf("meter rule for %s given meter %q", r.spec.Meter, u.Meter)
	}
	if u.Quantity.IsNeg() {
		return dst, fmt.Errorf("meter %s of %s: negative quantity %s", u.Meter, u.ResourceID, u.Quantity)
	}
	q, unit, err := convertUnit(u.Quantity, u.Unit, r.spec.Unit)
	if err != nil {
		return dst, fmt.Errorf("meter %s of %s: %w", u.Meter, u.ResourceID, err)
	}
	desc := r.label
	if u.ResourceID != "" {
		desc += " (" + u.ResourceID + ")"
	}
	return append(dst, Measure{Pricing: r.spec.Price, Label: r.label, Description: desc, Unit: unit, Num: q, Div: one}), nil
}

type unitFactor struct {
	family string
	factor decimal.Decimal
}

var units = map[string]unitFactor{
	"B": {"bytes", decimal.MustNew(1, 0)}, "kB": {"bytes", decimal.MustNew(1e3, 0)}, "KB": {"bytes", decimal.MustNew(1e3, 0)},
	"MB": {"bytes", decimal.MustNew(1e6, 0)}, "GB": {"bytes", decimal.MustNew(1e9, 0)}, "TB": {"bytes", decimal.MustNew(1e12, 0)},
	"KiB": {"bytes", decimal.MustNew(1<<10, 0)}, "MiB": {"bytes", decimal.MustNew(1<<20, 0)},
	"GiB": {"bytes", decimal.MustNew(1<<30, 0)}, "TiB": {"bytes", decimal.MustNew(1<<40, 0)},
	"s": {"time", decimal.MustNew(1, 0)}, "min": {"time", decimal.MustNew(60, 0)}, "h": {"time", decimal.MustNew(3600, 0)},
	"hour": {"time", decimal.MustNew(3600, 0)}, "day": {"time", decimal.MustNew(86400, 0)},
}

// convertUnit converts q from unit from to unit to (either may be empty: no conversion).
func convertUnit(q decimal.Decimal, from, to string) (decimal.Decimal, string, error) {
	if to == "" || from == to {
		return q, firstNonEmpty(to, from), nil
	}
	if from == "" {
		return q, to, nil
	}
	f, okf := units[from]
	t, okt := units[to]
	if !okf || !okt || f.family != t.family {
		return decimal.Zero, "", fmt.Errorf("the meter is in %q, the rule prices %q: no conversion", from, to)
	}
	n, err := q.Mul(f.factor)
	if err == nil {
		n, err = n.Quo(t.factor)
	}
	if err != nil {
		return decimal.Zero, "", fmt.Errorf("convert %s %s to %s: %w", q, from, to, err)
	}
	return n, to, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
