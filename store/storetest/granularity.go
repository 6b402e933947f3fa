package storetest

import (
	"testing"

	"github.com/bilean/bilean/store"
)

func init() {
	register(Case{"LineGranularityRoundTrips", testLineGranularity})
}

// testLineGranularity: how time was counted for a line (invoice.Line.Granularity) is stored with
// the line and read back with the invoice, so a re-rendered invoice states the same counting as
// the one the customer received; a line that counts no time keeps an empty granularity.
func testLineGranularity(t *testing.T, st store.Store) {
	seed(t, st)
	in := inv("c1", month(10), charge("vm-1", month(10)), charge("vm-2", month(10)), charge("vm-3", month(10)))
	want := []string{"hour", "", "second"}
	for i := range in.Lines {
		in.Lines[i].Granularity = want[i]
	}
	number := mustFinalize(t, st, in)
	got, err := st.GetInvoice(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != len(want) {
		t.Fatalf("invoice %s has %d lines, want %d", number, len(got.Lines), len(want))
	}
	for i, l := range got.Lines {
		if l.ResourceID != in.Lines[i].ResourceID || l.Granularity != want[i] {
			t.Errorf("line %d (%s): granularity %q, want %q", i+1, l.ResourceID, l.Granularity, want[i])
		}
	}
}
