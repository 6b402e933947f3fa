package calc

import (
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/rating"
	"github.com/govalues/decimal"
)

// MeterLineType is the resource type of meter lines and of the pseudo-resources under which a
// meter's ranges are recorded.
const MeterLineType = "meter"

const meterPrefix = MeterLineType + "/"

// IsMeterResource reports whether a resource id names a meter's pseudo-resource.
func IsMeterResource(id string) bool { return strings.HasPrefix(id, meterPrefix) }

// MeterResourceID is the pseudo-resource under which a meter total's range is recorded, so that
// the store refuses to bill the same meter of the same resource twice for a second.
func MeterResourceID(mt billing.MeterTotal) string {
	return meterPrefix + mt.Meter + "/" + mt.ResourceID
}

// meters prices the item's meter totals by the meter rules of the policy versions in force, and
// records the ranges it bills.
//
// What is billed of a total is what no live invoice billed yet: its range minus the meter's live
// billed ranges (net of credits), so an interim invoice or a balance after the month was invoiced
// never counts the month's traffic again. A regenerate run (fixed not nil) prices exactly the parts
// of the totals that the replaced invoice billed, and refuses to go on when a billed range has no
// total any more.
//
// A total is one aggregate over its range: where a subscription change, a policy version or the
// period start falls inside it, it is split pro rata by seconds (the last piece takes the
// remainder, so the pieces add up to the total exactly), each piece priced by the version in force
// for it. Pro rata is the one rule that holds for every source: a stored or imported total has no
// finer data, and Gnocchi's aggregates are fetched per period. A meter no rule prices is counted in
// the statistics and billed at nothing, its range still recorded; a zero total gives no line.
func (pr *pricer) meters(fixed RangeIndex) error {
	covered := map[RangeKey]interval.Set{}
	cuts := append(SubscriptionBounds(pr.it.Subscriptions), pr.run.Period.Start)
	for _, mt := range pr.it.Meters {
		if mt.Range.Empty() {
			continue
		}
		if mt.CustomerID != "" && mt.CustomerID != pr.it.CustomerID {
			return fmt.Errorf("meter %s of %s belongs to customer %s", mt.Meter, mt.ResourceID, mt.CustomerID)
		}
		k := RangeKey{MeterResourceID(mt), invoice.Charge}
		var billable interval.Set
		if fixed != nil {
			billable = fixed[k].IntersectRange(mt.Range)
			covered[k] = covered[k].Union(billable)
		} else {
			b := pr.it.MeterBilled[k.ResourceID]
			billable = interval.NewSet(mt.Range).Subtract(b.Charged.Subtract(b.Credited))
		}
		if len(billable) == 0 {
			continue
		}
		if err := pr.meterPieces(mt, billable, cuts); err != nil {
			return err
		}
	}
	for k, set := range fixed {
		if IsMeterResource(k.ResourceID) && len(set.Subtract(covered[k])) > 0 {
			return fmt.Errorf("%s: no meter total matches its billed ranges: they cannot be re-priced", k.ResourceID)
		}
	}
	return nil
}

// meterPieces cuts one total at the cuts, the billable set's edges and policy version changes,
// shares its quantity among the pieces pro rata by seconds, and prices the billable pieces.
func (pr *pricer) meterPieces(mt billing.MeterTotal, billable interval.Set, cuts []time.Time) error {
	all := cuts
	for _, r := range billable {
		all = append(all, r.Start, r.End)
	}
	type cut struct {
		r   interval.Range
		pol *rating.Policy
	}
	var ps []cut
	for _, r := range mt.Range.SplitAt(all...) {
		for !r.Empty() {
			pol, until, err := PolicyAt(pr.run.Policies, pr.it, r.Start, pr.o.DefaultPolicy)
			if err != nil {
				return err
			}
			p := r
			if until.Before(p.End) {
				p.End = until
			}
			ps = append(ps, cut{p, pol})
			r.Start = p.End
		}
	}
	total := decimal.MustNew(mt.Range.Seconds(), 0)
	left := mt.Quantity
	for i, c := range ps {
		q := left
		if i < len(ps)-1 {
			num, err := mt.Quantity.Mul(decimal.MustNew(c.r.Seconds(), 0))
			if err == nil {
				q, err = num.Quo(total)
			}
			if err == nil {
				left, err = left.Sub(q)
			}
			if err != nil {
				return fmt.Errorf("meter %s of %s: share of %s: %w", mt.Meter, mt.ResourceID, c.r, err)
			}
		}
		if len(billable.IntersectRange(c.r)) == 0 {
			continue
		}
		part := mt
		part.Range, part.Quantity = c.r, q
		if err := pr.meterPiece(part, c.pol); err != nil {
			return err
		}
	}
	return nil
}

// meterPiece prices one piece of a meter total under one policy version and records its range.
func (pr *pricer) meterPiece(mt billing.MeterTotal, pol *rating.Policy) error {
	pr.it.Invoice.Ranges = append(pr.it.Invoice.Ranges, invoice.BilledRange{
		ResourceID: MeterResourceID(mt), ResourceType: MeterLineType, Kind: invoice.Charge, Range: mt.Range,
	})
	rule, ok := pol.MeterRule(mt.Meter)
	if !ok {
		if pr.run.Stats != nil {
			pr.run.Stats.AddUnpriced(MeterLineType + " " + mt.Meter)
		}
		return nil
	}
	var err error
	pr.buf, err = rule.Measure(pr.buf[:0], rating.Usage{ResourceType: mt.ResourceType, ResourceID: mt.ResourceID, Attributes: mt.Attributes,
		Range: mt.Range, Meter: mt.Meter, Quantity: mt.Quantity, Unit: mt.Unit})
	if err != nil {
		return fmt.Errorf("policy %s: %w", pol.Name, err)
	}
	part, section := pr.part(mt.Range, false)
	tag := pr.disc.tag(mt.ResourceID, mt.ResourceType, mt.Meter, mt.Range.Start)
	for i := range pr.buf {
		m := &pr.buf[i]
		if m.Pricing.PerPiece(pr.included(pol, mt.Meter, part)) {
			if !m.Num.IsPos() {
				continue
			}
			ch, err := m.Charge()
			if err != nil {
				return fmt.Errorf("policy %s: meter %s: %w", pol.Name, mt.Meter, err)
			}
			pr.add(invoice.Line{Section: section, ResourceID: mt.ResourceID, ResourceType: MeterLineType, Policy: pol.Name,
				Region: mt.Attributes["region"], Start: mt.Range.Start, End: mt.Range.End, Seconds: mt.Range.Seconds(),
				Attributes: map[string]string{"meter": mt.Meter, "aggregation": mt.Aggregation}}, ch, false, tag)
			continue
		}
		k := rating.TallyKey{Pricing: m.Pricing, Unit: m.Unit, Rule: mt.Meter, Policy: pol, Part: part + "|" + MeterLineType}
		if err := pr.tally.AddTagged(k, m, mt.Range, tag); err != nil {
			return fmt.Errorf("policy %s: meter %s: %w", pol.Name, mt.Meter, err)
		}
	}
	pr.it.Spans++
	return nil
}
