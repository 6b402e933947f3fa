package importer

import (
	"strings"
	"testing"
	"time"
)

func TestPolicyVersionsAndFeeFields(t *testing.T) {
	doc := `policies:
  - name: pro
    currency: EUR
    fee: "62.00"
    fee_interval: yearly
    fee_timing: advance
    included: {network.outgoing.bytes: "10", os.nova.server: 720}
  - name: pro
    version: 2
    effective_from: 2026-10-15T12:00:00Z
    currency: EUR
    fee: "70.00"
`
	ps, err := Policies("p.yaml", strings.NewReader(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d policies, want two versions of pro", len(ps))
	}
	v1, v2 := ps[0], ps[1]
	if v1.FeeInterval != "yearly" || v1.FeeTiming != "advance" || v1.Included["network.outgoing.bytes"].String() != "10" ||
		v1.Included["os.nova.server"].String() != "720" || !v1.EffectiveFrom.IsZero() {
		t.Errorf("version 1 = %+v", v1)
	}
	if v2.Version != 2 || !v2.EffectiveFrom.Equal(time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)) || v2.Fee.String() != "70.00" {
		t.Errorf("version 2 = %+v", v2)
	}
}

func TestPolicyFeeFieldErrorsNameLineAndField(t *testing.T) {
	doc := `policies:
  - name: pro
    currency: EUR
    fee_interval: weekly
    fee_timing: later
    effective_from: soon
    version: 0
    included: {os.nova.server: "-1", meter: lots}
  - name: pro
    currency: USD
    effective_from: 2026-11-01
`
	_, err := Policies("p.yaml", strings.NewReader(doc), nil)
	want := []string{
		`p.yaml:4: policies[0].fee_interval "weekly": want monthly or yearly`,
		`p.yaml:5: policies[0].fee_timing "later": want advance or arrears`,
		`p.yaml:6: policies[0].effective_from "soon": time not understood`,
		`p.yaml:7: policies[0].version "0": want a whole number from 1`,
		`p.yaml:8: policies[0].included.meter "lots": want a decimal quantity`,
		`p.yaml:8: policies[0].included.os.nova.server "-1": must not be negative`,
		`p.yaml:9: policies[1].currency "USD": another version of "pro" is in EUR`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
