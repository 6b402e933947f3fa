package rating

import (
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
)

// byFlavor prices instance-hours (a Gnocchi meter summing an hourly instance gauge) by the
// instance's flavor_name: CloudKitty's most common rule.
const byFlavor = `meter: instance
unit: hour
description: Instance
group_by: [flavor_name]
prices:
  m1.small: "0.02"
  m1.large: {model: graduated, tiers: [{up_to: 100, price: "0.08"}, {price: "0.06"}]}
default: "0.05"`

// TestMeterPricedByAttribute: a meter total is priced by its resource's attribute values, each
// value its own pricing; an unlisted value takes the default.
func TestMeterPricedByAttribute(t *testing.T) {
	r := mustBuild(t, MeterType, byFlavor)
	tests := []struct {
		name      string
		attrs     map[string]string
		hours     string
		label     string
		desc      string
		qty       string
		unitPrice string
		amount    string
	}{
		// October, 744 instance-hours × 0.02 = 14.88.
		{"priced value", map[string]string{"flavor_name": "m1.small"}, "744", "Instance m1.small", "Instance m1.small (vm-1)", "744", "0.02", "14.88"},
		// 10.5 h × 0.05 (default) = 0.525: the line says which value took the default.
		{"unlisted value takes the default", map[string]string{"flavor_name": "m1.tiny"}, "10.5", "Instance, default price",
			"Instance, default price (m1.tiny) (vm-1)", "10.5", "0.05", "0.525"},
		// Other attributes do not matter: 1 h × 0.02 = 0.02.
		{"other attributes ignored", map[string]string{"flavor_name": "m1.small", "flavor_id": "9"}, "1", "Instance m1.small", "Instance m1.small (vm-1)", "1", "0.02", "0.02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := r.Measure(nil, Usage{Meter: "instance", ResourceType: "instance", ResourceID: "vm-1", Attributes: tt.attrs,
				Quantity: decimal.MustParse(tt.hours), Unit: "hour", Range: october})
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].Label != tt.label {
				t.Fatalf("measures = %+v, want one labelled %q", ms, tt.label)
			}
			ch, err := ms[0].Charge()
			if err != nil {
				t.Fatal(err)
			}
			if ch.Description != tt.desc || ch.Quantity.Trim(0).String() != tt.qty || ch.UnitPrice.Trim(0).String() != tt.unitPrice ||
				ch.Amount.Trim(0).String() != tt.amount || ch.Unit != "hour" {
				t.Errorf("charge = %q %s %s × %s = %s; want %q %s × %s = %s", ch.Description, ch.Unit, ch.Quantity, ch.UnitPrice, ch.Amount,
					tt.desc, tt.qty, tt.unitPrice, tt.amount)
			}
		})
	}
}

// TestMeterValueTiersApplyToThatValuesTotal: a value priced with tiers sums that value's totals
// over the period; other values are not in its tiers.
func TestMeterValueTiersApplyToThatValuesTotal(t *testing.T) {
	r := mustBuild(t, MeterType, byFlavor)
	var tl Tally
	for _, u := range []struct{ id, flavor, hours string }{
		{"vm-1", "m1.large", "60"}, {"vm-2", "m1.large", "60"}, {"vm-3", "m1.small", "500"},
	} {
		ms, err := r.Measure(nil, Usage{Meter: "instance", ResourceID: u.id, Attributes: map[string]string{"flavor_name": u.flavor},
			Quantity: decimal.MustParse(u.hours), Unit: "hour", Range: october})
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].Pricing.Model == Flat {
			continue // m1.small is flat: its own line per instance (TestMeterPricedByAttribute)
		}
		if err := tl.Add(TallyKey{Pricing: ms[0].Pricing, Unit: ms[0].Unit, Rule: "instance"}, &ms[0], october); err != nil {
			t.Fatal(err)
		}
	}
	priced, err := tl.Price(func(*Group) (string, decimal.Decimal) { return "", decimal.Zero })
	if err != nil {
		t.Fatal(err)
	}
	if len(priced) != 1 || priced[0].Group.Label != "Instance m1.large" {
		t.Fatalf("groups = %+v, want the m1.large one", priced)
	}
	// m1.large: 60 + 60 = 120 h: 100 h × 0.08 = 8.00, then 20 h × 0.06 = 1.20 (9.20 in all;
	// the 500 m1.small hours are not in these tiers).
	checkLines(t, priced[0].Charges, []line{{"100", "0.08", "8"}, {"20", "0.06", "1.2"}})
}

// TestUnpricedValueIsAnError: without a default, a value no price lists is an error naming the
// meter, the resource and the value, never a zero. A resource without the attribute is an error
// even with a default (a misspelled group_by, flavour_name, must not bill everything at it).
func TestUnpricedValueIsAnError(t *testing.T) {
	r := mustBuild(t, MeterType, "meter: instance\nunit: hour\ngroup_by: [flavor_name]\nprices: {m1.small: \"0.02\", m1.large: \"0.08\"}")
	tests := []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"unlisted value", map[string]string{"flavor_name": "m1.huge"},
			`meter instance of resource vm-7: no price for flavor_name "m1.huge" and no default (priced: m1.large; m1.small)`},
		{"missing attribute", map[string]string{"display_name": "web", "flavor_id": "3"},
			`meter instance of resource vm-7: the resource has no flavor_name attribute to price by (it has: display_name, flavor_id)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Measure(nil, Usage{Meter: "instance", ResourceType: "instance", ResourceID: "vm-7", Attributes: tt.attrs,
				Quantity: decimal.One, Unit: "hour", Range: october})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	withDefault := mustBuild(t, MeterType, "meter: instance\ngroup_by: [flavour_name]\nprices: {m1.small: \"0.02\"}\ndefault: \"0.05\"")
	_, err := withDefault.Measure(nil, Usage{Meter: "instance", ResourceID: "vm-7", Attributes: map[string]string{"flavor_name": "m1.small"},
		Quantity: decimal.One, Range: october})
	if err == nil || !strings.Contains(err.Error(), "no flavour_name attribute to price by (it has: flavor_name)") {
		t.Errorf("misspelled group_by with a default: %v", err)
	}
	// Several attributes: the key joins their values with ",". 2 h × 0.5 = 1.
	multi := mustBuild(t, MeterType, "meter: instance\ngroup_by: [flavor_name, host]\nprices: {\"m1.small,gpu-1\": \"0.5\"}")
	ms, err := multi.Measure(nil, Usage{Meter: "instance", ResourceID: "vm-8", Attributes: map[string]string{"flavor_name": "m1.small", "host": "gpu-1"},
		Quantity: decimal.MustNew(2, 0), Range: october})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ms[0].Charge(); err != nil || c.Amount.Trim(0).String() != "1" || ms[0].Label != "instance m1.small,gpu-1" {
		t.Errorf("multi = %+v %+v, %v", ms[0], c, err)
	}
}

// TestBadMeterSpecsAreRefusedWithLineAndField: the per-value prices are checked like any rule.
func TestBadMeterSpecsAreRefusedWithLineAndField(t *testing.T) {
	tests := []struct{ name, spec, want string }{
		{"negative value price", "meter: instance\ngroup_by: [flavor_name]\nprices:\n  m1.small: \"0.02\"\n  m1.large: \"-1\"",
			`line 5: prices.m1.large: -1 is negative`},
		{"negative default", "meter: instance\ngroup_by: [flavor_name]\ndefault: \"-0.5\"", `line 3: default: -0.5 is negative`},
		{"unknown key", "meter: instance\ngroup_by: [flavor_name]\nprice_by: {m1.small: \"1\"}", "line 3: price_by: unknown key (allowed: default, description, group_by, meter, price, prices, unit)"},
		{"bad tiers in a value", "meter: instance\ngroup_by: [flavor_name]\nprices:\n  m1.large: {model: graduated, tiers: [{up_to: 10, price: \"1\"}]}",
			"line 4: prices.m1.large.tiers[0].up_to: the last tier must be open"},
		{"prices without group_by", "meter: instance\nprices: {m1.small: \"1\"}", "prices: prices per value need group_by"},
		{"price with group_by", "meter: instance\ngroup_by: [flavor_name]\nprice: \"1\"\nprices: {a: \"1\"}", "line 3: price: with group_by, price each value under prices"},
		{"group_by without prices", "meter: instance\ngroup_by: [flavor_name]", "prices: required with group_by"},
		{"value without price", "meter: instance\ngroup_by: [flavor_name]\nprices:\n  m1.small:", "prices.m1.small: required"},
		{"wrong number of values", "meter: instance\ngroup_by: [flavor_name, host]\nprices: {m1.small: \"1\"}", "prices.m1.small: 1 value(s) for 2 group_by attribute(s)"},
		{"attribute twice", "meter: instance\ngroup_by: [flavor_name, flavor_name]\ndefault: \"1\"", `group_by[1]: "flavor_name" is listed twice`},
		{"no price at all", "meter: instance", "price: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(billing.RuleSpec{Type: MeterType, Spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestMeterRuleTypes: meter is a registered meter rule type; server is not; a compiled meter
// rule says its type (gnocchi.meters[].rule is checked against it).
func TestMeterRuleTypes(t *testing.T) {
	if !IsMeterType(MeterType) || IsMeterType(ServerType) || IsMeterType("nope") {
		t.Errorf("IsMeterType: meter %v, server %v, nope %v", IsMeterType(MeterType), IsMeterType(ServerType), IsMeterType("nope"))
	}
	if got := strings.Join(MeterTypes(), ","); !strings.Contains(got, MeterType) {
		t.Errorf("MeterTypes = %s", got)
	}
	if got := RuleType(mustBuild(t, MeterType, byFlavor)); got != MeterType {
		t.Errorf("RuleType = %q", got)
	}
}
