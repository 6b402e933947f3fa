package usage

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
)

// Report is what a run would bill one customer for a period, by resource and meter: what
// `bilean usage` shows.
type Report struct {
	Customer string         `json:"customer"`
	Period   interval.Range `json:"period"`
	Source   string         `json:"source"` // gnocchi or store
	Spans    []SpanLine     `json:"spans"`
	Meters   []MeterLine    `json:"meters"`
	// Prices are the meter totals priced by the customer's policy, one per meter that has a
	// rule; meters without a rule are listed in Unpriced.
	Prices   []PriceLine `json:"prices,omitempty"`
	Unpriced []string    `json:"unpriced,omitempty"`
	Currency string      `json:"currency,omitempty"`
	Policy   string      `json:"policy,omitempty"`
}

// SpanLine is one trigger record clipped to the period.
type SpanLine struct {
	ResourceID   string            `json:"resource_id"`
	ResourceType string            `json:"resource_type"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	Hours        decimal.Decimal   `json:"hours"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Source       string            `json:"source"`
}

// MeterLine is one meter total of one resource.
type MeterLine struct {
	Meter        string            `json:"meter"`
	ResourceID   string            `json:"resource_id"`
	ResourceType string            `json:"resource_type"`
	Quantity     decimal.Decimal   `json:"quantity"`
	Unit         string            `json:"unit"`
	Aggregation  string            `json:"aggregation"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// PriceLine is one priced line of a meter's period total (a tiered price gives several).
type PriceLine struct {
	Meter       string          `json:"meter"`
	Description string          `json:"description"`
	Quantity    decimal.Decimal `json:"quantity"`
	Unit        string          `json:"unit"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	Amount      decimal.Decimal `json:"amount"`
}

// NewReport lists the records (clipped to the period, empty ones dropped) and meter totals.
func NewReport(customer string, period interval.Range, source string, recs []billing.Record, meters []billing.MeterTotal) *Report {
	rep := &Report{Customer: customer, Period: period, Source: source, Spans: []SpanLine{}, Meters: []MeterLine{}}
	for _, rec := range recs {
		r := rec.Range().Intersect(period)
		if r.Empty() {
			continue
		}
		hours, _ := decimal.MustNew(r.Seconds(), 0).Quo(decimal.MustNew(3600, 0))
		rep.Spans = append(rep.Spans, SpanLine{ResourceID: rec.ResourceID, ResourceType: rec.ResourceType,
			Start: r.Start, End: r.End, Hours: hours.Round(6).Trim(0), Attributes: rec.Attributes, Source: rec.Source})
	}
	sort.SliceStable(rep.Spans, func(i, j int) bool {
		a, b := rep.Spans[i], rep.Spans[j]
		if a.ResourceType != b.ResourceType {
			return a.ResourceType < b.ResourceType
		}
		if a.ResourceID != b.ResourceID {
			return a.ResourceID < b.ResourceID
		}
		return a.Start.Before(b.Start)
	})
	for _, m := range meters {
		rep.Meters = append(rep.Meters, MeterLine{Meter: m.Meter, ResourceID: m.ResourceID, ResourceType: m.ResourceType,
			Quantity: m.Quantity, Unit: m.Unit, Aggregation: m.Aggregation, Attributes: m.Attributes})
	}
	sort.SliceStable(rep.Meters, func(i, j int) bool {
		a, b := rep.Meters[i], rep.Meters[j]
		if a.Meter != b.Meter {
			return a.Meter < b.Meter
		}
		if a.Unit != b.Unit {
			return a.Unit < b.Unit
		}
		return a.ResourceID < b.ResourceID
	})
	return rep
}

// MeterTotals sums each meter over the customer's resources, in meter order; totals of one meter
// in different units (imported totals may mix B and GB) are summed per unit.
func (rep *Report) MeterTotals() []MeterLine {
	var out []MeterLine
	for _, m := range rep.Meters {
		if n := len(out); n > 0 && out[n-1].Meter == m.Meter && out[n-1].Unit == m.Unit {
			if s, err := out[n-1].Quantity.Add(m.Quantity); err == nil {
				out[n-1].Quantity = s
			}
			continue
		}
		out = append(out, MeterLine{Meter: m.Meter, Quantity: m.Quantity, Unit: m.Unit, Aggregation: m.Aggregation})
	}
	return out
}

// WriteTable prints the report for a terminal.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Usage of %s, %s (source: %s)\n", rep.Customer, rep.Period, rep.Source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSPANS\nRESOURCE TYPE\tRESOURCE\tSTART\tEND\tHOURS\tATTRIBUTES\n")
	for _, s := range rep.Spans {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ResourceType, s.ResourceID, s.Start.Format(time.RFC3339),
			s.End.Format(time.RFC3339), s.Hours, attrs(s.Attributes))
	}
	if len(rep.Spans) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	fmt.Fprintf(tw, "\nMETERS\nMETER\tRESOURCE TYPE\tRESOURCE\tQUANTITY\tUNIT\tAGGREGATION\n")
	for _, m := range rep.Meters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Meter, m.ResourceType, m.ResourceID, m.Quantity.Trim(0), m.Unit, m.Aggregation)
	}
	if len(rep.Meters) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	if totals := rep.MeterTotals(); len(totals) > 0 {
		fmt.Fprintf(tw, "\nMETER TOTALS\nMETER\tQUANTITY\tUNIT\n")
		for _, m := range totals {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Meter, m.Quantity.Trim(0), m.Unit)
		}
	}
	if len(rep.Prices) > 0 {
		fmt.Fprintf(tw, "\nPRICED METERS (policy %s, %s, before rounding and tax)\nMETER\tDESCRIPTION\tQUANTITY\tUNIT\tUNIT PRICE\tAMOUNT\n", rep.Policy, rep.Currency)
		for _, p := range rep.Prices {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Meter, p.Description, p.Quantity.Trim(0), p.Unit, p.UnitPrice, p.Amount.Trim(0))
		}
	}
	if len(rep.Unpriced) > 0 {
		fmt.Fprintf(tw, "\nNo rule prices: %s\n", strings.Join(rep.Unpriced, ", "))
	}
	return tw.Flush()
}

func attrs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}
