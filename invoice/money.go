package invoice

import (
	"fmt"
	"strings"

	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// RoundingMode says how an amount is brought to the currency's scale.
type RoundingMode string

// Rounding modes. HalfUp is the default: ties go away from zero (2.345 → 2.35, −2.345 → −2.35).
const (
	HalfUp   RoundingMode = "half_up"
	HalfEven RoundingMode = "half_even"
	Up       RoundingMode = "up"   // away from zero whenever a digit is dropped
	Down     RoundingMode = "down" // toward zero (truncate)
)

// Rounding is the explicit rounding rule applied once per invoice line and to the tax.
type Rounding struct {
	// Mode defaults to half_up.
	Mode RoundingMode `yaml:"mode"`
	// Scale is the number of decimals kept. Defaults to 2.
	Scale int `yaml:"scale"`
}

// UnmarshalYAML decodes {mode, scale}. A mode left out is half_up and a scale left out is 2 (the
// cent), whatever the mode: `rounding: {mode: half_even}` never silently rounds to whole units,
// and `scale: 0` (whole units, e.g. JPY) must be written. An unknown key is an error.
func (r *Rounding) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: rounding: want a mapping {mode, scale}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "mode", "scale":
		default:
			return fmt.Errorf("line %d: rounding: unknown key %q (want mode, scale)", n.Content[i].Line, k)
		}
	}
	var v struct {
		Mode  RoundingMode `yaml:"mode"`
		Scale *int         `yaml:"scale"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	r.Mode, r.Scale = v.Mode, DefaultRounding.Scale
	if r.Mode == "" {
		r.Mode = DefaultRounding.Mode
	}
	if v.Scale != nil {
		r.Scale = *v.Scale
	}
	return nil
}

// DefaultRounding is half-up to the cent.
var DefaultRounding = Rounding{Mode: HalfUp, Scale: 2}

// Validate checks the mode and scale.
func (r Rounding) Validate() error {
	switch r.Mode {
	case HalfUp, HalfEven, Up, Down:
	default:
		return fmt.Errorf("rounding.mode %q: want one of half_up, half_even, up, down", r.Mode)
	}
	if r.Scale < 0 || r.Scale > 8 {
		return fmt.Errorf("rounding.scale %d: want 0 to 8", r.Scale)
	}
	return nil
}

// Round applies the rule to d and pads the result to Scale decimals.
func (r Rounding) Round(d decimal.Decimal) decimal.Decimal {
	s := r.Scale
	var out decimal.Decimal
	switch r.Mode {
	case HalfEven:
		out = d.Round(s)
	case Down:
		out = d.Trunc(s)
	case Up:
		if d.IsNeg() {
			out = d.Floor(s)
		} else {
			out = d.Ceil(s)
		}
	default: // HalfUp
		t := d.Trunc(s)
		rem, err := d.Sub(t)
		if err == nil {
			half := decimal.MustNew(5, s+1)
			if rem.Abs().Cmp(half) >= 0 {
				step := decimal.MustNew(1, s)
				if d.IsNeg() {
					t, _ = t.Sub(step)
				} else {
					t, _ = t.Add(step)
				}
			}
		}
		out = t
	}
	return out.Pad(s)
}

// Zero is the decimal 0.
var Zero = decimal.Zero

// Sum adds amounts; it returns an error only on overflow (beyond 19 significant digits).
func Sum(ds ...decimal.Decimal) (decimal.Decimal, error) {
	total := decimal.Zero
	for _, d := range ds {
		var err error
		if total, err = total.Add(d); err != nil {
			return decimal.Zero, fmt.Errorf("sum amounts: %w", err)
		}
	}
	return total, nil
}

// ParseAmount parses a decimal amount written with a dot, e.g. "12.50" or "-0.0001".
func ParseAmount(s string) (decimal.Decimal, error) {
	d, err := decimal.Parse(strings.TrimSpace(s))
	if err != nil {
		return decimal.Zero, fmt.Errorf("amount %q: want a decimal number such as 12.50", s)
	}
	return d, nil
}

// Hundred is the decimal 100, to show rates as percentages.
var Hundred = decimal.MustNew(100, 0)
