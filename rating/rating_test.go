package rating

import (
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

var october = interval.Range{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}

func secs(n int64) interval.Range {
	return interval.Range{Start: october.Start, End: october.Start.Add(time.Duration(n) * time.Second)}
}

func mustBuild(t testing.TB, typ, spec string) Rule {
	t.Helper()
	r, err := Build(billing.RuleSpec{Type: typ, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// charges measures one piece of usage and charges each measure on its own (flat pricings).
func charges(t *testing.T, r Rule, attrs map[string]string, rg interval.Range) []Charge {
	t.Helper()
	ms, err := r.Measure(nil, Usage{ResourceType: "x", ResourceID: "r1", Attributes: attrs, Range: rg})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Charge, len(ms))
	for i := range ms {
		if out[i], err = ms[i].Charge(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func charge(t *testing.T, r Rule, attrs map[string]string, rg interval.Range) Charge {
	t.Helper()
	chs := charges(t, r, attrs, rg)
	if len(chs) != 1 {
		t.Fatalf("got %d charges, want 1: %+v", len(chs), chs)
	}
	return chs[0]
}

func TestRulesPriceToTheSecond(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02", m1.large: "0.08"}`)
	volume := mustBuild(t, VolumeType, `{price_per_gb_hour: "0.00015", volume_types: {ssd: "0.0003"}}`)
	snapshot := mustBuild(t, SnapshotType, `price_per_gb_hour: "0.00005"`)
	image := mustBuild(t, ImageType, `price_per_gb_hour: "0.0001"`)
	fip := mustBuild(t, FloatingIPType, `price_per_hour: "0.005"`)
	router := mustBuild(t, RouterType, `price_per_hour: "0.01"`)
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
		// An unpriced volume type falls back to the default price: 10 GB × 2 h × 0.00015 = 0.003 → 0.00.
		{"volume other type", volume, map[string]string{"size": "10", "volume_type": "hdd"}, secs(7200), "20", "0.003", "0.00"},
		// 50 GB × 744 h × 0.00005 = 1.86.
		{"snapshot month", snapshot, map[string]string{"size": "50"}, october, "37200", "1.86", "1.86"},
		// 2 GiB (2147483648 B) × 744 h × 0.0001 = 0.1488 → 0.15.
		{"image bytes to GiB", image, map[string]string{"size": "2147483648"}, october, "1488", "0.1488", "0.15"},
		// One second at 0.005/h = 0.00000138…: kept exact, rounds to 0.00 only on the line.
		{"floating ip one second", fip, nil, secs(1), "0.000278", "0.0000013888888888889", "0.00"},
		// 744 h × 0.01 = 7.44.
		{"router month", router, nil, october, "744", "7.44", "7.44"},
		{"zero seconds", fip, nil, secs(0), "0", "0", "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := charge(t, tt.rule, tt.attrs, tt.r)
			if ch.Quantity.String() != tt.wantQty {
				t.Errorf("quantity = %s, want %s", ch.Quantity, tt.wantQty)
			}
			if ch.Amount.Trim(0).String() != tt.wantExact {
				t.Errorf("amount = %s, want %s", ch.Amount, tt.wantExact)
			}
			if got := invoice.DefaultRounding.Round(ch.Amount).String(); got != tt.wantCents {
				t.Errorf("rounded = %s, want %s", got, tt.wantCents)
			}
			if ch.Granularity != "second" {
				t.Errorf("granularity = %q, want second (the default)", ch.Granularity)
			}
		})
	}
}

func TestServerStatesAndComponents(t *testing.T) {
	server := mustBuild(t, ServerType, `
flavors: {m1.small: "0.02"}
components: {vcpu: "0.01", ram_gb: "0.004", disk_gb: "0.0001"}
states: {stopped: "0.005", shelved_offloaded: "0"}
`)
	// Stopped for 10 h: 10 × 0.005 = 0.05 whatever the flavor.
	ch := charge(t, server, map[string]string{"flavor": "m1.small", "state": "stopped"}, secs(36000))
	if ch.Amount.Trim(0).String() != "0.05" || !strings.Contains(ch.Description, "stopped") {
		t.Errorf("stopped: %+v", ch)
	}
	// Shelved offloaded: free.
	if ch := charge(t, server, map[string]string{"flavor": "m1.small", "state": "shelved_offloaded"}, secs(36000)); !ch.Amount.IsZero() {
		t.Errorf("shelved: %s", ch.Amount)
	}
	// Active: the flavor's price, 10 × 0.02 = 0.20.
	if ch := charge(t, server, map[string]string{"flavor": "m1.small", "state": "active"}, secs(36000)); ch.Amount.Trim(0).String() != "0.2" {
		t.Errorf("active: %s", ch.Amount)
	}
	// An unlisted flavor by components, 1 h: vCPU 2 × 0.01 = 0.02; RAM 4096 MB = 4 GB × 0.004 =
	// 0.016; disk 40 GB × 0.0001 = 0.004. Three lines, 0.04 in all.
	chs := charges(t, server, map[string]string{"flavor": "c4.custom", "vcpus": "2", "memory_mb": "4096", "disk_gb": "40"}, secs(3600))
	want := []struct{ unit, qty, amount string }{{"vCPU-hour", "2", "0.02"}, {"GB-hour", "4", "0.016"}, {"GB-hour", "40", "0.004"}}
	if len(chs) != len(want) {
		t.Fatalf("components: %+v", chs)
	}
	for i, w := range want {
		if chs[i].Unit != w.unit || chs[i].Quantity.String() != w.qty || chs[i].Amount.Trim(0).String() != w.amount {
			t.Errorf("component %d = %s %s %s, want %s %s %s", i, chs[i].Quantity, chs[i].Unit, chs[i].Amount, w.qty, w.unit, w.amount)
		}
	}
	// Components need the attributes: no guess.
	_, err := server.Measure(nil, Usage{ResourceType: ServerType, ResourceID: "vm-2", Attributes: map[string]string{"flavor": "c4.custom", "vcpus": "2"}, Range: secs(60)})
	if err == nil || !strings.Contains(err.Error(), "memory_mb or ram_gb") {
		t.Errorf("missing RAM: %v", err)
	}
}

// Issue 12, 2: a soft-deleted server (state soft_deleted, from etc/events.yaml) is not billed
// for compute unless the policy prices that state.
func TestSoftDeletedServerIsFreeUnlessPriced(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02"}`)
	ch := charge(t, server, map[string]string{"flavor": "m1.small", "state": SoftDeletedState}, secs(36000))
	if !ch.Amount.IsZero() || !strings.Contains(ch.Description, "soft_deleted") {
		t.Errorf("soft-deleted by default: %+v, want 0 and the state named", ch)
	}
	priced := mustBuild(t, ServerType, `{flavors: {m1.small: "0.02"}, states: {soft_deleted: "0.001"}}`)
	if ch := charge(t, priced, map[string]string{"flavor": "m1.small", "state": SoftDeletedState}, secs(36000)); ch.Amount.Trim(0).String() != "0.01" {
		t.Errorf("soft-deleted priced at 0.001/h for 10 h: %s, want 0.01", ch.Amount)
	}
	if ch := charge(t, server, map[string]string{"flavor": "m1.small", "state": "active"}, secs(36000)); ch.Amount.Trim(0).String() != "0.2" {
		t.Errorf("restored (active): %s, want 0.2", ch.Amount)
	}
}

func TestUnknownFlavorIsAnErrorNotAGuess(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02"}`)
	_, err := server.Measure(nil, Usage{ResourceType: ServerType, ResourceID: "vm-1", Attributes: map[string]string{"flavor": "m9.huge"}, Range: secs(60)})
	if err == nil || !strings.Contains(err.Error(), `"m9.huge"`) || !strings.Contains(err.Error(), "vm-1") {
		t.Fatalf("error = %v", err)
	}
	withDefault := mustBuild(t, ServerType, `{flavors: {m1.small: "0.02"}, default: "0.36"}`)
	if ch := charge(t, withDefault, map[string]string{"flavor": "m9.huge"}, secs(3600)); ch.Amount.String() != "0.36" {
		t.Fatalf("default price: %v", ch.Amount)
	}
}

func TestTinyRatesStayExact(t *testing.T) {
	// 0.01 per hour is 0.0000027… per second: it must not round to zero before the line.
	fip := mustBuild(t, FloatingIPType, `price_per_hour: "0.01"`)
	ch := charge(t, fip, nil, secs(1))
	if !ch.Amount.IsPos() || !strings.HasPrefix(ch.Amount.String(), "0.0000027777") {
		t.Fatalf("amount for one second = %s", ch.Amount)
	}
}

// TestGranularity prices a floating IP at 3.60 per hour (0.001 per second) with each time
// granularity: the span's seconds are rounded up to the unit, the quantity stays in hours.
func TestGranularity(t *testing.T) {
	tests := []struct {
		gran    string
		seconds int64
		qty     string // hours billed
		amount  string // qty × 3.60
	}{
		{"second", 90, "0.025", "0.09"},     // 90 s × 0.001
		{"minute", 90, "0.033333", "0.12"},  // 2 started minutes = 120 s × 0.001
		{"minute", 120, "0.033333", "0.12"}, // exactly 2 minutes
		{"hour", 90, "1", "3.6"},            // 1 started hour
		{"hour", 3600, "1", "3.6"},          // exactly 1 hour: no second hour
		{"hour", 3601, "2", "7.2"},          // one second into the second hour
		{"hour", 1, "1", "3.6"},             // a span of one second
		{"day", 90, "24", "86.4"},           // 1 started day = 24 h
		{"day", 86400 + 1, "48", "172.8"},   // 2 started days
		{"second", 1, "0.000278", "0.001"},  // one second
		{"day", 0, "0", "0"},                // zero usage bills nothing
	}
	for _, tt := range tests {
		t.Run(tt.gran, func(t *testing.T) {
			r := mustBuild(t, FloatingIPType, "price_per_hour: \"3.60\"\ngranularity: "+tt.gran)
			ch := charge(t, r, nil, secs(tt.seconds))
			if ch.Quantity.String() != tt.qty || ch.Amount.Trim(0).String() != tt.amount || ch.Granularity != tt.gran {
				t.Errorf("%d s per %s = %s h, %s (%s); want %s h, %s", tt.seconds, tt.gran, ch.Quantity, ch.Amount.Trim(0), ch.Granularity, tt.qty, tt.amount)
			}
		})
	}
}

// TestLeapDay bills February 2028, which has a 29th day.
func TestLeapDay(t *testing.T) {
	server := mustBuild(t, ServerType, `flavors: {m1.small: "0.02"}`)
	perDay := mustBuild(t, ServerType, "flavors: {m1.small: \"0.02\"}\ngranularity: day")
	small := map[string]string{"flavor": "m1.small"}
	feb := interval.Range{Start: time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)}
	leap := interval.Range{Start: time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC), End: time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name   string
		rule   Rule
		r      interval.Range
		qty    string
		amount string
	}{
		// 29 days × 24 h = 696 h × 0.02 = 13.92.
		{"february 2028", server, feb, "696", "13.92"},
		// The 29th alone: 24 h × 0.02 = 0.48.
		{"29 february", server, leap, "24", "0.48"},
		// 28 Feb 12:00 to 1 Mar 00:00 = 36 h: two started days = 48 h × 0.02 = 0.96.
		{"per day across the leap day", perDay, interval.Range{Start: time.Date(2028, 2, 28, 12, 0, 0, 0, time.UTC), End: leap.End}, "48", "0.96"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := charge(t, tt.rule, small, tt.r)
			if ch.Quantity.String() != tt.qty || ch.Amount.Trim(0).String() != tt.amount {
				t.Errorf("= %s h, %s; want %s h, %s", ch.Quantity, ch.Amount, tt.qty, tt.amount)
			}
		})
	}
}

// total prices the period's total of a meter rule with the given price spec over the given
// quantities (GB), with included GB free; it returns the charges' (quantity, unit price, amount).
func total(t *testing.T, price, included string, quantities ...string) []Charge {
	t.Helper()
	r := mustBuild(t, MeterType, "meter: traffic\nunit: GB\nprice: "+price)
	var tl Tally
	for _, q := range quantities {
		ms, err := r.Measure(nil, Usage{Meter: "traffic", Quantity: decimal.MustParse(q), Unit: "GB", Range: october})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ms {
			if err := tl.Add(TallyKey{Pricing: ms[i].Pricing, Unit: ms[i].Unit, Rule: "traffic"}, &ms[i], october); err != nil {
				t.Fatal(err)
			}
		}
	}
	priced, err := tl.Price(func(*Group) (string, decimal.Decimal) {
		if included == "" {
			return "", decimal.Zero
		}
		return "traffic", decimal.MustParse(included)
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []Charge
	for _, p := range priced {
		out = append(out, p.Charges...)
	}
	return out
}

type line struct{ qty, price, amount string }

func checkLines(t *testing.T, got []Charge, want []line) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Quantity.Trim(0).String() != w.qty || g.UnitPrice.Trim(0).String() != w.price || g.Amount.Trim(0).String() != w.amount {
			t.Errorf("line %d (%s) = %s × %s = %s, want %s × %s = %s", i+1, g.Description, g.Quantity.Trim(0), g.UnitPrice.Trim(0), g.Amount.Trim(0), w.qty, w.price, w.amount)
		}
	}
}

const tiers = `[{up_to: 100, price: "0.10"}, {up_to: 1000, price: "0.05"}, {price: "0.02"}]`

func TestFlatPerUnitOfQuantity(t *testing.T) {
	tests := []struct {
		name string
		qs   []string
		want []line
	}{
		// 120 + 30.5 = 150.5 GB × 0.05 = 7.525 (7.53 once rounded on the invoice).
		{"summed", []string{"120", "30.5"}, []line{{"150.5", "0.05", "7.525"}}},
		{"zero usage", []string{"0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkLines(t, total(t, `{model: per_unit, price: "0.05"}`, "", tt.qs...), tt.want) })
	}
}

func TestGraduatedTiers(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want []line
	}{
		{"zero usage", "0", nil},
		// Exactly at the first boundary: 100 × 0.10 = 10.00, nothing in tier 2.
		{"at a tier boundary", "100", []line{{"100", "0.1", "10"}}},
		// 100 × 0.10 = 10.00, then 0.5 × 0.05 = 0.025.
		{"just past the boundary", "100.5", []line{{"100", "0.1", "10"}, {"0.5", "0.05", "0.025"}}},
		// 100 × 0.10 = 10; 900 × 0.05 = 45; 1500 × 0.02 = 30: 85.00 in three lines.
		{"all tiers", "2500", []line{{"100", "0.1", "10"}, {"900", "0.05", "45"}, {"1500", "0.02", "30"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLines(t, total(t, `{model: graduated, tiers: `+tiers+`}`, "", tt.q), tt.want)
		})
	}
	// Tiers apply to the period's total, not to each piece: 60 + 60 = 120 GB is 100 × 0.10 +
	// 20 × 0.05 = 11.00, where pricing each piece alone would give 12.00.
	checkLines(t, total(t, `{model: graduated, tiers: `+tiers+`}`, "", "60", "60"), []line{{"100", "0.1", "10"}, {"20", "0.05", "1"}})
}

func TestVolumeTiers(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want []line
	}{
		{"zero usage", "0", nil},
		// Up to is inclusive: 100 stays in tier 1, 100 × 0.10 = 10.00.
		{"at a tier boundary", "100", []line{{"100", "0.1", "10"}}},
		// 101 reaches tier 2: the whole 101 × 0.05 = 5.05.
		{"past the boundary", "101", []line{{"101", "0.05", "5.05"}}},
		// 2500 × 0.02 = 50.00.
		{"last tier", "2500", []line{{"2500", "0.02", "50"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkLines(t, total(t, `{model: volume, tiers: `+tiers+`}`, "", tt.q), tt.want) })
	}
}

func TestPackage(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want []line
	}{
		{"zero usage", "0", nil},
		// Exactly one package: 1 × 5.00.
		{"at a package boundary", "100", []line{{"1", "5", "5"}}},
		// A millionth of a GB more starts a second package: 2 × 5.00 = 10.00.
		{"just past", "100.000001", []line{{"2", "5", "10"}}},
		// 250 GB: 3 started packages × 5.00 = 15.00.
		{"started packages", "250", []line{{"3", "5", "15"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := total(t, `{model: package, size: 100, price: "5.00"}`, "", tt.q)
			checkLines(t, got, tt.want)
			if len(got) > 0 && got[0].Unit != "package of 100 GB" {
				t.Errorf("unit = %q", got[0].Unit)
			}
		})
	}
}

func TestIncludedQuantity(t *testing.T) {
	tests := []struct {
		name, price, included string
		qs                    []string
		want                  []line
	}{
		// 80 GB, 100 included: one included line at 0, nothing to pay.
		{"within the included", `"0.05"`, "100", []string{"80"}, []line{{"80", "0", "0"}}},
		// 150 GB: 100 free, 50 × 0.05 = 2.50.
		{"beyond the included", `"0.05"`, "100", []string{"150"}, []line{{"100", "0", "0"}, {"50", "0.05", "2.5"}}},
		// Exactly the included: nothing beyond.
		{"exactly the included", `"0.05"`, "100", []string{"100"}, []line{{"100", "0", "0"}}},
		// Graduated after 100 free: the tiers apply to the 150 left: 100 × 0.10 + 50 × 0.05 = 12.50.
		{"graduated after the included", `{model: graduated, tiers: ` + tiers + `}`, "100", []string{"250"},
			[]line{{"100", "0", "0"}, {"100", "0.1", "10"}, {"50", "0.05", "2.5"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkLines(t, total(t, tt.price, tt.included, tt.qs...), tt.want) })
	}
}

func TestIncludedQuantityIsSharedAcrossPricings(t *testing.T) {
	// Two flavors draw on one pool of 100 included hours: the first group's 60 h are free, the
	// second's 70 h get the 40 h left free and pay 30 h × 0.08 = 2.40.
	r := mustBuild(t, ServerType, `flavors: {a: "0.02", b: "0.08"}`)
	var tl Tally
	for _, f := range []struct {
		flavor string
		hours  int64
	}{{"a", 60}, {"b", 70}} {
		ms, err := r.Measure(nil, Usage{Attributes: map[string]string{"flavor": f.flavor}, Range: secs(f.hours * 3600)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tl.Add(TallyKey{Pricing: ms[0].Pricing, Unit: ms[0].Unit, Rule: ServerType}, &ms[0], secs(f.hours*3600)); err != nil {
			t.Fatal(err)
		}
	}
	priced, err := tl.Price(func(*Group) (string, decimal.Decimal) { return ServerType, decimal.MustNew(100, 0) })
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, append(priced[0].Charges, priced[1].Charges...), []line{{"60", "0", "0"}, {"40", "0", "0"}, {"30", "0.08", "2.4"}})
}

func TestMinimumChargePerLine(t *testing.T) {
	tests := []struct {
		name string
		q    string
		want []line
	}{
		// 3 × 0.05 = 0.15 is raised to the 1.00 minimum.
		{"below the minimum", "3", []line{{"3", "0.05", "1"}}},
		// 40 × 0.05 = 2.00 is above it.
		{"above the minimum", "40", []line{{"40", "0.05", "2"}}},
		// No usage, no minimum.
		{"zero usage", "0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := total(t, `{price: "0.05", minimum: "1.00"}`, "", tt.q)
			checkLines(t, got, tt.want)
			if tt.name == "below the minimum" && (!got[0].Minimum || !strings.Contains(got[0].Description, "minimum charge 1.00")) {
				t.Errorf("the minimum is not stated: %+v", got[0])
			}
		})
	}
	// Per piece: one second of a floating IP at 0.005/h (0.0000014) is raised to 0.01.
	fip := mustBuild(t, FloatingIPType, `price_per_hour: {price: "0.005", minimum: "0.01"}`)
	if ch := charge(t, fip, nil, secs(1)); ch.Amount.String() != "0.01" || !ch.Minimum {
		t.Errorf("one second with a minimum: %+v", ch)
	}
}

func TestMeterConvertsUnits(t *testing.T) {
	r := mustBuild(t, MeterType, "meter: network.outgoing.bytes\nunit: GB\ndescription: Outgoing traffic\nprice: \"0.05\"")
	// 2,500,000,000 B = 2.5 GB × 0.05 = 0.125.
	ms, err := r.Measure(nil, Usage{Meter: "network.outgoing.bytes", ResourceID: "port-1", Quantity: decimal.MustNew(2_500_000_000, 0), Unit: "B"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ms[0].Charge()
	if err != nil || ch.Quantity.String() != "2.5" || ch.Unit != "GB" || ch.Amount.String() != "0.125" || ch.Description != "Outgoing traffic (port-1)" {
		t.Fatalf("charge = %+v, %v", ch, err)
	}
	_, err = r.Measure(nil, Usage{Meter: "network.outgoing.bytes", Quantity: decimal.One, Unit: "packet"})
	if err == nil || !strings.Contains(err.Error(), "no conversion") {
		t.Fatalf("unit mismatch: %v", err)
	}
}

func TestBadSpecsAreRefusedWithLineAndField(t *testing.T) {
	tests := []struct {
		name, typ, spec, want string
	}{
		{"negative price", ServerType, "flavors:\n  m1.small: \"0.02\"\n  m1.big: \"-1\"", `line 3: flavors.m1.big: -1 is negative`},
		{"not a number", ServerType, `flavors: {m1.small: "abc"}`, `line 1: flavors.m1.small: "abc" is not a decimal number`},
		{"unknown key", ServerType, `flavours: {m1.small: "0.02"}`, "line 1: flavours: unknown key (allowed: components, default, flavors, granularity, states)"},
		{"nothing priced", ServerType, `{}`, "at least one flavor"},
		{"flavor without price", ServerType, "flavors:\n  m1.small:", "flavors.m1.small: required"},
		{"unknown state", ServerType, "flavors: {a: \"1\"}\nstates: {sleeping: \"0\"}", "states.sleeping: unknown server state"},
		{"bad granularity", FloatingIPType, "price_per_hour: \"1\"\ngranularity: week", `line 2: granularity: "week": want second, minute, hour or day`},
		{"price not a scalar", VolumeType, `price_per_gb_hour: [1]`, "line 1: price_per_gb_hour: want a price"},
		{"unknown pricing key", FloatingIPType, "price_per_hour:\n  prices: \"1\"", "line 2: price_per_hour.prices: unknown key (allowed: model, price, tiers, size, minimum)"},
		{"unknown model", FloatingIPType, "price_per_hour: {model: tiered, price: \"1\"}", `price_per_hour.model: "tiered": want flat`},
		{"overlapping tiers", VolumeType, `price_per_gb_hour:
  model: graduated
  tiers:
    - {up_to: 1000, price: "0.0002"}
    - {up_to: 500, price: "0.0001"}
    - {price: "0.00005"}`, "line 5: price_per_gb_hour.tiers[1].up_to: 500 is not above the previous tier's 1000: tiers must be ordered and must not overlap"},
		{"equal tiers", VolumeType, "price_per_gb_hour: {model: volume, tiers: [{up_to: 10, price: \"1\"}, {up_to: 10, price: \"1\"}, {price: \"1\"}]}", "tiers[1].up_to: 10 is not above the previous tier's 10"},
		{"open tier in the middle", VolumeType, "price_per_gb_hour: {model: graduated, tiers: [{price: \"1\"}, {price: \"2\"}]}", "tiers[0].up_to: required: only the last tier is open"},
		{"capped last tier", VolumeType, "price_per_gb_hour: {model: graduated, tiers: [{up_to: 10, price: \"1\"}]}", "tiers[0].up_to: the last tier must be open"},
		{"negative tier price", VolumeType, "price_per_gb_hour:\n  model: graduated\n  tiers:\n    - {up_to: 10, price: \"-1\"}\n    - {price: \"1\"}", "line 4: price_per_gb_hour.tiers[0].price: -1 is negative"},
		{"tier without price", VolumeType, "price_per_gb_hour: {model: graduated, tiers: [{up_to: 10}, {price: \"1\"}]}", "tiers[0].price: required"},
		{"price with tiers", VolumeType, "price_per_gb_hour: {model: graduated, price: \"1\", tiers: [{price: \"1\"}]}", "price_per_gb_hour.price: not used by model graduated"},
		{"package without size", ImageType, "price_per_gb_hour: {model: package, price: \"5\"}", "price_per_gb_hour.size: required"},
		{"package of zero", ImageType, "price_per_gb_hour: {model: package, size: 0, price: \"5\"}", "price_per_gb_hour.size: must be above zero"},
		{"negative minimum", RouterType, "price_per_hour: {price: \"1\", minimum: \"-1\"}", "price_per_hour.minimum: -1 is negative"},
		{"meter without name", MeterType, `price: "1"`, "meter: required"},
		{"not registered", "os.unknown.thing", `x: 1`, "not registered"},
		{"empty", FloatingIPType, ``, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(billing.RuleSpec{Type: tt.typ, Spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
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
