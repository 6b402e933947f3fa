package importer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bilean/bilean/billing"
	"gopkg.in/yaml.v3"
)

type format int

const (
	formatUnknown format = iota
	formatCSV
	formatYAML
	formatJSONL
)

// formatOf chooses the format from the file extension.
func formatOf(path string) format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return formatCSV
	case ".yaml", ".yml":
		return formatYAML
	case ".jsonl", ".ndjson":
		return formatJSONL
	}
	return formatUnknown
}

func unsupported(path, want string) error {
	return &Error{File: path, Msg: fmt.Sprintf("cannot tell the format from the extension %q: want %s",
		filepath.Ext(path), want)}
}

// spec describes the fields of one kind of reference data for the generic CSV/YAML reader.
type spec struct {
	top      string            // YAML key holding the list, e.g. "customers"
	fields   []string          // canonical field (column) names, in documentation order
	required []string          // columns a CSV header must have
	lists    map[string]bool   // fields given as a YAML sequence of strings, or in CSV separated by ";"
	aliases  map[string]string // other accepted names → canonical
	maxLen   map[string]int    // bytes a field's value (each item of a list) may have; default billing.MaxIDLen
	maxItems int               // items a list field may have
}

func (s *spec) canonical(name string) (string, bool) {
	if c, ok := s.aliases[name]; ok {
		return c, true
	}
	for _, f := range s.fields {
		if f == name {
			return f, true
		}
	}
	return "", false
}

// entry is one CSV row or one YAML list item, as strings keyed by canonical field name.
type entry struct {
	line   int
	prefix string            // YAML path prefix such as "customers[2]."; empty for CSV
	vals   map[string]string // canonical → value (trimmed)
	lists  map[string][]string
	lines  map[string]int    // YAML: canonical → line of the value
	names  map[string]string // YAML: canonical → key as written
	bad    map[string]bool   // fields whose text was refused: nothing more is said about them
}

func (e *entry) get(f string) string { return e.vals[f] }

func (e *entry) lineOf(f string) int {
	if l, ok := e.lines[f]; ok {
		return l
	}
	return e.line
}

// field returns the name under which f is reported: the key as written, with the YAML path.
func (e *entry) field(f string) string {
	if n, ok := e.names[f]; ok {
		f = n
	}
	return e.prefix + f
}

// fail records a problem with field f of the entry; msg follows the field name verbatim. A field
// whose text was refused (see checkText) is not reported again.
func (e *entry) fail(el *errList, f, msg string) {
	if !e.bad[f] {
		el.add(e.lineOf(f), e.field(f), msg)
	}
}

// checkText refuses, once per field, a value (or list item) that is not printable text within
// its length, and a list with too many items: no NUL or control character reaches a store.
func (e *entry) checkText(el *errList, s *spec) {
	refuse := func(f, msg string) {
		e.fail(el, f, msg)
		if e.bad == nil {
			e.bad = map[string]bool{}
		}
		e.bad[f] = true
	}
	max := func(f string) int {
		if n, ok := s.maxLen[f]; ok {
			return n
		}
		return billing.MaxIDLen
	}
	for _, f := range sortedKeys(e.vals) {
		if msg := textMsg(e.vals[f], max(f), false); msg != "" {
			refuse(f, msg)
		}
	}
	for _, f := range sortedKeys(e.lists) {
		items := e.lists[f]
		if s.maxItems > 0 && len(items) > s.maxItems {
			refuse(f, fmt.Sprintf(": %d items, at most %d", len(items), s.maxItems))
			continue
		}
		for _, it := range items {
			if msg := textMsg(it, max(f), false); msg != "" {
				refuse(f, msg)
				break
			}
		}
	}
}

func (e *entry) failf(el *errList, f, format string, args ...any) {
	e.fail(el, f, fmt.Sprintf(format, args...))
}

// validated reports the errors of a Validate method against the entry's fields.
func (e *entry) validated(el *errList, err error) {
	if err == nil {
		return
	}
	for _, fm := range splitValidate(err) {
		e.fail(el, fm[0], fm[1])
	}
}

// readEntries reads a CSV (header row first) or YAML (`top: [ {...}, … ]`) file into entries.
// Problems go to el; the returned error is only for I/O failures.
func readEntries(el *errList, f format, r io.Reader, s *spec) ([]entry, error) {
	if f == formatCSV {
		return readCSVEntries(el, r, s)
	}
	return readYAMLEntries(el, r, s)
}

func readCSVEntries(el *errList, r io.Reader, s *spec) ([]entry, error) {
	in, cols, err := openCSV(el, r)
	if err != nil || cols == nil {
		return nil, err
	}
	idx := make(map[string]int, len(cols))
	names := make([]string, len(cols)) // canonical name per column, "" = ignored
	fatal := false
	for i, name := range cols {
		c, ok := s.canonical(name)
		if !ok {
			el.addf(1, name, `: unknown column, want %s`, strings.Join(s.fields, ", "))
			continue
		}
		if j, dup := idx[c]; dup {
			el.addf(1, c, `: column given twice in the header (columns %d and %d)`, j+1, i+1)
			fatal = true
			continue
		}
		idx[c] = i
		names[i] = c
	}
	for _, req := range s.required {
		if _, ok := idx[req]; !ok {
			el.add(1, req, ": required column missing from the header")
			fatal = true
		}
	}
	if fatal {
		return nil, nil
	}
	var out []entry
	err = in.eachRow(el, len(cols), func(line int, rec []string) {
		e := entry{line: line, vals: make(map[string]string, len(idx))}
		for i, c := range names {
			if c == "" {
				continue
			}
			v := strings.TrimSpace(rec[i])
			if !s.lists[c] {
				e.vals[c] = v
				continue
			}
			// A list in one cell: items separated by semicolons.
			if e.lists == nil {
				e.lists = map[string][]string{}
			}
			var items []string
			for _, it := range strings.Split(v, ";") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			e.lists[c] = items
		}
		e.checkText(el, s)
		out = append(out, e)
	})
	return out, err
}

// csvIn reads a CSV file row by row with every row bounded by MaxLineBytes.
type csvIn struct {
	cr  *csv.Reader
	lim *rowLimiter
}

// read returns the next row; a row longer than MaxLineBytes is errTooLong.
func (in *csvIn) read() ([]string, error) {
	in.lim.start = in.cr.InputOffset()
	return in.cr.Read()
}

// tooLong reports a row longer than MaxLineBytes at the line where the bound was crossed.
func (in *csvIn) tooLong(el *errList) {
	el.addf(in.lim.lines+1, "", "row longer than %d bytes (1 MiB); the rest of the file is not read", MaxLineBytes)
}

// openCSV reads the header row: trimmed, lower-cased, at most MaxColumns. cols is nil when the
// file cannot be read further.
func openCSV(el *errList, r io.Reader) (*csvIn, []string, error) {
	in := &csvIn{lim: &rowLimiter{r: r}}
	in.cr = csv.NewReader(in.lim)
	in.cr.ReuseRecord = true
	head, err := in.read()
	if err == io.EOF {
		el.add(0, "", "empty file: want a header row")
		return nil, nil, nil
	}
	if err != nil {
		var pe *csv.ParseError
		switch {
		case in.lim.hit:
			in.tooLong(el)
			return nil, nil, nil
		case errors.As(err, &pe):
			el.addf(pe.Line, "", "header: %v", pe.Err)
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("%s: %w", el.file, err)
	}
	if len(head) > MaxColumns {
		el.addf(1, "", "header has %d columns, at most %d", len(head), MaxColumns)
		return nil, nil, nil
	}
	cols := make([]string, len(head))
	bad := false
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // spreadsheets write a byte order mark
		}
		cols[i] = strings.ToLower(strings.TrimSpace(h))
		if cols[i] == "" {
			el.addf(1, "", "column %d: empty name in the header", i+1)
			bad = true
		} else if msg := textMsg(cols[i], billing.MaxAttrKeyLen, false); msg != "" {
			el.addf(1, "", "column %d%s", i+1, msg)
			bad = true
		}
	}
	if bad {
		return nil, nil, nil
	}
	return in, cols, nil
}

// eachRow calls fn with every well-formed row after the header and the row's first line.
func (in *csvIn) eachRow(el *errList, ncols int, fn func(line int, rec []string)) error {
	for {
		rec, err := in.read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if in.lim.hit {
				in.tooLong(el)
				return nil
			}
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("%s: %w", el.file, err)
			}
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				el.addf(pe.StartLine, "", "row has %d fields, the header has %d", len(rec), ncols)
			} else {
				el.addf(pe.Line, "", "malformed CSV: %v", pe.Err)
			}
			continue
		}
		line, _ := in.cr.FieldPos(0)
		fn(line, rec)
	}
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// readYAML reads the single YAML document of a file and returns its root node, or nil after
// reporting why it cannot.
func readYAML(el *errList, r io.Reader) (*yaml.Node, error) {
	lim := &lineLimiter{r: r, max: MaxLineBytes, total: MaxYAMLBytes}
	dec := yaml.NewDecoder(lim)
	tooLong := func() {
		if lim.hit == "file" {
			el.addf(0, "", "longer than %d bytes (64 MiB): split it into several files", MaxYAMLBytes)
		} else {
			el.addf(lim.lines+1, "", "line longer than %d bytes (1 MiB)", MaxLineBytes)
		}
	}
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		switch {
		case lim.hit != "":
			tooLong()
		case err == io.EOF:
			el.add(0, "", "empty file: want a YAML document")
		default:
			yamlError(el, err)
		}
		return nil, nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case lim.hit != "":
		tooLong()
		return nil, nil
	case err != nil:
		yamlError(el, err)
		return nil, nil
	default:
		el.add(next.Line, "", "a second YAML document: want exactly one")
		return nil, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		el.add(0, "", "empty file: want a YAML document")
		return nil, nil
	}
	return doc.Content[0], nil
}

func yamlError(el *errList, err error) {
	msg := err.Error()
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg := "invalid YAML: " + m[2]
		if strings.HasPrefix(m[2], "did not find expected") {
			// yaml.v3 reports where the enclosing block starts, not where it went wrong.
			msg += " (in the block starting on this line; check the indentation below it)"
		}
		el.add(line, "", msg)
		return
	}
	el.add(0, "", "invalid YAML: "+strings.TrimPrefix(msg, "yaml: "))
}

const maxYAMLDepth = 64

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxYAMLDepth; i++ {
		n = n.Alias
	}
	return n
}

type kv struct{ k, v *yaml.Node }

// pairs returns the key/value pairs of a mapping with merge keys (<<) applied and aliases of
// values resolved; explicit keys win over merged ones. Duplicate keys are reported.
func pairs(el *errList, n *yaml.Node, path string, depth int) ([]kv, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		line := 0
		if n != nil {
			line = n.Line
		}
		el.add(line, path, ": want a mapping of keys to values")
		return nil, false
	}
	if depth > maxYAMLDepth {
		el.add(n.Line, path, ": aliases nested too deep")
		return nil, false
	}
	out := make([]kv, 0, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			el.add(k.Line, path, ": keys must be plain strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			el.addf(k.Line, join(path, k.Value), ": key given twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, kv{k, resolve(v)})
	}
	for _, m := range merges {
		m = resolve(m)
		srcs := []*yaml.Node{m}
		if m != nil && m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			sub, ok := pairs(el, src, path+".<<", depth+1)
			if !ok {
				return nil, false
			}
			for _, p := range sub {
				if _, dup := seen[p.k.Value]; !dup {
					seen[p.k.Value] = p.k.Line
					out = append(out, p)
				}
			}
		}
	}
	return out, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields reads a mapping whose keys must be among allowed; unknown keys are reported.
func fields(el *errList, n *yaml.Node, path string, allowed []string) (map[string]kv, bool) {
	ps, ok := pairs(el, n, path, 0)
	if !ok {
		return nil, false
	}
	out := make(map[string]kv, len(ps))
	for _, p := range ps {
		if !contains(allowed, p.k.Value) {
			el.addf(p.k.Line, join(path, p.k.Value), ": unknown key, want %s", strings.Join(allowed, ", "))
			continue
		}
		out[p.k.Value] = p
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns the text of a scalar node ("" for null). Mappings and sequences are reported.
func scalar(el *errList, n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n == nil {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		el.addf(n.Line, path, ": want a single value, got %s", kindName(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return strings.TrimSpace(n.Value), true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a value"
}

// list returns the items of sequence node n at path, or nil after reporting it is not a list.
func list(el *errList, n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		el.addf(n.Line, path, ": want a list, got %s", kindName(n))
		return nil, false
	}
	return n.Content, true
}

func readYAMLEntries(el *errList, r io.Reader, s *spec) ([]entry, error) {
	root, err := readYAML(el, r)
	if err != nil || root == nil {
		return nil, err
	}
	top, ok := fields(el, root, "", []string{s.top})
	if !ok {
		return nil, nil
	}
	p, ok := top[s.top]
	if !ok {
		el.addf(root.Line, s.top, ": required, want `%s:` followed by a list", s.top)
		return nil, nil
	}
	items, ok := list(el, p.v, s.top)
	if !ok {
		return nil, nil
	}
	allowed := append([]string(nil), s.fields...)
	for a := range s.aliases {
		allowed = append(allowed, a)
	}
	out := make([]entry, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", s.top, i)
		m, ok := fields(el, item, path, allowed)
		if !ok {
			continue
		}
		e := entry{
			line:   resolve(item).Line,
			prefix: path + ".",
			vals:   make(map[string]string, len(m)),
			lines:  make(map[string]int, len(m)),
			names:  make(map[string]string, len(m)),
		}
		// Sorted keys keep the reports deterministic.
		for _, key := range sortedKeys(m) {
			p := m[key]
			c, _ := s.canonical(key)
			if other, dup := e.names[c]; dup {
				el.addf(p.k.Line, join(path, key), ": same field as %s, give only one", other)
				continue
			}
			e.names[c] = key
			e.lines[c] = p.v.Line
			if s.lists[c] && p.v.Kind == yaml.SequenceNode {
				var vs []string
				for j, it := range p.v.Content {
					if v, ok := scalar(el, it, fmt.Sprintf("%s.%s[%d]", path, key, j)); ok && v != "" {
						vs = append(vs, v)
					}
				}
				if e.lists == nil {
					e.lists = map[string][]string{}
				}
				e.lists[c] = vs
				continue
			}
			if v, ok := scalar(el, p.v, join(path, key)); ok {
				e.vals[c] = v
			}
		}
		e.checkText(el, s)
		out = append(out, e)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// currency checks a 3-letter code and returns it upper-cased; "" after reporting a problem.
func currency(s string) (string, string) {
	if s == "" {
		return "", ": required, want a 3-letter ISO 4217 code such as EUR"
	}
	if len(s) != 3 || !isLetters(s) {
		return "", fmt.Sprintf(" %q: want a 3-letter ISO 4217 code such as EUR", s)
	}
	return strings.ToUpper(s), ""
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "", "false", "no", "0", "n", "f":
		return false, true
	case "true", "yes", "1", "y", "t":
		return true, true
	}
	return false, false
}
