package rating

import (
	"errors"
	"fmt"

	"github.com/bilean/bilean/billing"
	"gopkg.in/yaml.v3"
)

// ValidateNode checks a rule whose spec is the YAML node spec of a file, so that its errors
// carry the file's line numbers rather than the spec text's: the caller adds the file name. The
// spec text is returned for the RuleSpec.
func ValidateNode(typ string, spec *yaml.Node) (string, error) {
	if spec == nil {
		return "", fmt.Errorf("rule %s: spec is missing", typ)
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("rule %s: spec: %w", typ, err)
	}
	text := string(b)
	_, err = Build(billing.RuleSpec{Type: typ, Spec: text})
	var se SpecErrors
	if err == nil || !errors.As(err, &se) {
		return text, err
	}
	var copyNode yaml.Node
	if yaml.Unmarshal(b, &copyNode) != nil {
		return text, err
	}
	lines := map[int]int{}
	mapLines(&copyNode, spec, lines)
	out := make(SpecErrors, len(se))
	for i, e := range se {
		if l, ok := lines[e.Line]; ok && l > 0 {
			e.Line = l
		}
		out[i] = e
	}
	return text, fmt.Errorf("rule %s: %w", typ, out)
}

// mapLines records, for each node of the re-encoded text a, the line of the same node in the
// original b.
func mapLines(a, b *yaml.Node, lines map[int]int) {
	for b != nil && b.Kind == yaml.AliasNode {
		b = b.Alias
	}
	if a == nil || b == nil {
		return
	}
	if a.Kind == yaml.DocumentNode && b.Kind != yaml.DocumentNode {
		if len(a.Content) == 1 {
			mapLines(a.Content[0], b, lines)
		}
		return
	}
	if _, ok := lines[a.Line]; !ok || lines[a.Line] == 0 {
		lines[a.Line] = b.Line
	}
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return
	}
	for i := range a.Content {
		bi := b.Content[i]
		if b.Kind == yaml.MappingNode && i%2 == 0 && bi.Line == 0 && i+1 < len(b.Content) {
			// A key copied without its line: use its value's.
			if _, ok := lines[a.Content[i].Line]; !ok || lines[a.Content[i].Line] == 0 {
				lines[a.Content[i].Line] = b.Content[i+1].Line
			}
			continue
		}
		mapLines(a.Content[i], bi, lines)
	}
}

// ValidateRuleNode is ValidateNode in the shape of an importer.RuleValidator: it checks rs against
// its spec node from a policy file (or its spec text when the node is nil) and returns errors
// with the file's line numbers.
func ValidateRuleNode(rs billing.RuleSpec, spec *yaml.Node) error {
	if spec == nil {
		return Validate(rs)
	}
	_, err := ValidateNode(rs.Type, spec)
	return err
}
