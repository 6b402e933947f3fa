package importer

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

var (
	policyFields = []string{"name", "version", "effective_from", "currency", "description", "fee", "fee_interval",
		"fee_timing", "included", "rules"}
	ruleFields = []string{"type", "spec"}
)

// maxSpecNodes bounds the size of one rule spec after aliases are expanded.
const maxSpecNodes = 100_000

// Policies parses a policy file (YAML only). The document is either one policy mapping or
// `policies: [ … ]`. A policy has name and currency (both required), description, fee (a
// decimal, default 0, never negative) and rules, a list of {type, spec}. Unknown keys are
// errors. Each rule's spec mapping is re-encoded as YAML text into RuleSpec.Spec, with aliases
// and merge keys expanded, then handed to validateRule (which may be nil); its error is reported
// at the rule's line under a path such as policies[1].rules[0]. Names must be unique in the file.
func Policies(path string, r io.Reader, validateRule RuleValidator) ([]billing.Policy, error) {
	if formatOf(path) != formatYAML {
		return nil, unsupported(path, ".yaml or .yml")
	}
	el := &errList{file: path}
	root, err := readYAML(el, r)
	if err != nil {
		return nil, err
	}
	var items []*yaml.Node
	var paths []string
	if root != nil {
		if hasKey(root, "policies") {
			if top, ok := fields(el, root, "", []string{"policies"}); ok {
				ns, _ := list(el, top["policies"].v, "policies")
				for i, n := range ns {
					items = append(items, n)
					paths = append(paths, fmt.Sprintf("policies[%d]", i))
				}
			}
		} else {
			items, paths = []*yaml.Node{root}, []string{""}
		}
	}
	out := make([]billing.Policy, 0, len(items))
	// A name may appear once per effective time: each entry is one version of the policy.
	type key struct {
		name string
		at   int64
	}
	seen := map[key]int{}
	currencies := map[string]string{}
	for i, item := range items {
		p, line, ok := policy(el, item, paths[i], validateRule)
		if p.Name != "" {
			k := key{p.Name, p.EffectiveFrom.Unix()}
			if first, dup := seen[k]; dup {
				el.addf(line, join(paths[i], "name"), " %q: duplicate, first on line %d (give each version its own effective_from)", p.Name, first)
				continue
			}
			seen[k] = line
			if cur, ok2 := currencies[p.Name]; ok2 && p.Currency != "" && cur != p.Currency {
				el.addf(line, join(paths[i], "currency"), " %q: another version of %q is in %s; a policy's currency never changes", p.Currency, p.Name, cur)
				continue
			} else if p.Currency != "" {
				currencies[p.Name] = p.Currency
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	if err := el.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func hasKey(n *yaml.Node, key string) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// policy reads one policy mapping; line is the line of its name.
func policy(el *errList, n *yaml.Node, path string, validateRule RuleValidator) (billing.Policy, int, bool) {
	before := el.count()
	m, ok := fields(el, n, path, policyFields)
	if !ok {
		return billing.Policy{}, 0, false
	}
	line := resolve(n).Line
	lineOf := func(key string) int {
		if p, ok := m[key]; ok {
			return p.v.Line
		}
		return line
	}
	str := func(key string) string {
		s, _ := scalar(el, m[key].v, join(path, key))
		return s
	}
	p := billing.Policy{Name: str("name"), Description: str("description")}
	if msg := idMsg(p.Name); msg != "" {
		el.add(lineOf("name"), join(path, "name"), msg)
	}
	if msg := textMsg(p.Description, billing.MaxDescriptionLen, true); msg != "" {
		el.add(lineOf("description"), join(path, "description"), msg)
	}
	cur, msg := currency(str("currency"))
	if msg != "" {
		el.add(lineOf("currency"), join(path, "currency"), msg)
	}
	p.Currency = cur
	if s := str("fee"); s != "" {
		d, err := decimal.Parse(s)
		switch {
		case err != nil:
			el.addf(lineOf("fee"), join(path, "fee"), " %q: want a decimal amount such as 10.00", s)
		case d.IsNeg():
			el.addf(lineOf("fee"), join(path, "fee"), " %q: must not be negative", s)
		default:
			p.Fee = d
		}
	}
	if s := str("version"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			el.addf(lineOf("version"), join(path, "version"), " %q: want a whole number from 1", s)
		}
		p.Version = v
	}
	if s := str("effective_from"); s != "" {
		t, msg := parseTime(s, planned)
		if msg != "" {
			el.add(lineOf("effective_from"), join(path, "effective_from"), msg)
		}
		p.EffectiveFrom = t
	}
	p.FeeInterval, p.FeeTiming = str("fee_interval"), str("fee_timing")
	switch p.FeeInterval {
	case "", billing.FeeMonthly, billing.FeeYearly:
	default:
		el.addf(lineOf("fee_interval"), join(path, "fee_interval"), " %q: want monthly or yearly", p.FeeInterval)
	}
	switch p.FeeTiming {
	case "", billing.FeeAdvance, billing.FeeArrears:
	default:
		el.addf(lineOf("fee_timing"), join(path, "fee_timing"), " %q: want advance or arrears", p.FeeTiming)
	}
	if ip, ok := m["included"]; ok {
		ps, ok := pairs(el, ip.v, join(path, "included"), 0)
		inc := map[string]*yaml.Node{}
		for _, kv := range ps {
			inc[kv.k.Value] = kv.v
		}
		if ok {
			for _, k := range slices.Sorted(maps.Keys(inc)) {
				f := join(join(path, "included"), k)
				if msg := textMsg(k, billing.MaxIDLen, false); msg != "" {
					el.add(inc[k].Line, join(path, "included"), msg)
					continue
				}
				s, _ := scalar(el, inc[k], f)
				d, err := decimal.Parse(s)
				switch {
				case err != nil:
					el.addf(inc[k].Line, f, " %q: want a decimal quantity such as 10 or 0.5 (rule type or meter → quantity)", s)
				case d.IsNeg():
					el.addf(inc[k].Line, f, " %q: must not be negative", s)
				default:
					if p.Included == nil {
						p.Included = map[string]decimal.Decimal{}
					}
					p.Included[k] = d
				}
			}
		}
	}
	if rp, ok := m["rules"]; ok {
		rules, _ := list(el, rp.v, join(path, "rules"))
		for j, rn := range rules {
			rpath := fmt.Sprintf("%s[%d]", join(path, "rules"), j)
			rs, specNode, ok := rule(el, rn, rpath)
			if !ok {
				continue
			}
			if validateRule != nil {
				if err := validateRule(rs, specNode); err != nil {
					el.addf(resolve(rn).Line, rpath, " (%s): %s", rs.Type,
						strings.ReplaceAll(err.Error(), "\n", "; "))
					continue
				}
			}
			p.Rules = append(p.Rules, rs)
		}
	}
	return p, lineOf("name"), el.count() == before
}

// RuleValidator checks one rule of a policy file: rs holds its type and spec text, spec the spec's
// node in the file (aliases resolved, original line numbers kept; nil when the rule has no spec),
// so that errors can name the file's own lines.
type RuleValidator func(rs billing.RuleSpec, spec *yaml.Node) error

func rule(el *errList, n *yaml.Node, path string) (billing.RuleSpec, *yaml.Node, bool) {
	before := el.count()
	m, ok := fields(el, n, path, ruleFields)
	if !ok {
		return billing.RuleSpec{}, nil, false
	}
	var rs billing.RuleSpec
	var specNode *yaml.Node
	typ, ok := scalar(el, m["type"].v, join(path, "type"))
	if ok && typ == "" {
		el.add(resolve(n).Line, join(path, "type"), ": required, e.g. os.nova.server")
	} else if msg := textMsg(typ, billing.MaxIDLen, false); ok && msg != "" {
		el.add(resolve(n).Line, join(path, "type"), msg)
	}
	rs.Type = typ
	if sp, ok := m["spec"]; ok && !(sp.v.Kind == yaml.ScalarNode && sp.v.Tag == "!!null") {
		budget := maxSpecNodes
		x, ok := expand(el, sp.v, join(path, "spec"), &budget, 0)
		if ok && x.Kind != yaml.MappingNode {
			el.addf(sp.v.Line, join(path, "spec"), ": want a mapping, got %s", kindName(x))
		} else if ok {
			b, err := yaml.Marshal(x)
			if err != nil {
				el.addf(sp.v.Line, join(path, "spec"), ": cannot encode: %v", err)
			}
			rs.Spec = string(b)
			specNode = x
		}
	}
	return rs, specNode, el.count() == before
}

// expand deep-copies n with aliases and merge keys resolved and anchors and comments dropped, so
// the copy encodes to self-contained YAML.
func expand(el *errList, n *yaml.Node, path string, budget *int, depth int) (*yaml.Node, bool) {
	n = resolve(n)
	*budget--
	if n == nil || n.Kind == yaml.AliasNode || depth > maxYAMLDepth || *budget < 0 {
		line := 0
		if n != nil {
			line = n.Line
		}
		el.add(line, path, ": aliases nested too deep or expand too far")
		return nil, false
	}
	// Block style throughout, so every spec reads the same whatever style it was written in.
	c := &yaml.Node{Kind: n.Kind, Style: n.Style &^ yaml.FlowStyle, Tag: n.Tag, Value: n.Value, Line: n.Line, Column: n.Column}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, it := range n.Content {
			x, ok := expand(el, it, fmt.Sprintf("%s[%d]", path, i), budget, depth+1)
			if !ok {
				return nil, false
			}
			c.Content = append(c.Content, x)
		}
	case yaml.MappingNode:
		ps, ok := pairs(el, n, path, depth)
		if !ok {
			return nil, false
		}
		for _, p := range ps {
			k := &yaml.Node{Kind: p.k.Kind, Style: p.k.Style, Tag: p.k.Tag, Value: p.k.Value}
			v, ok := expand(el, p.v, join(path, p.k.Value), budget, depth+1)
			if !ok {
				return nil, false
			}
			c.Content = append(c.Content, k, v)
		}
	}
	return c, true
}
