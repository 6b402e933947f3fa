package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// meterColumns are the named columns of a meter totals CSV file; the first six are required.
// Every other column is an attribute, as in usage files.
var meterColumns = []string{"id", "customer_id", "meter", "start", "end", "quantity", "unit",
	"resource_id", "resource_type", "aggregation", "source"}

var meterJSONKeys = append(slices.Clone(meterColumns), "attributes")

// DefaultAggregation is the aggregation of a meter total that names none.
const DefaultAggregation = "sum"

// Meters parses a file of meter totals (what Gnocchi would report: one meter aggregated over a
// range for one customer's resource), for `bilean import meters`.
//
// Formats, chosen by extension:
//   - .csv: a header row, then one total per row. Columns id, customer_id, meter, start, end,
//     quantity and unit are required; resource_id (empty: a customer-wide total), resource_type,
//     aggregation (sum, mean, max, last or rate; default sum) and source (default import) are
//     optional; every other column is an attribute (region…), empty cells omitted.
//   - .jsonl/.ndjson: one JSON object per line with those keys and attributes (an object of
//     strings or numbers). quantity may be a string or a JSON number, kept as its decimal text.
//
// id is the caller's key of the total: storing a file again is a no-op, and an id given twice
// must name the same total. start and end are RFC 3339 in whole seconds (UTC), end after start
// ([start, end) is half-open); quantity is a non-negative decimal, never a float, in unit. Within
// a file, two totals of the same customer, meter and resource must not overlap (they would be
// billed twice). Whether the customer exists is the store's to say; ImportFile names the line.
//
// Problems are reported like the other kinds: every one as an *Error naming file, line and field.
func Meters(path string, r io.Reader) ([]billing.MeterTotal, error) {
	ms, _, err := parseMeters(path, r)
	return ms, err
}

// importMeters is ImportFile for meters: parse the whole file, then store it in one call. A
// refusal of the store (unknown customer, an id stored with other content) names the line.
func importMeters(ctx context.Context, st store.Importer, path string, r io.Reader) (int, error) {
	ms, ok := st.(store.Meters)
	if !ok {
		return 0, fmt.Errorf("import meters: the store %T cannot store meter totals", st)
	}
	totals, lines, err := parseMeters(path, r)
	if err != nil {
		return 0, err
	}
	if err := ms.AddMeterTotals(ctx, totals); err != nil {
		if me := store.AsMeterTotalError(err); me != nil && me.Index >= 0 && me.Index < len(lines) {
			return 0, &Error{File: path, Line: lines[me.Index], Field: me.Field, Msg: me.Msg}
		}
		return 0, err
	}
	return len(totals), nil
}

// meterParser collects the valid totals of a file and their lines.
type meterParser struct {
	el     errList
	out    []billing.MeterTotal
	lines  []int
	byID   map[string]int // id → index in out
	series map[meterSeries][]int
}

// meterSeries is what must not overlap within a file: one meter of one resource of a customer.
type meterSeries struct{ customer, meter, resource string }

type rawMeter struct {
	id, customerID, meter, resourceID, resourceType, start, end, quantity, unit, aggregation, source string
}

func parseMeters(path string, r io.Reader) ([]billing.MeterTotal, []int, error) {
	p := &meterParser{el: errList{file: path}, byID: map[string]int{}, series: map[meterSeries][]int{}}
	var err error
	switch formatOf(path) {
	case formatCSV:
		err = p.readCSV(r)
	case formatJSONL:
		err = p.readJSONL(r)
	default:
		return nil, nil, unsupported(path, ".csv, .jsonl or .ndjson")
	}
	if err != nil {
		return nil, nil, err
	}
	p.checkOverlaps()
	if err := p.el.err(); err != nil {
		return nil, nil, err
	}
	return p.out, p.lines, nil
}

// add validates one total and keeps it.
func (p *meterParser) add(line int, raw *rawMeter, attrs map[string]string) {
	el := &p.el
	before := el.count()
	m := billing.MeterTotal{ID: raw.id, CustomerID: raw.customerID, Meter: raw.meter, ResourceID: raw.resourceID,
		ResourceType: raw.resourceType, Unit: raw.unit, Aggregation: raw.aggregation, Source: raw.source, Attributes: attrs}
	for _, f := range []struct{ name, v string }{{"id", m.ID}, {"customer_id", m.CustomerID}, {"meter", m.Meter}, {"unit", m.Unit}} {
		if msg := idMsg(f.v); msg != "" {
			if f.name == "meter" && f.v == "" {
				msg += ", e.g. network.outgoing.bytes"
			}
			if f.name == "unit" && f.v == "" {
				msg += ", e.g. GB or B (the rule converts it)"
			}
			el.add(line, f.name, msg)
		}
	}
	for _, f := range []struct{ name, v string }{{"resource_id", m.ResourceID}, {"resource_type", m.ResourceType}} {
		if f.v != "" {
			if msg := idMsg(f.v); msg != "" {
				el.add(line, f.name, msg)
			}
		}
	}
	if len(attrs) > billing.MaxAttributes {
		el.addf(line, "attributes", ": %d attributes, at most %d", len(attrs), billing.MaxAttributes)
	}
	for _, k := range sortedKeys(attrs) {
		if msg := textMsg(k, billing.MaxAttrKeyLen, false); msg != "" {
			el.add(line, "attributes", msg)
		} else if msg := textMsg(attrs[k], billing.MaxAttrValueLen, false); msg != "" {
			el.add(line, "attributes."+k, msg)
		}
	}
	if m.Source == "" {
		m.Source = DefaultSource
	} else if msg := idMsg(m.Source); msg != "" {
		el.add(line, "source", msg)
	}
	if m.Aggregation == "" {
		m.Aggregation = DefaultAggregation
	} else if !slices.Contains(store.MeterAggregations, m.Aggregation) {
		el.addf(line, "aggregation", " %q: want one of %s", m.Aggregation, strings.Join(store.MeterAggregations, ", "))
	}
	start, okStart := meterTime(el, line, "start", raw.start)
	end, okEnd := meterTime(el, line, "end", raw.end)
	if okStart && okEnd && !end.After(start) {
		el.addf(line, "end", " %q: must be after start %q", raw.end, raw.start)
	}
	m.Range = interval.Range{Start: start, End: end}
	if raw.quantity == "" {
		el.add(line, "quantity", ": required, want a non-negative decimal such as 1300.5")
	} else if q, err := decimal.Parse(raw.quantity); err != nil || strings.ContainsAny(raw.quantity, "eE") {
		el.addf(line, "quantity", " %q: want a non-negative decimal such as 1300.5 (at most 19 digits, no exponent)", raw.quantity)
	} else if q.IsNeg() {
		el.addf(line, "quantity", " %q: must not be negative", raw.quantity)
	} else {
		m.Quantity = q
	}
	if el.count() != before {
		return
	}
	if i, dup := p.byID[m.ID]; dup {
		if !store.SameMeterTotal(p.out[i], m) {
			el.addf(line, "id", " %q: given on line %d with different content", m.ID, p.lines[i])
		}
		return // the same total twice: stored once
	}
	p.byID[m.ID] = len(p.out)
	k := meterSeries{m.CustomerID, m.Meter, m.ResourceID}
	p.series[k] = append(p.series[k], len(p.out))
	p.out = append(p.out, m)
	p.lines = append(p.lines, line)
}

// meterTime reads a required time in whole seconds.
func meterTime(el *errList, line int, field, s string) (time.Time, bool) {
	if s == "" {
		el.add(line, field, ": required")
		return time.Time{}, false
	}
	t, err := interval.ParseTime(s)
	if err != nil {
		el.add(line, field, timeMsg(s))
		return time.Time{}, false
	}
	if exact, err := time.Parse(time.RFC3339Nano, s); err == nil && exact.Nanosecond() != 0 {
		el.addf(line, field, " %q: want whole seconds, e.g. %s", s, t.Format(time.RFC3339))
		return time.Time{}, false
	}
	return t, true
}

// checkOverlaps reports totals of one customer, meter and resource that overlap an earlier one.
func (p *meterParser) checkOverlaps() {
	type problem struct {
		line int
		msg  string
	}
	var ps []problem
	for _, idx := range p.series {
		if len(idx) < 2 {
			continue
		}
		slices.SortFunc(idx, func(a, b int) int {
			if c := p.out[a].Range.Start.Compare(p.out[b].Range.Start); c != 0 {
				return c
			}
			return p.lines[a] - p.lines[b]
		})
		cover := idx[0]
		for _, i := range idx[1:] {
			m := p.out[i]
			if m.Range.Start.Before(p.out[cover].Range.End) {
				ps = append(ps, problem{p.lines[i], fmt.Sprintf(" %q: overlaps the total %s on line %d of meter %q of resource %q of customer %q",
					m.Range.Start.Format(time.RFC3339), p.out[cover].Range, p.lines[cover], m.Meter, m.ResourceID, m.CustomerID)})
			}
			if m.Range.End.After(p.out[cover].Range.End) {
				cover = i
			}
		}
	}
	slices.SortStableFunc(ps, func(a, b problem) int { return a.line - b.line })
	for _, pr := range ps {
		p.el.add(pr.line, "start", pr.msg)
	}
}

func (p *meterParser) readCSV(r io.Reader) error {
	el := &p.el
	cr, cols, err := openCSV(el, r)
	if err != nil || cols == nil {
		return err
	}
	idx, attrCols, fatal := headerColumns(el, cols, meterColumns)
	for _, req := range meterColumns[:7] {
		if _, ok := idx[req]; !ok {
			el.add(1, req, ": required column missing from the header")
			fatal = true
		}
	}
	if fatal {
		return nil
	}
	cell := func(rec []string, name string) string {
		if i, ok := idx[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	return cr.eachRow(el, len(cols), func(line int, rec []string) {
		raw := rawMeter{id: cell(rec, "id"), customerID: cell(rec, "customer_id"), meter: cell(rec, "meter"),
			resourceID: cell(rec, "resource_id"), resourceType: cell(rec, "resource_type"), start: cell(rec, "start"),
			end: cell(rec, "end"), quantity: cell(rec, "quantity"), unit: cell(rec, "unit"),
			aggregation: cell(rec, "aggregation"), source: cell(rec, "source")}
		var attrs map[string]string
		for _, i := range attrCols {
			if v := strings.TrimSpace(rec[i]); v != "" {
				if attrs == nil {
					attrs = map[string]string{}
				}
				attrs[cols[i]] = v
			}
		}
		p.add(line, &raw, attrs)
	})
}

func (p *meterParser) readJSONL(r io.Reader) error {
	el := &p.el
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		fields := map[string]json.RawMessage{}
		if err := json.Unmarshal(b, &fields); err != nil {
			el.add(line, "", "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: ")+"; want one object per line")
			continue
		}
		before := el.count()
		for _, k := range sortedKeys(fields) {
			if !slices.Contains(meterJSONKeys, k) {
				el.addf(line, k, ": unknown key, want %s", strings.Join(meterJSONKeys, ", "))
			}
		}
		str := func(key string) string {
			v, ok := fields[key]
			if !ok {
				return ""
			}
			s, ok := jsonString(v)
			if !ok {
				el.addf(line, key, ": want a string, got %s", short(v))
			}
			return strings.TrimSpace(s)
		}
		raw := rawMeter{id: str("id"), customerID: str("customer_id"), meter: str("meter"),
			resourceID: str("resource_id"), resourceType: str("resource_type"), start: str("start"),
			end: str("end"), unit: str("unit"), aggregation: str("aggregation"), source: str("source")}
		if v, ok := fields["quantity"]; ok {
			if len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
				raw.quantity = string(v) // a JSON number, as its decimal text
			} else {
				raw.quantity = str("quantity")
			}
		}
		attrs := meterJSONAttrs(el, line, fields["attributes"])
		if el.count() != before {
			continue
		}
		p.add(line, &raw, attrs)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			el.addf(line+1, "", "line longer than %d bytes", MaxLineBytes)
			return nil
		}
		return fmt.Errorf("%s: %w", el.file, err)
	}
	return nil
}

// meterJSONAttrs converts the attributes object: strings as they are, numbers as decimal text,
// null and empty strings omitted.
func meterJSONAttrs(el *errList, line int, v json.RawMessage) map[string]string {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if v[0] != '{' || json.Unmarshal(v, &obj) != nil {
		el.addf(line, "attributes", ": want an object of strings or numbers, got %s", short(v))
		return nil
	}
	var attrs map[string]string
	for _, k := range sortedKeys(obj) {
		s, ok := jsonAttr(el, line, k, obj[k])
		if !ok {
			continue
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[k] = s
	}
	return attrs
}
