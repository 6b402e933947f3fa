package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bilean/bilean/servicetest"
	_ "modernc.org/sqlite"
)

// cli runs bilean with args against a fresh store in dir and returns stdout and the error.
func cli(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	full := append([]string{"--database", "sqlite:" + filepath.Join(dir, "bilean.db"), "--log-level", "error"}, args...)
	root.SetArgs(full)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// testConfig writes the shipped configuration with the render folder moved into dir, plus edit.
func testConfig(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile("../../etc/bilean.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "dir: var/invoices", "dir: "+filepath.Join(dir, "invoices"), 1)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(dir, "bilean.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func lineOf(t *testing.T, path, text string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("%q not in %s", text, path)
	return ""
}

func TestBadConfigurationIsAStartupErrorNamingTheLine(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(string) string
		marker string
		want   string
	}{
		{"unknown handler", func(s string) string {
			return strings.Replace(s, "    - rule\n", "    - rule\n    - no_such_handler\n", 1)
		}, "no_such_handler", `handler "no_such_handler" is not registered`},
		{"misconfigured handler", func(s string) string {
			return strings.Replace(s, "        formats: [csv, pdf, xlsx]\n", "        formats: [csv, pdf, xlsx]\n        colour: red\n", 1)
		}, "colour: red", "field colour not found"},
		{"unknown top-level key", func(s string) string { return s + "\nbiling:\n  timezone: UTC\n" }, "biling:", "field biling not found"},
		{"bad rounding mode", func(s string) string { return strings.Replace(s, "mode: half_up", "mode: banker", 1) }, "", `rounding.mode "banker"`},
		{"malformed yaml", func(s string) string { return s + "\npipeline: [\n" }, "", "did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir, tt.edit)
			_, err := cli(t, dir, "--config", cfg, "run", "--period", "2026-10")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if tt.marker != "" {
				if line := lineOf(t, cfg, tt.marker); !strings.Contains(err.Error(), "bilean.yaml:"+line) && !strings.Contains(err.Error(), "line "+line+":") {
					t.Fatalf("error %q does not name line %s", err, line)
				}
			}
		})
	}
}

func TestImportIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	if _, err := cli(t, dir, "--config", cfg, "import", "customers", "../../etc/examples/customers.csv"); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "usage.csv")
	os.WriteFile(bad, []byte("resource_id,resource_type,customer_id,start,end,flavor\n"+
		"vm-1,os.nova.server,3f2a9c1e5b7d4e08a1c2b3d4e5f60718,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,m1.small\n"+
		"vm-2,os.nova.server,3f2a9c1e5b7d4e08a1c2b3d4e5f60718,2026-10-32T00:00:00Z,,m1.small\n"), 0o644)
	_, err := cli(t, dir, "--config", cfg, "import", "usage", bad)
	if err == nil || !strings.Contains(err.Error(), "usage.csv:3") || !strings.Contains(err.Error(), "start") {
		t.Fatalf("error = %v, want it to name usage.csv:3 and the field start", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "bilean.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM usage_records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d records stored from a refused file (%v)", n, err)
	}
}

// TestOperatorSession walks the README's session: import, run, run again, list, show, interim,
// regenerate, void.
func TestOperatorSession(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	run := func(args ...string) string {
		t.Helper()
		out, err := cli(t, dir, append([]string{"--config", cfg}, args...)...)
		if err != nil {
			t.Fatalf("bilean %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run("import", "policies", "../../etc/policies/standard.yaml", "../../etc/policies/business.yaml")
	run("import", "customers", "../../etc/examples/customers.csv")
	run("import", "subscriptions", "../../etc/examples/subscriptions.csv")
	run("import", "payments", "../../etc/examples/payments.csv")
	run("import", "usage", "../../etc/examples/usage.csv")
	// The whole of October before it is invoiced, as its run will bill it (Globex: floating IP
	// 3.72 + late usage since Aug 1 7.32 + image 0.05 = 11.09, 20 % tax 2.22, total 13.31).
	out := run("interim", "8b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "--period", "2026-10", "-o", "json")
	if !strings.Contains(out, `"total": "13.31"`) {
		t.Fatalf("interim --period:\n%s", out)
	}
	out = run("run", "--period", "2026-10")
	if !strings.Contains(out, "Invoices issued   2") || !strings.Contains(out, "Total EUR         109.20") {
		t.Fatalf("first run:\n%s", out)
	}
	out = run("run", "--period", "2026-10")
	if !strings.Contains(out, "Invoices issued   0") || strings.Count(out, "already invoiced on INV-2026-") != 2 {
		t.Fatalf("second run:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "invoices", "*.csv"))
	if len(files) != 2 {
		t.Fatalf("rendered files %v", files)
	}
	// Acme: fee 26.08 + volume 4.37 + 5.35 + server 5.56 + 5.59 + 28.51 + the server's September
	// (Sep 20 08:00 – Oct 1, 256 h × 0.02 = 5.12, late usage on this first invoice) = 80.58;
	// 19 % tax 15.31; total 95.89.
	out = run("invoices", "show", "INV-2026-000001", "-o", "json")
	var inv struct {
		Total string `json:"total"`
		Tax   string `json:"tax"`
		Lines []struct {
			Amount string `json:"amount"`
		} `json:"lines"`
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if inv.Total != "95.89" || inv.Tax != "15.31" || len(inv.Lines) != 7 {
		t.Fatalf("invoice: %+v", inv)
	}
	out = run("interim", "8b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "--at", "2026-11-15T12:00:00Z", "-o", "csv")
	// 14 d 12 h of a floating IP = 348 h × 0.005 = 1.74.
	if !strings.Contains(out, ",348,hour,0.0050,1.74,EUR") {
		t.Fatalf("interim csv:\n%s", out)
	}
	out = run("invoices", "regenerate", "INV-2026-000001")
	if !strings.Contains(out, "voided INV-2026-000001 with credit note CN-2026-000001, issued INV-2026-000003") {
		t.Fatalf("regenerate: %s", out)
	}
	out = run("invoices", "list")
	if !strings.Contains(out, "replaced by INV-2026-000003") || !strings.Contains(out, "replaces INV-2026-000001") {
		t.Fatalf("list:\n%s", out)
	}
	if _, err := cli(t, dir, "--config", cfg, "invoices", "void", "INV-2026-000002"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("void without a reason: %v", err)
	}
	run("invoices", "void", "INV-2026-000002", "--reason", "customer disputed")
	out = run("invoices", "list", "--status", "void")
	if strings.Count(out, " void ") != 2 {
		t.Fatalf("void list:\n%s", out)
	}
}

func TestDemoWritesInvoices(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	out, err := cli(t, dir, "--config", cfg, "demo", "--projects", "5", "--dir", filepath.Join(dir, "demo"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "demo", "invoices", "*.csv"))
	if len(files) != 5 || !strings.Contains(out, "Invoices issued   5") {
		t.Fatalf("files %v\n%s", files, out)
	}
}

// The demo store opens with the sqlite3 shipped with Debian 12 (3.40): its schema holds nothing
// that stock SQLite tools refuse (the overlap triggers of migration 00001 did, until 00011).
func TestDemoStoreOpensWithTheSystemSQLite(t *testing.T) {
	sqlite3 := servicetest.Tool(t, "sqlite3", "Debian's sqlite3; .ci/sqlite3.sh installs it")
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	if out, err := cli(t, dir, "--config", cfg, "demo", "--projects", "3", "--dir", filepath.Join(dir, "demo")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(sqlite3, filepath.Join(dir, "demo", "bilean.db"),
		"PRAGMA integrity_check; SELECT count(*) FROM invoices; SELECT count(*) FROM sqlite_master WHERE type = 'trigger';").CombinedOutput()
	lines := strings.Fields(string(out))
	if err != nil || len(lines) != 3 || lines[0] != "ok" || lines[1] != "3" || lines[2] == "0" {
		t.Fatalf("sqlite3 on the demo store: %v\n%s", err, out)
	}
}
