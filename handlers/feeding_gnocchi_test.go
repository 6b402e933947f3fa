package handlers

import (
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/rating"
)

// altMeter is a second meter rule type, registered for this test only.
type altMeter struct{ name string }

func (r altMeter) MeterName() string { return r.name }
func (altMeter) RuleType() string    { return "meter.alt_test" }
func (altMeter) Measure(dst []rating.Measure, _ rating.Usage) ([]rating.Measure, error) {
	return dst, nil
}

func init() {
	rating.RegisterMeter("meter.alt_test", func(s rating.Spec) (rating.Rule, error) { return altMeter{name: "instance.hours"}, nil })
}

// TestMeterRuleTypeIsHonoured: gnocchi.meters[].rule names the rule type that prices the meter;
// a policy pricing it with a rule of another type fails the run, naming the policy, the meter
// and both types.
func TestMeterRuleTypeIsHonoured(t *testing.T) {
	cat, err := rating.CompileCatalog([]billing.Policy{{Name: "p", Currency: "EUR", Version: 1, Rules: []billing.RuleSpec{
		{Type: "meter", Spec: "meter: instance.hours\ngroup_by: [flavor_name]\nprices: {m1.small: \"0.02\"}"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	m := config.Meter{Name: "instance.hours", Metric: "instance", ResourceType: "instance", Rule: "meter"}
	if err := checkMeterRules(config.Gnocchi{Meters: []config.Meter{m}}, cat.Policies()); err != nil {
		t.Errorf("same type: %v", err)
	}
	m.Rule = "meter.alt_test"
	err = checkMeterRules(config.Gnocchi{Meters: []config.Meter{m}}, cat.Policies())
	if err == nil || !strings.Contains(err.Error(), "gnocchi.meters[0].rule: policy p version 1 prices meter instance.hours with a meter rule, the configuration says meter.alt_test") {
		t.Errorf("other type: %v", err)
	}
	// A meter no policy prices is not this check's business.
	m.Name = "other"
	if err := checkMeterRules(config.Gnocchi{Meters: []config.Meter{m}}, cat.Policies()); err != nil {
		t.Errorf("unpriced meter: %v", err)
	}
}
