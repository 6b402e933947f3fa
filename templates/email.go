package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/bilean/bilean/invoice"
)

// The email templates use the .gotmpl extension so that the *.tmpl documents above do not parse
// them with their own functions.
//
//go:embed email.subject.gotmpl email.txt.gotmpl email.html.gotmpl
var emailFiles embed.FS

var emailTemplates = newMailSet(emailFiles, "email")

// mailSet is the three templates of one kind of email: NAME.subject.gotmpl and NAME.txt.gotmpl
// (text/template) and NAME.html.gotmpl (html/template, which escapes every value).
type mailSet struct {
	name string
	text *texttemplate.Template
	html *htmltemplate.Template
}

func newMailSet(fsys embed.FS, name string) mailSet {
	return mailSet{
		name: name,
		text: texttemplate.Must(texttemplate.New("").Option("missingkey=error").ParseFS(fsys, name+".subject.gotmpl", name+".txt.gotmpl")),
		html: htmltemplate.Must(htmltemplate.New("").Option("missingkey=error").ParseFS(fsys, name+".html.gotmpl")),
	}
}

// render executes the subject and both bodies with data; errors read "render WHAT subject for
// ID". The subject is folded to one line, so no value can add a header.
func (m mailSet) render(data any, what, id string) (EmailContent, error) {
	var subj, txt, html bytes.Buffer
	if err := m.text.ExecuteTemplate(&subj, m.name+".subject.gotmpl", data); err != nil {
		return EmailContent{}, fmt.Errorf("render %s subject for %s: %w", what, id, err)
	}
	if err := m.text.ExecuteTemplate(&txt, m.name+".txt.gotmpl", data); err != nil {
		return EmailContent{}, fmt.Errorf("render %s text for %s: %w", what, id, err)
	}
	if err := m.html.ExecuteTemplate(&html, m.name+".html.gotmpl", data); err != nil {
		return EmailContent{}, fmt.Errorf("render %s HTML for %s: %w", what, id, err)
	}
	return EmailContent{Subject: strings.Join(strings.Fields(subj.String()), " "), Text: txt.String(), HTML: html.String()}, nil
}

// Email is what the invoice email templates see.
type Email struct {
	Invoice *invoice.Invoice
	// Sender is the display name of the sender (mail.from), used to sign the message.
	Sender string
	// ReplyTo is where replies go, when configured.
	ReplyTo string
	// Attachments are the file names of the attached documents.
	Attachments []string
	// Location is the billing timezone the period was cut in; nil means UTC.
	Location *time.Location
}

func (e Email) loc() *time.Location {
	if e.Location == nil {
		return time.UTC
	}
	return e.Location
}

// Period names the invoice's period: "October 2026" for a calendar month in the billing
// timezone, else "2026-10-05 to 2026-10-19".
func (e Email) Period() string {
	s, end := e.Invoice.Period.Start.In(e.loc()), e.Invoice.Period.End.In(e.loc())
	if s.Day() == 1 && s.Hour() == 0 && s.Minute() == 0 && s.Second() == 0 && end.Equal(s.AddDate(0, 1, 0)) {
		return s.Format("January 2006")
	}
	return e.From() + " to " + e.To()
}

// From is the period's first day (YYYY-MM-DD, billing timezone).
func (e Email) From() string { return e.Invoice.Period.Start.In(e.loc()).Format(time.DateOnly) }

// To is the period's last day, inclusive (the period's end is exclusive).
func (e Email) To() string {
	return e.Invoice.Period.End.Add(-time.Second).In(e.loc()).Format(time.DateOnly)
}

// Issued is the issue date (YYYY-MM-DD, billing timezone).
func (e Email) Issued() string { return e.Invoice.IssuedAt.In(e.loc()).Format(time.DateOnly) }

// EmailContent is a rendered invoice email.
type EmailContent struct {
	Subject string
	Text    string // text/plain alternative
	HTML    string // text/html alternative, every value escaped by html/template
}

// RenderEmail renders the subject and both bodies of the email that delivers e.Invoice. The
// subject is folded to one line, so no value can add a header.
func RenderEmail(e Email) (EmailContent, error) {
	if e.Invoice == nil {
		return EmailContent{}, fmt.Errorf("render email: no invoice")
	}
	return emailTemplates.render(e, "email", e.Invoice.Number)
}
