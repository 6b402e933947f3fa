package handlers

import (
	"time"

	"github.com/bilean/bilean/billing"
)

func day(d int, hms ...int) time.Time {
	t := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d-1)
	if len(hms) > 0 {
		t = t.Add(time.Duration(hms[0]) * time.Hour)
	}
	return t
}

var (
	oct1 = day(1)
	nov1 = day(32)
)

func rec(id int64, start, end time.Time) billing.Record {
	return billing.Record{ID: id, Version: 1, ResourceID: "vm", ResourceType: "os.nova.server", Start: start, End: end, Attributes: map[string]string{"flavor": "m1.small"}}
}
