package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/govalues/decimal"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store/codec"
)

// PutPolicies stores policy versions, all or nothing, over a driver. A policy is matched to its
// stored versions by effective time: a version with the same effective time (or the same
// Version, when given) is replaced in place, so re-importing a file is a no-op or a correction;
// a later effective time adds the next version; an earlier one that matches no version is
// refused.
func PutPolicies(ctx context.Context, d PolicyDriver, ps []billing.Policy) error {
	for i, p := range ps {
		if err := CheckPolicy(p); err != nil {
			return fmt.Errorf("put policies: policies[%d] (%s): %w", i, p.Name, err)
		}
	}
	// Oldest first within a name, so a file listing versions in any order applies cleanly.
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		pa, pb := ps[order[a]], ps[order[b]]
		if pa.Name != pb.Name {
			return false
		}
		return pa.EffectiveFrom.Before(pb.EffectiveFrom)
	})
	return d.PolicyTx(ctx, func(tx PolicyTx) error {
		for _, i := range order {
			p := ps[i]
			vs, err := tx.LockedVersions(ctx, p.Name)
			if err != nil {
				return fmt.Errorf("put policies: policies[%d] (%s): %w", i, p.Name, err)
			}
			p.EffectiveFrom = NormEffective(p.EffectiveFrom)
			replace := 0
			for _, v := range vs {
				if (p.Version != 0 && v.Version == p.Version) || (p.Version == 0 && v.EffectiveFrom.Equal(p.EffectiveFrom)) {
					replace = v.Version
				}
			}
			switch {
			case replace != 0:
				p.Version = replace
				if err := CheckPolicyOrder(vs, p); err != nil {
					return fmt.Errorf("put policies: policies[%d] (%s): %w", i, p.Name, err)
				}
				if err := tx.UpsertVersion(ctx, p, d.Now()); err != nil {
					return fmt.Errorf("put policies: policies[%d] (%s): %w", i, p.Name, err)
				}
			case p.Version != 0 && p.Version != len(vs)+1:
				return fmt.Errorf("put policies: policies[%d] (%s): version %d: the next version is %d", i, p.Name, p.Version, len(vs)+1)
			default:
				if _, err := addVersion(ctx, tx, vs, p, d.Now()); err != nil {
					return fmt.Errorf("put policies: policies[%d] (%s): %w", i, p.Name, err)
				}
			}
		}
		return nil
	})
}

// addVersion appends p as the next version after vs.
func addVersion(ctx context.Context, tx PolicyTx, vs []billing.Policy, p billing.Policy, now time.Time) (billing.Policy, error) {
	p.Version = len(vs) + 1
	p.EffectiveFrom = NormEffective(p.EffectiveFrom)
	if err := CheckPolicyOrder(vs, p); err != nil {
		return p, err
	}
	if err := tx.UpsertVersion(ctx, p, now); err != nil {
		return p, err
	}
	return p, nil
}

// PolicyVersionsOf implements PolicyVersions.PolicyVersions over a driver.
func PolicyVersionsOf(ctx context.Context, d PolicyDriver) ([]billing.Policy, error) {
	vs, err := d.Versions(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	return vs, nil
}

// PolicyHistory implements PolicyVersions.PolicyHistory over a driver.
func PolicyHistory(ctx context.Context, d PolicyDriver, name string) ([]billing.Policy, error) {
	if name == "" {
		return nil, fmt.Errorf("policy history: name: required")
	}
	vs, err := d.Versions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("policy history %s: %w", name, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("policy %s: %w", name, ErrNotFound)
	}
	return vs, nil
}

// AddPolicyVersion implements PolicyVersions.AddPolicyVersion over a driver.
func AddPolicyVersion(ctx context.Context, d PolicyDriver, p billing.Policy) (billing.Policy, error) {
	if err := CheckPolicy(p); err != nil {
		return p, fmt.Errorf("add policy version %s: %w", p.Name, err)
	}
	var out billing.Policy
	err := d.PolicyTx(ctx, func(tx PolicyTx) error {
		vs, err := tx.LockedVersions(ctx, p.Name)
		if err != nil {
			return err
		}
		out, err = addVersion(ctx, tx, vs, p, d.Now())
		return err
	})
	if err != nil {
		return p, fmt.Errorf("add policy version %s: %w", p.Name, err)
	}
	return out, nil
}

// changeRules stores the latest version of a policy, changed by fn, as a new version.
func changeRules(ctx context.Context, d PolicyDriver, name string, effective time.Time, fn func(*billing.Policy) error) (billing.Policy, error) {
	var out billing.Policy
	if effective.IsZero() {
		return out, errors.New("an effective time is required")
	}
	err := d.PolicyTx(ctx, func(tx PolicyTx) error {
		vs, err := tx.LockedVersions(ctx, name)
		if err != nil {
			return err
		}
		next, err := NextPolicyVersion(vs, name, effective, fn)
		if err != nil {
			return err
		}
		out, err = addVersion(ctx, tx, vs, next, d.Now())
		return err
	})
	return out, err
}

// AddRule implements PolicyVersions.AddRule over a driver.
func AddRule(ctx context.Context, d PolicyDriver, name string, rule billing.RuleSpec, effective time.Time) (billing.Policy, error) {
	p, err := changeRules(ctx, d, name, effective, func(p *billing.Policy) error { return PutRule(p, rule) })
	if err != nil {
		return p, fmt.Errorf("policy %s: add rule %s: %w", name, rule.Type, err)
	}
	return p, nil
}

// RemoveRule implements PolicyVersions.RemoveRule over a driver; ruleType is a rule key: the
// type, or meter:<meter name> for a meter rule.
func RemoveRule(ctx context.Context, d PolicyDriver, name, ruleType string, effective time.Time) (billing.Policy, error) {
	p, err := changeRules(ctx, d, name, effective, func(p *billing.Policy) error { return DropRule(p, ruleType) })
	if err != nil {
		return p, fmt.Errorf("policy %s: remove rule %s: %w", name, ruleType, err)
	}
	return p, nil
}

// EncodePolicyJSON returns the rules and the included quantities of a version as the JSON both
// drivers store (map keys sorted: equal maps encode equally).
func EncodePolicyJSON(p billing.Policy) (rules, included string, err error) {
	rs := make([]codec.Rule, len(p.Rules))
	for j, r := range p.Rules {
		rs[j] = codec.Rule{Type: r.Type, Spec: r.Spec}
	}
	rj, err := json.Marshal(rs)
	if err != nil {
		return "", "", fmt.Errorf("rules: %w", err)
	}
	inc := make(map[string]string, len(p.Included))
	for k, v := range p.Included {
		inc[k] = v.String()
	}
	ij, err := json.Marshal(inc)
	if err != nil {
		return "", "", fmt.Errorf("included: %w", err)
	}
	return string(rj), string(ij), nil
}

// DecodePolicyJSON fills the fee, included quantities and rules of a version read from a
// driver's row (p.Name and p.Version set) from their stored text.
func DecodePolicyJSON(p *billing.Policy, fee, included, rules string) error {
	var err error
	if p.Fee, err = codec.Decimal(fee, "policy "+p.Name+" fee"); err != nil {
		return err
	}
	var inc map[string]string
	if err := json.Unmarshal([]byte(included), &inc); err != nil {
		return fmt.Errorf("policy %s version %d: included: %w", p.Name, p.Version, err)
	}
	for _, k := range slices.Sorted(maps.Keys(inc)) {
		d, err := codec.Decimal(inc[k], "policy "+p.Name+" included "+k)
		if err != nil {
			return err
		}
		if p.Included == nil {
			p.Included = map[string]decimal.Decimal{}
		}
		p.Included[k] = d
	}
	var rs []codec.Rule
	if err := json.Unmarshal([]byte(rules), &rs); err != nil {
		return fmt.Errorf("policy %s version %d: rules: %w", p.Name, p.Version, err)
	}
	for _, r := range rs {
		p.Rules = append(p.Rules, billing.RuleSpec{Type: r.Type, Spec: r.Spec})
	}
	return nil
}
