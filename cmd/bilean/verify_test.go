package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bilean/bilean/audit"
	"github.com/bilean/bilean/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestVerifyNamesTheCorruptedLine: on both stores, `bilean verify` reports nothing on a healthy
// month (with late usage, a regenerated invoice and its credit note), names the line and field
// an UPDATE changed behind Bilean's back, and the hole a renumbered invoice leaves; it exits 1.
func TestVerifyNamesTheCorruptedLine(t *testing.T) {
	type store struct {
		name string
		url  func(t *testing.T, dir string) string
		exec func(t *testing.T, url, q string)
	}
	stores := []store{
		{"sqlite", func(t *testing.T, dir string) string { return "sqlite:" + filepath.Join(dir, "bilean.db") },
			func(t *testing.T, url, q string) {
				db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite:"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}},
		{"postgres", func(t *testing.T, _ string) string { return pgtest.URL(t) },
			func(t *testing.T, url, q string) {
				conn, err := pgx.Connect(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				if _, err := conn.Exec(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir, nil)
			url := s.url(t, dir)
			bilean := func(args ...string) (string, error) {
				t.Helper()
				var out bytes.Buffer
				root := newRoot()
				root.SetOut(&out)
				root.SetErr(&bytes.Buffer{})
				root.SetArgs(append([]string{"--config", cfg, "--database", url, "--log-level", "error"}, args...))
				err := root.ExecuteContext(context.Background())
				return out.String(), err
			}
			must := func(args ...string) string {
				t.Helper()
				out, err := bilean(args...)
				if err != nil {
					t.Fatalf("bilean %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			must("import", "policies", "../../etc/policies/standard.yaml", "../../etc/policies/business.yaml")
			must("import", "customers", "../../etc/examples/customers.csv")
			must("import", "subscriptions", "../../etc/examples/subscriptions.csv")
			must("import", "payments", "../../etc/examples/payments.csv")
			must("import", "usage", "../../etc/examples/usage.csv")
			must("run", "--period", "2026-10")
			must("invoices", "regenerate", "INV-2026-000001") // → CN-2026-000001 and INV-2026-000003
			if out := must("verify", "--period", "2026-10"); !strings.Contains(out, "verified 2 invoices of 2026-10") || !strings.Contains(out, ": 0 errors, 0 notes") {
				t.Fatalf("healthy month:\n%s", out)
			}

			// The second line of INV-2026-000002 (Globex's floating IP) said 3.72; now 99.99.
			s.exec(t, url, `UPDATE invoice_lines SET amount = 99.99
WHERE invoice_id = (SELECT id FROM invoices WHERE number = 'INV-2026-000002')
  AND n = (SELECT MIN(n) + 1 FROM invoice_lines WHERE invoice_id = (SELECT id FROM invoices WHERE number = 'INV-2026-000002'))`)
			// And the regenerated invoice renumbered past a hole: 000003 becomes 000005.
			s.exec(t, url, `UPDATE invoices SET number = 'INV-2026-000005' WHERE number = 'INV-2026-000003'`)
			out, err := bilean("verify", "--period", "2026-10", "-o", "json")
			var ec exitCode
			if err == nil || !errors.As(err, &ec) || ec != 1 {
				t.Fatalf("verify after corruption: err = %v, want exit status 1\n%s", err, out)
			}
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var line, gap, sum bool
			for _, f := range rep.Findings {
				switch {
				case f.Check == "line" && f.Invoice == "INV-2026-000002" && f.Line == 2 && f.Field == "amount" && f.Stored == "99.99" && f.Derived == "3.72":
					line = true
				case f.Check == "numbering" && strings.Contains(f.Detail, `series "INV-2026-": numbers 3 to 4 are missing`):
					gap = true
				case f.Check == "totals" && f.Invoice == "INV-2026-000002" && f.Field == "subtotal":
					sum = true
				}
			}
			if !line || !gap || !sum || rep.Errors != 3 {
				t.Fatalf("findings (line %v, gap %v, subtotal %v, %d errors):\n%s", line, gap, sum, rep.Errors, out)
			}
			for _, f := range rep.Findings {
				if f.Severity != audit.Error {
					t.Errorf("unexpected note %s", f)
				}
			}
		})
	}
}
