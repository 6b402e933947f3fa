package store

import (
	"context"
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/invoice"
)

// Driver is everything a backend implements for the shared transaction logic: small typed
// operations over its own SQL, grouped by the transaction they serve.
type Driver interface {
	InvoiceDriver
	PolicyDriver
	SubscriptionDriver
	OutboxDriver
	BatchDriver
	EventDriver
	RunDriver
}

// Logic implements the parts of Store whose transaction logic is shared (finalizing, voiding,
// credit notes, policy versions, subscription changes, the outbox state machine, shared runs,
// event derivation) over a Driver. A backend's Store embeds it, as River's client runs its logic
// over a riverdriver; the backend implements the rest of Store (its reads and bulk writes)
// itself.
type Logic struct{ Driver Driver }

// OpenSharedRun implements Store.OpenSharedRun over the driver.
func (l Logic) OpenSharedRun(ctx context.Context, key string, r Run, customerIDs []string, size int) (Run, bool, error) {
	return OpenSharedRun(ctx, l.Driver, key, r, customerIDs, size)
}

// ClaimBatch implements Store.ClaimBatch over the driver.
func (l Logic) ClaimBatch(ctx context.Context, runID, worker string, staleAfter time.Duration) (*Batch, bool, error) {
	return ClaimBatch(ctx, l.Driver, runID, worker, staleAfter)
}

// FinishBatch implements Store.FinishBatch over the driver.
func (l Logic) FinishBatch(ctx context.Context, runID string, n int, worker string, res BatchResult) error {
	return FinishBatch(ctx, l.Driver, runID, n, worker, res)
}

// RecordEvents implements Store.RecordEvents over the driver.
func (l Logic) RecordEvents(ctx context.Context, b EventBatch) (EventResult, error) {
	return RecordEvents(ctx, l.Driver, b)
}

// Finalize implements Store.Finalize over the driver.
func (l Logic) Finalize(ctx context.Context, req FinalizeRequest) error {
	return Finalize(ctx, l.Driver, req)
}

// VoidInvoice implements Store.VoidInvoice over the driver.
func (l Logic) VoidInvoice(ctx context.Context, number, reason string) error {
	return VoidInvoice(ctx, l.Driver, number, reason)
}

// GetInvoice implements Store.GetInvoice over the driver.
func (l Logic) GetInvoice(ctx context.Context, number string) (*invoice.Invoice, error) {
	return GetInvoice(ctx, l.Driver, number)
}

// EnqueueDeliveries implements Store.EnqueueDeliveries over the driver.
func (l Logic) EnqueueDeliveries(ctx context.Context, ds []Delivery) ([]Delivery, error) {
	return EnqueueDeliveries(ctx, l.Driver, ds)
}

// ClaimDelivery implements Store.ClaimDelivery over the driver.
func (l Logic) ClaimDelivery(ctx context.Context, id int64, messageID string, at time.Time) (Delivery, bool, error) {
	return ClaimDelivery(ctx, l.Driver, id, messageID, at)
}

// CompleteDelivery implements Store.CompleteDelivery over the driver.
func (l Logic) CompleteDelivery(ctx context.Context, id int64, o DeliveryOutcome) error {
	return CompleteDelivery(ctx, l.Driver, id, o)
}

// RetryDelivery implements Store.RetryDelivery over the driver.
func (l Logic) RetryDelivery(ctx context.Context, id int64, force bool, to []string, at time.Time) (Delivery, error) {
	return RetryDelivery(ctx, l.Driver, id, force, to, at)
}

// CancelDelivery implements Store.CancelDelivery over the driver.
func (l Logic) CancelDelivery(ctx context.Context, id int64, reason string, at time.Time) error {
	return CancelDelivery(ctx, l.Driver, id, reason, at)
}

// PutPolicies implements Store.PutPolicies over the driver.
func (l Logic) PutPolicies(ctx context.Context, ps []billing.Policy) error {
	return PutPolicies(ctx, l.Driver, ps)
}

// PolicyVersions implements Store.PolicyVersions over the driver.
func (l Logic) PolicyVersions(ctx context.Context) ([]billing.Policy, error) {
	return PolicyVersionsOf(ctx, l.Driver)
}

// PolicyHistory implements Store.PolicyHistory over the driver.
func (l Logic) PolicyHistory(ctx context.Context, name string) ([]billing.Policy, error) {
	return PolicyHistory(ctx, l.Driver, name)
}

// AddPolicyVersion implements Store.AddPolicyVersion over the driver.
func (l Logic) AddPolicyVersion(ctx context.Context, p billing.Policy) (billing.Policy, error) {
	return AddPolicyVersion(ctx, l.Driver, p)
}

// AddRule implements Store.AddRule over the driver.
func (l Logic) AddRule(ctx context.Context, name string, rule billing.RuleSpec, effective time.Time) (billing.Policy, error) {
	return AddRule(ctx, l.Driver, name, rule, effective)
}

// RemoveRule implements Store.RemoveRule over the driver.
func (l Logic) RemoveRule(ctx context.Context, name, ruleType string, effective time.Time) (billing.Policy, error) {
	return RemoveRule(ctx, l.Driver, name, ruleType, effective)
}

// ChangeSubscription implements Store.ChangeSubscription over the driver.
func (l Logic) ChangeSubscription(ctx context.Context, customerID, policy string, at time.Time) (billing.Subscription, error) {
	return ChangeSubscription(ctx, l.Driver, customerID, policy, at)
}

// CancelSubscription implements Store.CancelSubscription over the driver.
func (l Logic) CancelSubscription(ctx context.Context, customerID string, at time.Time) (billing.Subscription, error) {
	return CancelSubscription(ctx, l.Driver, customerID, at)
}

// SubscriptionRanges implements Store.SubscriptionRanges over the driver.
func (l Logic) SubscriptionRanges(ctx context.Context, customerIDs []string) (map[string]BilledSets, error) {
	return SubscriptionRanges(ctx, l.Driver, customerIDs)
}

// MeterRanges implements Store.MeterRanges over the driver.
func (l Logic) MeterRanges(ctx context.Context, customerIDs []string) (map[string]map[string]BilledSets, error) {
	return MeterRanges(ctx, l.Driver, customerIDs)
}

// IssueCreditNote implements Store.IssueCreditNote over the driver.
func (l Logic) IssueCreditNote(ctx context.Context, number, reason string, n CreditNoteNumbering) (*invoice.CreditNote, error) {
	return IssueCreditNote(ctx, l.Driver, number, reason, n)
}

// StartRun implements Runs.StartRun over the driver. A zero StartedAt means now; an empty
// Status means running.
func (l Logic) StartRun(ctx context.Context, r Run) error {
	if r.ID == "" {
		return fmt.Errorf("start run: id: required")
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = l.Driver.Now()
	}
	if r.Status == "" {
		r.Status = "running"
	}
	if err := l.Driver.InsertRunRow(ctx, r); err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

// FinishRun implements Runs.FinishRun over the driver: the end of a run with its status and
// JSON summary.
func (l Logic) FinishRun(ctx context.Context, id, status, summary string) error {
	found, err := l.Driver.FinishRunRow(ctx, id, status, summary, l.Driver.Now())
	if err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("finish run %s: %w", id, ErrNotFound)
	}
	return nil
}
