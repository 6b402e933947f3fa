package handlers

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// Calculation turns trigger records into usage lines and computes the invoice's totals.
//
// For each resource it bills what was used and not billed yet: the union of its records up to the
// run's end, minus the ranges already billed (net of credits), from the customer's billing start
// on. Pieces before the period are adjustment lines (late usage) that name their own dates; ranges
// billed earlier that no record covers any more (a span closed late) are credited at the price of
// the record they belonged to. A regenerate run prices exactly the replaced invoice's ranges.
// Every piece is cut at the period start and at subscription changes, priced by the rule of the
// policy in force, and rounded once.
type Calculation struct {
	rounding      invoice.Rounding
	defaultPolicy string
}

var _ pipeline.Handler = (*Calculation)(nil)

func init() {
	pipeline.Register("invoice_calculation", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Calculation{rounding: env.Config.Billing.Rounding, defaultPolicy: env.Config.Billing.DefaultPolicy}, nil
	})
}

// Handle prices the usage of every active item and totals its invoice.
func (h *Calculation) Handle(_ context.Context, b *pipeline.Batch) error {
	for _, it := range b.Active() {
		if it.Invoice == nil {
			continue
		}
		if err := h.price(b.Run, it); err != nil {
			it.Err = fmt.Errorf("customer %s: %w", it.CustomerID, err)
			continue
		}
		sortLines(it.Invoice.Lines)
		if err := it.Invoice.Calculate(h.rounding); err != nil {
			it.Err = err
			continue
		}
		if len(it.Invoice.Lines) == 0 && it.Invoice.Payments.IsZero() && b.Run.Mode != pipeline.Regenerate {
			it.Skip = "nothing to bill"
		}
	}
	return nil
}

// piece is a range of one record to price; credit pieces are refunds.
type piece struct {
	rec    *billing.Record
	r      interval.Range
	credit bool
}

// pieces computes what to charge and credit for one resource. fixed, in a regenerate run, holds
// the replaced invoice's ranges: exactly those are priced again.
func pieces(ru *store.ResourceUsage, lower, until time.Time, fixed rangeIndex) ([]piece, error) {
	recs := ru.Records
	var charge, credit interval.Set
	if fixed != nil {
		charge = fixed[rangeKey{ru.ResourceID, invoice.Charge}]
		credit = fixed[rangeKey{ru.ResourceID, invoice.Credited}]
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

// preceding returns the last record starting at or before t, or the first record.
func preceding(recs []billing.Record, t time.Time) *billing.Record {
	i := sort.Search(len(recs), func(i int) bool { return recs[i].Start.After(t) })
	if i == 0 {
		return &recs[0]
	}
	return &recs[i-1]
}

func (h *Calculation) price(run *pipeline.Run, it *pipeline.Item) error {
	inv := it.Invoice
	bounds := append(subscriptionBounds(it.Subscriptions), run.Period.Start)
	fixed := indexRanges(run.Replacing)
	for ui := range it.Usage {
		ru := &it.Usage[ui]
		ps, err := pieces(ru, it.BillingStart, run.Until, fixed)
		if err != nil {
			return err
		}
		for _, p := range ps {
			for _, r := range p.r.SplitAt(bounds...) {
				if err := h.line(run, it, ru, p, r); err != nil {
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
			for _, rec := range ru.Records {
				if !rec.Settled && !rec.End.IsZero() && !rec.End.After(run.Until) {
					it.Settle = append(it.Settle, billing.Ref{ID: rec.ID, Version: rec.Version})
				}
			}
		}
	}
	return nil
}

// line prices one piece and appends its line. A piece whose type no rule of the policy prices
// is counted in the run's statistics and billed at nothing: its range is still recorded, so
// adding a rule later prices usage from then on, never retroactively.
func (h *Calculation) line(run *pipeline.Run, it *pipeline.Item, ru *store.ResourceUsage, p piece, r interval.Range) error {
	pol, err := policyAt(run, it, r.Start, h.defaultPolicy)
	if err != nil {
		return err
	}
	rule, ok := pol.Rule(ru.ResourceType)
	if !ok {
		if run.Stats != nil {
			run.Stats.AddUnpriced(ru.ResourceType)
		}
		return nil
	}
	ch, err := rule.Price(rating.Usage{ResourceType: ru.ResourceType, ResourceID: ru.ResourceID, Attributes: p.rec.Attributes, Range: r})
	if err != nil {
		return fmt.Errorf("policy %s: %w", pol.Name, err)
	}
	section := invoice.Usage
	desc := ch.Description
	switch {
	case p.credit:
		section = invoice.Credit
		desc = fmt.Sprintf("%s, credit: billed earlier, not used %s", desc, dates(r))
		ch.Quantity = ch.Quantity.Neg()
		ch.Amount = ch.Amount.Neg()
	case r.Start.Before(run.Period.Start):
		section = invoice.Adjustment
		desc = fmt.Sprintf("%s, late usage %s", desc, dates(r))
	}
	it.Invoice.Lines = append(it.Invoice.Lines, invoice.Line{
		Section:      section,
		ResourceID:   ru.ResourceID,
		ResourceType: ru.ResourceType,
		Description:  desc,
		Policy:       pol.Name,
		Region:       p.rec.Attributes["region"],
		Start:        r.Start,
		End:          r.End,
		Seconds:      r.Seconds(),
		Quantity:     ch.Quantity,
		Unit:         ch.Unit,
		UnitPrice:    ch.UnitPrice,
		Amount:       h.rounding.Round(ch.Amount),
		Attributes:   p.rec.Attributes,
	})
	it.Spans++
	return nil
}

func dates(r interval.Range) string {
	const f = "2006-01-02 15:04:05"
	return fmt.Sprintf("%s – %s UTC", r.Start.Format(f), r.End.Format(f))
}

var sectionOrder = map[invoice.Section]int{invoice.Recurring: 0, invoice.Usage: 1, invoice.Adjustment: 2, invoice.Credit: 3}

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
