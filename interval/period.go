package interval

import (
	"fmt"
	"time"
)

// Month returns the calendar month named "YYYY-MM" as a UTC range whose edges are midnight on the
// first day of the month and of the next one in loc (the billing timezone). loc nil means UTC.
func Month(name string, loc *time.Location) (Range, error) {
	if loc == nil {
		loc = time.UTC
	}
	t, err := time.ParseInLocation("2006-01", name, loc)
	if err != nil {
		return Range{}, fmt.Errorf("period %q: want YYYY-MM, e.g. 2026-10", name)
	}
	return Range{Start: Norm(t), End: Norm(t.AddDate(0, 1, 0))}, nil
}

// MonthOf returns the calendar month (in loc) that contains t.
func MonthOf(t time.Time, loc *time.Location) Range {
	if loc == nil {
		loc = time.UTC
	}
	l := t.In(loc)
	start := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	return Range{Start: Norm(start), End: Norm(start.AddDate(0, 1, 0))}
}

// MonthName returns "YYYY-MM" for the month (in loc) that starts at r.Start.
func MonthName(r Range, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return r.Start.In(loc).Format("2006-01")
}

// ParseTime reads a timestamp in the forms OpenStack and spreadsheets produce: RFC 3339 with or
// without fractional seconds, "YYYY-MM-DD HH:MM:SS[.ffffff][±hh:mm]", "YYYY-MM-DDTHH:MM:SS[.ffffff]"
// (UTC assumed when no zone is given) and a bare date "YYYY-MM-DD" (midnight UTC). The result is
// normalised with Norm.
func ParseTime(s string) (time.Time, error) {
	layouts := []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return Norm(t), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 such as 2026-10-03T08:15:41Z", s)
}
