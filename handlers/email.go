package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/invoice/render"
	"github.com/bilean/bilean/mailer"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/templates"
	gomail "github.com/wneessen/go-mail"
	"gopkg.in/yaml.v3"
)

// EmailConfig is the email handler's own configuration. The SMTP server, the sender and the
// accountants' BCC are the `mail` section of bilean.yaml (config.Mail).
type EmailConfig struct {
	// Attach lists the document formats attached to each email, in order. Defaults to the
	// formats of the chain's render step (csv when there is none).
	Attach []string `yaml:"attach"`
}

// Email delivers each issued invoice by email, once and only once, through the store's outbox.
//
// # Once and only once
//
// Every invoice the run finalizes (and every invoice of the period an earlier run finalized but
// never queued) gets one outbox entry, keyed by its number, created idempotently. An entry is sent
// in three steps: the claim (pending → sending, with the Message-ID, committed), the SMTP
// exchange, and the outcome (sent; pending again after a transient failure — a 4xx reply, a
// refused or broken connection — with exponential backoff; failed after a 5xx reply, an invalid
// address, no billing contact or too many attempts). A repeated run finds the entry sent and
// sends nothing.
//
// If the process dies between the server's acceptance and the recording of the outcome, the entry
// stays "sending". The next run (once mail.reconcile_after has passed) does not send it again: it
// cannot know whether the server accepted the message, and a second invoice in a customer's
// mailbox is worse than a late one. It marks the entry "unknown" and logs its Message-ID; an
// operator looks for that Message-ID in the mail server's log and, only if it is not there, runs
// `bilean outbox retry --force ID`, which resends with the same Message-ID. The same holds when
// the connection breaks after the message's final dot and before the server's reply.
//
// # Attachments
//
// Every email, whether its invoice was finalized in this run or an earlier one, carries documents
// rendered from the invoice as the store holds it (GetInvoice), through the render step's
// registry and file name template: the same bytes and names as the render step's files for that
// invoice, but never read back from the output folder, which other invoices share and which
// anyone may write to.
//
// Interim invoices are never emailed: config refuses the step in the interim chain, and the
// handler refuses an interim run. A voided invoice's pending or failed entry is cancelled.
type Email struct {
	outbox    store.Outbox
	invoices  store.Invoices
	mail      config.Mail
	client    *gomail.Client
	loc       *time.Location
	renderers []render.Renderer
	filename  string
	log       *slog.Logger
	now       func() time.Time
	domain    string

	mu    sync.Mutex
	tried map[int64]int // attempts made by this run, per entry
	// rendered keeps, per invoice number, the email content and documents rendered again from
	// the stored invoice by this run, while its entry waits for another attempt: a retry within
	// the run reuses them rather than rendering the same invoice to the same bytes again.
	rendered map[string]content
	// runCtx is the run's context, kept by Start so that Finish (called without cancellation) can
	// stop waiting for a backoff when the run is interrupted.
	runCtx context.Context
}

var (
	_ pipeline.Handler  = (*Email)(nil)
	_ pipeline.Starter  = (*Email)(nil)
	_ pipeline.Finisher = (*Email)(nil)
)

func init() {
	pipeline.RegisterIn("email", []string{pipeline.ScheduledChain}, func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		var c EmailConfig
		if err := pipeline.DecodeNode(node, &c); err != nil {
			return nil, err
		}
		return NewEmail(env, c)
	})
}

// NewEmail builds the email handler from the mail section of env.Config and c. `bilean outbox
// retry` uses it outside a run.
func NewEmail(env pipeline.Env, c EmailConfig) (*Email, error) {
	cfg := env.Config
	if cfg == nil || !cfg.Mail.Enabled() {
		return nil, errors.New("mail.host is not set: the email handler needs an SMTP server (see the mail section of bilean.yaml)")
	}
	if env.Store == nil {
		return nil, errors.New("the email handler needs a store: it records deliveries in its outbox")
	}
	var ob store.Outbox = env.Store
	rc, err := renderStepConfig(cfg)
	if err != nil {
		return nil, err
	}
	filename, err := render.FileTemplate(rc.Filename)
	if err != nil {
		return nil, fmt.Errorf("render step: filename: %w", err)
	}
	// The same registry and file names as the render step's, so that an attached document is
	// byte for byte, and by name, the one the render step wrote for that invoice.
	reg, err := RenderersFor(rc, cfg.Documents, cfg.Location())
	if err != nil {
		return nil, fmt.Errorf("render step: %w", err)
	}
	formats := c.Attach
	if formats == nil {
		formats = rc.Formats
	}
	h := &Email{outbox: ob, invoices: env.Store, mail: cfg.Mail, loc: cfg.Location(), filename: filename,
		log: env.Log, now: time.Now, tried: map[int64]int{}, rendered: map[string]content{}, runCtx: context.Background()}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, f := range formats {
		r, err := reg.Lookup(f)
		if err != nil {
			return nil, fmt.Errorf("attach[%d]: %w", i, err)
		}
		h.renderers = append(h.renderers, r)
	}
	if h.domain, err = mailer.Domain(cfg.Mail.From); err != nil {
		return nil, err
	}
	if h.client, err = mailer.NewClient(cfg.Mail); err != nil {
		return nil, err
	}
	return h, nil
}

// renderStepConfig returns the configuration of the scheduled chain's render step, with its
// defaults, or the defaults when the chain has none.
func renderStepConfig(cfg *config.Config) (RenderConfig, error) {
	var rc RenderConfig
	if _, err := pipeline.StepConfig(cfg, "render", &rc); err != nil {
		return rc, err
	}
	if len(rc.Formats) == 0 {
		rc.Formats = []string{"csv"}
	}
	return rc, nil
}

// Start refuses an interim run and reconciles deliveries an earlier run left in sending.
func (h *Email) Start(ctx context.Context, r *pipeline.Run) error {
	if r.Mode == pipeline.Interim {
		return errors.New("email cannot run in an interim run: interim invoices are never emailed")
	}
	h.mu.Lock()
	h.tried, h.rendered, h.runCtx = map[int64]int{}, map[string]content{}, ctx
	h.mu.Unlock()
	_, err := h.Reconcile(ctx)
	return err
}

// Reconcile marks unknown the deliveries that have been sending for longer than
// mail.reconcile_after (their sender died) and logs each with its Message-ID.
func (h *Email) Reconcile(ctx context.Context) ([]store.Delivery, error) {
	ds, err := h.outbox.ReconcileDeliveries(ctx, h.now().Add(-h.mail.ReconcileAfter),
		"interrupted while sending: the server may have accepted it; check the Message-ID in the mail server's log, then `bilean outbox retry --force ID` if it is not there")
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		h.log.Warn("email delivery uncertain: not resent", "outbox", d.ID, "invoice", d.Invoice, "message_id", d.MessageID,
			"hint", fmt.Sprintf("check the mail server's log for <%s>; if absent: bilean outbox retry --force %d", d.MessageID, d.ID))
	}
	return ds, nil
}

// Handle queues the batch's new invoices (and invoices of the period that have no entry yet) and
// sends them.
func (h *Email) Handle(ctx context.Context, b *pipeline.Batch) error {
	if b.Run.Mode == pipeline.Interim {
		return errors.New("email cannot run in an interim run: interim invoices are never emailed")
	}
	now := h.now()
	var ds []store.Delivery
	for _, it := range b.Items {
		number := ""
		switch {
		case it.Active() && it.Invoice != nil && it.Invoice.Number != "":
			number = it.Invoice.Number
		case it.Invoiced != "" && it.Err == nil:
			number = it.Invoiced // finalized by an earlier run, perhaps never queued
		default:
			continue
		}
		ds = append(ds, store.Delivery{Invoice: number, CustomerID: it.CustomerID, To: it.Customer.Contacts, Bcc: h.mail.Bcc, CreatedAt: now})
	}
	if len(ds) == 0 {
		return nil
	}
	queued, err := h.outbox.EnqueueDeliveries(ctx, ds)
	if err != nil {
		return err
	}
	s := mailer.NewSession(h.client)
	defer s.Close()
	for _, d := range queued {
		if d.State != store.DeliveryPending || d.NextAttempt.After(now) {
			continue // sent, failed, waiting for its backoff (Finish) …
		}
		if err := h.deliver(ctx, s, d); err != nil {
			return err
		}
	}
	return nil
}

// Finish sends every pending entry — those this run's batches could not send, those earlier runs
// left — retrying transient failures with backoff, up to mail.retry.attempts_per_run tries each.
func (h *Email) Finish(ctx context.Context, r *pipeline.Run) error {
	if r.Mode == pipeline.Interim {
		return nil
	}
	return h.Flush(ctx)
}

// Flush sends the pending entries, waiting for their backoff, until each is sent, given up on
// for this run, or the run is interrupted.
func (h *Email) Flush(ctx context.Context) error {
	s := mailer.NewSession(h.client)
	defer s.Close()
	for {
		pending, err := h.outbox.Deliveries(ctx, store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryPending}})
		if err != nil {
			return err
		}
		now := h.now()
		var wait time.Time
		for _, d := range pending {
			if h.triedThisRun(d.ID) >= h.mail.Retry.AttemptsPerRun {
				continue
			}
			if d.NextAttempt.After(now) {
				if wait.IsZero() || d.NextAttempt.Before(wait) {
					wait = d.NextAttempt
				}
				continue
			}
			if err := h.deliver(ctx, s, d); err != nil {
				return err
			}
			wait = now // look again at once: what was just tried may be due again
		}
		if wait.IsZero() {
			return nil
		}
		if d := wait.Sub(h.now()); d > 0 {
			s.Close() // do not hold a connection while waiting
			h.mu.Lock()
			runCtx := h.runCtx
			h.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-runCtx.Done():
				t.Stop()
				return nil // interrupted: what is pending stays pending for the next run
			}
		}
	}
}

func (h *Email) triedThisRun(id int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tried[id]
}

// deliver sends one pending entry, with the invoice and its documents as the store holds them.
// It returns an error only when the store fails.
func (h *Email) deliver(ctx context.Context, s *mailer.Session, d store.Delivery) error {
	inv, err := h.invoices.GetInvoice(ctx, d.Invoice)
	if err != nil {
		return fmt.Errorf("email %s: %w", d.Invoice, err)
	}
	if inv.Status == invoice.Void || inv.Kind == invoice.Interim {
		err := h.outbox.CancelDelivery(ctx, d.ID, "invoice "+string(inv.Status)+", not sent", h.now())
		if errors.Is(err, store.ErrDeliveryState) {
			return nil // already cancelled, or claimed by another sender
		}
		return err
	}
	msgID, err := mailer.NewMessageID(d.Invoice, h.domain)
	if err != nil {
		return err
	}
	claimed, ok, err := h.outbox.ClaimDelivery(ctx, d.ID, msgID, h.now())
	if err != nil {
		return err
	}
	if !ok {
		return nil // another worker or process has it
	}
	h.mu.Lock()
	h.tried[d.ID]++
	h.mu.Unlock()
	log := h.log.With("outbox", d.ID, "invoice", d.Invoice, "message_id", claimed.MessageID, "attempt", claimed.Attempts)
	var sendErr error
	msg, buildErr := h.message(claimed, inv)
	if buildErr == nil {
		sendErr = s.Send(ctx, msg)
	}
	o := h.outcome(claimed, msg, buildErr, sendErr)
	if o.State != store.DeliveryPending {
		h.mu.Lock()
		delete(h.rendered, d.Invoice) // no further attempt in this run
		h.mu.Unlock()
	}
	if err := h.outbox.CompleteDelivery(ctx, d.ID, o); err != nil {
		// The entry stays "sending": the next run reconciles it to unknown, never resends it.
		return fmt.Errorf("email %s: record the outcome (%s): %w", d.Invoice, o.State, err)
	}
	switch o.State {
	case store.DeliverySent:
		log.Info("invoice emailed", "to", len(claimed.To), "bcc", len(claimed.Bcc))
	case store.DeliveryPending:
		log.Warn("invoice email deferred", "error", o.Error, "next_attempt", o.NextAttempt)
	default:
		log.Error("invoice email "+string(o.State), "error", o.Error)
	}
	return nil
}

// outcome classifies the result of one attempt.
func (h *Email) outcome(d store.Delivery, msg *gomail.Msg, buildErr, sendErr error) store.DeliveryOutcome {
	now := h.now()
	o := store.DeliveryOutcome{At: now}
	if buildErr != nil {
		o.State, o.Error = store.DeliveryFailed, buildErr.Error()
		return o
	}
	switch mailer.Classify(msg, sendErr) {
	case mailer.Sent:
		o.State = store.DeliverySent
		return o
	case mailer.Permanent:
		o.State, o.Error = store.DeliveryFailed, sendErr.Error()
		return o
	case mailer.Uncertain:
		// The message's final dot may have reached the server, and no reply came back.
		o.State = store.DeliveryUnknown
		o.Error = mailer.UncertainHint + " (" + sendErr.Error() + ")"
		return o
	}
	// 4xx replies, refused or broken connections, timeouts: try again later.
	o.Error = sendErr.Error()
	if d.Attempts >= h.mail.MaxAttempts {
		o.State = store.DeliveryFailed
		o.Error = fmt.Sprintf("gave up after %d attempts: %s", d.Attempts, o.Error)
		return o
	}
	o.State, o.NextAttempt = store.DeliveryPending, now.Add(h.mail.Retry.Delay(d.Attempts))
	return o
}

// message builds the email of a claimed entry for the stored invoice inv. Every error is
// permanent for this entry until an operator changes something (an address, a contact, a
// template).
func (h *Email) message(d store.Delivery, inv *invoice.Invoice) (*gomail.Msg, error) {
	if len(d.To) == 0 {
		return nil, fmt.Errorf("customer %s has no billing contact: add one, then `bilean outbox retry %d`", d.CustomerID, d.ID)
	}
	c, err := h.content(inv)
	if err != nil {
		return nil, err
	}
	m, err := mailer.Build(mailer.Message{
		MessageID: d.MessageID,
		Date:      h.now(),
		Headers:   []mailer.Header{{Name: "X-Bilean-Invoice", Value: inv.Number}, {Name: "Auto-Submitted", Value: "auto-generated"}},
		From:      h.mail.From,
		To:        d.To,
		ToField:   "customer " + d.CustomerID + " contacts",
		Bcc:       d.Bcc,
		ReplyTo:   h.mail.ReplyTo,
		Subject:   c.Subject,
		Text:      c.Text,
		HTML:      c.HTML,
	})
	if err != nil {
		return nil, err
	}
	for _, a := range c.atts {
		if err := m.AttachReader(a.name, bytes.NewReader(a.data), gomail.WithFileContentType(contentType(a.name))); err != nil {
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
	}
	return m, nil
}

type attachment struct {
	name string
	data []byte
}

// content is the rendered email of an invoice: its text and HTML, and the attached documents.
type content struct {
	templates.EmailContent
	atts []attachment
}

// content renders the email of the stored invoice inv and its documents, once per run while the
// entry waits for another attempt (see Email.rendered). The attached bytes are only read, never
// changed.
func (h *Email) content(inv *invoice.Invoice) (content, error) {
	h.mu.Lock()
	c, ok := h.rendered[inv.Number]
	h.mu.Unlock()
	if ok {
		return c, nil
	}
	atts, err := h.attachments(inv)
	if err != nil {
		return content{}, err
	}
	names := make([]string, len(atts))
	for i, a := range atts {
		names[i] = a.name
	}
	ec, err := templates.RenderEmail(templates.Email{Invoice: inv, Sender: h.mail.SenderName(), ReplyTo: h.mail.ReplyTo,
		Attachments: names, Location: h.loc})
	if err != nil {
		return content{}, err
	}
	c = content{EmailContent: ec, atts: atts}
	h.mu.Lock()
	h.rendered[inv.Number] = c
	h.mu.Unlock()
	return c, nil
}

// attachments renders the documents of the attached formats from the stored invoice inv, named
// as the render step names their files.
func (h *Email) attachments(inv *invoice.Invoice) ([]attachment, error) {
	out := make([]attachment, 0, len(h.renderers))
	for _, r := range h.renderers {
		name, err := render.FileName(h.filename, inv, r.Extension(), h.loc)
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", r.Format(), err)
		}
		var buf bytes.Buffer
		if err := r.Render(&buf, inv); err != nil {
			return nil, fmt.Errorf("attach %s: render %s: %w", name, r.Format(), err)
		}
		out = append(out, attachment{name, buf.Bytes()})
	}
	return out, nil
}

// contentType names the media type of an attached document.
func contentType(name string) gomail.ContentType {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".pdf":
		return "application/pdf"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	default:
		return gomail.TypeAppOctetStream
	}
}
