package importer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxErrors is how many problems one parse reports in full; the rest are only counted.
const MaxErrors = 50

// Error is one problem in an import file. Parse functions return every problem they find, each
// as an *Error, joined with errors.Join; use errors.As to inspect the first one.
type Error struct {
	File  string // path as given by the caller
	Line  int    // 1-based; 0 when the problem concerns the whole file
	Field string // column or key, e.g. "end" or "policies[1].rules[0]"; may be empty
	Msg   string // the whole message after "file:line: ", starting with Field when there is one
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// errList collects problems up to MaxErrors and counts the rest.
type errList struct {
	file string
	errs []error
	more int
}

// add records a problem. msg is appended to field verbatim, so it starts with a space, a colon
// or a quote-led value: add(3, "end", ` "x": want …`) → `f:3: end "x": want …`.
func (l *errList) add(line int, field, msg string) {
	l.addErr(&Error{File: l.file, Line: line, Field: field, Msg: field + msg})
}

func (l *errList) addf(line int, field, format string, args ...any) {
	l.add(line, field, fmt.Sprintf(format, args...))
}

func (l *errList) addErr(err error) {
	if len(l.errs) < MaxErrors {
		l.errs = append(l.errs, err)
		return
	}
	l.more++
}

func (l *errList) count() int { return len(l.errs) + l.more }

// err returns nil or every recorded problem joined, with a trailer counting those left out.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	// Report in file order; problems found in a later pass (duplicates, overlaps) join their line.
	errs := slices.Clone(l.errs)
	slices.SortStableFunc(errs, func(a, b error) int { return lineOf(a) - lineOf(b) })
	if l.more > 0 {
		errs = append(errs,
			fmt.Errorf("%s: … and %d more problems (first %d shown)", l.file, l.more, MaxErrors))
	}
	return errors.Join(errs...)
}

func lineOf(err error) int {
	if e, ok := err.(*Error); ok {
		return e.Line
	}
	return 0
}

// timeMsg explains why s is not a time interval.ParseTime accepts.
func timeMsg(s string) string {
	var pe *time.ParseError
	if _, err := time.Parse(time.RFC3339, s); errors.As(err, &pe) && pe.Message != "" {
		return fmt.Sprintf(" %q: time has %s, want RFC 3339 such as 2026-10-03T08:15:41Z", s,
			strings.TrimPrefix(pe.Message, ": "))
	}
	return fmt.Sprintf(" %q: time not understood, want RFC 3339 such as 2026-10-03T08:15:41Z or a date YYYY-MM-DD", s)
}

// splitValidate turns the errors of a Validate method (each "field …: …") into (field, msg).
func splitValidate(err error) [][2]string {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([][2]string, 0, len(errs))
	for _, e := range errs {
		msg := e.Error()
		field := msg
		if i := strings.IndexAny(msg, " :"); i >= 0 {
			field = msg[:i]
		}
		out = append(out, [2]string{field, msg[len(field):]})
	}
	return out
}
