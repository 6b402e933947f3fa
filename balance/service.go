package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Service computes, refreshes and acts on prepaid balances. Cloud and Notifier are optional:
// without Cloud the stop and suspend escalations and reconciliation report an error (the
// balance, warnings and audit still work); without Notifier notices are logged.
type Service struct {
	Store    store.Store
	Balances store.Balances
	Config   *config.Config
	Log      *slog.Logger
	Cloud    Cloud
	Notifier Notifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New returns a Service over st.
func New(st store.Store, cfg *config.Config, log *slog.Logger) (*Service, error) {
	if st == nil {
		return nil, errors.New("the balance service needs a store")
	}
	var b store.Balances = st
	if log == nil {
		log = slog.Default()
	}
	return &Service{Store: st, Balances: b, Config: cfg, Log: log}, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return interval.Norm(s.Now())
	}
	return interval.Norm(time.Now())
}

func (s *Service) notifier() Notifier {
	if s.Notifier != nil {
		return s.Notifier
	}
	return LogNotifier{Log: s.Log}
}

// OnCommitted is the listener's hook, called after each committed batch of trigger records: it
// recomputes the burn state of those customers at this second. The balance jobs refresh stale
// customers themselves, so a failed or missing call only delays the update.
func (s *Service) OnCommitted(ctx context.Context, customerIDs []string) error {
	_, err := s.Refresh(ctx, customerIDs, s.now())
	return err
}

// Refresh recomputes the burn states of the customers at second at by running the interim
// pipeline for them up to at, and stores them. It returns how many were stored; customers that
// cannot be priced (no policy, a flavor without price…) are logged and left stale, so they are
// retried.
func (s *Service) Refresh(ctx context.Context, customerIDs []string, at time.Time) (int, error) {
	if len(customerIDs) == 0 {
		return 0, nil
	}
	at = interval.Norm(at)
	marks, err := s.Balances.BurnMarks(ctx, customerIDs)
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var items []*pipeline.Item
	env := pipeline.Env{Store: s.Store, Config: s.Config, Log: slog.New(minLevel{s.Log.Handler(), slog.LevelWarn})}
	run, err := pipeline.Execute(ctx, env, pipeline.Options{
		Mode: pipeline.Interim, Period: interval.MonthOf(at, s.Config.Location()), Until: at, Now: at,
		CustomerIDs: customerIDs,
		OnItem: func(it *pipeline.Item) {
			mu.Lock()
			items = append(items, it)
			mu.Unlock()
		},
	})
	if err != nil {
		return 0, fmt.Errorf("refresh balances: %w", err)
	}
	states := make([]store.BurnState, 0, len(items))
	for _, it := range items {
		if it.Err != nil || it.Invoice == nil {
			if it.Err != nil {
				s.Log.Warn("balance not refreshed", "customer", it.CustomerID, "err", it.Err)
			}
			continue
		}
		st, err := s.state(run, it, at)
		if err != nil {
			s.Log.Warn("balance not refreshed", "customer", it.CustomerID, "err", err)
			continue
		}
		st.Mark = marks[it.CustomerID]
		states = append(states, st)
	}
	if err := s.Balances.PutBurnStates(ctx, states); err != nil {
		return 0, err
	}
	return len(states), nil
}

// state turns one interim item priced up to at into a burn state.
func (s *Service) state(run *pipeline.Run, it *pipeline.Item, at time.Time) (store.BurnState, error) {
	inv := it.Invoice
	st := store.BurnState{CustomerID: it.CustomerID, Currency: inv.Currency, AsOf: at, Accrued: inv.Total}
	var err error
	if st.Settled, err = inv.Payments.Sub(inv.PreviousBalance); err != nil {
		return st, err
	}
	st.Base = inv.BalanceDue.Neg()
	rate, open, each, err := calc.BurnRate(run, it, at, s.Config.Billing.DefaultPolicy)
	if err != nil {
		return st, err
	}
	st.OpenSpans = open
	st.ValidUntil = validUntil(run, it, at, s.Config.Location())
	// The interim invoice rounds each open span's line at at; the balance goes on from the exact
	// amount, so that later it differs from an interim invoice only by that invoice's own
	// rounding of the line (half a cent at most), not by two roundings.
	delta := decimal.Zero
	for _, l := range inv.Lines {
		r, ok := each[l.ResourceID]
		if !ok || !l.End.Equal(at) || l.Amount.IsNeg() || (l.Granularity != "" && l.Granularity != "second") {
			continue
		}
		exact, err := Cost(r, l.Seconds)
		if err == nil {
			var d decimal.Decimal
			if d, err = exact.Sub(l.Amount); err == nil {
				delta, err = delta.Add(d)
			}
		}
		if err != nil {
			return st, fmt.Errorf("exact open amounts: %w", err)
		}
	}
	if !inv.TaxRate.IsZero() {
		f, err := decimal.One.Add(inv.TaxRate)
		if err == nil {
			rate, err = rate.Mul(f)
		}
		if err != nil {
			return st, fmt.Errorf("rate with tax: %w", err)
		}
	}
	st.Rate = rate
	if !delta.IsZero() {
		if !inv.TaxRate.IsZero() {
			f, _ := decimal.One.Add(inv.TaxRate)
			if delta, err = delta.Mul(f); err != nil {
				return st, err
			}
		}
		if st.Accrued, err = st.Accrued.Add(delta); err != nil {
			return st, err
		}
		if st.Base, err = st.Base.Sub(delta); err != nil {
			return st, err
		}
	}
	return st, nil
}

// validUntil is the first second after at where a customer's burn stops being the straight line
// a burn state draws: the end of the billing period (fees and the next invoice's edge), the next
// version of any policy, and the next edge of a subscription or discount of the customer. A
// balance asked for at or after it is recomputed, never extrapolated across it.
func validUntil(run *pipeline.Run, it *pipeline.Item, at time.Time, loc *time.Location) time.Time {
	until := interval.MonthOf(at, loc).End
	next := func(t time.Time) {
		if t.After(at) && t.Before(until) {
			until = t
		}
	}
	for _, p := range run.Policies {
		for _, v := range p.Versions() {
			next(v.EffectiveFrom)
		}
	}
	for _, s := range it.Subscriptions {
		next(s.Start)
		next(s.End)
	}
	for _, d := range it.Discounts {
		next(d.Start)
		next(d.End)
	}
	return until
}

// Status is a customer's balance at one second.
type Status struct {
	CustomerID string          `json:"customer_id"`
	Currency   string          `json:"currency"`
	At         time.Time       `json:"at"`
	Balance    decimal.Decimal `json:"balance"`         // exact
	Rounded    decimal.Decimal `json:"balance_rounded"` // with billing.rounding
	Rate       decimal.Decimal `json:"rate_per_hour"`   // tax included
	OpenSpans  int             `json:"open_spans"`
	// TimeLeft is how long the balance lasts at the current rate (nil: nothing burns).
	TimeLeft *time.Duration `json:"-"`
	// TimeLeftSeconds is TimeLeft in seconds, for JSON.
	TimeLeftSeconds *int64    `json:"time_left_seconds,omitempty"`
	RunsOutAt       time.Time `json:"runs_out_at,omitzero"`
	AsOf            time.Time `json:"as_of"`
	Freeze          string    `json:"freeze,omitempty"`
}

// Balance returns the balance of a customer at second at, refreshing its burn state first when
// it is missing or stale. The balance itself is one stored row and two decimal operations.
func (s *Service) Balance(ctx context.Context, customerID string, at time.Time) (Status, error) {
	at = interval.Norm(at)
	b, err := s.Balances.BurnState(ctx, customerID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (b.Stale || b.AsOf.After(at.Add(time.Second)) ||
		(!b.ValidUntil.IsZero() && !at.Before(b.ValidUntil)))) {
		n, rerr := s.Refresh(ctx, []string{customerID}, at)
		if rerr != nil {
			return Status{}, rerr
		}
		if n == 0 {
			if cs, _ := s.Store.GetCustomers(ctx, []string{customerID}); len(cs) == 0 {
				return Status{}, fmt.Errorf("customer %s: %w", customerID, store.ErrNotFound)
			}
			return Status{}, fmt.Errorf("customer %s: the balance cannot be priced (see the warning above, or run `bilean interim %s`)", customerID, customerID)
		}
		b, err = s.Balances.BurnState(ctx, customerID)
	}
	if err != nil {
		return Status{}, err
	}
	st, err := StatusAt(b, at, s.Config.Billing.Rounding.Round)
	if err != nil {
		return st, err
	}
	fs, err := s.Balances.GetFreezes(ctx, []string{customerID})
	if err != nil {
		return st, err
	}
	st.Freeze = fs[customerID].State
	return st, nil
}

// StatusAt computes a Status from a burn state; round brings the balance to the currency.
func StatusAt(b store.BurnState, at time.Time, round func(decimal.Decimal) decimal.Decimal) (Status, error) {
	v, err := At(b, at)
	if err != nil {
		return Status{}, err
	}
	st := Status{CustomerID: b.CustomerID, Currency: b.Currency, At: at, Balance: v, Rounded: round(v), Rate: b.Rate, OpenSpans: b.OpenSpans, AsOf: b.AsOf}
	if left, ok := TimeLeft(v, b.Rate); ok {
		st.TimeLeft = &left
		secs := int64(left / time.Second)
		st.TimeLeftSeconds = &secs
		if z, ok := ZeroAt(b); ok {
			st.RunsOutAt = z
		}
	}
	return st, nil
}

// RechargeResult says what a recharge did.
type RechargeResult struct {
	Payment billing.Payment
	Status  Status
	// Lifted is true when the recharge lifted a freeze; Messages says what was restarted.
	Lifted   bool
	Messages []string
}

// Recharge records a payment for a customer (in its currency when currency is empty), refreshes
// its balance and, when the balance is positive again, lifts a depletion or freeze: servers
// Bilean stopped are started, suspended ones resumed, and the customer is active again.
func (s *Service) Recharge(ctx context.Context, customerID string, amount decimal.Decimal, currency, note string) (RechargeResult, error) {
	var res RechargeResult
	if !amount.IsPos() {
		return res, fmt.Errorf("recharge %s: amount %s: want more than 0", customerID, amount)
	}
	cs, err := s.Store.GetCustomers(ctx, []string{customerID})
	if err != nil {
		return res, err
	}
	if len(cs) == 0 {
		return res, fmt.Errorf("recharge: customer %s does not exist", customerID)
	}
	c := cs[0]
	if currency == "" {
		currency = c.Currency
	}
	if currency != c.Currency {
		return res, fmt.Errorf("recharge %s: currency %s: the customer is billed in %s", customerID, currency, c.Currency)
	}
	now := s.now()
	p, err := s.Balances.Recharge(ctx, billing.Payment{CustomerID: customerID, Amount: amount, Currency: currency, ReceivedAt: now}, note)
	if err != nil {
		return res, err
	}
	res.Payment = p
	detail := fmt.Sprintf("%s %s, payment %s", amount, currency, p.Reference)
	if note != "" {
		detail += ": " + note
	}
	if err := s.Balances.AddAudit(ctx, []store.AuditEvent{{At: now, CustomerID: customerID, Action: "recharge", Target: p.Reference, Detail: detail}}); err != nil {
		return res, err
	}
	// Balances count payments received before a second: the recharge is in from the next one.
	if res.Status, err = s.Balance(ctx, customerID, now.Add(time.Second)); err != nil {
		return res, err
	}
	fs, err := s.Balances.GetFreezes(ctx, []string{customerID})
	if err != nil {
		return res, err
	}
	f, ok := fs[customerID]
	if !ok || !res.Status.Balance.IsPos() {
		if ok && f.State != store.FreezeWarned {
			res.Messages = append(res.Messages, fmt.Sprintf("the balance is still %s %s: the customer stays %s", res.Status.Rounded, currency, f.State))
		}
		return res, nil
	}
	switch f.State {
	case store.FreezeWarned:
		low, err := Low(res.Status.Balance, res.Status.Rate, s.Config.Balance.WarnBefore)
		if err == nil && !low {
			err = s.Balances.PutFreeze(ctx, store.Freeze{CustomerID: customerID})
		}
		return res, err
	default:
		msgs, err := s.lift(ctx, c, f, now, "recharge "+p.Reference)
		res.Messages = append(res.Messages, msgs...)
		res.Lifted = err == nil
		if res.Lifted {
			res.Status.Freeze = ""
		}
		return res, err
	}
}

// minLevel is a slog handler that drops records under a level (the interim runs a refresh makes
// would otherwise log two lines each).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
