package rating

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Granularity is how a rule counts time: each span's seconds are rounded up to a whole number of
// these units before pricing. Rules price per hour whatever the granularity, so a quantity billed
// per started hour is a whole number of hours and one billed per day is a multiple of 24 hours.
type Granularity struct {
	unit int64 // seconds per unit; 0 means second
	Line int
	bad  string
}

// Granularities.
var (
	PerSecond = Granularity{unit: 1}
	PerMinute = Granularity{unit: 60}
	PerHour   = Granularity{unit: 3600}
	PerDay    = Granularity{unit: 86400}
)

var granularities = map[string]Granularity{"second": PerSecond, "minute": PerMinute, "hour": PerHour, "day": PerDay}

// String is the name shown on invoice lines: second, minute, hour or day.
func (g Granularity) String() string {
	switch g.unit {
	case 60:
		return "minute"
	case 3600:
		return "hour"
	case 86400:
		return "day"
	default:
		return "second"
	}
}

// Billed returns the seconds billed for a span of secs seconds: rounded up to the unit. A span of
// zero seconds bills nothing.
func (g Granularity) Billed(secs int64) int64 {
	if g.unit <= 1 || secs <= 0 {
		return max(secs, 0)
	}
	return (secs + g.unit - 1) / g.unit * g.unit
}

// UnmarshalYAML reads second, minute, hour or day.
func (g *Granularity) UnmarshalYAML(n *yaml.Node) error {
	g.Line = n.Line
	v, ok := granularities[n.Value]
	if n.Kind != yaml.ScalarNode || !ok {
		g.bad = fmt.Sprintf("%q: want second, minute, hour or day", n.Value)
		return nil
	}
	g.unit = v.unit
	return nil
}

func (g Granularity) check(c *checker, field string) {
	if g.bad != "" {
		c.add(g.Line, field, "%s", g.bad)
	}
}

// ParseGranularity parses second, minute, hour or day.
func ParseGranularity(s string) (Granularity, error) {
	g, ok := granularities[s]
	if !ok {
		return Granularity{}, fmt.Errorf("granularity %q: want second, minute, hour or day", s)
	}
	return g, nil
}
