package handlers

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
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
// items from Gnocchi over [period start, until). A Gnocchi that fails fails the batch, so the
// run stops cleanly and can be run again.
func (h *Feeding) loadGnocchi(ctx context.Context, run *pipeline.Run, items map[string]*pipeline.Item, ids []string) error {
	if h.gnocchi == nil || len(ids) == 0 {
		return nil
	}
	src, err := h.gnocchi.source(ctx)
	if err != nil {
		return fmt.Errorf("gnocchi: %w", err)
	}
	r := interval.Range{Start: run.Period.Start, End: run.Until}
	if run.Mode == pipeline.Regenerate && run.Replacing != nil {
		r = run.Replacing.Period
	}
	u, err := src.Fetch(ctx, ids, r, usage.Options{})
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
