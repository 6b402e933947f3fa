package rating

import (
	"fmt"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

// Policy is one compiled version of a policy: its rules by resource type, its meter rules by
// meter name, its fee and included quantities. Every version knows its siblings, so At finds the
// version in force at any second from any of them.
type Policy struct {
	Name          string
	Currency      string
	Version       int
	EffectiveFrom time.Time // zero: since ever
	Fee           decimal.Decimal
	// Source is the policy version as configured (fee interval and timing, description…).
	Source   billing.Policy
	included map[string]decimal.Decimal
	rules    map[string]Rule
	meters   map[string]Rule
	versions []*Policy // every version of Name, ordered by EffectiveFrom; shared by all of them
}

// meterRule is implemented by rules that price a meter rather than a resource type.
type meterRule interface{ MeterName() string }

// Compile builds every rule of one policy version. Two rules for the same resource type, or two
// meter rules for the same meter, are an error.
func Compile(p billing.Policy) (*Policy, error) {
	cp, err := compile(p)
	if err != nil {
		return nil, err
	}
	cp.versions = []*Policy{cp}
	return cp, nil
}

func compile(p billing.Policy) (*Policy, error) {
	cp := &Policy{Name: p.Name, Currency: p.Currency, Version: p.Version, EffectiveFrom: p.EffectiveFrom, Fee: p.Fee, Source: p,
		included: p.Included, rules: map[string]Rule{}, meters: map[string]Rule{}}
	where := p.Name
	if p.Version > 0 {
		where = fmt.Sprintf("%s version %d", p.Name, p.Version)
	}
	for i, rs := range p.Rules {
		r, err := Build(rs)
		if err != nil {
			return nil, fmt.Errorf("policy %s: rules[%d]: %w", where, i, err)
		}
		if m, ok := r.(meterRule); ok {
			if _, dup := cp.meters[m.MeterName()]; dup {
				return nil, fmt.Errorf("policy %s: rules[%d]: a second rule for meter %s", where, i, m.MeterName())
			}
			cp.meters[m.MeterName()] = r
			continue
		}
		if _, dup := cp.rules[rs.Type]; dup {
			return nil, fmt.Errorf("policy %s: rules[%d]: a second rule for %s", where, i, rs.Type)
		}
		cp.rules[rs.Type] = r
	}
	for k, q := range p.Included {
		if q.IsNeg() {
			return nil, fmt.Errorf("policy %s: included.%s %s: must not be negative", where, k, q)
		}
	}
	return cp, nil
}

// Rule returns the policy's rule for a resource type.
func (p *Policy) Rule(resourceType string) (Rule, bool) {
	r, ok := p.rules[resourceType]
	return r, ok
}

// MeterRule returns the policy's rule for a meter, e.g. network.outgoing.bytes.
func (p *Policy) MeterRule(meter string) (Rule, bool) {
	r, ok := p.meters[meter]
	return r, ok
}

// Included returns the free quantity of a rule type or meter per period (zero: none).
func (p *Policy) Included(key string) decimal.Decimal { return p.included[key] }

// At returns the version of this policy in force at t and the second it stops being in force
// (interval.Forever for the last version). ok is false before the first version's
// EffectiveFrom.
func (p *Policy) At(t time.Time) (v *Policy, until time.Time, ok bool) {
	vs := p.versions
	i := sort.Search(len(vs), func(i int) bool { return vs[i].EffectiveFrom.After(t) })
	if i == 0 {
		return nil, time.Time{}, false
	}
	until = interval.Forever
	if i < len(vs) {
		until = vs[i].EffectiveFrom
	}
	return vs[i-1], until, true
}

// Versions returns every version of the policy, ordered by EffectiveFrom.
func (p *Policy) Versions() []*Policy { return p.versions }

// Latest returns the last version of the policy.
func (p *Policy) Latest() *Policy { return p.versions[len(p.versions)-1] }

// Catalog is every version of every policy, compiled.
type Catalog struct {
	latest map[string]*Policy
}

// CompileCatalog compiles every version of every policy. Versions of one name must have distinct
// version numbers, and a higher version must not take effect before a lower one; two versions
// may not take effect at the same second.
func CompileCatalog(ps []billing.Policy) (*Catalog, error) {
	byName := map[string][]*Policy{}
	for _, p := range ps {
		cp, err := compile(p)
		if err != nil {
			return nil, err
		}
		byName[p.Name] = append(byName[p.Name], cp)
	}
	c := &Catalog{latest: make(map[string]*Policy, len(byName))}
	for name, vs := range byName {
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
		for i := 1; i < len(vs); i++ {
			a, b := vs[i-1], vs[i]
			switch {
			case a.Version == b.Version:
				return nil, fmt.Errorf("policy %s: version %d is given twice", name, a.Version)
			case !b.EffectiveFrom.After(a.EffectiveFrom):
				return nil, fmt.Errorf("policy %s: version %d takes effect %s, not after version %d (%s)", name,
					b.Version, stamp(b.EffectiveFrom), a.Version, stamp(a.EffectiveFrom))
			}
		}
		for _, v := range vs {
			v.versions = vs
		}
		c.latest[name] = vs[len(vs)-1]
	}
	return c, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "since ever"
	}
	return t.UTC().Format(time.RFC3339)
}

// At returns the version of the named policy in force at t and the second it stops being in
// force; ok is false for an unknown name or a second before the policy's first version.
func (c *Catalog) At(name string, t time.Time) (*Policy, time.Time, bool) {
	p, ok := c.latest[name]
	if !ok {
		return nil, time.Time{}, false
	}
	return p.At(t)
}

// Policies returns the latest version of every policy by name; each reaches its other versions
// through At.
func (c *Catalog) Policies() map[string]*Policy {
	out := make(map[string]*Policy, len(c.latest))
	for k, v := range c.latest {
		out[k] = v
	}
	return out
}

// CompileAll compiles a set of single-version policies by name.
func CompileAll(ps map[string]billing.Policy) (map[string]*Policy, error) {
	list := make([]billing.Policy, 0, len(ps))
	for _, p := range ps {
		list = append(list, p)
	}
	c, err := CompileCatalog(list)
	if err != nil {
		return nil, err
	}
	return c.Policies(), nil
}
