package config

import (
	"strings"
	"testing"

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
)

func TestParseReportsEveryProblemWithItsField(t *testing.T) {
	_, err := Parse("b.yaml", []byte(`
billing:
  timezone: Mars/Olympus
  tax_rate: "1.5"
  rounding: {mode: sideways, scale: 2}
numbering:
  format: INV-{year}
pipeline:
  batch_size: -1
  memory_limit: lots
  scheduled: [subscription_feeding]
  interim: [subscription_feeding, finalizing]
`))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"billing.timezone", "billing.tax_rate", "rounding.mode", "numbering.format", "pipeline.batch_size", "pipeline.memory_limit", "pipeline.interim[1]", "no finalizing handler"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestNumberFormatIsGaplessPerYearSeries(t *testing.T) {
	nf, err := ParseNumberFormat("INV-{year}-{seq:06}")
	if err != nil {
		t.Fatal(err)
	}
	if s := nf.Series(2026); nf.Format(s, 123) != "INV-2026-000123" || nf.Series(2027) == s {
		t.Fatalf("series %q formats %q", s, nf.Format(s, 123))
	}
	for _, bad := range []string{"INV-{year}", "INV-{seq}-{seq}", "INV-{month}-{seq}"} {
		if _, err := ParseNumberFormat(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"512MB", 512e6}, {"1048576", 1 << 20}, {"off", -1}}
	for _, tt := range tests {
		if got, err := ParseBytes(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "lots", "-5MiB", "0"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

const roundingChains = "pipeline:\n  scheduled: [subscription_feeding, finalizing]\n  interim: [subscription_feeding]\n"

// Issue 11 (4): a rounding mode without a scale rounded every total to whole units.
func TestRoundingScaleDefaultsToTheCent(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       invoice.Rounding
	}{
		{"no rounding section", "billing: {timezone: UTC}\n", invoice.Rounding{Mode: invoice.HalfUp, Scale: 2}},
		{"mode only", "billing:\n  rounding: {mode: half_up}\n", invoice.Rounding{Mode: invoice.HalfUp, Scale: 2}},
		{"half_even only", "billing:\n  rounding: {mode: half_even}\n", invoice.Rounding{Mode: invoice.HalfEven, Scale: 2}},
		{"scale 0 written", "billing:\n  rounding: {mode: down, scale: 0}\n", invoice.Rounding{Mode: invoice.Down, Scale: 0}},
		{"scale only", "billing:\n  rounding: {scale: 3}\n", invoice.Rounding{Mode: invoice.HalfUp, Scale: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.yaml+roundingChains))
			if err != nil {
				t.Fatal(err)
			}
			if c.Billing.Rounding != tt.want {
				t.Fatalf("rounding = %+v, want %+v", c.Billing.Rounding, tt.want)
			}
			// 10.456 with the cent is 10.46 (half_up) — never 10.
			if got := c.Billing.Rounding.Round(decimal.MustParse("10.456")); tt.want.Scale == 2 && got.String() == "10" {
				t.Fatalf("rounded to whole units: %s", got)
			}
		})
	}
	if _, err := Parse("t.yaml", []byte("billing:\n  rounding: {mode: half_up, digits: 2}\n"+roundingChains)); err == nil || !strings.Contains(err.Error(), "digits") {
		t.Fatalf("unknown rounding key: err = %v", err)
	}
}
