package templates

import (
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/govalues/decimal"
)

//go:embed balance.subject.gotmpl balance.txt.gotmpl balance.html.gotmpl
var balanceFiles embed.FS

var balanceTemplates = newMailSet(balanceFiles, "balance")

// Kinds of balance notices (the same strings as package balance's Notice kinds).
const (
	BalanceLow      = "low_balance_warning" // the time left at the current rate is under balance.warn_before
	BalanceDepleted = "depleted"            // the balance reached zero
	BalanceFrozen   = "frozen"              // the escalation stopped or suspended the servers
	BalanceUnfrozen = "unfrozen"            // the balance is positive again: the freeze is lifted
)

// BalanceNotice is what the balance notice templates see: one prepaid customer's low-balance
// warning, depletion, freeze or lift.
type BalanceNotice struct {
	Kind         string // one of the Balance* kinds
	CustomerID   string
	CustomerName string
	Currency     string
	// At is when the jobs saw the change; Balance is the balance then, rounded to the currency.
	At      time.Time
	Balance decimal.Decimal
	// Rate is what the project uses per hour, tax included (never rounded: 0.01 stays 0.01).
	Rate decimal.Decimal
	// TimeLeft is how long the balance lasts at Rate (BalanceLow); RunsOut is when it runs out
	// (BalanceLow) or ran out (BalanceDepleted, BalanceFrozen).
	TimeLeft time.Duration
	RunsOut  time.Time
	// Escalation is balance.escalation (notify, stop or suspend) and GracePeriod its grace period;
	// ActBy is when stop or suspend acts (BalanceDepleted; zero with notify).
	Escalation  string
	GracePeriod time.Duration
	ActBy       time.Time
	// Servers lists the servers stopped or suspended (BalanceFrozen) or started or resumed again
	// (BalanceUnfrozen); Action is stop or suspend (the escalation that froze them).
	Servers []string
	Action  string
	// Reason says what lifted the freeze (BalanceUnfrozen), e.g. "recharge PAY-1".
	Reason string
	// Sender is the display name of mail.from; ReplyTo is mail.reply_to when set.
	Sender  string
	ReplyTo string
	// Location is the billing timezone the times are shown in; nil means UTC.
	Location *time.Location
}

// Name is the customer's name, or its id when it has none.
func (n BalanceNotice) Name() string {
	if strings.TrimSpace(n.CustomerName) != "" {
		return n.CustomerName
	}
	return n.CustomerID
}

// When formats a time to the minute in the billing timezone, e.g. "2026-10-04 08:00 UTC".
func (n BalanceNotice) When(t time.Time) string {
	loc := n.Location
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// Left is TimeLeft for people: "2 days 23 hours", "5 hours 30 minutes", "45 seconds".
func (n BalanceNotice) Left() string { return HumanDuration(n.TimeLeft) }

// Grace is GracePeriod for people.
func (n BalanceNotice) Grace() string { return HumanDuration(n.GracePeriod) }

// Stopped is the past participle of Action: "stopped" or "suspended".
func (n BalanceNotice) Stopped() string {
	if n.Action == "suspend" || (n.Action == "" && n.Escalation == "suspend") {
		return "suspended"
	}
	return "stopped"
}

// Restarted is what a lift did to the servers: "started" or "resumed".
func (n BalanceNotice) Restarted() string {
	if n.Stopped() == "suspended" {
		return "resumed"
	}
	return "started"
}

// HumanDuration writes d with its two largest units, rounded down: "2 days 23 hours", "1 hour",
// "5 minutes", "45 seconds"; "no time" for zero or less.
func HumanDuration(d time.Duration) string {
	if d <= 0 {
		return "no time"
	}
	units := []struct {
		name string
		size time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}}
	var parts []string
	for _, u := range units {
		if n := d / u.size; n > 0 {
			s := fmt.Sprintf("%d %s", n, u.name)
			if n > 1 {
				s += "s"
			}
			parts = append(parts, s)
			d -= n * u.size
		} else if len(parts) > 0 {
			break // "1 day 5 minutes" would read as more precise than it is
		}
		if len(parts) == 2 {
			break
		}
	}
	if len(parts) == 0 {
		return "under a second"
	}
	return strings.Join(parts, " ")
}

// RenderBalanceNotice renders the subject and both bodies of a balance notice. The subject is
// folded to one line, so no value can add a header; the HTML alternative escapes every value.
func RenderBalanceNotice(n BalanceNotice) (EmailContent, error) {
	switch n.Kind {
	case BalanceLow, BalanceDepleted, BalanceFrozen, BalanceUnfrozen:
	default:
		return EmailContent{}, fmt.Errorf("render balance notice for %s: unknown kind %q", n.CustomerID, n.Kind)
	}
	return balanceTemplates.render(n, n.Kind, n.CustomerID)
}
