package balance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
)

// SourceReconcile is the Source of records written by reconciliation; they also carry the
// attribute reconciled=true.
const SourceReconcile = "reconcile"

// reconciled are the resource types reconciliation compares with what OpenStack lists.
var reconciled = map[string]bool{rating.ServerType: true, rating.VolumeType: true, rating.FloatingIPType: true, rating.ImageType: true}

// Fix is one span reconciliation opened or closed (or would have, in a dry run).
type Fix struct {
	CustomerID   string
	ResourceType string
	ResourceID   string
	Action       string // open or close
	Start, End   time.Time
	Reason       string
}

// Reconcile compares the open spans of servers, volumes, floating IPs and images with what Nova,
// Cinder, Neutron and Glance list, for one project (customer) or, when projectID is empty, for
// every customer that is not closed. A resource listed with no open span gets one, from its
// creation (or the end of its last span, whichever is later); an open span whose resource is not
// listed any more is closed at this second. Both are written with Source "reconcile" and the
// attribute reconciled=true, audited, and the customers' balances refreshed. With dryRun nothing
// is written.
func (s *Service) Reconcile(ctx context.Context, projectID string, dryRun bool) ([]Fix, error) {
	if s.Cloud == nil {
		return nil, errors.New("reconcile: no OpenStack connection is configured")
	}
	now := s.now()
	var ids []string
	if projectID != "" {
		cs, err := s.Store.GetCustomers(ctx, []string{projectID})
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("reconcile: project %s is not a customer", projectID)
		}
		ids = []string{projectID}
	} else {
		var err error
		if ids, err = s.Store.CustomerIDs(ctx, store.CustomerFilter{}); err != nil {
			return nil, err
		}
	}
	listed, err := s.Cloud.Resources(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	byProject := map[string][]Resource{}
	for _, r := range listed {
		byProject[r.ProjectID] = append(byProject[r.ProjectID], r)
	}
	var fixes []Fix
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		f, err := s.reconcileCustomers(ctx, part, byProject, now, dryRun)
		fixes = append(fixes, f...)
		if err != nil {
			return fixes, err
		}
	}
	return fixes, nil
}

func (s *Service) reconcileCustomers(ctx context.Context, ids []string, byProject map[string][]Resource, now time.Time, dryRun bool) ([]Fix, error) {
	open, err := s.Balances.OpenRecords(ctx, ids)
	if err != nil {
		return nil, err
	}
	openBy := map[string]map[string]billing.Record{} // customer → resource id → open record
	for _, r := range open {
		if !reconciled[r.ResourceType] {
			continue
		}
		if openBy[r.CustomerID] == nil {
			openBy[r.CustomerID] = map[string]billing.Record{}
		}
		openBy[r.CustomerID][r.ResourceID] = r
	}
	var fixes []Fix
	var recs []billing.Record
	var evs []store.AuditEvent
	var touched []string
	for _, cid := range ids {
		seen := map[string]bool{}
		var missing []Resource
		for _, res := range byProject[cid] {
			seen[res.ID] = true
			if _, ok := openBy[cid][res.ID]; !ok {
				missing = append(missing, res)
			}
		}
		var mids []string
		for _, m := range missing {
			mids = append(mids, m.ID)
		}
		last, err := s.Balances.LastRecords(ctx, cid, mids)
		if err != nil {
			return fixes, err
		}
		n := len(fixes)
		for _, res := range missing {
			start := res.Created
			if l, ok := last[res.ID]; ok && l.End.After(start) {
				start = l.End
			}
			if start.IsZero() || start.After(now) {
				start = now
			}
			attrs := maps.Clone(res.Attributes)
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs["reconciled"] = "true"
			reason := fmt.Sprintf("%s lists %s %s (%s) but no span is open", serviceOf(res.Type), res.Type, res.ID, res.Status)
			fixes = append(fixes, Fix{CustomerID: cid, ResourceType: res.Type, ResourceID: res.ID, Action: "open", Start: start, Reason: reason})
			recs = append(recs, billing.Record{CustomerID: cid, ResourceID: res.ID, ResourceType: res.Type, Start: start, Attributes: attrs, Source: SourceReconcile})
			evs = append(evs, store.AuditEvent{At: now, CustomerID: cid, Action: "reconcile_open", Target: res.ID, Detail: reason + "; opened from " + start.Format(time.RFC3339), DryRun: dryRun})
		}
		var gone []billing.Record
		for rid, r := range openBy[cid] {
			if !seen[rid] {
				gone = append(gone, r)
			}
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].ResourceID < gone[j].ResourceID })
		for _, r := range gone {
			if !r.Start.Before(now) {
				continue // opened this very second: nothing to close yet
			}
			attrs := maps.Clone(r.Attributes)
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs["reconciled"] = "true"
			reason := fmt.Sprintf("%s %s has an open span but %s does not list it", r.ResourceType, r.ResourceID, serviceOf(r.ResourceType))
			fixes = append(fixes, Fix{CustomerID: cid, ResourceType: r.ResourceType, ResourceID: r.ResourceID, Action: "close", Start: r.Start, End: now, Reason: reason})
			recs = append(recs, billing.Record{CustomerID: cid, ResourceID: r.ResourceID, ResourceType: r.ResourceType, Start: r.Start, End: now, Attributes: attrs, Source: SourceReconcile})
			evs = append(evs, store.AuditEvent{At: now, CustomerID: cid, Action: "reconcile_close", Target: r.ResourceID, Detail: reason + "; closed at " + now.Format(time.RFC3339), DryRun: dryRun})
		}
		if len(fixes) > n {
			touched = append(touched, cid)
		}
	}
	if dryRun || len(recs) == 0 {
		if dryRun {
			return fixes, s.Balances.AddAudit(ctx, evs)
		}
		return fixes, nil
	}
	if err := s.Store.AddRecords(ctx, recs); err != nil {
		return fixes, fmt.Errorf("reconcile: %w", err)
	}
	if err := s.Balances.AddAudit(ctx, evs); err != nil {
		return fixes, err
	}
	if _, err := s.Refresh(ctx, touched, now); err != nil {
		return fixes, err
	}
	return fixes, nil
}

func serviceOf(typ string) string {
	switch typ {
	case rating.ServerType:
		return "Nova"
	case rating.VolumeType:
		return "Cinder"
	case rating.FloatingIPType:
		return "Neutron"
	case rating.ImageType:
		return "Glance"
	}
	return "OpenStack"
}
