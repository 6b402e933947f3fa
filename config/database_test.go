package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		raw, driver, path string
		err               string // substring of the error; "" when none is expected
	}{
		{raw: "sqlite:var/bilean.db", driver: "sqlite", path: "var/bilean.db"},
		{raw: "sqlite:///tmp/x.db", driver: "sqlite", path: "/tmp/x.db"},
		{raw: "SQLite:x.db", driver: "sqlite", path: "x.db"},
		{raw: "postgres://bilean:s3cret@db:5432/bilean?sslmode=disable", driver: "postgres"},
		{raw: "postgresql://db/bilean", driver: "postgres"},
		{raw: "host=db port=5432 dbname=bilean user=bilean password=s3cret", driver: "postgres"},
		{raw: "host = db dbname='my db' password='it''s'", err: "does not parse"},
		{raw: `host=db password='a \' b' dbname=x`, driver: "postgres"},
		{raw: "dbname=x", driver: "postgres"},
		{raw: "", err: "empty"},
		{raw: "sqlite:", err: "without a file path"},
		{raw: "mysql://root:pw@h/x", err: `mysql://root:xxxxx@h/x: unsupported store "mysql"`},
		{raw: "var/bilean.db", err: "a bare path is not a store URL: write sqlite:var/bilean.db"},
		{raw: "root:pw@host/db", err: "not a store URL (not shown"},
		{raw: "host=db password='unterminated", err: "no closing quote"},
		{raw: "postgres://u:p%zz@h/x", err: "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			driver, path, err := ParseDatabaseURL(tt.raw)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				for _, secret := range []string{"pw@", "s3cret", "unterminated", "p%zz"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error %q shows %q", err, secret)
					}
				}
				if !strings.Contains(err.Error(), "parse") && !strings.Contains(err.Error(), "sqlite:") {
					t.Errorf("the error %q does not name the accepted forms", err)
				}
				return
			}
			if err != nil || driver != tt.driver || path != tt.path {
				t.Fatalf("= (%q, %q, %v), want (%q, %q)", driver, path, err, tt.driver, tt.path)
			}
		})
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"sqlite:var/bilean.db", "sqlite:var/bilean.db"},
		{"postgres://bilean:s3cret@db:5432/bilean?sslmode=disable", "postgres://bilean:xxxxx@db:5432/bilean?sslmode=disable"},
		{"postgres://bilean@db/bilean?password=s3cret&sslmode=disable", "postgres://bilean@db/bilean?password=xxxxx&sslmode=disable"},
		{"postgresql://db/bilean?sslpassword=s3cret", "postgresql://db/bilean?sslpassword=xxxxx"},
		{"postgres://bilean@db/bilean", "postgres://bilean@db/bilean"},
		{"host=db dbname=bilean password=s3cret", "host=db dbname=bilean password=xxxxx"},
		{"host=db PASSWORD = 's3 cret' dbname='my db'", "host=db PASSWORD=xxxxx dbname='my db'"},
		{`password='s3\'cret' host=db`, "password=xxxxx host=db"},
		{"host=db password='s3cret", "(a PostgreSQL keyword string that does not parse, not shown)"},
		{"mysql://root:pw@h/x", "mysql://root:xxxxx@h/x"},
		{"root:pw@host/db", "(a database URL that does not parse, not shown)"},
		{"var/bilean.db", "var/bilean.db"},
	}
	for _, tt := range tests {
		if got := RedactDatabaseURL(tt.raw); got != tt.want {
			t.Errorf("RedactDatabaseURL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

const chains = "pipeline:\n  scheduled: [finalizing]\n  interim: [rule]\n"

func TestDatabaseTimeouts(t *testing.T) {
	c, err := Parse("t.yaml", []byte(chains+"database:\n  url: sqlite:x.db\n  lock_timeout: 2s\n  statement_timeout: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	lock, idle, stmt, ka := c.Database.Timeouts()
	if lock != 2*time.Second || idle != DefaultIdleInTransactionSessionTimeout || stmt != 0 || ka != DefaultTCPKeepAlive {
		t.Errorf("timeouts = %v %v %v %v", lock, idle, stmt, ka)
	}
	_, err = Parse("t.yaml", []byte(chains+"database:\n  url: sqlite:x.db\n  lock_timeout: -1s\n"))
	if err == nil || !strings.Contains(err.Error(), "database.lock_timeout") {
		t.Errorf("a negative lock_timeout: %v", err)
	}
	t.Setenv("BILEAN_DATABASE_URL", "host=db dbname=x password=s3cret")
	c, err = Parse("t.yaml", []byte(chains))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Database.Driver(); d != "postgres" {
		t.Errorf("a keyword string is %q, want postgres", d)
	}
	if r := c.Database.Redacted(); strings.Contains(r, "s3cret") {
		t.Errorf("Redacted() = %q", r)
	}
	t.Setenv("BILEAN_DATABASE_URL", "mysql://root:pw@h/x")
	if _, err = Parse("t.yaml", []byte(chains)); err == nil || strings.Contains(err.Error(), ":pw@") {
		t.Errorf("mysql URL: %v", err)
	}
}
