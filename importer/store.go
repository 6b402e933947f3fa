package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
)

// Kinds are the kinds of file ImportFile accepts, as in `bilean import KIND FILE`.
var Kinds = []string{"customers", "policies", "subscriptions", "payments", "usage", "meters"}

// Options tune ImportFile.
type Options struct {
	// ValidateRule checks each policy rule (policies only); nil skips the check.
	ValidateRule RuleValidator
	// Chunk, for usage, is the number of records held in memory at once. 0 reads the whole file
	// and stores it with one AddRecords call. A positive Chunk first validates the whole file in
	// a dry pass, then re-reads it and stores it chunk by chunk through AddRecordStream, in one
	// transaction: memory stays bounded and the import is still all or nothing.
	Chunk int
}

// ImportFile parses the file at path as kind (one of Kinds) and stores it with st only when
// the whole file is valid. It returns the number of entries stored. This is the only place the
// package writes to a store.
//
// When st can read customers (store.Customers), payments are first checked against them: each
// names a known customer and is in that customer's currency, and subscriptions name known
// customers; every problem is reported with its line. A refusal by the store itself (an unknown
// customer, a payment reference stored with another amount…) is reported at the line and field
// of the entry refused, as `file:line: field: reason`.
func ImportFile(ctx context.Context, st store.Importer, kind, path string, opt Options) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	switch kind {
	case "customers":
		cs, ents, err := customers(path, f)
		if err != nil {
			return 0, err
		}
		el := &errList{file: path}
		if err := checkDefaultPolicies(ctx, st, el, cs, ents); err != nil {
			return 0, err
		}
		if err := el.err(); err != nil {
			return 0, err
		}
		err = st.PutCustomers(ctx, cs)
		return len(cs), refused(path, err, func(i int) *entry { return at(ents, i) })
	case "policies":
		ps, err := Policies(path, f, opt.ValidateRule)
		if err != nil {
			return 0, err
		}
		return len(ps), st.PutPolicies(ctx, ps)
	case "subscriptions":
		ss, ents, err := subscriptions(path, f)
		if err != nil {
			return 0, err
		}
		el := &errList{file: path}
		known, err := checkCustomers(ctx, st, el, len(ss), func(i int) (string, string, *entry) {
			return ss[i].CustomerID, "", ents[i]
		})
		if err != nil {
			return 0, err
		}
		if err := checkPolicies(ctx, st, el, ss, ents, known); err != nil {
			return 0, err
		}
		if err := el.err(); err != nil {
			return 0, err
		}
		_, err = st.AddSubscriptions(ctx, ss)
		return len(ss), refused(path, err, func(i int) *entry { return atp(ents, i) })
	case "payments":
		ps, ents, err := payments(path, f)
		if err != nil {
			return 0, err
		}
		el := &errList{file: path}
		if _, err := checkCustomers(ctx, st, el, len(ps), func(i int) (string, string, *entry) {
			return ps[i].CustomerID, ps[i].Currency, ents[i]
		}); err != nil {
			return 0, err
		}
		if err := el.err(); err != nil {
			return 0, err
		}
		err = st.AddPayments(ctx, ps)
		return len(ps), refused(path, err, func(i int) *entry { return atp(ents, i) })
	case "usage":
		var lines *lineIndex
		recordAt := func(i int) *entry {
			if l := lines.lineOf(i); l > 0 {
				return &entry{line: l}
			}
			return nil
		}
		if opt.Chunk <= 0 {
			var rs []billing.Record
			lines, err = streamUsage(path, f, DefaultChunk, func(c []billing.Record) error {
				rs = append(rs, c...)
				return nil
			})
			if err != nil {
				return 0, err
			}
			return len(rs), refused(path, st.AddRecords(ctx, rs), recordAt)
		}
		// A dry pass validates the whole file first, so a bad line is reported before anything is
		// written; the second pass stores it chunk by chunk in one transaction.
		if err := StreamUsage(path, f, opt.Chunk, nil); err != nil {
			return 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		n := 0
		err := st.AddRecordStream(ctx, func(add func([]billing.Record) error) error {
			var err error
			lines, err = streamUsage(path, f, opt.Chunk, func(rs []billing.Record) error {
				n += len(rs)
				return add(rs)
			})
			return err
		})
		if err != nil {
			return 0, refused(path, err, recordAt)
		}
		return n, nil
	case "meters":
		return importMeters(ctx, st, path, f)
	}
	return 0, fmt.Errorf("import %q: unknown kind, want %s", kind, strings.Join(Kinds, ", "))
}

func at(es []entry, i int) *entry {
	if i < 0 || i >= len(es) {
		return nil
	}
	return &es[i]
}

func atp(es []*entry, i int) *entry {
	if i < 0 || i >= len(es) {
		return nil
	}
	return es[i]
}

// refusal is how a store's import entry point refuses one entry of its input (store/sqlite and
// store/postgres implement it): the entry's index in the slice or stream it was given, the
// input field at fault ("" when no one field is) and the reason, without the index.
type refusal interface {
	error
	ImportRefusal() (index int, field, reason string)
}

// refused maps a store's refusal of the i-th entry back to the file: its line, the field as the
// file names it, and the store's reason. Other errors are returned as they are.
func refused(path string, err error, entryOf func(i int) *entry) error {
	var r refusal
	if err == nil || !errors.As(err, &r) {
		return err
	}
	i, field, reason := r.ImportRefusal()
	e := entryOf(i)
	if e == nil {
		return err
	}
	if field == "" {
		return &Error{File: path, Line: e.line, Msg: reason}
	}
	name := e.field(field)
	return &Error{File: path, Line: e.lineOf(field), Field: name, Msg: name + ": " + reason}
}

// checkCustomers checks, when st can read customers, that the n entries name known customers
// and, for a non-empty currency, are in their customer's currency. Problems go to el; it returns
// the customers found (nil when st cannot read them), and an error for a store that cannot be
// read.
func checkCustomers(ctx context.Context, st store.Importer, el *errList, n int, get func(i int) (customer, currency string, e *entry)) (map[string]billing.Customer, error) {
	cr, ok := st.(store.Customers)
	if !ok || n == 0 {
		return nil, nil
	}
	var ids []string
	seen := map[string]bool{}
	for i := range n {
		if id, _, _ := get(i); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	cs, err := cr.GetCustomers(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", el.file, err)
	}
	byID := make(map[string]billing.Customer, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	for i := range n {
		id, cur, e := get(i)
		c, ok := byID[id]
		switch {
		case !ok:
			e.failf(el, "customer_id", " %q: unknown customer (import the customers first)", id)
		case cur != "" && cur != c.Currency:
			e.failf(el, "currency", " %q: customer %q is billed in %s; a payment must be in its customer's currency", cur, id, c.Currency)
		}
	}
	return byID, nil
}

// policyReader is the part of store.Feed that reads policies.
type policyReader interface {
	Policies(ctx context.Context) (map[string]billing.Policy, error)
}

// checkPolicies checks, when st can read policies, that each subscription names a stored policy
// priced in its (known) customer's currency, as the run requires.
func checkPolicies(ctx context.Context, st store.Importer, el *errList, ss []billing.Subscription, ents []*entry, customers map[string]billing.Customer) error {
	pr, ok := st.(policyReader)
	if !ok || customers == nil || len(ss) == 0 {
		return nil
	}
	ps, err := pr.Policies(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", el.file, err)
	}
	for i, s := range ss {
		c, known := customers[s.CustomerID]
		p, ok := ps[s.Policy]
		switch {
		case !known:
		case !ok:
			ents[i].failf(el, "policy", " %q: unknown policy (import the policies first)", s.Policy)
		case p.Currency != c.Currency:
			ents[i].failf(el, "policy", " %q: priced in %s, customer %q is billed in %s", s.Policy, p.Currency, c.ID, c.Currency)
		}
	}
	return nil
}

// checkDefaultPolicies checks, when st can read policies, that a customer's default policy, when
// it is stored, is priced in the customer's currency. A default policy not stored yet is
// accepted: policies may be imported after the customers.
func checkDefaultPolicies(ctx context.Context, st store.Importer, el *errList, cs []billing.Customer, ents []entry) error {
	pr, ok := st.(policyReader)
	if !ok || len(cs) == 0 {
		return nil
	}
	ps, err := pr.Policies(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", el.file, err)
	}
	for i, c := range cs {
		if p, ok := ps[c.Policy]; ok && c.Policy != "" && p.Currency != c.Currency {
			ents[i].failf(el, "policy", " %q: priced in %s, customer %q is billed in %s", c.Policy, p.Currency, c.ID, c.Currency)
		}
	}
	return nil
}
