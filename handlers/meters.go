package handlers

import (
	"fmt"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/rating"
)

// meterLineType is the resource type of meter lines and of the pseudo-resources under which a
// meter's ranges are recorded.
const meterLineType = "meter"

const meterPrefix = meterLineType + "/"

// isMeterResource reports whether a resource id names a meter's pseudo-resource.
func isMeterResource(id string) bool { return strings.HasPrefix(id, meterPrefix) }

// meterResourceID is the pseudo-resource under which a meter total's range is recorded, so that
// the store refuses to bill the same meter of the same resource twice for a second.
func meterResourceID(mt billing.MeterTotal) string {
	return meterPrefix + mt.Meter + "/" + mt.ResourceID
}

// meters prices the item's meter totals by the meter rule of the policy version in force at
// each total's start (a total cannot be cut at a version change: it is one aggregate), and
// records each total's range. A meter no rule prices is counted in the statistics and billed at
// nothing, its range still recorded; a zero total gives no line. A regenerate run (fixed not
// nil) prices exactly the totals whose ranges the replaced invoice billed, and refuses to go on
// when one of those has no total any more.
func (pr *pricer) meters(fixed rangeIndex) error {
	matched := map[rangeKey]bool{}
	for _, mt := range pr.it.Meters {
		if mt.Range.Empty() {
			continue
		}
		if fixed != nil {
			k := rangeKey{meterResourceID(mt), invoice.Charge}
			if set := fixed[k]; len(set) != 1 || !set[0].Start.Equal(mt.Range.Start) || !set[0].End.Equal(mt.Range.End) {
				continue
			}
			matched[k] = true
		}
		if mt.CustomerID != "" && mt.CustomerID != pr.it.CustomerID {
			return fmt.Errorf("meter %s of %s belongs to customer %s", mt.Meter, mt.ResourceID, mt.CustomerID)
		}
		pr.it.Invoice.Ranges = append(pr.it.Invoice.Ranges, invoice.BilledRange{
			ResourceID: meterResourceID(mt), ResourceType: meterLineType, Kind: invoice.Charge, Range: mt.Range,
		})
		pol, _, err := policyVersionAt(pr.run, pr.it, mt.Range.Start, pr.h.defaultPolicy)
		if err != nil {
			return err
		}
		rule, ok := pol.MeterRule(mt.Meter)
		if !ok {
			if pr.run.Stats != nil {
				pr.run.Stats.AddUnpriced(meterLineType + " " + mt.Meter)
			}
			continue
		}
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
				pr.add(invoice.Line{Section: section, ResourceID: mt.ResourceID, ResourceType: meterLineType, Policy: pol.Name,
					Region: mt.Attributes["region"], Start: mt.Range.Start, End: mt.Range.End, Seconds: mt.Range.Seconds(),
					Attributes: map[string]string{"meter": mt.Meter, "aggregation": mt.Aggregation}}, ch, false, tag)
				continue
			}
			k := rating.TallyKey{Pricing: m.Pricing, Unit: m.Unit, Rule: mt.Meter, Policy: pol, Part: part + "|" + meterLineType}
			if err := pr.tally.AddTagged(k, m, mt.Range, tag); err != nil {
				return fmt.Errorf("policy %s: meter %s: %w", pol.Name, mt.Meter, err)
			}
		}
		pr.it.Spans++
	}
	for k := range fixed {
		if isMeterResource(k.resourceID) && !matched[k] {
			return fmt.Errorf("%s: no meter total matches its billed ranges: they cannot be re-priced", k.resourceID)
		}
	}
	return nil
}
