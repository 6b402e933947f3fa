package storetest

import (
	"testing"

	"github.com/bilean/bilean/store"
)

// Case is one contract test of an optional store capability (outbox, notification events,
// balances, policy versions…). Each capability's file in this package registers its cases from
// init; Run runs them after the core cases against every backend.
type Case struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}

var extensions []Case

// register adds contract cases; call it from an init function of this package.
func register(cases ...Case) { extensions = append(extensions, cases...) }

// capability returns st as the capability interface T, or skips the test when the backend does
// not implement it yet.
func capability[T any](t *testing.T, st store.Store) T {
	t.Helper()
	c, ok := st.(T)
	if !ok {
		var zero T
		t.Skipf("backend %T does not implement %T", st, &zero)
	}
	return c
}
