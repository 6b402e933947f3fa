package notification

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrIgnored is returned by Definitions.Event for an event type the definitions list under
// ignore: known, deliberately not billed (compute.instance.create_ip.end, *.start…).
var ErrIgnored = errors.New("event type ignored by the definitions")

// Definitions map event types to resources. They are loaded from YAML (etc/events.yaml is the
// shipped file); a new resource type is a new entry, no code:
//
//	ignore: ["*.start", compute.instance.create_ip.end]
//	resources:
//	  - type: os.nova.server
//	    id: [payload.instance_id, "payload['nova_object.data'].uuid"]
//	    project: [payload.tenant_id, "payload['nova_object.data'].tenant_id"]
//	    attributes:
//	      flavor: [payload.instance_type, "payload['nova_object.data'].flavor['nova_object.data'].name"]
//	      state: {path: payload.state, map: {resized: active}}
//	    events:
//	      - types: [compute.instance.create.end, instance.create.end]
//	        action: open
//	        time: [payload.launched_at, timestamp]
//
// Every list of paths is tried in order; the first present, non-empty value wins. An event's time
// defaults to the resource's time, which defaults to the envelope's timestamp.
type Definitions struct {
	name     string
	exact    map[string]*eventDef
	patterns []*eventDef // in file order; resources before ignore
}

type eventDef struct {
	res     *resourceDef
	action  Action
	time    []Path
	pattern string // the type or pattern as written
	line    int
	ignored bool
}

type resourceDef struct {
	typ     string
	id      []Path
	project []Path
	attrs   []attrDef
}

type attrDef struct {
	name   string
	paths  []Path
	values map[string]string
}

// file is the YAML shape, decoded strictly.
type file struct {
	Ignore    []string      `yaml:"ignore"`
	Resources []resourceDoc `yaml:"resources"`
}

type resourceDoc struct {
	Type       string             `yaml:"type"`
	ID         pathList           `yaml:"id"`
	Project    pathList           `yaml:"project"`
	Time       pathList           `yaml:"time"`
	Attributes map[string]attrDoc `yaml:"attributes"`
	Events     []eventDoc         `yaml:"events"`
}

type eventDoc struct {
	Types  []string `yaml:"types"`
	Action string   `yaml:"action"`
	Time   pathList `yaml:"time"`
}

// pathList is one path or a list of them.
type pathList []string

func (p *pathList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*p = pathList{n.Value}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = s
		return nil
	}
	return fmt.Errorf("line %d: want a path or a list of paths", n.Line)
}

// attrDoc is an attribute: a path, a list of paths, or {path: …, map: {value: replacement}}.
type attrDoc struct {
	Paths pathList
	Map   map[string]string
}

func (a *attrDoc) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return a.Paths.UnmarshalYAML(n)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "path":
			if err := a.Paths.UnmarshalYAML(v); err != nil {
				return err
			}
		case "map":
			if err := v.Decode(&a.Map); err != nil {
				return err
			}
		default:
			return fmt.Errorf("line %d: field %s not found in attribute (want path, map)", k.Line, k.Value)
		}
	}
	return nil
}

// LoadDefinitions reads an event definitions file.
func LoadDefinitions(file string) (*Definitions, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load event definitions: %w", err)
	}
	return ParseDefinitions(file, b)
}

// ParseDefinitions decodes definitions strictly; name (a file name) prefixes every error, with
// the line of the problem: "etc/events.yaml:42: resources[1].events[0]: action …".
func ParseDefinitions(name string, b []byte) (*Definitions, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("event definitions %s: %w", name, err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(b, &root) // decoded above, cannot fail
	lines := lineIndex(&root)

	d := &Definitions{name: name, exact: map[string]*eventDef{}}
	var errs []error
	add := func(line int, field string, err error) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %w", name, line, field, err))
	}
	compile := func(line int, field string, ps pathList, required bool) []Path {
		if len(ps) == 0 && required {
			add(line, field, errors.New("required: a path such as payload.instance_id"))
		}
		out := make([]Path, 0, len(ps))
		for _, s := range ps {
			p, err := ParsePath(s)
			if err != nil {
				add(line, field, err)
				continue
			}
			out = append(out, p)
		}
		return out
	}
	seenType := map[string]string{} // resource type → field
	first := map[string]string{}    // exact event type or pattern → where first defined
	register := func(e *eventDef, field string) {
		if where, dup := first[e.pattern]; dup {
			add(e.line, field, fmt.Errorf("event type %q is already defined at %s", e.pattern, where))
			return
		}
		first[e.pattern] = fmt.Sprintf("%s:%d", name, e.line)
		if isPattern(e.pattern) {
			if _, err := path.Match(e.pattern, ""); err != nil {
				add(e.line, field, fmt.Errorf("pattern %q: %w", e.pattern, err))
				return
			}
			d.patterns = append(d.patterns, e)
			return
		}
		d.exact[e.pattern] = e
	}

	for i, r := range f.Resources {
		field := fmt.Sprintf("resources[%d]", i)
		line := lines.get(field)
		if r.Type == "" {
			add(line, field+".type", errors.New("required, e.g. os.nova.server"))
		} else if prev, dup := seenType[r.Type]; dup {
			add(line, field+".type", fmt.Errorf("%s is already defined by %s", r.Type, prev))
		}
		seenType[r.Type] = field
		res := &resourceDef{
			typ:     r.Type,
			id:      compile(line, field+".id", r.ID, true),
			project: compile(line, field+".project", r.Project, true),
		}
		defTime := compile(line, field+".time", r.Time, false)
		if len(defTime) == 0 {
			defTime = []Path{mustPath("timestamp")}
		}
		for name, a := range r.Attributes {
			af := field + ".attributes." + name
			res.attrs = append(res.attrs, attrDef{name: name, paths: compile(lines.get(af), af, a.Paths, true), values: a.Map})
		}
		sortAttrs(res.attrs)
		if len(r.Events) == 0 {
			add(line, field+".events", errors.New("required: at least one event that opens the resource"))
		}
		for j, e := range r.Events {
			ef := fmt.Sprintf("%s.events[%d]", field, j)
			eline := lines.get(ef)
			act := Action(e.Action)
			if !act.Valid() {
				add(eline, ef+".action", fmt.Errorf("%q: want open, change or close", e.Action))
			}
			if len(e.Types) == 0 {
				add(eline, ef+".types", errors.New("required: event types or patterns, e.g. compute.instance.create.end"))
			}
			tm := compile(eline, ef+".time", e.Time, false)
			if len(tm) == 0 {
				tm = defTime
			}
			for _, t := range e.Types {
				if strings.TrimSpace(t) == "" {
					add(eline, ef+".types", errors.New("empty event type"))
					continue
				}
				register(&eventDef{res: res, action: act, time: tm, pattern: t, line: eline}, ef+".types")
			}
		}
	}
	for i, t := range f.Ignore {
		field := fmt.Sprintf("ignore[%d]", i)
		register(&eventDef{pattern: t, line: lines.get(field), ignored: true}, field)
	}
	if len(f.Resources) == 0 {
		errs = append(errs, fmt.Errorf("%s: resources: none defined", name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("event definitions %s: %w", name, err)
	}
	return d, nil
}

func isPattern(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func mustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func sortAttrs(a []attrDef) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].name < a[j-1].name; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// match returns the definition of an event type: an exact type first, then the first pattern
// in file order that matches the whole type (path.Match; never a substring).
func (d *Definitions) match(eventType string) *eventDef {
	if e, ok := d.exact[eventType]; ok {
		return e
	}
	for _, e := range d.patterns {
		if ok, _ := path.Match(e.pattern, eventType); ok {
			return e
		}
	}
	return nil
}

// ResourceType returns the resource type an event type maps to, "" when none (or ignored).
func (d *Definitions) ResourceType(eventType string) string {
	if e := d.match(eventType); e != nil && !e.ignored {
		return e.res.typ
	}
	return ""
}

// Event reads a message through the definitions. It returns ErrIgnored for an ignored type and
// an *Error (ReasonUnknownEvent, ReasonMissingField, ReasonBadField) when the message cannot
// become an event.
func (d *Definitions) Event(m *Message) (Event, error) {
	e := d.match(m.EventType)
	if e == nil {
		return Event{}, &Error{Reason: ReasonUnknownEvent, EventType: m.EventType, Err: fmt.Errorf("no definition in %s matches this event type", d.name)}
	}
	if e.ignored {
		return Event{}, ErrIgnored
	}
	ev := Event{
		MessageID:    m.MessageID,
		EventType:    m.EventType,
		ResourceType: e.res.typ,
		Action:       e.action,
		Sent:         m.Timestamp,
	}
	missing := func(what string, ps []Path) error {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = p.String()
		}
		return &Error{Reason: ReasonMissingField, EventType: m.EventType,
			Err: fmt.Errorf("%s: none of %s is present (definition at %s:%d)", what, strings.Join(names, ", "), d.name, e.line)}
	}
	var ok bool
	if ev.ResourceID, ok = first(m, e.res.id); !ok {
		return Event{}, missing("resource id", e.res.id)
	}
	if ev.ProjectID, ok = first(m, e.res.project); !ok && (e.action != Close || e.res.typ == CustomerType) {
		return Event{}, missing("project", e.res.project)
	}
	for _, p := range e.time {
		if s, ok := m.LookupString(p); ok {
			t, err := ParseTime(s)
			if err != nil {
				return Event{}, &Error{Reason: ReasonBadField, EventType: m.EventType, Err: fmt.Errorf("%s: %w", p, err)}
			}
			ev.Time = t
			break
		}
	}
	if ev.Time.IsZero() {
		return Event{}, missing("time", e.time)
	}
	if len(e.res.attrs) > 0 {
		ev.Attributes = make(map[string]string, len(e.res.attrs))
		for _, a := range e.res.attrs {
			v, ok := first(m, a.paths)
			if !ok {
				continue
			}
			if r, ok := a.values[v]; ok {
				v = r
			}
			ev.Attributes[a.name] = v
		}
	}
	return ev, nil
}

func first(m *Message, ps []Path) (string, bool) {
	for _, p := range ps {
		if s, ok := m.LookupString(p); ok {
			return s, true
		}
	}
	return "", false
}

// lines maps a field path (resources[1].events[0], ignore[2], resources[0].attributes.flavor)
// to its line in the YAML document.
type lines map[string]int

func (l lines) get(field string) int { return l[field] }

func lineIndex(doc *yaml.Node) lines {
	l := lines{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return l
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if prefix != "" {
			l[prefix] = n.Line
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				l[p] = n.Content[i].Line
				walk(n.Content[i+1], p)
				l[p] = n.Content[i].Line
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
	}
	walk(doc.Content[0], "")
	return l
}
