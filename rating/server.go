package rating

import (
	"fmt"
	"sort"
	"strings"

	"github.com/govalues/decimal"
)

// ServerType prices Nova servers.
const ServerType = "os.nova.server"

func init() { Register(ServerType, newServer) }

// ServerSpec prices a server per hour. The price is found, in order: by the record's "state"
// attribute in States (a stopped, shelved or suspended server pays that instead), by flavor name
// (attribute "flavor") then flavor id ("flavor_id") in Flavors, by Components when configured
// (attributes "vcpus", "memory_mb" or "ram_gb", "disk_gb" or "root_gb": one line per component),
// else Default; otherwise the server is an error, never a guess. Every price is a Pricing.
//
//	flavors: {m1.small: "0.02", m1.large: "0.08"}
//	components: {vcpu: "0.01", ram_gb: "0.004", disk_gb: "0.0001"}   # per vCPU-hour, GB-hour
//	states: {stopped: "0.005", shelved: "0", suspended: "0.005"}      # per hour, any flavor; soft_deleted: 0 unless given
//	default: "0.05"
//	granularity: second   # second (default), minute, hour or day
type ServerSpec struct {
	Flavors     map[string]*Pricing `yaml:"flavors"`
	Components  *ComponentSpec      `yaml:"components"`
	States      map[string]*Pricing `yaml:"states"`
	Default     *Pricing            `yaml:"default"`
	Granularity Granularity         `yaml:"granularity"`
}

// ComponentSpec prices a server by its size: per vCPU-hour, per GB-hour of RAM, per GB-hour of
// disk. A component left out is not charged.
type ComponentSpec struct {
	VCPU   *Pricing `yaml:"vcpu"`
	RAMGB  *Pricing `yaml:"ram_gb"`
	DiskGB *Pricing `yaml:"disk_gb"`
}

// SoftDeletedState is the state etc/events.yaml gives a server Nova soft-deleted (restorable
// until Nova reclaims it): priced by states.soft_deleted, and at 0 when the spec does not say.
const SoftDeletedState = "soft_deleted"

// serverStates are the Nova states a spec may price apart.
var serverStates = []string{"active", "error", "paused", "rescued", "shelved", "shelved_offloaded", SoftDeletedState, "stopped", "suspended"}

func (s *ServerSpec) check(c *checker) {
	for _, f := range sortedKeys(s.Flavors) {
		required(c, s.Flavors[f], "flavors."+f)
	}
	for _, st := range sortedKeys(s.States) {
		required(c, s.States[st], "states."+st)
		if !contains(serverStates, st) {
			c.add(0, "states."+st, "unknown server state (known: %s)", strings.Join(serverStates, ", "))
		}
	}
	if s.Components != nil {
		s.Components.VCPU.check(c, "components.vcpu")
		s.Components.RAMGB.check(c, "components.ram_gb")
		s.Components.DiskGB.check(c, "components.disk_gb")
		if s.Components.VCPU == nil && s.Components.RAMGB == nil && s.Components.DiskGB == nil {
			c.add(0, "components", "price at least one of vcpu, ram_gb, disk_gb")
		}
	}
	s.Default.check(c, "default")
	s.Granularity.check(c, "granularity")
	if len(s.Flavors) == 0 && s.Default == nil && s.Components == nil {
		c.add(0, "flavors", "at least one flavor price (or components, or a default) is required")
	}
}

type server struct {
	spec  ServerSpec
	gran  Granularity
	desc  map[string]string // flavor → line description, built once
	state map[string]string // state → description suffix
}

func newServer(s Spec) (Rule, error) {
	var spec ServerSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	if _, ok := spec.States[SoftDeletedState]; !ok {
		// Compute billing stops at a soft delete unless the policy prices it.
		states := make(map[string]*Pricing, len(spec.States)+1)
		for k, v := range spec.States {
			states[k] = v
		}
		states[SoftDeletedState] = &Pricing{Model: Flat, Price: Number{Decimal: decimal.Zero}}
		spec.States = states
	}
	r := &server{spec: spec, gran: spec.Granularity, desc: make(map[string]string, len(spec.Flavors)), state: map[string]string{}}
	for f := range spec.Flavors {
		r.desc[f] = "Server " + f
	}
	for st := range spec.States {
		r.state[st] = " (" + st + ")"
	}
	return r, nil
}

var (
	mbPerGB = decimal.MustNew(1024, 0)
)

func (r *server) Measure(dst []Measure, u Usage) ([]Measure, error) {
	secs := u.Range.Seconds()
	flavor := u.Attributes["flavor"]
	p, ok := r.spec.Flavors[flavor]
	if !ok {
		if id := u.Attributes["flavor_id"]; id != "" {
			p, ok = r.spec.Flavors[id]
			if flavor == "" || ok {
				flavor = id
			}
		}
	}
	d, known := r.desc[flavor]
	if !known {
		d = "Server " + flavor
	}
	if st := u.Attributes["state"]; st != "" {
		if sp, ok := r.spec.States[st]; ok {
			desc := d + r.state[st]
			m, err := timed(sp, r.gran, one, secondsPerHour, secs, "hour", "Server "+st, desc)
			return append(dst, m), err
		}
	}
	if ok {
		m, err := timed(p, r.gran, one, secondsPerHour, secs, "hour", d, d)
		return append(dst, m), err
	}
	if c := r.spec.Components; c != nil {
		return r.components(dst, u, c, d, secs)
	}
	if r.spec.Default != nil {
		m, err := timed(r.spec.Default, r.gran, one, secondsPerHour, secs, "hour", "Server, default price", d)
		return append(dst, m), err
	}
	return dst, fmt.Errorf("%s %s: no price for flavor %q (priced: %s)", u.ResourceType, u.ResourceID, flavor, strings.Join(sortedKeys(r.spec.Flavors), ", "))
}

// components measures a server by vCPUs, RAM and disk.
func (r *server) components(dst []Measure, u Usage, c *ComponentSpec, d string, secs int64) ([]Measure, error) {
	type part struct {
		p           *Pricing
		attrs       []string
		perGB       bool // the first attribute is in MB
		unit, label string
	}
	parts := []part{
		{c.VCPU, []string{"vcpus"}, false, "vCPU-hour", "Server vCPU"},
		{c.RAMGB, []string{"memory_mb", "ram_gb"}, true, "GB-hour", "Server RAM"},
		{c.DiskGB, []string{"disk_gb", "root_gb"}, false, "GB-hour", "Server disk"},
	}
	for _, pt := range parts {
		if pt.p == nil {
			continue
		}
		var size decimal.Decimal
		var err error
		found := false
		for i, a := range pt.attrs {
			if u.Attributes[a] == "" {
				continue
			}
			if size, err = attrDecimal(u, a); err != nil {
				return dst, err
			}
			if i == 0 && pt.perGB {
				if size, err = size.Quo(mbPerGB); err != nil {
					return dst, fmt.Errorf("%s %s: %s: %w", u.ResourceType, u.ResourceID, a, err)
				}
			}
			found = true
			break
		}
		if !found {
			return dst, fmt.Errorf("%s %s: priced by components, but attribute %s is missing", u.ResourceType, u.ResourceID, strings.Join(pt.attrs, " or "))
		}
		m, err := timed(pt.p, r.gran, size, secondsPerHour, secs, pt.unit, pt.label,
			fmt.Sprintf("%s, %s: %s %s", d, pt.label[len("Server "):], size.Trim(0), strings.TrimSuffix(pt.unit, "-hour")))
		if err != nil {
			return dst, err
		}
		dst = append(dst, m)
	}
	return dst, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
