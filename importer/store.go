package importer

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/store"
)

// Kinds are the kinds of file ImportFile accepts, as in `bilean import KIND FILE`.
var Kinds = []string{"customers", "policies", "subscriptions", "payments", "usage"}

// Options tune ImportFile.
type Options struct {
	// ValidateRule checks each policy rule (policies only); nil skips the check.
	ValidateRule func(billing.RuleSpec) error
	// Chunk, for usage, is the number of records per AddRecords call. 0 stores the whole file
	// in one call (one transaction, the whole file in memory). A positive Chunk first validates
	// the whole file in a dry pass and then re-reads it, storing chunk by chunk: memory stays
	// bounded, nothing is stored from an invalid file, and because storing a record is
	// idempotent a run that fails while storing can be repeated.
	Chunk int
}

// ImportFile parses the file at path as kind (one of Kinds) and stores it with st only when
// the whole file is valid. It returns the number of entries stored. This is the only place the
// package writes to a store.
func ImportFile(ctx context.Context, st store.Importer, kind, path string, opt Options) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	switch kind {
	case "customers":
		cs, err := Customers(path, f)
		if err != nil {
			return 0, err
		}
		return len(cs), st.PutCustomers(ctx, cs)
	case "policies":
		ps, err := Policies(path, f, opt.ValidateRule)
		if err != nil {
			return 0, err
		}
		return len(ps), st.PutPolicies(ctx, ps)
	case "subscriptions":
		ss, err := Subscriptions(path, f)
		if err != nil {
			return 0, err
		}
		_, err = st.AddSubscriptions(ctx, ss)
		return len(ss), err
	case "payments":
		ps, err := Payments(path, f)
		if err != nil {
			return 0, err
		}
		return len(ps), st.AddPayments(ctx, ps)
	case "usage":
		if opt.Chunk <= 0 {
			rs, err := Usage(path, f)
			if err != nil {
				return 0, err
			}
			return len(rs), st.AddRecords(ctx, rs)
		}
		if err := StreamUsage(path, f, opt.Chunk, nil); err != nil {
			return 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		n := 0
		err := StreamUsage(path, f, opt.Chunk, func(rs []billing.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := st.AddRecords(ctx, rs); err != nil {
				return fmt.Errorf("after storing %d records: %w", n, err)
			}
			n += len(rs)
			return nil
		})
		return n, err
	}
	return 0, fmt.Errorf("import %q: unknown kind, want %s", kind, strings.Join(Kinds, ", "))
}
