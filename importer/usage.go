package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/rating"
	"github.com/govalues/decimal"
)

// DefaultSource is the Source of imported records that name none.
const DefaultSource = "import"

// DefaultChunk is the chunk size StreamUsage uses when given 0 or less.
const DefaultChunk = 1000

var usageColumns = []string{"resource_id", "resource_type", "customer_id", "start", "end", "source"}

var jsonKeys = []string{"resource_id", "resource_type", "customer_id", "start", "end", "source", "attributes"}

// Usage parses a whole usage file of trigger records into memory. See StreamUsage for the
// formats and checks; for large files prefer StreamUsage.
func Usage(path string, r io.Reader) ([]billing.Record, error) {
	var out []billing.Record
	err := StreamUsage(path, r, DefaultChunk, func(rs []billing.Record) error {
		out = append(out, rs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StreamUsage parses a usage file of trigger records and calls fn with consecutive chunks of at
// most chunk valid records (DefaultChunk when chunk <= 0). fn must not keep the slice, which is
// reused; the records themselves (and their attribute maps) are not touched again. fn may be
// nil for a validation-only pass.
//
// Formats, chosen by extension:
//   - .csv: a header row, then one record per row. Columns resource_id, resource_type,
//     customer_id and start are required; end (empty = open) and source are optional; every
//     other column is an attribute (flavor, size, volume_type, region…), empty cells omitted.
//     Column names are trimmed and lower-cased, so attribute names are lower case.
//   - .jsonl/.ndjson: one JSON object per line with keys resource_id, resource_type,
//     customer_id, start, end (absent or null = open), source and attributes (an object whose
//     values are strings or numbers; numbers are kept as their decimal text). Blank lines are
//     skipped; other keys are errors.
//
// Times are whole seconds (a fraction is an error), converted to UTC, from 2000 to a day from
// now; end must be after start; source defaults to DefaultSource. Text is printable and within
// billing's limits; a record has at most billing.MaxAttributes attributes, and those its
// resource type's rule needs (rating.CheckAttributes: a server's flavor or flavor_id, a volume's,
// snapshot's or image's size, no negative quantity). A CSV row or JSON line is at most
// MaxLineBytes, a CSV header at most MaxColumns columns: a longer one stops the parse before it
// reaches memory. Across the file, the spans of one resource (customer, resource id) must not
// overlap and must share one resource type; these checks complete only at the end of the file.
//
// All-or-nothing: fn is called only while no problem has been found, but a problem found later
// (a bad row further down, or an overlap seen at the end) makes StreamUsage return an error
// after fn has already received earlier chunks. A caller that stores chunks must therefore run
// a validation pass first (fn nil) over the whole file and store only when that pass returns
// nil, or store everything in one transaction. Storing is idempotent per record (the store
// keys records by customer, resource and start), so an import whose storing fails half-way can
// simply be run again.
//
// Problems are reported like Customers: every one (up to MaxErrors, then counted) as an *Error
// naming file, line and field, joined with errors.Join. An error returned by fn stops the parse
// and is returned wrapped.
func StreamUsage(path string, r io.Reader, chunk int, fn func([]billing.Record) error) error {
	_, err := streamUsage(path, r, chunk, fn)
	return err
}

// streamUsage is StreamUsage that also returns the lines of the records passed to fn, so that
// a store's refusal of the i-th record can name its line.
func streamUsage(path string, r io.Reader, chunk int, fn func([]billing.Record) error) (*lineIndex, error) {
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	u := &usageParser{
		el:    errList{file: path},
		fn:    fn,
		chunk: chunk,
		index: map[resKey]int32{},
		times: newTimeBounds(),
	}
	var err error
	switch formatOf(path) {
	case formatCSV:
		err = u.readCSV(r)
	case formatJSONL:
		u.attrPrefix = "attributes."
		err = u.readJSONL(r)
	default:
		return nil, unsupported(path, ".csv, .jsonl or .ndjson")
	}
	if err != nil {
		return &u.lines, err
	}
	u.checkSpans()
	if err := u.el.err(); err != nil {
		return &u.lines, err
	}
	return &u.lines, u.flush()
}

// lineIndex maps the index of a record passed on to its line. It keeps only the records whose
// line does not follow from the previous one's (the first, and those after blank lines or
// multi-line cells), so a file of one record per line costs one entry whatever its size.
type lineIndex struct {
	at, line []int
	n        int // records added
}

func (x *lineIndex) add(line int) {
	k := len(x.at) - 1
	if k < 0 || line-x.n != x.line[k]-x.at[k] {
		x.at, x.line = append(x.at, x.n), append(x.line, line)
	}
	x.n++
}

// lineOf returns the line of the i-th record passed on, 0 when there is none.
func (x *lineIndex) lineOf(i int) int {
	if x == nil || i < 0 || i >= x.n {
		return 0
	}
	k, _ := slices.BinarySearch(x.at, i+1)
	k--
	return x.line[k] + i - x.at[k]
}

type resKey struct{ customer, resource string }

type span struct {
	start, end int64 // Unix seconds; end math.MaxInt64 when open
	line       int32
}

type resSpans struct {
	typ   string
	spans []span
}

type usageParser struct {
	el         errList
	fn         func([]billing.Record) error
	chunk      int
	buf        []billing.Record
	index      map[resKey]int32
	res        []resSpans
	lines      lineIndex // of the records passed on
	attrPrefix string    // how an attribute is named in an error: "" (a CSV column) or "attributes."
	times      timeBounds
}

// rawRecord is one record's fields as text, before validation.
type rawRecord struct {
	resourceID, resourceType, customerID, start, end, source string
}

// add validates one record and passes it on. attrs belongs to the caller, which may reuse it;
// the record passed on gets its own copy. It returns an error only when fn failed.
func (u *usageParser) add(line int, raw *rawRecord, attrs map[string]string) error {
	el := &u.el
	before := el.count()
	rec := billing.Record{
		ResourceID:   raw.resourceID,
		ResourceType: raw.resourceType,
		CustomerID:   raw.customerID,
		Source:       raw.source,
	}
	if msg := idMsg(rec.ResourceID); msg != "" {
		el.add(line, "resource_id", msg)
	}
	if msg := idMsg(rec.ResourceType); msg != "" {
		el.add(line, "resource_type", msg+pick(msg == ": required", ", e.g. os.nova.server", ""))
	}
	if msg := idMsg(rec.CustomerID); msg != "" {
		el.add(line, "customer_id", msg)
	}
	if rec.Source == "" {
		rec.Source = DefaultSource
	} else if msg := idMsg(rec.Source); msg != "" {
		el.add(line, "source", msg)
	}
	var msg string
	okStart := false
	if raw.start == "" {
		el.add(line, "start", ": required")
	} else if rec.Start, msg = u.times.parse(raw.start, observed); msg != "" {
		el.add(line, "start", msg)
	} else {
		okStart = true
	}
	if raw.end != "" {
		if rec.End, msg = u.times.parse(raw.end, observed); msg != "" {
			el.add(line, "end", msg)
		} else if okStart && !rec.End.After(rec.Start) {
			el.addf(line, "end", " %q: must be after start %q", raw.end, raw.start)
		}
	}
	u.checkAttrs(line, rec.ResourceType, attrs)
	if el.count() != before {
		return nil
	}
	u.track(line, &rec)
	if !u.delivering() {
		return nil
	}
	if len(attrs) > 0 {
		rec.Attributes = maps.Clone(attrs)
	}
	u.lines.add(line)
	u.buf = append(u.buf, rec)
	if len(u.buf) >= u.chunk {
		return u.flush()
	}
	return nil
}

// checkAttrs checks a record's attributes: at most billing.MaxAttributes, each value printable
// text within billing.MaxAttrValueLen, and what the resource type's rule needs to price it
// (rating.CheckAttributes: a server's flavor, a volume's size, no negative quantity).
func (u *usageParser) checkAttrs(line int, typ string, attrs map[string]string) {
	el := &u.el
	if len(attrs) > billing.MaxAttributes {
		el.addf(line, strings.TrimSuffix(u.attrPrefix, "."), ": %d attributes, at most %d", len(attrs), billing.MaxAttributes)
		return
	}
	bad := false
	for _, v := range attrs {
		if textMsg(v, billing.MaxAttrValueLen, false) != "" {
			bad = true
			break
		}
	}
	if bad { // report in a stable order; sorting only then keeps the common case free of allocations
		for _, k := range sortedKeys(attrs) {
			if msg := textMsg(attrs[k], billing.MaxAttrValueLen, false); msg != "" {
				el.add(line, u.attrPrefix+k, msg)
			}
		}
	}
	if bad || typ == "" {
		return
	}
	for _, p := range rating.CheckAttributes(typ, attrs) {
		el.add(line, u.attrPrefix+p.Attr, p.Msg)
	}
}

// delivering reports whether valid records are still passed on to fn.
func (u *usageParser) delivering() bool { return u.fn != nil && u.el.count() == 0 }

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

func (u *usageParser) flush() error {
	if len(u.buf) == 0 || u.fn == nil {
		return nil
	}
	err := u.fn(u.buf)
	clear(u.buf) // drop references so the records can be collected
	u.buf = u.buf[:0]
	if err != nil {
		return fmt.Errorf("%s: %w", u.el.file, err)
	}
	return nil
}

// track remembers the record's span for the overlap check and checks its resource type.
func (u *usageParser) track(line int, rec *billing.Record) {
	k := resKey{rec.CustomerID, rec.ResourceID}
	end := int64(math.MaxInt64)
	if !rec.End.IsZero() {
		end = rec.End.Unix()
	}
	s := span{start: rec.Start.Unix(), end: end, line: int32(min(line, math.MaxInt32))}
	i, ok := u.index[k]
	if !ok {
		// Clone: the record's strings share the memory of the whole input line.
		k = resKey{strings.Clone(k.customer), strings.Clone(k.resource)}
		u.index[k] = int32(len(u.res))
		u.res = append(u.res, resSpans{typ: strings.Clone(rec.ResourceType), spans: []span{s}})
		return
	}
	rs := &u.res[i]
	if rs.typ != rec.ResourceType {
		u.el.addf(line, "resource_type", " %q: resource %q of customer %q has type %q on line %d",
			rec.ResourceType, rec.ResourceID, rec.CustomerID, rs.typ, rs.spans[0].line)
	}
	rs.spans = append(rs.spans, s)
}

// checkSpans reports the spans of one resource that overlap an earlier one.
func (u *usageParser) checkSpans() {
	type problem struct {
		line int
		msg  string
	}
	var ps []problem
	keys := make([]resKey, len(u.res))
	for k, i := range u.index {
		keys[i] = k
	}
	for i := range u.res {
		spans := u.res[i].spans
		if len(spans) < 2 {
			continue
		}
		slices.SortFunc(spans, func(a, b span) int {
			if a.start != b.start {
				return cmpInt(a.start, b.start)
			}
			return cmpInt(int64(a.line), int64(b.line))
		})
		cover := spans[0]
		for _, s := range spans[1:] {
			if s.start < cover.end {
				what := fmt.Sprintf("overlaps the span %s on line %d", fmtSpan(cover), cover.line)
				if s.start == cover.start {
					what = fmt.Sprintf("same start as the span on line %d", cover.line)
				}
				ps = append(ps, problem{int(s.line), fmt.Sprintf(" %q: %s of resource %q of customer %q",
					fmtUnix(s.start), what, keys[i].resource, keys[i].customer)})
			}
			if s.end > cover.end {
				cover = s
			}
		}
	}
	slices.SortStableFunc(ps, func(a, b problem) int { return cmpInt(int64(a.line), int64(b.line)) })
	for _, p := range ps {
		u.el.add(p.line, "start", p.msg)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func fmtUnix(s int64) string { return time.Unix(s, 0).UTC().Format(time.RFC3339) }

func fmtSpan(s span) string {
	end := "open"
	if s.end != math.MaxInt64 {
		end = fmtUnix(s.end)
	}
	return "[" + fmtUnix(s.start) + ", " + end + ")"
}

func (u *usageParser) readCSV(r io.Reader) error {
	el := &u.el
	in, cols, err := openCSV(el, r)
	if err != nil || cols == nil {
		return err
	}
	idx, attrCols, fatal := headerColumns(el, cols, usageColumns)
	for _, req := range usageColumns[:4] {
		if _, ok := idx[req]; !ok {
			el.add(1, req, ": required column missing from the header")
			fatal = true
		}
	}
	if len(attrCols) > billing.MaxAttributes {
		el.addf(1, "", "header has %d attribute columns, at most %d", len(attrCols), billing.MaxAttributes)
		fatal = true
	}
	if fatal {
		return nil
	}
	col := func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		return -1
	}
	iRes, iType, iCust, iStart, iEnd, iSrc := col("resource_id"), col("resource_type"),
		col("customer_id"), col("start"), col("end"), col("source")
	cell := func(rec []string, i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var raw rawRecord
	var fnErr error
	attrs := make(map[string]string, len(attrCols))
	err = in.eachRow(el, len(cols), func(line int, rec []string) {
		if fnErr != nil {
			return
		}
		raw = rawRecord{
			resourceID:   cell(rec, iRes),
			resourceType: cell(rec, iType),
			customerID:   cell(rec, iCust),
			start:        cell(rec, iStart),
			end:          cell(rec, iEnd),
			source:       cell(rec, iSrc),
		}
		clear(attrs)
		for _, i := range attrCols {
			if v := cell(rec, i); v != "" {
				attrs[cols[i]] = v
			}
		}
		fnErr = u.add(line, &raw, attrs)
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

func (u *usageParser) readJSONL(r io.Reader) error {
	el := &u.el
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	fields := map[string]json.RawMessage{}
	attrRaw := map[string]json.RawMessage{}
	attrs := map[string]string{}
	var raw rawRecord
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		clear(fields)
		if err := json.Unmarshal(b, &fields); err != nil {
			el.add(line, "", "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: ")+
				"; want one object per line")
			continue
		}
		before := el.count()
		for _, k := range sortedKeys(fields) {
			if !contains(jsonKeys, k) {
				el.addf(line, k, ": unknown key, want %s", strings.Join(jsonKeys, ", "))
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
		raw = rawRecord{
			resourceID:   str("resource_id"),
			resourceType: str("resource_type"),
			customerID:   str("customer_id"),
			start:        str("start"),
			end:          str("end"),
			source:       str("source"),
		}
		u.jsonAttrs(line, fields["attributes"], attrRaw, attrs)
		if el.count() != before {
			continue
		}
		if err := u.add(line, &raw, attrs); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			el.addf(line+1, "", "line longer than %d bytes (1 MiB); the rest of the file is not read", MaxLineBytes)
			return nil
		}
		return fmt.Errorf("%s: %w", el.file, err)
	}
	return nil
}

// jsonAttrs converts the attributes object into attrs (cleared first): strings as they are,
// numbers as decimal text, null and empty strings omitted. Names must be printable and at most
// billing.MaxAttrKeyLen bytes.
func (u *usageParser) jsonAttrs(line int, v json.RawMessage, scratch map[string]json.RawMessage, attrs map[string]string) {
	clear(attrs)
	if len(v) == 0 || string(v) == "null" {
		return
	}
	el := &u.el
	clear(scratch)
	if v[0] != '{' || json.Unmarshal(v, &scratch) != nil {
		el.addf(line, "attributes", ": want an object of strings or numbers, got %s", short(v))
		return
	}
	if len(scratch) > billing.MaxAttributes {
		el.addf(line, "attributes", ": %d attributes, at most %d", len(scratch), billing.MaxAttributes)
		return
	}
	for _, k := range sortedKeys(scratch) {
		if msg := textMsg(k, billing.MaxAttrKeyLen, false); k == "" || msg != "" {
			el.add(line, "attributes", pick(k == "", ": an attribute with an empty name", msg))
			continue
		}
		if s, ok := jsonAttr(el, line, k, scratch[k]); ok {
			attrs[k] = s
		}
	}
}

// jsonString decodes a JSON string or null ("").
func jsonString(v json.RawMessage) (string, bool) {
	if string(v) == "null" {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func short(v json.RawMessage) string {
	if len(v) > 40 {
		return string(v[:40]) + "…"
	}
	return string(v)
}

// jsonAttr reads one JSON attribute value: a string (trimmed) or a number (as its decimal text).
// ok is false for null, an empty string, or a value that is neither (reported on the line).
func jsonAttr(el *errList, line int, k string, x json.RawMessage) (string, bool) {
	switch {
	case len(x) == 0 || string(x) == "null":
		return "", false
	case x[0] == '"':
		s, _ := jsonString(x)
		s = strings.TrimSpace(s)
		return s, s != ""
	case x[0] == '-' || (x[0] >= '0' && x[0] <= '9'):
		d, err := decimal.Parse(string(x))
		if err != nil {
			el.addf(line, "attributes."+k, " %s: want a number of at most 19 digits", short(x))
			return "", false
		}
		return d.String(), true
	default:
		el.addf(line, "attributes."+k, ": want a string or a number, got %s", short(x))
		return "", false
	}
}

// headerColumns indexes a CSV header: each column's position by name, and the positions of the
// columns not in known (attributes). A column given twice is an error on line 1 (fatal).
func headerColumns(el *errList, cols, known []string) (idx map[string]int, attrCols []int, fatal bool) {
	idx = map[string]int{}
	for i, c := range cols {
		if j, dup := idx[c]; dup {
			el.addf(1, c, ": column given twice in the header (columns %d and %d)", j+1, i+1)
			fatal = true
			continue
		}
		idx[c] = i
		if !contains(known, c) {
			attrCols = append(attrCols, i)
		}
	}
	return idx, attrCols, fatal
}
