package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bilean/bilean/billing"
)

// FuzzUsageCSV feeds arbitrary bytes to the usage CSV parser: it must not panic, and every
// record it accepts must be well formed with an end after its start or open.
func FuzzUsageCSV(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/usage*.csv")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("resource_id,resource_type,customer_id,start,end\nv,t,c,2026-10-01,2026-10-01\n"))
	f.Add([]byte("\ufeffRESOURCE_ID, resource_type ,customer_id,start,x\n\"v\n1\",t,c,2026-10-01T00:00:00.9+14:00,=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(rs []billing.Record) error {
			for _, r := range rs {
				if r.ResourceID == "" || r.ResourceType == "" || r.CustomerID == "" || r.Source == "" {
					t.Fatalf("accepted a record with an empty field: %+v", r)
				}
				if !r.End.IsZero() && !r.End.After(r.Start) {
					t.Fatalf("accepted end %v not after start %v", r.End, r.Start)
				}
				if r.Start.Location().String() != "UTC" || r.Start.Nanosecond() != 0 || r.End.Nanosecond() != 0 {
					t.Fatalf("times not in whole UTC seconds: %v %v", r.Start, r.End)
				}
				for k, v := range r.Attributes {
					if v == "" {
						t.Fatalf("empty attribute %q kept", k)
					}
				}
			}
			return nil
		}
		_ = StreamUsage("fuzz.csv", bytes.NewReader(data), 3, check)
		_, _ = Usage("fuzz.csv", bytes.NewReader(data))
	})
}
