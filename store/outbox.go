package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DeliveryState is where one invoice's email delivery stands.
//
//	pending ──claim──▶ sending ──▶ sent
//	   ▲                  │ ├────▶ failed   (permanent: 5xx, bad address; `outbox retry` → pending)
//	   └──transient (4xx, │ └────▶ unknown  (interrupted after the message may have been accepted;
//	      refused)────────┘                  `outbox retry --force` → pending)
//	pending, failed ──invoice voided──▶ cancelled
type DeliveryState string

// Delivery states.
const (
	// DeliveryPending waits to be sent (NextAttempt says from when).
	DeliveryPending DeliveryState = "pending"
	// DeliverySending is claimed by a sender, which recorded the Message-ID before talking to the
	// SMTP server. An entry found in this state by a later run was interrupted: the server may or
	// may not have accepted the message.
	DeliverySending DeliveryState = "sending"
	// DeliverySent was accepted by the SMTP server.
	DeliverySent DeliveryState = "sent"
	// DeliveryFailed was refused for good (a 5xx reply, an invalid address, no recipient) or ran
	// out of attempts.
	DeliveryFailed DeliveryState = "failed"
	// DeliveryUnknown may or may not have been accepted: an operator checks the Message-ID in the
	// mail server's log, and resends only if it is not there.
	DeliveryUnknown DeliveryState = "unknown"
	// DeliveryCancelled will not be sent: the invoice was voided.
	DeliveryCancelled DeliveryState = "cancelled"
)

// DeliveryStates lists every state, in life-cycle order.
var DeliveryStates = []DeliveryState{DeliveryPending, DeliverySending, DeliverySent, DeliveryFailed, DeliveryUnknown, DeliveryCancelled}

// Delivery is the outbox entry of one invoice: at most one exists per invoice number.
type Delivery struct {
	ID         int64         `json:"id"`
	Invoice    string        `json:"invoice"` // invoice number, the entry's natural key
	CustomerID string        `json:"customer_id"`
	To         []string      `json:"to"`            // the customer's billing contacts
	Bcc        []string      `json:"bcc,omitempty"` // accountants, never in the message headers
	State      DeliveryState `json:"state"`
	Attempts   int           `json:"attempts"` // tries since the entry was created or last retried
	LastError  string        `json:"last_error,omitempty"`
	// MessageID is the Message-ID header (without angle brackets), recorded when the entry is
	// first claimed and kept across attempts, so that the mail server's log can tell whether a
	// message left.
	MessageID   string    `json:"message_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	NextAttempt time.Time `json:"next_attempt"` // a pending entry is not sent before this
	SentAt      time.Time `json:"sent_at,omitzero"`
}

// DeliveryFilter narrows a listing of the outbox.
type DeliveryFilter struct {
	States  []DeliveryState // empty means any
	Invoice string          // empty means any
	// DueBy, when set, keeps entries whose NextAttempt is at or before it.
	DueBy time.Time
	Limit int
}

// DeliveryOutcome is what became of a claimed delivery.
type DeliveryOutcome struct {
	// State is sent, pending (a transient failure: try again from NextAttempt), failed or unknown.
	State       DeliveryState
	Error       string
	NextAttempt time.Time // for pending
	At          time.Time
}

// ErrDeliveryState is returned when an entry is not in a state that allows the change.
var ErrDeliveryState = errors.New("delivery is not in a state that allows this")

// DeliveryStateError says which state refused a change.
type DeliveryStateError struct {
	ID    int64
	State DeliveryState
	Want  string
}

func (e *DeliveryStateError) Error() string {
	return fmt.Sprintf("delivery %d is %s: %s", e.ID, e.State, e.Want)
}

// Unwrap makes errors.Is(err, ErrDeliveryState) true.
func (e *DeliveryStateError) Unwrap() error { return ErrDeliveryState }

// Outbox records the email delivery of invoices so that each is sent once and only once.
//
// The sender's protocol: Claim (pending → sending, the Message-ID recorded and committed), then
// talk to the SMTP server, then Complete. A process that dies in between leaves the entry in
// sending; Reconcile turns such entries into unknown rather than back into pending, because the
// server may already have accepted the message. Nothing here ever moves an entry back to pending
// without an explicit Retry.
//
// Voiding an invoice (Invoices.VoidInvoice, or Finalize with Replaces) cancels its pending or
// failed entry in the same transaction.
type Outbox interface {
	// EnqueueDeliveries creates a pending entry for each delivery whose invoice has none yet,
	// due at its NextAttempt (zero means CreatedAt), in one transaction. Entries that exist are
	// left exactly as they are. It returns the stored entries, in the order given.
	EnqueueDeliveries(ctx context.Context, ds []Delivery) ([]Delivery, error)
	// Deliveries lists entries matching the filter, oldest first.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// GetDelivery returns one entry; ErrNotFound when there is none.
	GetDelivery(ctx context.Context, id int64) (Delivery, error)
	// ClaimDelivery moves a pending entry to sending, counts the attempt and records messageID
	// unless the entry has one already (a retry keeps the first Message-ID). It returns the
	// claimed entry and true, or false when the entry is not pending (another sender claimed it,
	// or it was cancelled).
	ClaimDelivery(ctx context.Context, id int64, messageID string, at time.Time) (Delivery, bool, error)
	// CompleteDelivery records the outcome of a claimed (sending) entry; a *DeliveryStateError
	// when it is not sending.
	CompleteDelivery(ctx context.Context, id int64, o DeliveryOutcome) error
	// ReconcileDeliveries marks unknown every entry that has been sending since `before` or
	// earlier, with reason as its last error, and returns them.
	ReconcileDeliveries(ctx context.Context, before time.Time, reason string) ([]Delivery, error)
	// RetryDelivery puts a failed entry back to pending, due at `at`, with its attempts reset;
	// with force, an unknown entry too (the operator checked that it did not leave). to, when not
	// nil, replaces the recipients. A *DeliveryStateError for any other state.
	RetryDelivery(ctx context.Context, id int64, force bool, to []string, at time.Time) (Delivery, error)
	// CancelDelivery marks a pending or failed entry cancelled with the reason; a
	// *DeliveryStateError for any other state.
	CancelDelivery(ctx context.Context, id int64, reason string, at time.Time) error
}
