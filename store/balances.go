package store

import (
	"context"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
)

// BurnState is a customer's prepaid balance at one second (AsOf) and what it burns per hour from
// then on, so that the balance at any later second T is
//
//	Base − Rate × (T − AsOf) ÷ 3600
//
// with one multiplication and one division: O(1), no records read. package balance computes it;
// the store only keeps it.
type BurnState struct {
	CustomerID string
	Currency   string
	AsOf       time.Time
	// Settled is payments received before AsOf minus the totals of live issued invoices.
	Settled decimal.Decimal
	// Accrued is what is used and not invoiced yet, priced up to AsOf exactly as an interim
	// invoice prices it (rounded lines, fees, credits, tax).
	Accrued decimal.Decimal
	// Base is the balance at AsOf: Settled − Accrued.
	Base decimal.Decimal
	// Rate is the sum, per hour, of every open span's price plus the running subscription fees,
	// tax included. Never rounded to the currency: 0.01 per hour stays 0.01.
	Rate decimal.Decimal
	// OpenSpans is the number of open spans that Rate sums.
	OpenSpans int
	// ValidUntil is the first second at which Rate may change by itself (the end of the billing
	// period, the next policy version, subscription or discount edge); zero: never. A balance at
	// or after it is recomputed, never extrapolated across it.
	ValidUntil time.Time
	// Mark is the change counter read before the state was computed (see BurnMarks).
	Mark int64
	// Stale is set when something that moves the balance (records, payments, invoices,
	// subscriptions, policies) changed after the state was computed.
	Stale bool
}

// Freeze states of a customer's prepaid escalation.
const (
	FreezeNone     = ""         // healthy
	FreezeWarned   = "warned"   // the low-balance warning went out
	FreezeDepleted = "depleted" // the balance reached zero; the grace period runs
	FreezeFrozen   = "frozen"   // the escalation acted (stop or suspend)
)

// Freeze is where a customer stands in the low-balance escalation.
type Freeze struct {
	CustomerID string
	State      string // one of the Freeze* constants
	WarnedAt   time.Time
	DepletedAt time.Time
	FrozenAt   time.Time
	Action     string   // stop or suspend, when frozen
	DryRun     bool     // the freeze was only simulated
	Servers    []string // servers Bilean stopped or suspended, to restart on recharge
}

// AuditEvent is one action the balance jobs took or would have taken (dry run).
type AuditEvent struct {
	ID         int64
	At         time.Time
	CustomerID string
	Action     string // low_balance_warning, depleted, stop, suspend, start, resume, unfrozen, recharge, reconcile_open, reconcile_close…
	Target     string // server id, resource id…
	Detail     string
	DryRun     bool
}

// AuditFilter narrows a listing of audit events.
type AuditFilter struct {
	CustomerID string // empty: all
	Action     string // empty: all
	Limit      int    // 0: no limit
}

// Balances keeps prepaid balances: recharges, burn states, the escalation state and its audit
// trail. The implementation bumps a per-customer change counter (see BurnMarks) whenever a
// record, payment, invoice, subscription or the customer's pricing changes, in the same
// transaction as the change, so a stale burn state is found even if nobody says so.
type Balances interface {
	// Recharge stores a payment (Reference is made up when empty) with a free-text note and
	// returns it with its id.
	Recharge(ctx context.Context, p billing.Payment, note string) (billing.Payment, error)
	// SettledBalance returns the payments received before at minus the totals of the customer's
	// live issued invoices.
	SettledBalance(ctx context.Context, customerID string, at time.Time) (decimal.Decimal, error)
	// BurnMarks returns the change counter of each customer (0 when nothing ever changed).
	BurnMarks(ctx context.Context, customerIDs []string) (map[string]int64, error)
	// PutBurnStates stores burn states; a state is stale afterwards if its Mark is behind the
	// customer's change counter.
	PutBurnStates(ctx context.Context, states []BurnState) error
	// BurnState returns one customer's burn state, or ErrNotFound.
	BurnState(ctx context.Context, customerID string) (BurnState, error)
	// EachBurnState calls fn for every stored burn state, in customer order.
	EachBurnState(ctx context.Context, fn func(BurnState) error) error
	// StaleCustomers returns, sorted, the ids of customers that are not closed and whose burn
	// state is missing, stale, computed before asOfBefore, or no longer valid at now (its
	// ValidUntil is at or before now); at most limit (0: all).
	StaleCustomers(ctx context.Context, asOfBefore, now time.Time, limit int) ([]string, error)
	// GetFreezes returns the escalation state of customers that have one.
	GetFreezes(ctx context.Context, customerIDs []string) (map[string]Freeze, error)
	// PutFreeze stores a customer's escalation state (State FreezeNone deletes it) and sets the
	// customer's status to frozen while it is FreezeFrozen and not a dry run, active otherwise.
	PutFreeze(ctx context.Context, f Freeze) error
	// AddAudit appends events.
	AddAudit(ctx context.Context, evs []AuditEvent) error
	// ListAudit returns events, oldest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// OpenRecords returns the open trigger records (zero End) of the customers, sorted by
	// customer, resource id and start.
	OpenRecords(ctx context.Context, customerIDs []string) ([]billing.Record, error)
	// LastRecords returns, per resource id, the latest record (by start) of each named resource
	// of one customer, open or closed.
	LastRecords(ctx context.Context, customerID string, resourceIDs []string) (map[string]billing.Record, error)
}
