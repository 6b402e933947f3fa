package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/govalues/decimal"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
)

// The checks below are what every backend refuses before it writes, so the embedded store and
// PostgreSQL reject the same input with the same message.

// FormatTime shows a time in an error message: RFC 3339 in UTC, "since ever" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "since ever"
	}
	return t.UTC().Format(time.RFC3339)
}

// NormEffective keeps the zero time zero (a first version in force since ever) and normalises any
// other to whole seconds in UTC.
func NormEffective(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return interval.Norm(t)
}

// CheckPolicy validates what every stored policy version needs: a name, a currency, a valid fee,
// typed rules and at most one rule per rule key.
func CheckPolicy(p billing.Policy) error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if len(p.Currency) != 3 {
		errs = append(errs, fmt.Errorf("currency %q: want a 3-letter ISO 4217 code", p.Currency))
	}
	if err := p.ValidateFee(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, r := range p.Rules {
		if r.Type == "" {
			errs = append(errs, fmt.Errorf("rules[%d].type: required", i))
		}
		// Meter rules are keyed by meter: a policy may price many meters.
		key := r.Key()
		if seen[key] {
			errs = append(errs, fmt.Errorf("rules[%d]: a second rule for %s", i, key))
		}
		seen[key] = true
	}
	return errors.Join(errs...)
}

// CheckPolicyOrder checks that p, replacing or following the stored versions vs, keeps effective
// times increasing and the currency unchanged.
func CheckPolicyOrder(vs []billing.Policy, p billing.Policy) error {
	for _, v := range vs {
		switch {
		case v.Version == p.Version:
		case v.Currency != p.Currency:
			return fmt.Errorf("currency %s: version %d is priced in %s, and a policy's currency never changes (add a policy per currency)", p.Currency, v.Version, v.Currency)
		case v.Version < p.Version && !p.EffectiveFrom.After(v.EffectiveFrom):
			return fmt.Errorf("version %d effective %s: %w (version %d is effective %s)", p.Version, FormatTime(p.EffectiveFrom), ErrVersionOrder, v.Version, FormatTime(v.EffectiveFrom))
		case v.Version > p.Version && !v.EffectiveFrom.After(p.EffectiveFrom):
			return fmt.Errorf("version %d effective %s: must be before version %d, effective %s", p.Version, FormatTime(p.EffectiveFrom), v.Version, FormatTime(v.EffectiveFrom))
		}
	}
	if p.Version > 1 && p.EffectiveFrom.IsZero() {
		return fmt.Errorf("version %d: an effective time is required (only the first version applies since ever)", p.Version)
	}
	return nil
}

// PutRule adds rule to p, replacing the rule with the same rule key (see billing.RuleSpec.Key).
func PutRule(p *billing.Policy, rule billing.RuleSpec) error {
	if rule.Type == "" {
		return errors.New("rule type: required")
	}
	key := rule.Key()
	for i, r := range p.Rules {
		if r.Key() == key {
			p.Rules[i] = rule
			return nil
		}
	}
	p.Rules = append(p.Rules, rule)
	return nil
}

// DropRule removes the rule with this rule key (the type, or meter:<meter name> for a meter
// rule) from p; ErrNotFound when p has none.
func DropRule(p *billing.Policy, key string) error {
	for i, r := range p.Rules {
		if r.Key() == key {
			p.Rules = slices.Delete(p.Rules, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("version %d has no rule for %s: %w", p.Version, key, ErrNotFound)
}

// CheckDiscount validates one discount.
func CheckDiscount(d billing.Discount) error {
	var errs []error
	if d.CustomerID == "" {
		errs = append(errs, errors.New("customer: required"))
	}
	switch d.Scope {
	case billing.DiscountLine:
		if d.ResourceID == "" {
			errs = append(errs, errors.New("resource_id: required for scope line"))
		}
	case billing.DiscountRule:
		if d.RuleType == "" {
			errs = append(errs, errors.New("rule_type: required for scope rule"))
		}
	case billing.DiscountInvoice:
	default:
		errs = append(errs, fmt.Errorf("scope %q: want line, rule or invoice", d.Scope))
	}
	switch {
	case d.Percent.IsPos() == d.Amount.IsPos():
		errs = append(errs, errors.New("percent or amount: give exactly one, positive"))
	case d.Percent.IsNeg() || d.Amount.IsNeg():
		errs = append(errs, errors.New("percent and amount must not be negative"))
	case d.Percent.Cmp(decimal.One) > 0:
		errs = append(errs, fmt.Errorf("percent %s: want a fraction up to 1, e.g. 0.10", d.Percent))
	case d.Amount.IsPos() && len(d.Currency) != 3:
		errs = append(errs, fmt.Errorf("currency %q: a fixed amount needs a 3-letter ISO 4217 code", d.Currency))
	}
	if d.Start.IsZero() {
		errs = append(errs, errors.New("start: required"))
	} else if !d.End.IsZero() && !d.End.After(d.Start) {
		errs = append(errs, fmt.Errorf("end %s: must be after start %s", FormatTime(d.End), FormatTime(d.Start)))
	}
	return errors.Join(errs...)
}

// CheckRecord validates one trigger record: customer, resource and start are required, and an
// end, when given, must be after the start once both are whole seconds.
func CheckRecord(r billing.Record) error {
	switch {
	case r.CustomerID == "":
		return errors.New("customer: required")
	case r.ResourceID == "":
		return errors.New("resource id: required")
	case r.Start.IsZero():
		return errors.New("start: required")
	}
	if !r.End.IsZero() && !interval.Norm(r.End).After(interval.Norm(r.Start)) {
		return fmt.Errorf("end %s is not after start %s", interval.Norm(r.End).Format(time.RFC3339),
			interval.Norm(r.Start).Format(time.RFC3339))
	}
	return nil
}

// PrepareRecharge checks a recharge and returns it ready to store: received_at in whole seconds
// and, when none is given, a fresh reference of the form recharge-<time>-<12 hex digits>.
func PrepareRecharge(p billing.Payment) (billing.Payment, error) {
	switch {
	case p.CustomerID == "":
		return p, errors.New("recharge: customer: required")
	case len(p.Currency) != 3:
		return p, fmt.Errorf("recharge %s: currency %q: want a 3-letter ISO 4217 code", p.CustomerID, p.Currency)
	case p.ReceivedAt.IsZero():
		return p, fmt.Errorf("recharge %s: received_at: required", p.CustomerID)
	}
	if p.Reference == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		p.Reference = "recharge-" + p.ReceivedAt.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	p.ReceivedAt = interval.Norm(p.ReceivedAt)
	return p, nil
}
