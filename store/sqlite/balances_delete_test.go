package sqlite

import (
	"testing"

	"github.com/bilean/bilean/billing"
)

// Deleting a usage record in plain SQL bumps its customer's change counter, except while
// balance_burn_pause holds its row (the listener's batch writer then bumps once per batch).
func TestBalanceTriggerOnRecordDelete(t *testing.T) {
	st := openTemp(t)
	defer st.Close()
	if err := st.PutCustomers(bg, []billing.Customer{{ID: "c1", Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRecords(bg, []billing.Record{
		{CustomerID: "c1", ResourceID: "vm-1", ResourceType: "os.nova.server", Start: day(10, 1), End: day(10, 2)},
		{CustomerID: "c1", ResourceID: "vm-2", ResourceType: "os.nova.server", Start: day(10, 1), End: day(10, 2)},
	}); err != nil {
		t.Fatal(err)
	}
	changes := func() int64 {
		t.Helper()
		var n int64
		if err := st.DB().QueryRowContext(bg, `SELECT changes FROM balance_burn WHERE customer_id = 'c1'`).Scan(&n); err != nil {
			t.Fatalf("read balance_burn: %v", err)
		}
		return n
	}
	del := func(resource string) {
		t.Helper()
		res, err := st.DB().ExecContext(bg, `
DELETE FROM usage_records WHERE resource_key = (SELECT key FROM resources WHERE resource_id = ?)`, resource)
		if err != nil {
			t.Fatalf("delete %s: %v", resource, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("delete %s: %d rows, want 1", resource, n)
		}
	}
	before := changes()
	del("vm-1")
	if got := changes(); got != before+1 {
		t.Fatalf("changes after deleting a record = %d, want %d", got, before+1)
	}
	// Paused: the trigger stands aside.
	if _, err := st.DB().ExecContext(bg, `INSERT INTO balance_burn_pause (one) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	del("vm-2")
	if got := changes(); got != before+1 {
		t.Errorf("changes after a paused delete = %d, want %d (unchanged)", got, before+1)
	}
	if _, err := st.DB().ExecContext(bg, `DELETE FROM balance_burn_pause`); err != nil {
		t.Fatal(err)
	}
}
