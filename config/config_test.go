package config

import (
	"strings"
	"testing"
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
