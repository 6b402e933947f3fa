package store

import (
	"context"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/notification"
)

// ListenerSource is the Source of the trigger records derived from notifications.
const ListenerSource = "listener"

// QuarantinedMessage is a message the listener could not turn into an event: kept with the reason
// and its raw body, never dropped silently, never redelivered forever.
type QuarantinedMessage struct {
	ID         int64
	MessageID  string // when the message had one
	EventType  string // when known
	Reason     string // a notification.Reason* code
	Detail     string
	Exchange   string
	RoutingKey string
	Body       []byte
	ReceivedAt time.Time
}

// EventBatch is what one listener batch writes, in one transaction.
type EventBatch struct {
	Events     []notification.Event
	Quarantine []QuarantinedMessage
	// NewCustomer is the template of the customers created on first sight of their project (its
	// ID is replaced); nil refuses the events of unknown projects (EventResult.Refused) and makes
	// identity.project.created a no-op.
	NewCustomer *billing.Customer
	ReceivedAt  time.Time
}

// EventResult says what RecordEvents did.
type EventResult struct {
	Recorded    int // events stored for the first time
	Duplicates  int // events whose message id was already stored (or repeated in the batch): no-ops
	Quarantined int // quarantine rows written (a body already quarantined counts once)
	// Refused are the indexes in EventBatch.Events of events of unknown projects, not stored,
	// when NewCustomer is nil: the caller quarantines them with reason unknown_project.
	Refused []int
	// Pending counts closes whose resource is not known yet: stored, applied when it appears.
	Pending int
	// Customers are the customers whose trigger records or status changed, sorted.
	Customers []string
	// CreatedCustomers are the customers created by this batch, sorted.
	CreatedCustomers []string
	// Conflicts counts settled records that the events now contradict (a span invoiced and then
	// made void by a very late notification): kept as they are, for an operator to look at.
	Conflicts int
}

// Events stores notification events and derives trigger records from them.
//
// Invariants: an event is stored once per message id (a duplicate is a no-op); each affected
// resource's records are derived from all of its stored events ordered by their own times
// (then open before change before close, then arrival), so arrival order does not matter, and
// clock skew between a payload's time and an envelope's never lets an open undo a change of its
// own life (derive.Spans); every event passes CheckEvent before anything is written, so both
// backends accept and refuse the same batches; the
// derived records are written with the semantics of Importer.AddRecords (Source
// ListenerSource), so a late close of an invoiced span unsettles it and the next invoice adjusts.
type Events interface {
	// RecordEvents stores a batch of events and quarantined messages and updates the trigger
	// records and customers they affect, all in one transaction.
	RecordEvents(ctx context.Context, b EventBatch) (EventResult, error)
	// Quarantined returns quarantined messages, oldest first, at most limit (0: all).
	Quarantined(ctx context.Context, limit int) ([]QuarantinedMessage, error)
	// ResourceEvents returns the stored events of a resource id, ordered as they are applied.
	ResourceEvents(ctx context.Context, resourceID string) ([]notification.Event, error)
}
