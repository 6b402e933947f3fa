package handlers

import (
	"context"
	"fmt"
	"sort"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
)

// loadStoredMeters appends to Item.Meters the meter totals stored in the store (`bilean import
// meters`), so that a cloud without Gnocchi can bill traffic: for each active item, the totals
// that lie within [it.BillingStart (zero: since ever), run.Until) — a total is one aggregate and
// cannot be cut, so one that ends after Until waits for the run whose period holds it — less
// those wholly billed already (a live charged range of their pseudo-resource
// meter/<meter>/<resource> covers them). A total that arrives late for an invoiced period is
// billed on the next invoice as an adjustment, like a late trigger record. A regenerate run gets
// the totals of exactly the replaced invoice's meter ranges.
//
// Two totals of one meter of one resource that overlap (imported under two ids, or from both
// Gnocchi and the store) would bill a second twice: the customer fails with both named. So does a
// customer whose totals cannot be read (other customers go on; the run can be run again).
func loadStoredMeters(ctx context.Context, st store.Store, run *pipeline.Run, ids []string, items map[string]*pipeline.Item) {
	if len(ids) == 0 {
		return
	}
	fail := func(ids []string, err error) {
		for _, id := range ids {
			if it := items[id]; it != nil && it.Active() {
				it.Err = err
			}
		}
	}
	if run.Replaying() {
		if run.Replacing == nil {
			return
		}
		if err := loadReplacedMeters(ctx, st, run.Replacing, items[run.Replacing.CustomerID]); err != nil {
			fail([]string{run.Replacing.CustomerID}, err)
		}
		return
	}
	var active []string
	lo := run.Until
	for _, id := range ids {
		if it := items[id]; it != nil && it.Active() {
			active = append(active, id)
			lo = interval.Earlier(lo, it.BillingStart)
		}
	}
	if len(active) == 0 || !lo.Before(run.Until) {
		return
	}
	ms, err := st.MeterTotals(ctx, active, interval.Range{Start: lo, End: run.Until})
	if err != nil {
		fail(active, fmt.Errorf("load stored meter totals: %w", err))
		return
	}
	byCustomer := map[string][]billing.MeterTotal{}
	for _, m := range ms {
		it := items[m.CustomerID]
		if it == nil || m.Range.Start.Before(it.BillingStart) || m.Range.End.After(run.Until) {
			continue
		}
		byCustomer[m.CustomerID] = append(byCustomer[m.CustomerID], m)
	}
	for _, id := range active {
		it, totals := items[id], byCustomer[id]
		if len(totals) == 0 {
			continue
		}
		it.Meters = append(it.Meters, unbilledMeters(it.MeterBilled, totals)...)
		if err := checkMeterOverlaps(it.Meters); err != nil {
			it.Err = err
		}
	}
}

// unbilledMeters drops the totals that the live charged ranges of their pseudo-resources (read
// once per batch by the feeding, Item.MeterBilled) already cover wholly. A total billed only in
// part is kept: the calculator bills the rest.
func unbilledMeters(billed map[string]store.BilledSets, totals []billing.MeterTotal) []billing.MeterTotal {
	out := totals[:0]
	for _, m := range totals {
		set := billed[calc.MeterResourceID(m)].Charged
		if len(set) > 0 && interval.NewSet(m.Range).Subtract(set).Seconds() == 0 {
			continue // already billed
		}
		out = append(out, m)
	}
	return out
}

// loadReplacedMeters gives a regenerate run's item the stored totals whose ranges the replaced
// invoice billed (the pricing re-prices exactly those).
func loadReplacedMeters(ctx context.Context, st store.Meters, old *invoice.Invoice, it *pipeline.Item) error {
	if it == nil || !it.Active() {
		return nil
	}
	ranges := map[string][]interval.Range{}
	var hull interval.Range
	for _, br := range old.Ranges {
		if br.Kind != invoice.Charge || !calc.IsMeterResource(br.ResourceID) {
			continue
		}
		ranges[br.ResourceID] = append(ranges[br.ResourceID], br.Range)
		if hull.Empty() {
			hull = br.Range
		} else {
			hull = interval.Range{Start: interval.Earlier(hull.Start, br.Range.Start), End: interval.Later(hull.End, br.Range.End)}
		}
	}
	if len(ranges) == 0 {
		return nil
	}
	ms, err := st.MeterTotals(ctx, []string{old.CustomerID}, hull)
	if err != nil {
		return fmt.Errorf("load stored meter totals of %s: %w", old.Number, err)
	}
	added := false
	for _, m := range ms {
		for _, r := range ranges[calc.MeterResourceID(m)] {
			if r == m.Range {
				it.Meters = append(it.Meters, m)
				added = true
				break
			}
		}
	}
	if added {
		return checkMeterOverlaps(it.Meters)
	}
	return nil
}

// checkMeterOverlaps refuses two totals of one meter of one resource that share a second.
func checkMeterOverlaps(ms []billing.MeterTotal) error {
	type span struct {
		r    interval.Range
		name string
	}
	byKey := map[string][]span{}
	for _, m := range ms {
		name := m.Source
		if m.ID != "" {
			name += " id " + m.ID
		}
		if name == "" {
			name = "meter total"
		}
		k := calc.MeterResourceID(m)
		byKey[k] = append(byKey[k], span{m.Range, name})
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ss := byKey[k]
		if len(ss) < 2 {
			continue
		}
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].r.Start.Before(ss[j].r.Start) })
		cover := ss[0]
		for _, s := range ss[1:] {
			if s.r.Start.Before(cover.r.End) {
				return fmt.Errorf("%s: the totals %s %s and %s %s overlap: a second would be billed twice",
					k, cover.name, cover.r, s.name, s.r)
			}
			if s.r.End.After(cover.r.End) {
				cover = s
			}
		}
	}
	return nil
}
