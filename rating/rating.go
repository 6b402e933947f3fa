// Package rating prices usage. A rule type is a Go type registered by name (the resource type it
// prices, e.g. os.nova.server) from its file's init(); a policy compiles its rule specs into rules
// once per run.
//
// Lifecycle of a rule: its spec (YAML text) is decoded strictly — unknown keys, negative prices
// and malformed numbers are errors naming the line and field — then Price is called for each piece
// of usage. Price returns the exact, unrounded amount: rounding happens once per invoice line in
// the invoice calculation, never here.
//
// Adding a resource type is one new file with a Factory and one Register call.
package rating

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Usage is one piece of a trigger record to be priced: a resource with fixed attributes over a
// half-open range.
type Usage struct {
	ResourceType string
	ResourceID   string
	Attributes   map[string]string
	Range        interval.Range
}

// Charge is the priced usage. Amount is exact (not rounded) and computed from the exact seconds;
// Quantity is shown rounded to 6 decimals, so an accountant recomputes a line from its seconds.
type Charge struct {
	Description string
	Quantity    decimal.Decimal
	Unit        string // e.g. hour, GB-hour
	UnitPrice   decimal.Decimal
	Amount      decimal.Decimal
}

// Rule prices the usage of one resource type.
type Rule interface {
	// Price prices one piece of usage. It fails when the usage lacks what the rule needs (an
	// unknown flavor, a missing size): such usage must not be billed at a guessed price.
	Price(u Usage) (Charge, error)
}

// Factory builds a rule from its spec, decoded strictly from YAML text.
type Factory func(spec Spec) (Rule, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a rule type available by name. It panics on an empty or duplicate name: a wrong
// hard-coded registry must never run.
func Register(typ string, f Factory) {
	if err := TryRegister(typ, f); err != nil {
		panic(err)
	}
}

// TryRegister is Register without the panic, for rules registered at run time.
func TryRegister(typ string, f Factory) error {
	mu.Lock()
	defer mu.Unlock()
	if typ == "" || f == nil {
		return fmt.Errorf("register rule: empty type or nil factory")
	}
	if _, dup := registry[typ]; dup {
		return fmt.Errorf("register rule %s: already registered", typ)
	}
	registry[typ] = f
	return nil
}

// Types lists the registered rule types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Build compiles one rule spec.
func Build(rs billing.RuleSpec) (Rule, error) {
	mu.RLock()
	f, ok := registry[rs.Type]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("rule type %q is not registered (known: %s)", rs.Type, strings.Join(Types(), ", "))
	}
	r, err := f(Spec(rs.Spec))
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", rs.Type, err)
	}
	return r, nil
}

// Validate checks that a rule spec compiles.
func Validate(rs billing.RuleSpec) error {
	_, err := Build(rs)
	return err
}

// Spec is a rule's configuration as YAML text.
type Spec string

// Decode decodes the spec strictly into v: unknown keys are errors.
func (s Spec) Decode(v any) error {
	if strings.TrimSpace(string(s)) == "" {
		return fmt.Errorf("spec is empty")
	}
	dec := yaml.NewDecoder(strings.NewReader(string(s)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	return nil
}

// Price is a non-negative decimal read exactly from YAML text ("0.02" or 0.02, never via float).
type Price struct{ decimal.Decimal }

// UnmarshalYAML parses the scalar's text as a decimal.
func (p *Price) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a price such as \"0.02\"", n.Line)
	}
	d, err := decimal.Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: price %q is not a decimal number", n.Line, n.Value)
	}
	if d.IsNeg() {
		return fmt.Errorf("line %d: price %s is negative", n.Line, n.Value)
	}
	p.Decimal = d
	return nil
}

// Policy is a compiled policy: its rules by resource type.
type Policy struct {
	Name     string
	Currency string
	Fee      decimal.Decimal
	rules    map[string]Rule
}

// Compile builds every rule of the policy. Two rules for the same resource type are an error.
func Compile(p billing.Policy) (*Policy, error) {
	cp := &Policy{Name: p.Name, Currency: p.Currency, Fee: p.Fee, rules: map[string]Rule{}}
	for i, rs := range p.Rules {
		if _, dup := cp.rules[rs.Type]; dup {
			return nil, fmt.Errorf("policy %s: rules[%d]: a second rule for %s", p.Name, i, rs.Type)
		}
		r, err := Build(rs)
		if err != nil {
			return nil, fmt.Errorf("policy %s: rules[%d]: %w", p.Name, i, err)
		}
		cp.rules[rs.Type] = r
	}
	return cp, nil
}

// Rule returns the policy's rule for a resource type.
func (p *Policy) Rule(resourceType string) (Rule, bool) {
	r, ok := p.rules[resourceType]
	return r, ok
}

// CompileAll compiles a set of policies by name.
func CompileAll(ps map[string]billing.Policy) (map[string]*Policy, error) {
	out := make(map[string]*Policy, len(ps))
	for name, p := range ps {
		cp, err := Compile(p)
		if err != nil {
			return nil, err
		}
		out[name] = cp
	}
	return out, nil
}
