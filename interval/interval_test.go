package interval

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func r(a, b string) Range { return Range{Start: ts(a), End: ts(b)} }

func TestRangeSecondsAreHalfOpen(t *testing.T) {
	tests := []struct {
		name string
		r    Range
		want int64
	}{
		{"one second", r("2026-10-01T00:00:00Z", "2026-10-01T00:00:01Z"), 1},
		{"october", r("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"), 31 * 86400},
		{"empty", r("2026-10-01T00:00:00Z", "2026-10-01T00:00:00Z"), 0},
		{"reversed", r("2026-10-02T00:00:00Z", "2026-10-01T00:00:00Z"), 0},
		// February 2028 is a leap month: 29 days.
		{"leap february", r("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"), 29 * 86400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Seconds(); got != tt.want {
				t.Fatalf("Seconds() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSplitAtCutsOnlyInside(t *testing.T) {
	x := r("2026-09-20T10:00:00Z", "2026-10-20T10:00:00Z")
	got := x.SplitAt(ts("2026-10-01T00:00:00Z"), ts("2026-09-01T00:00:00Z"), ts("2026-10-20T10:00:00Z"), ts("2026-10-01T00:00:00Z"))
	want := []Range{r("2026-09-20T10:00:00Z", "2026-10-01T00:00:00Z"), r("2026-10-01T00:00:00Z", "2026-10-20T10:00:00Z")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	var sum int64
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("piece %d = %v, want %v", i, got[i], want[i])
		}
		sum += got[i].Seconds()
	}
	if sum != x.Seconds() {
		t.Fatalf("pieces hold %d s, the range %d s", sum, x.Seconds())
	}
}

func TestSetOperations(t *testing.T) {
	a := NewSet(r("2026-10-01T00:00:00Z", "2026-10-10T00:00:00Z"), r("2026-10-10T00:00:00Z", "2026-10-15T00:00:00Z"), r("2026-10-20T00:00:00Z", "2026-10-25T00:00:00Z"))
	if len(a) != 2 {
		t.Fatalf("touching ranges must merge: %v", a)
	}
	b := NewSet(r("2026-10-05T00:00:00Z", "2026-10-21T00:00:00Z"))
	tests := []struct {
		name string
		got  Set
		want Set
	}{
		{"subtract", a.Subtract(b), Set{r("2026-10-01T00:00:00Z", "2026-10-05T00:00:00Z"), r("2026-10-21T00:00:00Z", "2026-10-25T00:00:00Z")}},
		{"intersect", a.Intersect(b), Set{r("2026-10-05T00:00:00Z", "2026-10-15T00:00:00Z"), r("2026-10-20T00:00:00Z", "2026-10-21T00:00:00Z")}},
		{"union", a.Union(b), Set{r("2026-10-01T00:00:00Z", "2026-10-25T00:00:00Z")}},
		{"subtract everything", b.Subtract(NewSet(r("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))), nil},
		{"subtract nothing", b.Subtract(nil), b},
		{"intersect range", a.IntersectRange(r("2026-10-12T00:00:00Z", "2026-10-22T00:00:00Z")), Set{r("2026-10-12T00:00:00Z", "2026-10-15T00:00:00Z"), r("2026-10-20T00:00:00Z", "2026-10-22T00:00:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.got) != len(tt.want) {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
			for i := range tt.got {
				if tt.got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", tt.got, tt.want)
				}
			}
		})
	}
}

func TestSubtractThenUnionRestoresSeconds(t *testing.T) {
	a := NewSet(r("2026-10-01T00:00:00Z", "2026-10-31T00:00:00Z"))
	holes := NewSet(r("2026-10-03T00:00:00Z", "2026-10-04T00:00:07Z"), r("2026-10-09T00:00:00Z", "2026-10-09T00:00:01Z"))
	rest := a.Subtract(holes)
	if rest.Seconds()+holes.Seconds() != a.Seconds() {
		t.Fatalf("%d + %d != %d", rest.Seconds(), holes.Seconds(), a.Seconds())
	}
	if got := rest.Union(holes); len(got) != 1 || got[0] != a[0] {
		t.Fatalf("union = %v", got)
	}
}

func TestMonthInTimezone(t *testing.T) {
	zrh, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded: the zone is always there
	}
	m, err := Month("2026-10", zrh)
	if err != nil {
		t.Fatal(err)
	}
	// October in Zurich starts at 22:00 UTC (CEST, +2) and ends at 23:00 UTC (CET, +1): the
	// month holds the extra hour of the DST change.
	if m.Start != ts("2026-09-30T22:00:00Z") || m.End != ts("2026-10-31T23:00:00Z") {
		t.Fatalf("Month = %v", m)
	}
	if m.Seconds() != 31*86400+3600 {
		t.Fatalf("seconds = %d", m.Seconds())
	}
	if _, err := Month("2026-13", nil); err == nil {
		t.Fatal("2026-13 accepted")
	}
}

func TestParseTimeAcceptsOpenStackForms(t *testing.T) {
	want := ts("2026-10-03T08:15:41Z")
	for _, s := range []string{"2026-10-03T08:15:41.000000", "2026-10-03 08:15:41+00:00", "2026-10-03T08:15:41Z", "2026-10-03T10:15:41+02:00", "2026-10-03 08:15:41.123456"} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseTime("2026-10-32T00:00:00Z"); err == nil {
		t.Error("day 32 accepted")
	}
}

func TestEarlierAndLater(t *testing.T) {
	a := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	b := a.Add(time.Second)
	tests := []struct{ x, y, earlier, later time.Time }{{a, b, a, b}, {b, a, a, b}, {a, a, a, a}}
	for _, tc := range tests {
		if got := Earlier(tc.x, tc.y); !got.Equal(tc.earlier) {
			t.Errorf("Earlier(%s, %s) = %s, want %s", tc.x, tc.y, got, tc.earlier)
		}
		if got := Later(tc.x, tc.y); !got.Equal(tc.later) {
			t.Errorf("Later(%s, %s) = %s, want %s", tc.x, tc.y, got, tc.later)
		}
	}
}
