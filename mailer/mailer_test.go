package mailer

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestMessageIDNamesItsSubjectSafely(t *testing.T) {
	for _, c := range []struct{ name, domain, want string }{
		{"INV-2026-000042", "acme.example", `^bilean\.INV-2026-000042\.[0-9a-f]{16}@acme\.example$`},
		{"p 1.low_balance_warning", "acme.example", `^bilean\.p_1\.low_balance_warning\.[0-9a-f]{16}@acme\.example$`},
		{"..Zürich<>..x", "", `^bilean\.Z_rich__\.x\.[0-9a-f]{16}@bilean\.invalid$`},
	} {
		id, err := NewMessageID(c.name, c.domain)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(c.want).MatchString(id) {
			t.Errorf("NewMessageID(%q, %q) = %q, want %s", c.name, c.domain, id, c.want)
		}
	}
	a, _ := NewMessageID("x", "d")
	b, _ := NewMessageID("x", "d")
	if a == b {
		t.Errorf("two Message-IDs are equal: %s", a)
	}
}

func TestBuildNamesTheFieldAtFault(t *testing.T) {
	ok := Message{MessageID: "a@b", From: "Billing <billing@acme.example>", To: []string{"anna@example.org"}, Subject: "s", Text: "t"}
	if _, err := Build(ok); err != nil {
		t.Fatal(err)
	}
	for field, m := range map[string]Message{
		"mail.from":            {From: "not an address", To: ok.To},
		"customer p1 contacts": {From: ok.From, To: []string{"@@"}, ToField: "customer p1 contacts"},
		"mail.bcc":             {From: ok.From, To: ok.To, Bcc: []string{"nope"}},
		"mail.reply_to":        {From: ok.From, To: ok.To, ReplyTo: "<<"},
	} {
		if _, err := Build(m); err == nil || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}

func TestClassifyAConnectionFailureAsTransient(t *testing.T) {
	err := &ConnectError{Addr: "127.0.0.1:25", Err: errors.New("connection refused")}
	if got := Classify(nil, err); got != Transient {
		t.Errorf("Classify(connect error) = %s", got)
	}
	if got := Classify(nil, nil); got != Sent {
		t.Errorf("Classify(nil) = %s", got)
	}
}
