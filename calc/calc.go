// Package calc holds the decisions every path that prices a customer shares: from which second a
// customer is billable (BillingStart) and which policy version prices a second (PolicyAt). The
// scheduled and interim runs, regeneration, prepaid balances and `bilean usage` all ask here, so
// that a line's price is the same whichever path asks.
package calc

import (
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
)

// BillingStart is the earliest second a run over period may still bill for a customer. By
// default it is the beginning of time: a run bills every second of every record, meter and
// subscription that no live invoice has billed, so usage from before a customer's first invoiced
// month is billed on that invoice as adjustment lines, never lost. A customer's own billing start
// (billing.Customer.BillingStart, e.g. the day Bilean took over from another system) moves it
// later; so does a back-billing horizon of N months (billing.back_billing_months): nothing before
// the period start minus N calendar months (in loc) is billed any more. The later bound wins.
func BillingStart(c billing.Customer, period interval.Range, backMonths int, loc *time.Location) time.Time {
	start := c.BillingStart
	if backMonths > 0 {
		start = interval.Later(start, period.Start.In(loc).AddDate(0, -backMonths, 0).UTC())
	}
	return start
}

// PolicyAt returns the version of the policy that prices second t for a customer — the
// subscription active then, else the customer's own policy, else fallback (billing.default_policy)
// — and the second that version stops being in force (interval.Forever when no later version
// exists). The policy must exist, have a version in force at t and be priced in the customer's
// currency. This is the one place that decides "the policy in force at t".
func PolicyAt(policies map[string]*rating.Policy, it *pipeline.Item, t time.Time, fallback string) (*rating.Policy, time.Time, error) {
	name := it.PolicyName(t, fallback)
	if name == "" {
		return nil, time.Time{}, fmt.Errorf("no subscription or default policy covers %s", t.Format(time.RFC3339))
	}
	return VersionAt(policies, name, it.Customer, t)
}

// VersionAt returns the version of the named policy in force at t and the second it stops being
// in force; the policy must exist, have a version then and be priced in the customer's currency.
func VersionAt(policies map[string]*rating.Policy, name string, c billing.Customer, t time.Time) (*rating.Policy, time.Time, error) {
	p, ok := policies[name]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("policy %q does not exist", name)
	}
	v, until, ok := p.At(t)
	if !ok {
		return nil, time.Time{}, fmt.Errorf("policy %s has no version in force at %s", name, t.Format(time.RFC3339))
	}
	if v.Currency != "" && v.Currency != c.Currency {
		return nil, time.Time{}, fmt.Errorf("policy %s version %d is priced in %s, the customer is billed in %s", v.Name, v.Version, v.Currency, c.Currency)
	}
	return v, until, nil
}
