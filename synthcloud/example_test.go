package synthcloud_test

import (
	"fmt"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/synthcloud"
)

func ExampleGenerate() {
	o := synthcloud.Options{Projects: 20} // October 2026, seed 1, ~12 records per project
	c := synthcloud.Generate(o)
	fmt.Println(c.Customers[2].ID, c.Customers[2].Name, c.Customers[2].Currency, c.Customers[2].Policy)
	fmt.Println(c.Payments[0].CustomerID, c.Payments[0].Amount, c.Payments[0].ReceivedAt.Format("2006-01-02T15:04:05Z07:00"))

	n := 0
	err := c.Records(o, func(chunk []billing.Record) error {
		n += len(chunk) // chunk is reused after return: copy what you keep
		return nil
	}, 100)
	fmt.Println(n > 0, err)
	// Output:
	// p0003 Project 0003 — Copperleaf Logistics AG EUR standard
	// p0003 100.00 2026-10-20T09:30:00Z
	// true <nil>
}
