package importer

import (
	"io"
	"net/mail"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

var customerSpec = spec{
	top:      "customers",
	fields:   []string{"id", "name", "currency", "timezone", "contacts", "tax_rate", "tax_exempt", "status", "policy", "region", "billing_start"},
	required: []string{"id", "currency"},
	lists:    map[string]bool{"contacts": true},
	maxLen:   map[string]int{"name": billing.MaxNameLen, "contacts": billing.MaxContactLen},
	maxItems: billing.MaxContacts,
}

// Customers parses a customer file: YAML (`customers: [{id, name, currency, timezone, contacts,
// tax_rate, tax_exempt, status, policy, region, billing_start}, …]`) or CSV with a header row naming any of those
// columns (id and currency required; contacts separated by semicolons). Currencies are
// upper-cased; an empty status is kept empty. Every customer is checked with
// billing.Customer.Validate, and ids must be unique within the file.
func Customers(path string, r io.Reader) ([]billing.Customer, error) {
	cs, _, err := customers(path, r)
	return cs, err
}

// customers is Customers that also returns the entry of each customer, to map a store's refusal
// back to the file.
func customers(path string, r io.Reader) ([]billing.Customer, []entry, error) {
	f := formatOf(path)
	if f != formatCSV && f != formatYAML {
		return nil, nil, unsupported(path, ".csv, .yaml or .yml")
	}
	el := &errList{file: path}
	entries, err := readEntries(el, f, r, &customerSpec)
	if err != nil {
		return nil, nil, err
	}
	out := make([]billing.Customer, 0, len(entries))
	seen := make(map[string]int, len(entries))
	for i := range entries {
		e := &entries[i]
		c := customer(el, e)
		if c.ID != "" {
			if first, dup := seen[c.ID]; dup {
				e.failf(el, "id", " %q: duplicate, first on line %d", c.ID, first)
			} else {
				seen[c.ID] = e.lineOf("id")
			}
		}
		out = append(out, c)
	}
	if err := el.err(); err != nil {
		return nil, nil, err
	}
	return out, entries, nil
}

func customer(el *errList, e *entry) billing.Customer {
	c := billing.Customer{
		ID:       e.get("id"),
		Name:     e.get("name"),
		Currency: e.get("currency"),
		Timezone: e.get("timezone"),
		Status:   e.get("status"),
		Policy:   e.get("policy"),
		Region:   e.get("region"),
	}
	if c.ID != "" {
		if msg := idMsg(c.ID); msg != "" {
			e.fail(el, "id", msg)
		}
	}
	if len(c.Currency) == 3 { // Validate reports other lengths
		if cur, msg := currency(c.Currency); msg != "" {
			e.fail(el, "currency", msg)
		} else {
			c.Currency = cur
		}
	}
	contacts, ok := e.lists["contacts"]
	if !ok { // YAML may give one contact, or several separated by semicolons, as one value
		contacts = strings.Split(e.get("contacts"), ";")
	}
	for _, a := range contacts {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, err := mail.ParseAddress(a); err != nil {
			e.failf(el, "contacts", " %q: want an email address such as billing@example.com", a)
			continue
		}
		c.Contacts = append(c.Contacts, a)
	}
	if s := e.get("tax_rate"); s != "" {
		d, err := decimal.Parse(s)
		if err != nil {
			e.failf(el, "tax_rate", " %q: want a fraction from 0 to 1, e.g. 0.20", s)
		} else {
			c.TaxRate = d
		}
	}
	if s := e.get("tax_exempt"); s != "" {
		b, ok := parseBool(s)
		if !ok {
			e.failf(el, "tax_exempt", " %q: want true or false", s)
		}
		c.TaxExempt = b
	}
	if s := e.get("billing_start"); s != "" {
		if t, err := interval.ParseTime(s); err != nil {
			e.fail(el, "billing_start", timeMsg(s))
		} else {
			c.BillingStart = t
		}
	}
	e.validated(el, c.Validate())
	return c
}
