package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"strings"
	"time"
)

// Mail configures SMTP delivery: invoices by the email handler, and prepaid-balance notices
// (warning, depletion, freeze, lift) by the balance jobs.
//
//	mail:
//	  host: smtp.example.com
//	  port: 587                 # default: 587 for starttls, 465 for tls, 25 for none
//	  tls: starttls             # none | starttls | tls
//	  username: billing         # password from BILEAN_SMTP_PASSWORD (or mail.password)
//	  from: "Example Cloud Billing <billing@example.com>"
//	  reply_to: accounts@example.com
//	  bcc: [ledger@example.com]  # accountants: in RCPT TO, never in the headers
//	  timeout: 30s
//	  max_attempts: 10
//	  reconcile_after: 10m
//	  retry: {attempts_per_run: 3, backoff: 2s, max_backoff: 1m}
type Mail struct {
	// Host is the SMTP server. Empty disables delivery (the email handler refuses to start).
	Host string `yaml:"host"`
	// Port of the SMTP server; 0 means the TLS mode's usual port (25, 587 or 465).
	Port int `yaml:"port"`
	// TLS is none (plain SMTP), starttls (STARTTLS is required) or tls (implicit TLS, "SMTPS").
	// Defaults to starttls.
	TLS string `yaml:"tls"`
	// Username for SMTP AUTH; empty means no authentication.
	Username string `yaml:"username"`
	// Password for SMTP AUTH. The environment variable BILEAN_SMTP_PASSWORD overrides it, and is
	// the better place for it. It is never logged or printed.
	Password Secret `yaml:"password"`
	// From is the sender, an address with an optional display name. Required with a host.
	From string `yaml:"from"`
	// ReplyTo, when set, is where customers' replies go.
	ReplyTo string `yaml:"reply_to"`
	// Bcc lists accountants who receive every invoice as a blind copy.
	Bcc []string `yaml:"bcc"`
	// Timeout bounds connecting and each SMTP exchange. Defaults to 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how many times a delivery is tried, over all runs, before it is marked
	// failed. Defaults to 10.
	MaxAttempts int `yaml:"max_attempts"`
	// ReconcileAfter is how long a delivery may stay "sending" before a run treats it as
	// interrupted and marks it unknown for an operator to check. Defaults to 10m; it must be longer
	// than any send can take (a few times Timeout).
	ReconcileAfter time.Duration `yaml:"reconcile_after"`
	// Retry says how transient failures are retried within one run.
	Retry MailRetry `yaml:"retry"`
}

// MailRetry is the backoff of transient SMTP failures (4xx replies, connection refused).
type MailRetry struct {
	// AttemptsPerRun is how many times one run tries a delivery. Defaults to 3.
	AttemptsPerRun int `yaml:"attempts_per_run"`
	// Backoff is the wait after the first failure; it doubles after each one. Defaults to 2s.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps the wait. Defaults to 1m.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// TLS modes of Mail.TLS.
const (
	MailTLSNone     = "none"
	MailTLSStartTLS = "starttls"
	MailTLSImplicit = "tls"
)

// Secret is a string that never shows itself in logs, JSON, YAML or %v.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the secret from encoders (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for the SMTP client only.
func (s Secret) Reveal() string { return string(s) }

// Delay returns the wait after the n-th failed attempt (n ≥ 1): Backoff·2^(n−1), at most
// MaxBackoff.
func (r MailRetry) Delay(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// Enabled reports whether a mail server is configured.
func (s *Mail) Enabled() bool { return s.Host != "" }

// SenderName returns the display name of From, or its address when it has none.
func (s *Mail) SenderName() string {
	a, err := mail.ParseAddress(s.From)
	if err != nil {
		return s.From
	}
	if a.Name != "" {
		return a.Name
	}
	return a.Address
}

func (s *Mail) defaults() {
	if p := os.Getenv("BILEAN_SMTP_PASSWORD"); p != "" {
		s.Password = Secret(p)
	}
	if s.TLS == "" {
		s.TLS = MailTLSStartTLS
	}
	if s.Port == 0 {
		switch s.TLS {
		case MailTLSNone:
			s.Port = 25
		case MailTLSImplicit:
			s.Port = 465
		default:
			s.Port = 587
		}
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 10
	}
	if s.ReconcileAfter == 0 {
		s.ReconcileAfter = 10 * time.Minute
	}
	if s.Retry.AttemptsPerRun == 0 {
		s.Retry.AttemptsPerRun = 3
	}
	if s.Retry.Backoff == 0 {
		s.Retry.Backoff = 2 * time.Second
	}
	if s.Retry.MaxBackoff == 0 {
		s.Retry.MaxBackoff = time.Minute
	}
}

func (s *Mail) validate(add func(field string, err error)) {
	switch s.TLS {
	case MailTLSNone, MailTLSStartTLS, MailTLSImplicit:
	default:
		add("mail.tls", fmt.Errorf("%q: want none, starttls or tls", s.TLS))
	}
	if s.Port < 1 || s.Port > 65535 {
		add("mail.port", fmt.Errorf("%d: want 1 to 65535", s.Port))
	}
	if strings.ContainsAny(s.Host, " /:") {
		add("mail.host", fmt.Errorf("%q: want a host name or IP address, without port or scheme (the port is mail.port)", s.Host))
	}
	if s.Username != "" && s.Password == "" {
		add("mail.password", errors.New("mail.username is set but no password: set BILEAN_SMTP_PASSWORD (or mail.password)"))
	}
	if s.Username == "" && s.Password != "" && os.Getenv("BILEAN_SMTP_PASSWORD") == "" {
		add("mail.username", errors.New("a password is set but no username"))
	}
	if s.Host != "" && s.From == "" {
		add("mail.from", errors.New("required when mail.host is set, e.g. \"Cloud Billing <billing@example.com>\""))
	}
	if s.From != "" {
		if _, err := mail.ParseAddress(s.From); err != nil {
			add("mail.from", fmt.Errorf("%q: %w", s.From, err))
		}
	}
	if s.ReplyTo != "" {
		if _, err := mail.ParseAddress(s.ReplyTo); err != nil {
			add("mail.reply_to", fmt.Errorf("%q: %w", s.ReplyTo, err))
		}
	}
	for i, b := range s.Bcc {
		if _, err := mail.ParseAddress(b); err != nil {
			add(fmt.Sprintf("mail.bcc[%d]", i), fmt.Errorf("%q: %w", b, err))
		}
	}
	if s.Timeout < time.Second {
		add("mail.timeout", fmt.Errorf("%s: want 1s or more", s.Timeout))
	}
	if s.MaxAttempts < 1 {
		add("mail.max_attempts", fmt.Errorf("%d: want 1 or more", s.MaxAttempts))
	}
	if s.ReconcileAfter < 0 {
		add("mail.reconcile_after", fmt.Errorf("%s: want 0 or more", s.ReconcileAfter))
	}
	if s.Retry.AttemptsPerRun < 1 {
		add("mail.retry.attempts_per_run", fmt.Errorf("%d: want 1 or more", s.Retry.AttemptsPerRun))
	}
	if s.Retry.Backoff < 0 {
		add("mail.retry.backoff", fmt.Errorf("%s: want 0 or more", s.Retry.Backoff))
	}
	if s.Retry.MaxBackoff < s.Retry.Backoff {
		add("mail.retry.max_backoff", fmt.Errorf("%s: want at least mail.retry.backoff (%s)", s.Retry.MaxBackoff, s.Retry.Backoff))
	}
}
