package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/mailer/smtptest"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/store/sqlite"
	"github.com/govalues/decimal"
)

// --- a store, a configuration and customers ---------------------------------------------------

type mailHarness struct {
	t      *testing.T
	dir    string
	dbPath string
	st     *sqlite.Store
	cfg    *config.Config
	// stale, when set, is how soon a later run takes over the batch of a run that died.
	stale time.Duration
}

// newMailHarness opens a fresh store and a configuration whose scheduled chain renders CSV and
// emails it through 127.0.0.1:port with plain SMTP and short backoffs.
func newMailHarness(t *testing.T, port string) *mailHarness {
	t.Helper()
	return newMailHarnessWith(t, port, harnessOptions{})
}

// harnessOptions change newMailHarness's configuration and customers.
type harnessOptions struct {
	// render is the render step's configuration besides its dir, as YAML flow mapping entries;
	// "formats: [csv]" when empty.
	render string
	// numbering is numbering.format, the default when empty.
	numbering string
	// customers replace p1 and p2.
	customers []billing.Customer
	// afterRender, when set, is a step put between render and email.
	afterRender string
}

// newMailHarnessWith is newMailHarness with options.
func newMailHarnessWith(t *testing.T, port string, o harnessOptions) *mailHarness {
	t.Helper()
	if o.render == "" {
		o.render = "formats: [csv]"
	}
	after := ""
	if o.afterRender != "" {
		after = "\n    - " + o.afterRender
	}
	numbering := ""
	if o.numbering != "" {
		numbering = fmt.Sprintf("numbering: {format: %q}", o.numbering)
	}
	dir := t.TempDir()
	h := &mailHarness{t: t, dir: dir, dbPath: filepath.Join(dir, "bilean.db")}
	h.reopen()
	cfg, err := config.Parse("email_test.yaml", []byte(fmt.Sprintf(`
billing: {tax_rate: "0.20"}
%s
pipeline:
  workers: 1
  scheduled:
    - subscription_feeding
    - subscription_tree
    - rule
    - invoice_calculation
    - finalizing
    - render: {dir: %q, %s}%s
    - email
  interim: [subscription_feeding, subscription_tree, rule, invoice_calculation]
mail:
  host: 127.0.0.1
  port: %s
  tls: none
  from: "Acme Cloud Billing <billing@acme.example>"
  reply_to: accounts@acme.example
  bcc: [ledger@acme.example]
  timeout: 5s
  max_attempts: 5
  reconcile_after: 1ms
  retry: {attempts_per_run: 2, backoff: 20ms, max_backoff: 50ms}
`, numbering, filepath.Join(dir, "invoices"), o.render, after, port)))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	ctx := context.Background()
	fee := billing.Policy{Name: "flat", Currency: "EUR", Fee: decimal.MustParse("10.00")}
	if err := h.st.PutPolicies(ctx, []billing.Policy{fee}); err != nil {
		t.Fatal(err)
	}
	// A flat fee of 10.00 for the whole of October, 20 % tax: total 12.00 for each customer.
	cs := []billing.Customer{
		{ID: "p1", Name: `Zürich <Ünïcode> & "Co" Ltd`, Currency: "EUR", TaxRate: decimal.MustParse("0.20"), Status: billing.Active,
			Contacts: []string{"anna@zurich.example", "Bob Builder <bob@zurich.example>"}},
		{ID: "p2", Name: "株式会社 Example", Currency: "EUR", TaxRate: decimal.MustParse("0.20"), Status: billing.Active,
			Contacts: []string{"billing@p2.example"}},
	}
	if o.customers != nil {
		cs = o.customers
	}
	if err := h.st.PutCustomers(ctx, cs); err != nil {
		t.Fatal(err)
	}
	var subs []billing.Subscription
	for _, c := range cs {
		subs = append(subs, billing.Subscription{CustomerID: c.ID, Policy: "flat", Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)})
	}
	if _, err := h.st.AddSubscriptions(ctx, subs); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *mailHarness) reopen() {
	h.t.Helper()
	st, err := sqlite.Open(context.Background(), h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	h.t.Cleanup(func() { st.Close() })
}

func (h *mailHarness) env() pipeline.Env {
	return pipeline.Env{Store: h.st, Config: h.cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

var october = interval.Range{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}

// run executes the scheduled October run and returns it with its error.
func (h *mailHarness) run() (*pipeline.Run, error) {
	return pipeline.Execute(context.Background(), h.env(), pipeline.Options{Mode: pipeline.Scheduled, Period: october, StaleAfter: h.stale})
}

func (h *mailHarness) mustRun() *pipeline.Run {
	h.t.Helper()
	run, err := h.run()
	if err != nil {
		h.t.Fatal(err)
	}
	return run
}

// outbox returns the entries by invoice number.
func (h *mailHarness) outbox() map[string]store.Delivery {
	h.t.Helper()
	ds, err := h.st.Deliveries(context.Background(), store.DeliveryFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, d := range ds {
		out[d.Invoice] = d
	}
	return out
}

// invoiceOf returns the number of the customer's live October invoice.
func (h *mailHarness) invoiceOf(customer string) string {
	h.t.Helper()
	m, err := h.st.Invoiced(context.Background(), []string{customer}, october)
	if err != nil || m[customer] == "" {
		h.t.Fatalf("no October invoice for %s (%v)", customer, err)
	}
	return m[customer]
}

func wantDelivery(t *testing.T, d store.Delivery, state store.DeliveryState, attempts int) {
	t.Helper()
	if d.State != state || d.Attempts != attempts {
		t.Errorf("outbox %s: %s after %d attempts, want %s after %d (last error %q)", d.Invoice, d.State, d.Attempts, state, attempts, d.LastError)
	}
}

// byInvoice indexes received messages by their X-Bilean-Invoice header.
func byInvoice(t *testing.T, msgs []smtptest.Message) map[string]smtptest.Message {
	t.Helper()
	out := map[string]smtptest.Message{}
	for _, m := range msgs {
		n := smtptest.Parse(t, m.Data).Header.Get("X-Bilean-Invoice")
		if _, dup := out[n]; dup {
			t.Errorf("invoice %s was emailed twice", n)
		}
		out[n] = m
	}
	return out
}

// --- tests ---------------------------------------------------------------------------------------

func TestEmailDeliversBothAlternativesAndTheRenderedDocuments(t *testing.T) {
	srv := smtptest.Start(t)
	h := newMailHarness(t, srv.Port)
	run := h.mustRun()
	if run.Stats.Invoices != 2 {
		t.Fatalf("%d invoices issued, want 2", run.Stats.Invoices)
	}
	files := map[string][]string{}
	for _, o := range run.Stats.Outcomes {
		files[o.Number] = o.Files
	}
	p1, p2 := h.invoiceOf("p1"), h.invoiceOf("p2")
	msgs := byInvoice(t, srv.Messages())
	if len(msgs) != 2 {
		t.Fatalf("server received %d messages, want 2", len(srv.Messages()))
	}
	ob := h.outbox()
	m := msgs[p1]
	// Envelope: the customer's two contacts and the accountant; the sender is mail.from.
	if want := []string{"anna@zurich.example", "bob@zurich.example", "ledger@acme.example"}; !reflect.DeepEqual(m.Rcpt, want) || m.From != "billing@acme.example" {
		t.Errorf("envelope from %s to %v, want billing@acme.example to %v", m.From, m.Rcpt, want)
	}
	p := smtptest.Parse(t, m.Data)
	if got := p.Addresses(t, "To"); !reflect.DeepEqual(got, []string{"anna@zurich.example", "bob@zurich.example"}) {
		t.Errorf("To: %v", got)
	}
	if p.Header.Get("Bcc") != "" || bytes.Contains(m.Data, []byte("ledger@acme.example")) {
		t.Errorf("the accountant's BCC address shows in the message:\n%s", m.Data)
	}
	if got := p.Addresses(t, "Reply-To"); !reflect.DeepEqual(got, []string{"accounts@acme.example"}) {
		t.Errorf("Reply-To: %v", got)
	}
	if got, want := p.Subject(t), "Invoice "+p1+" for October 2026 from Acme Cloud Billing"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if got, want := p.Header.Get("Message-Id"), "<"+ob[p1].MessageID+">"; got != want || ob[p1].MessageID == "" {
		t.Errorf("Message-ID header %q, outbox records %q", got, want)
	}
	text, html := p.PartsOf("text/plain"), p.PartsOf("text/html")
	if len(text) != 1 || len(html) != 1 {
		t.Fatalf("want one text/plain and one text/html alternative, got parts %+v", p.Parts)
	}
	// 10.00 fee + 20 % tax = 12.00.
	for _, want := range []string{`Dear Zürich <Ünïcode> & "Co" Ltd,`, "Total             12.00 EUR", "Balance due       12.00 EUR"} {
		if !bytes.Contains(text[0].Body, []byte(want)) {
			t.Errorf("text body lacks %q:\n%s", want, text[0].Body)
		}
	}
	if want := "Dear Zürich &lt;Ünïcode&gt; &amp; &#34;Co&#34; Ltd,"; !bytes.Contains(html[0].Body, []byte(want)) {
		t.Errorf("HTML body lacks the escaped name %q:\n%s", want, html[0].Body)
	}
	if bytes.Contains(html[0].Body, []byte("<Ünïcode>")) {
		t.Error("HTML body holds the customer name unescaped")
	}
	csvs := p.PartsOf("text/csv")
	if len(files[p1]) != 1 || len(csvs) != 1 {
		t.Fatalf("rendered files %v, CSV attachments %d: want one each", files[p1], len(csvs))
	}
	onDisk, err := os.ReadFile(files[p1][0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(csvs[0].Body, onDisk) || csvs[0].Filename != filepath.Base(files[p1][0]) {
		t.Errorf("attachment %s (%d bytes) differs from the rendered %s (%d bytes)", csvs[0].Filename, len(csvs[0].Body), files[p1][0], len(onDisk))
	}
	// The other customer gets its own message with its own single contact.
	if want := []string{"billing@p2.example", "ledger@acme.example"}; !reflect.DeepEqual(msgs[p2].Rcpt, want) {
		t.Errorf("%s sent to %v, want %v", p2, msgs[p2].Rcpt, want)
	}
	wantDelivery(t, ob[p1], store.DeliverySent, 1)
	wantDelivery(t, ob[p2], store.DeliverySent, 1)

	// A repeated run bills nothing and sends nothing.
	again := h.mustRun()
	if again.Stats.Invoices != 0 || len(srv.Messages()) != 2 {
		t.Errorf("repeated run: %d invoices, server holds %d messages; want 0 and still 2", again.Stats.Invoices, len(srv.Messages()))
	}
	if after := h.outbox(); !reflect.DeepEqual(after, ob) {
		t.Errorf("repeated run changed the outbox:\n%+v\nwas\n%+v", after, ob)
	}
}

func TestEmailServerDownThenALaterRunSends(t *testing.T) {
	srv := smtptest.Down(t)
	h := newMailHarness(t, srv.Port)
	run := h.mustRun() // the run finishes: email trouble is not a billing failure
	if run.Stats.Invoices != 2 || run.Stats.Failed != 0 {
		t.Fatalf("run: %d invoices, %d failed", run.Stats.Invoices, run.Stats.Failed)
	}
	p1 := h.invoiceOf("p1")
	for _, d := range h.outbox() {
		// Tried twice in the run (attempts_per_run: 2), then left for a later run.
		wantDelivery(t, d, store.DeliveryPending, 2)
		if !strings.Contains(d.LastError, "refused") {
			t.Errorf("last error %q does not say the connection was refused", d.LastError)
		}
	}
	files := map[string][]string{}
	for _, o := range run.Stats.Outcomes {
		files[o.Number] = o.Files
	}

	srv.Up()
	again := h.mustRun() // every customer is already invoiced: Finish sends what is pending
	if again.Stats.Invoices != 0 {
		t.Fatalf("second run issued %d invoices", again.Stats.Invoices)
	}
	msgs := byInvoice(t, srv.Messages())
	if len(msgs) != 2 {
		t.Fatalf("server received %d messages, want 2", len(srv.Messages()))
	}
	for n, d := range h.outbox() {
		wantDelivery(t, d, store.DeliverySent, 3)
		if d.LastError != "" {
			t.Errorf("%s sent but last error %q", n, d.LastError)
		}
	}
	// Sent by a later run, the document is rendered again from the stored invoice: same bytes.
	csvs := smtptest.Parse(t, msgs[p1].Data).PartsOf("text/csv")
	onDisk, err := os.ReadFile(files[p1][0])
	if err != nil {
		t.Fatal(err)
	}
	if len(csvs) != 1 || !bytes.Equal(csvs[0].Body, onDisk) || csvs[0].Filename != filepath.Base(files[p1][0]) {
		t.Errorf("re-rendered attachment differs from the document written by the first run")
	}
	h.mustRun()
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("a third run sent again: server holds %d messages", n)
	}
}

func TestEmailPermanentRefusalFailsAndARetrySends(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Reply(func(cmd string) error {
		if cmd == "RCPT bob@zurich.example" {
			return smtptest.Refusal(550, "no such user")
		}
		return nil
	})
	h := newMailHarness(t, srv.Port)
	h.mustRun()
	p1, p2 := h.invoiceOf("p1"), h.invoiceOf("p2")
	ob := h.outbox()
	wantDelivery(t, ob[p1], store.DeliveryFailed, 1)
	if !strings.Contains(ob[p1].LastError, "550") {
		t.Errorf("last error %q does not carry the 550", ob[p1].LastError)
	}
	wantDelivery(t, ob[p2], store.DeliverySent, 1)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("server holds %d messages, want 1 (p2's)", n)
	}
	h.mustRun() // a failed delivery is not retried by itself
	wantDelivery(t, h.outbox()[p1], store.DeliveryFailed, 1)

	// The operator corrects the contact and retries (what `bilean outbox retry` does).
	if _, err := h.st.RetryDelivery(context.Background(), ob[p1].ID, false, []string{"anna@zurich.example", "robert@zurich.example"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	em, err := handlers.NewEmail(h.env(), handlers.EmailConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantDelivery(t, h.outbox()[p1], store.DeliverySent, 1)
	msgs := byInvoice(t, srv.Messages())
	if want := []string{"anna@zurich.example", "robert@zurich.example", "ledger@acme.example"}; !reflect.DeepEqual(msgs[p1].Rcpt, want) {
		t.Errorf("retried message went to %v, want %v", msgs[p1].Rcpt, want)
	}
}

func TestEmailTransientRefusalIsRetriedWithinTheRun(t *testing.T) {
	srv := smtptest.Start(t)
	var mu sync.Mutex
	refused := 0
	srv.Reply(func(cmd string) error {
		mu.Lock()
		defer mu.Unlock()
		if cmd == "DATA" && refused == 0 {
			refused++
			return smtptest.Refusal(451, "greylisted, try again later")
		}
		return nil
	})
	h := newMailHarness(t, srv.Port)
	h.mustRun()
	ob := h.outbox()
	attempts := 0
	for _, d := range ob {
		if d.State != store.DeliverySent {
			t.Errorf("%s is %s (%s), want sent", d.Invoice, d.State, d.LastError)
		}
		attempts += d.Attempts
	}
	// One of the two was greylisted once and sent on its second attempt, after the backoff.
	if attempts != 3 || len(byInvoice(t, srv.Messages())) != 2 {
		t.Errorf("%d attempts in all, %d messages; want 3 and 2", attempts, len(srv.Messages()))
	}
}

func TestEmailCrashAfterTheServerAcceptedIsNotResent(t *testing.T) {
	srv := smtptest.Start(t)
	h := newMailHarness(t, srv.Port)
	h.cfg.Pipeline.BatchSize = 1
	// The process "dies" right after the server accepted the first message: its store is gone
	// before the outcome can be recorded, so the entry stays "sending".
	var once sync.Once
	srv.OnData(func() { once.Do(func() { h.st.Close() }) })
	if _, err := h.run(); err == nil {
		t.Fatal("the run with a dead store succeeded")
	}
	srv.OnData(nil)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("server holds %d messages before the restart, want 1", n)
	}
	first := smtptest.Parse(t, srv.Messages()[0].Data).Header
	number := first.Get("X-Bilean-Invoice")

	h.reopen()
	h.stale = 500 * time.Millisecond // the dead run's batch is taken over quickly
	if d := h.outbox()[number]; d.State != store.DeliverySending || "<"+d.MessageID+">" != first.Get("Message-Id") {
		t.Fatalf("before reconciling: %s is %s with Message-ID %q; want sending with the one the server got (%s)",
			number, d.State, d.MessageID, first.Get("Message-Id"))
	}
	time.Sleep(5 * time.Millisecond) // past reconcile_after (1ms)
	h.mustRun()
	d := h.outbox()[number]
	wantDelivery(t, d, store.DeliveryUnknown, 1)
	if !strings.Contains(d.LastError, "retry --force") {
		t.Errorf("unknown entry's last error %q does not tell the operator what to do", d.LastError)
	}
	// The other invoice was finalized by the first run but never sent: the restart sends it.
	msgs := byInvoice(t, srv.Messages())
	if len(msgs) != 2 || len(srv.Messages()) != 2 {
		t.Fatalf("after the restart the server holds %d messages, want 2 (nothing resent)", len(srv.Messages()))
	}
	h.mustRun()
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("a further run resent an uncertain delivery: %d messages", n)
	}
	// The operator found no trace of the Message-ID in the mail log and forces the resend,
	// which keeps the Message-ID.
	if _, err := h.st.RetryDelivery(context.Background(), d.ID, false, nil, time.Now()); !errors.Is(err, store.ErrDeliveryState) {
		t.Fatalf("retry without --force: err = %v, want a refusal", err)
	}
	if _, err := h.st.RetryDelivery(context.Background(), d.ID, true, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	em, err := handlers.NewEmail(h.env(), handlers.EmailConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := srv.Messages()
	if len(all) != 3 || smtptest.Parse(t, all[2].Data).Header.Get("Message-Id") != first.Get("Message-Id") {
		t.Errorf("forced resend: %d messages, last Message-ID %q; want 3 and %q", len(all), smtptest.Parse(t, all[len(all)-1].Data).Header.Get("Message-Id"), first.Get("Message-Id"))
	}
	wantDelivery(t, h.outbox()[number], store.DeliverySent, 1)
}

func TestEmailVoidedInvoiceIsNotSent(t *testing.T) {
	srv := smtptest.Down(t)
	h := newMailHarness(t, srv.Port)
	h.mustRun()
	p1 := h.invoiceOf("p1")
	if err := h.st.VoidInvoice(context.Background(), p1, "wrong customer"); err != nil {
		t.Fatal(err)
	}
	srv.Up()
	h.mustRun() // p1 is invoiced again (a new number) and that invoice is sent; the void one is not
	msgs := byInvoice(t, srv.Messages())
	if _, sent := msgs[p1]; sent {
		t.Errorf("the voided invoice %s was emailed", p1)
	}
	if d := h.outbox()[p1]; d.State != store.DeliveryCancelled {
		t.Errorf("voided invoice's delivery is %s, want cancelled", d.State)
	}
	if n := h.invoiceOf("p1"); n == p1 || msgs[n].Data == nil {
		t.Errorf("p1's new invoice %s was not emailed (messages for %v)", n, slices.Collect(maps.Keys(msgs)))
	}
}

func TestEmailRefusesAnInterimRun(t *testing.T) {
	srv := smtptest.Start(t)
	h := newMailHarness(t, srv.Port)
	em, err := handlers.NewEmail(h.env(), handlers.EmailConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Start(context.Background(), &pipeline.Run{Mode: pipeline.Interim}); err == nil || !strings.Contains(err.Error(), "interim") {
		t.Errorf("Start(interim) = %v, want a refusal", err)
	}
	if err := em.Handle(context.Background(), &pipeline.Batch{Run: &pipeline.Run{Mode: pipeline.Interim}}); err == nil {
		t.Error("Handle accepted an interim batch")
	}
}

func TestEmailNeedsAMailServerAndKnownFormats(t *testing.T) {
	h := newMailHarness(t, "2525")
	if _, err := handlers.NewEmail(h.env(), handlers.EmailConfig{Attach: []string{"docx"}}); err == nil || !strings.Contains(err.Error(), `attach[0]`) {
		t.Errorf("unknown format: err = %v", err)
	}
	h.cfg.Mail.Host = ""
	if _, err := handlers.NewEmail(h.env(), handlers.EmailConfig{}); err == nil || !strings.Contains(err.Error(), "mail.host") {
		t.Errorf("no host: err = %v", err)
	}
}
