package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Notice kinds.
const (
	NoticeLow      = "low_balance_warning" // time left at the current rate is under warn_before
	NoticeDepleted = "depleted"            // the balance reached zero
	NoticeFrozen   = "frozen"              // the escalation stopped or suspended servers
	NoticeUnfrozen = "unfrozen"            // a recharge (or a credit) lifted the freeze
)

// Notice is what a customer's contacts and the operator are told.
type Notice struct {
	Kind     string
	Customer billing.Customer
	At       time.Time
	Balance  decimal.Decimal
	Rate     decimal.Decimal // per hour
	TimeLeft time.Duration   // for NoticeLow
	Detail   string
	DryRun   bool
}

// Notifier delivers notices (e.g. by email once the email handler exists).
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// LogNotifier writes notices to the log; it is the default Notifier.
type LogNotifier struct{ Log *slog.Logger }

// Notify logs the notice at warning level.
func (l LogNotifier) Notify(_ context.Context, n Notice) error {
	l.Log.Warn("balance notice", "kind", n.Kind, "customer", n.Customer.ID, "contacts", n.Customer.Contacts,
		"balance", n.Balance.String(), "rate_per_hour", n.Rate.String(), "time_left", n.TimeLeft, "detail", n.Detail, "dry_run", n.DryRun)
	return nil
}

// JobReport counts what one pass of the jobs did.
type JobReport struct {
	Refreshed int
	Checked   int
	Warned    int
	Depleted  int
	Frozen    int
	Lifted    int
	Errors    []string
}

// RunJobs runs the scheduled balance jobs once at the service's clock: it refreshes the burn
// states that are missing, stale, from an earlier billing period or older than refresh_after;
// then, for every customer, sends the low-balance warning, records the depletion, applies the
// escalation after the grace period, or lifts a freeze whose balance is positive again. Each
// notice and action is sent or taken once per state change and audited.
func (s *Service) RunJobs(ctx context.Context) (JobReport, error) {
	var rep JobReport
	now := s.now()
	cutoff := now.Add(-s.Config.Balance.RefreshAfter)
	if ps := interval.MonthOf(now, s.Config.Location()).Start; ps.After(cutoff) {
		cutoff = ps
	}
	stale, err := s.Balances.StaleCustomers(ctx, cutoff, now, 0)
	if err != nil {
		return rep, err
	}
	batch := max(s.Config.Pipeline.BatchSize, 1)
	for i := 0; i < len(stale); i += batch {
		n, err := s.Refresh(ctx, stale[i:min(i+batch, len(stale))], now)
		if err != nil {
			return rep, err
		}
		rep.Refreshed += n
	}
	const page = 1000
	var chunk []store.BurnState
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk = chunk[:0] }()
		return s.check(ctx, chunk, now, &rep)
	}
	err = s.Balances.EachBurnState(ctx, func(b store.BurnState) error {
		chunk = append(chunk, b)
		if len(chunk) == page {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return rep, err
}

// check evaluates one page of burn states.
func (s *Service) check(ctx context.Context, states []store.BurnState, now time.Time, rep *JobReport) error {
	ids := make([]string, len(states))
	for i, b := range states {
		ids[i] = b.CustomerID
	}
	freezes, err := s.Balances.GetFreezes(ctx, ids)
	if err != nil {
		return err
	}
	cfg := s.Config.Balance
	for _, b := range states {
		rep.Checked++
		v, err := At(b, now)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		f, has := freezes[b.CustomerID]
		if !has {
			f = store.Freeze{CustomerID: b.CustomerID}
		}
		low, err := Low(v, b.Rate, cfg.WarnBefore)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("customer %s: %v", b.CustomerID, err))
			continue
		}
		var actErr error
		switch {
		case v.IsNeg() || (v.IsZero() && b.Rate.IsPos()):
			actErr = s.depleted(ctx, b, f, v, now, rep)
		case low:
			switch f.State {
			case store.FreezeNone:
				actErr = s.warn(ctx, b, f, v, now)
				if actErr == nil {
					rep.Warned++
				}
			case store.FreezeDepleted, store.FreezeFrozen:
				actErr = s.liftByJob(ctx, b, f, now, rep)
			}
		default:
			switch f.State {
			case store.FreezeWarned:
				actErr = s.Balances.PutFreeze(ctx, store.Freeze{CustomerID: b.CustomerID})
			case store.FreezeDepleted, store.FreezeFrozen:
				actErr = s.liftByJob(ctx, b, f, now, rep)
			}
		}
		if actErr != nil {
			s.Log.Error("balance job", "customer", b.CustomerID, "err", actErr)
			rep.Errors = append(rep.Errors, fmt.Sprintf("customer %s: %v", b.CustomerID, actErr))
		}
	}
	return nil
}

func (s *Service) customer(ctx context.Context, id string) billing.Customer {
	cs, err := s.Store.GetCustomers(ctx, []string{id})
	if err != nil || len(cs) == 0 {
		return billing.Customer{ID: id}
	}
	return cs[0]
}

func (s *Service) warn(ctx context.Context, b store.BurnState, f store.Freeze, v decimal.Decimal, now time.Time) error {
	left, _ := TimeLeft(v, b.Rate)
	detail := fmt.Sprintf("balance %s %s lasts %s at %s per hour (threshold %s)", v.Round(6), b.Currency, left, b.Rate, s.Config.Balance.WarnBefore)
	s.Log.Info("low balance", "customer", b.CustomerID, "balance", v.String(), "rate_per_hour", b.Rate.String(), "time_left", left)
	if err := s.Balances.AddAudit(ctx, []store.AuditEvent{{At: now, CustomerID: b.CustomerID, Action: NoticeLow, Detail: detail}}); err != nil {
		return err
	}
	f.State, f.WarnedAt = store.FreezeWarned, now
	if err := s.Balances.PutFreeze(ctx, f); err != nil {
		return err
	}
	return s.notifier().Notify(ctx, Notice{Kind: NoticeLow, Customer: s.customer(ctx, b.CustomerID), At: now, Balance: v, Rate: b.Rate, TimeLeft: left, Detail: detail})
}

// depleted records the balance reaching zero and, after the grace period, applies the escalation.
func (s *Service) depleted(ctx context.Context, b store.BurnState, f store.Freeze, v decimal.Decimal, now time.Time, rep *JobReport) error {
	cfg := s.Config.Balance
	if f.State == store.FreezeNone || f.State == store.FreezeWarned {
		at := now
		if z, ok := ZeroAt(b); ok && z.Before(now) {
			at = z
		}
		f.State, f.DepletedAt = store.FreezeDepleted, at
		detail := fmt.Sprintf("balance %s %s reached zero at %s; escalation %s", v.Round(6), b.Currency, at.Format(time.RFC3339), cfg.Escalation)
		if cfg.Escalation != config.EscalationNotify {
			detail += fmt.Sprintf(" after a grace period of %s (at %s)", cfg.GracePeriod, at.Add(cfg.GracePeriod).Format(time.RFC3339))
		}
		s.Log.Warn("balance depleted", "customer", b.CustomerID, "balance", v.String(), "zero_at", at)
		if err := s.Balances.AddAudit(ctx, []store.AuditEvent{{At: now, CustomerID: b.CustomerID, Action: NoticeDepleted, Detail: detail}}); err != nil {
			return err
		}
		if err := s.Balances.PutFreeze(ctx, f); err != nil {
			return err
		}
		rep.Depleted++
		if err := s.notifier().Notify(ctx, Notice{Kind: NoticeDepleted, Customer: s.customer(ctx, b.CustomerID), At: now, Balance: v, Rate: b.Rate, Detail: detail}); err != nil {
			return err
		}
	}
	if f.State != store.FreezeDepleted || cfg.Escalation == config.EscalationNotify || now.Before(f.DepletedAt.Add(cfg.GracePeriod)) {
		return nil
	}
	return s.freeze(ctx, b, f, v, now, rep)
}

// freeze stops or suspends the project's active servers (or, in a dry run, audits what it would
// do) and records which ones, so a recharge restarts exactly those.
func (s *Service) freeze(ctx context.Context, b store.BurnState, f store.Freeze, v decimal.Decimal, now time.Time, rep *JobReport) error {
	cfg := s.Config.Balance
	if s.Cloud == nil {
		return errors.New("escalation " + cfg.Escalation + ": no OpenStack connection is configured")
	}
	servers, err := s.Cloud.ProjectServers(ctx, b.CustomerID)
	if err != nil {
		return fmt.Errorf("list servers of project %s: %w", b.CustomerID, err)
	}
	var evs []store.AuditEvent
	var done []string
	var errs []error
	for _, sv := range servers {
		if sv.Status != "ACTIVE" {
			continue
		}
		ev := store.AuditEvent{At: now, CustomerID: b.CustomerID, Action: cfg.Escalation, Target: sv.ID, DryRun: cfg.DryRun,
			Detail: fmt.Sprintf("server %s (%s): balance %s %s", sv.ID, sv.Name, v.Round(6), b.Currency)}
		if !cfg.DryRun {
			var err error
			if cfg.Escalation == config.EscalationSuspend {
				err = s.Cloud.Suspend(ctx, sv.ID)
			} else {
				err = s.Cloud.Stop(ctx, sv.ID)
			}
			if err != nil {
				ev.Action += "_failed"
				ev.Detail += ": " + err.Error()
				errs = append(errs, fmt.Errorf("%s server %s: %w", cfg.Escalation, sv.ID, err))
				evs = append(evs, ev)
				continue
			}
		}
		s.Log.Warn("server frozen", "customer", b.CustomerID, "server", sv.ID, "action", cfg.Escalation, "dry_run", cfg.DryRun)
		done = append(done, sv.ID)
		evs = append(evs, ev)
	}
	f.State, f.FrozenAt, f.Action, f.DryRun = store.FreezeFrozen, now, cfg.Escalation, cfg.DryRun
	f.Servers = append(f.Servers, done...)
	if len(errs) > 0 {
		// Keep depleted so the next pass retries; remember what is already stopped.
		f.State = store.FreezeDepleted
	}
	evs = append(evs, store.AuditEvent{At: now, CustomerID: b.CustomerID, Action: NoticeFrozen, DryRun: cfg.DryRun,
		Detail: fmt.Sprintf("%s %d server(s) after the grace period of %s", cfg.Escalation, len(done), cfg.GracePeriod)})
	if len(errs) > 0 {
		evs = evs[:len(evs)-1]
	}
	if err := s.Balances.AddAudit(ctx, evs); err != nil {
		return err
	}
	if err := s.Balances.PutFreeze(ctx, f); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	rep.Frozen++
	return s.notifier().Notify(ctx, Notice{Kind: NoticeFrozen, Customer: s.customer(ctx, b.CustomerID), At: now, Balance: v, Rate: b.Rate, DryRun: cfg.DryRun,
		Detail: fmt.Sprintf("%s %d server(s)", cfg.Escalation, len(done))})
}

func (s *Service) liftByJob(ctx context.Context, b store.BurnState, f store.Freeze, now time.Time, rep *JobReport) error {
	_, err := s.lift(ctx, s.customer(ctx, b.CustomerID), f, now, "balance positive again")
	if err == nil {
		rep.Lifted++
	}
	return err
}

// lift undoes a depletion or freeze: the servers Bilean stopped are started (suspended ones
// resumed), the customer is active again, and it is audited and notified. It returns one message
// per action for the operator.
func (s *Service) lift(ctx context.Context, c billing.Customer, f store.Freeze, now time.Time, reason string) ([]string, error) {
	var msgs []string
	var evs []store.AuditEvent
	var failed []string
	var errs []error
	if f.State == store.FreezeFrozen || len(f.Servers) > 0 {
		action := "start"
		if f.Action == config.EscalationSuspend {
			action = "resume"
		}
		for _, id := range f.Servers {
			ev := store.AuditEvent{At: now, CustomerID: c.ID, Action: action, Target: id, DryRun: f.DryRun, Detail: reason}
			if !f.DryRun {
				if s.Cloud == nil {
					return msgs, fmt.Errorf("%s server %s: no OpenStack connection is configured", action, id)
				}
				var err error
				if action == "resume" {
					err = s.Cloud.Resume(ctx, id)
				} else {
					err = s.Cloud.Start(ctx, id)
				}
				if err != nil {
					ev.Action += "_failed"
					ev.Detail += ": " + err.Error()
					evs = append(evs, ev)
					failed = append(failed, id)
					errs = append(errs, fmt.Errorf("%s server %s: %w", action, id, err))
					continue
				}
			}
			evs = append(evs, ev)
			verb := map[string]string{"start": "started", "resume": "resumed"}[action]
			if f.DryRun {
				msgs = append(msgs, fmt.Sprintf("would have %s server %s (dry run)", verb, id))
			} else {
				msgs = append(msgs, fmt.Sprintf("%s server %s", verb, id))
			}
		}
	}
	if len(errs) > 0 {
		f.Servers = failed
		if err := s.Balances.AddAudit(ctx, evs); err != nil {
			return msgs, err
		}
		if err := s.Balances.PutFreeze(ctx, f); err != nil {
			return msgs, err
		}
		return msgs, errors.Join(errs...)
	}
	evs = append(evs, store.AuditEvent{At: now, CustomerID: c.ID, Action: NoticeUnfrozen, DryRun: f.DryRun,
		Detail: fmt.Sprintf("%s lifted (%s)", f.State, reason)})
	if err := s.Balances.AddAudit(ctx, evs); err != nil {
		return msgs, err
	}
	if err := s.Balances.PutFreeze(ctx, store.Freeze{CustomerID: c.ID}); err != nil {
		return msgs, err
	}
	msgs = append(msgs, fmt.Sprintf("customer %s is no longer %s (%s)", c.ID, f.State, reason))
	s.Log.Info("freeze lifted", "customer", c.ID, "was", f.State, "reason", reason)
	return msgs, s.notifier().Notify(ctx, Notice{Kind: NoticeUnfrozen, Customer: c, At: now, Detail: reason, DryRun: f.DryRun})
}

// Loop runs RunPass (held notices, then the jobs) every balance.job_interval until ctx ends
// (for `bilean listen`). Errors are logged, never fatal.
func (s *Service) Loop(ctx context.Context) {
	t := time.NewTicker(s.Config.Balance.JobInterval)
	defer t.Stop()
	for {
		rep, err := s.RunPass(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.Error("balance jobs", "err", err)
		} else if err == nil {
			s.Log.Debug("balance jobs", "refreshed", rep.Refreshed, "checked", rep.Checked, "warned", rep.Warned,
				"depleted", rep.Depleted, "frozen", rep.Frozen, "lifted", rep.Lifted, "errors", len(rep.Errors))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
