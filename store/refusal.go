package store

import (
	"fmt"

	"github.com/bilean/bilean/billing"
)

// Refusal is the store refusing one entry of the caller's input. Its text is the usual
// "records[i] (…): reason"; ImportRefusal gives an importer the index, the input field at fault
// ("" when no one field is) and the reason, so that it can name the line of its file.
type Refusal struct {
	index  int
	field  string
	what   string // e.g. "records[3] (resource vm-1)"
	reason string
}

// Refuse returns the refusal of entry index of the input, what naming it.
func Refuse(index int, field, what, reason string) *Refusal {
	return &Refusal{index: index, field: field, what: what, reason: reason}
}

func (e *Refusal) Error() string { return e.what + ": " + e.reason }

// ImportRefusal returns the refused entry's index in the caller's input, the field and the reason.
func (e *Refusal) ImportRefusal() (int, string, string) { return e.index, e.field, e.reason }

// PaymentRefusal refuses payments[i] when its customer is unknown (currency "") or bills in
// another currency than the payment's.
func PaymentRefusal(i int, p billing.Payment, currency string) error {
	switch {
	case currency == "":
		return Refuse(i, "customer_id", fmt.Sprintf("payments[%d]", i), fmt.Sprintf("customer %q is unknown", p.CustomerID))
	case currency != p.Currency:
		return Refuse(i, "currency", fmt.Sprintf("payments[%d] (customer %s)", i, p.CustomerID),
			fmt.Sprintf("payment in %s, but customer %q is billed in %s", p.Currency, p.CustomerID, currency))
	}
	return nil
}
