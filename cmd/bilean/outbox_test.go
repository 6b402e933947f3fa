package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bilean/bilean/mailer/smtptest"
)

func TestOutboxListAndRetry(t *testing.T) {
	srv := smtptest.Down(t) // the mail server is down for the run

	dir := t.TempDir()
	cfg := testConfig(t, dir, func(s string) string {
		s = strings.Replace(s, "\n  interim:", "\n    - email\n  interim:", 1)
		return s + `
mail:
  host: 127.0.0.1
  port: ` + srv.Port + `
  tls: none
  from: "Cloud Billing <billing@cloud.example>"
  bcc: [ledger@cloud.example]
  retry: {attempts_per_run: 1, backoff: 10ms, max_backoff: 10ms}
`
	})
	run := func(args ...string) (string, error) {
		t.Helper()
		return cli(t, dir, append([]string{"--config", cfg}, args...)...)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("bilean %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustRun("import", "policies", "../../etc/policies/standard.yaml", "../../etc/policies/business.yaml")
	mustRun("import", "customers", "../../etc/examples/customers.csv")
	mustRun("import", "subscriptions", "../../etc/examples/subscriptions.csv")
	mustRun("import", "usage", "../../etc/examples/usage.csv")
	mustRun("run", "--period", "2026-10")

	var entries []struct {
		ID        int64    `json:"id"`
		Invoice   string   `json:"invoice"`
		State     string   `json:"state"`
		To        []string `json:"to"`
		Attempts  int      `json:"attempts"`
		LastError string   `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(mustRun("outbox", "list", "--state", "pending", "-o", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Attempts != 1 || !strings.Contains(entries[0].LastError, "refused") {
		t.Fatalf("pending entries after a run with the mail server down: %+v", entries)
	}
	out := mustRun("outbox", "list")
	if !strings.Contains(out, "MESSAGE-ID") || strings.Count(out, " pending ") != 2 {
		t.Errorf("outbox list:\n%s", out)
	}
	for _, bad := range [][]string{
		{"outbox", "list", "--state", "lost"},
		{"outbox", "retry", "--all", "--force"},
		{"outbox", "retry"},
		{"outbox", "retry", "x1"},
	} {
		if _, err := run(bad...); err == nil {
			t.Errorf("bilean %s succeeded", strings.Join(bad, " "))
		}
	}

	// The mail server is back: retrying one entry sends every pending one.
	srv.Up()
	out = mustRun("outbox", "retry", "1")
	if !strings.Contains(out, " sent ") {
		t.Errorf("retry output:\n%s", out)
	}
	if err := json.Unmarshal([]byte(mustRun("outbox", "list", "--state", "sent", "-o", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	var rcpt [][]string
	for _, m := range srv.Messages() {
		rcpt = append(rcpt, m.Rcpt)
	}
	if len(entries) != 2 || len(rcpt) != 2 {
		t.Fatalf("%d entries sent, server received %d messages; want 2 and 2", len(entries), len(rcpt))
	}
	// Globex has two contacts in customers.csv; the accountant is in the envelope of each.
	want := []string{"accounts@globex.example", "cfo@globex.example", "ledger@cloud.example"}
	if !slices.ContainsFunc(rcpt, func(r []string) bool { return slices.Equal(r, want) }) {
		t.Errorf("envelopes %v, want one to %v", rcpt, want)
	}
}
