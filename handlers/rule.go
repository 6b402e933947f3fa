package handlers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Rule adds the recurring fees of each subscription, prorated to the second.
//
// A policy version's fee is per interval: a calendar month (monthly) or a calendar year (yearly)
// in the billing timezone. A piece of an interval costs fee × seconds ÷ seconds of that interval,
// rounded once per line. Pieces are cut at interval edges and at policy version changes, each
// priced by the version in force.
//
// What is charged is what is due and not billed yet, like usage: the subscription's seconds from
// the customer's billing start up to a horizon, minus the fee ranges already billed (net of
// credits). The horizon is the run's end for a fee in arrears, and the end of the interval that
// holds the run's end for a fee in advance: the October invoice carries November's monthly fee,
// the December invoice next year's yearly fee. Billed fee seconds that the subscription no longer
// covers (a plan change or a cancellation after the fee was charged in advance) are credited at
// the price of the version in force for them. So a change at a second credits the unused advance
// fee from that second and charges the new fee for the remainder; a cancellation ends billing at
// that second. Fee ranges are recorded under the subscription's pseudo-resource, so a fee is never
// billed twice; a regenerate run re-prices exactly the replaced invoice's fee ranges.
type Rule struct {
	rounding invoice.Rounding
	loc      *time.Location
	store    store.Store
	// versions of each policy, oldest first; loaded once per run.
	versions map[string][]billing.Policy
}

var (
	_ pipeline.Handler = (*Rule)(nil)
	_ pipeline.Starter = (*Rule)(nil)
)

func init() {
	pipeline.Register("rule", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Rule{rounding: env.Config.Billing.Rounding, loc: env.Config.Location(), store: env.Store}, nil
	})
}

// Start loads every version of every policy.
func (h *Rule) Start(ctx context.Context, _ *pipeline.Run) error {
	all, err := h.store.PolicyVersions(ctx)
	if err != nil {
		return fmt.Errorf("load policy versions: %w", err)
	}
	h.versions = map[string][]billing.Policy{}
	for _, p := range all {
		h.versions[p.Name] = append(h.versions[p.Name], p)
	}
	for _, vs := range h.versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i].EffectiveFrom.Before(vs[j].EffectiveFrom) })
	}
	return nil
}

// Handle adds the fee lines.
func (h *Rule) Handle(ctx context.Context, b *pipeline.Batch) error {
	run := b.Run
	fixed := indexRanges(run.Replacing)
	var ids []string
	for _, it := range b.Active() {
		if len(it.Subscriptions) > 0 {
			ids = append(ids, it.CustomerID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// What the fees billed already (a regenerate run bills exactly the replaced invoice's ranges).
	var billed map[string]store.BilledSets
	if fixed == nil {
		var err error
		if billed, err = h.store.SubscriptionRanges(ctx, ids); err != nil {
			return fmt.Errorf("load subscription fee ranges: %w", err)
		}
	}
	for _, it := range b.Active() {
		for _, s := range it.Subscriptions {
			lower := it.BillingStart
			if lower.IsZero() {
				lower = run.Period.Start
			}
			if err := h.fee(run, it, s, lower, billed[s.ResourceID()], fixed); err != nil {
				it.Err = fmt.Errorf("customer %s: subscription %d: %w", it.CustomerID, s.ID, err)
				break
			}
		}
	}
	return nil
}

// versionAt returns the version of a policy in force at t (zero EffectiveFrom: since ever) and
// the start of the next version whose fee terms differ (zero when none): a version that changes
// only rules does not cut a fee line.
func versionAt(vs []billing.Policy, t time.Time) (billing.Policy, time.Time, bool) {
	i := sort.Search(len(vs), func(i int) bool { return vs[i].EffectiveFrom.After(t) })
	if i == 0 {
		var next time.Time
		if len(vs) > 0 {
			next = vs[0].EffectiveFrom
		}
		return billing.Policy{}, next, false
	}
	v := vs[i-1]
	for ; i < len(vs); i++ {
		w := vs[i]
		if w.Fee.Cmp(v.Fee) != 0 || w.Interval() != v.Interval() || w.Timing() != v.Timing() {
			return v, w.EffectiveFrom, true
		}
	}
	return v, time.Time{}, true
}

// feeInterval returns the calendar month or year, in the billing timezone, holding t.
func (h *Rule) feeInterval(t time.Time, kind string) interval.Range {
	if kind == billing.FeeYearly {
		y := t.In(h.loc).Year()
		return interval.Range{
			Start: time.Date(y, 1, 1, 0, 0, 0, 0, h.loc).UTC(),
			End:   time.Date(y+1, 1, 1, 0, 0, 0, 0, h.loc).UTC(),
		}
	}
	return interval.MonthOf(t, h.loc)
}

// due returns the seconds of the subscription whose fee is due by the end of this run: from
// lower to the horizon of the version in force, cut at version changes.
func (h *Rule) due(vs []billing.Policy, sub interval.Range, lower, until time.Time) interval.Set {
	var out []interval.Range
	// Version segments, from the first version's start (or lower) on.
	for i, v := range vs {
		seg := interval.Range{Start: v.EffectiveFrom, End: interval.Forever}
		if i+1 < len(vs) {
			seg.End = vs[i+1].EffectiveFrom
		}
		horizon := until
		if v.Timing() == billing.FeeAdvance {
			horizon = h.feeInterval(until, v.Interval()).End
		}
		r := seg.Intersect(sub).Intersect(interval.Range{Start: lower, End: horizon})
		if !r.Empty() {
			out = append(out, r)
		}
	}
	return interval.NewSet(out...)
}

// fee adds the fee lines of one subscription.
func (h *Rule) fee(run *pipeline.Run, it *pipeline.Item, s billing.Subscription, lower time.Time, billed store.BilledSets, fixed rangeIndex) error {
	vs, ok := h.versions[s.Policy]
	if !ok || len(vs) == 0 {
		return fmt.Errorf("policy %q does not exist", s.Policy)
	}
	for _, v := range vs {
		if v.Currency != "" && v.Currency != it.Customer.Currency {
			return fmt.Errorf("policy %s (version %d) is priced in %s, the customer is billed in %s", v.Name, v.Version, v.Currency, it.Customer.Currency)
		}
	}
	res := s.ResourceID()
	var charge, credit interval.Set
	if fixed != nil {
		charge = fixed[rangeKey{res, invoice.Charge}]
		credit = fixed[rangeKey{res, invoice.Credited}]
	} else {
		net := billed.Charged.Subtract(billed.Credited)
		charge = h.due(vs, s.Range(), lower, run.Until).Subtract(net)
		credit = net.Subtract(interval.NewSet(s.Range()))
	}
	for _, set := range []struct {
		ranges interval.Set
		credit bool
	}{{charge, false}, {credit, true}} {
		for _, r := range set.ranges {
			if err := h.pieces(run, it, s, vs, r, set.credit); err != nil {
				return err
			}
		}
	}
	return nil
}

// pieces cuts r at interval edges, version changes and the edges of the discount windows that
// concern the subscription (so a discount covers whole fee lines), and adds one line per piece.
func (h *Rule) pieces(run *pipeline.Run, it *pipeline.Item, s billing.Subscription, vs []billing.Policy, r interval.Range, credit bool) error {
	cuts := discountBounds(it.Discounts, s.ResourceID(), billing.SubscriptionType)
	for t := r.Start; t.Before(r.End); {
		v, next, ok := versionAt(vs, t)
		if !ok {
			return fmt.Errorf("policy %s has no version in force at %s (its first is effective %s)", s.Policy, t.Format(time.RFC3339), vs[0].EffectiveFrom.Format(time.RFC3339))
		}
		iv := h.feeInterval(t, v.Interval())
		end := r.End
		if iv.End.Before(end) {
			end = iv.End
		}
		if !next.IsZero() && next.Before(end) {
			end = next
		}
		for _, c := range cuts {
			if c.After(t) && c.Before(end) {
				end = c
			}
		}
		p := interval.Range{Start: t, End: end}
		t = end
		if v.Fee.IsZero() {
			continue
		}
		if err := h.line(run, it, s, v, iv, p, credit); err != nil {
			return err
		}
	}
	return nil
}

// line prices one piece of one interval at one version.
func (h *Rule) line(run *pipeline.Run, it *pipeline.Item, s billing.Subscription, v billing.Policy, iv, p interval.Range, credit bool) error {
	secs := decimal.MustNew(p.Seconds(), 0)
	ivSecs := decimal.MustNew(iv.Seconds(), 0)
	num, err := v.Fee.Mul(secs)
	if err != nil {
		return fmt.Errorf("fee of %s: %w", v.Name, err)
	}
	amount, err := num.Quo(ivSecs)
	if err != nil {
		return fmt.Errorf("fee of %s: %w", v.Name, err)
	}
	qty, err := secs.Quo(ivSecs)
	if err != nil {
		return fmt.Errorf("fee of %s: %w", v.Name, err)
	}
	qty = qty.Round(6).Trim(0)
	unit := "month"
	if v.Interval() == billing.FeeYearly {
		unit = "year"
	}
	desc := fmt.Sprintf("Policy %s, %sly fee", v.Name, unit)
	if v.Timing() == billing.FeeAdvance {
		desc += " in advance"
	}
	section := invoice.Recurring
	switch {
	case credit:
		section = invoice.Credit
		desc = fmt.Sprintf("%s, credit: billed earlier, unused %s", desc, dates(p))
		qty, amount = qty.Neg(), amount.Neg()
	case p.Start.Before(run.Period.Start):
		section = invoice.Adjustment
		desc = fmt.Sprintf("%s, earlier period %s", desc, dates(p))
	}
	res := s.ResourceID()
	it.Invoice.Lines = append(it.Invoice.Lines, invoice.Line{
		Section:      section,
		ResourceID:   res,
		ResourceType: billing.SubscriptionType,
		Description:  desc,
		Policy:       v.Name,
		Start:        p.Start,
		End:          p.End,
		Seconds:      p.Seconds(),
		Quantity:     qty,
		Unit:         unit,
		UnitPrice:    v.Fee,
		Granularity:  "second",
		Amount:       h.rounding.Round(amount),
		Attributes:   map[string]string{"policy_version": strconv.Itoa(v.Version), "fee_timing": v.Timing()},
	})
	kind := invoice.Charge
	if credit {
		kind = invoice.Credited
	}
	it.Invoice.Ranges = append(it.Invoice.Ranges, invoice.BilledRange{
		ResourceID: res, ResourceType: billing.SubscriptionType, Kind: kind, Range: p,
	})
	return nil
}
