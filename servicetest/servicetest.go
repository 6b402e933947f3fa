// Package servicetest holds the one rule for tests that need a service or a tool from outside Go
// (PostgreSQL, RabbitMQ, Gnocchi, poppler, sqlite3…): on a developer's machine a missing one
// skips the test with a hint; in CI (CI=true) it fails it, so a CI run never passes by skipping.
package servicetest

import (
	"fmt"
	"os"
	"os/exec"
)

// TB is what Require needs of a *testing.T or *testing.B.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// InCI reports whether the tests run in CI (CI=true), where a missing service is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require fails (in CI) or skips (elsewhere) the test when err is not nil: what is missing, how to
// get it (e.g. "run .ci/postgres.sh"), and the error.
func Require(tb TB, err error, what, hint string) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is required (%s): %v", what, hint, err)
	if InCI() {
		tb.Fatalf("CI: %s", msg)
		return
	}
	tb.Skipf("%s", msg)
}

// Tool requires a command on PATH and returns its path.
func Tool(tb TB, name, hint string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	Require(tb, err, name, hint)
	return p
}
