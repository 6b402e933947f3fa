package store

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
)

// Meters stores meter totals that do not come from Gnocchi: imported from a file
// (`bilean import meters`), so that a cloud without Gnocchi, or a test, can bill traffic.
type Meters interface {
	// AddMeterTotals stores meter totals in one transaction, all or nothing. A total is keyed by
	// its caller-supplied ID: storing one whose ID is stored with the same content is a no-op,
	// with different content a *MeterTotalError, as is a total of an unknown customer. A change
	// bumps the customer's balance change counter, like any usage.
	AddMeterTotals(ctx context.Context, ms []billing.MeterTotal) error
	// MeterTotals returns the stored totals of these customers whose range intersects r (a zero
	// r.End is open), sorted by customer, meter, resource id, start, then id.
	MeterTotals(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.MeterTotal, error)
}

// MeterTotalError is AddMeterTotals' refusal of one total: Index is its position in the call,
// Field the field at fault (id, customer_id…), so an importer can name the file's line.
type MeterTotalError struct {
	Index int
	ID    string
	Field string
	Msg   string // starts with the field name
}

func (e *MeterTotalError) Error() string {
	return fmt.Sprintf("meter totals[%d] (id %s): %s", e.Index, e.ID, e.Msg)
}

// MeterAggregations are the aggregations a meter total may name.
var MeterAggregations = []string{"sum", "mean", "max", "last", "rate"}

// NormMeterTotal returns m as a backend stores it: range in whole UTC seconds, nil attributes as
// empty.
func NormMeterTotal(m billing.MeterTotal) billing.MeterTotal {
	m.Range = interval.Range{Start: interval.Norm(m.Range.Start), End: interval.Norm(m.Range.End)}
	if m.Attributes == nil {
		m.Attributes = map[string]string{}
	}
	return m
}

// CheckMeterTotal validates what every stored meter total needs; i is its index in the call.
func CheckMeterTotal(i int, m billing.MeterTotal) error {
	fail := func(field, format string, args ...any) error {
		return &MeterTotalError{Index: i, ID: m.ID, Field: field, Msg: field + fmt.Sprintf(format, args...)}
	}
	switch {
	case m.ID == "":
		return fail("id", ": required")
	case m.CustomerID == "":
		return fail("customer_id", ": required")
	case m.Meter == "":
		return fail("meter", ": required")
	case m.Range.Start.IsZero() || m.Range.End.IsZero():
		return fail("start", ": start and end are required")
	case !m.Range.End.After(m.Range.Start):
		return fail("end", " %s: must be after start %s", FormatTime(m.Range.End), FormatTime(m.Range.Start))
	case m.Range.End.Sub(m.Range.Start) < 1e9:
		return fail("end", ": the range must hold a whole second")
	case m.Quantity.IsNeg():
		return fail("quantity", " %s: must not be negative", m.Quantity)
	}
	if m.Aggregation != "" {
		ok := false
		for _, a := range MeterAggregations {
			ok = ok || a == m.Aggregation
		}
		if !ok {
			return fail("aggregation", " %q: want one of sum, mean, max, last, rate", m.Aggregation)
		}
	}
	return nil
}

// SameMeterTotal reports whether two totals with one ID have the same content: every field but
// the ID, quantities compared as numbers (1.5 = 1.50), ranges to the second.
func SameMeterTotal(a, b billing.MeterTotal) bool {
	a, b = NormMeterTotal(a), NormMeterTotal(b)
	return a.CustomerID == b.CustomerID && a.Meter == b.Meter && a.ResourceID == b.ResourceID &&
		a.ResourceType == b.ResourceType && a.Range == b.Range && a.Quantity.Cmp(b.Quantity) == 0 &&
		a.Unit == b.Unit && a.Aggregation == b.Aggregation && a.Source == b.Source &&
		maps.Equal(a.Attributes, b.Attributes)
}

// MeterConflict is the error for a total whose ID already names other content.
func MeterConflict(i int, m, old billing.MeterTotal, where string) error {
	return &MeterTotalError{Index: i, ID: m.ID, Field: "id", Msg: fmt.Sprintf(
		"id %q: already %s with different content (customer %s, meter %s, resource %q, %s, quantity %s %s)",
		m.ID, where, old.CustomerID, old.Meter, old.ResourceID, old.Range, old.Quantity, old.Unit)}
}

// PrepareMeterTotals checks a call's totals and drops repeats within it: a total whose ID came
// earlier in the call with the same content is left out, with other content it is refused. It
// returns the totals to write, normalised, and their indexes in ms.
func PrepareMeterTotals(ms []billing.MeterTotal) ([]billing.MeterTotal, []int, error) {
	out := make([]billing.MeterTotal, 0, len(ms))
	idx := make([]int, 0, len(ms))
	first := make(map[string]int, len(ms))
	for i, m := range ms {
		if err := CheckMeterTotal(i, m); err != nil {
			return nil, nil, err
		}
		m = NormMeterTotal(m)
		if j, dup := first[m.ID]; dup {
			if !SameMeterTotal(out[j], m) {
				return nil, nil, MeterConflict(i, m, out[j], fmt.Sprintf("given at index %d", idx[j]))
			}
			continue
		}
		first[m.ID] = len(out)
		out = append(out, m)
		idx = append(idx, i)
	}
	return out, idx, nil
}

// UnknownMeterCustomer is the error for a total of a customer the store does not know.
func UnknownMeterCustomer(i int, m billing.MeterTotal) error {
	return &MeterTotalError{Index: i, ID: m.ID, Field: "customer_id", Msg: fmt.Sprintf("customer_id %q: customer is unknown", m.CustomerID)}
}

// AsMeterTotalError returns the *MeterTotalError in err's chain, or nil.
func AsMeterTotalError(err error) *MeterTotalError {
	var me *MeterTotalError
	if errors.As(err, &me) {
		return me
	}
	return nil
}
