// Package render turns a finished invoice.Invoice into documents: CSV now, PDF and XLSX later.
// Each format is a Renderer; a Registry maps format names to renderers, and FileName builds the
// document's file name from a template.
//
// Invariants:
//   - no renderer recomputes money: every amount printed is a field of the invoice or of one of
//     its lines, printed as stored (amounts keep the scale the invoice gave them);
//   - output is deterministic: the same invoice and options give byte-identical documents;
//   - a file name never leaves the output directory, whatever the customer id or name holds,
//     and always holds the invoice number (see FileTemplate).
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
	"maps"
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
const DefaultFileName = "{customer}-{start}-{end}-{number}.{ext}"

// placeholders are the names FileName understands, in documentation order.
var placeholders = []string{"customer", "customer_name", "number", "start", "end", "period", "ext"}

// namePart is a piece of a file name template: literal text or a placeholder's name.
type namePart struct {
	text        string
	placeholder bool
}

// parseTemplate splits a file name template into literal text and placeholders.
func parseTemplate(template string) ([]namePart, error) {
	var out []namePart
	rest := template
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			out = append(out, namePart{text: rest})
			break
		}
		if rest[i] == '}' {
			return nil, errors.New("unbalanced '}'")
		}
		if i > 0 {
			out = append(out, namePart{text: rest[:i]})
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return nil, errors.New("unbalanced '{'")
		}
		name := rest[i+1 : i+1+j]
		if !slices.Contains(placeholders, name) {
			return nil, fmt.Errorf("unknown placeholder {%s}, want {%s}", name, strings.Join(placeholders, "}, {"))
		}
		out = append(out, namePart{text: name, placeholder: true})
		rest = rest[i+1+j+1:]
	}
	return out, nil
}

// effective returns the template FileName applies for a configured one, parsed: DefaultFileName
// for "", and "-{number}" inserted before the extension (the first dot after the last
// placeholder other than {ext}), or appended when there is none, when the template lacks
// {number}. Literal text with a path separator, ".." or a leading dot is
// an error.
func effective(template string) (string, []namePart, error) {
	if template == "" {
		template = DefaultFileName
	}
	parts, err := parseTemplate(template)
	if err != nil {
		return "", nil, err
	}
	for i, p := range parts {
		switch {
		case p.placeholder:
		case strings.ContainsAny(p.text, `/\`+"\x00"):
			return "", nil, fmt.Errorf("%q has a path separator", p.text)
		case strings.Contains(p.text, ".."):
			return "", nil, fmt.Errorf("%q contains \"..\"", p.text)
		case i == 0 && strings.HasPrefix(p.text, "."):
			return "", nil, errors.New("starts with a dot")
		}
	}
	if slices.Contains(parts, namePart{text: "number", placeholder: true}) {
		return template, parts, nil
	}
	// Before the extension: the first dot after the last placeholder other than {ext}.
	at, dot := len(parts), 0
	for i := len(parts) - 1; i >= 0 && (!parts[i].placeholder || parts[i].text == "ext"); i-- {
		if j := strings.IndexByte(parts[i].text, '.'); !parts[i].placeholder && j >= 0 {
			at, dot = i, j
		}
	}
	number := namePart{text: "number", placeholder: true}
	var out []namePart
	out = append(out, parts[:min(at, len(parts))]...)
	if at < len(parts) {
		if dot > 0 {
			out = append(out, namePart{text: parts[at].text[:dot]})
		}
		out = append(out, namePart{text: "-"}, number, namePart{text: parts[at].text[dot:]})
		out = append(out, parts[at+1:]...)
	} else {
		out = append(out, namePart{text: "-"}, number)
	}
	var b strings.Builder
	for _, p := range out {
		if p.placeholder {
			b.WriteString("{" + p.text + "}")
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String(), out, nil
}

// FileTemplate checks a configured file name template (filename) for documents with the
// extensions exts, and returns the template FileName applies, so that a bad template stops
// start-up rather than every invoice of a run.
//
// File names are unique by construction: the invoice number is always part of the name. A
// template without {number} gets "-{number}" before its extension (the first dot after the last
// placeholder other than {ext}; at its end when there is none): "{customer_name}-{period}.{ext}"
// becomes "{customer_name}-{period}-{number}.{ext}", "{customer}.csv" "{customer}-{number}.csv". A
// template without {ext} is refused when exts holds more than one extension (the formats would
// share one file), and so is literal text with a path separator, ".." or a leading dot.
func FileTemplate(template string, exts ...string) (string, error) {
	eff, segs, err := effective(template)
	if err != nil {
		return "", fmt.Errorf("file name template %q: %w", template, err)
	}
	distinct := map[string]bool{}
	for _, e := range exts {
		distinct[strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	if len(distinct) > 1 && !slices.Contains(segs, namePart{text: "ext", placeholder: true}) {
		sorted := slices.Sorted(maps.Keys(distinct))
		return "", fmt.Errorf("file name template %q has no {ext}: the %s documents of an invoice would all be written to one file",
			template, strings.Join(sorted, ", "))
	}
	return eff, nil
}

// FileName builds a document's file name from template ("" means DefaultFileName) for inv and
// a renderer's extension ext. Placeholders: {customer} (id), {customer_name} (the id when the
// name is empty), {number} (an error when the invoice has none yet), {start} and {end} (the
// period's dates as YYYY-MM-DD in loc, end exclusive), {period} (YYYY-MM of the start in loc)
// and {ext}. loc is the billing timezone the period was cut in; nil means UTC.
//
// The invoice number is always part of the name: a template without {number} gets it as
// FileTemplate says. Two invoices therefore never share a name unless their numbers or the
// template's other values sanitise to the same text; the render step refuses such a collision.
//
// Every substituted value is sanitised: only letters, digits, '-', '_' and '.' are kept, other
// characters become '_', runs of dots or underscores shrink to one and dots and underscores
// are trimmed from both ends. The result has no path separator, no "..", no leading dot and at
// most 255 bytes; a template that would break this, an unknown placeholder or an unbalanced
// brace is an error. Distinct odd ids may sanitise to the same text ("a/b", "a_b"): the number
// in the name tells their invoices apart.
func FileName(template string, inv *invoice.Invoice, ext string, loc *time.Location) (string, error) {
	if inv == nil {
		return "", errors.New("file name: no invoice")
	}
	if loc == nil {
		loc = time.UTC
	}
	if template == "" {
		template = DefaultFileName
	}
	_, segs, err := effective(template)
	if err != nil {
		return "", fmt.Errorf("file name template %q: %w", template, err)
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
	for _, s := range segs {
		if !s.placeholder {
			b.WriteString(s.text)
			continue
		}
		v, err := value(s.text)
		if err != nil {
			return "", fmt.Errorf("file name template %q: {%s}: %w", template, s.text, err)
		}
		b.WriteString(sanitize(v))
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
