// Package audit checks stored invoices the way an auditor would: each issued invoice re-derived
// through the calculator must match the stored one line by line, and the invariants the store
// promises must hold (no overlapping live ranges, lines that add up, billed ranges within the
// resource's records, gapless numbers). It compares; it never writes.
package audit

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

// Severities of a finding: an error makes `bilean verify` exit 1; a note is what a healthy store
// can show for a while (a span closed after its month was invoiced waits for its credit).
const (
	Error = "error"
	Note  = "note"
)

// Finding is one discrepancy, naming the document, the line and the field.
type Finding struct {
	Severity string    `json:"severity"`
	Invoice  string    `json:"invoice"`
	Check    string    `json:"check"`          // line, totals, overlap, coverage, numbering
	Line     int       `json:"line,omitempty"` // 1-based position in the stored invoice
	Resource string    `json:"resource,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Field    string    `json:"field,omitempty"` // amount, quantity, unit_price, subtotal…
	Stored   string    `json:"stored,omitempty"`
	Derived  string    `json:"derived,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", f.Severity, f.Invoice, f.Check)
	if f.Line > 0 {
		fmt.Fprintf(&b, " line %d", f.Line)
	}
	if f.Resource != "" {
		fmt.Fprintf(&b, " %s", f.Resource)
	}
	if !f.Start.IsZero() {
		fmt.Fprintf(&b, " %s", interval.New(f.Start, f.End))
	}
	if f.Field != "" {
		fmt.Fprintf(&b, " %s: stored %s, derived %s", f.Field, f.Stored, f.Derived)
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, ": %s", f.Detail)
	}
	return b.String()
}

// lineKey matches a stored line with its re-derived twin.
func lineKey(l invoice.Line) string {
	return strings.Join([]string{string(l.Section), l.ResourceType, l.ResourceID, l.Start.UTC().Format(time.RFC3339),
		l.End.UTC().Format(time.RFC3339), l.Description}, "|")
}

// CompareLines reports every stored line whose quantity, unit price or amount differs from the
// line the calculator derives for the same section, resource, range and description, and every
// line only one side has.
func CompareLines(number string, stored, derived []invoice.Line) []Finding {
	type pos struct {
		l invoice.Line
		i int
	}
	want := map[string][]pos{}
	for i, l := range derived {
		k := lineKey(l)
		want[k] = append(want[k], pos{l, i})
	}
	var out []Finding
	for i, s := range stored {
		k := lineKey(s)
		ds := want[k]
		f := Finding{Severity: Error, Invoice: number, Check: "line", Line: i + 1, Resource: s.ResourceID, Start: s.Start, End: s.End}
		if len(ds) == 0 {
			f.Detail = fmt.Sprintf("%q (%s) is not derived from the stored records and policies", s.Description, s.Amount)
			out = append(out, f)
			continue
		}
		d := ds[0].l
		want[k] = ds[1:]
		for _, c := range []struct {
			field string
			a, b  decimal.Decimal
		}{{"quantity", s.Quantity, d.Quantity}, {"unit_price", s.UnitPrice, d.UnitPrice}, {"amount", s.Amount, d.Amount}} {
			if c.a.Cmp(c.b) != 0 {
				g := f
				g.Field, g.Stored, g.Derived = c.field, c.a.String(), c.b.String()
				out = append(out, g)
			}
		}
	}
	var extra []pos
	for _, ps := range want {
		extra = append(extra, ps...)
	}
	sort.Slice(extra, func(a, b int) bool { return extra[a].i < extra[b].i })
	for _, p := range extra {
		out = append(out, Finding{Severity: Error, Invoice: number, Check: "line", Resource: p.l.ResourceID, Start: p.l.Start, End: p.l.End,
			Detail: fmt.Sprintf("derived line %q (%s) is missing from the stored invoice", p.l.Description, p.l.Amount)})
	}
	return out
}

// CheckTotals reports an invoice whose lines do not add up to its subtotal, or whose total is not
// its subtotal plus its tax.
func CheckTotals(inv *invoice.Invoice) []Finding {
	var out []Finding
	sum := decimal.Zero
	for _, l := range inv.Lines {
		var err error
		if sum, err = sum.Add(l.Amount); err != nil {
			return []Finding{{Severity: Error, Invoice: inv.Number, Check: "totals", Detail: err.Error()}}
		}
	}
	if sum.Cmp(inv.Subtotal) != 0 {
		out = append(out, Finding{Severity: Error, Invoice: inv.Number, Check: "totals", Field: "subtotal", Stored: inv.Subtotal.String(), Derived: sum.String(),
			Detail: "the lines do not add up to the subtotal"})
	}
	if t, err := inv.Subtotal.Add(inv.Tax); err == nil && t.Cmp(inv.Total) != 0 {
		out = append(out, Finding{Severity: Error, Invoice: inv.Number, Check: "totals", Field: "total", Stored: inv.Total.String(), Derived: t.String(),
			Detail: "the total is not subtotal + tax"})
	}
	return out
}

// CheckOverlaps reports two live billed ranges of one resource and kind that overlap, across the
// given live invoices of one customer.
func CheckOverlaps(invs []*invoice.Invoice) []Finding {
	type held struct {
		r      interval.Range
		number string
	}
	by := map[string][]held{}
	for _, inv := range invs {
		for _, br := range inv.Ranges {
			k := string(br.Kind) + "|" + br.ResourceID
			by[k] = append(by[k], held{br.Range, inv.Number})
		}
	}
	var out []Finding
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hs := by[k]
		sort.Slice(hs, func(i, j int) bool { return hs[i].r.Start.Before(hs[j].r.Start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].r.Start.Before(hs[i-1].r.End) {
				_, res, _ := strings.Cut(k, "|")
				out = append(out, Finding{Severity: Error, Invoice: hs[i].number, Check: "overlap", Resource: res, Start: hs[i].r.Start, End: hs[i].r.End,
					Detail: fmt.Sprintf("overlaps %s billed on %s", hs[i-1].r, hs[i-1].number)})
			}
		}
	}
	return out
}

// CheckCoverage reports billed seconds of a resource that none of its records covers, over the
// customer's live invoices: charged minus credited must lie within the union of the records.
// What a later invoice will credit (a span closed after its month was invoiced) is a note.
func CheckCoverage(invs []*invoice.Invoice, records map[string][]billing.Record) []Finding {
	type acc struct {
		charged, credited []interval.Range
		last              string
	}
	by := map[string]*acc{}
	for _, inv := range invs {
		for _, br := range inv.Ranges {
			if billing.IsSubscriptionResource(br.ResourceID) || strings.HasPrefix(br.ResourceID, "meter/") {
				continue
			}
			a := by[br.ResourceID]
			if a == nil {
				a = &acc{}
				by[br.ResourceID] = a
			}
			if br.Kind == invoice.Credited {
				a.credited = append(a.credited, br.Range)
			} else {
				a.charged = append(a.charged, br.Range)
				a.last = inv.Number
			}
		}
	}
	ids := make([]string, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Finding
	for _, id := range ids {
		a := by[id]
		var rs []interval.Range
		for _, r := range records[id] {
			rs = append(rs, r.Range())
		}
		excess := interval.NewSet(a.charged...).Subtract(interval.NewSet(a.credited...)).Subtract(interval.NewSet(rs...))
		for _, r := range excess {
			sev, why := Note, "billed beyond the resource's records: a credit is due on the next invoice"
			if len(rs) == 0 {
				sev, why = Error, "billed, but the resource has no trigger records"
			}
			out = append(out, Finding{Severity: sev, Invoice: a.last, Check: "coverage", Resource: id, Start: r.Start, End: r.End, Detail: why})
		}
	}
	return out
}

var trailingSeq = regexp.MustCompile(`^(.*?)(\d+)$`)

// CheckNumbering reports gaps and repeats in each series of document numbers (the number less
// its trailing sequence), e.g. INV-2026-000001 … INV-2026-000007 without 000004.
func CheckNumbering(numbers []string) []Finding {
	series := map[string][]int64{}
	for _, n := range numbers {
		m := trailingSeq.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		seq, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			continue
		}
		series[m[1]] = append(series[m[1]], seq)
	}
	names := make([]string, 0, len(series))
	for s := range series {
		names = append(names, s)
	}
	sort.Strings(names)
	var out []Finding
	for _, s := range names {
		seqs := series[s]
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		want := int64(1)
		for _, q := range seqs {
			switch {
			case q < want:
				out = append(out, Finding{Severity: Error, Invoice: fmt.Sprintf("%s%d", s, q), Check: "numbering", Detail: fmt.Sprintf("series %q: number %d is used twice", s, q)})
			case q > want:
				missing := fmt.Sprintf("numbers %d to %d are missing", want, q-1)
				if want == q-1 {
					missing = fmt.Sprintf("number %d is missing", want)
				}
				out = append(out, Finding{Severity: Error, Invoice: fmt.Sprintf("%s…", s), Check: "numbering",
					Detail: fmt.Sprintf("series %q: %s", s, missing)})
				want = q + 1
			default:
				want++
			}
		}
	}
	return out
}
