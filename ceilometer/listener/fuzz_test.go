package listener_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/store"
)

// fuzzSeeds are the seeds of the notification package's fuzz targets (every sample body), the
// listener's samples, and the bodies of issue 12.
func fuzzSeeds(f *testing.F) {
	var files []string
	for _, dir := range []string{"../notification/testdata/legacy", "../notification/testdata/nova-versioned",
		"../notification/testdata/wire", "../notification/testdata/fuzz/*", "testdata"} {
		more, _ := filepath.Glob(filepath.Join(dir, "*"))
		files = append(files, more...)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a directory
		}
		if strings.Contains(p, "testdata/fuzz/") {
			continue // the go fuzz corpus format, not a body
		}
		f.Add(b)
	}
	create := sample(f, "compute.instance.create.end.json")
	for _, fields := range []map[string]any{
		{"payload.instance_id": "abc\u0000def"},
		{"payload.instance_id": strings.Repeat("x", 8192)},
		{"payload.instance_id": strings.Repeat("x", 255)},
		{"payload.instance_id": "srv\u001b"},
		{"payload.instance_type": "m1.\u0000"},
		{"payload.tenant_id": "p\u0000"},
		{"payload.launched_at": "1999-12-31T23:59:59"},
		{"payload.launched_at": "1969-12-31T23:59:59"},
		{"payload.launched_at": "9999-12-31T23:59:59"},
		{"event_type": "compute.instance.create.end\u0000"},
	} {
		f.Add(envelope(f, create, "fz-seed", "2026-10-03 08:15:42", fields))
	}
}

// FuzzNotificationToStores: any body goes through the listener's path (parse, the shipped
// definitions, the check before the store) and then to the embedded store and PostgreSQL
// alike. Both stores accept or refuse it together and hold the same events afterwards; what the
// listener's check accepts, both stores accept; what the store check (store.CheckEvent) refuses,
// both refuse. Run as a test, it replays the seeds; `go test -fuzz FuzzNotificationToStores`
// explores.
func FuzzNotificationToStores(f *testing.F) {
	fuzzSeeds(f)
	defs := shippedDefs(f)
	lite := openStore(f)
	pg := openPostgres(f)
	tpl := &billing.Customer{Currency: "EUR", Status: billing.Active}
	l := listener.New(listener.Config{NewCustomer: tpl}, defs, nil, quiet(), nil)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := notification.Parse(body)
		if err != nil {
			return
		}
		e, err := defs.Event(m)
		if err != nil {
			return
		}
		checkErr := l.Check(e)
		storeErr := store.CheckEvent(e)
		if checkErr == nil && storeErr != nil {
			t.Fatalf("the listener accepts what the store check refuses: %v", storeErr)
		}
		if checkErr != nil && notification.ReasonOf(checkErr) != notification.ReasonBadField {
			t.Fatalf("check refused with reason %s, want bad_field: %v", notification.ReasonOf(checkErr), checkErr)
		}
		b := store.EventBatch{Events: []notification.Event{e}, NewCustomer: tpl}
		r1, err1 := lite.RecordEvents(ctx, b)
		r2, err2 := pg.RecordEvents(ctx, b)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("the stores disagree on %+v:\n sqlite: %v\n postgres: %v", e, err1, err2)
		}
		if checkErr == nil && err1 != nil {
			t.Fatalf("checked event refused by both stores: %v", err1)
		}
		if storeErr != nil && !errors.Is(err1, store.ErrBadEventField) && !strings.Contains(err1.Error(), "required") {
			t.Fatalf("store check refused (%v) but the store said %v", storeErr, err1)
		}
		if err1 != nil {
			return
		}
		if r1.Recorded != r2.Recorded || r1.Duplicates != r2.Duplicates || len(r1.Refused) != len(r2.Refused) {
			t.Fatalf("results differ: sqlite %+v, postgres %+v", r1, r2)
		}
		e1, err1 := lite.ResourceEvents(ctx, e.ResourceID)
		e2, err2 := pg.ResourceEvents(ctx, e.ResourceID)
		if err1 != nil || err2 != nil {
			t.Fatalf("read back: %v, %v", err1, err2)
		}
		if !reflect.DeepEqual(e1, e2) {
			t.Fatalf("stored events differ:\n sqlite   %+v\n postgres %+v", e1, e2)
		}
	})
}
