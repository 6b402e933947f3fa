package billing

import "testing"

func TestRuleSpecKeySeparatesMeters(t *testing.T) {
	tests := []struct {
		rs   RuleSpec
		want string
	}{
		{RuleSpec{Type: "os.nova.server", Spec: `flavors: {a: "1"}`}, "os.nova.server"},
		{RuleSpec{Type: MeterRuleType, Spec: "meter: network.outgoing.bytes\nprice: \"1\""}, "meter:network.outgoing.bytes"},
		{RuleSpec{Type: MeterRuleType, Spec: "{meter: cpu, price: \"1\"}"}, "meter:cpu"},
	}
	for _, tt := range tests {
		if got := tt.rs.Key(); got != tt.want {
			t.Errorf("Key(%s) = %q, want %q", tt.rs.Spec, got, tt.want)
		}
	}
}
