package rating

import (
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

var october = interval.Range{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}

func secs(n int64) interval.Range {
	return interval.Range{Start: october.Start, End: october.Start.Add(time.Duration(n) * time.Second)}
}

func mustBuild(t *testing.T, typ, spec string) Rule {
	t.Helper()
	r, err := Build(billing.RuleSpec{Type: typ, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRulesPriceToTheSecond(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02", m1.large: "0.08"}`)
	volume := mustBuild(t, VolumeType, `{price_per_gb_hour: "0.00015", volume_types: {ssd: "0.0003"}}`)
	image := mustBuild(t, ImageType, `price_per_gb_hour: "0.0001"`)
	fip := mustBuild(t, FloatingIPType, `price_per_hour: "0.005"`)
	tests := []struct {
		name      string
		rule      Rule
		attrs     map[string]string
		r         interval.Range
		wantQty   string
		wantExact string // unrounded amount
		wantCents string // half-up to the cent
	}{
		// 10 d 3 h 7 min 33 s = 875,253 s; 0.02 × 875253 / 3600 = 17505.06 / 3600 = 4.8625166…
		{"server odd seconds", server, map[string]string{"flavor": "m1.small"}, secs(875253), "243.125833", "4.862516666666666667", "4.86"},
		// October is 744 h: 0.08 × 744 = 59.52 exactly.
		{"server whole month", server, map[string]string{"flavor": "m1.large"}, october, "744", "59.52", "59.52"},
		// Found by flavor id when the name is absent.
		{"server by flavor id", server, map[string]string{"flavor_id": "m1.small"}, secs(3600), "1", "0.02", "0.02"},
		// 100 GB × 744 h × 0.00015 = 11.16.
		{"volume month", volume, map[string]string{"size": "100"}, october, "74400", "11.16", "11.16"},
		// ssd at 0.0003: 20 GB × 1.5 h × 0.0003 = 0.009 → 0.01.
		{"volume by type", volume, map[string]string{"size": "20", "volume_type": "ssd"}, secs(5400), "30", "0.009", "0.01"},
		// 2 GiB (2147483648 B) × 744 h × 0.0001 = 0.1488 → 0.15.
		{"image bytes to GiB", image, map[string]string{"size": "2147483648"}, october, "1488", "0.1488", "0.15"},
		// One second at 0.005/h = 0.00000138…: kept exact, rounds to 0.00 only on the line.
		{"floating ip one second", fip, nil, secs(1), "0.000278", "0.0000013888888888889", "0.00"},
		{"zero seconds", fip, nil, secs(0), "0", "0", "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := tt.rule.Price(Usage{ResourceType: "x", ResourceID: "r1", Attributes: tt.attrs, Range: tt.r})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Quantity.String() != tt.wantQty {
				t.Errorf("quantity = %s, want %s", ch.Quantity, tt.wantQty)
			}
			if ch.Amount.Trim(0).String() != tt.wantExact {
				t.Errorf("amount = %s, want %s", ch.Amount, tt.wantExact)
			}
			if got := invoice.DefaultRounding.Round(ch.Amount).String(); got != tt.wantCents {
				t.Errorf("rounded = %s, want %s", got, tt.wantCents)
			}
		})
	}
}

func TestTinyRatesStayExact(t *testing.T) {
	// 0.01 per hour is 0.0000027… per second: it must not round to zero before the line.
	fip := mustBuild(t, FloatingIPType, `price_per_hour: "0.01"`)
	ch, err := fip.Price(Usage{Range: secs(1)})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Amount.IsPos() || !strings.HasPrefix(ch.Amount.String(), "0.0000027777") {
		t.Fatalf("amount for one second = %s", ch.Amount)
	}
}

func TestBadSpecsAreRefusedWithTheField(t *testing.T) {
	tests := []struct {
		typ, spec, want string
	}{
		{ServerType, `flavors: {m1.small: "-0.02"}`, "negative"},
		{ServerType, `flavors: {m1.small: "abc"}`, "not a decimal"},
		{ServerType, `flavours: {m1.small: "0.02"}`, "field flavours not found"},
		{ServerType, `{}`, "at least one flavor"},
		{VolumeType, `price_per_gb_hour: [1]`, "want a price"},
		{"os.unknown.thing", `x: 1`, "not registered"},
		{FloatingIPType, ``, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.want, func(t *testing.T) {
			err := Validate(billing.RuleSpec{Type: tt.typ, Spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUnknownFlavorIsAnErrorNotAGuess(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02"}`)
	_, err := server.Price(Usage{ResourceType: ServerType, ResourceID: "vm-1", Attributes: map[string]string{"flavor": "m9.huge"}, Range: secs(60)})
	if err == nil || !strings.Contains(err.Error(), `"m9.huge"`) || !strings.Contains(err.Error(), "vm-1") {
		t.Fatalf("error = %v", err)
	}
	withDefault := mustBuild(t, ServerType, `{flavors: {m1.small: "0.02"}, default: "0.36"}`)
	ch, err := withDefault.Price(Usage{Attributes: map[string]string{"flavor": "m9.huge"}, Range: secs(3600)})
	if err != nil || ch.Amount.String() != "0.36" {
		t.Fatalf("default price: %v %v", ch.Amount, err)
	}
}

func TestCompileRefusesTwoRulesForOneType(t *testing.T) {
	_, err := Compile(billing.Policy{Name: "p", Rules: []billing.RuleSpec{
		{Type: FloatingIPType, Spec: `price_per_hour: "1"`},
		{Type: FloatingIPType, Spec: `price_per_hour: "2"`},
	}})
	if err == nil || !strings.Contains(err.Error(), "rules[1]") {
		t.Fatalf("error = %v", err)
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	Register(ServerType, newServer)
}

// BenchmarkPriceServerSpan prices one server span at a flat per-hour flavor price.
func BenchmarkPriceServerSpan(b *testing.B) {
	server, err := Build(billing.RuleSpec{Type: ServerType, Spec: `flavors: {m1.small: "0.02", m1.large: "0.08"}`})
	if err != nil {
		b.Fatal(err)
	}
	u := Usage{ResourceType: ServerType, ResourceID: "vm", Attributes: map[string]string{"flavor": "m1.small"}, Range: secs(875253)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := server.Price(u); err != nil {
			b.Fatal(err)
		}
	}
}
