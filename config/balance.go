package config

import (
	"errors"
	"fmt"
	"time"
)

// Escalations: what happens when a prepaid balance reaches zero.
const (
	EscalationNotify  = "notify"  // tell the customer and the operator, nothing else
	EscalationStop    = "stop"    // stop the project's servers after the grace period
	EscalationSuspend = "suspend" // suspend them instead
)

// Balance configures prepaid balances: warning threshold, escalation (notify, stop, suspend),
// grace period, dry run, and the scheduled jobs.
//
//	balance:
//	  warn_before: 72h        # warn when the time left at the current burn rate is under this
//	  escalation: notify      # notify | stop | suspend, when the balance reaches zero
//	  grace_period: 24h       # from the balance reaching zero to stop/suspend
//	  dry_run: false          # log and audit the actions without calling OpenStack
//	  job_interval: 5m        # how often `bilean listen` runs the jobs
//	  refresh_after: 1h       # recompute a burn state at least this often
type Balance struct {
	WarnBefore   time.Duration `yaml:"warn_before"`
	Escalation   string        `yaml:"escalation"`
	GracePeriod  time.Duration `yaml:"grace_period"`
	DryRun       bool          `yaml:"dry_run"`
	JobInterval  time.Duration `yaml:"job_interval"`
	RefreshAfter time.Duration `yaml:"refresh_after"`
}

func (s *Balance) defaults() {
	if s.WarnBefore == 0 {
		s.WarnBefore = 72 * time.Hour
	}
	if s.Escalation == "" {
		s.Escalation = EscalationNotify
	}
	if s.GracePeriod == 0 {
		s.GracePeriod = 24 * time.Hour
	}
	if s.JobInterval == 0 {
		s.JobInterval = 5 * time.Minute
	}
	if s.RefreshAfter == 0 {
		s.RefreshAfter = time.Hour
	}
}

func (s *Balance) validate(add func(field string, err error)) {
	if s.WarnBefore < 0 {
		add("balance.warn_before", fmt.Errorf("%s: want 0 or more", s.WarnBefore))
	}
	switch s.Escalation {
	case EscalationNotify, EscalationStop, EscalationSuspend:
	default:
		add("balance.escalation", fmt.Errorf("%q: want notify, stop or suspend", s.Escalation))
	}
	if s.GracePeriod < 0 {
		add("balance.grace_period", fmt.Errorf("%s: want 0 or more", s.GracePeriod))
	}
	if s.JobInterval < time.Second {
		add("balance.job_interval", errors.New(s.JobInterval.String()+": want 1s or more"))
	}
	if s.RefreshAfter < time.Second {
		add("balance.refresh_after", errors.New(s.RefreshAfter.String()+": want 1s or more"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"warn_before", s.WarnBefore}, {"grace_period", s.GracePeriod}} {
		if d.v%time.Second != 0 {
			add("balance."+d.name, fmt.Errorf("%s: want whole seconds", d.v))
		}
	}
}
