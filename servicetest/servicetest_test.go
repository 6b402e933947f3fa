package servicetest

import (
	"errors"
	"fmt"
	"testing"
)

type recorder struct{ fatal, skip string }

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestRequireFailsInCIAndSkipsElsewhere(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		ci         string
		fail, skip bool
	}{{"true", true, false}, {"", false, true}, {"false", false, true}} {
		t.Setenv("CI", tc.ci)
		var r recorder
		Require(&r, down, "PostgreSQL", "run .ci/postgres.sh")
		if (r.fatal != "") != tc.fail || (r.skip != "") != tc.skip {
			t.Errorf("CI=%q: fatal %q skip %q", tc.ci, r.fatal, r.skip)
		}
		var ok recorder
		Require(&ok, nil, "PostgreSQL", "run .ci/postgres.sh")
		if ok.fatal != "" || ok.skip != "" {
			t.Errorf("CI=%q: a running service was reported: %+v", tc.ci, ok)
		}
	}
}
