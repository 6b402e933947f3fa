// Package render turns a finished invoice.Invoice into documents: CSV now, PDF and XLSX later.
// Each format is a Renderer; a Registry maps format names to renderers, and FileName builds the
// document's file name from a template.
//
// Invariants:
//   - no renderer recomputes money: every amount printed is a field of the invoice or of one of
//     its lines, printed as stored (amounts keep the scale the invoice gave them);
//   - output is deterministic: the same invoice and options give byte-identical documents;
//   - a file name never leaves the output directory, whatever the customer id or name holds.
//
// CSV injection. A spreadsheet treats a cell that begins with =, +, -, @, a tab or a carriage
// return as a formula. Cells that carry user data (customer ids and names, resource ids and
// types, descriptions, regions, policies, units, attributes, invoice numbers) and begin with one
// of those characters are neutralised by prefixing a single quote ('), which spreadsheets show
// as text. Numeric cells that Bilean formats itself from decimals or integers (seconds, quantity,
// unit_price, amount and the totals) are never prefixed, so a credit of -12.50 stays a number an
// accountant's spreadsheet can sum; these cells cannot carry user text. Times are formatted by
// Bilean too (RFC 3339) and cannot begin with those characters.
package render

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// Renderer writes one document format for an invoice.
type Renderer interface {
	// Format is the name the configuration uses, e.g. "csv".
	Format() string
	// Extension is the file extension without the dot, e.g. "csv".
	Extension() string
	// Render writes the document for inv to w.
	Render(w io.Writer, inv *invoice.Invoice) error
}

// Registry maps format names to renderers. The zero value is empty and ready to use; it is not
// safe for concurrent Register calls, so fill it before rendering.
type Registry struct {
	byFormat map[string]Renderer
}

// NewRegistry returns a registry holding rs.
func NewRegistry(rs ...Renderer) (*Registry, error) {
	reg := &Registry{}
	for _, r := range rs {
		if err := reg.Register(r); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Default returns a registry with every built-in renderer in its default configuration.
func Default() *Registry {
	csv, err := NewCSV(CSVOptions{})
	if err != nil {
		panic(err) // the defaults are valid
	}
	reg, _ := NewRegistry(csv)
	return reg
}

// Register adds r; a second renderer for the same format is an error.
func (reg *Registry) Register(r Renderer) error {
	if reg.byFormat == nil {
		reg.byFormat = map[string]Renderer{}
	}
	f := r.Format()
	if _, dup := reg.byFormat[f]; dup {
		return fmt.Errorf("render: format %q registered twice", f)
	}
	reg.byFormat[f] = r
	return nil
}

// Lookup returns the renderer for format.
func (reg *Registry) Lookup(format string) (Renderer, error) {
	if r, ok := reg.byFormat[format]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("render: unknown format %q, want one of %s", format, strings.Join(reg.Formats(), ", "))
}

// Formats returns the registered format names, sorted.
func (reg *Registry) Formats() []string {
	out := make([]string, 0, len(reg.byFormat))
	for f := range reg.byFormat {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// DefaultFileName is the file name template used when none is configured.
const DefaultFileName = "{customer}-{start}-{end}.{ext}"

// placeholders are the names FileName understands, in documentation order.
var placeholders = []string{"customer", "customer_name", "number", "start", "end", "period", "ext"}

// FileName builds a document's file name from template ("" means DefaultFileName) for inv and
// a renderer's extension ext. Placeholders: {customer} (id), {customer_name} (the id when the
// name is empty), {number} (an error when the invoice has none yet), {start} and {end} (the
// period's dates as YYYY-MM-DD in loc, end exclusive), {period} (YYYY-MM of the start in loc)
// and {ext}. loc is the billing timezone the period was cut in; nil means UTC.
//
// Every substituted value is sanitised: only letters, digits, '-', '_' and '.' are kept, other
// characters become '_', runs of dots or underscores shrink to one and dots and underscores
// are trimmed from both ends. The result has no path separator, no "..", no leading dot and at
// most 255 bytes; a template that would break this, an unknown placeholder or an unbalanced
// brace is an error. Distinct odd ids may sanitise to the same name ("a/b", "a_b").
func FileName(template string, inv *invoice.Invoice, ext string, loc *time.Location) (string, error) {
	if template == "" {
		template = DefaultFileName
	}
	if inv == nil {
		return "", errors.New("file name: no invoice")
	}
	if loc == nil {
		loc = time.UTC
	}
	value := func(name string) (string, error) {
		switch name {
		case "customer":
			if inv.CustomerID == "" {
				return "", errors.New("the invoice has no customer id")
			}
			return inv.CustomerID, nil
		case "customer_name":
			if inv.CustomerName == "" {
				return inv.CustomerID, nil
			}
			return inv.CustomerName, nil
		case "number":
			if inv.Number == "" {
				return "", errors.New("the invoice has no number yet")
			}
			return inv.Number, nil
		case "ext":
			if e := strings.TrimPrefix(ext, "."); e != "" {
				return e, nil
			}
			return "", errors.New("no extension given")
		}
		if inv.Period.Start.IsZero() || inv.Period.End.IsZero() {
			return "", errors.New("the invoice has no period")
		}
		switch name {
		case "start":
			return inv.Period.Start.In(loc).Format(time.DateOnly), nil
		case "end":
			return inv.Period.End.In(loc).Format(time.DateOnly), nil
		default: // period
			return interval.MonthName(inv.Period, loc), nil
		}
	}
	var b strings.Builder
	rest := template
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		if rest[i] == '}' {
			return "", fmt.Errorf("file name template %q: unbalanced '}'", template)
		}
		b.WriteString(rest[:i])
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return "", fmt.Errorf("file name template %q: unbalanced '{'", template)
		}
		name := rest[i+1 : i+1+j]
		if !slices.Contains(placeholders, name) {
			return "", fmt.Errorf("file name template %q: unknown placeholder {%s}, want {%s}", template, name,
				strings.Join(placeholders, "}, {"))
		}
		v, err := value(name)
		if err != nil {
			return "", fmt.Errorf("file name template %q: {%s}: %w", template, name, err)
		}
		b.WriteString(sanitize(v))
		rest = rest[i+1+j+1:]
	}
	name := b.String()
	switch {
	case name == "":
		return "", fmt.Errorf("file name template %q: gives an empty name", template)
	case strings.ContainsAny(name, `/\`+"\x00"):
		return "", fmt.Errorf("file name template %q: gives %q, which has a path separator", template, name)
	case strings.HasPrefix(name, "."):
		return "", fmt.Errorf("file name template %q: gives %q, which starts with a dot", template, name)
	case strings.Contains(name, ".."):
		return "", fmt.Errorf("file name template %q: gives %q, which contains \"..\"", template, name)
	case len(name) > 255:
		return "", fmt.Errorf("file name template %q: gives a name longer than 255 bytes", template)
	}
	return name, nil
}

// sanitize makes s safe as part of a file name; it never returns "".
func sanitize(s string) string {
	var b strings.Builder
	var last rune
	for _, r := range s {
		switch {
		case r == '-' || r == '.' || r == '_':
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		default:
			r = '_'
		}
		if (r == '.' || r == '_') && r == last {
			continue
		}
		b.WriteRune(r)
		last = r
	}
	out := strings.Trim(b.String(), "._")
	if out == "" {
		return "_"
	}
	return out
}
