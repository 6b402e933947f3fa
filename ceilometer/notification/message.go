// Package notification reads OpenStack notifications as they reach RabbitMQ and turns them into
// billing events with YAML event definitions.
//
// A message is either an oslo.messaging 2.0 envelope ({"oslo.version": "2.0", "oslo.message":
// "<json string>"}) or a bare notification. Both legacy notifications (flat payloads such as
// compute.instance.create.end) and Nova's versioned ones (payload {"nova_object.data": {…}}) are
// understood: which fields matter is configuration (etc/events.yaml), not code.
//
// Invariants:
//   - event types match a definition exactly or by glob pattern, never by substring:
//     compute.instance.create_ip.end is not compute.instance.create.end;
//   - an event's time is the time the definition names in the message (launched_at,
//     deleted_at…, falling back to the envelope's timestamp), truncated to the whole second in
//     UTC, never the time Bilean read it;
//   - a message that cannot be parsed or matched yields an *Error with a stable Reason, never a
//     panic: the listener quarantines it.
package notification

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Reasons a message is refused; they are stable codes, stored with the quarantined message.
const (
	ReasonUnparseable    = "unparseable"     // not JSON, or not a notification
	ReasonUnknownEvent   = "unknown_event"   // a valid notification no definition matches
	ReasonMissingField   = "missing_field"   // a definition matched but a required field is absent
	ReasonBadField       = "bad_field"       // a field has an unusable value (a time that does not parse, a NUL in an id, an impossible time)
	ReasonUnknownProject = "unknown_project" // the project is not a customer and may not be created
	ReasonStoreRefused   = "store_refused"   // the store refused the event; the detail is the database's reason
)

// Error is why a message was refused.
type Error struct {
	Reason    string // one of the Reason constants
	EventType string // when known
	Err       error
}

func (e *Error) Error() string {
	if e.EventType != "" {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.EventType, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of err, or ReasonUnparseable for any other error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonUnparseable
}

// Message is one notification, unwrapped from its envelope. The body is validated once; fields
// other than the header are read only when a definition asks for them, straight from the JSON
// text (github.com/tidwall/gjson), without decoding the rest of the payload.
type Message struct {
	EventType   string
	MessageID   string // oslo's message_id; a digest of the body when the sender set none
	PublisherID string
	Priority    string
	// Timestamp is the envelope's timestamp (when the service sent it), zero when absent or bad.
	Timestamp time.Time

	top  gjson.Result // the notification object (inside the envelope when there is one)
	objs []object     // the objects read so far, indexed (see member)
	kv   []keyValue   // their members
}

// Parse reads a message body: an oslo.messaging 2.0 envelope or a bare notification.
func Parse(body []byte) (*Message, error) {
	if !gjson.ValidBytes(body) {
		return nil, &Error{Reason: ReasonUnparseable, Err: errors.New("body is not valid JSON")}
	}
	// Read the envelope in place: only the unquoted inner message (a copy) outlives this call.
	// A bare notification is copied below, so no result aliases body.
	top := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !top.IsObject() {
		return nil, &Error{Reason: ReasonUnparseable, Err: fmt.Errorf("body is not a JSON object but %s", kind(top))}
	}
	if raw := top.Get(`oslo\.message`); raw.Exists() {
		var version string
		if v := top.Get(`oslo\.version`); v.Exists() && v.Type != gjson.Null {
			if v.Type != gjson.String {
				return nil, &Error{Reason: ReasonUnparseable, Err: fmt.Errorf("oslo.version: want a string, got %s", kind(v))}
			}
			version = v.Str
		}
		if version != "2.0" {
			return nil, &Error{Reason: ReasonUnparseable, Err: fmt.Errorf("oslo.version %q: only 2.0 is understood", version)}
		}
		if raw.Type != gjson.String {
			return nil, &Error{Reason: ReasonUnparseable, Err: fmt.Errorf("oslo.message: want a JSON string, got %s", kind(raw))}
		}
		if !gjson.Valid(raw.Str) {
			return nil, &Error{Reason: ReasonUnparseable, Err: errors.New("oslo.message: not valid JSON")}
		}
		top = gjson.Parse(raw.Str)
		if !top.IsObject() {
			return nil, &Error{Reason: ReasonUnparseable, Err: fmt.Errorf("oslo.message: not a JSON object but %s", kind(top))}
		}
	} else {
		top = gjson.Parse(string(body))
	}
	m := &Message{top: top}
	var err error
	if m.EventType, err = m.headerString("event_type"); err != nil {
		return nil, err
	}
	if m.EventType == "" {
		return nil, &Error{Reason: ReasonUnparseable, Err: errors.New("event_type: missing: not a notification")}
	}
	if !m.member(top, "payload").Exists() {
		return nil, &Error{Reason: ReasonUnparseable, EventType: m.EventType, Err: errors.New("payload: missing: not a notification")}
	}
	if m.MessageID, err = m.headerString("message_id"); err != nil {
		return nil, err
	}
	if m.MessageID == "" {
		sum := sha256.Sum256(body)
		m.MessageID = "sha256:" + hex.EncodeToString(sum[:])
	}
	if m.PublisherID, err = m.headerString("publisher_id"); err != nil {
		return nil, err
	}
	if m.Priority, err = m.headerString("priority"); err != nil {
		return nil, err
	}
	if ts, err := m.headerString("timestamp"); err == nil && ts != "" {
		m.Timestamp, _ = ParseTime(ts) // a bad envelope time only matters if a definition needs it
	}
	return m, nil
}

// headerString reads a top-level string; absent or null is "".
func (m *Message) headerString(key string) (string, error) {
	r := m.member(m.top, key)
	if !r.Exists() || r.Type == gjson.Null {
		return "", nil
	}
	if r.Type != gjson.String {
		return "", &Error{Reason: ReasonUnparseable, EventType: m.EventType, Err: fmt.Errorf("%s: want a string, got %s", key, kind(r))}
	}
	return validUTF8(r.Str), nil
}

// kind names the JSON type of r for error messages.
func kind(r gjson.Result) string {
	switch {
	case !r.Exists():
		return "nothing"
	case r.IsObject():
		return "an object"
	case r.IsArray():
		return "an array"
	}
	switch r.Type {
	case gjson.Null:
		return "null"
	case gjson.False, gjson.True:
		return "a boolean"
	case gjson.Number:
		return "a number"
	}
	return "a string"
}

// validUTF8 replaces invalid UTF-8 as encoding/json does, so stored text is always UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
