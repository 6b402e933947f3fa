package calc

import (
	"fmt"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
)

// piece is a range of one record to price; credit pieces are refunds.
type piece struct {
	rec    *billing.Record
	r      interval.Range
	credit bool
}

// pieces computes what to charge and credit for one resource. fixed, in a regenerate run, holds
// the replaced invoice's ranges: exactly those are priced again.
func pieces(ru *store.ResourceUsage, lower, until time.Time, fixed RangeIndex) ([]piece, error) {
	recs := ru.Records
	var charge, credit interval.Set
	if fixed != nil {
		charge = fixed[RangeKey{ru.ResourceID, invoice.Charge}]
		credit = fixed[RangeKey{ru.ResourceID, invoice.Credited}]
	}
	if len(recs) == 0 {
		if len(charge)+len(credit) > 0 {
			return nil, fmt.Errorf("resource %s has no trigger records any more: its billed ranges cannot be re-priced", ru.ResourceID)
		}
		return nil, nil
	}
	if fixed == nil {
		window := interval.Range{Start: lower, End: until}
		rs := make([]interval.Range, len(recs))
		for i := range recs {
			rs[i] = recs[i].Range()
		}
		used := interval.NewSet(rs...).IntersectRange(window)
		billed := ru.Charged.Subtract(ru.Credited)
		charge = used.Subtract(billed)
		lo := ru.Since
		if lower.After(lo) {
			lo = lower
		}
		credit = billed.Subtract(used).IntersectRange(interval.Range{Start: lo, End: until})
	}
	out := make([]piece, 0, len(recs))
	remaining := charge
	for i := range recs {
		if len(remaining) == 0 {
			break
		}
		part := remaining.IntersectRange(recs[i].Range())
		for _, p := range part {
			out = append(out, piece{rec: &recs[i], r: p})
		}
		if len(part) > 0 {
			remaining = remaining.Subtract(part)
		}
	}
	// Only a regenerate run can have ranges no record covers: they keep the price of the record
	// they were billed under, the last one that started before them.
	for _, p := range remaining {
		out = append(out, piece{rec: preceding(recs, p.Start), r: p})
	}
	for _, p := range credit {
		out = append(out, piece{rec: preceding(recs, p.Start), r: p, credit: true})
	}
	return out, nil
}

// settled returns the closed records that are billed completely once this invoice is stored: every
// second of each from the billing start on is in a live billed range. A record that straddles the
// billing start or the run's end, or whose range is only partly billed, stays unsettled, so its
// remaining seconds are always billed later.
//
// While the resource still has billed seconds that no record covers (a span closed after a later
// month was invoiced, credited only by a run whose end reaches them), nothing of it is settled:
// the resource must stay in the next runs' usage until that credit is issued.
func settled(ru *store.ResourceUsage, lower, until time.Time, charged, credited interval.Set) []billing.Ref {
	var billed interval.Set
	var out []billing.Ref
	for _, rec := range ru.Records {
		if rec.Settled || rec.End.IsZero() || rec.End.After(until) {
			continue
		}
		if billed == nil {
			billed = ru.Charged.Subtract(ru.Credited).Subtract(credited).Union(charged)
			rs := make([]interval.Range, len(ru.Records))
			for i := range ru.Records {
				rs[i] = ru.Records[i].Range()
			}
			if len(billed.Subtract(interval.NewSet(rs...))) > 0 {
				return nil
			}
		}
		need := interval.NewSet(rec.Range()).IntersectRange(interval.Range{Start: lower, End: interval.Forever})
		if len(need.Subtract(billed)) == 0 {
			out = append(out, billing.Ref{ID: rec.ID, Version: rec.Version})
		}
	}
	return out
}

// preceding returns the last record starting at or before t, or the first record.
func preceding(recs []billing.Record, t time.Time) *billing.Record {
	i := sort.Search(len(recs), func(i int) bool { return recs[i].Start.After(t) })
	if i == 0 {
		return &recs[0]
	}
	return &recs[i-1]
}

// Options are the configuration the calculation needs.
type Options struct {
	// Rounding is applied once per line (billing.rounding).
	Rounding invoice.Rounding
	// DefaultPolicy prices usage no subscription or customer policy covers (billing.default_policy).
	DefaultPolicy string
}

// Price prices an item's usage onto its draft invoice (it.Invoice, opened by the subscription tree,
// with the fee lines the rule handler added): for each resource what was used and not billed yet
// from the billing start up to the run's end, minus the ranges already billed (net of credits).
// Pieces before the period are adjustment lines (late usage) that name their own dates; ranges
// billed earlier that no record covers any more (a span closed late) are credited at the price of
// the record they belonged to. A regenerate run prices exactly the replaced invoice's ranges.
// Every piece is cut at the period start, at subscription changes, at policy version changes and
// at the edges of the discount windows that concern it, then priced by the rule of the policy
// version in force (PolicyAt) and rounded once. Meter totals are priced by the policy's meter
// rules (meters.go). Line and rule discounts become their own lines; the lines are sorted. It
// fills it.Invoice.Lines and Ranges, it.Settle and it.Spans; totals are invoice.Calculate's.
func Price(run *pipeline.Run, it *pipeline.Item, o Options) error {
	inv := it.Invoice
	pr, err := newPricer(o, run, it)
	if err != nil {
		return err
	}
	// Fee lines (the rule handler's) count toward the line and rule discounts that name the
	// subscription ("subscription/<id>") or the rule type "subscription"; credits do not.
	for i := range inv.Lines {
		if l := &inv.Lines[i]; l.ResourceType == billing.SubscriptionType && l.Section != invoice.Credit {
			pr.disc.count(pr.disc.tag(l.ResourceID, l.ResourceType, "", l.Start), l)
		}
	}
	bounds := append(SubscriptionBounds(it.Subscriptions), run.Period.Start)
	fixed := IndexRanges(run.Replacing)
	for ui := range it.Usage {
		ru := &it.Usage[ui]
		if IsMeterResource(ru.ResourceID) {
			continue // a meter's ranges are priced from its totals (meters.go)
		}
		ps, err := pieces(ru, it.BillingStart, run.Until, fixed)
		if err != nil {
			return err
		}
		cuts := append(discountBounds(it.Discounts, ru.ResourceID, ru.ResourceType), bounds...)
		var charged, credited []interval.Range
		for _, p := range ps {
			if p.credit {
				credited = append(credited, p.r)
			} else {
				charged = append(charged, p.r)
			}
			for _, r := range p.r.SplitAt(cuts...) {
				if err := pr.piece(ru, p, r); err != nil {
					return err
				}
				kind := invoice.Charge
				if p.credit {
					kind = invoice.Credited
				}
				inv.Ranges = append(inv.Ranges, invoice.BilledRange{
					ResourceKey: ru.ResourceKey, ResourceID: ru.ResourceID, ResourceType: ru.ResourceType, Kind: kind, Range: r,
				})
			}
		}
		if run.Mode == pipeline.Scheduled {
			it.Settle = append(it.Settle, settled(ru, it.BillingStart, run.Until, interval.NewSet(charged...), interval.NewSet(credited...))...)
		}
	}
	if err := pr.meters(fixed); err != nil {
		return err
	}
	if err := pr.finish(); err != nil {
		return err
	}
	sortLines(inv.Lines)
	return nil
}

func dates(r interval.Range) string {
	const f = "2006-01-02 15:04:05"
	return fmt.Sprintf("%s – %s UTC", r.Start.Format(f), r.End.Format(f))
}

var sectionOrder = map[invoice.Section]int{invoice.Recurring: 0, invoice.Usage: 1, invoice.Adjustment: 2, invoice.Credit: 3, RuleDiscountSection: 4}

// sortLines orders lines by section, resource type, resource id and start.
func sortLines(ls []invoice.Line) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.Section != b.Section {
			return sectionOrder[a.Section] < sectionOrder[b.Section]
		}
		if a.ResourceType != b.ResourceType {
			return a.ResourceType < b.ResourceType
		}
		if a.ResourceID != b.ResourceID {
			return a.ResourceID < b.ResourceID
		}
		return a.Start.Before(b.Start)
	})
}
