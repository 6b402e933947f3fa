package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// The pure decisions every backend makes around its own SQL: validation, state checks and
// assembling results. Each backend calls them inside its own transaction, so the rules cannot
// drift apart between SQLite and PostgreSQL.

// NextPolicyVersion returns the next version of a policy: the latest of versions (oldest first)
// with its rules cloned, effective from effective and changed by change, then checked by
// CheckPolicy. An error wraps ErrNotFound when there are no versions.
func NextPolicyVersion(versions []billing.Policy, name string, effective time.Time, change func(*billing.Policy) error) (billing.Policy, error) {
	if len(versions) == 0 {
		return billing.Policy{}, fmt.Errorf("policy %s: %w", name, ErrNotFound)
	}
	next := versions[len(versions)-1]
	next.Rules = slices.Clone(next.Rules)
	next.EffectiveFrom = effective
	if err := change(&next); err != nil {
		return billing.Policy{}, err
	}
	if err := CheckPolicy(next); err != nil {
		return billing.Policy{}, err
	}
	return next, nil
}

// FinalizePlan is a FinalizeRequest checked, with its defaults filled in.
type FinalizePlan struct {
	Kind   invoice.Kind   // scheduled (the only kind stored)
	Issued time.Time      // the invoice's IssuedAt, or now, at whole seconds
	Period interval.Range // the invoice's period at whole seconds
}

// PlanFinalize checks a finalize request before any SQL runs: an invoice with a customer, a
// scheduled kind (empty means scheduled), a numbering series and format, and billed ranges of a
// known kind naming a resource. now is called only when the invoice has no IssuedAt.
func PlanFinalize(req FinalizeRequest, now func() time.Time) (FinalizePlan, error) {
	inv := req.Invoice
	if inv == nil {
		return FinalizePlan{}, errors.New("finalize: request has no invoice")
	}
	if inv.CustomerID == "" {
		return FinalizePlan{}, errors.New("finalize: invoice: customer: required")
	}
	kind := inv.Kind
	if kind == "" {
		kind = invoice.Scheduled
	}
	if kind != invoice.Scheduled {
		return FinalizePlan{}, fmt.Errorf("finalize: invoice for %s: kind %q: only scheduled invoices are stored", inv.CustomerID, kind)
	}
	if req.Series == "" || req.NumberFormat == nil {
		return FinalizePlan{}, fmt.Errorf("finalize: invoice for %s: numbering: Series and NumberFormat are required (numbering.format provides both)", inv.CustomerID)
	}
	issued := inv.IssuedAt
	if issued.IsZero() {
		issued = now()
	}
	plan := FinalizePlan{
		Kind:   kind,
		Issued: interval.Norm(issued),
		Period: interval.Range{Start: interval.Norm(inv.Period.Start), End: interval.Norm(inv.Period.End)},
	}
	for i, br := range inv.Ranges {
		if br.Kind != invoice.Charge && br.Kind != invoice.Credited {
			return FinalizePlan{}, fmt.Errorf("finalize: invoice for %s: ranges[%d] (resource %s): kind %q: want charge or credit",
				inv.CustomerID, i, br.ResourceID, br.Kind)
		}
		if br.ResourceID == "" && br.ResourceKey == 0 {
			return FinalizePlan{}, fmt.Errorf("finalize: invoice for %s: ranges[%d]: resource id: required", inv.CustomerID, i)
		}
	}
	return plan, nil
}

// EachPage calls fn for every item that fetch returns, page after page: fetch gets the key of
// the last item of the previous page ("" first) and returns at most size items ordered by key;
// a short page is the last. No page is held open while fn runs.
func EachPage[T any](size int, fetch func(after string, limit int) ([]T, error), key func(T) string, fn func(T) error) error {
	after := ""
	for {
		batch, err := fetch(after, size)
		if err != nil {
			return err
		}
		for _, v := range batch {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(batch) < size {
			return nil
		}
		after = key(batch[len(batch)-1])
	}
}

// PlanCompletion checks the outcome of a claimed delivery: its state must be sent, pending,
// failed or unknown. It returns when to try next (NextAttempt, or At when unset) and whether the
// delivery was sent (sent_at is then At).
func PlanCompletion(id int64, o DeliveryOutcome) (next time.Time, sent bool, err error) {
	switch o.State {
	case DeliverySent, DeliveryPending, DeliveryFailed, DeliveryUnknown:
	default:
		return time.Time{}, false, fmt.Errorf("complete delivery %d: outcome %q: want sent, pending, failed or unknown", id, o.State)
	}
	next = o.NextAttempt
	if next.IsZero() {
		next = o.At
	}
	return next, o.State == DeliverySent, nil
}

// NotSending is the error of completing delivery d, which is not sending.
func NotSending(d Delivery) error {
	return &DeliveryStateError{ID: d.ID, State: d.State, Want: "only a sending delivery can be completed"}
}

// NotCancellable is the error of cancelling delivery d, which is neither pending nor failed.
func NotCancellable(d Delivery) error {
	return &DeliveryStateError{ID: d.ID, State: d.State, Want: "only a pending or failed delivery can be cancelled"}
}

// CheckRetry says whether delivery d may go back to pending: a failed one may, an unknown one
// only with force (it may have been sent).
func CheckRetry(d Delivery, force bool) error {
	switch {
	case d.State == DeliveryFailed:
	case d.State == DeliveryUnknown && force:
	case d.State == DeliveryUnknown:
		return &DeliveryStateError{ID: d.ID, State: d.State, Want: "it may have been sent: check Message-ID <" + d.MessageID +
			"> in the mail server's log, and force the retry only if it is not there"}
	default:
		return &DeliveryStateError{ID: d.ID, State: d.State, Want: "only a failed or unknown delivery can be retried"}
	}
	return nil
}

// InOrder returns the values of byID in the order of ids, each id once; ids not in byID are
// skipped.
func InOrder[T any](ids []string, byID map[string]T) []T {
	out := make([]T, 0, len(byID))
	seen := make(map[string]bool, len(byID))
	for _, id := range ids {
		if v, ok := byID[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, v)
		}
	}
	return out
}

// PlanFreeze checks a freeze state before any SQL runs and returns the status the customer
// takes with it: frozen for a frozen state that is not a dry run, else active (only the
// escalation moves a customer between active and frozen; closed stays closed).
func PlanFreeze(f Freeze) (status string, err error) {
	switch f.State {
	case FreezeNone, FreezeWarned, FreezeDepleted, FreezeFrozen:
	default:
		return "", fmt.Errorf("put freeze %s: state %q: want warned, depleted or frozen", f.CustomerID, f.State)
	}
	if f.State == FreezeFrozen && !f.DryRun {
		return billing.Frozen, nil
	}
	return billing.Active, nil
}
