// Package codec holds how both SQL backends keep Go values in columns: decimals as text,
// attributes and rules as JSON, id lists as sorted sets. Keeping one encoding means a database
// written by one backend's code reads the same in the other's, and equal values are equal strings.
package codec

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/govalues/decimal"
)

// Rule is how a billing.RuleSpec is kept in policy_versions.rules.
type Rule struct {
	Type string `json:"type"`
	Spec string `json:"spec"`
}

// Decimal reads a decimal column read as text; what names the column in the error.
func Decimal(s, what string) (decimal.Decimal, error) {
	d, err := decimal.Parse(s)
	if err != nil {
		return decimal.Zero, fmt.Errorf("%s: stored value %q is not a decimal: %w", what, s, err)
	}
	return d, nil
}

// AttrsJSON encodes attributes as a JSON object with sorted keys, "{}" when empty, so equal maps
// are equal strings.
func AttrsJSON(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := make([]byte, 0, 64)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return string(append(b, '}')), nil
}

// appendJSONString appends s as a JSON string. Plain printable ASCII is copied as is; anything
// else goes through encoding/json, which escapes and repairs invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ParseAttrs decodes attributes; an empty object reads as nil.
func ParseAttrs(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("attributes %q: %w", s, err)
	}
	return m, nil
}

// SortedUnique returns a sorted copy of ids with duplicates removed.
func SortedUnique(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	n := 0
	for i, id := range out {
		if i == 0 || id != out[n-1] {
			out[n] = id
			n++
		}
	}
	return out[:n]
}
