package notification

import (
	"fmt"
	"strings"
	"time"
)

// timeLayouts are the forms OpenStack services write times in, after a space between date and
// time has been replaced by a T. A missing zone means UTC (oslo_utils.timeutils writes naive UTC).
var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00", // 2026-10-07T16:20:11Z, 2026-10-03 08:14:55+00:00
	"2006-01-02T15:04:05.999999999Z0700",  // 2026-10-03T08:14:55.000000+0000
	"2006-01-02T15:04:05.999999999",       // 2026-10-03T08:15:41.000000, 2026-10-03 08:15:42.120934
	"2006-01-02T15:04:05.999999999 MST",   // 2026-10-03 08:15:42 UTC
}

// naiveFirst is timeLayouts with the zoneless layout first.
var naiveFirst = []string{timeLayouts[2], timeLayouts[0], timeLayouts[1], timeLayouts[3]}

// ParseTime reads a notification time in any of the forms OpenStack services write
// (2026-10-03T08:15:41.000000, 2026-10-03 08:14:55+00:00, 2026-10-07T16:20:11Z,
// 2026-10-03 08:15:42.120934) and returns it in UTC, truncated to the whole second.
func ParseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	if len(v) > 10 && v[10] == ' ' {
		v = v[:10] + "T" + v[11:]
	}
	layouts := timeLayouts
	if len(v) >= 19 && !strings.ContainsAny(v[19:], "Z+- ") {
		// No zone (oslo's naive UTC, the most common form): try that layout first, as a failed
		// time.Parse allocates its error.
		layouts = naiveFirst
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, v); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want e.g. 2026-10-03T08:15:41.000000, 2026-10-03 08:14:55+00:00 or 2026-10-07T16:20:11Z", s)
}
