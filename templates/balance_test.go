package templates

import (
	"strings"
	"testing"
	"time"

	"github.com/govalues/decimal"
)

func TestHumanDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{71 * time.Hour, "2 days 23 hours"},
		{55 * time.Hour, "2 days 7 hours"},
		{24 * time.Hour, "1 day"},
		{24*time.Hour + 5*time.Minute, "1 day"}, // the two largest units, no gap
		{5*time.Hour + 30*time.Minute + 10*time.Second, "5 hours 30 minutes"},
		{time.Hour, "1 hour"},
		{45 * time.Second, "45 seconds"},
		{500 * time.Millisecond, "under a second"},
		{0, "no time"},
	} {
		if got := HumanDuration(c.d); got != c.want {
			t.Errorf("HumanDuration(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestBalanceNoticesSayWhatHappenedAndEscapeHTML(t *testing.T) {
	name := `Zürich <Ünïcode> & "Co" Ltd`
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	base := BalanceNotice{CustomerID: "p-17", CustomerName: name, Currency: "EUR", At: at,
		Sender: "Acme Cloud Billing", ReplyTo: "accounts@acme.example", Escalation: "stop", GracePeriod: 24 * time.Hour}
	low := base
	low.Kind, low.Balance, low.Rate, low.TimeLeft = BalanceLow, decimal.MustParse("0.71"), decimal.MustParse("0.01"), 71*time.Hour
	low.RunsOut = at.Add(low.TimeLeft)
	dep := base
	dep.Kind, dep.Balance, dep.Rate = BalanceDepleted, decimal.MustParse("-0.50"), decimal.MustParse("1.00")
	dep.RunsOut, dep.ActBy = at.Add(-30*time.Minute), at.Add(-30*time.Minute+24*time.Hour)
	depNotify := dep
	depNotify.Escalation, depNotify.ActBy = "notify", time.Time{}
	frozen := base
	frozen.Kind, frozen.Balance, frozen.RunsOut, frozen.Action, frozen.Servers = BalanceFrozen, decimal.MustParse("-24.50"), dep.RunsOut, "suspend", []string{"srv-1", "<srv-2>"}
	lifted := base
	lifted.Kind, lifted.Reason, lifted.Action, lifted.Servers = BalanceUnfrozen, "recharge PAY-7", "suspend", []string{"srv-1"}
	for _, c := range []struct {
		n       BalanceNotice
		subject string
		text    []string
		html    []string
	}{
		{low, "Low prepaid balance: " + name + " runs out in 2 days 23 hours",
			[]string{"Balance           0.71 EUR (on 2026-10-01 09:00 UTC)", "Usage             0.01 EUR per hour, tax included",
				"Time left         2 days 23 hours", "Runs out          2026-10-04 08:00 UTC", "servers are stopped after a grace period of 1 day"},
			[]string{"<strong>2026-10-04 08:00 UTC</strong>", "0.71 EUR"}},
		{dep, "Prepaid balance used up: " + name,
			[]string{"ran out on 2026-10-01 08:30 UTC", "Balance           -0.50 EUR", "before 2026-10-02 08:30 UTC (a grace period of 1 day)", "will be stopped"},
			[]string{"<strong>2026-10-02 08:30 UTC</strong>"}},
		{depNotify, "Prepaid balance used up: " + name,
			[]string{"keep running and what they use is still billed"}, nil},
		{frozen, "Servers suspended: the prepaid balance of " + name + " is used up",
			[]string{"These servers have been suspended:\n  - srv-1\n  - <srv-2>", "they are resumed again"},
			[]string{"<li>&lt;srv-2&gt;</li>"}},
		{lifted, name + " is active again",
			[]string{"positive again (recharge PAY-7)", "These servers have been resumed again:\n  - srv-1"},
			[]string{"<li>srv-1</li>"}},
	} {
		t.Run(c.n.Kind+"-"+c.n.Escalation, func(t *testing.T) {
			got, err := RenderBalanceNotice(c.n)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != c.subject {
				t.Errorf("subject = %q, want %q", got.Subject, c.subject)
			}
			for _, w := range append([]string{"Dear " + name + ",", "(accounts@acme.example)", "Acme Cloud Billing"}, c.text...) {
				if !strings.Contains(got.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, got.Text)
				}
			}
			for _, w := range append([]string{"Dear Zürich &lt;Ünïcode&gt; &amp; &#34;Co&#34; Ltd,"}, c.html...) {
				if !strings.Contains(got.HTML, w) {
					t.Errorf("HTML lacks %q:\n%s", w, got.HTML)
				}
			}
			if strings.Contains(got.HTML, name) || strings.Contains(got.HTML, "<srv-2>") {
				t.Errorf("HTML holds an unescaped value:\n%s", got.HTML)
			}
		})
	}
}

func TestBalanceNoticeSubjectIsOneLineAndUnknownKindsRefused(t *testing.T) {
	n := BalanceNotice{Kind: BalanceDepleted, CustomerID: "p1", CustomerName: "Evil\r\nBcc: victim@example.com", Currency: "EUR"}
	c, err := RenderBalanceNotice(n)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(c.Subject, "\r\n") || c.Subject != "Prepaid balance used up: Evil Bcc: victim@example.com" {
		t.Errorf("subject %q", c.Subject)
	}
	n.CustomerName = ""
	if c, _ := RenderBalanceNotice(n); !strings.Contains(c.Text, "Dear p1,") {
		t.Errorf("a customer without a name is not addressed by its id:\n%s", c.Text)
	}
	n.Kind = "refund"
	if _, err := RenderBalanceNotice(n); err == nil || !strings.Contains(err.Error(), `"refund"`) {
		t.Errorf("unknown kind: err = %v", err)
	}
}
