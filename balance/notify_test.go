package balance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/mailer/smtptest"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/sqlite"
)

// --- reading what the server received ------------------------------------------------------------

type mailMsg struct {
	raw     smtptest.Message
	header  mail.Header
	subject string
	text    string
	html    string
}

func parseMail(t *testing.T, m smtptest.Message) mailMsg {
	t.Helper()
	p := smtptest.Parse(t, m.Data)
	out := mailMsg{raw: m, header: p.Header, subject: p.Subject(t)}
	for _, pt := range p.Parts {
		b := strings.ReplaceAll(string(pt.Body), "\r\n", "\n") // SMTP lines end in CRLF
		switch pt.ContentType {
		case "text/plain":
			out.text += b
		case "text/html":
			out.html += b
		default:
			t.Errorf("unexpected part %s", pt.ContentType)
		}
	}
	return out
}

func (m mailMsg) kind() string { return m.header.Get("X-Bilean-Notice") }

func mails(t *testing.T, srv *smtptest.Server) []mailMsg {
	t.Helper()
	var out []mailMsg
	for _, m := range srv.Messages() {
		out = append(out, parseMail(t, m))
	}
	return out
}

// --- fixture ----------------------------------------------------------------------------------

const mailConfig = `
mail:
  host: 127.0.0.1
  port: %s
  tls: none
  from: "Acme Cloud Billing <billing@acme.example>"
  reply_to: accounts@acme.example
  bcc: [ledger@acme.example]
  timeout: 5s
  reconcile_after: 10m
`

const evilName = `Zürich <Ünïcode> & "Co" Ltd`

// mailFixture is newFixture with the mail section pointing at 127.0.0.1:port and the service
// emailing its notices (UseMail); the log goes to logs. dbPath lets a test reopen the store.
type mailFixture struct {
	*fixture
	dbPath string
	logs   *bytes.Buffer
}

func newMailFixture(t *testing.T, port, extra string) *mailFixture {
	t.Helper()
	yml := baseConfig + extra
	if port != "" {
		yml += fmt.Sprintf(mailConfig, port)
	}
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	mf := &mailFixture{dbPath: filepath.Join(t.TempDir(), "bilean.db"), logs: &bytes.Buffer{}}
	mf.fixture = &fixture{cfg: cfg}
	mf.open(t)
	return mf
}

// open (re)opens the store and builds the service and its notifier afresh, as a new process would.
func (mf *mailFixture) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(bg, mf.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mf.st = st
	log := slog.New(slog.NewTextHandler(mf.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if mf.svc, err = New(st, mf.cfg, log); err != nil {
		t.Fatal(err)
	}
	mf.svc.Now = func() time.Time { return mf.now }
	if err := mf.svc.UseMail(); err != nil {
		t.Fatal(err)
	}
}

// pass runs one jobs pass (RunPass) at when and returns its report.
func (mf *mailFixture) pass(t *testing.T, when string) JobReport {
	t.Helper()
	mf.now = at(when)
	rep, err := mf.svc.RunPass(bg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// oneCent is p4 paying 0.80 at 00:00 and running one server at 0.01 per hour from then: 80 h
// of balance, so with warn_before 72h it crosses the threshold at 08:00.
func oneCent(t *testing.T, mf *mailFixture) {
	mf.policy(t, "standard", "0", server(`tiny: "0.01"`))
	mf.customer(t, billing.Customer{ID: "p4", Name: evilName, Contacts: []string{"anna@zurich.example", "Bob Builder <bob@zurich.example>"}})
	mf.pay(t, "p4", "0.80", at("2026-10-01T00:00:00Z"), "a")
	mf.records(t, billing.Record{CustomerID: "p4", ResourceID: "vm-1", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "tiny"}})
}

func queuedNotices(t *testing.T, st store.Balances, cust string) []queued {
	t.Helper()
	var out []queued
	for _, ev := range audit(t, st, cust, AuditEmailQueued) {
		var q queued
		if err := json.Unmarshal([]byte(ev.Detail), &q); err != nil {
			t.Fatalf("queued detail %q: %v", ev.Detail, err)
		}
		out = append(out, q)
	}
	return out
}

// --- tests ---------------------------------------------------------------------------------------

func TestLowBalanceWarningIsEmailedOnceWithBothAlternatives(t *testing.T) {
	srv := smtptest.Start(t)
	mf := newMailFixture(t, srv.Port, "balance: {warn_before: 72h}\n")
	oneCent(t, mf)
	mf.pass(t, "2026-10-01T07:00:00Z") // 0.73 left: 73 h, above the threshold
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d emails before the threshold", n)
	}
	rep := mf.pass(t, "2026-10-01T09:00:00Z") // 0.71 left: 71 h < 72 h
	if rep.Warned != 1 || len(rep.Errors) != 0 {
		t.Fatalf("pass at 09:00: %+v", rep)
	}
	mf.pass(t, "2026-10-01T10:00:00Z")
	mf.pass(t, "2026-10-01T11:00:00Z")
	ms := mails(t, srv)
	if len(ms) != 1 {
		t.Fatalf("server received %d emails, want exactly 1", len(ms))
	}
	m := ms[0]
	if want := []string{"anna@zurich.example", "bob@zurich.example", "ledger@acme.example"}; !reflect.DeepEqual(m.raw.Rcpt, want) || m.raw.From != "billing@acme.example" {
		t.Errorf("envelope from %s to %v, want billing@acme.example to %v", m.raw.From, m.raw.Rcpt, want)
	}
	if to, err := m.header.AddressList("To"); err != nil || len(to) != 2 || to[0].Address != "anna@zurich.example" || to[1].Address != "bob@zurich.example" {
		t.Errorf("To: %v (%v)", to, err)
	}
	if bytes.Contains(m.raw.Data, []byte("ledger@acme.example")) {
		t.Error("the accountant's BCC address shows in the message")
	}
	if m.kind() != NoticeLow || m.header.Get("X-Bilean-Customer") != "p4" {
		t.Errorf("X-Bilean headers: %v", m.header)
	}
	// 0.80 − 9 h × 0.01 = 0.71, which lasts 71 h: until 2026-10-04 08:00.
	if want := "Low prepaid balance: " + evilName + " runs out in 2 days 23 hours"; m.subject != want {
		t.Errorf("Subject = %q, want %q", m.subject, want)
	}
	for _, want := range []string{"Dear " + evilName + ",", "Balance           0.71 EUR (on 2026-10-01 09:00 UTC)",
		"Usage             0.01 EUR per hour, tax included", "Time left         2 days 23 hours", "Runs out          2026-10-04 08:00 UTC"} {
		if !strings.Contains(m.text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.text)
		}
	}
	for _, want := range []string{"Dear Zürich &lt;Ünïcode&gt; &amp; &#34;Co&#34; Ltd,", "<strong>2026-10-04 08:00 UTC</strong>", "0.71 EUR"} {
		if !strings.Contains(m.html, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.html)
		}
	}
	if strings.Contains(m.html, "<Ünïcode>") {
		t.Error("the HTML alternative holds the customer name unescaped")
	}
	// The audit knows the Message-ID that left.
	qs := queuedNotices(t, mf.svc.Balances, "p4")
	sent := audit(t, mf.svc.Balances, "p4", AuditEmailSent)
	if len(qs) != 1 || len(sent) != 1 || "<"+qs[0].MessageID+">" != m.header.Get("Message-Id") || !strings.Contains(sent[0].Detail, qs[0].MessageID) {
		t.Errorf("audit: queued %+v, sent %+v; the message's Message-ID is %s", qs, sent, m.header.Get("Message-Id"))
	}
}

func TestDepletionIsEmailedOnce(t *testing.T) {
	srv := smtptest.Start(t)
	mf := newMailFixture(t, srv.Port, "balance: {escalation: stop, grace_period: 2h, dry_run: true}\n")
	os := newFakeOpenStack(t)
	mf.svc.Cloud = os.cloud(t)
	os.addServer("srv-1", "p7", "ACTIVE", "m1.small", "2026-10-01T00:00:00Z")
	mf.policy(t, "standard", "0", server(`m1.small: "1.00"`))
	mf.customer(t, billing.Customer{ID: "p7", Name: "Seven", Contacts: []string{"seven@example.org"}})
	mf.pay(t, "p7", "1.00", at("2026-10-01T00:00:00Z"), "a")
	mf.records(t, billing.Record{CustomerID: "p7", ResourceID: "srv-1", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	mf.pass(t, "2026-10-01T00:30:00Z") // 0.50 left: warned
	mf.pass(t, "2026-10-01T01:30:00Z") // −0.50: depleted at 01:00
	mf.pass(t, "2026-10-01T01:45:00Z")
	var kinds []string
	var dep []mailMsg
	for _, m := range mails(t, srv) {
		kinds = append(kinds, m.kind())
		if m.kind() == NoticeDepleted {
			dep = append(dep, m)
		}
	}
	if !reflect.DeepEqual(kinds, []string{NoticeLow, NoticeDepleted}) {
		t.Fatalf("emails %v, want one warning then one depletion notice", kinds)
	}
	m := dep[0]
	if m.subject != "Prepaid balance used up: Seven" || !reflect.DeepEqual(m.raw.Rcpt, []string{"seven@example.org", "ledger@acme.example"}) {
		t.Errorf("depletion notice %q to %v", m.subject, m.raw.Rcpt)
	}
	for _, want := range []string{"ran out on 2026-10-01 01:00 UTC", "Balance           -0.50 EUR (on 2026-10-01 01:30 UTC)",
		"Usage             1 EUR per hour", "recharged before 2026-10-01 03:00 UTC (a grace period of 2 hours)", "will be stopped"} {
		if !strings.Contains(m.text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.text)
		}
	}
	// The dry-run freeze after the grace period is logged, not emailed: nothing was stopped.
	if rep := mf.pass(t, "2026-10-01T03:30:00Z"); rep.Frozen != 1 {
		t.Fatalf("no dry-run freeze: %+v", rep)
	}
	if n := len(srv.Messages()); n != 2 || len(os.calls()) != 0 {
		t.Errorf("a dry-run freeze was emailed or acted: %d emails, calls %v", n, os.calls())
	}
	if !strings.Contains(mf.logs.String(), "kind="+NoticeFrozen) {
		t.Errorf("the dry-run freeze was not logged:\n%s", mf.logs)
	}
}

func TestServerDownKeepsTheNoticeAndALaterPassSendsItOnce(t *testing.T) {
	srv := smtptest.Down(t)
	mf := newMailFixture(t, srv.Port, "balance: {warn_before: 72h}\n")
	oneCent(t, mf)
	rep := mf.pass(t, "2026-10-01T09:00:00Z")
	if rep.Warned != 1 || len(rep.Errors) != 0 {
		t.Fatalf("a refused connection is not a job error: %+v", rep)
	}
	if d := audit(t, mf.svc.Balances, "p4", AuditEmailDeferred); len(d) != 1 || !strings.Contains(d[0].Detail, "refused") {
		t.Fatalf("deferred audit: %+v", d)
	}
	mf.pass(t, "2026-10-01T09:05:00Z") // still down: kept again, no new audit row
	if d := audit(t, mf.svc.Balances, "p4", AuditEmailDeferred); len(d) != 1 {
		t.Fatalf("a pass that could not connect wrote %d deferred rows, want still 1", len(d))
	}
	// The next process (a later `bilean jobs run`) finds it in the audit and sends it once.
	srv.Up()
	mf.open(t)
	mf.pass(t, "2026-10-01T10:00:00Z")
	mf.pass(t, "2026-10-01T11:00:00Z")
	ms := mails(t, srv)
	if len(ms) != 1 || ms[0].kind() != NoticeLow {
		t.Fatalf("server received %d emails, want the one warning", len(ms))
	}
	qs := queuedNotices(t, mf.svc.Balances, "p4")
	if len(qs) != 1 || "<"+qs[0].MessageID+">" != ms[0].header.Get("Message-Id") {
		t.Errorf("queued %+v, Message-ID %s", qs, ms[0].header.Get("Message-Id"))
	}
	// Written at 09:00, sent at 10:00: the email says what the balance was when it was low.
	if !strings.Contains(ms[0].text, "Balance           0.71 EUR (on 2026-10-01 09:00 UTC)") {
		t.Errorf("late warning text:\n%s", ms[0].text)
	}
	if n := len(audit(t, mf.svc.Balances, "p4", AuditEmailSent)); n != 1 {
		t.Errorf("%d sent audit rows", n)
	}
	if n := len(audit(t, mf.svc.Balances, "p4", AuditEmailSending)); n != 1 {
		t.Errorf("%d attempts reached the server, want 1 (refused connections are not attempts)", n)
	}
}

func TestAWarningKeptWhileTheServerIsDownIsDroppedAfterARecharge(t *testing.T) {
	srv := smtptest.Down(t)
	mf := newMailFixture(t, srv.Port, "balance: {warn_before: 72h}\n")
	oneCent(t, mf)
	mf.pass(t, "2026-10-01T09:00:00Z")
	mf.now = at("2026-10-01T09:30:00Z")
	if _, err := mf.svc.Recharge(bg, "p4", d("10"), "", ""); err != nil {
		t.Fatal(err)
	}
	srv.Up()
	mf.pass(t, "2026-10-01T10:00:00Z")
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("a warning was sent after the customer recharged: %d emails", n)
	}
	if d := audit(t, mf.svc.Balances, "p4", AuditEmailDropped); len(d) != 1 {
		t.Errorf("dropped audit: %+v", d)
	}
}

func TestInterruptedSendIsNotResent(t *testing.T) {
	srv := smtptest.Start(t)
	mf := newMailFixture(t, srv.Port, "balance: {warn_before: 72h}\n")
	oneCent(t, mf)
	// The process "dies" right after the server accepted the warning: its store is gone before
	// the outcome is recorded, so the notice stays "sending".
	var once sync.Once
	srv.OnData(func() { once.Do(func() { mf.st.Close() }) })
	mf.now = at("2026-10-01T09:00:00Z")
	if rep, err := mf.svc.RunPass(bg); err == nil && len(rep.Errors) == 0 {
		t.Error("the pass whose outcome could not be recorded reported nothing")
	}
	srv.OnData(nil)
	mf.open(t)
	mf.pass(t, "2026-10-01T09:05:00Z") // within reconcile_after: left alone
	mf.pass(t, "2026-10-01T09:20:00Z") // past it: unknown, not resent
	mf.pass(t, "2026-10-01T09:40:00Z")
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("server holds %d emails, want the 1 accepted before the crash", n)
	}
	u := audit(t, mf.svc.Balances, "p4", AuditEmailUnknown)
	if len(u) != 1 || !strings.Contains(u[0].Detail, parseMail(t, srv.Messages()[0]).header.Get("Message-Id")) {
		t.Errorf("unknown audit: %+v", u)
	}
}

func TestFreezeAndLiftAreEmailed(t *testing.T) {
	srv := smtptest.Start(t)
	mf := newMailFixture(t, srv.Port, "balance: {escalation: suspend, grace_period: 2h}\n")
	os := newFakeOpenStack(t)
	mf.svc.Cloud = os.cloud(t)
	mf.policy(t, "standard", "0", server(`m1.small: "1.00"`))
	mf.customer(t, billing.Customer{ID: "p7", Contacts: []string{"seven@example.org"}})
	mf.pay(t, "p7", "1.00", at("2026-10-01T00:00:00Z"), "a")
	mf.records(t, billing.Record{CustomerID: "p7", ResourceID: "srv-1", ResourceType: "os.nova.server", Start: at("2026-10-01T00:00:00Z"), Attributes: map[string]string{"flavor": "m1.small"}})
	os.addServer("srv-1", "p7", "ACTIVE", "m1.small", "2026-10-01T00:00:00Z")
	mf.pass(t, "2026-10-01T00:30:00Z")
	mf.pass(t, "2026-10-01T01:30:00Z")
	mf.pass(t, "2026-10-01T03:30:00Z") // grace over: suspended
	mf.now = at("2026-10-01T04:00:00Z")
	res, err := mf.svc.Recharge(bg, "p7", d("10"), "", "")
	if err != nil || !res.Lifted {
		t.Fatalf("recharge: %+v, %v", res, err)
	}
	ms := mails(t, srv)
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, m.kind())
	}
	if !reflect.DeepEqual(kinds, []string{NoticeLow, NoticeDepleted, NoticeFrozen, NoticeUnfrozen}) {
		t.Fatalf("emails %v", kinds)
	}
	if fr := ms[2]; fr.subject != "Servers suspended: the prepaid balance of p7 is used up" || !strings.Contains(fr.text, "These servers have been suspended:\n  - srv-1") {
		t.Errorf("freeze notice %q:\n%s", fr.subject, fr.text)
	}
	if up := ms[3]; up.subject != "p7 is active again" || !strings.Contains(up.text, "These servers have been resumed again:\n  - srv-1") ||
		!strings.Contains(up.text, "(recharge "+res.Payment.Reference+")") {
		t.Errorf("lift notice %q:\n%s", up.subject, up.text)
	}
}

func TestWithoutMailNoticesAreLoggedAndAudited(t *testing.T) {
	mf := newMailFixture(t, "", "balance: {warn_before: 72h}\n")
	if mf.svc.Notifier != nil {
		t.Fatalf("without mail.host the notifier is %T, want the LogNotifier default", mf.svc.Notifier)
	}
	oneCent(t, mf)
	mf.pass(t, "2026-10-01T09:00:00Z")
	if w := audit(t, mf.svc.Balances, "p4", NoticeLow); len(w) != 1 {
		t.Errorf("warning audit: %+v", w)
	}
	if q := audit(t, mf.svc.Balances, "p4", AuditEmailQueued); len(q) != 0 {
		t.Errorf("an email was queued without a mail server: %+v", q)
	}
	if !strings.Contains(mf.logs.String(), "balance notice") || !strings.Contains(mf.logs.String(), "kind="+NoticeLow) {
		t.Errorf("no logged notice:\n%s", mf.logs)
	}
}
