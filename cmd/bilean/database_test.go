package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/store/postgres"
)

// cliDB runs bilean with args against the store URL db and returns stdout, stderr and the error.
func cliDB(t *testing.T, db string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--database", db, "--log-level", "error"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// A run against a store without a single customer is almost always the wrong store: it says so
// on stderr and exits 1, unless --allow-empty.
func TestRunOnAStoreWithoutCustomersFails(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	db := "sqlite:" + dir + "/empty.db"
	out, errOut, err := cliDB(t, db, "--config", cfg, "run", "--period", "2026-10")
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Fatalf("err = %v, want exit status 1\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "has no customers") || !strings.Contains(errOut, "--allow-empty") || !strings.Contains(errOut, db) {
		t.Errorf("stderr does not explain the empty store:\n%s", errOut)
	}
	if !strings.Contains(out, "Customers         0") {
		t.Errorf("summary:\n%s", out)
	}
	out, errOut, err = cliDB(t, db, "--config", cfg, "run", "--period", "2026-10", "--allow-empty")
	if err != nil {
		t.Fatalf("--allow-empty: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "Invoices issued   0") {
		t.Errorf("--allow-empty summary:\n%s", out)
	}
}

// A keyword string is PostgreSQL, never a file named after it; a URL of another database is an
// error naming the accepted forms; no message shows a password.
func TestDatabaseURLForms(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	t.Chdir(dir)
	tests := []struct {
		name, db, want string
	}{
		{"keyword string", "host=127.0.0.1 port=1 dbname=x user=u password=s3cret connect_timeout=2", "postgres: connect to 127.0.0.1:1 database x"},
		{"postgres URL", "postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=2", "postgres: connect to 127.0.0.1:1 database x"},
		{"mysql URL", "mysql://root:s3cret@h/x", `database.url: mysql://root:xxxxx@h/x: unsupported store "mysql": want sqlite:PATH, postgres://…, postgresql://… or a PostgreSQL keyword string`},
		{"bare path", "bilean.db", "a bare path is not a store URL: write sqlite:bilean.db"},
		{"broken keyword string", "host=h password='s3cret", "does not parse (not shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := cliDB(t, tt.db, "--config", cfg, "run", "--period", "2026-10")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if all := err.Error() + out + errOut; strings.Contains(all, "s3cret") {
				t.Errorf("the password shows: %s", all)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "bilean.yaml" && e.Name() != "invoices" {
					t.Errorf("%s created %q in the working folder", tt.name, e.Name())
				}
			}
		})
	}
}

// The store's defaults are the configuration's.
func TestPostgresDefaultsAreTheConfigDefaults(t *testing.T) {
	var d config.Database
	lock, idle, stmt, ka := d.Timeouts()
	o := postgres.DefaultOptions()
	if o.LockTimeout != lock || o.IdleInTransactionSessionTimeout != idle || o.StatementTimeout != stmt || o.TCPKeepAlive != ka {
		t.Errorf("postgres.DefaultOptions() = %+v, config defaults %v %v %v %v", o, lock, idle, stmt, ka)
	}
}
