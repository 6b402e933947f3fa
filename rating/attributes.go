package rating

import (
	"fmt"
	"slices"

	"github.com/govalues/decimal"
)

// AttrProblem is one reason a record's attributes cannot be priced by its resource type's rule,
// whatever the policy: Attr names the attribute (for a missing one, the first of its
// alternatives), Msg follows it, e.g. `: required for os.nova.server (or flavor_id)`.
type AttrProblem struct {
	Attr string
	Msg  string
}

// The attributes the rules read as non-negative quantities (see attrDecimal) are the sizes of
// volumes, snapshots and images and the components of a server: size, vcpus, memory_mb, ram_gb,
// disk_gb and root_gb.

// requiredAttrs lists, per resource type, the attributes its rule needs whatever its spec; each
// entry is a set of alternatives, one of which must be present.
var requiredAttrs = map[string][][]string{
	// A server is priced by flavor name or id (a spec priced by components or a default price
	// still names the flavor on the line).
	ServerType:   {{"flavor", "flavor_id"}},
	VolumeType:   {{"size"}},
	SnapshotType: {{"size"}},
	ImageType:    {{"size"}},
}

// CheckAttributes reports what a trigger record of resourceType with these attributes lacks for
// any rule of its type to price it: a required attribute that is absent or empty, or a quantity
// (size, vcpus, memory_mb, ram_gb, disk_gb, root_gb) that is not a non-negative number. It is the
// check Measure makes at billing time, made when the record enters, so such a record is refused
// instead of failing the run later. Unregistered types and meters need nothing. Problems are
// sorted by attribute.
func CheckAttributes(resourceType string, attrs map[string]string) []AttrProblem {
	var out []AttrProblem
	for _, alts := range requiredAttrs[resourceType] {
		found := false
		for _, a := range alts {
			if attrs[a] != "" {
				found = true
				break
			}
		}
		if !found {
			msg := ": required for " + resourceType
			if len(alts) > 1 {
				msg += fmt.Sprintf(" (or %s)", alts[1])
			}
			out = append(out, AttrProblem{Attr: alts[0], Msg: msg})
		}
	}
	for a, v := range attrs {
		switch a {
		case "size", "vcpus", "memory_mb", "ram_gb", "disk_gb", "root_gb": // quantityAttrs
		default:
			continue
		}
		if v == "" {
			continue
		}
		if d, err := decimal.Parse(v); err != nil || d.IsNeg() {
			out = append(out, AttrProblem{Attr: a, Msg: fmt.Sprintf(" %q: want a non-negative number", v)})
		}
	}
	if len(out) < 2 {
		return out
	}
	slices.SortStableFunc(out, func(x, y AttrProblem) int {
		switch {
		case x.Attr < y.Attr:
			return -1
		case x.Attr > y.Attr:
			return 1
		}
		return 0
	})
	return out
}
