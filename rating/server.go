package rating

import (
	"fmt"
	"sort"
	"strings"
)

// ServerType prices Nova servers.
const ServerType = "os.nova.server"

func init() { Register(ServerType, newServer) }

// ServerSpec prices a server per hour by flavor, billed to the second. The record attribute
// "flavor" (the flavor name) is looked up first, then "flavor_id".
//
//	flavors: {m1.small: "0.02", m1.large: "0.08"}
//	default: "0.05"   # optional: price for a flavor not listed; without it such a server is an error
type ServerSpec struct {
	Flavors map[string]Price `yaml:"flavors"`
	Default *Price           `yaml:"default"`
}

type server struct {
	spec ServerSpec
	desc map[string]string // flavor → line description, built once
}

func newServer(s Spec) (Rule, error) {
	var spec ServerSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	if len(spec.Flavors) == 0 && spec.Default == nil {
		return nil, fmt.Errorf("flavors: at least one flavor price (or a default) is required")
	}
	desc := make(map[string]string, len(spec.Flavors))
	for f := range spec.Flavors {
		desc[f] = "Server " + f
	}
	return &server{spec: spec, desc: desc}, nil
}

func (r *server) Price(u Usage) (Charge, error) {
	flavor := u.Attributes["flavor"]
	p, ok := r.spec.Flavors[flavor]
	if !ok {
		if id := u.Attributes["flavor_id"]; id != "" {
			p, ok = r.spec.Flavors[id]
			if flavor == "" {
				flavor = id
			}
		}
	}
	if !ok {
		if r.spec.Default == nil {
			known := make([]string, 0, len(r.spec.Flavors))
			for f := range r.spec.Flavors {
				known = append(known, f)
			}
			sort.Strings(known)
			return Charge{}, fmt.Errorf("%s %s: no price for flavor %q (priced: %s)", u.ResourceType, u.ResourceID, flavor, strings.Join(known, ", "))
		}
		p = *r.spec.Default
	}
	d, ok := r.desc[flavor]
	if !ok {
		d = "Server " + flavor
	}
	return perHour(p.Decimal, one, u.Range.Seconds(), "hour", d)
}
