// Package store defines how Bilean persists customers, usage and invoices. Handlers talk to these
// small interfaces and never to SQL; the embedded SQLite store (store/sqlite) and the PostgreSQL
// store pass the same contract suite (store/storetest).
//
// Invariants every implementation keeps:
//   - a billed range never overlaps another live (non-void) range of the same kind for the same
//     customer and resource; the database refuses it even when the caller is wrong;
//   - Finalize writes an invoice, its lines, its billed ranges, its number and the settling of the
//     records it billed in one transaction: all or nothing;
//   - invoice numbers are gapless per series;
//   - at most one live scheduled invoice exists per customer and period.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

// ErrNotFound is returned when an invoice, customer or policy does not exist.
var ErrNotFound = errors.New("not found")

// OverlapError is returned when a billed range would overlap one already stored.
type OverlapError struct {
	CustomerID string
	ResourceID string
	Range      interval.Range
	Invoice    string // number of the invoice that already holds the range
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("customer %s resource %s: range %s is already billed on invoice %s",
		e.CustomerID, e.ResourceID, e.Range, e.Invoice)
}

// AlreadyInvoicedError is returned by Finalize when a live scheduled invoice exists for the
// customer and period.
type AlreadyInvoicedError struct {
	CustomerID string
	Invoice    string
}

func (e *AlreadyInvoicedError) Error() string {
	return fmt.Sprintf("customer %s is already invoiced for this period on %s", e.CustomerID, e.Invoice)
}

// ResourceUsage is one resource of one customer as the billing calculation needs it: every trigger
// record that may still matter and the ranges already billed for it.
type ResourceUsage struct {
	CustomerID   string
	ResourceKey  int64
	ResourceID   string
	ResourceType string
	// Records are sorted by Start. They include settled records that overlap the unsettled
	// history, so the calculation sees the resource's whole life from Since on.
	Records []billing.Record
	// Since is the start of the earliest unsettled record: ranges before it are final.
	Since time.Time
	// Charged and Credited are the live billed ranges of the resource ending after Since.
	Charged  interval.Set
	Credited interval.Set
}

// CustomerFilter narrows a listing of customers.
type CustomerFilter struct {
	IDs    []string // empty means all
	Status string   // empty means any
}

// Customers reads customers.
type Customers interface {
	// CustomerIDs returns the ids matching the filter, sorted.
	CustomerIDs(ctx context.Context, f CustomerFilter) ([]string, error)
	// GetCustomers returns the customers with these ids, in the same order; unknown ids are skipped.
	GetCustomers(ctx context.Context, ids []string) ([]billing.Customer, error)
}

// Feed reads what one batch of customers needs for one period.
type Feed interface {
	// Policies returns every policy, by name.
	Policies(ctx context.Context) (map[string]billing.Policy, error)
	// Subscriptions returns the subscriptions of these customers that overlap r, sorted by
	// customer then start.
	Subscriptions(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Subscription, error)
	// Usage returns, for these customers, every resource that has an unsettled record starting
	// before until, with its records and live billed ranges. Sorted by customer then resource id.
	Usage(ctx context.Context, customerIDs []string, until time.Time) ([]ResourceUsage, error)
	// ResourceHistory returns the records and billed ranges of the named resources of one customer
	// (used to regenerate an invoice over exactly its old ranges).
	ResourceHistory(ctx context.Context, customerID string, resourceIDs []string) ([]ResourceUsage, error)
	// Payments returns payments of these customers received in r, sorted by customer then time.
	Payments(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Payment, error)
	// Balances returns, per customer, the total of live issued invoices whose period starts before
	// `before` minus the payments received before it. Customers with nothing are absent.
	Balances(ctx context.Context, customerIDs []string, before time.Time) (map[string]decimal.Decimal, error)
	// MeterRanges returns, per customer and meter pseudo-resource ("meter/<meter>/<resource>"),
	// the live billed ranges: what the meter totals billed already.
	MeterRanges(ctx context.Context, customerIDs []string) (map[string]map[string]BilledSets, error)
	// Invoiced returns, per customer, the number of its live scheduled invoice for the period.
	Invoiced(ctx context.Context, customerIDs []string, period interval.Range) (map[string]string, error)
}

// FinalizeRequest is everything Finalize writes in one transaction.
type FinalizeRequest struct {
	Invoice *invoice.Invoice // Lines and Ranges filled; Number, ID and Status are set by Finalize
	// Series is the numbering series key, e.g. "2026"; NumberFormat formats (series, seq) into
	// the invoice number, e.g. INV-2026-000123. Both are required.
	Series       string
	NumberFormat func(series string, seq int64) string
	// Settle marks these records settled if they are still at the given version.
	Settle []billing.Ref
	// Replaces, when set, is the number of an issued invoice that this one regenerates: it is
	// voided in the same transaction.
	Replaces string
	// CreditNote, when its Format is set and Replaces is set, numbers the credit note that
	// cancels the replaced invoice, issued in the same transaction (see CreditNotes).
	CreditNote CreditNoteNumbering
}

// Finalizer stores invoices.
type Finalizer interface {
	// Finalize stores the invoice with status issued, its lines and merged billed ranges, gives it
	// the next number of its series, settles the records and voids the replaced invoice, all in
	// one transaction. It returns *OverlapError or *AlreadyInvoicedError when refused.
	Finalize(ctx context.Context, req FinalizeRequest) error
}

// InvoiceFilter narrows a listing of invoices.
type InvoiceFilter struct {
	CustomerID string
	Period     *interval.Range // invoices whose period starts in this range
	Status     invoice.Status
	Limit      int
}

// Invoices reads and voids stored invoices.
type Invoices interface {
	// ListInvoices returns invoices without lines or ranges, newest number first.
	ListInvoices(ctx context.Context, f InvoiceFilter) ([]invoice.Invoice, error)
	// GetInvoice returns one invoice with its lines and billed ranges.
	GetInvoice(ctx context.Context, number string) (*invoice.Invoice, error)
	// VoidInvoice marks an issued invoice void and releases its billed ranges.
	VoidInvoice(ctx context.Context, number, reason string) error
}

// Importer writes reference data and usage; each call is one transaction, all or nothing.
type Importer interface {
	PutCustomers(ctx context.Context, cs []billing.Customer) error
	PutPolicies(ctx context.Context, ps []billing.Policy) error
	// AddSubscriptions stores subscriptions and returns them with their ids.
	AddSubscriptions(ctx context.Context, ss []billing.Subscription) ([]billing.Subscription, error)
	AddPayments(ctx context.Context, ps []billing.Payment) error
	// AddRecords stores trigger records, creating resources as needed. A record is identified by
	// (customer, resource id, start): storing one that exists replaces its end, type and attributes,
	// bumps its version and unsettles it when anything changed (so "a span closed late" is a
	// re-import with an end), and is a no-op when nothing changed. Records for an unknown
	// customer are refused.
	AddRecords(ctx context.Context, rs []billing.Record) error
	// AddRecordStream stores, with AddRecords' semantics, every chunk that stream passes to add,
	// all in one transaction: memory is bounded by a chunk, and an error from stream or from any
	// chunk stores nothing.
	AddRecordStream(ctx context.Context, stream func(add func([]billing.Record) error) error) error
}

// Run is the record of one pipeline run.
type Run struct {
	ID         string
	Mode       string
	Period     interval.Range
	StartedAt  time.Time
	FinishedAt time.Time
	Status     string // running, done, failed
	Summary    string // JSON
}

// Runs records pipeline runs.
type Runs interface {
	StartRun(ctx context.Context, r Run) error
	FinishRun(ctx context.Context, id, status, summary string) error
}

// Store is everything a backend provides: every backend implements every part, and the contract
// suite (store/storetest) runs every case against each. The parts stay named so that a consumer
// can ask for the least it needs (the listener takes Events, the balance service Balances).
type Store interface {
	Customers
	Feed
	Finalizer
	Invoices
	Importer
	Meters
	Runs
	Balances
	Batches
	Events
	Outbox
	PolicyVersions
	SubscriptionChanges
	Discounts
	CreditNotes
	Close() error
}
