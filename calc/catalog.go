package calc

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/rating"
)

// PolicySource is what Catalog reads: every policy, and every version of each when the store
// keeps versions.
type PolicySource interface {
	Policies(ctx context.Context) (map[string]billing.Policy, error)
}

// versionLister is a store that keeps every version of every policy.
type versionLister interface {
	PolicyVersions(ctx context.Context) ([]billing.Policy, error)
}

// Catalog loads and compiles every version of every policy, by name: the latest version of each,
// which reaches its other versions through At. Every path that prices (runs, `bilean usage`)
// compiles its policies here.
func Catalog(ctx context.Context, src PolicySource) (map[string]*rating.Policy, error) {
	var ps []billing.Policy
	if vs, ok := src.(versionLister); ok {
		var err error
		if ps, err = vs.PolicyVersions(ctx); err != nil {
			return nil, fmt.Errorf("load policy versions: %w", err)
		}
	} else {
		byName, err := src.Policies(ctx)
		if err != nil {
			return nil, fmt.Errorf("load policies: %w", err)
		}
		for _, p := range byName {
			ps = append(ps, p)
		}
	}
	cat, err := rating.CompileCatalog(ps)
	if err != nil {
		return nil, fmt.Errorf("compile policies: %w", err)
	}
	return cat.Policies(), nil
}
