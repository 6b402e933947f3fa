// Package mailer is the SMTP side of Bilean's emails, shared by the invoice email handler
// (handlers.Email) and the balance notices (balance.EmailNotifier): the go-mail client built from
// the `mail` section, one reusable SMTP connection (Session), the building of a message with its
// text and HTML alternatives (Build), unique Message-IDs, and the classification of what an SMTP
// exchange ended in (Classify) — sent, transient, permanent or uncertain.
//
// It keeps no state of its own: whether a message is sent once and only once is its caller's
// record (the invoice outbox, the balance audit), always written before talking to the server.
package mailer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/bilean/bilean/config"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// NewClient builds the go-mail client for the mail section. The password is handed to the client
// only; go-mail does not log authentication data unless told to.
func NewClient(m config.Mail) (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(m.Port), gomail.WithTimeout(m.Timeout)}
	switch m.TLS {
	case config.MailTLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case config.MailTLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if m.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.Username), gomail.WithPassword(m.Password.Reveal()))
	}
	c, err := gomail.NewClient(m.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail client for %s:%d: %w", m.Host, m.Port, err)
	}
	return c, nil
}

// Domain returns the domain of the address in from (mail.from), for Message-IDs; empty when from
// does not parse.
func Domain(from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("mail.from %q: %w", from, err)
	}
	_, d, _ := strings.Cut(a.Address, "@")
	return d, nil
}

// NewMessageID returns a unique Message-ID (without angle brackets) whose local part names what
// the message is about (an invoice number, a customer and a notice kind), so that a mail server's
// log can be searched by either. Characters outside [A-Za-z0-9._-] become '_'.
func NewMessageID(name, domain string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	local := strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r|0x20 >= 'a' && r|0x20 <= 'z')) {
			return r
		}
		return '_'
	}, name)
	local = strings.Trim(local, ".")
	for strings.Contains(local, "..") {
		local = strings.ReplaceAll(local, "..", ".")
	}
	if domain == "" {
		domain = "bilean.invalid"
	}
	return "bilean." + local + "." + hex.EncodeToString(b[:]) + "@" + domain, nil
}

// Header is one extra header of a Message.
type Header struct{ Name, Value string }

// Message is what Build turns into a go-mail message.
type Message struct {
	MessageID string // without angle brackets
	Date      time.Time
	Headers   []Header // extra headers (X-Bilean-…, Auto-Submitted), in order
	From      string   // mail.from
	To        []string
	// ToField names the recipients in errors, e.g. "customer p1 contacts". Defaults to "to".
	ToField string
	Bcc     []string // mail.bcc: in the envelope only, never in the headers
	ReplyTo string   // mail.reply_to, optional
	Subject string
	Text    string // text/plain body
	HTML    string // text/html alternative; none when empty
}

// Build makes the go-mail message. An error names the field at fault (mail.from, the recipients,
// mail.bcc, mail.reply_to); it is permanent for this message until an operator changes something.
func Build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDateWithValue(m.Date)
	for _, h := range m.Headers {
		msg.SetGenHeader(gomail.Header(h.Name), h.Value)
	}
	if err := msg.From(m.From); err != nil {
		return nil, fmt.Errorf("mail.from %q: %w", m.From, err)
	}
	field := m.ToField
	if field == "" {
		field = "to"
	}
	if err := msg.To(m.To...); err != nil {
		return nil, fmt.Errorf("%s %q: %w", field, m.To, err)
	}
	if len(m.Bcc) > 0 {
		// Bcc is in the envelope only: go-mail never writes a Bcc header.
		if err := msg.Bcc(m.Bcc...); err != nil {
			return nil, fmt.Errorf("mail.bcc %q: %w", m.Bcc, err)
		}
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("mail.reply_to %q: %w", m.ReplyTo, err)
		}
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// Session is one SMTP connection, reused for several messages and redialled after an error. The
// zero value is not usable: set Client.
type Session struct {
	Client *gomail.Client
	conn   *smtp.Client
}

// NewSession returns a session over c; it connects on the first Connect or Send.
func NewSession(c *gomail.Client) *Session { return &Session{Client: c} }

// ConnectError is returned when the SMTP server cannot be reached (refused, timed out, TLS or
// authentication failed): no message was handed over.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string { return "connect to " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the dial error.
func (e *ConnectError) Unwrap() error { return e.Err }

// Connect dials the server unless the session is connected; the error is a *ConnectError.
func (s *Session) Connect(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	c, err := s.Client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return &ConnectError{Addr: s.Client.ServerAddr(), Err: err}
	}
	s.conn = c
	return nil
}

// Send hands m to the server, connecting first if needed. After an error the connection is closed
// (it may be in any state) and the next Send dials again.
func (s *Session) Send(ctx context.Context, m *gomail.Msg) error {
	if err := s.Connect(ctx); err != nil {
		return err
	}
	if err := s.Client.SendWithSMTPClient(s.conn, m); err != nil {
		s.Close()
		return err
	}
	return nil
}

// Close quits the connection, if any.
func (s *Session) Close() {
	if s.conn != nil {
		_ = s.Client.CloseWithSMTPClient(s.conn)
		s.conn = nil
	}
}

// Result is what an SMTP exchange ended in.
type Result int

// Results of Classify.
const (
	// Sent: the server accepted the message.
	Sent Result = iota
	// Transient: a 4xx reply, a refused, broken or timed-out connection: try again later.
	Transient
	// Permanent: a 5xx reply (an unknown recipient, a refused sender): trying again will not help.
	Permanent
	// Uncertain: the connection broke after the message's final dot and before the server's
	// reply: it may have been accepted. Sending again risks a duplicate.
	Uncertain
)

// String names the result.
func (r Result) String() string {
	switch r {
	case Sent:
		return "sent"
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	default:
		return "uncertain"
	}
}

// UncertainHint is the explanation of an Uncertain result, for the operator.
const UncertainHint = "connection lost before the server's reply to the message: it may have been accepted; check the Message-ID in the mail server's log"

// Classify says what Send's error means for msg.
func Classify(msg *gomail.Msg, sendErr error) Result {
	if sendErr == nil || (msg != nil && msg.IsDelivered()) {
		// go-mail marks the message delivered once the server accepted it; an error after that
		// (the RSET that follows) changes nothing.
		return Sent
	}
	var se *gomail.SendError
	isSend := errors.As(sendErr, &se)
	switch {
	case isSend && se.ErrorCode() >= 500:
		return Permanent
	case isSend && se.ErrorCode() == 0 && se.Reason == gomail.ErrSMTPDataClose:
		return Uncertain
	}
	return Transient
}
