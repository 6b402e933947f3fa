package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func mailConfig(t *testing.T, section string) (*Config, error) {
	t.Helper()
	return Parse("mail.yaml", []byte("pipeline:\n  scheduled: [finalizing]\n  interim: [rule]\nmail:\n"+section))
}

func TestMailDefaultsAndValidation(t *testing.T) {
	t.Setenv("BILEAN_SMTP_PASSWORD", "")
	c, err := mailConfig(t, "  host: smtp.example.com\n  from: Billing <b@example.com>\n")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Mail
	if m.TLS != "starttls" || m.Port != 587 || m.Timeout != 30*time.Second || m.MaxAttempts != 10 || m.Retry.AttemptsPerRun != 3 {
		t.Errorf("defaults: %+v", m)
	}
	if m.SenderName() != "Billing" {
		t.Errorf("sender name %q", m.SenderName())
	}
	for _, tc := range []struct{ section, want string }{
		{"  host: smtp.example.com\n  tls: ssl\n  from: b@example.com\n", `mail.tls: "ssl": want none, starttls or tls`},
		{"  host: smtp.example.com:25\n  from: b@example.com\n", "mail.host"},
		{"  host: smtp.example.com\n", "mail.from: required"},
		{"  host: smtp.example.com\n  from: b@example.com\n  username: u\n", "BILEAN_SMTP_PASSWORD"},
		{"  host: smtp.example.com\n  from: b@example.com\n  bcc: [ok@example.com, not an address]\n", "mail.bcc[1]"},
		{"  host: smtp.example.com\n  from: b@example.com\n  retry: {backoff: 2m, max_backoff: 1m}\n", "mail.retry.max_backoff"},
		{"  hots: smtp.example.com\n", "field hots not found"},
	} {
		if _, err := mailConfig(t, tc.section); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.section, err, tc.want)
		}
	}
}

func TestMailPasswordFromEnvironmentIsNeverShown(t *testing.T) {
	t.Setenv("BILEAN_SMTP_PASSWORD", "hunter2-s3cret")
	c, err := mailConfig(t, "  host: smtp.example.com\n  port: 465\n  tls: tls\n  username: billing\n  from: b@example.com\n  password: from-file\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Mail.Password.Reveal() != "hunter2-s3cret" {
		t.Errorf("the environment does not override the file's password")
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "mail", c.Mail, "password", c.Mail.Password)
	j, _ := json.Marshal(c.Mail)
	for what, s := range map[string]string{"slog": logged.String(), "json": string(j), "%v": fmt.Sprintf("%v %+v %#v", c.Mail, c.Mail, c.Mail)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s shows the password: %s", what, s)
		}
	}
}

func TestMailRetryDelayDoublesUpToTheCap(t *testing.T) {
	r := MailRetry{Backoff: 2 * time.Second, MaxBackoff: 10 * time.Second}
	var got []time.Duration
	for n := 1; n <= 5; n++ {
		got = append(got, r.Delay(n))
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}
