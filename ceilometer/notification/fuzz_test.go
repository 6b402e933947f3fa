package notification_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bilean/bilean/ceilometer/notification"
)

// addSamples seeds a fuzz target with every sample body; testdata/fuzz/<Target> holds more.
func addSamples(f *testing.F) {
	for _, dir := range []string{"legacy", "nova-versioned", "wire"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzEnvelope: any body either parses into a message with an event type and a message id, or
// fails with a reason; it never panics.
func FuzzEnvelope(f *testing.F) {
	addSamples(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := notification.Parse(body)
		if err != nil {
			if notification.ReasonOf(err) != notification.ReasonUnparseable {
				t.Fatalf("parse error with reason %s: %v", notification.ReasonOf(err), err)
			}
			return
		}
		if m.EventType == "" || m.MessageID == "" {
			t.Fatalf("parsed message without event type or id: %+v", m)
		}
	})
}

// FuzzEvent: any body through the shipped definitions is an event that validates, ignored, or a
// refusal with a stable reason; never a panic, never an event without a time.
func FuzzEvent(f *testing.F) {
	addSamples(f)
	defs := shipped(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := notification.Parse(body)
		if err != nil {
			return
		}
		e, err := defs.Event(m)
		switch {
		case err == nil:
			if verr := e.Validate(); verr != nil {
				t.Fatalf("event does not validate: %v (%+v)", verr, e)
			}
			if e.Time.Nanosecond() != 0 {
				t.Fatalf("event time %v is not a whole second", e.Time)
			}
		case errors.Is(err, notification.ErrIgnored):
		default:
			switch notification.ReasonOf(err) {
			case notification.ReasonUnknownEvent, notification.ReasonMissingField, notification.ReasonBadField:
			default:
				t.Fatalf("unexpected refusal: %v", err)
			}
		}
	})
}
