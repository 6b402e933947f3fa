package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store/codec"
	"github.com/bilean/bilean/store/derive"
)

// RecordEvents implements Events.RecordEvents over a driver: the events are checked before
// anything is written, then stored and every resource they touch derived again, in one
// transaction.
func RecordEvents(ctx context.Context, d EventDriver, b EventBatch) (EventResult, error) {
	var res EventResult
	// Both backends refuse the same events, before writing anything (CheckEvent).
	if err := CheckEvents(b.Events); err != nil {
		return res, fmt.Errorf("record events: %w", err)
	}
	received := b.ReceivedAt
	if received.IsZero() {
		received = d.Now()
	}
	received = received.UTC().Truncate(time.Second)
	err := d.EventTx(ctx, func(tx EventTx) error {
		res = EventResult{}
		if err := recordEvents(ctx, tx, b, received, &res); err != nil {
			return err
		}
		return tx.Done(ctx, res.Customers)
	})
	if err != nil {
		return EventResult{}, fmt.Errorf("record events: %w", err)
	}
	return res, nil
}

func recordEvents(ctx context.Context, tx EventTx, b EventBatch, received time.Time, res *EventResult) error {
	if err := tx.Quarantine(ctx, b.Quarantine, received, res); err != nil {
		return err
	}
	if len(b.Events) == 0 {
		return nil
	}
	evs := make([]notification.Event, len(b.Events))
	copy(evs, b.Events)

	resIDs := make([]string, 0, len(evs))
	seenRes := make(map[string]bool, len(evs))
	for _, e := range evs {
		if !seenRes[e.ResourceID] {
			seenRes[e.ResourceID] = true
			resIDs = append(resIDs, e.ResourceID)
		}
	}
	if err := tx.LockResources(ctx, resIDs); err != nil {
		return fmt.Errorf("lock resources: %w", err)
	}
	// The events already stored for these resources: what the new ones are ordered with, and
	// where a close without a project finds its resource's project.
	prior, err := tx.LoadEvents(ctx, resIDs)
	if err != nil {
		return err
	}

	// Closes without a project: the project of the resource's other events, in this batch or
	// stored. Still unknown: kept with customer '' until the resource appears.
	batchOwner := map[string]string{}
	for _, r := range prior {
		if r.Customer != "" && r.Customer > batchOwner[r.Resource] {
			batchOwner[r.Resource] = r.Customer
		}
	}
	for _, e := range evs {
		if e.ProjectID != "" && e.ResourceType != notification.CustomerType {
			batchOwner[e.ResourceID] = e.ProjectID
		}
	}
	for i := range evs {
		if evs[i].ProjectID == "" {
			evs[i].ProjectID = batchOwner[evs[i].ResourceID]
		}
	}

	// Customers: create unknown ones from the template, or refuse their events.
	var custIDs []string
	for _, e := range evs {
		if e.ProjectID != "" {
			custIDs = append(custIDs, e.ProjectID)
		}
	}
	known, err := tx.KnownCustomers(ctx, custIDs)
	if err != nil {
		return fmt.Errorf("read customers: %w", err)
	}
	// A customer-type close (project deleted) never creates the customer; anything else does.
	create := map[string]bool{}
	keep := evs[:0:0]
	for i, e := range evs {
		switch {
		case e.ProjectID == "" || known[e.ProjectID]:
		case b.NewCustomer == nil:
			if e.ResourceType != notification.CustomerType {
				res.Refused = append(res.Refused, i)
				continue
			}
		case e.ResourceType == notification.CustomerType && e.Action == notification.Close:
		default:
			create[e.ProjectID] = true
		}
		keep = append(keep, e)
	}
	evs = keep
	if len(create) > 0 {
		created, err := tx.CreateCustomers(ctx, *b.NewCustomer, create)
		if err != nil {
			return err
		}
		res.CreatedCustomers = created
	}

	// Store the events; a message id already stored (or repeated in the batch) is a duplicate.
	inserted, err := tx.InsertEvents(ctx, evs, received)
	if err != nil {
		return err
	}
	res.Recorded = len(inserted)
	res.Duplicates = len(evs) - len(inserted)
	if len(inserted) == 0 {
		return nil
	}

	// Re-derive every resource a new event touches, from all of its events.
	affected := make(map[string]bool, len(inserted))
	all := make([]derive.Event, 0, len(inserted)+len(prior))
	for _, e := range inserted {
		affected[e.Resource] = true
		all = append(all, e)
	}
	hasPrior := map[string]bool{}
	for _, r := range prior {
		if affected[r.Resource] {
			all = append(all, r)
			hasPrior[r.Resource] = true
		}
	}
	if err := tx.AdoptOrphans(ctx, all); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return derive.Less(all[i], all[j]) })
	return applyEvents(ctx, tx, all, hasPrior, res)
}

// applyEvents derives the records of every resource of all (sorted) again and writes what
// changed: new or changed spans upserted, superseded unsettled records removed (a settled one
// is a conflict, kept); a customer whose last event is a close is closed.
func applyEvents(ctx context.Context, tx EventTx, all []derive.Event, hasPrior map[string]bool, res *EventResult) error {
	type group struct {
		customer, resource, typ string
		evs                     []derive.Event
	}
	var groups []group
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].Customer == all[i].Customer && all[j].Resource == all[i].Resource {
			j++
		}
		if all[i].Customer != "" { // an orphan close alone derives nothing yet
			groups = append(groups, group{all[i].Customer, all[i].Resource, all[j-1].Type, all[i:j]})
		} else {
			res.Pending += j - i
		}
		i = j
	}
	changed := map[string]bool{}
	for _, c := range res.CreatedCustomers {
		changed[c] = true
	}

	// Customers: the last event (by time) of a project decides; deleted closes the customer.
	var resources []group
	var closing []string
	for _, g := range groups {
		if g.typ != notification.CustomerType {
			resources = append(resources, g)
			continue
		}
		if g.evs[len(g.evs)-1].Action == notification.Close {
			closing = append(closing, g.resource)
		}
	}
	if len(closing) > 0 {
		closed, err := tx.CloseCustomers(ctx, closing)
		if err != nil {
			return err
		}
		for _, c := range closed {
			changed[c] = true
		}
	}
	if len(resources) > 0 {
		// The listener's records of these resources as stored: one query.
		type name struct{ customer, id string }
		stored := map[name][]ListenerRecord{}
		var pairs [][2]string
		for _, g := range resources {
			if hasPrior[g.resource] {
				pairs = append(pairs, [2]string{g.customer, g.resource})
			}
		}
		if len(pairs) > 0 {
			recs, err := tx.ListenerRecords(ctx, pairs)
			if err != nil {
				return fmt.Errorf("read listener records: %w", err)
			}
			for _, r := range recs {
				n := name{r.CustomerID, r.ResourceID}
				stored[n] = append(stored[n], r)
			}
		}
		var upserts []billing.Record
		var deletes []int64
		for _, g := range resources {
			spans := derive.Spans(g.evs)
			n := name{g.customer, g.resource}
			have := map[int64]ListenerRecord{}
			for _, e := range stored[n] {
				have[e.Start] = e
			}
			want := map[int64]bool{}
			for _, sp := range spans {
				want[sp.Start] = true
				attrs, err := codec.AttrsJSON(sp.Attrs)
				if err != nil {
					return err
				}
				if e, ok := have[sp.Start]; ok && e.Attrs == attrs && e.End == sp.End {
					continue
				}
				r := billing.Record{
					ResourceID: g.resource, ResourceType: g.typ, CustomerID: g.customer,
					Start: time.Unix(sp.Start, 0).UTC(), Attributes: sp.Attrs, Source: ListenerSource,
				}
				if sp.End != 0 {
					r.End = time.Unix(sp.End, 0).UTC()
				}
				upserts = append(upserts, r)
				changed[g.customer] = true
			}
			for _, e := range stored[n] {
				if want[e.Start] {
					continue
				}
				if e.Settled {
					res.Conflicts++
					continue
				}
				deletes = append(deletes, e.ID)
				changed[g.customer] = true
			}
		}
		if len(deletes) > 0 {
			if err := tx.DeleteRecords(ctx, deletes); err != nil {
				return err
			}
		}
		if len(upserts) > 0 {
			if err := tx.WriteRecords(ctx, upserts); err != nil {
				return fmt.Errorf("write records: %w", err)
			}
		}
	}
	for c := range changed {
		res.Customers = append(res.Customers, c)
	}
	sort.Strings(res.Customers)
	return nil
}
