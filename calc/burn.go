package calc

import (
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/govalues/decimal"
)

// burnSpan is the span over which an open record is measured: a whole number of every granularity
// (second, minute, hour, day), so a rule that bills per started hour or day still yields its
// continuous rate; the rate per hour is then the day's amount ÷ 24, in the same single division.
const burnSpan = 24 * time.Hour

var (
	hoursPerDay    = decimal.MustNew(24, 0)
	secondsPerHour = decimal.MustNew(3600, 0)
)

// BurnRate sums, per hour and before tax, what the customer's open spans and running fees cost
// at second at, priced by the policy version in force then (as the invoice calculation chooses
// it). It returns the rate, the number of open spans and each open resource's own rate.
func BurnRate(run *pipeline.Run, it *pipeline.Item, at time.Time, fallback string) (decimal.Decimal, int, map[string]decimal.Decimal, error) {
	rate := decimal.Zero
	open := 0
	each := map[string]decimal.Decimal{}
	var pol *rating.Policy
	span := interval.Range{Start: at, End: at.Add(burnSpan)}
	for _, ru := range it.Usage {
		for _, rec := range ru.Records {
			if !rec.End.IsZero() || rec.Start.After(at) {
				continue
			}
			open++
			if pol == nil {
				var err error
				if pol, _, err = PolicyAt(run.Policies, it, at, fallback); err != nil {
					return rate, open, each, err
				}
			}
			r, err := spanRate(pol, rating.Usage{ResourceType: ru.ResourceType, ResourceID: ru.ResourceID, Attributes: rec.Attributes, Range: span})
			if err != nil {
				return rate, open, each, fmt.Errorf("policy %s: %w", pol.Name, err)
			}
			each[ru.ResourceID] = r
			if rate, err = rate.Add(r); err != nil {
				return rate, open, each, fmt.Errorf("rate: %w", err)
			}
		}
	}
	for _, sub := range it.Subscriptions {
		if !sub.Range().Contains(at) {
			continue
		}
		p, _, err := VersionAt(run.Policies, sub.Policy, it.Customer, at)
		if err != nil {
			return rate, open, each, fmt.Errorf("subscription %d: %w", sub.ID, err)
		}
		f, err := feeRate(p.Source, p.Fee, run.Period, at)
		if err == nil {
			rate, err = rate.Add(f)
		}
		if err != nil {
			return rate, open, each, fmt.Errorf("fee of %s: %w", p.Name, err)
		}
	}
	return rate, open, each, nil
}

// spanRate is one open span's price per hour: each measure of a day of it at its unit price,
// ÷ 24. A period-total pricing (graduated, volume) burns at its first tier's price and a package
// at price ÷ size; the refresh, which runs the real invoice calculation, corrects the accrued
// amount to the tier actually reached.
func spanRate(pol *rating.Policy, u rating.Usage) (decimal.Decimal, error) {
	rule, ok := pol.Rule(u.ResourceType)
	if !ok {
		return decimal.Zero, nil // unpriced, as on the invoice
	}
	ms, err := rule.Measure(nil, u)
	if err != nil {
		return decimal.Zero, err
	}
	sum := decimal.Zero
	for i := range ms {
		m := &ms[i]
		price, err := unitPrice(m.Pricing)
		if err != nil {
			return decimal.Zero, err
		}
		num, err := price.Mul(m.Num)
		if err != nil {
			return decimal.Zero, fmt.Errorf("rate of %s %s: %w", u.ResourceType, u.ResourceID, err)
		}
		div, err := m.Div.Mul(hoursPerDay)
		if err != nil {
			return decimal.Zero, fmt.Errorf("rate of %s %s: %w", u.ResourceType, u.ResourceID, err)
		}
		r, err := num.Quo(div)
		if err != nil {
			return decimal.Zero, fmt.Errorf("rate of %s %s: %w", u.ResourceType, u.ResourceID, err)
		}
		if sum, err = sum.Add(r); err != nil {
			return decimal.Zero, err
		}
	}
	return sum, nil
}

func unitPrice(p *rating.Pricing) (decimal.Decimal, error) {
	if p == nil {
		return decimal.Zero, nil
	}
	switch p.Model {
	case rating.Graduated, rating.Volume:
		if len(p.Tiers) > 0 {
			return p.Tiers[0].Price.Decimal, nil
		}
	case rating.Package:
		if p.Size.IsPos() {
			return p.Price.Decimal.Quo(p.Size.Decimal)
		}
	}
	return p.Price.Decimal, nil
}

// feeRate is a subscription fee's share per hour: a monthly fee over the period's seconds, a
// yearly one over the year's; a fee charged in advance does not burn (it is on the accrued
// amount from the period start).
func feeRate(src billing.Policy, fee decimal.Decimal, period interval.Range, at time.Time) (decimal.Decimal, error) {
	if fee.IsZero() || src.Timing() == billing.FeeAdvance {
		return decimal.Zero, nil
	}
	secs := period.Seconds()
	if src.Interval() == billing.FeeYearly {
		y := time.Date(at.Year(), 1, 1, 0, 0, 0, 0, period.Start.Location())
		secs = int64(y.AddDate(1, 0, 0).Sub(y) / time.Second)
	}
	// fee × 3600 ÷ seconds: the one division of a fee; it keeps 19 significant digits, never
	// the currency's 2.
	num, err := fee.Mul(secondsPerHour)
	if err != nil {
		return decimal.Zero, err
	}
	return num.Quo(decimal.MustNew(secs, 0))
}
