package calc

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/rating"
	"github.com/govalues/decimal"
)

// RuleDiscountSection holds the lines of line- and rule-scope discounts, printed after usage.
const RuleDiscountSection invoice.Section = "discount"

// discounts applies the line- and rule-scope discounts of one customer (invoice-scope discounts
// are the subscription tree's). Usage is cut at every window edge that concerns it, so a line is
// wholly inside or outside each window. Each discount becomes one negative line of its own,
// after the lines it reduces, so each line stays quantity × unit price:
//
//   - a percentage: quantity = the sum of the rounded lines it covers, unit = the currency,
//     unit price = −rate, amount = −round(quantity × rate);
//   - a fixed amount: quantity 1, amount = −min(amount, the sum of the lines it covers), so a
//     discount never makes a rule's usage negative.
//
// Usage priced as a period total (tiers, included quantities) is not cut into separate totals
// by a window: a discount covers the share of the total's amount that its share of the quantity
// is (rounded to the currency), so the tiers still apply to the whole period.
//
// Credits are not discounted (they refund what was charged, discount included or not).
type discounts struct {
	list  []billing.Discount
	base  []decimal.Decimal
	first []time.Time
	last  []time.Time
	tags  map[string][]int
}

func newDiscounts(it *pipeline.Item, period interval.Range) (*discounts, error) {
	d := &discounts{tags: map[string][]int{}}
	for _, x := range it.Discounts {
		if x.Scope != billing.DiscountLine && x.Scope != billing.DiscountRule {
			continue
		}
		if err := checkDiscount(x, it.Customer.Currency); err != nil {
			return nil, fmt.Errorf("discount %d: %w", x.ID, err)
		}
		d.list = append(d.list, x)
	}
	d.base = make([]decimal.Decimal, len(d.list))
	d.first = make([]time.Time, len(d.list))
	d.last = make([]time.Time, len(d.list))
	return d, nil
}

func checkDiscount(x billing.Discount, currency string) error {
	switch {
	case x.Scope == billing.DiscountLine && x.ResourceID == "":
		return fmt.Errorf("scope line: resource id is required")
	case x.Scope == billing.DiscountRule && x.RuleType == "":
		return fmt.Errorf("scope rule: rule type is required")
	case x.Percent.IsZero() == x.Amount.IsZero():
		return fmt.Errorf("give either a percentage or an amount")
	case x.Percent.IsNeg() || x.Percent.Cmp(decimal.One) > 0:
		return fmt.Errorf("percent %s: want a fraction from 0 to 1, e.g. 0.10", x.Percent)
	case x.Amount.IsNeg():
		return fmt.Errorf("amount %s: must not be negative", x.Amount)
	case x.Amount.IsPos() && x.Currency != currency:
		return fmt.Errorf("amount is in %s, the customer is billed in %s", x.Currency, currency)
	case !x.End.IsZero() && !x.End.After(x.Start):
		return fmt.Errorf("window %s – %s is empty", x.Start.Format(time.RFC3339), x.End.Format(time.RFC3339))
	}
	return nil
}

// concerns reports whether a discount covers a resource's or meter's lines (time aside). A rule
// discount names a resource type, a meter name, or "meter" for every meter.
func concerns(x billing.Discount, resourceID, resourceType, meter string) bool {
	switch x.Scope {
	case billing.DiscountLine:
		return x.ResourceID == resourceID
	case billing.DiscountRule:
		if meter != "" {
			return x.RuleType == meter || x.RuleType == MeterLineType
		}
		return x.RuleType == resourceType
	}
	return false
}

func valid(x billing.Discount, t time.Time) bool {
	return !t.Before(x.Start) && (x.End.IsZero() || t.Before(x.End))
}

// tag names the set of discounts that cover a piece starting at t; "" for none.
func (d *discounts) tag(resourceID, resourceType, meter string, t time.Time) string {
	if d == nil || len(d.list) == 0 {
		return ""
	}
	var idx []int
	for i, x := range d.list {
		if concerns(x, resourceID, resourceType, meter) && valid(x, t) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return ""
	}
	parts := make([]string, len(idx))
	for i, n := range idx {
		parts[i] = strconv.Itoa(n)
	}
	tag := strings.Join(parts, ",")
	d.tags[tag] = idx
	return tag
}

// count adds a rounded line to the discounts of its tag.
func (d *discounts) count(tag string, l *invoice.Line) {
	if tag == "" {
		return
	}
	for _, i := range d.tags[tag] {
		if sum, err := d.base[i].Add(l.Amount); err == nil {
			d.base[i] = sum
		}
		if d.first[i].IsZero() || l.Start.Before(d.first[i]) {
			d.first[i] = l.Start
		}
		if l.End.After(d.last[i]) {
			d.last[i] = l.End
		}
	}
}

// countShares adds to each discount its share of a period total: amount × the quantity its tag
// covers ÷ the total quantity, rounded once to the currency.
func (d *discounts) countShares(g *rating.Group, amount decimal.Decimal, rounding invoice.Rounding) error {
	if len(g.Shares) == 0 || !g.Quantity.IsPos() || !amount.IsPos() {
		return nil
	}
	for tag, q := range g.Shares {
		num, err := amount.Mul(q)
		if err != nil {
			return fmt.Errorf("discount share of %s: %w", g.Label, err)
		}
		share, err := num.Quo(g.Quantity)
		if err != nil {
			return fmt.Errorf("discount share of %s: %w", g.Label, err)
		}
		d.count(tag, &invoice.Line{Amount: rounding.Round(share), Start: g.Start, End: g.End})
	}
	return nil
}

// lines appends one negative line per discount that covers something.
func (d *discounts) lines(it *pipeline.Item, rounding invoice.Rounding) error {
	for i, x := range d.list {
		base := d.base[i]
		if !base.IsPos() {
			continue
		}
		what := x.RuleType
		if x.Scope == billing.DiscountLine {
			what = x.ResourceID
		}
		l := invoice.Line{Section: RuleDiscountSection, ResourceID: x.ResourceID, ResourceType: x.RuleType,
			Start: d.first[i], End: d.last[i], Seconds: interval.Range{Start: d.first[i], End: d.last[i]}.Seconds()}
		if x.Percent.IsPos() {
			pct, _ := x.Percent.Mul(invoice.Hundred)
			a, err := base.Mul(x.Percent)
			if err != nil {
				return fmt.Errorf("discount %d: %w", x.ID, err)
			}
			l.Description = fmt.Sprintf("Discount %s %% on %s", pct.Trim(0), what)
			l.Quantity, l.Unit, l.UnitPrice, l.Amount = base, it.Customer.Currency, x.Percent.Neg(), rounding.Round(a.Neg())
		} else {
			a := x.Amount.Min(base)
			l.Description = fmt.Sprintf("Discount of %s %s on %s", x.Amount, x.Currency, what)
			if a.Cmp(x.Amount) < 0 {
				l.Description += fmt.Sprintf(", limited to the %s it covers", base)
			}
			l.Quantity, l.Unit, l.UnitPrice, l.Amount = decimal.One, "discount", a.Neg(), rounding.Round(a.Neg())
		}
		if x.Reason != "" {
			l.Description += " (" + x.Reason + ")"
		}
		it.Invoice.Lines = append(it.Invoice.Lines, l)
	}
	return nil
}
