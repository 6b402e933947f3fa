package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/templates/fonts"
	"github.com/govalues/decimal"
	"github.com/jung-kurt/gofpdf"
)

// PDF renders an invoice as an A4 PDF document with gofpdf: the issuer and customer blocks,
// the invoice's number, dates, period and currency, the lines grouped by section with a table
// header repeated on every page, the totals, the payment details and "Page N of M" in the
// footer. Text is drawn with embedded TrueType fonts (templates/fonts), chosen character by
// character along fonts.Chain: DejaVu Sans as a single-byte (Windows-1252) font for ordinary
// Western text, which costs a document almost nothing, DejaVu Sans as a UTF-8 font for other
// Latin, Greek and Cyrillic, and Droid Sans Fallback for Chinese, Japanese and Korean; the
// UTF-8 fonts are embedded only in documents that use them, as gofpdf parses and subsets them
// on every document. Bold is the regular glyphs filled and stroked, so that no second face is
// embedded (see BenchmarkPDF10kParallel). The output is byte-for-byte stable: the PDF's
// creation and modification dates are the invoice's issue date and nothing random is written.
//
// A PDF is safe for concurrent use: every Render builds its own document.
type PDF struct {
	opts    DocumentOptions
	logoTyp string
}

// NewPDF returns a PDF renderer; invalid options are an error.
func NewPDF(o DocumentOptions) (*PDF, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("pdf: %w", err)
	}
	return &PDF{opts: o, logoTyp: imageType(o.Issuer.Logo)}, nil
}

// Format returns "pdf".
func (p *PDF) Format() string { return "pdf" }

// Extension returns "pdf".
func (p *PDF) Extension() string { return "pdf" }

// Page geometry in millimetres (A4 portrait).
const (
	pageW        = 210.0
	pageH        = 297.0
	marginL      = 15.0
	marginR      = 15.0
	contentW     = pageW - marginL - marginR
	tableBottom  = 276.0 // rows end above the footer
	footerY      = 283.0
	contHeaderY  = 14.0 // continuation pages: invoice number and customer
	contTableY   = 24.0
	headerRowH   = 7.0
	sectionRowH  = 7.0
	lineRowH     = 9.5
	totalsRowH   = 6.2
	totalsBlockH = 6*totalsRowH + 8
	paymentH     = 44.0
)

// Colours.
var (
	colInk    = [3]int{33, 37, 41}
	colMuted  = [3]int{108, 117, 125}
	colHead   = [3]int{31, 56, 92}
	colBand   = [3]int{234, 239, 246}
	colRule   = [3]int{210, 215, 222}
	colAccent = [3]int{31, 56, 92}
	colVoid   = [3]int{180, 30, 30}
)

// table columns: x offsets from marginL and widths.
type column struct {
	title string
	w     float64
	align string
}

var columns = []column{
	{"Description", 68, "L"},
	{"Quantity", 26, "R"},
	{"Unit", 18, "L"},
	{"Billed per", 19, "L"},
	{"Unit price", 23, "R"},
	{"Amount", 26, "R"},
}

// row kinds of the line table.
const (
	rowSection = iota
	rowLine
)

type tableRow struct {
	kind  int
	title string
	line  *invoice.Line
}

// page is one page of the table: its rows, and whether the totals follow them.
type page struct {
	rows   []tableRow
	totals bool
}

// Render writes inv as a PDF to w.
func (p *PDF) Render(w io.Writer, inv *invoice.Invoice) error {
	if inv == nil {
		return errors.New("render pdf: no invoice")
	}
	info, err := p.opts.info(inv)
	if err != nil {
		return fmt.Errorf("render pdf %s: %w", inv.Number, err)
	}
	d := &pdfDoc{p: p, inv: inv, info: info, added: make([]bool, len(fonts.Chain)), font: -1}
	d.build()
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("render pdf %s: %w", inv.Number, err)
	}
	if err := d.pdf.Output(w); err != nil {
		return fmt.Errorf("render pdf %s: %w", inv.Number, err)
	}
	return nil
}

// pdfDoc is one document being drawn.
type pdfDoc struct {
	p      *PDF
	inv    *invoice.Invoice
	info   docInfo
	pdf    *gofpdf.Fpdf
	added  []bool  // which fonts.Chain entries are embedded in pdf
	font   int     // the selected fonts.Chain entry, -1 for none yet
	size   float64 // and its size
	pages  []page
	ink    [3]int // the text colour, which bold text is stroked with
	inkSet bool
}

// boldStroke is the outline width of bold text, in mm per point of font size: 0.065 em (mm per
// point is 25.4/72 em). DejaVu Sans Bold's stems are 0.085 em thicker than DejaVu Sans's; a
// little less keeps the counters of small letters open and the letters apart.
const boldStroke = 0.065 * 25.4 / 72

func (d *pdfDoc) build() {
	pdf := gofpdf.NewCustom(&gofpdf.InitType{OrientationStr: "P", UnitStr: "mm", SizeStr: "A4"})
	d.pdf = pdf
	pdf.SetCatalogSort(true) // fonts and images in a fixed order: byte-stable output
	pdf.SetCreationDate(d.info.issued)
	pdf.SetModificationDate(d.info.issued)
	pdf.SetProducer("Bilean", true)
	pdf.SetCreator("Bilean", true)
	pdf.SetTitle(d.info.title+" "+d.inv.Number, true)
	pdf.SetSubject(d.info.title+" for "+d.inv.CustomerName+", "+d.info.period(d.inv), true)
	if d.p.opts.Issuer.Name != "" {
		pdf.SetAuthor(d.p.opts.Issuer.Name, true)
	}
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetMargins(marginL, contHeaderY, marginR)
	pdf.SetCellMargin(0)
	if len(d.p.opts.Issuer.Logo) > 0 {
		pdf.RegisterImageOptionsReader("logo", gofpdf.ImageOptions{ImageType: d.p.logoTyp}, bytes.NewReader(d.p.opts.Issuer.Logo))
	}

	d.paginate()
	for i, pg := range d.pages {
		pdf.AddPage()
		d.font = -1 // gofpdf selects its current font again on a new page
		var y float64
		if i == 0 {
			y = d.firstPageHeader()
		} else {
			y = d.continuationHeader()
		}
		if len(pg.rows) > 0 {
			y = d.tableHeader(y)
			for _, r := range pg.rows {
				y = d.row(y, r)
			}
		}
		if pg.totals {
			d.totals(y + 4)
		}
		d.footer(i+1, len(d.pages))
	}
}

// firstTableY is where the table starts on the first page.
const firstTableY = 104.0

// paginate splits the table rows into pages: a section title never ends a page, and the
// totals and payment block go on the last page, or on a page of their own when they do not fit.
func (d *pdfDoc) paginate() {
	var rows []tableRow
	for _, g := range groups(d.inv) {
		rows = append(rows, tableRow{kind: rowSection, title: g.title})
		for _, l := range g.lines {
			rows = append(rows, tableRow{kind: rowLine, line: l})
		}
	}
	y := firstTableY + headerRowH
	cur := page{}
	for i, r := range rows {
		h := lineRowH
		need := h
		if r.kind == rowSection {
			h = sectionRowH
			need = h
			if i+1 < len(rows) {
				need += lineRowH
			}
		}
		if y+need > tableBottom && len(cur.rows) > 0 {
			d.pages = append(d.pages, cur)
			cur = page{}
			y = contTableY + headerRowH
		}
		cur.rows = append(cur.rows, r)
		y += h
	}
	if y+4+max(totalsBlockH, paymentH) > tableBottom {
		d.pages = append(d.pages, cur)
		cur = page{}
	}
	cur.totals = true
	d.pages = append(d.pages, cur)
}

// fitSize returns size, or the largest smaller size (down to 4.5 pt) at which s fits in width w.
func (d *pdfDoc) fitSize(s string, w, size float64) float64 {
	segs := d.segments(s)
	for size > 4.5 && d.width(segs, size, 0) > w {
		size -= 0.25
	}
	return size
}

// text draws s in the box [x, x+w) on the baseline band [y, y+h), aligned "L", "R" or "C",
// switching fonts along fonts.Chain for characters the first font lacks and cutting the text
// with "…" when it is too wide. Bold text is stroked as well as filled, and its letters are
// spaced by the stroke's width so that they keep their distance.
func (d *pdfDoc) text(x, y, w, h float64, s string, align string, bold bool, size float64) {
	if s == "" {
		return
	}
	spacing := 0.0
	if bold {
		spacing = size * boldStroke
	}
	segs := d.segments(s)
	total := d.width(segs, size, spacing)
	if total > w+0.01 {
		// The longest prefix that fits with an ellipsis, found by bisection: measuring every
		// shorter prefix in turn made long detail lines quadratic.
		rs := []rune(s)
		cut := func(n int) string { return strings.TrimRight(string(rs[:n]), " ") + "…" }
		lo, hi := 0, len(rs)-1 // cut(lo) fits (an ellipsis alone is assumed to); cut(hi+1) does not
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if d.width(d.segments(cut(mid)), size, spacing) <= w {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		segs = d.segments(cut(lo))
		total = d.width(segs, size, spacing)
	}
	cx := x
	switch align {
	case "R":
		cx = x + w - total
	case "C":
		cx = x + (w-total)/2
	}
	if bold { // fill and stroke the glyphs in the text colour; Tc spaces the letters
		d.pdf.SetTextRenderingMode(2)
		d.draw(d.ink)
		d.pdf.SetLineWidth(spacing)
		d.pdf.RawWriteStr(strconv.FormatFloat(spacing*d.pdf.GetConversionRatio(), 'f', 3, 64) + " Tc")
	}
	for _, sg := range segs {
		d.setFont(sg, size)
		sw := d.segWidth(sg, spacing)
		d.pdf.SetXY(cx, y)
		d.pdf.CellFormat(sw, h, sg.s, "", 0, "L", false, 0, "")
		cx += sw
	}
	if bold {
		d.pdf.SetTextRenderingMode(0)
		d.pdf.RawWriteStr("0 Tc")
	}
}

// segment is a run of text drawn with one font: fonts.Chain[font]. s is encoded for the font.
type segment struct {
	s     string
	font  int
	runes int // characters in the run
}

// segments splits s into runs by the font that draws each character; a character no font has
// is drawn as U+FFFD.
func (d *pdfDoc) segments(s string) []segment {
	var out []segment
	var b strings.Builder
	cur, n := 0, 0
	flush := func() {
		if b.Len() > 0 {
			out = append(out, segment{s: fonts.Chain[cur].Encode(b.String()), font: cur, runes: n})
			b.Reset()
			n = 0
		}
	}
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		f := fonts.For(r)
		if f < 0 {
			r, f = '\uFFFD', fonts.For('\uFFFD')
		}
		if f != cur {
			flush()
		}
		cur = f
		b.WriteRune(r)
		n++
	}
	flush()
	return out
}

// setFont selects the segment's font, embedding it in the document on first use. gofpdf writes
// a font selection to the page on every SetFont, so it is called only on a change.
func (d *pdfDoc) setFont(sg segment, size float64) {
	if sg.font == d.font && size == d.size {
		return
	}
	f := fonts.Chain[sg.font]
	if !d.added[sg.font] {
		if f.SingleByte() {
			d.pdf.AddFontFromBytes(f.Name, "", f.Def, f.Z)
		} else {
			d.pdf.AddUTF8FontFromBytes(f.Name, "", f.TTF)
		}
		d.added[sg.font] = true
	}
	d.pdf.SetFont(f.Name, "", size)
	d.font, d.size = sg.font, size
}

// width is the width of segs in mm with letters spaced by spacing mm.
func (d *pdfDoc) width(segs []segment, size, spacing float64) float64 {
	t := 0.0
	for _, sg := range segs {
		d.setFont(sg, size)
		t += d.segWidth(sg, spacing)
	}
	return t
}

// segWidth is the width of sg in the current font, with letters spaced by spacing mm.
func (d *pdfDoc) segWidth(sg segment, spacing float64) float64 {
	return d.pdf.GetStringWidth(sg.s) + spacing*float64(sg.runes)
}

// color sets the text colour (gofpdf formats it on every call, so only on a change).
func (d *pdfDoc) color(c [3]int) {
	if d.inkSet && c == d.ink {
		return
	}
	d.ink, d.inkSet = c, true
	d.pdf.SetTextColor(c[0], c[1], c[2])
}

func (d *pdfDoc) fill(c [3]int) { d.pdf.SetFillColor(c[0], c[1], c[2]) }
func (d *pdfDoc) draw(c [3]int) { d.pdf.SetDrawColor(c[0], c[1], c[2]) }

// firstPageHeader draws the issuer, title, invoice facts and the customer; it returns where the
// table starts.
func (d *pdfDoc) firstPageHeader() float64 {
	is := d.p.opts.Issuer
	inv := d.inv
	y := 14.0
	// Issuer, top left, under the logo.
	if len(is.Logo) > 0 {
		d.pdf.ImageOptions("logo", marginL, y, 0, 14, false, gofpdf.ImageOptions{ImageType: d.p.logoTyp}, 0, "")
		y += 17
	}
	leftW := 95.0
	if is.Name != "" {
		d.color(colInk)
		d.text(marginL, y, leftW, 6, is.Name, "L", true, 12)
		y += 6.5
	}
	d.color(colMuted)
	small := []string{}
	small = append(small, is.Address...)
	if is.TaxID != "" {
		small = append(small, "VAT ID "+is.TaxID)
	}
	if is.Registration != "" {
		small = append(small, is.Registration)
	}
	contact := joinNonEmpty(" · ", is.Email, is.Phone, is.Website)
	if contact != "" {
		small = append(small, contact)
	}
	for _, s := range small {
		d.text(marginL, y, leftW, 4, s, "L", false, 8)
		y += 4
	}

	// Title and facts, top right.
	rx, rw := 105.0, pageW-marginR-105.0
	ty := 14.0
	d.color(colHead)
	title := strings.ToUpper(d.info.title)
	if d.inv.Status == invoice.Void {
		title = "INVOICE"
	}
	d.text(rx, ty, rw, 10, title, "R", true, 20)
	ty += 11
	if inv.Status == invoice.Void {
		d.color(colVoid)
		d.text(rx, ty, rw, 5, "VOID – "+firstNonEmpty(inv.VoidReason, "cancelled"), "R", true, 9)
		ty += 6
	}
	if d.info.title == "Interim statement" {
		d.color(colMuted)
		d.text(rx, ty, rw, 4.5, "Not a tax invoice: usage to date, not yet billed", "R", false, 7.5)
		ty += 5.5
	}
	facts := [][2]string{
		{"Invoice number", firstNonEmpty(inv.Number, "—")},
		{"Issue date", d.info.date(d.info.issued)},
		{"Due date", d.info.date(d.info.due)},
		{"Billing period", d.info.period(inv)},
		{"Currency", inv.Currency},
	}
	if inv.Replaces != "" {
		facts = append(facts, [2]string{"Replaces", inv.Replaces})
	}
	if inv.ReplacedBy != "" {
		facts = append(facts, [2]string{"Replaced by", inv.ReplacedBy})
	}
	if d.info.customer.Reference != "" {
		facts = append(facts, [2]string{"Your reference", d.info.customer.Reference})
	}
	for _, f := range facts {
		d.color(colMuted)
		d.text(rx, ty, 26, 5, f[0], "L", false, 8)
		d.color(colInk)
		d.text(rx+26, ty, rw-26, 5, f[1], "R", f[0] == "Invoice number", 8.5)
		ty += 5
	}

	// Bill to, left; amount due box, right.
	by := max(y, ty) + 7
	by = max(by, 62)
	d.color(colMuted)
	d.text(marginL, by, 90, 4, "BILL TO", "L", true, 7.5)
	cy := by + 5
	d.color(colInk)
	d.text(marginL, cy, 95, 6, firstNonEmpty(inv.CustomerName, inv.CustomerID), "L", true, 11)
	cy += 6.5
	d.color(colMuted)
	lines := append([]string{}, d.info.customer.Address...)
	if d.info.customer.TaxID != "" {
		lines = append(lines, "VAT ID "+d.info.customer.TaxID)
	}
	lines = append(lines, "Customer ID "+inv.CustomerID)
	for _, s := range lines {
		d.text(marginL, cy, 95, 4, s, "L", false, 8)
		cy += 4
	}

	bx, bw, bh := 128.0, pageW-marginR-128.0, 24.0
	d.fill(colBand)
	d.pdf.Rect(bx, by, bw, bh, "F")
	d.fill(colAccent)
	d.pdf.Rect(bx, by, 1.2, bh, "F")
	d.color(colMuted)
	label, by2 := "AMOUNT DUE", "by "+d.info.date(d.info.due)
	if !inv.BalanceDue.IsPos() {
		label, by2 = "BALANCE", "in your favour: nothing to pay"
	}
	d.text(bx+5, by+3, bw-8, 4, label, "L", true, 7.5)
	d.color(colHead)
	d.text(bx+5, by+8, bw-8, 8, d.info.loc.money(inv.BalanceDue, inv.Currency), "L", true, 16)
	d.color(colMuted)
	d.text(bx+5, by+17, bw-8, 4, by2, "L", false, 8)
	return max(firstTableY, cy+6)
}

// continuationHeader draws the top of the second and later pages.
func (d *pdfDoc) continuationHeader() float64 {
	d.color(colInk)
	d.text(marginL, contHeaderY, 110, 5, d.info.title+" "+firstNonEmpty(d.inv.Number, "")+" · "+firstNonEmpty(d.inv.CustomerName, d.inv.CustomerID), "L", true, 9)
	d.color(colMuted)
	d.text(pageW-marginR-70, contHeaderY, 70, 5, d.info.period(d.inv), "R", false, 8)
	d.draw(colRule)
	d.pdf.SetLineWidth(0.2)
	d.pdf.Line(marginL, contHeaderY+6.5, pageW-marginR, contHeaderY+6.5)
	return contTableY
}

func (d *pdfDoc) tableHeader(y float64) float64 {
	d.fill(colHead)
	d.pdf.Rect(marginL, y, contentW, headerRowH, "F")
	d.color([3]int{255, 255, 255})
	x := marginL
	for _, c := range columns {
		d.text(x+1.5, y+1, c.w-3, headerRowH-2, c.title, c.align, true, 7.5)
		x += c.w
	}
	return y + headerRowH
}

func (d *pdfDoc) row(y float64, r tableRow) float64 {
	if r.kind == rowSection {
		d.fill(colBand)
		d.pdf.Rect(marginL, y+0.8, contentW, sectionRowH-0.8, "F")
		d.color(colHead)
		d.text(marginL+1.5, y+1.5, contentW-3, sectionRowH-2, r.title, "L", true, 8.5)
		return y + sectionRowH
	}
	l := r.line
	loc := d.info.loc
	cells := []string{
		firstNonEmpty(l.Description, l.ResourceID),
		loc.quantity(l.Quantity),
		l.Unit,
		l.Granularity,
		loc.number(l.UnitPrice),
		loc.number(l.Amount),
	}
	x := marginL
	for i, c := range columns {
		d.color(colInk)
		size := 8.0
		if c.align == "R" {
			// A figure is never cut: an accountant must be able to read all of it.
			size = d.fitSize(cells[i], c.w-3, size)
		}
		d.text(x+1.5, y+1.2, c.w-3, 4.2, cells[i], c.align, false, size)
		x += c.w
	}
	// Second line: what the customer needs to find the resource and check the quantity.
	var span, secs string
	if !l.Start.IsZero() {
		span = d.info.stamp(l.Start) + " – " + d.info.stamp(l.End)
	}
	if l.Seconds > 0 {
		secs = loc.number(decimal.MustNew(l.Seconds, 0)) + " s"
	}
	detail := joinNonEmpty(" · ", l.ResourceID, span, secs, l.Region, attributes(l.Attributes))
	d.color(colMuted)
	d.text(marginL+1.5, y+5.2, contentW-3-columns[5].w, 3.4, detail, "L", false, 6.3)
	d.draw(colRule)
	d.pdf.SetLineWidth(0.15)
	d.pdf.Line(marginL, y+lineRowH, pageW-marginR, y+lineRowH)
	return y + lineRowH
}

// totals draws the payment details on the left and the totals on the right.
func (d *pdfDoc) totals(y float64) {
	inv := d.inv
	loc := d.info.loc
	cur := inv.Currency
	tx, tw := 112.0, pageW-marginR-112.0
	type trow struct {
		label  string
		amount decimal.Decimal
		strong bool
	}
	rows := []trow{
		{"Subtotal", inv.Subtotal, false},
		{"Tax " + loc.percent(inv.TaxRate), inv.Tax, false},
		{"Total", inv.Total, true},
		{"Balance carried forward", inv.PreviousBalance, false},
		{"Less payments received", inv.Payments, false},
	}
	ty := y
	for _, r := range rows {
		if r.strong {
			d.draw(colInk)
			d.pdf.SetLineWidth(0.3)
			d.pdf.Line(tx, ty+0.3, tx+tw, ty+0.3)
		}
		d.color(colInk)
		d.text(tx+2, ty+1, tw*0.6, totalsRowH-1.5, r.label, "L", r.strong, 8.5)
		d.text(tx+tw*0.5, ty+1, tw*0.5-2, totalsRowH-1.5, loc.money(r.amount, cur), "R", r.strong, 8.5)
		ty += totalsRowH
	}
	ty += 1
	d.fill(colHead)
	d.pdf.Rect(tx, ty, tw, totalsRowH+2, "F")
	d.color([3]int{255, 255, 255})
	d.text(tx+2, ty+1.6, tw*0.6, totalsRowH-1, "Amount due", "L", true, 9.5)
	d.text(tx+tw*0.4, ty+1.6, tw*0.6-2, totalsRowH-1, loc.money(inv.BalanceDue, cur), "R", true, 9.5)

	// Payment details.
	px, pw := marginL, 88.0
	py := y
	b := d.p.opts.Issuer.Bank
	d.color(colHead)
	d.text(px, py, pw, 5, "Payment details", "L", true, 9)
	py += 6
	terms := d.p.opts.Terms
	switch {
	case terms != "":
	case inv.BalanceDue.IsPos():
		terms = "Please pay " + loc.money(inv.BalanceDue, cur) + " by " + d.info.date(d.info.due) + "."
	default:
		terms = "Nothing to pay: the balance is in your favour."
	}
	d.color(colInk)
	d.text(px, py, pw, 4.2, terms, "L", false, 8)
	py += 5
	facts := [][2]string{
		{"Account holder", firstNonEmpty(b.Holder, d.p.opts.Issuer.Name)},
		{"Bank", b.Name},
		{"IBAN", b.IBAN},
		{"BIC", b.BIC},
		{"Account", b.Account},
		{"Reference", firstNonEmpty(inv.Number, inv.CustomerID)},
	}
	for _, f := range facts {
		if f[1] == "" {
			continue
		}
		d.color(colMuted)
		d.text(px, py, 26, 4.2, f[0], "L", false, 8)
		d.color(colInk)
		d.text(px+26, py, pw-26, 4.2, f[1], "L", f[0] == "IBAN" || f[0] == "Reference", 8)
		py += 4.4
	}
	if inv.Status == invoice.Void {
		d.color(colVoid)
		d.text(px, py+2, pw, 4.2, "This invoice is void and must not be paid.", "L", true, 8)
	}
}

func (d *pdfDoc) footer(n, of int) {
	d.draw(colRule)
	d.pdf.SetLineWidth(0.2)
	d.pdf.Line(marginL, footerY-2, pageW-marginR, footerY-2)
	is := d.p.opts.Issuer
	d.color(colMuted)
	left := joinNonEmpty(" · ", is.Name, vatID(is.TaxID), firstNonEmpty(d.inv.Number, d.info.title))
	d.text(marginL, footerY, 140, 4, left, "L", false, 7)
	d.text(pageW-marginR-40, footerY, 40, 4, "Page "+strconv.Itoa(n)+" of "+strconv.Itoa(of), "R", false, 7)
}

func vatID(id string) string {
	if id == "" {
		return ""
	}
	return "VAT ID " + id
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if strings.TrimSpace(p) != "" && strings.TrimSpace(p) != "–" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
