package handlers

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"golang.org/x/sync/errgroup"
)

// gnocchiFeed gives the feeding handler what Gnocchi knows: meter totals for every item, and
// the spans of the resource types whose authoritative source is gnocchi (gnocchi.spans[].source),
// which replace the store's records of those types. Nil when gnocchi.enabled is false.
type gnocchiFeed struct {
	cfg  *config.Config
	once sync.Once
	src  *usage.Source
	err  error
}

func newGnocchiFeed(cfg *config.Config) *gnocchiFeed {
	if cfg == nil || !cfg.Gnocchi.Enabled {
		return nil
	}
	return &gnocchiFeed{cfg: cfg}
}

// source connects on first use, once per handler (a run).
func (g *gnocchiFeed) source(ctx context.Context) (*usage.Source, error) {
	g.once.Do(func() { g.src, g.err = usage.Open(ctx, g.cfg) })
	return g.src, g.err
}

// loadGnocchi fills Item.Meters and, for Gnocchi-authoritative types, Item.Usage of the active
// items from Gnocchi: meter totals over [period start, until), spans of the resources that lived
// in [spans start, until). The spans start is the previous period's start (not before the
// batch's earliest billing start), so that what Gnocchi learnt after that period was invoiced
// reaches this invoice, as the listener's late records do: a resource whose ended_at was set
// after the run is credited its unused time, a resource Gnocchi learnt of late is billed as late
// usage. A Gnocchi that fails fails the batch, so the run stops cleanly and can be run again.
func (h *Feeding) loadGnocchi(ctx context.Context, run *pipeline.Run, items map[string]*pipeline.Item, ids []string) error {
	if h.gnocchi == nil || len(ids) == 0 {
		return nil
	}
	if err := checkMeterRules(h.gnocchi.cfg.Gnocchi, run.Policies); err != nil {
		return err
	}
	src, err := h.gnocchi.source(ctx)
	if err != nil {
		return fmt.Errorf("gnocchi: %w", err)
	}
	r := interval.Range{Start: run.Period.Start, End: run.Until}
	spans := r
	if run.Replaying() && run.Replacing != nil {
		r = run.Replacing.Period
		spans = r
	} else {
		lo := r.Start
		for _, id := range ids {
			if it := items[id]; it != nil && it.BillingStart.Before(lo) {
				lo = it.BillingStart
			}
		}
		if prev := interval.MonthOf(r.Start.Add(-time.Second), h.gnocchi.cfg.Location()).Start; lo.Before(prev) {
			lo = prev
		}
		spans.Start = lo
	}
	var u, su usage.Usage
	if spans.Start.Equal(r.Start) {
		u, err = src.Fetch(ctx, ids, r, usage.Options{})
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { u, err = src.Fetch(gctx, ids, r, usage.Options{NoSpans: true}); return err })
		g.Go(func() (err error) { su, err = src.Fetch(gctx, ids, spans, usage.Options{NoMeters: true}); return err })
		err = g.Wait()
		u.Records = su.Records
	}
	if err != nil {
		return fmt.Errorf("gnocchi usage %s: %w", r, err)
	}
	for _, m := range u.Meters {
		if it := items[m.CustomerID]; it != nil && it.Active() {
			it.Meters = append(it.Meters, m)
		}
	}
	billedAs := map[string]bool{}
	for _, sp := range src.Config().Spans {
		if sp.Source == config.SourceGnocchi {
			billedAs[sp.BilledAs] = true
		}
	}
	if len(billedAs) == 0 {
		return nil
	}
	byCustomer := map[string][]billing.Record{}
	for _, rec := range u.Records {
		byCustomer[rec.CustomerID] = append(byCustomer[rec.CustomerID], rec)
	}
	for _, id := range ids {
		it := items[id]
		if it == nil || !it.Active() {
			continue
		}
		kept := it.Usage[:0]
		for _, ru := range it.Usage {
			if !billedAs[ru.ResourceType] {
				kept = append(kept, ru)
			}
		}
		it.Usage = kept
		recs := byCustomer[id]
		if len(recs) == 0 {
			continue
		}
		gu, err := h.gnocchiUsage(ctx, id, recs)
		if err != nil {
			return err
		}
		it.Usage = append(it.Usage, gu...)
		sort.SliceStable(it.Usage, func(i, j int) bool { return it.Usage[i].ResourceID < it.Usage[j].ResourceID })
	}
	return nil
}

// gnocchiUsage turns one customer's Gnocchi records (sorted by resource, start) into resource
// usage with the ranges the store already billed for those resources.
func (h *Feeding) gnocchiUsage(ctx context.Context, customerID string, recs []billing.Record) ([]store.ResourceUsage, error) {
	var rids []string
	for i, rec := range recs {
		if i == 0 || rec.ResourceID != recs[i-1].ResourceID {
			rids = append(rids, rec.ResourceID)
		}
	}
	billed, err := h.feed.ResourceHistory(ctx, customerID, rids)
	if err != nil {
		return nil, fmt.Errorf("load billed ranges of %s: %w", customerID, err)
	}
	prior := make(map[string]store.ResourceUsage, len(billed))
	for _, ru := range billed {
		prior[ru.ResourceID] = ru
	}
	out := make([]store.ResourceUsage, 0, len(rids))
	for _, rec := range recs {
		n := len(out)
		if n == 0 || out[n-1].ResourceID != rec.ResourceID {
			p := prior[rec.ResourceID]
			out = append(out, store.ResourceUsage{
				CustomerID: customerID, ResourceKey: p.ResourceKey, ResourceID: rec.ResourceID,
				ResourceType: rec.ResourceType, Since: rec.Start, Charged: p.Charged, Credited: p.Credited,
			})
			n++
		}
		out[n-1].Records = append(out[n-1].Records, rec)
	}
	return out, nil
}

// checkMeterRules honours gnocchi.meters[].rule: a policy version that prices a configured meter
// must do so with a rule of that type. A mismatch fails the run (it is configuration: the same
// for every customer on the policy), naming the policy, the meter and both types.
func checkMeterRules(cfg config.Gnocchi, policies map[string]*rating.Policy) error {
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, m := range cfg.Meters {
		for _, n := range names {
			for _, v := range policies[n].Versions() {
				r, ok := v.MeterRule(m.Name)
				if !ok {
					continue
				}
				if t := rating.RuleType(r); t != "" && t != m.Rule {
					return fmt.Errorf("gnocchi.meters[%d].rule: policy %s version %d prices meter %s with a %s rule, the configuration says %s",
						i, v.Name, v.Version, m.Name, t, m.Rule)
				}
			}
		}
	}
	return nil
}
