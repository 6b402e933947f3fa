package importer

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
)

// fixNow pins the present for the bound on observed times.
func fixNow(t *testing.T, at string) {
	t.Helper()
	old := now
	now = func() time.Time { return ts(at) }
	t.Cleanup(func() { now = old })
}

const usageHead = "resource_id,resource_type,customer_id,start,end,flavor,size\n"

// TestValuesThatWouldBreakTheRunAreRefused: every rule billing relies on later is checked on
// import, and the report names file, line and field with the value as the user wrote it.
func TestValuesThatWouldBreakTheRunAreRefused(t *testing.T) {
	fixNow(t, "2026-12-03T08:00:00Z")
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		rule, name, content string
		want                []string
	}{
		// What the rule plugin needs (rating.CheckAttributes).
		{"volume size negative", "usage.csv", usageHead + "vol-1,os.cinder.volume,p1,2026-10-01T00:00:00Z,,,-100\n", []string{
			`usage.csv:2: size "-100": want a non-negative number`}},
		{"volume size not a number", "usage.csv", usageHead + "vol-1,os.cinder.volume,p1,2026-10-01T00:00:00Z,,,100GB\n", []string{
			`usage.csv:2: size "100GB": want a non-negative number`}},
		{"volume without size", "usage.csv", usageHead + "vol-1,os.cinder.volume,p1,2026-10-01T00:00:00Z,,,\n", []string{
			`usage.csv:2: size: required for os.cinder.volume`}},
		{"image without size", "usage.csv", usageHead + "img-1,os.glance.image,p1,2026-10-01T00:00:00Z,,,\n", []string{
			`usage.csv:2: size: required for os.glance.image`}},
		{"server without flavor", "usage.csv", usageHead + "vm-1,os.nova.server,p1,2026-10-01T00:00:00Z,,,\n", []string{
			`usage.csv:2: flavor: required for os.nova.server (or flavor_id)`}},
		{"server with negative vcpus", "usage.jsonl",
			`{"resource_id":"vm-1","resource_type":"os.nova.server","customer_id":"p1","start":"2026-10-01T00:00:00Z","attributes":{"flavor":"m1","vcpus":-2}}` + "\n", []string{
				`usage.jsonl:1: attributes.vcpus "-2": want a non-negative number`}},
		{"JSON volume size negative", "usage.jsonl",
			"\n" + `{"resource_id":"v","resource_type":"os.cinder.volume","customer_id":"p1","start":"2026-10-01T00:00:00Z","attributes":{"size":-100}}` + "\n", []string{
				`usage.jsonl:2: attributes.size "-100": want a non-negative number`}},

		// Times: whole seconds, from 2000, observed ones at most a day ahead.
		{"fraction of a second", "usage.csv", usageHead + "vm-1,os.nova.server,p1,2026-10-01T00:00:00.250Z,2026-10-02T00:00:00.5+02:00,m1,\n", []string{
			`usage.csv:2: start "2026-10-01T00:00:00.250Z": has a fraction of a second (.25), want whole seconds such as 2026-10-01T00:00:00Z`,
			`usage.csv:2: end "2026-10-02T00:00:00.5+02:00": has a fraction of a second (.5), want whole seconds such as 2026-10-01T22:00:00Z`}},
		{"start in 9999", "usage.csv", usageHead + "vm-1,os.nova.server,p1,9999-01-01T00:00:00Z,,m1,\n", []string{
			`usage.csv:2: start "9999-01-01T00:00:00Z": more than a day in the future (latest accepted now: 2026-12-04T08:00:00Z)`}},
		{"end two days ahead", "usage.csv", usageHead + "vm-1,os.nova.server,p1,2026-12-01,2026-12-05T08:00:00Z,m1,\n", []string{
			`usage.csv:2: end "2026-12-05T08:00:00Z": more than a day in the future (latest accepted now: 2026-12-04T08:00:00Z)`}},
		{"start before 2000", "usage.csv", usageHead + "vm-1,os.nova.server,p1,1999-12-31T23:59:59Z,,m1,\n", []string{
			`usage.csv:2: start "1999-12-31T23:59:59Z": before 2000-01-01T00:00:00Z, want a time from then on`}},
		{"payment received in 9999", "payments.csv", "customer_id,amount,currency,received_at\np1,10.00,EUR,9999-12-31\n", []string{
			`payments.csv:2: received_at "9999-12-31": more than a day in the future (latest accepted now: 2026-12-04T08:00:00Z)`}},
		{"payment received with a fraction", "payments.yaml", "payments:\n  - customer: p1\n    amount: 10.00\n    currency: EUR\n    received_at: 2026-10-03T08:15:41.999Z\n", []string{
			`payments.yaml:5: payments[0].received_at "2026-10-03T08:15:41.999Z": has a fraction of a second (.999), want whole seconds such as 2026-10-03T08:15:41Z`}},
		{"subscription from 1970", "subscriptions.csv", "customer_id,policy,start,end\np1,standard,1970-01-01,2100-01-01\n", []string{
			`subscriptions.csv:2: start "1970-01-01": before 2000-01-01T00:00:00Z, want a time from then on`,
			`subscriptions.csv:2: end "2100-01-01": want a time before 2100-01-01T00:00:00Z`}},
		{"policy effective with a fraction", "policies.yaml", "name: p\ncurrency: EUR\neffective_from: 2026-11-01T00:00:00.1Z\n", []string{
			`policies.yaml:3: effective_from "2026-11-01T00:00:00.1Z": has a fraction of a second (.1), want whole seconds such as 2026-11-01T00:00:00Z`}},

		// Text: no NUL or control character anywhere, lengths within billing's limits.
		{"NUL in a customer name", "customers.csv", "id,name,currency\np1,\"ACME\x00GmbH\",EUR\n", []string{
			`customers.csv:2: name "ACME\x00GmbH": control character U+0000 at byte 4, want printable text`}},
		{"NUL in a YAML customer name", "customers.yaml", "customers:\n  - id: p1\n    name: \"ACME\\0\"\n    currency: EUR\n", []string{
			`customers.yaml:3: customers[0].name "ACME\x00": control character U+0000 at byte 4, want printable text`}},
		{"line break in a customer name", "customers.csv", "id,name,currency\np1,\"ACME\nGmbH\",EUR\n", []string{
			`customers.csv:2: name "ACME\nGmbH": control character U+000A at byte 4, want printable text`}},
		{"escape in a timezone", "customers.csv", "id,currency,timezone\np1,EUR,\x1b[31mUTC\n", []string{
			`customers.csv:2: timezone "\x1b[31mUTC": control character U+001B at byte 0, want printable text`}},
		{"name too long", "customers.csv", "id,name,currency\np1," + long + ",EUR\n", []string{
			`customers.csv:2: name "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…: 256 bytes, at most 255`}},
		{"too many contacts", "customers.csv", "id,currency,contacts\np1,EUR," + strings.Repeat("a@example.com;", 33) + "\n", []string{
			`customers.csv:2: contacts: 33 items, at most 32`}},
		{"invalid UTF-8 in a reference", "payments.csv", "customer_id,amount,currency,received_at,reference\np1,1,EUR,2026-10-01,\xff\n", []string{
			`payments.csv:2: reference "\xff": invalid UTF-8`}},
		{"NUL in a resource id", "usage.csv", usageHead + "vm\x00,os.nova.server,p1,2026-10-01,,m1,\n", []string{
			`usage.csv:2: resource_id "vm\x00": control character U+0000 at byte 2, want printable text`}},
		{"NUL in an attribute", "usage.csv", usageHead + "vm-1,os.nova.server,p1,2026-10-01,,\"m1\x00\",\n", []string{
			`usage.csv:2: flavor "m1\x00": control character U+0000 at byte 2, want printable text`}},
		{"attribute too long", "usage.jsonl",
			`{"resource_id":"v","resource_type":"x","customer_id":"p1","start":"2026-10-01","attributes":{"note":"` + long + `"}}` + "\n", []string{
				`usage.jsonl:1: attributes.note "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…: 256 bytes, at most 255`}},
		{"control character in an attribute name", "usage.jsonl",
			`{"resource_id":"v","resource_type":"x","customer_id":"p1","start":"2026-10-01","attributes":{"a\u0007":"1"}}` + "\n", []string{
				`usage.jsonl:1: attributes "a\a": control character U+0007 at byte 1, want printable text`}},
		{"NUL in a policy description", "policies.yaml", "name: p\ncurrency: EUR\ndescription: \"a\\0b\"\n", []string{
			`policies.yaml:3: description "a\x00b": control character U+0000 at byte 1, want printable text`}},

		// The file's shape: bounded before memory grows.
		{"CSV row over 1 MiB", "usage.csv", usageHead + "vm-1,os.nova.server,p1,2026-10-01,,\"" + strings.Repeat("x", MaxLineBytes+rowSlack) + "\",\n", []string{
			`usage.csv:2: row longer than 1048576 bytes (1 MiB); the rest of the file is not read`}},
		{"CSV header over 256 columns", "usage.csv", "resource_id,resource_type,customer_id,start" + strings.Repeat(",a", 253) + "\n", []string{
			`usage.csv:1: header has 257 columns, at most 256`}},
		{"CSV header of a million columns", "usage.csv", strings.Repeat(",", 999_999) + "\n", []string{
			`usage.csv:1: header has 1000000 columns, at most 256`}},
		{"CSV over 64 attribute columns", "usage.csv", "resource_id,resource_type,customer_id,start" + func() string {
			var b strings.Builder
			for i := range 65 {
				fmt.Fprintf(&b, ",a%d", i)
			}
			return b.String()
		}() + "\n", []string{
			`usage.csv:1: header has 65 attribute columns, at most 64`}},
		{"JSON line over 1 MiB", "usage.jsonl", "\n" + strings.Repeat(" ", MaxLineBytes+1) + "\n", []string{
			`usage.jsonl:2: line longer than 1048576 bytes (1 MiB); the rest of the file is not read`}},
		{"JSON over 64 attributes", "usage.jsonl", `{"resource_id":"v","resource_type":"x","customer_id":"p1","start":"2026-10-01","attributes":{` + func() string {
			var b []string
			for i := range 65 {
				b = append(b, fmt.Sprintf(`"a%d":1`, i))
			}
			return strings.Join(b, ",")
		}() + "}}\n", []string{
			`usage.jsonl:1: attributes: 65 attributes, at most 64`}},
		{"YAML line over 1 MiB", "customers.yaml", "customers:\n  - id: p1\n    name: " + strings.Repeat("x", MaxLineBytes+1) + "\n", []string{
			`customers.yaml:3: line longer than 1048576 bytes (1 MiB)`}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := parseAny("", tc.name, strings.NewReader(tc.content))
			if err == nil {
				t.Fatal("accepted")
			}
			if g, w := err.Error(), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestValuesAtTheLimitsAreAccepted is the other side of each rule.
func TestValuesAtTheLimitsAreAccepted(t *testing.T) {
	fixNow(t, "2026-12-03T08:00:00Z")
	for _, tc := range []struct {
		rule, name, content, want string
	}{
		{"server by flavor id, offset converted, zero fraction", "usage.csv",
			"resource_id,resource_type,customer_id,start,end,flavor_id\nvm-1,os.nova.server,p1,2026-10-01T02:00:00+02:00,2026-10-02T00:00:00.000Z,42\n",
			"[{p1 vm-1 [2026-10-01T00:00:00Z, 2026-10-02T00:00:00Z) map[flavor_id:42]}]"},
		{"size zero, a day ahead, 2000", "usage.csv", usageHead +
			"vol-1,os.cinder.volume,p1,2000-01-01T00:00:00Z,2026-12-04T08:00:00Z,,0\n",
			"[{p1 vol-1 [2000-01-01T00:00:00Z, 2026-12-04T08:00:00Z) map[size:0]}]"},
		{"types without needs", "usage.csv", usageHead +
			"fip-1,os.neutron.floatingip,p1,2026-10-01,,,\nx-1,custom.thing,p1,2026-10-01,,,\n",
			"[{p1 fip-1 [2026-10-01T00:00:00Z, open) map[]} {p1 x-1 [2026-10-01T00:00:00Z, open) map[]}]"},
		{"255-byte name, unicode, 32 contacts", "customers.csv", "id,name,currency,contacts\np1," +
			strings.Repeat("é", 127) + "x,EUR," + strings.Repeat("a@example.com;", 32) + "\n", ""},
		{"multi-line policy description", "policies.yaml", "name: p\ncurrency: EUR\ndescription: |\n  line one\n  \tline two\neffective_from: 2099-12-31T23:59:59Z\n", ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			got, err := parseAny("", tc.name, strings.NewReader(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				return
			}
			if g := usageString(got); g != tc.want {
				t.Errorf("got %s, want %s", g, tc.want)
			}
		})
	}
}

func usageString(v any) string {
	var parts []string
	for _, r := range v.([]billing.Record) {
		parts = append(parts, fmt.Sprintf("{%s %s %s %v}", r.CustomerID, r.ResourceID, r.Range(), r.Attributes))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// endless is an input that never ends: one line of x.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestAnEndlessLineIsRefusedInBoundedMemory: a file that is one enormous line (the 200 MB
// one-line CSV that peaked at 671 MB) is refused after 1 MiB, in every format, allocating a few
// MiB at most.
func TestAnEndlessLineIsRefusedInBoundedMemory(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"usage.csv", "usage.csv:1: row longer than 1048576 bytes (1 MiB); the rest of the file is not read"},
		{"customers.csv", "customers.csv:1: row longer than 1048576 bytes (1 MiB); the rest of the file is not read"},
		{"usage.jsonl", "usage.jsonl:1: line longer than 1048576 bytes (1 MiB); the rest of the file is not read"},
		{"customers.yaml", "customers.yaml:1: line longer than 1048576 bytes (1 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := parseAny("", tc.name, io.MultiReader(strings.NewReader(""), endless{}))
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB to refuse it, want at most 16", alloc>>20)
			}
		})
	}
}
