package calc

import (
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Parts of a tally: what a group of usage is, so that late usage and credits are never mixed
// into the period's tiers.
const (
	partUsage      = "usage"
	partAdjustment = "adjustment"
	partCredit     = "credit"
)

// pricer prices one customer's usage for one invoice.
//
// A piece of usage is cut at every change of the policy version in force, then measured by the
// rule of that version. A flat measure (with nothing included) is its own line; any other
// measure is summed into the customer's tally per pricing, and the totals are priced once at
// the end, one line per tier. Late usage (before the period) and credits are tallied apart from
// the period's usage: they get no included quantity and start at the first tier (a tier reached
// on an earlier invoice cannot be known here). Each line is rounded once.
type pricer struct {
	o     Options
	run   *pipeline.Run
	it    *pipeline.Item
	tally rating.Tally
	buf   []rating.Measure
	disc  *discounts
}

func newPricer(o Options, run *pipeline.Run, it *pipeline.Item) (*pricer, error) {
	d, err := newDiscounts(it, run.Period)
	if err != nil {
		return nil, err
	}
	return &pricer{o: o, run: run, it: it, disc: d}, nil
}

// part names where a piece belongs: the period's usage, late usage or a credit.
func (pr *pricer) part(r interval.Range, credit bool) (string, invoice.Section) {
	switch {
	case credit:
		return partCredit, invoice.Credit
	case r.Start.Before(pr.run.Period.Start):
		return partAdjustment, invoice.Adjustment
	default:
		return partUsage, invoice.Usage
	}
}

// Discounts on usage priced as a period total: the total is never split by a discount window
// (its tiers apply to the whole); a discount covers the share of the total's rounded amount that
// its share of the quantity is, rounded to the currency (see discounts.countShares).

// piece prices one piece of a resource's usage, cut at policy version changes.
func (pr *pricer) piece(ru *store.ResourceUsage, p piece, r interval.Range) error {
	for !r.Empty() {
		pol, until, err := PolicyAt(pr.run.Policies, pr.it, r.Start, pr.o.DefaultPolicy)
		if err != nil {
			return err
		}
		part := r
		if until.Before(part.End) {
			part.End = until
		}
		if err := pr.version(ru, p, part, pol); err != nil {
			return err
		}
		r.Start = part.End
	}
	return nil
}

// version prices a piece under one policy version. A piece whose type the policy does not price
// is counted in the run's statistics and billed at nothing: its range is still recorded, so
// adding a rule later prices usage from then on, never retroactively.
func (pr *pricer) version(ru *store.ResourceUsage, p piece, r interval.Range, pol *rating.Policy) error {
	rule, ok := pol.Rule(ru.ResourceType)
	if !ok {
		if pr.run.Stats != nil {
			pr.run.Stats.AddUnpriced(ru.ResourceType)
		}
		return nil
	}
	var err error
	pr.buf, err = rule.Measure(pr.buf[:0], rating.Usage{ResourceType: ru.ResourceType, ResourceID: ru.ResourceID, Attributes: p.rec.Attributes, Range: r})
	if err != nil {
		return fmt.Errorf("policy %s: %w", pol.Name, err)
	}
	part, section := pr.part(r, p.credit)
	tag := pr.disc.tag(ru.ResourceID, ru.ResourceType, "", r.Start)
	for i := range pr.buf {
		m := &pr.buf[i]
		if m.Pricing.PerPiece(pr.included(pol, ru.ResourceType, part)) {
			ch, err := m.Charge()
			if err != nil {
				return fmt.Errorf("policy %s: %s %s: %w", pol.Name, ru.ResourceType, ru.ResourceID, err)
			}
			pr.add(invoice.Line{
				Section: section, ResourceID: ru.ResourceID, ResourceType: ru.ResourceType, Policy: pol.Name,
				Region: p.rec.Attributes["region"], Start: r.Start, End: r.End, Seconds: r.Seconds(), Attributes: p.rec.Attributes,
			}, ch, p.credit, tag)
			continue
		}
		k := rating.TallyKey{Pricing: m.Pricing, Unit: m.Unit, Rule: ru.ResourceType, Policy: pol, Part: part + "|" + ru.ResourceType}
		if err := pr.tally.AddTagged(k, m, r, tag); err != nil {
			return fmt.Errorf("policy %s: %s %s: %w", pol.Name, ru.ResourceType, ru.ResourceID, err)
		}
	}
	pr.it.Spans++
	return nil
}

// included is the free quantity of a rule for the period's usage (never for late usage or
// credits).
func (pr *pricer) included(pol *rating.Policy, rule, part string) decimal.Decimal {
	if part != partUsage {
		return decimal.Zero
	}
	return pol.Included(rule)
}

// add rounds a charge once and appends its line; a credit is negative. Lines of the period's
// usage and late usage count toward the discounts tagged on them.
func (pr *pricer) add(l invoice.Line, ch rating.Charge, credit bool, tag string) {
	l.Description = ch.Description
	switch {
	case credit:
		l.Description = fmt.Sprintf("%s, credit: billed earlier, not used %s", l.Description, dates(interval.Range{Start: l.Start, End: l.End}))
		ch.Quantity = ch.Quantity.Neg()
		ch.Amount = ch.Amount.Neg()
	case l.Section == invoice.Adjustment:
		l.Description = fmt.Sprintf("%s, late usage %s", l.Description, dates(interval.Range{Start: l.Start, End: l.End}))
	}
	if g := ch.Granularity; g == "minute" || g == "hour" || g == "day" {
		// Stated in words too, so that every document shows it.
		l.Description += ", per started " + g
	}
	l.Quantity, l.Unit, l.UnitPrice, l.Granularity = ch.Quantity, ch.Unit, ch.UnitPrice, ch.Granularity
	l.Amount = pr.o.Rounding.Round(ch.Amount)
	pr.it.Invoice.Lines = append(pr.it.Invoice.Lines, l)
	if !credit {
		pr.disc.count(tag, &pr.it.Invoice.Lines[len(pr.it.Invoice.Lines)-1])
	}
}

// finish prices the tallied totals, one line per tier, then adds the discount lines.
func (pr *pricer) finish() error {
	priced, err := pr.tally.Price(func(g *rating.Group) (string, decimal.Decimal) {
		if !strings.HasPrefix(g.Part, partUsage+"|") {
			return "", decimal.Zero
		}
		return g.Policy.Name + "|" + g.Rule, g.Policy.Included(g.Rule)
	})
	if err != nil {
		return fmt.Errorf("price period totals: %w", err)
	}
	for _, pg := range priced {
		g := pg.Group
		part, resourceType, _ := strings.Cut(g.Part, "|")
		section := invoice.Usage
		switch part {
		case partAdjustment:
			section = invoice.Adjustment
		case partCredit:
			section = invoice.Credit
		}
		sum := decimal.Zero
		var attrs map[string]string
		if resourceType == MeterLineType {
			attrs = map[string]string{"meter": g.Rule}
		}
		for _, ch := range pg.Charges {
			pr.add(invoice.Line{
				Section: section, ResourceType: resourceType, Policy: g.Policy.Name,
				Start: g.Start, End: g.End, Seconds: g.Seconds, Attributes: attrs,
			}, ch, part == partCredit, "")
			sum, _ = sum.Add(pr.it.Invoice.Lines[len(pr.it.Invoice.Lines)-1].Amount)
		}
		if part != partCredit {
			if err := pr.disc.countShares(g, sum, pr.o.Rounding); err != nil {
				return err
			}
		}
	}
	return pr.disc.lines(pr.it, pr.o.Rounding)
}

// discountBounds returns the edges of the discount windows that concern a resource, where its
// usage must be cut so that each line is wholly inside or outside each window.
func discountBounds(ds []billing.Discount, resourceID, resourceType string) []time.Time {
	var out []time.Time
	for _, d := range ds {
		if concerns(d, resourceID, resourceType, "") {
			out = append(out, d.Start)
			if !d.End.IsZero() {
				out = append(out, d.End)
			}
		}
	}
	return out
}
