// Package rating prices usage. A rule type is a Go type registered by name (the resource type it
// prices, e.g. os.nova.server, or "meter" for any Gnocchi meter) from its file's init(); a policy
// compiles its rule specs into rules once per run, and a Catalog holds every version of every
// policy.
//
// Lifecycle of a rule: its spec (YAML text) is decoded strictly and checked — unknown keys,
// negative prices, malformed numbers, unordered or overlapping tiers are SpecErrors naming the
// line and field — then Measure is called for each piece of usage. A measure carries its pricing
// (see Pricing: flat, graduated, volume or package, with an optional minimum per line); a flat
// measure is charged on its own (Measure.Charge), the others are summed per customer over the
// period (Tally) and priced once, one line per tier. Amounts are exact: rounding happens once per
// invoice line in the invoice calculation, never here.
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
)

// Usage is one piece of usage to be priced: a resource with fixed attributes over a half-open
// range, or (for a meter rule) a meter's total over the range.
type Usage struct {
	ResourceType string
	ResourceID   string
	Attributes   map[string]string
	Range        interval.Range
	// Meter, Quantity and Unit are set for a meter total.
	Meter    string
	Quantity decimal.Decimal
	Unit     string
}

// Rule measures the usage of one resource type (or one meter).
type Rule interface {
	// Measure appends what one piece of usage counts for to dst (usually one measure; a server
	// priced by components gives one per component). It fails when the usage lacks what the rule
	// needs (an unknown flavor, a missing size): such usage must not be billed at a guessed price.
	Measure(dst []Measure, u Usage) ([]Measure, error)
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

// Build compiles one rule spec. A spec error is a SpecErrors (lines relative to the spec text)
// wrapped with the rule type.
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
