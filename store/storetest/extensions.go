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

// capability returns st as the part T of store.Store a case exercises. Every backend implements
// every part (store.Store embeds them all), so a case never skips for want of one; T not being a
// part of store.Store is a mistake in the suite and fails the test.
func capability[T any](t *testing.T, st store.Store) T {
	t.Helper()
	c, ok := any(st).(T)
	if !ok {
		var zero T
		t.Fatalf("backend %T does not implement %T, a part of store.Store", st, &zero)
	}
	return c
}
