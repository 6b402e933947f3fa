package main

import (
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// rcptLog is a go-smtp backend on 127.0.0.1 that records the envelope recipients of each
// accepted message.
type rcptLog struct {
	mu   sync.Mutex
	rcpt [][]string
}

type rcptSession struct {
	l  *rcptLog
	to []string
}

func (s *rcptSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *rcptSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *rcptSession) Data(r io.Reader) error {
	if _, err := io.ReadAll(r); err != nil {
		return err
	}
	s.l.mu.Lock()
	s.l.rcpt = append(s.l.rcpt, slices.Clone(s.to))
	s.l.mu.Unlock()
	return nil
}
func (s *rcptSession) Reset()        { s.to = nil }
func (s *rcptSession) Logout() error { return nil }

func TestOutboxListAndRetry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close() // the mail server is down for the run

	dir := t.TempDir()
	cfg := testConfig(t, dir, func(s string) string {
		s = strings.Replace(s, "\n  interim:", "\n    - email\n  interim:", 1)
		return s + `
mail:
  host: 127.0.0.1
  port: ` + port + `
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
	log := &rcptLog{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &rcptSession{l: log}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "mx.test", true
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	out = mustRun("outbox", "retry", "1")
	if !strings.Contains(out, " sent ") {
		t.Errorf("retry output:\n%s", out)
	}
	if err := json.Unmarshal([]byte(mustRun("outbox", "list", "--state", "sent", "-o", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(entries) != 2 || len(log.rcpt) != 2 {
		t.Fatalf("%d entries sent, server received %d messages; want 2 and 2", len(entries), len(log.rcpt))
	}
	// Globex has two contacts in customers.csv; the accountant is in the envelope of each.
	want := []string{"accounts@globex.example", "cfo@globex.example", "ledger@cloud.example"}
	if !slices.ContainsFunc(log.rcpt, func(r []string) bool { return slices.Equal(r, want) }) {
		t.Errorf("envelopes %v, want one to %v", log.rcpt, want)
	}
}
