package rating

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
)

// MeterType is the generic rule over any Gnocchi/Ceilometer meter: a new meter needs
// configuration only. A policy may hold one meter rule per meter name.
const MeterType = billing.MeterRuleType

func init() { RegisterMeter(MeterType, newMeter) }

// meterTypes are the registered rule types that price a meter total (gnocchi.meters[].rule).
var meterTypes = map[string]bool{}

// RegisterMeter registers a rule type that prices meter totals: its rules must implement
// MeterName. Only such a type may be named by a meter's rule in the configuration
// (gnocchi.meters[].rule). It panics like Register.
func RegisterMeter(typ string, f Factory) {
	Register(typ, f)
	mu.Lock()
	meterTypes[typ] = true
	mu.Unlock()
}

// MeterTypes lists the registered rule types that price meters, sorted.
func MeterTypes() []string {
	mu.RLock()
	defer mu.RUnlock()
	return sortedKeys(meterTypes)
}

// IsMeterType reports whether a registered rule type prices meters.
func IsMeterType(typ string) bool {
	mu.RLock()
	defer mu.RUnlock()
	return meterTypes[typ]
}

// RuleType returns the registered type a compiled rule was built from, when the rule says
// (meter rules do); "" otherwise.
func RuleType(r Rule) string {
	if t, ok := r.(interface{ RuleType() string }); ok {
		return t.RuleType()
	}
	return ""
}

// MeterSpec prices one meter's total over the period (e.g. bytes sent, summed), converted from
// the meter's unit to Unit: either at one price,
//
//	meter: network.outgoing.bytes
//	unit: GB                 # optional; the meter's own unit when absent
//	description: Outgoing traffic
//	price: {model: graduated, tiers: [{up_to: 1000, price: "0.05"}, {price: "0.02"}]}
//
// or at a price per value of the resource's attributes (the Gnocchi resource's flavor_name,
// volume_type…, in MeterTotal.Attributes), CloudKitty's price per instance-hour by flavor:
//
//	meter: instance
//	unit: hour
//	description: Instance
//	group_by: [flavor_name]
//	prices:
//	  m1.small: "0.02"
//	  m1.large: {model: graduated, tiers: [{up_to: 100, price: "0.08"}, {price: "0.06"}]}
//	default: "0.05"          # any other value; without it such a total is an error
//
// A resource without a group_by attribute is an error, default or not (a misspelled group_by
// must not price everything at the default).
// With several group_by attributes a price's key is their values joined by "," in group_by
// order (e.g. "m1.small,gpu"). Each value is its own pricing: its own line (flat) or its own
// tiers over the period's total of that value.
//
// Units convert within a family: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB (bytes) and s, min, h,
// hour, day (time); anything else must match the meter's unit exactly.
type MeterSpec struct {
	Meter       string              `yaml:"meter"`
	Unit        string              `yaml:"unit"`
	Description string              `yaml:"description"`
	Price       *Pricing            `yaml:"price"`
	GroupBy     []string            `yaml:"group_by"`
	Prices      map[string]*Pricing `yaml:"prices"`
	Default     *Pricing            `yaml:"default"`
}

// groupSep joins the values of several group_by attributes into a price key.
const groupSep = ","

var attrNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (s *MeterSpec) check(c *checker) {
	if strings.TrimSpace(s.Meter) == "" {
		c.add(0, "meter", "required: the meter name, e.g. network.outgoing.bytes")
	}
	if len(s.GroupBy) == 0 {
		if len(s.Prices) > 0 {
			c.add(0, "prices", "prices per value need group_by: the resource attributes whose values they price, e.g. [flavor_name]")
		}
		if s.Default != nil {
			c.add(s.Default.Line, "default", "a default price needs group_by (without it, use price)")
		}
		required(c, s.Price, "price")
		return
	}
	if s.Price != nil {
		c.add(s.Price.Line, "price", "with group_by, price each value under prices and any other under default")
	}
	seen := map[string]bool{}
	for i, a := range s.GroupBy {
		f := fmt.Sprintf("group_by[%d]", i)
		switch {
		case !attrNameRe.MatchString(a):
			c.add(0, f, "%q: want a resource attribute name such as flavor_name", a)
		case seen[a]:
			c.add(0, f, "%q is listed twice", a)
		}
		seen[a] = true
	}
	for _, k := range sortedKeys(s.Prices) {
		required(c, s.Prices[k], "prices."+k)
		if n := len(strings.Split(k, groupSep)); n != len(s.GroupBy) {
			c.add(0, "prices."+k, "%d value(s) for %d group_by attribute(s): join the values of %s with %q", n, len(s.GroupBy),
				strings.Join(s.GroupBy, ", "), groupSep)
		}
	}
	s.Default.check(c, "default")
	if len(s.Prices) == 0 && s.Default == nil {
		c.add(0, "prices", "required with group_by: a price per value (and/or a default)")
	}
}

type meter struct {
	typ   string
	spec  MeterSpec
	label string
	// labels are the label of each priced value, built once.
	labels map[string]string
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
	r := &meter{typ: MeterType, spec: spec, label: label, labels: make(map[string]string, len(spec.Prices))}
	for k := range spec.Prices {
		r.labels[k] = label + " " + k
	}
	return r, nil
}

// MeterName is the meter the rule prices.
func (r *meter) MeterName() string { return r.spec.Meter }

// RuleType is the registered type of the rule.
func (r *meter) RuleType() string { return r.typ }

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
	p, label, value := r.spec.Price, r.label, ""
	if len(r.spec.GroupBy) > 0 {
		if p, label, value, err = r.byValue(u); err != nil {
			return dst, err
		}
	}
	desc := label
	if value != "" && label != r.labels[value] {
		desc += " (" + value + ")"
	}
	if u.ResourceID != "" {
		desc += " (" + u.ResourceID + ")"
	}
	return append(dst, Measure{Pricing: p, Label: label, Description: desc, Unit: unit, Num: q, Div: one}), nil
}

// byValue finds the price of the usage's group_by values: the value's own price, else the
// default; neither is an error naming the meter, the resource and the value. A resource without
// one of the group_by attributes is an error even with a default: a misspelled group_by would
// otherwise price everything at the default, silently.
func (r *meter) byValue(u Usage) (p *Pricing, label, value string, err error) {
	vals := make([]string, len(r.spec.GroupBy))
	for i, a := range r.spec.GroupBy {
		vals[i] = u.Attributes[a]
		if vals[i] == "" {
			return nil, "", "", fmt.Errorf("meter %s of resource %s: the resource has no %s attribute to price by (it has: %s)",
				u.Meter, u.ResourceID, a, strings.Join(sortedKeys(u.Attributes), ", "))
		}
	}
	value = strings.Join(vals, groupSep)
	if p, ok := r.spec.Prices[value]; ok {
		return p, r.labels[value], value, nil
	}
	if r.spec.Default != nil {
		return r.spec.Default, r.label + ", default price", value, nil
	}
	return nil, "", "", fmt.Errorf("meter %s of resource %s: no price for %s %q and no default (priced: %s)",
		u.Meter, u.ResourceID, strings.Join(r.spec.GroupBy, groupSep), value, strings.Join(sortedKeys(r.spec.Prices), "; "))
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
