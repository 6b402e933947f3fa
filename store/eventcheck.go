package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bilean/bilean/ceilometer/notification"
)

// EventLimits are the largest values, in bytes of UTF-8, that the events table of every backend
// stores and indexes. They are one table so that the listener (which quarantines what exceeds
// them) and both stores (which refuse it) agree. PostgreSQL cannot index a btree entry over
// 2,704 bytes (SQLSTATE 54000) and would refuse the whole transaction; the embedded store has no
// such limit and would accept it: a limit well under both keeps the two stores identical.
// OpenStack's own columns are narrower still: ids are 36-character UUIDs, Keystone project ids
// at most 64, Nova flavor names 255.
var EventLimits = struct {
	MessageID, EventType, ResourceType, ResourceID, ProjectID, AttrName, AttrValue int
}{
	MessageID:    255,
	EventType:    255,
	ResourceType: 255,
	ResourceID:   255,
	ProjectID:    255,
	AttrName:     64,
	AttrValue:    255,
}

// EventTimeRange is the range of event times every backend stores: PostgreSQL's timestamptz and
// the embedded store's Unix seconds both hold far more, but a time outside it is a corrupt
// message, not a billable second. The listener narrows it further (listener.min_event_time,
// listener.max_event_ahead).
var EventTimeRange = struct{ Min, Max time.Time }{
	Min: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
	Max: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
}

// ErrBadEventField is wrapped by CheckEvent's errors.
var ErrBadEventField = errors.New("unusable value")

// CheckEvent validates what both backends store of an event: the required fields
// (notification.Event.Validate), then every text field: valid UTF-8, no NUL or other control
// character (PostgreSQL refuses a NUL in text with SQLSTATE 22021), within EventLimits; and a
// time within EventTimeRange. Both stores call it on every event of a batch before they write,
// so they accept and refuse exactly the same events; the listener calls it before the store and
// quarantines what it refuses.
func CheckEvent(e notification.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	fields := []struct {
		name, v string
		max     int
	}{
		{"message id", e.MessageID, EventLimits.MessageID},
		{"event type", e.EventType, EventLimits.EventType},
		{"resource type", e.ResourceType, EventLimits.ResourceType},
		{"resource id", e.ResourceID, EventLimits.ResourceID},
		{"project", e.ProjectID, EventLimits.ProjectID},
	}
	for _, f := range fields {
		if err := checkText(f.v, f.max); err != nil {
			return fmt.Errorf("event %s: %s %s: %w", Printable(e.EventType, 80), f.name, Printable(f.v, 80), err)
		}
	}
	for k, v := range e.Attributes {
		if err := checkText(k, EventLimits.AttrName); err != nil {
			return fmt.Errorf("event %s: attribute name %s: %w", Printable(e.EventType, 80), Printable(k, 80), err)
		}
		if err := checkText(v, EventLimits.AttrValue); err != nil {
			return fmt.Errorf("event %s: attribute %s = %s: %w", Printable(e.EventType, 80), Printable(k, 80), Printable(v, 80), err)
		}
	}
	if t := e.Time.UTC(); t.Before(EventTimeRange.Min) || t.After(EventTimeRange.Max) {
		return fmt.Errorf("event %s: time %s: %w: want %d to %d", Printable(e.EventType, 80), t.Format(time.RFC3339),
			ErrBadEventField, EventTimeRange.Min.Year(), EventTimeRange.Max.Year())
	}
	return nil
}

// CheckEvents is CheckEvent on every event of a batch; the error names the first refused one.
func CheckEvents(evs []notification.Event) error {
	for i, e := range evs {
		if err := CheckEvent(e); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	return nil
}

func checkText(s string, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not valid UTF-8", ErrBadEventField)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadEventField, len(s), max)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrBadEventField, r, i)
		}
	}
	return nil
}

// Printable quotes s for an error message or a log line: control characters and invalid UTF-8
// escaped (a NUL never reaches a text column), at most max bytes of it shown.
func Printable(s string, max int) string {
	cut := ""
	if len(s) > max {
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		cut = fmt.Sprintf("…(%d bytes)", len(s))
		s = s[:n]
	}
	return quote(s) + cut
}

// quote is strconv.Quote without escaping printable non-ASCII.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// Quarantine text fields are limited so a row is always storable; the body (bytes) is kept whole.
const quarantineTextMax = 4096

// CleanQuarantine returns q with every text field storable by both backends: invalid UTF-8 and
// control characters (NUL above all) escaped as \xNN (newlines and tabs of the detail kept), each
// field at most 4 KiB. The body is kept as received. A message quarantined because its id held a
// NUL must not itself be refused by the quarantine table, or it would block the queue as the
// event did.
func CleanQuarantine(q QuarantinedMessage) QuarantinedMessage {
	q.MessageID, q.EventType, q.Reason = escapeText(q.MessageID, false), escapeText(q.EventType, false), escapeText(q.Reason, false)
	q.Detail = escapeText(q.Detail, true)
	q.Exchange, q.RoutingKey = escapeText(q.Exchange, false), escapeText(q.RoutingKey, false)
	return q
}

// escapeText escapes invalid UTF-8 and control characters (but newlines and tabs when lines is
// set) and cuts the result to quarantineTextMax bytes.
func escapeText(s string, lines bool) string {
	keep := func(r rune) bool { return !unicode.IsControl(r) || lines && (r == '\n' || r == '\t') }
	if len(s) <= quarantineTextMax && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !keep(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < quarantineTextMax-16; {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !keep(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !keep(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
		if i < len(s) && b.Len() >= quarantineTextMax-16 {
			b.WriteString("…")
		}
	}
	return b.String()
}
