package render

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
	"github.com/xuri/excelize/v2"
)

// XLSX renders an invoice as an Excel workbook with excelize: a "Summary" sheet that is the
// invoice as the PDF shows it, and a "Detail" sheet with one row per line (section, resource
// id, type, description, region, attributes, start, end, seconds, quantity, unit, granularity,
// unit price, amount) for an accountant's import, with a bold frozen header and an autofilter
// (an Excel table).
//
// Both sheets are written with excelize's StreamWriter, row by row, which keeps a 3,000-line
// invoice to tens of milliseconds; the parts of the package are then written in a fixed order
// with deflate level 3 (see orderedZip), so the same invoice gives the same bytes.
//
// Numbers and dates are typed cells with number formats. Totals are formulas that carry the
// stored totals as their cached (numeric) values, so a reader that does not recalculate shows the stored
// figures and one that does gets the same ones (the subtotal is the sum of the rounded lines,
// total = subtotal + tax, amount due = balance carried forward + total − payments). Tax is the
// stored figure: its rounding mode belongs to the invoice, not to the spreadsheet.
//
// Spreadsheet numbers are IEEE doubles: an amount is written as the shortest decimal that reads
// back as the same double, which for amounts of up to 15 significant digits is the stored
// decimal itself. Text cells that begin with =, +, -, @, a tab or a carriage return are
// neutralised with a leading ' as in CSV.
type XLSX struct {
	opts DocumentOptions
}

// NewXLSX returns an XLSX renderer; invalid options are an error.
func NewXLSX(o DocumentOptions) (*XLSX, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("xlsx: %w", err)
	}
	return &XLSX{opts: o}, nil
}

// Format returns "xlsx".
func (x *XLSX) Format() string { return "xlsx" }

// Extension returns "xlsx".
func (x *XLSX) Extension() string { return "xlsx" }

// Sheet names.
const (
	SummarySheet = "Summary"
	DetailSheet  = "Detail"
)

// DetailColumns are the header of the Detail sheet.
var DetailColumns = []string{"Section", "Resource ID", "Resource type", "Description", "Region", "Attributes",
	"Start", "End", "Seconds", "Quantity", "Unit", "Billed per", "Unit price", "Amount"}

type xlsxStyles struct {
	title, bold, muted, date, dateTime, amount, amountBold, amountDue, price, qty, seconds, percent, header, section int
}

// Render writes inv as an XLSX workbook to w.
func (x *XLSX) Render(w io.Writer, inv *invoice.Invoice) (err error) {
	if inv == nil {
		return errors.New("render xlsx: no invoice")
	}
	info, err := x.opts.info(inv)
	if err != nil {
		return fmt.Errorf("render xlsx %s: %w", inv.Number, err)
	}
	f := excelize.NewFile()
	f.SetZipWriter(func(w io.Writer) excelize.ZipWriter { return newOrderedZip(w, xlsxCompression) })
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("render xlsx %s: %w", inv.Number, cerr)
		}
	}()
	wrap := func(err error) error { return fmt.Errorf("render xlsx %s: %w", inv.Number, err) }
	st, err := x.styles(f, inv, info)
	if err != nil {
		return wrap(err)
	}
	if err := f.SetSheetName("Sheet1", SummarySheet); err != nil {
		return wrap(err)
	}
	if _, err := f.NewSheet(DetailSheet); err != nil {
		return wrap(err)
	}
	// Before any cell is written: SetActiveSheet reads every worksheet, and called after the
	// Detail sheet is streamed it would parse the whole stream back into memory for nothing.
	f.SetActiveSheet(0)
	if err := x.summary(f, inv, info, st); err != nil {
		return wrap(err)
	}
	if err := x.detail(f, inv, info, st); err != nil {
		return wrap(err)
	}
	when := info.issued.Format(time.RFC3339)
	if err := f.SetDocProps(&excelize.DocProperties{
		Title: info.title + " " + inv.Number, Subject: info.period(inv), Creator: "Bilean", LastModifiedBy: "Bilean",
		Created: when, Modified: when, Category: "Invoice", Language: info.loc.Tag,
	}); err != nil {
		return wrap(err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return wrap(err)
	}
	return nil
}

func (x *XLSX) styles(f *excelize.File, inv *invoice.Invoice, info docInfo) (xlsxStyles, error) {
	var st xlsxStyles
	var errs []error
	add := func(dst *int, s *excelize.Style) {
		id, err := f.NewStyle(s)
		errs = append(errs, err)
		*dst = id
	}
	amountFmt := "#,##0"
	if sc := inv.Subtotal.Scale(); sc > 0 {
		amountFmt += "." + strings.Repeat("0", sc)
	}
	amountFmt = amountFmt + ";-" + amountFmt
	ink := "212529"
	add(&st.title, &excelize.Style{Font: &excelize.Font{Bold: true, Size: 16, Color: "1F385C"}})
	add(&st.bold, &excelize.Style{Font: &excelize.Font{Bold: true, Color: ink}})
	add(&st.muted, &excelize.Style{Font: &excelize.Font{Color: "6C757D"}})
	add(&st.date, &excelize.Style{CustomNumFmt: &info.loc.XLSXDate, Alignment: &excelize.Alignment{Horizontal: "left"}})
	dt := "yyyy-mm-dd hh:mm:ss"
	add(&st.dateTime, &excelize.Style{CustomNumFmt: &dt})
	add(&st.amount, &excelize.Style{CustomNumFmt: &amountFmt})
	add(&st.amountBold, &excelize.Style{CustomNumFmt: &amountFmt, Font: &excelize.Font{Bold: true},
		Border: []excelize.Border{{Type: "top", Color: ink, Style: 1}}})
	add(&st.amountDue, &excelize.Style{CustomNumFmt: &amountFmt, Font: &excelize.Font{Bold: true, Color: "FFFFFF"},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"1F385C"}}})
	price := "#,##0.00######"
	add(&st.price, &excelize.Style{CustomNumFmt: &price})
	add(&st.qty, &excelize.Style{NumFmt: 0})
	secs := "#,##0"
	add(&st.seconds, &excelize.Style{CustomNumFmt: &secs})
	pct := "0%"
	if sc := inv.TaxRate.Trim(0).Scale() - 2; sc > 0 {
		pct = "0." + strings.Repeat("0", sc) + "%"
	}
	add(&st.percent, &excelize.Style{CustomNumFmt: &pct})
	add(&st.header, &excelize.Style{Font: &excelize.Font{Bold: true, Color: "FFFFFF"},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"1F385C"}}})
	add(&st.section, &excelize.Style{Font: &excelize.Font{Bold: true, Color: "1F385C"},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"EAEFF6"}}})
	return st, errors.Join(errs...)
}

// day returns t's date in tz as a zoneless midnight, for a date cell.
func day(t time.Time, tz *time.Location) time.Time {
	t = t.In(tz)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// num converts a stored decimal for a spreadsheet cell (see XLSX).
func num(d decimal.Decimal) float64 {
	v, _ := d.Float64()
	return v
}

// newlines folds line breaks in user text onto one line.
var newlines = strings.NewReplacer("\r\n", " ", "\n", " ")

// text returns a cell value for user text, neutralised against formula injection.
func text(s string) string {
	if strings.IndexByte(s, '\n') >= 0 {
		s = newlines.Replace(s)
	}
	return neutralise(s)
}

// sheet writes the cells of a streamed sheet row by row (rows in increasing order, as the
// StreamWriter requires) and remembers the first error.
type sheet struct {
	sw    *excelize.StreamWriter
	row   int   // the row being filled, 0 before the first cell
	cells []any // its cells, A first
	err   error
}

// flush writes the row being filled.
func (s *sheet) flush() {
	if s.row == 0 || s.err != nil {
		return
	}
	n := len(s.cells)
	for n > 0 && s.cells[n-1] == nil {
		n--
	}
	if n > 0 {
		s.err = s.sw.SetRow("A"+strconv.Itoa(s.row), s.cells[:n])
	}
	clear(s.cells)
	s.row = 0
}

// put places a cell value in column col (a single letter) of row.
func (s *sheet) put(col string, row int, v any) {
	if s.err != nil {
		return
	}
	if row != s.row {
		if row < s.row {
			s.err = fmt.Errorf("summary: row %d written after row %d", row, s.row)
			return
		}
		s.flush()
		s.row = row
	}
	s.cells[col[0]-'A'] = v
}

func (s *sheet) set(col string, row int, v any, style int) {
	if str, ok := v.(string); ok {
		v = text(str)
	}
	if style != 0 {
		v = excelize.Cell{StyleID: style, Value: v}
	}
	s.put(col, row, v)
}

// formula writes a formula with its cached value.
func (s *sheet) formula(col string, row int, formula string, cached decimal.Decimal, style int) {
	s.put(col, row, excelize.Cell{StyleID: style, Formula: formula, Value: num(cached)})
}

func (x *XLSX) summary(f *excelize.File, inv *invoice.Invoice, info docInfo, st xlsxStyles) error {
	sw, err := f.NewStreamWriter(SummarySheet)
	if err != nil {
		return err
	}
	s := &sheet{sw: sw, cells: make([]any, 7)}
	is := x.opts.Issuer
	if err := setColWidths(sw, 46, 24, 13, 11, 11, 24, 15); err != nil {
		return err
	}
	r := 1
	s.set("A", r, info.title, st.title)
	r += 2
	if is.Name != "" {
		s.set("A", r, is.Name, st.bold)
		r++
	}
	for _, l := range is.Address {
		s.set("A", r, l, st.muted)
		r++
	}
	if is.TaxID != "" {
		s.set("A", r, "VAT ID "+is.TaxID, st.muted)
		r++
	}
	if is.Email != "" {
		s.set("A", r, is.Email, st.muted)
		r++
	}
	r++
	fact := func(label string, v any, style int) {
		s.set("A", r, label, st.muted)
		s.set("B", r, v, style)
		r++
	}
	fact("Invoice number", firstNonEmpty(inv.Number, "—"), st.bold)
	fact("Issue date", day(info.issued, info.tz), st.date)
	fact("Due date", day(info.due, info.tz), st.date)
	if !inv.Period.Start.IsZero() {
		fact("Period start", day(inv.Period.Start, info.tz), st.date)
		fact("Period end", day(info.lastDay(inv.Period.End), info.tz), st.date)
	}
	fact("Currency", inv.Currency, 0)
	fact("Customer", firstNonEmpty(inv.CustomerName, inv.CustomerID), st.bold)
	fact("Customer ID", inv.CustomerID, 0)
	for i, l := range info.customer.Address {
		label := ""
		if i == 0 {
			label = "Address"
		}
		fact(label, l, 0)
	}
	if info.customer.TaxID != "" {
		fact("Customer VAT ID", info.customer.TaxID, 0)
	}
	if info.customer.Reference != "" {
		fact("Your reference", info.customer.Reference, 0)
	}
	if inv.Replaces != "" {
		fact("Replaces", inv.Replaces, 0)
	}
	if inv.Status == invoice.Void {
		fact("Status", "VOID: "+inv.VoidReason, st.bold)
	}
	r++
	for i, h := range []string{"Description", "Resource", "Quantity", "Unit", "Billed per", "Unit price", "Amount"} {
		s.set(string(rune('A'+i)), r, h, st.header)
	}
	r++
	first, last := r, r-1
	for _, g := range groups(inv) {
		for c := 'A'; c <= 'G'; c++ {
			s.set(string(c), r, "", st.section)
		}
		s.set("A", r, g.title, st.section)
		r++
		for _, l := range g.lines {
			s.set("A", r, firstNonEmpty(l.Description, l.ResourceID), 0)
			s.set("B", r, l.ResourceID, 0)
			s.set("C", r, num(l.Quantity), st.qty)
			s.set("D", r, l.Unit, 0)
			s.set("E", r, l.Granularity, 0)
			s.set("F", r, num(l.UnitPrice), st.price)
			s.set("G", r, num(l.Amount), st.amount)
			last = r
			r++
		}
	}
	r++
	sum := "0"
	if last >= first {
		sum = fmt.Sprintf("SUM(G%d:G%d)", first, r-2)
	}
	sub := r
	s.set("F", r, "Subtotal", 0)
	s.formula("G", r, sum, inv.Subtotal, st.amount)
	r++
	s.set("F", r, "Tax rate", 0)
	s.set("G", r, num(inv.TaxRate), st.percent)
	r++
	tax := r
	s.set("F", r, "Tax", 0)
	s.set("G", r, num(inv.Tax), st.amount)
	r++
	total := r
	s.set("F", r, "Total", st.bold)
	s.formula("G", r, fmt.Sprintf("G%d+G%d", sub, tax), inv.Total, st.amountBold)
	r++
	prev := r
	s.set("F", r, "Balance carried forward", 0)
	s.set("G", r, num(inv.PreviousBalance), st.amount)
	r++
	paid := r
	s.set("F", r, "Less payments received", 0)
	s.set("G", r, num(inv.Payments), st.amount)
	r++
	s.set("F", r, "Amount due", st.header)
	s.formula("G", r, fmt.Sprintf("G%d+G%d-G%d", prev, total, paid), inv.BalanceDue, st.amountDue)
	r += 2
	b := is.Bank
	s.set("A", r, "Payment details", st.bold)
	r++
	for _, p := range [][2]string{
		{"Due date", ""},
		{"Account holder", firstNonEmpty(b.Holder, is.Name)},
		{"Bank", b.Name}, {"IBAN", b.IBAN}, {"BIC", b.BIC}, {"Account", b.Account},
		{"Reference", firstNonEmpty(inv.Number, inv.CustomerID)},
	} {
		if p[0] == "Due date" {
			fact(p[0], day(info.due, info.tz), st.date)
			continue
		}
		if p[1] != "" {
			fact(p[0], p[1], 0)
		}
	}
	if s.flush(); s.err != nil {
		return s.err
	}
	return sw.Flush()
}

// setColWidths sets the widths of columns A, B, ... of a streamed sheet. excelize puts each
// column it is given before those it already has, so they are given last first: the sheet then
// lists its columns in ascending order, as spreadsheet applications expect.
func setColWidths(sw *excelize.StreamWriter, widths ...float64) error {
	for i := len(widths) - 1; i >= 0; i-- {
		if err := sw.SetColWidth(i+1, i+1, widths[i]); err != nil {
			return err
		}
	}
	return nil
}

func (x *XLSX) detail(f *excelize.File, inv *invoice.Invoice, info docInfo, st xlsxStyles) error {
	sw, err := f.NewStreamWriter(DetailSheet)
	if err != nil {
		return err
	}
	if err := setColWidths(sw, 12, 38, 22, 40, 12, 30, 20, 20, 12, 14, 10, 10, 12, 14); err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	header := make([]any, len(DetailColumns))
	zone := info.tz.String()
	for i, h := range DetailColumns {
		if h == "Start" || h == "End" {
			h += " (" + zone + ")"
		}
		header[i] = excelize.Cell{StyleID: st.header, Value: h}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	// One row of cells reused for every line: SetRow takes *Cell, so nothing is boxed per cell
	// but the values themselves.
	var cells [14]excelize.Cell
	row := make([]any, len(cells))
	for i := range cells {
		row[i] = &cells[i]
	}
	cells[8].StyleID, cells[9].StyleID, cells[12].StyleID, cells[13].StyleID = st.seconds, st.qty, st.price, st.amount
	at := func(c *excelize.Cell, t time.Time) {
		if t.IsZero() {
			*c = excelize.Cell{} // an empty, unstyled cell
			return
		}
		// Excel times have no zone: write the wall clock of the document's zone.
		wall := t.In(info.tz)
		*c = excelize.Cell{StyleID: st.dateTime,
			Value: time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, time.UTC)}
	}
	for i := range inv.Lines {
		l := &inv.Lines[i]
		cells[0].Value = text(string(l.Section))
		cells[1].Value = text(l.ResourceID)
		cells[2].Value = text(l.ResourceType)
		cells[3].Value = text(l.Description)
		cells[4].Value = text(l.Region)
		cells[5].Value = text(attributes(l.Attributes))
		at(&cells[6], l.Start)
		at(&cells[7], l.End)
		cells[8].Value = l.Seconds
		cells[9].Value = num(l.Quantity)
		cells[10].Value = text(l.Unit)
		cells[11].Value = text(l.Granularity)
		cells[12].Value = num(l.UnitPrice)
		cells[13].Value = num(l.Amount)
		if err := sw.SetRow("A"+strconv.Itoa(i+2), row); err != nil {
			return fmt.Errorf("detail line %d: %w", i+1, err)
		}
	}
	n := len(inv.Lines)
	if n > 0 {
		if err := sw.AddTable(&excelize.Table{Range: fmt.Sprintf("A1:N%d", n+1), Name: "Lines", StyleName: "TableStyleLight1"}); err != nil {
			return err
		}
	}
	sum := "0"
	if n > 0 {
		sum = fmt.Sprintf("SUM(N2:N%d)", n+1)
	}
	totals := []any{excelize.Cell{StyleID: st.bold, Value: "Subtotal"}}
	for len(totals) < len(DetailColumns)-1 {
		totals = append(totals, nil)
	}
	totals = append(totals, excelize.Cell{StyleID: st.amountBold, Formula: sum, Value: num(inv.Subtotal)})
	if err := sw.SetRow(fmt.Sprintf("A%d", n+3), totals); err != nil {
		return err
	}
	return sw.Flush()
}
