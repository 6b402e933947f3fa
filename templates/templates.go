// Package templates holds the layouts of what Bilean writes for people: today the plain-text
// invoice of `bilean invoices show` and `bilean interim`; the email bodies join them with the
// email handler. They are embedded in the binary and parsed once.
package templates

import (
	"embed"
	"io"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

//go:embed *.tmpl
var files embed.FS

var funcs = template.FuncMap{
	"time":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"quantity": func(d decimal.Decimal) string { return d.Round(6).Trim(0).String() },
	"percent": func(d decimal.Decimal) string {
		p, err := d.Mul(invoice.Hundred)
		if err != nil {
			return d.String()
		}
		return p.Trim(0).String()
	},
}

var text = template.Must(template.New("").Funcs(funcs).ParseFS(files, "*.tmpl"))

// InvoiceText writes the plain-text invoice, columns aligned.
func InvoiceText(w io.Writer, inv *invoice.Invoice) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if err := text.ExecuteTemplate(tw, "invoice.txt.tmpl", inv); err != nil {
		return err
	}
	return tw.Flush()
}
