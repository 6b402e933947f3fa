package importer

import (
	"fmt"
	"io"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/invoice"
)

var paymentSpec = spec{
	top:      "payments",
	fields:   []string{"customer_id", "amount", "currency", "received_at", "reference"},
	required: []string{"customer_id", "amount", "currency", "received_at"},
	aliases:  map[string]string{"customer": "customer_id"},
}

// Payments parses a payment file: CSV with columns customer_id, amount, currency, received_at
// and an optional reference, or YAML (`payments: [{customer_id, amount, currency, received_at,
// reference}, …]`; customer is accepted for customer_id). The amount must be a positive decimal,
// the currency three letters (upper-cased). A non-empty reference must be unique per customer
// within the file, so a bank statement imported twice into one file is caught.
func Payments(path string, r io.Reader) ([]billing.Payment, error) {
	ps, _, err := payments(path, r)
	return ps, err
}

// payments is Payments that also returns the entry of each payment, to check it against the
// store's customers and map a store's refusal back to the file.
func payments(path string, r io.Reader) ([]billing.Payment, []*entry, error) {
	f := formatOf(path)
	if f != formatCSV && f != formatYAML {
		return nil, nil, unsupported(path, ".csv, .yaml or .yml")
	}
	el := &errList{file: path}
	entries, err := readEntries(el, f, r, &paymentSpec)
	if err != nil {
		return nil, nil, err
	}
	out := make([]billing.Payment, 0, len(entries))
	ents := make([]*entry, 0, len(entries))
	type key struct{ customer, ref string }
	seen := map[key]int{}
	for i := range entries {
		e := &entries[i]
		p, ok := payment(el, e)
		if !ok {
			continue
		}
		if p.Reference != "" {
			k := key{p.CustomerID, p.Reference}
			if first, dup := seen[k]; dup {
				e.failf(el, "reference", " %q: duplicate for customer %q, first on line %d", p.Reference, p.CustomerID, first)
				continue
			}
			seen[k] = e.lineOf("reference")
		}
		out = append(out, p)
		ents = append(ents, e)
	}
	if err := el.err(); err != nil {
		return nil, nil, err
	}
	return out, ents, nil
}

func payment(el *errList, e *entry) (billing.Payment, bool) {
	n := el.count()
	p := billing.Payment{CustomerID: e.get("customer_id"), Reference: e.get("reference")}
	if msg := idMsg(p.CustomerID); msg != "" {
		e.fail(el, "customer_id", msg)
	}
	if s := e.get("amount"); s == "" {
		e.fail(el, "amount", ": required, want a positive amount such as 12.50")
	} else if d, err := invoice.ParseAmount(s); err != nil {
		e.fail(el, "amount", fmt.Sprintf(" %q: want a decimal number such as 12.50", s))
	} else if !d.IsPos() {
		e.failf(el, "amount", " %q: want a positive amount such as 12.50", s)
	} else {
		p.Amount = d
	}
	cur, msg := currency(e.get("currency"))
	if msg != "" {
		e.fail(el, "currency", msg)
	}
	p.Currency = cur
	if s := e.get("received_at"); s == "" {
		e.fail(el, "received_at", ": required")
	} else if t, msg := parseTime(s, observed); msg != "" {
		e.fail(el, "received_at", msg)
	} else {
		p.ReceivedAt = t
	}
	return p, el.count() == n
}
