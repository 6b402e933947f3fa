package calc

import (
	"context"
	"fmt"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/rating"
)

// PolicySource is what Catalog reads: every version of every policy (store.PolicyVersions).
type PolicySource interface {
	PolicyVersions(ctx context.Context) ([]billing.Policy, error)
}

// Catalog loads and compiles every version of every policy, by name: the latest version of each,
// which reaches its other versions through At. Every path that prices (runs, `bilean usage`)
// compiles its policies here.
func Catalog(ctx context.Context, src PolicySource) (map[string]*rating.Policy, error) {
	ps, err := src.PolicyVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load policy versions: %w", err)
	}
	cat, err := rating.CompileCatalog(ps)
	if err != nil {
		return nil, fmt.Errorf("compile policies: %w", err)
	}
	return cat.Policies(), nil
}
