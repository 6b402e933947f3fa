package notification

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Path is a compiled JSON path into a message, such as payload.instance_id or
// payload['nova_object.data'].flavor['nova_object.data'].name. Segments are separated by dots; a
// key that itself contains dots is quoted in brackets ('…' or "…"); [N] indexes an array. A
// leading "$." is allowed. The first segment is a top-level key of the notification (payload,
// timestamp, publisher_id, _context_project_id…).
type Path struct {
	text string
	segs []seg
}

type seg struct {
	key   string
	index int    // >= 0 for [N]
	path  string // the index in gjson's path syntax
}

// String returns the path as written.
func (p Path) String() string { return p.text }

// ParsePath compiles a path.
func ParsePath(s string) (Path, error) {
	p := Path{text: s}
	rest := strings.TrimPrefix(strings.TrimSpace(s), "$.")
	if rest == "" {
		return p, errors.New("empty path")
	}
	for i := 0; i < len(rest); {
		switch c := rest[i]; {
		case c == '[':
			end := strings.IndexByte(rest[i:], ']')
			if end < 0 {
				return p, fmt.Errorf("path %q: unclosed [", s)
			}
			in := rest[i+1 : i+end]
			i += end + 1
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0] {
				p.segs = append(p.segs, seg{key: in[1 : len(in)-1], index: -1})
				continue
			}
			n, err := strconv.Atoi(in)
			if err != nil || n < 0 {
				return p, fmt.Errorf("path %q: [%s]: want ['key'] or an array index [N]", s, in)
			}
			p.segs = append(p.segs, seg{index: n})
		case c == '.':
			if i == 0 || i+1 >= len(rest) || rest[i+1] == '.' {
				return p, fmt.Errorf("path %q: empty segment", s)
			}
			i++
		default:
			end := strings.IndexAny(rest[i:], ".[")
			if end < 0 {
				end = len(rest) - i
			}
			p.segs = append(p.segs, seg{key: rest[i : i+end], index: -1})
			i += end
		}
	}
	if len(p.segs) == 0 || p.segs[0].index >= 0 {
		return p, fmt.Errorf("path %q: must start with a key such as payload", s)
	}
	for i, sg := range p.segs {
		if sg.index >= 0 {
			p.segs[i].path = strconv.Itoa(sg.index)
		}
	}
	return p, nil
}

// lookup returns the value at the path; absent and null are not found.
func (m *Message) lookup(p Path) (gjson.Result, bool) {
	if len(p.segs) == 0 {
		return gjson.Result{}, false
	}
	v := m.top
	for _, s := range p.segs {
		if s.index >= 0 {
			if !v.IsArray() {
				return gjson.Result{}, false
			}
		} else if !v.IsObject() {
			return gjson.Result{}, false
		}
		if s.index >= 0 {
			v = v.Get(s.path)
		} else {
			v = m.member(v, s.key)
		}
		if !v.Exists() {
			return gjson.Result{}, false
		}
	}
	return v, v.Type != gjson.Null
}

// member returns the value of key in the object obj. Each object a definition reads is indexed
// once (one pass over its text), so the ten-odd paths of a definition do not each rescan the
// payload from its start. A key given twice keeps its first value.
func (m *Message) member(obj gjson.Result, key string) gjson.Result {
	at := unsafe.StringData(obj.Raw)
	for _, o := range m.objs {
		if o.at == at {
			return m.get(o, key)
		}
	}
	if m.kv == nil {
		m.kv = make([]keyValue, 0, 64) // one allocation holds a typical message's objects
	}
	o := object{at: at, lo: len(m.kv)}
	obj.ForEach(func(k, v gjson.Result) bool {
		m.kv = append(m.kv, keyValue{k.Str, v.Raw})
		return true
	})
	o.hi = len(m.kv)
	m.objs = append(m.objs, o)
	return m.get(o, key)
}

// object is an indexed JSON object of a message: its members are m.kv[lo:hi].
type object struct {
	at     *byte // where its text starts: identifies it within the message
	lo, hi int
}

type keyValue struct {
	key string
	raw string // the value's JSON text, parsed again when asked for (cheap: it is validated)
}

func (m *Message) get(o object, key string) gjson.Result {
	for _, e := range m.kv[o.lo:o.hi] {
		if e.key == key {
			return gjson.Parse(e.raw)
		}
	}
	return gjson.Result{}
}

// LookupString returns the value at the path as text: strings as they are, numbers as written,
// booleans as true/false. Absent, null, empty strings, objects and arrays are not found.
func (m *Message) LookupString(p Path) (string, bool) {
	v, ok := m.lookup(p)
	if !ok {
		return "", false
	}
	switch v.Type {
	case gjson.String:
		return validUTF8(v.Str), v.Str != ""
	case gjson.Number:
		return v.Raw, true
	case gjson.True:
		return "true", true
	case gjson.False:
		return "false", true
	}
	return "", false
}
