package store

import (
	"context"
	"errors"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/store/derive"
)

// The driver side of the store, after River's riverdriver: the transaction logic (Finalize,
// VoidInvoice, IssueCreditNote and their invariants) lives once in this package, and each backend
// implements the small typed operations below with its own SQL. What differs between the
// databases stays in the drivers: how a billed range overlap is refused (PostgreSQL's exclusion
// constraint, SQLite's trigger), how statements are batched, how a transaction is fenced and
// retried.

// InvoiceDriver runs invoice transactions for the shared logic.
type InvoiceDriver interface {
	// FinalizeTx runs fn in the transaction of one Finalize and commits when fn succeeds. A
	// driver may fence it (PostgreSQL checks the batch claim of ctx first) and may run fn again
	// after a transient failure: fn must keep no state across runs but what it sets anew.
	FinalizeTx(ctx context.Context, fn func(tx InvoiceTx) error) error
	// WriteTx runs fn in a write transaction and commits when fn succeeds.
	WriteTx(ctx context.Context, fn func(tx InvoiceTx) error) error
	// ReadTx runs fn in a read-only transaction: its reads see one snapshot.
	ReadTx(ctx context.Context, fn func(tx InvoiceTx) error) error
	// NameOverlap turns a refused range insert into *OverlapError naming the invoice that holds
	// the range. It runs after the refused transaction is rolled back, so a range committed by
	// a concurrent run is named too; when no holder is found it returns an error of its own.
	NameOverlap(ctx context.Context, ov *RangeOverlap) error
	// Now is the clock of the store.
	Now() time.Time
}

// InvoiceTx is the typed operations of an invoice transaction. A driver may queue the writes
// that return nothing (InsertLines, InsertRanges, Settle) and send them with the next operation
// that returns a value (PostgreSQL sends them and the counter as one batch): an error of a
// queued write may then be returned by that later operation.
type InvoiceTx interface {
	// LockInvoice reads the head of the invoice numbered number and locks its row until the
	// commit; it returns ErrNotFound when there is none.
	LockInvoice(ctx context.Context, number string) (InvoiceHead, error)
	// InvoiceByID reads an invoice without lines or ranges.
	InvoiceByID(ctx context.Context, id int64) (invoice.Invoice, error)
	// InvoiceByNumber reads an invoice without lines or ranges; ErrNotFound when none.
	InvoiceByNumber(ctx context.Context, number string) (invoice.Invoice, error)
	// Lines reads the lines of invoice id in order.
	Lines(ctx context.Context, id int64) ([]invoice.Line, error)
	// Ranges reads the billed ranges of invoice id (live or released), by resource id, kind and
	// start.
	Ranges(ctx context.Context, id int64) ([]invoice.BilledRange, error)
	// VoidInvoice sets the invoice void with the reason and replacement, releases its live
	// billed ranges and unsettles the records they covered.
	VoidInvoice(ctx context.Context, id int64, reason, replacedBy string) error
	// SetVoidReason sets the reason and replacement of a voided invoice.
	SetVoidReason(ctx context.Context, id int64, reason, replacedBy string) error
	// ResourceByKey reads the customer, id and type of the resource with that key; found is
	// false when there is none.
	ResourceByKey(ctx context.Context, key int64) (r ResourceRef, found bool, err error)
	// StartInvoice reads what a new invoice of the customer for the period starting at
	// periodStart needs: the number of its live scheduled invoice ("" when none), an invoice id
	// reserved for it, and the resources named (key and type), the missing ones created with
	// the given types.
	StartInvoice(ctx context.Context, customer string, periodStart time.Time, resourceIDs, types []string) (InvoiceStart, error)
	// Resources reads the resources named, creating the missing ones with the given types.
	Resources(ctx context.Context, customer string, resourceIDs, types []string) (map[string]ResourceRef, error)
	// InsertLines stores the lines of invoice id, numbered from 1 in order.
	InsertLines(ctx context.Context, id int64, lines []invoice.Line) error
	// InsertRanges stores the merged ranges (resource keys filled) of invoice id. A range
	// overlapping a live one is refused with *RangeOverlap (perhaps by a later operation).
	InsertRanges(ctx context.Context, id int64, customer string, ranges []invoice.BilledRange) error
	// Settle marks the referenced records of the customer settled where they are still at the
	// referenced version.
	Settle(ctx context.Context, customer string, refs []billing.Ref) error
	// NextNumber bumps the counter of the series and returns its new value; the counter row is
	// locked until the commit.
	NextNumber(ctx context.Context, series string) (int64, error)
	// InsertInvoice stores the invoice row, issued. inserted is false when a live scheduled
	// invoice of the customer for the period exists already; an invoice number already used is
	// an error wrapping ErrNumberUsed.
	InsertInvoice(ctx context.Context, row InvoiceRow) (inserted bool, err error)
	// LiveInvoice returns the number of the customer's live scheduled invoice for the period
	// starting at start, "" when none.
	LiveInvoice(ctx context.Context, customer string, start time.Time) (string, error)
	// InsertCreditNote stores the credit note of invoice id (its ID is set) and records its
	// number on the invoice. A number already used is an error wrapping ErrNumberUsed.
	InsertCreditNote(ctx context.Context, id int64, cn *invoice.CreditNote) error
}

// InvoiceHead is what the shared logic checks of an invoice before changing it.
type InvoiceHead struct {
	ID         int64
	CustomerID string
	Status     invoice.Status
	CreditNote string
}

// ResourceRef is a stored resource as a billed range names it.
type ResourceRef struct {
	CustomerID string
	ID         string
	Key        int64
	Type       string
}

// InvoiceStart is the answer of InvoiceTx.StartInvoice.
type InvoiceStart struct {
	Live      string
	ID        int64
	Resources map[string]ResourceRef
}

// InvoiceRow is the invoice row Finalize inserts.
type InvoiceRow struct {
	ID       int64
	Number   string
	Kind     invoice.Kind
	Issued   time.Time
	Replaces string
	Period   interval.Range   // the plan's, at whole seconds
	Invoice  *invoice.Invoice // customer, names, amounts, run
}

// RangeOverlap is a range insert refused because a range overlaps a live one: the customer,
// the merged ranges of the refused invoice and the database's error.
type RangeOverlap struct {
	CustomerID string
	Ranges     []invoice.BilledRange
	Err        error
}

func (e *RangeOverlap) Error() string { return e.Err.Error() }
func (e *RangeOverlap) Unwrap() error { return e.Err }

// ErrNumberUsed is wrapped by a driver's refusal of an invoice or credit note number already used.
var ErrNumberUsed = errors.New("number already used")

// PolicyDriver runs the policy-version transactions of the shared logic (PutPolicies,
// AddPolicyVersion, AddRule, RemoveRule).
type PolicyDriver interface {
	// PolicyTx runs fn in a write transaction and commits when fn succeeds.
	PolicyTx(ctx context.Context, fn func(tx PolicyTx) error) error
	// Versions returns the versions of one policy (all when name is empty), oldest first,
	// outside any transaction.
	Versions(ctx context.Context, name string) ([]billing.Policy, error)
	// Now is the clock of the store.
	Now() time.Time
}

// PolicyTx is the typed operations of a policy-version transaction.
type PolicyTx interface {
	// LockedVersions returns the versions of the policy, oldest first, and makes writers of the
	// same policy take turns until the commit (also when it has no version yet).
	LockedVersions(ctx context.Context, name string) ([]billing.Policy, error)
	// UpsertVersion writes one version (p.Version set); an identical stored version is left
	// alone, so no trigger fires when a policy file is imported again.
	UpsertVersion(ctx context.Context, p billing.Policy, now time.Time) error
}

// OutboxDriver runs the transactions of the outbox state machine (see Outbox).
type OutboxDriver interface {
	// OutboxTx runs fn in a write transaction and commits when fn succeeds.
	OutboxTx(ctx context.Context, fn func(tx OutboxTx) error) error
	// Now is the clock of the store.
	Now() time.Time
}

// OutboxTx is the typed operations of an outbox transaction; times are at whole seconds.
type OutboxTx interface {
	// InsertDelivery stores a pending entry unless its invoice has one.
	InsertDelivery(ctx context.Context, d Delivery) error
	// DeliveryOfInvoice reads the entry of an invoice.
	DeliveryOfInvoice(ctx context.Context, invoice string) (Delivery, error)
	// Delivery reads one entry, locked until the commit; ErrNotFound when none.
	Delivery(ctx context.Context, id int64) (Delivery, error)
	// Claim moves a pending entry to sending, counts the attempt and records messageID unless
	// it has one; false when it is not pending.
	Claim(ctx context.Context, id int64, messageID string, at time.Time) (bool, error)
	// Complete records the outcome of a sending entry (sent is zero unless it was sent); false
	// when it is not sending.
	Complete(ctx context.Context, id int64, o DeliveryOutcome, next, sent time.Time) (bool, error)
	// Requeue puts an entry back to pending, due at at, with its attempts reset and these
	// recipients.
	Requeue(ctx context.Context, id int64, to []string, at time.Time) error
	// Cancel marks a pending or failed entry cancelled; false when it is in another state.
	Cancel(ctx context.Context, id int64, reason string, at time.Time) (bool, error)
}

// BatchDriver runs the transactions of shared runs (see Batches).
type BatchDriver interface {
	// BatchTx runs fn in a write transaction and commits when fn succeeds.
	BatchTx(ctx context.Context, fn func(tx BatchTx) error) error
	// Now is the clock of the store.
	Now() time.Time
}

// BatchTx is the typed operations of a shared-run transaction.
type BatchTx interface {
	// LockRunKey makes creators of runs of the same key take turns until the commit.
	LockRunKey(ctx context.Context, key string) error
	// OpenRun returns the running run of the key; found is false when there is none.
	OpenRun(ctx context.Context, key string) (r Run, found bool, err error)
	// InsertRun stores a running run under the key, with its batches of customers (numbered
	// from 0 in order).
	InsertRun(ctx context.Context, key string, r Run, batches [][]string) error
	// ClaimNext claims for worker the first pending batch of the run, else the first claimed one
	// whose heartbeat is older than staleAfter (by the database's clock), without waiting for
	// batches other workers are claiming; nil when there is none.
	ClaimNext(ctx context.Context, runID, worker string, staleAfter time.Duration) (*Batch, error)
	// OpenBatches counts the batches of the run that are not done.
	OpenBatches(ctx context.Context, runID string) (int, error)
	// MarkBatchDone records the result of a batch still claimed by worker; false when the
	// claim is lost.
	MarkBatchDone(ctx context.Context, runID string, n int, worker string, res BatchResult) (bool, error)
	// FinishRunIfDone marks the run done, with a summary summed over its batches, when no batch
	// is left open.
	FinishRunIfDone(ctx context.Context, runID string) error
}

// SubscriptionDriver runs the transactions of subscription changes (see SubscriptionChanges)
// and reads the billed ranges of pseudo-resources.
type SubscriptionDriver interface {
	// SubscriptionTx runs fn in a write transaction and commits when fn succeeds.
	SubscriptionTx(ctx context.Context, fn func(tx SubscriptionTx) error) error
	// LiveRanges calls fn for every live billed range of the customers' resources whose ids
	// are in [lo, hi).
	LiveRanges(ctx context.Context, customerIDs []string, lo, hi string, fn func(customer, resourceID string, kind invoice.RangeKind, r interval.Range)) error
}

// SubscriptionTx is the typed operations of a subscription change; times are at whole seconds.
type SubscriptionTx interface {
	// PolicyExists tells whether the policy has a version.
	PolicyExists(ctx context.Context, name string) (bool, error)
	// LockCustomer makes changes of the customer's subscriptions take turns until the commit;
	// found is false when the customer does not exist.
	LockCustomer(ctx context.Context, customerID string) (found bool, err error)
	// InForce returns the customer's subscription in force at `at` (the latest started);
	// found is false when none.
	InForce(ctx context.Context, customerID string, at time.Time) (sub billing.Subscription, found bool, err error)
	// Billed tells whether a live billed range names the customer's resource.
	Billed(ctx context.Context, customerID, resourceID string) (bool, error)
	// DeleteSubscription deletes a subscription.
	DeleteSubscription(ctx context.Context, id int64) error
	// EndSubscription sets the end of a subscription.
	EndSubscription(ctx context.Context, id int64, at time.Time) error
	// NextStart returns the earliest start of the customer's subscriptions after `after`, zero
	// when none.
	NextStart(ctx context.Context, customerID string, after time.Time) (time.Time, error)
	// InsertSubscription stores a subscription (End zero: open) and returns its id.
	InsertSubscription(ctx context.Context, sub billing.Subscription) (int64, error)
}

// EventDriver runs the transaction of RecordEvents (see Events).
type EventDriver interface {
	// EventTx runs fn in a write transaction and commits when fn succeeds.
	EventTx(ctx context.Context, fn func(tx EventTx) error) error
	// Now is the clock of the store.
	Now() time.Time
}

// EventTx is the typed operations of recording notification events; received is at whole
// seconds.
type EventTx interface {
	// Quarantine stores quarantined messages, once per body, and counts the new ones in res.
	Quarantine(ctx context.Context, qs []QuarantinedMessage, received time.Time, res *EventResult) error
	// LockResources makes batches deriving the same resources take turns until the commit.
	LockResources(ctx context.Context, resourceIDs []string) error
	// LoadEvents returns the stored events of the resources.
	LoadEvents(ctx context.Context, resourceIDs []string) ([]derive.Event, error)
	// KnownCustomers returns which of the customers exist.
	KnownCustomers(ctx context.Context, ids []string) (map[string]bool, error)
	// CreateCustomers creates the customers from the template and returns those that did not
	// exist, sorted.
	CreateCustomers(ctx context.Context, tpl billing.Customer, ids map[string]bool) ([]string, error)
	// InsertEvents stores the events and returns those that were new (message id not stored
	// before and not repeated earlier), as stored.
	InsertEvents(ctx context.Context, evs []notification.Event, received time.Time) ([]derive.Event, error)
	// AdoptOrphans gives stored closes without a customer the customer of their resource's
	// events in all.
	AdoptOrphans(ctx context.Context, all []derive.Event) error
	// CloseCustomers closes the customers not closed yet and returns those it closed.
	CloseCustomers(ctx context.Context, ids []string) ([]string, error)
	// ListenerRecords returns the listener's stored records of the (customer, resource) pairs.
	ListenerRecords(ctx context.Context, pairs [][2]string) ([]ListenerRecord, error)
	// DeleteRecords deletes the unsettled records among ids.
	DeleteRecords(ctx context.Context, ids []int64) error
	// WriteRecords writes derived records with the import's upsert semantics.
	WriteRecords(ctx context.Context, rs []billing.Record) error
	// Done ends the recording; customers are those whose records or status changed.
	Done(ctx context.Context, customers []string) error
}

// ListenerRecord is a stored record of the listener as RecordEvents compares it with a derived
// span: Start and End in Unix seconds, End 0 when open.
type ListenerRecord struct {
	CustomerID, ResourceID string
	ID, Start, End         int64
	Attrs                  string
	Settled                bool
}

// RunDriver records pipeline runs (see Runs).
type RunDriver interface {
	// InsertRunRow stores a run (FinishedAt zero: not finished).
	InsertRunRow(ctx context.Context, r Run) error
	// FinishRunRow sets the end, status and summary of a run; false when there is no such run.
	FinishRunRow(ctx context.Context, id, status, summary string, at time.Time) (bool, error)
	// Now is the clock of the store.
	Now() time.Time
}
