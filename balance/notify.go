package balance

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/mailer"
	"github.com/bilean/bilean/store"
	"github.com/bilean/bilean/templates"
	"github.com/govalues/decimal"
	gomail "github.com/wneessen/go-mail"
)

// Audit actions of the emailed notices. Each names, in Target, the notice it is about
// ("<kind>@<RFC 3339 second>", with the customer in CustomerID).
const (
	// AuditEmailQueued records a notice to email, before anything is sent; its Detail is the
	// notice as JSON with the Message-ID every attempt uses. It stays open until one of sent,
	// failed, unknown or dropped follows.
	AuditEmailQueued = "notice_email_queued"
	// AuditEmailSending is written (and committed) before the message is handed to the server.
	AuditEmailSending = "notice_email_sending"
	// AuditEmailSent: the server accepted the message (Detail: Message-ID and recipients).
	AuditEmailSent = "notice_email_sent"
	// AuditEmailDeferred: a transient failure; the next jobs pass tries again.
	AuditEmailDeferred = "notice_email_deferred"
	// AuditEmailFailed: refused for good (5xx, no contact, bad address) or out of attempts.
	AuditEmailFailed = "notice_email_failed"
	// AuditEmailUnknown: interrupted after the message may have been accepted; never resent.
	AuditEmailUnknown = "notice_email_unknown"
	// AuditEmailDropped: not sent because the customer's state changed before a retry could
	// send it (a warning after a recharge would be wrong).
	AuditEmailDropped = "notice_email_dropped"
)

// UseMail makes the service email its notices when mail.host is set (an EmailNotifier); without
// it the notices stay logged and audited (LogNotifier).
func (s *Service) UseMail() error {
	if s.Config == nil || !s.Config.Mail.Enabled() {
		return nil
	}
	n, err := NewEmailNotifier(s)
	if err != nil {
		return err
	}
	s.Notifier = n
	return nil
}

// EmailNotifier emails balance notices (low-balance warning, depletion, freeze, lift) to the
// customer's billing contacts, with the accountants of mail.bcc as blind copies, through the SMTP
// server of the mail section.
//
// # At most once per state change, and not lost
//
// The balance jobs call Notify once per state change, after storing the change. Notify first
// records the notice in the audit (AuditEmailQueued, with the Message-ID all its attempts use),
// then writes AuditEmailSending and hands the message to the server, then records the outcome.
// A notice whose queued entry has no final outcome (sent, failed, unknown, dropped) is open:
//
//   - The server could not be reached, or answered with a transient error (4xx): the notice
//     stays open and Flush, which RunPass calls at the start of every jobs pass, tries it again.
//     Only attempts that reached the server count towards mail.max_attempts; an outage of the
//     server alone never makes a notice give up. After a connection failure, no other notice is
//     tried until the next pass, so a dead server costs one timeout per pass, not one per notice.
//   - Before a retry, the notice is checked against the customer's current escalation state: a
//     warning whose customer has recharged since, a depletion already lifted, is dropped
//     (AuditEmailDropped) rather than sent late and wrong.
//   - A notice found "sending" (its sender died after the claim, or the connection broke after
//     the message) for longer than mail.reconcile_after is never sent again: the server may have
//     accepted it, and two warnings are worse than a missing one. It is marked unknown and logged
//     with its Message-ID, which the mail server's log can confirm.
//   - A 5xx reply or a customer without a billing contact fails the notice for good; Notify and
//     Flush report it as an error so that `bilean jobs run` says so.
//
// One process sends at a time per notice: Notify and Flush hold a lock. Two processes (the
// listener and a `bilean jobs run` at the same second) could both retry one open notice; the
// balance jobs themselves have the same window, and running one jobs loop per deployment avoids
// both.
//
// Notices of a dry-run freeze are logged, not emailed: nothing was stopped.
type EmailNotifier struct {
	store    store.Store
	balances store.Balances
	cfg      *config.Config
	log      *slog.Logger
	client   *gomail.Client
	domain   string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	// down is set when the server could not be reached; Notify then only queues until the next
	// Flush tries again.
	down error
}

var _ Notifier = (*EmailNotifier)(nil)

// NewEmailNotifier builds the notifier from the mail section of s.Config, with s's store and log.
func NewEmailNotifier(s *Service) (*EmailNotifier, error) {
	if s.Config == nil || !s.Config.Mail.Enabled() {
		return nil, errors.New("mail.host is not set: balance notices cannot be emailed (see the mail section of bilean.yaml)")
	}
	n := &EmailNotifier{store: s.Store, balances: s.Balances, cfg: s.Config, log: s.Log, Now: s.Now}
	if n.log == nil {
		n.log = slog.Default()
	}
	var err error
	if n.domain, err = mailer.Domain(s.Config.Mail.From); err != nil {
		return nil, err
	}
	if n.client, err = mailer.NewClient(s.Config.Mail); err != nil {
		return nil, err
	}
	return n, nil
}

func (e *EmailNotifier) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// queued is a notice as the audit keeps it until it is sent.
type queued struct {
	Kind      string          `json:"kind"`
	At        time.Time       `json:"at"`
	Balance   decimal.Decimal `json:"balance"`
	Rate      decimal.Decimal `json:"rate_per_hour"`
	TimeLeft  int64           `json:"time_left_seconds,omitempty"`
	Detail    string          `json:"detail,omitempty"`
	DryRun    bool            `json:"dry_run,omitempty"`
	MessageID string          `json:"message_id"`

	customerID string
	key        string
	attempts   int       // attempts that reached the server
	sendingAt  time.Time // the last step was "sending", at this time
}

func noticeKey(kind string, at time.Time) string { return kind + "@" + at.UTC().Format(time.RFC3339) }

// Notify records the notice and emails it. It returns nil when the notice was sent or is kept for
// the next pass, and an error when it failed for good or could not even be recorded.
func (e *EmailNotifier) Notify(ctx context.Context, n Notice) error {
	if n.DryRun && n.Kind == NoticeFrozen {
		return LogNotifier{Log: e.log}.Notify(ctx, n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q := queued{Kind: n.Kind, At: n.At.UTC(), Balance: n.Balance, Rate: n.Rate, TimeLeft: int64(n.TimeLeft / time.Second),
		Detail: n.Detail, DryRun: n.DryRun, customerID: n.Customer.ID, key: noticeKey(n.Kind, n.At)}
	var err error
	if q.MessageID, err = mailer.NewMessageID(n.Customer.ID+"."+n.Kind, e.domain); err != nil {
		return err
	}
	detail, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("queue %s email for %s: %w", n.Kind, n.Customer.ID, err)
	}
	if err := e.audit(ctx, q, AuditEmailQueued, string(detail)); err != nil {
		// Not recorded, so not retried: at least the log has it.
		_ = LogNotifier{Log: e.log}.Notify(ctx, n)
		return fmt.Errorf("queue %s email for %s: %w", n.Kind, n.Customer.ID, err)
	}
	if e.down != nil {
		e.log.Warn("balance notice kept for the next jobs pass", "kind", q.Kind, "customer", q.customerID, "message_id", q.MessageID, "err", e.down)
		return e.audit(ctx, q, AuditEmailDeferred, fmt.Sprintf("not tried: the mail server was unreachable (%v); kept for the next jobs pass", e.down))
	}
	s := mailer.NewSession(e.client)
	defer s.Close()
	_, err = e.attempt(ctx, s, q, true, nil)
	return err
}

// FlushReport counts what one Flush did with the open notices.
type FlushReport struct {
	Sent, Deferred, Kept, Failed, Unknown, Dropped int
	Errors                                         []string
}

// Flush tries again every open notice, oldest first (see EmailNotifier). It returns an error
// only when the store fails; notices that failed for good are in the report's Errors.
func (e *EmailNotifier) Flush(ctx context.Context) (FlushReport, error) {
	var rep FlushReport
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = nil
	open, err := e.open(ctx)
	if err != nil || len(open) == 0 {
		return rep, err
	}
	s := mailer.NewSession(e.client)
	defer s.Close()
	now := e.now()
	for _, q := range open {
		log := e.log.With("kind", q.Kind, "customer", q.customerID, "message_id", q.MessageID)
		if !q.sendingAt.IsZero() {
			if now.Sub(q.sendingAt) < e.cfg.Mail.ReconcileAfter {
				continue // another process may be sending it right now
			}
			log.Warn("balance notice email uncertain: not resent", "hint", "check the mail server's log for <"+q.MessageID+">")
			if err := e.audit(ctx, q, AuditEmailUnknown, "interrupted while sending Message-ID <"+q.MessageID+
				">: the server may have accepted it; not resent (check the mail server's log)"); err != nil {
				return rep, err
			}
			rep.Unknown++
			continue
		}
		why, f, err := e.superseded(ctx, q)
		if err != nil {
			return rep, err
		} else if why != "" {
			log.Info("balance notice dropped", "reason", why)
			if err := e.audit(ctx, q, AuditEmailDropped, "not sent: "+why); err != nil {
				return rep, err
			}
			rep.Dropped++
			continue
		}
		if e.down != nil {
			rep.Kept++
			continue
		}
		res, err := e.attempt(ctx, s, q, false, &f)
		switch {
		case errors.Is(err, errStore):
			return rep, err
		case err != nil:
			rep.Failed++
			rep.Errors = append(rep.Errors, fmt.Sprintf("customer %s: %v", q.customerID, err))
		case res == mailer.Sent:
			rep.Sent++
		case e.down != nil:
			rep.Kept++ // this one found the server unreachable
		default:
			rep.Deferred++
		}
	}
	if rep.Kept > 0 {
		e.log.Warn("balance notices kept for the next jobs pass: the mail server is unreachable", "notices", rep.Kept, "err", e.down)
	}
	return rep, nil
}

// errStore marks errors of the store (not of the mail), which stop a Flush.
var errStore = errors.New("store")

// attempt sends one open notice over s and records the outcome; f is the customer's escalation
// state when the caller has just read it (nil: read it if the notice needs it). It returns the
// classified result, and an error when the notice failed for good (or the store failed, wrapping
// errStore).
func (e *EmailNotifier) attempt(ctx context.Context, s *mailer.Session, q queued, first bool, f *store.Freeze) (mailer.Result, error) {
	log := e.log.With("kind", q.Kind, "customer", q.customerID, "message_id", q.MessageID)
	storeErr := func(err error) (mailer.Result, error) {
		return mailer.Transient, fmt.Errorf("%w: email %s to %s: %w", errStore, q.Kind, q.customerID, err)
	}
	fail := func(msg string) (mailer.Result, error) {
		log.Error("balance notice email failed", "err", msg)
		if err := e.audit(ctx, q, AuditEmailFailed, msg); err != nil {
			return storeErr(err)
		}
		return mailer.Permanent, fmt.Errorf("email %s to %s: %s", q.Kind, q.customerID, msg)
	}
	c, err := e.customer(ctx, q.customerID)
	if err != nil {
		return storeErr(err)
	}
	if len(c.Contacts) == 0 {
		return fail(fmt.Sprintf("customer %s has no billing contact: nobody to tell", c.ID))
	}
	msg, err := e.message(ctx, c, q, f)
	if err != nil {
		if errors.Is(err, errStore) {
			return mailer.Transient, err
		}
		return fail(err.Error())
	}
	if err := s.Connect(ctx); err != nil {
		e.down = err
		if first {
			log.Warn("balance notice kept for the next jobs pass", "err", err)
			if err := e.audit(ctx, q, AuditEmailDeferred, err.Error()+"; kept for the next jobs pass"); err != nil {
				return storeErr(err)
			}
		}
		return mailer.Transient, nil
	}
	q.attempts++
	if err := e.audit(ctx, q, AuditEmailSending, fmt.Sprintf("Message-ID <%s>, attempt %d", q.MessageID, q.attempts)); err != nil {
		return storeErr(err)
	}
	sendErr := s.Send(ctx, msg)
	res := mailer.Classify(msg, sendErr)
	switch res {
	case mailer.Sent:
		to := strings.Join(c.Contacts, ", ")
		detail := fmt.Sprintf("Message-ID <%s> accepted for %s", q.MessageID, to)
		if n := len(e.cfg.Mail.Bcc); n > 0 {
			detail += fmt.Sprintf(" and %d BCC", n)
		}
		if err := e.audit(ctx, q, AuditEmailSent, detail); err != nil {
			// It stays "sending": a later Flush marks it unknown, never resends it.
			return storeErr(err)
		}
		log.Info("balance notice emailed", "to", len(c.Contacts), "bcc", len(e.cfg.Mail.Bcc), "attempt", q.attempts)
		return res, nil
	case mailer.Permanent:
		return fail(sendErr.Error())
	case mailer.Uncertain:
		log.Error("balance notice email uncertain: not resent", "err", sendErr)
		if err := e.audit(ctx, q, AuditEmailUnknown, mailer.UncertainHint+" (Message-ID <"+q.MessageID+">): "+sendErr.Error()); err != nil {
			return storeErr(err)
		}
		return res, fmt.Errorf("email %s to %s: %s", q.Kind, q.customerID, mailer.UncertainHint)
	}
	if q.attempts >= e.cfg.Mail.MaxAttempts {
		return fail(fmt.Sprintf("gave up after %d attempts: %v", q.attempts, sendErr))
	}
	log.Warn("balance notice email deferred", "err", sendErr, "attempt", q.attempts)
	if err := e.audit(ctx, q, AuditEmailDeferred, fmt.Sprintf("attempt %d: %v; kept for the next jobs pass", q.attempts, sendErr)); err != nil {
		return storeErr(err)
	}
	return res, nil
}

func (e *EmailNotifier) audit(ctx context.Context, q queued, action, detail string) error {
	return e.balances.AddAudit(ctx, []store.AuditEvent{{At: e.now(), CustomerID: q.customerID, Action: action, Target: q.key, Detail: detail, DryRun: q.DryRun}})
}

func (e *EmailNotifier) customer(ctx context.Context, id string) (billing.Customer, error) {
	cs, err := e.store.GetCustomers(ctx, []string{id})
	if err != nil {
		return billing.Customer{}, err
	}
	if len(cs) == 0 {
		return billing.Customer{ID: id}, nil
	}
	return cs[0], nil
}

// message builds the email of a notice for customer c, whose escalation state is f when the
// caller read it (nil: read here when the notice needs it). Errors are permanent, except those of
// the store (wrapping errStore).
func (e *EmailNotifier) message(ctx context.Context, c billing.Customer, q queued, known *store.Freeze) (*gomail.Msg, error) {
	m := e.cfg.Mail
	b := e.cfg.Balance
	data := templates.BalanceNotice{Kind: q.Kind, CustomerID: c.ID, CustomerName: c.Name, Currency: c.Currency, At: q.At,
		Balance: e.cfg.Billing.Rounding.Round(q.Balance), Rate: q.Rate.Trim(0), Escalation: b.Escalation, GracePeriod: b.GracePeriod,
		Sender: m.SenderName(), ReplyTo: m.ReplyTo, Location: e.cfg.Location()}
	var f store.Freeze
	if known != nil {
		f = *known
	} else if q.Kind == NoticeDepleted || q.Kind == NoticeFrozen {
		fs, err := e.balances.GetFreezes(ctx, []string{c.ID})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errStore, err)
		}
		f = fs[c.ID]
	}
	switch q.Kind {
	case NoticeLow:
		data.TimeLeft = time.Duration(q.TimeLeft) * time.Second
		data.RunsOut = q.At.Add(data.TimeLeft)
	case NoticeDepleted:
		data.RunsOut = cmp.Or(f.DepletedAt, q.At)
		if b.Escalation != config.EscalationNotify {
			data.ActBy = data.RunsOut.Add(b.GracePeriod)
		}
	case NoticeFrozen:
		data.RunsOut = cmp.Or(f.DepletedAt, q.At)
		data.Action, data.Servers = f.Action, f.Servers
	case NoticeUnfrozen:
		data.Reason = q.Detail
		// The servers this lift started or resumed are in the audit at the same second.
		evs, err := e.balances.ListAudit(ctx, store.AuditFilter{CustomerID: c.ID})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errStore, err)
		}
		for _, ev := range evs {
			if ev.At.Equal(q.At) && !ev.DryRun && (ev.Action == "start" || ev.Action == "resume") {
				data.Servers = append(data.Servers, ev.Target)
				data.Action = map[string]string{"start": config.EscalationStop, "resume": config.EscalationSuspend}[ev.Action]
			}
		}
	}
	content, err := templates.RenderBalanceNotice(data)
	if err != nil {
		return nil, err
	}
	return mailer.Build(mailer.Message{
		MessageID: q.MessageID,
		Date:      e.now(),
		Headers: []mailer.Header{{Name: "X-Bilean-Notice", Value: q.Kind}, {Name: "X-Bilean-Customer", Value: c.ID},
			{Name: "Auto-Submitted", Value: "auto-generated"}},
		From:    m.From,
		To:      c.Contacts,
		ToField: "customer " + c.ID + " contacts",
		Bcc:     m.Bcc,
		ReplyTo: m.ReplyTo,
		Subject: content.Subject,
		Text:    content.Text,
		HTML:    content.HTML,
	})
}

// superseded says why an open notice no longer fits the customer's escalation state (empty when
// it still does), and returns that state for the message.
func (e *EmailNotifier) superseded(ctx context.Context, q queued) (string, store.Freeze, error) {
	fs, err := e.balances.GetFreezes(ctx, []string{q.customerID})
	if err != nil {
		return "", store.Freeze{}, err
	}
	f := fs[q.customerID]
	state := cmp.Or(f.State, "active")
	switch q.Kind {
	case NoticeLow:
		if f.State == store.FreezeWarned && f.WarnedAt.Equal(q.At) {
			return "", f, nil
		}
	case NoticeDepleted:
		if (f.State == store.FreezeDepleted || f.State == store.FreezeFrozen) && !f.DepletedAt.After(q.At) {
			return "", f, nil
		}
	case NoticeFrozen:
		if f.State == store.FreezeFrozen && f.FrozenAt.Equal(q.At) {
			return "", f, nil
		}
	case NoticeUnfrozen:
		if f.State == store.FreezeNone || f.State == store.FreezeWarned {
			return "", f, nil
		}
	default:
		return "unknown notice kind " + q.Kind, f, nil
	}
	return "superseded: the customer is " + state + " now", f, nil
}

// open returns the notices queued and not finished, oldest first, with their attempts so far.
func (e *EmailNotifier) open(ctx context.Context) ([]queued, error) {
	qs, err := e.balances.ListAudit(ctx, store.AuditFilter{Action: AuditEmailQueued})
	if err != nil || len(qs) == 0 {
		return nil, err
	}
	type id struct{ customer, key string }
	done := map[id]bool{}
	for _, a := range []string{AuditEmailSent, AuditEmailFailed, AuditEmailUnknown, AuditEmailDropped} {
		evs, err := e.balances.ListAudit(ctx, store.AuditFilter{Action: a})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			done[id{ev.CustomerID, ev.Target}] = true
		}
	}
	var open []queued
	byID := map[id]int{}
	for _, ev := range qs {
		k := id{ev.CustomerID, ev.Target}
		if done[k] {
			continue
		}
		var q queued
		if err := json.Unmarshal([]byte(ev.Detail), &q); err != nil {
			e.log.Error("balance notice unreadable in the audit: skipped", "audit", ev.ID, "customer", ev.CustomerID, "err", err)
			continue
		}
		q.customerID, q.key = ev.CustomerID, ev.Target
		byID[k] = len(open)
		open = append(open, q)
	}
	if len(open) == 0 {
		return nil, nil
	}
	// Attempts and the last step, from each customer's own (indexed) audit trail.
	customers := map[string]bool{}
	for _, q := range open {
		customers[q.customerID] = true
	}
	for _, c := range slices.Sorted(maps.Keys(customers)) {
		evs, err := e.balances.ListAudit(ctx, store.AuditFilter{CustomerID: c})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			i, ok := byID[id{ev.CustomerID, ev.Target}]
			if !ok {
				continue
			}
			switch ev.Action {
			case AuditEmailSending:
				open[i].attempts++
				open[i].sendingAt = ev.At
			case AuditEmailDeferred:
				open[i].sendingAt = time.Time{}
			}
		}
	}
	return open, nil
}

// RunPass is one pass of the balance jobs: it first tries again the notices an EmailNotifier
// kept from earlier passes (Flush), then runs the jobs (RunJobs), whose new notices are sent at
// once. Notices that failed for good are added to the report's errors. `bilean jobs run` and the
// listener's loop (LoopPasses) run it.
func (s *Service) RunPass(ctx context.Context) (JobReport, error) {
	var flushErrs []string
	if f, ok := s.Notifier.(interface {
		Flush(context.Context) (FlushReport, error)
	}); ok {
		fr, err := f.Flush(ctx)
		if err != nil {
			// The mail is not the jobs: they still run.
			s.Log.Error("balance notices not retried", "err", err)
			flushErrs = append(flushErrs, "retry balance notices: "+err.Error())
		}
		flushErrs = append(flushErrs, fr.Errors...)
	}
	rep, err := s.RunJobs(ctx)
	rep.Errors = append(flushErrs, rep.Errors...)
	return rep, err
}
