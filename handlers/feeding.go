package handlers

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// Feeding loads what a batch of customers needs: the customers, their subscriptions, trigger
// records with the ranges already billed, payments in the period and the balance before it.
type Feeding struct {
	customers store.Customers
	feed      store.Store
	gnocchi   *gnocchiFeed // nil unless gnocchi.enabled (feeding_gnocchi.go)
	// backMonths and loc bound how far back usage is billed (billing.back_billing_months).
	backMonths int
	loc        *time.Location
}

var (
	_ pipeline.Handler = (*Feeding)(nil)
	_ pipeline.Starter = (*Feeding)(nil)
)

func init() {
	pipeline.Register("subscription_feeding", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		if err := pipeline.DecodeNode(node, &struct{}{}); err != nil {
			return nil, err
		}
		return &Feeding{customers: env.Store, feed: env.Store, gnocchi: newGnocchiFeed(env.Config),
			backMonths: env.Config.Billing.BackBillingMonths, loc: env.Config.Location()}, nil
	})
}

// Start compiles every version of every policy once per run into run.Policies (calc.Catalog).
func (h *Feeding) Start(ctx context.Context, r *pipeline.Run) error {
	ps, err := calc.Catalog(ctx, h.feed)
	if err != nil {
		return err
	}
	r.Policies = ps
	return nil
}

// Handle fills the batch's items.
func (h *Feeding) Handle(ctx context.Context, b *pipeline.Batch) error {
	run := b.Run
	ids := b.CustomerIDs()
	if len(ids) == 0 {
		return nil
	}
	items := map[string]*pipeline.Item{}
	for _, it := range b.Items {
		items[it.CustomerID] = it
	}
	cs, err := h.customers.GetCustomers(ctx, ids)
	if err != nil {
		return fmt.Errorf("load customers: %w", err)
	}
	found := map[string]bool{}
	for _, c := range cs {
		items[c.ID].Customer = c
		found[c.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			items[id].Err = fmt.Errorf("customer %s does not exist", id)
		}
	}
	if run.Mode == pipeline.Scheduled {
		done, err := h.feed.Invoiced(ctx, b.CustomerIDs(), run.Period)
		if err != nil {
			return fmt.Errorf("check invoiced customers: %w", err)
		}
		for id, number := range done {
			items[id].SkipInvoiced(number)
		}
	}
	ids = b.CustomerIDs()
	if len(ids) == 0 {
		return nil
	}
	// Every unbilled second from the billing start on is billable: the subscriptions are those in
	// force at any of them, so that late usage is priced by the policy of its own time.
	var lower time.Time
	for i, id := range ids {
		it := items[id]
		it.BillingStart = calc.BillingStart(it.Customer, run.Period, h.backMonths, h.loc)
		if i == 0 || it.BillingStart.Before(lower) {
			lower = it.BillingStart
		}
	}
	subs, err := h.feed.Subscriptions(ctx, ids, interval.Range{Start: lower, End: interval.Later(run.Period.End, run.Until)})
	if err != nil {
		return fmt.Errorf("load subscriptions: %w", err)
	}
	for _, s := range subs {
		if it := items[s.CustomerID]; it != nil {
			it.Subscriptions = append(it.Subscriptions, s)
		}
	}
	if err := h.loadUsage(ctx, run, ids, items); err != nil {
		return err
	}
	if !run.Replaying() {
		billed, err := h.feed.MeterRanges(ctx, ids)
		if err != nil {
			return fmt.Errorf("load meter ranges: %w", err)
		}
		for id, m := range billed {
			if it := items[id]; it != nil {
				it.MeterBilled = m
			}
		}
	}
	if err := h.loadGnocchi(ctx, run, items, ids); err != nil {
		return err
	}
	loadStoredMeters(ctx, h.feed, run, ids, items) // feeding_meters.go: imported meter totals; a failure fails its customers
	pays, err := h.feed.Payments(ctx, ids, interval.Range{Start: run.Period.Start, End: run.Until})
	if err != nil {
		return fmt.Errorf("load payments: %w", err)
	}
	for _, p := range pays {
		if it := items[p.CustomerID]; it != nil {
			it.Payments = append(it.Payments, p)
		}
	}
	bal, err := h.feed.Balances(ctx, ids, run.Period.Start)
	if err != nil {
		return fmt.Errorf("load balances: %w", err)
	}
	for id, v := range bal {
		items[id].PreviousBalance = v
	}
	return nil
}

func (h *Feeding) loadUsage(ctx context.Context, run *pipeline.Run, ids []string, items map[string]*pipeline.Item) error {
	if run.Replaying() {
		old := run.Replacing
		var rids []string
		seen := map[string]bool{}
		for _, br := range old.Ranges {
			if !billing.IsSubscriptionResource(br.ResourceID) && !seen[br.ResourceID] {
				seen[br.ResourceID] = true
				rids = append(rids, br.ResourceID)
			}
		}
		sort.Strings(rids)
		us, err := h.feed.ResourceHistory(ctx, old.CustomerID, rids)
		if err != nil {
			return fmt.Errorf("load usage of %s: %w", old.Number, err)
		}
		if it := items[old.CustomerID]; it != nil {
			it.Usage = us
		}
		return nil
	}
	us, err := h.feed.Usage(ctx, ids, run.Until)
	if err != nil {
		return fmt.Errorf("load usage: %w", err)
	}
	for _, u := range us {
		if it := items[u.CustomerID]; it != nil {
			it.Usage = append(it.Usage, u)
		}
	}
	return nil
}
