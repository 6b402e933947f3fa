package templates

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

func emailInvoice(t *testing.T, loc *time.Location, name string) *invoice.Invoice {
	t.Helper()
	oct, err := interval.Month("2026-10", loc)
	if err != nil {
		t.Fatal(err)
	}
	d := decimal.MustParse
	return &invoice.Invoice{Number: "INV-2026-000042", CustomerID: "p-17", CustomerName: name, Currency: "EUR", Period: oct,
		IssuedAt: oct.End, Total: d("17.86"), PreviousBalance: d("5.00"), Payments: d("5.00"), BalanceDue: d("17.86")}
}

func TestEmailEscapesHTMLButNotText(t *testing.T) {
	name := `Zürich <Ünïcode> & "Co" Ltd`
	c, err := RenderEmail(Email{Invoice: emailInvoice(t, time.UTC, name), Sender: "Acme Cloud Billing", ReplyTo: "accounts@acme.example",
		Attachments: []string{"p-17-2026-10-01-2026-11-01.csv", "<script>.pdf"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Invoice INV-2026-000042 for October 2026 from Acme Cloud Billing"; c.Subject != want {
		t.Errorf("subject = %q, want %q", c.Subject, want)
	}
	for _, want := range []string{"Dear " + name + ",", "Total             17.86 EUR", "Balance due       17.86 EUR",
		"Period            2026-10-01 to 2026-10-31", "Issued            2026-11-01", "  - p-17-2026-10-01-2026-11-01.csv", "(accounts@acme.example)"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, c.Text)
		}
	}
	for _, want := range []string{"Dear Zürich &lt;Ünïcode&gt; &amp; &#34;Co&#34; Ltd,", "<li>&lt;script&gt;.pdf</li>", "<strong>17.86 EUR</strong>"} {
		if !strings.Contains(c.HTML, want) {
			t.Errorf("HTML body lacks %q:\n%s", want, c.HTML)
		}
	}
	if strings.Contains(c.HTML, name) || strings.Contains(c.HTML, "<script>") {
		t.Errorf("HTML body holds an unescaped value:\n%s", c.HTML)
	}
}

func TestEmailSubjectIsOneLineAndPeriodInBillingTimezone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded: the zone is always there
	}
	inv := emailInvoice(t, berlin, "Evil\r\nBcc: victim@example.com")
	c, err := RenderEmail(Email{Invoice: inv, Sender: "Billing\nTeam", Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	// October in Berlin starts 2026-09-30T22:00Z: the email still says October, 1st to 31st.
	if want := "Invoice INV-2026-000042 for October 2026 from Billing Team"; c.Subject != want {
		t.Errorf("subject = %q, want %q", c.Subject, want)
	}
	if !strings.Contains(c.Text, "2026-10-01 to 2026-10-31") {
		t.Errorf("text body period in the wrong timezone:\n%s", c.Text)
	}
	// A period that is not a calendar month is named by its days.
	inv.Period = interval.Range{Start: inv.Period.Start.AddDate(0, 0, 4), End: inv.Period.Start.AddDate(0, 0, 19)}
	if got := (Email{Invoice: inv, Location: berlin}).Period(); got != "2026-10-05 to 2026-10-19" {
		t.Errorf("Period() = %q", got)
	}
}
