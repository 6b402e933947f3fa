package rating

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Spec is a rule's configuration as YAML text (a mapping).
type Spec string

// SpecError is one problem in a rule spec: the line (in the spec text, 1-based; 0 when unknown),
// the field path (e.g. flavors.m1.small.tiers[1].up_to) and what is wrong.
type SpecError struct {
	Line  int
	Field string
	Msg   string
}

func (e SpecError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// SpecErrors is every problem found in one spec, ordered by line. Its message puts one problem
// per line of text.
type SpecErrors []SpecError

func (es SpecErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// checker collects the problems of one spec.
type checker struct{ errs SpecErrors }

func (c *checker) add(line int, field, format string, args ...any) {
	c.errs = append(c.errs, SpecError{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
	return c.errs
}

// checked is implemented by spec structs: it reports every invalid value with its field path.
type checked interface{ check(c *checker) }

// join builds a field path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	if field == "" {
		return path
	}
	return path + "." + field
}

var notFound = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
var lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)

// Decode decodes the spec strictly into v (unknown keys are errors), then checks every value
// (negative prices, unordered tiers…). Every problem is reported as a SpecError with its line and
// field.
func (s Spec) Decode(v any) error {
	if strings.TrimSpace(string(s)) == "" {
		return SpecErrors{{Msg: "spec is empty: want a mapping"}}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(s)))
	dec.KnownFields(true)
	c := &checker{}
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return decodeError(err, v)
		}
		// The rest of the spec was still decoded: report its problems too.
		c.errs = append(c.errs, decodeError(err, v).(SpecErrors)...)
	}
	if ch, ok := v.(checked); ok {
		ch.check(c)
	}
	return c.err()
}

// decodeError turns yaml.v3's messages into SpecErrors naming line and field.
func decodeError(err error, v any) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineMsg.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return SpecErrors{{Line: n, Msg: m[2]}}
		}
		return SpecErrors{{Msg: msg}}
	}
	var out SpecErrors
	for _, e := range te.Errors {
		if m := notFound.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, SpecError{Line: n, Field: m[2], Msg: "unknown key (allowed: " + strings.Join(allowedKeys(v), ", ") + ")"})
			continue
		}
		if m := lineMsg.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, SpecError{Line: n, Msg: m[2]})
			continue
		}
		out = append(out, SpecError{Msg: e})
	}
	return out
}

// allowedKeys lists the yaml keys of the struct v points to.
func allowedKeys(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// Number is a non-negative decimal read exactly from YAML text ("0.02" or 0.02, never through a
// float). It remembers its line; an invalid value is reported, with its field, by the spec check.
type Number struct {
	decimal.Decimal
	// Line is the value's line in the spec; 0 when the key is absent.
	Line int
	bad  string
}

// Price is a Number used as a price.
type Price = Number

// UnmarshalYAML parses the scalar's text as a decimal.
func (p *Number) UnmarshalYAML(n *yaml.Node) error {
	p.Line = n.Line
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.bad = `want a number such as "0.02"`
		return nil
	}
	d, err := decimal.Parse(n.Value)
	switch {
	case err != nil:
		p.bad = fmt.Sprintf("%q is not a decimal number", n.Value)
	case d.IsNeg():
		p.bad = fmt.Sprintf("%s is negative", n.Value)
	default:
		p.Decimal = d
	}
	return nil
}

// Set reports whether the value was given.
func (p Number) Set() bool { return p.Line > 0 }

// check reports an invalid value.
func (p Number) check(c *checker, field string) {
	if p.bad != "" {
		c.add(p.Line, field, "%s", p.bad)
	}
}

// mappingPairs returns the key and value nodes of a mapping, reporting duplicate keys.
func mappingPairs(n *yaml.Node) [][2]*yaml.Node {
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}
