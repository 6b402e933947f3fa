// Package balance keeps prepaid balances exact to the second.
//
// # What the balance is
//
// The balance of a customer at second T is what an interim invoice priced up to T says the
// customer has left, with the sign turned round:
//
//	balance(T) = payments received before T
//	           − totals of the live issued invoices
//	           − what is used and not invoiced yet, priced up to T (usage lines, prorated
//	             subscription fees, late usage, credits, tax: exactly the interim invoice's total)
//
// that is −BalanceDue of `bilean interim CUSTOMER --at T`. A positive balance is credit.
//
// # How it is O(1)
//
// A refresh runs the real interim pipeline for a customer up to a second A (the "as-of") and
// stores a burn state: Base = balance(A) and Rate = the sum, per hour, of every open span's price
// plus the running subscription fees, times (1 + tax rate). Between refreshes nothing but the
// passing of time moves the balance, so
//
//	balance(T) = Base − Rate × (T − A) ÷ 3600
//
// one multiplication and one division, exact in decimal (github.com/govalues/decimal, 19
// significant digits). The rate is never rounded to the currency and never divided down to a
// per-second figure: 0.01 per hour stays 0.01 and a customer burning it is still warned (the
// original Bilean rounded rates to 2 decimals and warned nobody paying under 18 per hour).
//
// The store bumps a per-customer change counter in the same transaction as anything that moves a
// balance (a record opened or closed, a payment, an invoice, a subscription, a policy), so a
// state that a change made stale is found by the jobs even when the listener's hook (OnCommitted)
// did not run. States are also recomputed at the start of each billing period (a subscription
// fee's per-second share depends on the month's length) and after balance.refresh_after.
//
// Between two refreshes the computed balance and the interim invoice differ only by the rounding
// of the open spans' invoice lines (at most half a cent per open span, with scale 2); at a
// refresh they are equal.
package balance

import (
	"fmt"
	"math"
	"time"

	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

var secondsPerHour = decimal.MustNew(3600, 0)

// Cost is what ratePerHour burns in secs seconds: rate × secs ÷ 3600, with the division last.
func Cost(ratePerHour decimal.Decimal, secs int64) (decimal.Decimal, error) {
	if ratePerHour.IsZero() || secs == 0 {
		return decimal.Zero, nil
	}
	num, err := ratePerHour.Mul(decimal.MustNew(secs, 0))
	if err != nil {
		return decimal.Zero, fmt.Errorf("cost of %s per hour over %d s: %w", ratePerHour, secs, err)
	}
	c, err := num.Quo(secondsPerHour)
	if err != nil {
		return decimal.Zero, fmt.Errorf("cost of %s per hour over %d s: %w", ratePerHour, secs, err)
	}
	return c, nil
}

// At returns the balance at t from a burn state.
func At(b store.BurnState, t time.Time) (decimal.Decimal, error) {
	c, err := Cost(b.Rate, t.Unix()-b.AsOf.Unix())
	if err != nil {
		return decimal.Zero, fmt.Errorf("balance of %s: %w", b.CustomerID, err)
	}
	v, err := b.Base.Sub(c)
	if err != nil {
		return decimal.Zero, fmt.Errorf("balance of %s: %w", b.CustomerID, err)
	}
	return v, nil
}

// Low reports whether a positive balance lasts less than window at ratePerHour:
// balance ÷ (rate ÷ 3600) < window, evaluated without any division as
// balance × 3600 < rate × window-seconds. A zero rate never runs out.
func Low(balance, ratePerHour decimal.Decimal, window time.Duration) (bool, error) {
	if !ratePerHour.IsPos() {
		return false, nil
	}
	lhs, err := balance.Mul(secondsPerHour)
	if err != nil {
		return false, fmt.Errorf("time left: %w", err)
	}
	rhs, err := ratePerHour.Mul(decimal.MustNew(int64(window/time.Second), 0))
	if err != nil {
		return false, fmt.Errorf("time left: %w", err)
	}
	return lhs.Cmp(rhs) < 0, nil
}

// TimeLeft is how long balance lasts at ratePerHour, in whole seconds (truncated). ok is false
// when the rate is zero (it never runs out); a balance at or below zero has no time left.
func TimeLeft(balance, ratePerHour decimal.Decimal) (d time.Duration, ok bool) {
	if !ratePerHour.IsPos() {
		return 0, false
	}
	if !balance.IsPos() {
		return 0, true
	}
	num, err := balance.Mul(secondsPerHour)
	if err != nil {
		return time.Duration(math.MaxInt64), true
	}
	secs, err := num.Quo(ratePerHour)
	if err != nil {
		return time.Duration(math.MaxInt64), true
	}
	whole, _, ok2 := secs.Trunc(0).Int64(0)
	if !ok2 || whole > int64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(whole) * time.Second, true
}

// ZeroAt is the first second at which a state's balance is zero or less: AsOf when Base is
// already there, never (ok false) when nothing burns.
func ZeroAt(b store.BurnState) (t time.Time, ok bool) {
	if !b.Base.IsPos() {
		return b.AsOf, true
	}
	left, ok := TimeLeft(b.Base, b.Rate)
	if !ok {
		return time.Time{}, false
	}
	// TimeLeft truncates: at AsOf+left the balance may still be a fraction above zero.
	t = b.AsOf.Add(left)
	if v, err := At(b, t); err == nil && v.IsPos() {
		t = t.Add(time.Second)
	}
	return t, true
}
