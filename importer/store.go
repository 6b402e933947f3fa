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
			return StreamUsage(path, f, opt.Chunk, func(rs []billing.Record) error {
				n += len(rs)
				return add(rs)
			})
		})
		if err != nil {
			return 0, err
		}
		return n, nil
	case "meters":
		return importMeters(ctx, st, path, f)
	}
	return 0, fmt.Errorf("import %q: unknown kind, want %s", kind, strings.Join(Kinds, ", "))
}
