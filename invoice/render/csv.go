package render

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

// DefaultCSVColumns are the columns of a CSV invoice when none are configured.
var DefaultCSVColumns = []string{"section", "region", "resource_type", "resource_id", "description",
	"start", "end", "seconds", "quantity", "unit", "unit_price", "amount"}

// CSVColumns are the columns a CSV invoice can have, besides "attr:<name>" for a line
// attribute.
var CSVColumns = []string{"invoice", "customer", "customer_name", "section", "region", "resource_type",
	"resource_id", "description", "policy", "start", "end", "seconds", "quantity", "unit", "unit_price",
	"amount", "currency"}

// numeric columns hold numbers Bilean formats itself; they are never neutralised.
var numericColumns = []string{"seconds", "quantity", "unit_price", "amount"}

const attrPrefix = "attr:"

// CSVOptions configure the CSV renderer. The zero value means the defaults.
type CSVOptions struct {
	// Columns, in order; nil means DefaultCSVColumns. See CSVColumns; "attr:<name>" prints the
	// line attribute <name> (empty when absent). The header row repeats these names.
	Columns []string
	// Delimiter separates cells; 0 means ','.
	Delimiter rune
	// Timezone in which start and end are printed (RFC 3339); nil means UTC.
	Timezone *time.Location
	// OmitTotals leaves out the summary rows (Subtotal, Tax, Total, Payments received, Previous
	// balance, Balance due) that follow the lines by default. It is phrased as an omission so
	// that the zero value means the default.
	OmitTotals bool
}

// WithDefaults returns o with every unset field set to its default.
func (o CSVOptions) WithDefaults() CSVOptions {
	if o.Columns == nil {
		o.Columns = slices.Clone(DefaultCSVColumns)
	}
	if o.Delimiter == 0 {
		o.Delimiter = ','
	}
	if o.Timezone == nil {
		o.Timezone = time.UTC
	}
	return o
}

// Validate checks the columns and the delimiter of options that have their defaults applied.
func (o CSVOptions) Validate() error {
	var errs []error
	if len(o.Columns) == 0 {
		errs = append(errs, errors.New("csv columns: none given"))
	}
	seen := map[string]bool{}
	for _, c := range o.Columns {
		switch {
		case strings.HasPrefix(c, attrPrefix):
			if strings.TrimPrefix(c, attrPrefix) == "" {
				errs = append(errs, fmt.Errorf("csv column %q: want attr:<name>, e.g. attr:flavor", c))
			}
		case !slices.Contains(CSVColumns, c):
			errs = append(errs, fmt.Errorf("csv column %q: unknown, want one of %s or attr:<name>",
				c, strings.Join(CSVColumns, ", ")))
		}
		if seen[c] {
			errs = append(errs, fmt.Errorf("csv column %q: given twice", c))
		}
		seen[c] = true
	}
	d := o.Delimiter
	if d == 0 || d == '"' || d == '\r' || d == '\n' || d == '\'' || !utf8.ValidRune(d) || d == utf8.RuneError {
		errs = append(errs, fmt.Errorf("csv delimiter %q: want a character such as ',' or ';' (not a quote or line break)", d))
	}
	if o.Timezone == nil {
		errs = append(errs, errors.New("csv timezone: none given"))
	}
	return errors.Join(errs...)
}

// CSV renders an invoice as CSV in the Artifice style: a header row, one row per line, then
// the summary rows with their label in the description column (or, without one, in the first
// column that is not amount) and their value in the amount column. Summary rows are left out
// when there is no amount column. The invoice, customer, customer_name and currency columns are
// filled on summary rows too.
type CSV struct {
	opts    CSVOptions
	numeric []bool
}

// NewCSV returns a CSV renderer for o with the defaults applied; invalid options are an error.
func NewCSV(o CSVOptions) (*CSV, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.Columns = slices.Clone(o.Columns)
	c := &CSV{opts: o, numeric: make([]bool, len(o.Columns))}
	for i, col := range o.Columns {
		c.numeric[i] = slices.Contains(numericColumns, col)
	}
	return c, nil
}

// Options returns the options in use, defaults applied.
func (c *CSV) Options() CSVOptions {
	o := c.opts
	o.Columns = slices.Clone(o.Columns)
	return o
}

// Format returns "csv".
func (c *CSV) Format() string { return "csv" }

// Extension returns "csv".
func (c *CSV) Extension() string { return "csv" }

// Render writes inv as CSV to w.
func (c *CSV) Render(w io.Writer, inv *invoice.Invoice) error {
	if inv == nil {
		return errors.New("render csv: no invoice")
	}
	cw := csv.NewWriter(w)
	cw.Comma = c.opts.Delimiter
	cols := c.opts.Columns
	row := make([]string, len(cols))
	for i, col := range cols {
		row[i] = neutralise(col)
	}
	if err := cw.Write(row); err != nil {
		return fmt.Errorf("render csv: %w", err)
	}
	for li := range inv.Lines {
		l := &inv.Lines[li]
		for i, col := range cols {
			v := c.lineCell(col, inv, l)
			if !c.numeric[i] {
				v = neutralise(v)
			}
			row[i] = v
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("render csv: invoice %s line %d: %w", inv.Number, li+1, err)
		}
	}
	if !c.opts.OmitTotals {
		if err := c.totals(cw, inv, row); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("render csv: %w", err)
	}
	return nil
}

func (c *CSV) totals(cw *csv.Writer, inv *invoice.Invoice, row []string) error {
	cols := c.opts.Columns
	amountCol := slices.Index(cols, "amount")
	if amountCol < 0 {
		return nil
	}
	labelCol := slices.Index(cols, "description")
	if labelCol < 0 {
		labelCol = slices.IndexFunc(cols, func(s string) bool { return s != "amount" })
	}
	sums := []struct {
		label  string
		amount decimal.Decimal
	}{
		{"Subtotal", inv.Subtotal},
		{"Tax " + percent(inv.TaxRate), inv.Tax},
		{"Total", inv.Total},
		{"Payments received", inv.Payments},
		{"Previous balance", inv.PreviousBalance},
		{"Balance due", inv.BalanceDue},
	}
	for _, s := range sums {
		for i, col := range cols {
			row[i] = neutralise(invoiceCell(col, inv))
		}
		if labelCol >= 0 {
			row[labelCol] = s.label
		}
		row[amountCol] = s.amount.String()
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("render csv: %s: %w", s.label, err)
		}
	}
	return nil
}

// invoiceCell returns the invoice-level value of col, or "" for a line-level column.
func invoiceCell(col string, inv *invoice.Invoice) string {
	switch col {
	case "invoice":
		return inv.Number
	case "customer":
		return inv.CustomerID
	case "customer_name":
		return inv.CustomerName
	case "currency":
		return inv.Currency
	}
	return ""
}

func (c *CSV) lineCell(col string, inv *invoice.Invoice, l *invoice.Line) string {
	switch col {
	case "section":
		return string(l.Section)
	case "region":
		return l.Region
	case "resource_type":
		return l.ResourceType
	case "resource_id":
		return l.ResourceID
	case "description":
		return l.Description
	case "policy":
		return l.Policy
	case "start":
		return c.time(l.Start)
	case "end":
		return c.time(l.End)
	case "seconds":
		return strconv.FormatInt(l.Seconds, 10)
	case "quantity":
		return l.Quantity.Round(6).Trim(0).String()
	case "unit":
		return l.Unit
	case "unit_price":
		return l.UnitPrice.String()
	case "amount":
		return l.Amount.String()
	}
	if name, ok := strings.CutPrefix(col, attrPrefix); ok {
		return l.Attributes[name]
	}
	return invoiceCell(col, inv)
}

func (c *CSV) time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.opts.Timezone).Format(time.RFC3339)
}

// percent formats a tax rate fraction as a percentage, e.g. 0.20 → "20%", 0.075 → "7.5%".
func percent(rate decimal.Decimal) string {
	p, err := rate.Mul(decimal.Hundred)
	if err != nil {
		return rate.String()
	}
	return p.Trim(0).String() + "%"
}

// neutralise prefixes a cell that a spreadsheet would read as a formula with a single quote.
func neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
