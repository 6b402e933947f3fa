package importer

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bilean/bilean/billing"
)

// textMsg checks one text value: valid UTF-8, no control character (NUL, escape, a line break;
// a description may hold line breaks and tabs when multiline), at most max bytes. It returns ""
// or the message to follow the field name.
func textMsg(s string, max int, multiline bool) string {
	ascii := true
	for i := 0; i < len(s); i++ { // fast path: printable ASCII
		if b := s[i]; b >= 0x80 {
			ascii = false
			break
		} else if b < 0x20 || b == 0x7f {
			if !(multiline && (b == '\n' || b == '\t' || b == '\r')) {
				return fmt.Sprintf(" %s: control character %U at byte %d, want printable text", clip(s), rune(b), i)
			}
		}
	}
	if !ascii {
		if !utf8.ValidString(s) {
			return fmt.Sprintf(" %s: invalid UTF-8", clip(s))
		}
		for i, r := range s {
			if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
				return fmt.Sprintf(" %s: control character %U at byte %d, want printable text", clip(s), r, i)
			}
		}
	}
	if len(s) > max {
		return fmt.Sprintf(" %s: %d bytes, at most %d", clip(s), len(s), max)
	}
	return ""
}

// clip quotes s for a message, cut to 40 bytes.
func clip(s string) string {
	if len(s) <= 40 {
		return fmt.Sprintf("%q", s)
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// idMsg checks an identifier (customer, resource, policy): required, printable, at most
// billing.MaxIDLen bytes.
func idMsg(s string) string {
	if s == "" {
		return ": required"
	}
	return textMsg(s, billing.MaxIDLen, false)
}

// now is the present for the bound on observed times; tests replace it.
var now = time.Now

// timeKind says which bounds a time must keep.
type timeKind int

const (
	observed timeKind = iota // happened: from 2000 to a day from now
	planned                  // may be ahead: from 2000 to 2100
)

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// timeBounds holds the latest observed time accepted, fixed once per file.
type timeBounds struct{ latest time.Time }

func newTimeBounds() timeBounds {
	return timeBounds{latest: now().UTC().Add(billing.MaxFutureSkew).Truncate(time.Second)}
}

// parseTime reads a time in the forms interval.ParseTime reads (RFC 3339, a space for the T, no
// zone meaning UTC, a bare date), strictly: whole seconds (a fraction is an error, never
// truncated), converted to UTC, within the bounds of its kind. It returns the time or a message
// to follow the field name.
func parseTime(s string, kind timeKind) (time.Time, string) { return newTimeBounds().parse(s, kind) }

func (b timeBounds) parse(s string, kind timeKind) (time.Time, string) {
	var t time.Time
	var err error
	for _, l := range timeLayouts {
		if t, err = time.Parse(l, s); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, timeMsg(s)
	}
	if t.Nanosecond() != 0 {
		frac := strings.TrimRight(fmt.Sprintf("%09d", t.Nanosecond()), "0")
		return time.Time{}, fmt.Sprintf(" %q: has a fraction of a second (.%s), want whole seconds such as %s",
			s, frac, t.UTC().Truncate(time.Second).Format(time.RFC3339))
	}
	t = t.UTC()
	if t.Before(billing.EarliestTime) {
		return time.Time{}, fmt.Sprintf(" %q: before %s, want a time from then on", s, billing.EarliestTime.Format(time.RFC3339))
	}
	switch kind {
	case observed:
		if t.After(b.latest) {
			return time.Time{}, fmt.Sprintf(" %q: more than a day in the future (latest accepted now: %s)", s, b.latest.Format(time.RFC3339))
		}
	case planned:
		if !t.Before(billing.LatestPlannedTime) {
			return time.Time{}, fmt.Sprintf(" %q: want a time before %s", s, billing.LatestPlannedTime.Format(time.RFC3339))
		}
	}
	return t, ""
}
