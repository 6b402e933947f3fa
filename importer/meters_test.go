package importer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store/sqlite"
)

const meterHeader = "id,customer_id,meter,resource_id,resource_type,start,end,quantity,unit,aggregation,region\n"

// writeFile writes content to a file named name in a temporary folder and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMeters(t *testing.T) {
	oct := interval.Range{Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z")}
	traffic := billing.MeterTotal{ID: "t1", CustomerID: "c1", Meter: "network.outgoing.bytes", ResourceID: "port-1",
		ResourceType: "instance_network_interface", Range: oct, Quantity: dec("1300.50"), Unit: "GB",
		Aggregation: "sum", Attributes: map[string]string{"region": "RegionOne"}, Source: "import"}
	wide := billing.MeterTotal{ID: "t2", CustomerID: "c2", Meter: "api.calls", Range: oct, Quantity: dec("0"),
		Unit: "call", Aggregation: "max", Source: "gnocchi-export"}
	for _, tc := range []struct {
		name, file, content string
		want                []billing.MeterTotal
	}{
		{"csv", "m.csv", meterHeader +
			"t1,c1,network.outgoing.bytes,port-1,instance_network_interface,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1300.50,GB,,RegionOne\n" +
			"t1,c1,network.outgoing.bytes,port-1,instance_network_interface,2026-10-01,2026-11-01,1300.5,GB,sum,RegionOne\n",
			[]billing.MeterTotal{traffic}},
		{"csv without optional columns", "m.csv", "ID,Customer_ID,Meter,Start,End,Quantity,Unit,Source,Aggregation\n" +
			"t2,c2,api.calls,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,0,call,gnocchi-export,max\n",
			[]billing.MeterTotal{wide}},
		{"json lines", "m.jsonl",
			`{"id":"t1","customer_id":"c1","meter":"network.outgoing.bytes","resource_id":"port-1","resource_type":"instance_network_interface","start":"2026-10-01T00:00:00Z","end":"2026-11-01T00:00:00Z","quantity":1300.50,"unit":"GB","attributes":{"region":"RegionOne","empty":""}}` + "\n\n" +
				`{"id":"t2","customer_id":"c2","meter":"api.calls","start":"2026-10-01T00:00:00Z","end":"2026-11-01T00:00:00Z","quantity":"0","unit":"call","aggregation":"max","source":"gnocchi-export"}` + "\n",
			[]billing.MeterTotal{traffic, wide}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Meters(tc.file, strings.NewReader(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d totals %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].Quantity.String() != tc.want[i].Quantity.String() {
					t.Errorf("quantity %s, want %s exactly as written", got[i].Quantity, tc.want[i].Quantity)
				}
				got[i].Quantity, tc.want[i].Quantity = tc.want[i].Quantity, got[i].Quantity
				if !reflect.DeepEqual(got[i], tc.want[i]) {
					t.Errorf("total %d = %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestMetersBadLines: every problem names the file, the line and the field.
func TestMetersBadLines(t *testing.T) {
	row := func(id, cust, start, end, qty, unit, agg string) string {
		return id + "," + cust + ",network.outgoing.bytes,port-1,instance_network_interface," + start + "," + end + "," + qty + "," + unit + "," + agg + ",\n"
	}
	const s, e = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"negative quantity", "m.csv", meterHeader + row("t1", "c1", s, e, "1", "GB", "") + row("t2", "c1", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "-1", "GB", ""),
			[]string{`m.csv:3: quantity "-1": must not be negative`}},
		{"float quantity", "m.csv", meterHeader + row("t1", "c1", s, e, "1e9", "GB", "") + row("t2", "c1", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "", "GB", ""),
			[]string{`m.csv:2: quantity "1e9": want a non-negative decimal`, `m.csv:3: quantity: required`}},
		{"end not after start", "m.csv", meterHeader + row("t1", "c1", e, s, "1", "GB", "") + row("t2", "c1", s, s, "1", "GB", ""),
			[]string{`m.csv:2: end "2026-10-01T00:00:00Z": must be after start "2026-11-01T00:00:00Z"`, `m.csv:3: end "2026-10-01T00:00:00Z": must be after start`}},
		{"times", "m.csv", meterHeader + row("t1", "c1", "2026-10-32T00:00:00Z", "", "1", "GB", "") + row("t2", "c1", "2026-10-01T00:00:00.5Z", e, "1", "GB", ""),
			[]string{`m.csv:2: start "2026-10-32T00:00:00Z": time has day out of range`, `m.csv:2: end: required`,
				`m.csv:3: start "2026-10-01T00:00:00.5Z": want whole seconds, e.g. 2026-10-01T00:00:00Z`}},
		{"required fields", "m.csv", meterHeader + row("", "", s, e, "1", "", "median"),
			[]string{`m.csv:2: id: required`, `m.csv:2: customer_id: required`, `m.csv:2: unit: required`, `m.csv:2: aggregation "median": want one of sum, mean, max, last, rate`}},
		{"same id, other content", "m.csv", meterHeader + row("t1", "c1", s, e, "1", "GB", "") + row("t1", "c1", s, e, "2", "GB", ""),
			[]string{`m.csv:3: id "t1": given on line 2 with different content`}},
		{"overlapping totals of one meter and resource", "m.csv", meterHeader + row("t1", "c1", s, e, "1", "GB", "") + row("t2", "c1", "2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z", "2", "GB", "") + row("t3", "c2", "2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z", "2", "GB", ""),
			[]string{`m.csv:3: start "2026-10-31T00:00:00Z": overlaps the total [2026-10-01T00:00:00Z, 2026-11-01T00:00:00Z) on line 2 of meter "network.outgoing.bytes" of resource "port-1" of customer "c1"`}},
		{"missing columns", "m.csv", "id,customer_id,meter,start,end\nt1,c1,x,2026-10-01,2026-11-01\n",
			[]string{`m.csv:1: quantity: required column missing from the header`, `m.csv:1: unit: required column missing from the header`}},
		{"json", "m.jsonl", `{"id":"t1","customer_id":"c1","meter":"m","start":"2026-10-01T00:00:00Z","end":"2026-11-01T00:00:00Z","quantity":1.5e3,"unit":"GB"}` + "\n" +
			`{"id":"t2","customer":"c1"}` + "\n" + `not json` + "\n" +
			`{"id":"t3","customer_id":"c1","meter":"m","start":"2026-11-01T00:00:00Z","end":"2026-12-01T00:00:00Z","quantity":true,"unit":"GB","attributes":[1]}` + "\n",
			[]string{`m.jsonl:1: quantity "1.5e3": want a non-negative decimal`, `m.jsonl:2: customer: unknown key`, `m.jsonl:3: invalid JSON`,
				`m.jsonl:4: quantity: want a string, got true`, `m.jsonl:4: attributes: want an object`}},
		{"extension", "m.txt", "", []string{`m.txt: cannot tell the format from the extension ".txt"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Meters(tc.file, strings.NewReader(tc.content))
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			var ie *Error
			if !errors.As(err, &ie) {
				t.Errorf("error %v is not an *importer.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

// TestImportMetersTwiceDoublesNothing imports through ImportFile into the embedded store: the same
// file twice stores each total once; the store's refusals (an unknown customer, an id stored with
// other content) name the line.
func TestImportMetersTwiceDoublesNothing(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutCustomers(ctx, []billing.Customer{{ID: "c1", Name: "One", Currency: "EUR", Status: billing.Active}}); err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, "meters.csv", meterHeader+
		"t1,c1,network.outgoing.bytes,port-1,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1300.50,GB,sum,\n"+
		"t2,c1,network.outgoing.bytes,port-2,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,7,GB,sum,\n")
	for range 2 {
		if n, err := ImportFile(ctx, st, "meters", good, Options{}); err != nil || n != 2 {
			t.Fatalf("import: n=%d err=%v", n, err)
		}
	}
	oct := interval.Range{Start: ts("2026-10-01T00:00:00Z"), End: ts("2026-11-01T00:00:00Z")}
	ms, err := st.MeterTotals(ctx, []string{"c1"}, oct)
	if err != nil || len(ms) != 2 || ms[0].Quantity.String() != "1300.50" {
		t.Fatalf("stored after two imports: %+v, %v", ms, err)
	}

	for _, tc := range []struct{ content, want string }{
		{meterHeader + "t3,c1,network.outgoing.bytes,port-3,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1,GB,sum,\n" +
			"t4,nobody,network.outgoing.bytes,port-1,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1,GB,sum,\n",
			`:3: customer_id "nobody": customer is unknown`},
		{meterHeader + "t3,c1,network.outgoing.bytes,port-3,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1,GB,sum,\n" +
			"t1,c1,network.outgoing.bytes,port-1,,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1300.51,GB,sum,\n",
			`:3: id "t1": already stored with different content`},
	} {
		bad := writeFile(t, "bad.csv", tc.content)
		_, err := ImportFile(ctx, st, "meters", bad, Options{})
		var ie *Error
		if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want an *importer.Error with %q", err, tc.want)
		}
	}
	if ms, _ := st.MeterTotals(ctx, []string{"c1"}, oct); len(ms) != 2 {
		t.Errorf("a refused file stored something: %+v", ms)
	}
}
