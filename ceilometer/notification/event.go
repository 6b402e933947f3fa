package notification

import (
	"fmt"
	"time"
)

// Action is what an event does to a resource's trigger records.
type Action string

// Actions.
const (
	Open   Action = "open"   // the resource starts to exist: a record opens at Time
	Change Action = "change" // its priced attributes change: the record closes and the next opens at Time
	Close  Action = "close"  // the resource is gone: the open record ends at Time
)

// Valid reports whether a is one of the three actions.
func (a Action) Valid() bool { return a == Open || a == Change || a == Close }

// rank orders actions that happen in the same second: a resource created and deleted within
// one second opens before it closes.
func (a Action) Rank() int {
	switch a {
	case Open:
		return 0
	case Change:
		return 1
	}
	return 2
}

// CustomerType is the resource type of events about the project itself
// (identity.project.created, identity.project.deleted): they open and close a customer, not a
// trigger record.
const CustomerType = "customer"

// Event is one notification read through a definition.
type Event struct {
	MessageID    string
	EventType    string
	ResourceType string // e.g. os.nova.server, or CustomerType
	ResourceID   string
	// ProjectID is the Keystone project, the customer. It may be empty on a close (Neutron's
	// floatingip.delete.end carries only the id): the store finds the resource by its id.
	ProjectID string
	Action    Action
	// Time is when it happened, in whole seconds UTC.
	Time time.Time
	// Attributes are what a rule prices (flavor, size, volume_type, state…).
	Attributes map[string]string
	// Sent is the envelope's timestamp (zero when absent), for the capture lag.
	Sent time.Time
}

// Validate checks what the store relies on.
func (e Event) Validate() error {
	switch {
	case e.MessageID == "":
		return fmt.Errorf("event %s: message id: required", e.EventType)
	case e.ResourceType == "":
		return fmt.Errorf("event %s: resource type: required", e.EventType)
	case e.ResourceID == "":
		return fmt.Errorf("event %s: resource id: required", e.EventType)
	case !e.Action.Valid():
		return fmt.Errorf("event %s: action %q: want open, change or close", e.EventType, e.Action)
	case e.Time.IsZero():
		return fmt.Errorf("event %s: time: required", e.EventType)
	case e.ProjectID == "" && e.Action != Close:
		return fmt.Errorf("event %s: project: required to %s a resource", e.EventType, e.Action)
	}
	return nil
}
