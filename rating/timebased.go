package rating

import (
	"fmt"

	"github.com/govalues/decimal"
)

var (
	secondsPerHour = decimal.MustNew(3600, 0)
	bytesPerGiB    = decimal.MustNew(1<<30, 0)
	// secondsPerHourGiB turns byte-seconds into GiB-hours.
	secondsPerHourGiB = decimal.MustNew(3600<<30, 0)
)

// perHour prices size × seconds at price per (unit·hour): quantity = size × seconds / 3600, amount
// = price × size × seconds / 3600 with a single division so no intermediate rounding is added.
func perHour(price, size decimal.Decimal, seconds int64, unit, desc string) (Charge, error) {
	return perUnitHour(price, size, secondsPerHour, seconds, unit, desc)
}

// perUnitHour is perHour with size expressed in units of divisor/3600 (e.g. bytes for GiB-hours:
// divisor = 3600 × 2^30), still with a single division.
func perUnitHour(price, size, divisor decimal.Decimal, seconds int64, unit, desc string) (Charge, error) {
	secs := decimal.MustNew(seconds, 0)
	sizeSecs, err := size.Mul(secs)
	if err != nil {
		return Charge{}, fmt.Errorf("quantity: %w", err)
	}
	qty, err := sizeSecs.Quo(divisor)
	if err != nil {
		return Charge{}, fmt.Errorf("quantity: %w", err)
	}
	num, err := price.Mul(sizeSecs)
	if err != nil {
		return Charge{}, fmt.Errorf("amount: %w", err)
	}
	amount, err := num.Quo(divisor)
	if err != nil {
		return Charge{}, fmt.Errorf("amount: %w", err)
	}
	return Charge{Description: desc, Quantity: qty.Round(6).Trim(0), Unit: unit, UnitPrice: price, Amount: amount}, nil
}

// attrDecimal reads a numeric attribute.
func attrDecimal(u Usage, name string) (decimal.Decimal, error) {
	v, ok := u.Attributes[name]
	if !ok || v == "" {
		return decimal.Zero, fmt.Errorf("%s %s: attribute %q is missing", u.ResourceType, u.ResourceID, name)
	}
	d, err := decimal.Parse(v)
	if err != nil || d.IsNeg() {
		return decimal.Zero, fmt.Errorf("%s %s: attribute %s=%q: want a non-negative number", u.ResourceType, u.ResourceID, name, v)
	}
	return d, nil
}
