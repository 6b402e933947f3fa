package rating

import (
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"gopkg.in/yaml.v3"
)

func fipPolicy(name string, version int, from time.Time, price string) billing.Policy {
	return billing.Policy{Name: name, Version: version, EffectiveFrom: from, Currency: "EUR",
		Rules: []billing.RuleSpec{{Type: FloatingIPType, Spec: `price_per_hour: "` + price + `"`}}}
}

func TestCatalogFindsTheVersionInForce(t *testing.T) {
	oct15 := time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC)
	c, err := CompileCatalog([]billing.Policy{
		fipPolicy("std", 2, oct15, "0.04"),
		fipPolicy("std", 1, time.Time{}, "0.02"),
		fipPolicy("other", 0, time.Time{}, "1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at        time.Time
		version   int
		until     time.Time
		wantPrice string
	}{
		{october.Start, 1, oct15, "0.02"},
		{oct15.Add(-time.Second), 1, oct15, "0.02"},
		{oct15, 2, interval.Forever, "0.04"}, // the change takes effect at its second
		{october.End, 2, interval.Forever, "0.04"},
	}
	for _, tt := range tests {
		p, until, ok := c.At("std", tt.at)
		if !ok || p.Version != tt.version || !until.Equal(tt.until) {
			t.Fatalf("At(%s) = v%d until %s, %v; want v%d until %s", tt.at, p.Version, until, ok, tt.version, tt.until)
		}
		r, _ := p.Rule(FloatingIPType)
		ch := charge(t, r, nil, secs(3600))
		if ch.Amount.String() != tt.wantPrice {
			t.Errorf("price at %s = %s, want %s", tt.at, ch.Amount, tt.wantPrice)
		}
	}
	// Every version reaches its siblings: the map of latest versions serves a run.
	if v, _, _ := c.Policies()["std"].At(october.Start); v.Version != 1 {
		t.Errorf("latest.At(October) = v%d", v.Version)
	}
	if _, _, ok := c.At("missing", october.Start); ok {
		t.Error("an unknown policy was found")
	}
	late, err := CompileCatalog([]billing.Policy{fipPolicy("late", 1, oct15, "1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := late.At("late", october.Start); ok {
		t.Error("a policy was in force before its first version")
	}
}

func TestCatalogRefusesInconsistentVersions(t *testing.T) {
	oct15 := time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ps   []billing.Policy
		want string
	}{
		{"same version twice", []billing.Policy{fipPolicy("p", 1, time.Time{}, "1"), fipPolicy("p", 1, oct15, "2")}, "version 1 is given twice"},
		{"later version earlier", []billing.Policy{fipPolicy("p", 1, oct15, "1"), fipPolicy("p", 2, october.Start, "2")}, "version 2 takes effect 2026-10-01T00:00:00Z, not after version 1"},
		{"same second", []billing.Policy{fipPolicy("p", 1, oct15, "1"), fipPolicy("p", 2, oct15, "2")}, "not after version 1"},
		{"bad rule names the version", []billing.Policy{fipPolicy("p", 3, oct15, "-1")}, "policy p version 3: rules[0]: rule os.neutron.floatingip: line 1: price_per_hour: -1 is negative"},
		{"two rules for one type", []billing.Policy{{Name: "p", Rules: []billing.RuleSpec{
			{Type: FloatingIPType, Spec: `price_per_hour: "1"`}, {Type: FloatingIPType, Spec: `price_per_hour: "2"`}}}}, "rules[1]: a second rule for os.neutron.floatingip"},
		{"two rules for one meter", []billing.Policy{{Name: "p", Rules: []billing.RuleSpec{
			{Type: MeterType, Spec: "meter: a\nprice: \"1\""}, {Type: MeterType, Spec: "meter: b\nprice: \"1\""}, {Type: MeterType, Spec: "meter: a\nprice: \"2\""}}}}, "rules[2]: a second rule for meter a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCatalog(tt.ps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPolicyHoldsSeveralMeterRules(t *testing.T) {
	p, err := Compile(billing.Policy{Name: "p", Rules: []billing.RuleSpec{
		{Type: MeterType, Spec: "meter: network.outgoing.bytes\nunit: GB\nprice: \"0.05\""},
		{Type: MeterType, Spec: "meter: network.incoming.bytes\nunit: GB\nprice: \"0\""},
		{Type: FloatingIPType, Spec: `price_per_hour: "1"`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"network.outgoing.bytes", "network.incoming.bytes"} {
		if _, ok := p.MeterRule(m); !ok {
			t.Errorf("no rule for %s", m)
		}
	}
	if _, ok := p.Rule(MeterType); ok {
		t.Error("a meter rule is also a resource rule")
	}
}

// TestValidateNodeReportsTheFilesLines checks a spec as it sits in a policy file: the error
// names the file's line, not the line of the spec's own text.
func TestValidateNodeReportsTheFilesLines(t *testing.T) {
	file := `name: standard
currency: EUR
rules:
  - type: os.cinder.volume
    spec:
      price_per_gb_hour:
        model: graduated
        tiers:
          - {up_to: 1000, price: "0.0002"}
          - {up_to: 500, price: "0.0001"}
          - {price: "0.00005"}
      sizes: 3
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(file), &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc.Content[0].Content[5].Content[0].Content[3] // rules[0].spec
	_, err := ValidateNode(VolumeType, spec)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"line 10: price_per_gb_hour.tiers[1].up_to: 500 is not above", "line 12: sizes: unknown key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
}
