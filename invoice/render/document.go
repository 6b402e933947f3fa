package render

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

// DocumentOptions configure the PDF and XLSX documents: who issues the invoice, payment terms,
// and how amounts and dates are written for each customer. The zero value gives a plain
// document with the en-GB conventions and 30 days to pay.
type DocumentOptions struct {
	// Issuer is the company sending the invoice.
	Issuer Issuer
	// DueDays is the number of days after the issue date by which the invoice is to be paid;
	// 0 means 30. A negative value means "due on receipt" (due date = issue date).
	DueDays int
	// Locale is the default locale of the documents (see Locales); "" means en-GB.
	Locale string
	// Customers holds per-customer details, by customer id.
	Customers map[string]CustomerDetails
	// Timezone is the zone in which dates are printed (the billing timezone); nil means UTC.
	Timezone *time.Location
	// Terms is a sentence printed under the payment details, e.g. "Payable within 30 days
	// without deduction." Empty means a sentence built from DueDays.
	Terms string
}

// Issuer is the invoicing company's block at the top of the documents.
type Issuer struct {
	Name    string
	Address []string
	// TaxID is the VAT or tax registration number, printed as "VAT ID".
	TaxID string
	// Registration is the company registration (e.g. "Amtsgericht Berlin HRB 12345").
	Registration string
	Email        string
	Phone        string
	Website      string
	// Logo is a PNG or JPEG image printed at the top left; nil for none.
	Logo []byte
	Bank Bank
}

// Bank holds the details a customer needs to pay by transfer.
type Bank struct {
	Name    string // the bank's name
	Holder  string // account holder; defaults to the issuer's name on documents
	IBAN    string
	BIC     string
	Account string // account number for non-IBAN transfers
}

// CustomerDetails are what the documents print about one customer beyond the invoice's name.
type CustomerDetails struct {
	// Locale overrides DocumentOptions.Locale for this customer.
	Locale  string
	Address []string
	TaxID   string
	// Reference is the customer's purchase order or reference, printed on the invoice.
	Reference string
}

// Locale is a set of conventions for writing numbers and dates.
type Locale struct {
	Tag         string
	Decimal     string // decimal separator
	Group       string // thousands separator
	SymbolAfter bool   // "1.234,56 €" rather than "€1,234.56"
	Date        string // Go layout of a date on the PDF
	// XLSXDate is the spreadsheet number format of a date.
	XLSXDate string
}

// Locales are the supported locales, by tag.
var Locales = map[string]Locale{
	"en-US": {Tag: "en-US", Decimal: ".", Group: ",", Date: "Jan 2, 2006", XLSXDate: "mm/dd/yyyy"},
	"en-GB": {Tag: "en-GB", Decimal: ".", Group: ",", Date: "2 Jan 2006", XLSXDate: "dd/mm/yyyy"},
	"de-DE": {Tag: "de-DE", Decimal: ",", Group: ".", SymbolAfter: true, Date: "02.01.2006", XLSXDate: "dd.mm.yyyy"},
	// French groups digits with a narrow no-break space (U+202F).
	"fr-FR": {Tag: "fr-FR", Decimal: ",", Group: "\u202f", SymbolAfter: true, Date: "02/01/2006", XLSXDate: "dd/mm/yyyy"},
	"ja-JP": {Tag: "ja-JP", Decimal: ".", Group: ",", Date: "2006年1月2日", XLSXDate: "yyyy/mm/dd"},
}

// DefaultLocale is used when no locale is configured.
const DefaultLocale = "en-GB"

// LocaleTags returns the supported locale tags, sorted.
func LocaleTags() []string {
	tags := make([]string, 0, len(Locales))
	for t := range Locales {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags
}

// LookupLocale returns the locale for tag ("" means DefaultLocale).
func LookupLocale(tag string) (Locale, error) {
	if tag == "" {
		tag = DefaultLocale
	}
	if l, ok := Locales[tag]; ok {
		return l, nil
	}
	return Locale{}, fmt.Errorf("locale %q: want one of %s", tag, strings.Join(LocaleTags(), ", "))
}

// Validate checks the locales and the issuer's logo.
func (o DocumentOptions) Validate() error {
	var errs []error
	if _, err := LookupLocale(o.Locale); err != nil {
		errs = append(errs, err)
	}
	ids := make([]string, 0, len(o.Customers))
	for id := range o.Customers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if l := o.Customers[id].Locale; l != "" {
			if _, err := LookupLocale(l); err != nil {
				errs = append(errs, fmt.Errorf("customer %s: %w", id, err))
			}
		}
	}
	if len(o.Issuer.Logo) > 0 && imageType(o.Issuer.Logo) == "" {
		errs = append(errs, errors.New("issuer logo: want a PNG or JPEG image"))
	}
	return errors.Join(errs...)
}

// imageType returns "PNG" or "JPG" from the image's magic bytes, or "".
func imageType(b []byte) string {
	switch {
	case len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "PNG"
	case len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "JPG"
	}
	return ""
}

// docInfo is what both document renderers derive from the options for one invoice: nothing
// here is money, only dates, texts and the locale.
type docInfo struct {
	loc      Locale
	tz       *time.Location
	customer CustomerDetails
	issued   time.Time // the issue date; the period's end for an interim invoice
	due      time.Time
	title    string
}

func (o DocumentOptions) info(inv *invoice.Invoice) (docInfo, error) {
	c := o.Customers[inv.CustomerID]
	tag := c.Locale
	if tag == "" {
		tag = o.Locale
	}
	loc, err := LookupLocale(tag)
	if err != nil {
		return docInfo{}, err
	}
	tz := o.Timezone
	if tz == nil {
		tz = time.UTC
	}
	issued := inv.IssuedAt
	if issued.IsZero() {
		issued = inv.Period.End
	}
	days := o.DueDays
	switch {
	case days == 0:
		days = 30
	case days < 0:
		days = 0
	}
	title := "Invoice"
	switch {
	case inv.Kind == invoice.Interim || inv.Number == "":
		title = "Interim statement"
	case inv.Status == invoice.Void:
		title = "Invoice (void)"
	}
	return docInfo{loc: loc, tz: tz, customer: c, issued: issued.UTC(), due: issued.In(tz).AddDate(0, 0, days), title: title}, nil
}

// date writes a time's date in the document's zone and locale.
func (d *docInfo) date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(d.tz).Format(d.loc.Date)
}

// lastDay returns the last day inside a half-open range ending at end.
func (d *docInfo) lastDay(end time.Time) time.Time { return end.Add(-time.Second) }

// period writes the billing period as "first day – last day".
func (d *docInfo) period(inv *invoice.Invoice) string {
	if inv.Period.Start.IsZero() {
		return ""
	}
	return d.date(inv.Period.Start) + " – " + d.date(d.lastDay(inv.Period.End))
}

// stamp writes a line's start or end as a date and hh:mm in the document's zone.
func (d *docInfo) stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(d.tz)
	s := t.Format(d.loc.Date) + t.Format(" 15:04")
	if t.Second() != 0 {
		s += t.Format(":05")
	}
	return s
}

// number writes a decimal exactly as given, with the locale's separators.
func (l Locale) number(d decimal.Decimal) string {
	s := d.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString(l.Group)
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString(l.Decimal)
		b.WriteString(frac)
	}
	return b.String()
}

// quantity writes a quantity rounded to at most 6 decimals, trailing zeros trimmed (display only).
func (l Locale) quantity(d decimal.Decimal) string { return l.number(d.Round(6).Trim(0)) }

// money writes an amount as stored with its currency sign: "€1,234.56", "1.234,56 €".
func (l Locale) money(d decimal.Decimal, currency string) string {
	sym, ok := currencySymbols[currency]
	if !ok {
		sym = currency
	}
	if sym == "" {
		return l.number(d)
	}
	n := l.number(d)
	neg := strings.HasPrefix(n, "-")
	n = strings.TrimPrefix(n, "-")
	sign := ""
	if neg {
		sign = "-"
	}
	if l.SymbolAfter {
		return sign + n + "\u00a0" + sym
	}
	if r, _ := utf8.DecodeLastRuneInString(sym); unicode.IsLetter(r) {
		return sign + sym + "\u00a0" + n // "CHF 12.50"
	}
	return sign + sym + n
}

// percent writes a rate fraction as a percentage: 0.2 → "20%" (en), "20 %" (de, fr).
func (l Locale) percent(rate decimal.Decimal) string {
	p, err := rate.Mul(decimal.Hundred)
	if err != nil {
		return rate.String()
	}
	s := l.number(p.Trim(0))
	if l.SymbolAfter {
		return s + "\u00a0%"
	}
	return s + "%"
}

// currencySymbols are the signs printed before or after amounts; other currencies print their
// ISO code.
var currencySymbols = map[string]string{
	"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "CN¥", "KRW": "₩", "INR": "₹", "CHF": "CHF",
}

// sectionTitle names a group of lines on the documents.
func sectionTitle(s invoice.Section, resourceType string) string {
	switch s {
	case invoice.Recurring:
		return "Recurring fees"
	case invoice.Usage:
		if n, ok := resourceNames[resourceType]; ok {
			return "Usage – " + n + " (" + resourceType + ")"
		}
		if resourceType == "" {
			return "Usage"
		}
		return "Usage – " + resourceType
	case invoice.Adjustment:
		return "Adjustments and late usage"
	case invoice.Credit:
		return "Credits"
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

var resourceNames = map[string]string{
	"os.nova.server":        "Servers",
	"os.cinder.volume":      "Volumes",
	"os.cinder.snapshot":    "Volume snapshots",
	"os.neutron.floatingip": "Floating IPs",
	"os.glance.image":       "Images",
	"os.swift.container":    "Object storage",
}

// group is one titled run of lines on a document.
type group struct {
	title string
	lines []*invoice.Line
}

// groups orders the lines by section (recurring, usage by resource type, adjustments, credits,
// then any other section) keeping their order inside a group. Nothing is summed.
func groups(inv *invoice.Invoice) []group {
	rank := map[invoice.Section]int{invoice.Recurring: 0, invoice.Usage: 1, invoice.Adjustment: 2, invoice.Credit: 3}
	type key struct {
		rank    int
		section invoice.Section
		rtype   string
	}
	byKey := map[key]*group{}
	var keys []key
	for i := range inv.Lines {
		l := &inv.Lines[i]
		r, ok := rank[l.Section]
		if !ok {
			r = 4
		}
		k := key{rank: r, section: l.Section}
		if l.Section == invoice.Usage {
			k.rtype = l.ResourceType
		}
		g, ok := byKey[k]
		if !ok {
			g = &group{title: sectionTitle(l.Section, k.rtype)}
			byKey[k] = g
			keys = append(keys, k)
		}
		g.lines = append(g.lines, l)
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		if c := strings.Compare(string(a.section), string(b.section)); c != 0 {
			return c
		}
		return strings.Compare(a.rtype, b.rtype)
	})
	out := make([]group, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}

// attributes writes a line's attributes as "k=v, k=v", sorted by name.
func attributes(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}
