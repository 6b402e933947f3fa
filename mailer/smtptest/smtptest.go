// Package smtptest runs a real SMTP server (emersion/go-smtp) on 127.0.0.1 for tests of Bilean's
// emails, keeps what it accepts, can refuse commands or be down, and parses the received messages
// back into headers and MIME parts.
package smtptest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message as the server accepted it: the envelope and the raw data.
type Message struct {
	From string
	Rcpt []string
	Data []byte
}

// Server is an in-process go-smtp server bound to 127.0.0.1 that keeps what it accepts. It is
// closed when the test ends.
type Server struct {
	// Addr is host:port; Host is 127.0.0.1; Port is the port, as mail.port wants it.
	Addr, Host, Port string

	t   testing.TB
	srv *smtp.Server

	mu     sync.Mutex
	msgs   []Message
	reply  func(cmd string) error
	onData func()
}

// Start starts a server on a free port of 127.0.0.1.
func Start(t testing.TB) *Server {
	t.Helper()
	s := Down(t)
	s.Up()
	return s
}

// Down returns a server that does not listen yet on its free port of 127.0.0.1: connections to
// Addr are refused until Up.
func Down(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Addr: addr, t: t}
	s.Host, s.Port, _ = net.SplitHostPort(addr)
	t.Cleanup(s.Stop)
	return s
}

// Up starts listening on Addr; what was received before is kept.
func (s *Server) Up() {
	s.t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("SMTP server: %v", err)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(l)
}

// Stop closes the server: connections to Addr are refused until Up.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Messages returns what the server accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Reply sets (nil: clears) a function that may refuse a command: it is called with
// "RCPT <addr>" or "DATA" (after the data is read), and a non-nil error (see Refusal) is the
// server's reply.
func (s *Server) Reply(f func(cmd string) error) {
	s.mu.Lock()
	s.reply = f
	s.mu.Unlock()
}

// OnData sets (nil: clears) a function called after a message is accepted, before the server
// replies 250.
func (s *Server) OnData(f func()) {
	s.mu.Lock()
	s.onData = f
	s.mu.Unlock()
}

// Refusal is an SMTP error reply with code (4xx transient, 5xx permanent) and message.
func Refusal(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

func (s *Server) check(cmd string) error {
	s.mu.Lock()
	f := s.reply
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(cmd)
}

type session struct {
	s    *Server
	from string
	rcpt []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error { ss.from = from; return nil }

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.check("RCPT " + to); err != nil {
		return err
	}
	ss.rcpt = append(ss.rcpt, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.check("DATA"); err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, Rcpt: slices.Clone(ss.rcpt), Data: b})
	onData := ss.s.onData
	ss.s.mu.Unlock()
	if onData != nil {
		onData()
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.rcpt = "", nil }
func (ss *session) Logout() error { return nil }

// Part is one leaf of a message's MIME tree, its body decoded (base64, quoted-printable).
type Part struct {
	ContentType string // media type, without parameters
	Filename    string // of the Content-Disposition, if any
	Body        []byte
}

// Parsed is a received message read back.
type Parsed struct {
	Header mail.Header
	Parts  []Part // leaves of the MIME tree, in order
}

// Parse reads raw as a mail message, failing the test when it is not one.
func Parse(t testing.TB, raw []byte) Parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, raw)
	}
	p := Parsed{Header: m.Header}
	var walk func(ct, cte, disp string, r io.Reader)
	walk = func(ct, cte, disp string, r io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("content type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				pt, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(pt.Header.Get("Content-Type"), pt.Header.Get("Content-Transfer-Encoding"), pt.Header.Get("Content-Disposition"), pt)
			}
		}
		body := decodeBody(t, cte, r)
		_, dp, _ := mime.ParseMediaType(disp)
		p.Parts = append(p.Parts, Part{ContentType: mt, Filename: dp["filename"], Body: body})
	}
	walk(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), "", m.Body)
	return p
}

func decodeBody(t testing.TB, cte string, r io.Reader) []byte {
	t.Helper()
	var err error
	var b []byte
	switch strings.ToLower(cte) {
	case "base64":
		b, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, r))
	case "quoted-printable":
		b, err = io.ReadAll(quotedprintable.NewReader(r))
	default:
		b, err = io.ReadAll(r)
	}
	if err != nil {
		t.Fatalf("decode %s body: %v", cte, err)
	}
	return b
}

// PartsOf returns the parts of the media type, in order.
func (p Parsed) PartsOf(contentType string) []Part {
	var out []Part
	for _, pt := range p.Parts {
		if pt.ContentType == contentType {
			out = append(out, pt)
		}
	}
	return out
}

// Subject returns the decoded Subject header.
func (p Parsed) Subject(t testing.TB) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Addresses returns the bare addresses of the header key (To, Reply-To …); nil when absent.
func (p Parsed) Addresses(t testing.TB, key string) []string {
	t.Helper()
	if p.Header.Get(key) == "" {
		return nil
	}
	as, err := p.Header.AddressList(key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Address)
	}
	return out
}
