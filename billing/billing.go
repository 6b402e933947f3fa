// Package billing holds the records the pipeline works on: customers, policies, subscriptions,
// payments and trigger records. It has no behaviour beyond validation; pricing lives in rating,
// invoices in invoice, persistence in store.
package billing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v2"
)

// Customer statuses.
const (
	Active = "active"
	Frozen = "frozen"
	Closed = "closed"
)

// Customer is one Keystone project that is billed.
type Customer struct {
	ID        string // Keystone project id
	Name      string
	Currency  string // ISO 4217, e.g. EUR
	Timezone  string // IANA name used on documents; periods use the billing timezone
	Contacts  []string
	TaxRate   decimal.Decimal // e.g. 0.20 for 20 %
	TaxExempt bool
	Status    string
	Policy    string // default policy when no subscription covers a second
	// Region selects a per-region tax rate from configuration (billing.tax_regions) when TaxRate
	// is zero and the customer is not exempt; empty means no region.
	Region string
	// BillingStart, when set, is the first second of the customer's usage and fees that Bilean
	// bills (e.g. the day it took over from another billing system); zero: every unbilled second
	// of its records, meters and subscriptions is billable.
	BillingStart time.Time
}

// Validate checks the fields an invoice depends on.
func (c Customer) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("id: required"))
	}
	if len(c.Currency) != 3 {
		errs = append(errs, fmt.Errorf("currency %q: want a 3-letter ISO 4217 code", c.Currency))
	}
	if c.TaxRate.IsNeg() || c.TaxRate.Cmp(decimal.One) > 0 {
		errs = append(errs, fmt.Errorf("tax_rate %s: want a fraction from 0 to 1, e.g. 0.20", c.TaxRate))
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			errs = append(errs, fmt.Errorf("timezone %q: unknown IANA zone", c.Timezone))
		}
	}
	switch c.Status {
	case "", Active, Frozen, Closed:
	default:
		errs = append(errs, fmt.Errorf("status %q: want active, frozen or closed", c.Status))
	}
	return errors.Join(errs...)
}

// RuleSpec is one rule of a policy as written in configuration: a registered rule type and its
// spec, kept as YAML text so the rule plugin decodes it strictly.
type RuleSpec struct {
	Type string // e.g. os.nova.server
	Spec string // YAML mapping
}

// MeterRuleType is the rule type that prices a meter; a policy holds one such rule per meter.
const MeterRuleType = "meter"

// Key is the key a rule spec occupies in a policy: its type, or "meter:<name>" for a meter rule,
// so that a policy holds one rule per resource type and one per meter. A store that keeps one rule
// per key (add-rule replacing, remove-rule) keys rules by it. The spec is not validated here.
func (rs RuleSpec) Key() string {
	if rs.Type != MeterRuleType {
		return rs.Type
	}
	var s struct {
		Meter string `yaml:"meter"`
	}
	_ = yaml.Unmarshal([]byte(rs.Spec), &s)
	return MeterRuleType + ":" + s.Meter
}

// Fee intervals and timings.
const (
	FeeMonthly = "monthly"
	FeeYearly  = "yearly"
	FeeAdvance = "advance"
	FeeArrears = "arrears"
)

// Policy is one version of a named set of rules plus a recurring fee and included quantities.
// A policy's versions share its Name; version N applies from its EffectiveFrom until the next
// version's EffectiveFrom (half-open), so a line crossing a change is split at that second.
type Policy struct {
	Name        string
	Version     int // 1, 2, …; 0 in input files means "the next version"
	Currency    string
	Description string
	// EffectiveFrom is the first second this version applies; zero means since ever.
	EffectiveFrom time.Time
	// Fee is the recurring fee per FeeInterval, prorated to the second.
	Fee decimal.Decimal
	// FeeInterval is monthly (default) or yearly.
	FeeInterval string
	// FeeTiming is arrears (default: charged for the time used, at the end of the period) or
	// advance (charged for the coming interval at its start; unused time credited on a change).
	FeeTiming string
	// Included quantities are free before prices apply, keyed by rule type (e.g. os.nova.server,
	// in the rule's unit) or by meter name (e.g. network.outgoing.bytes, in the meter's unit).
	Included map[string]decimal.Decimal
	Rules    []RuleSpec
}

// Interval returns the fee interval with its default.
func (p Policy) Interval() string {
	if p.FeeInterval == "" {
		return FeeMonthly
	}
	return p.FeeInterval
}

// Timing returns the fee timing with its default.
func (p Policy) Timing() string {
	if p.FeeTiming == "" {
		return FeeArrears
	}
	return p.FeeTiming
}

// ValidateFee checks the fee fields and included quantities.
func (p Policy) ValidateFee() error {
	var errs []error
	if p.Fee.IsNeg() {
		errs = append(errs, fmt.Errorf("fee %s: must not be negative", p.Fee))
	}
	switch p.FeeInterval {
	case "", FeeMonthly, FeeYearly:
	default:
		errs = append(errs, fmt.Errorf("fee_interval %q: want monthly or yearly", p.FeeInterval))
	}
	switch p.FeeTiming {
	case "", FeeAdvance, FeeArrears:
	default:
		errs = append(errs, fmt.Errorf("fee_timing %q: want advance or arrears", p.FeeTiming))
	}
	for k, q := range p.Included {
		if k == "" {
			errs = append(errs, errors.New("included: empty key"))
		}
		if q.IsNeg() {
			errs = append(errs, fmt.Errorf("included.%s %s: must not be negative", k, q))
		}
	}
	return errors.Join(errs...)
}

// Subscription puts a customer on a policy over [Start, End). A zero End means open.
type Subscription struct {
	ID         int64
	CustomerID string
	Policy     string
	Start      time.Time
	End        time.Time
}

// Range returns the subscription's half-open range.
func (s Subscription) Range() interval.Range { return interval.New(s.Start, s.End) }

// SubscriptionType is the resource type of the pseudo-resource that holds a subscription's fee
// ranges, so that a fee, like usage, is never billed twice.
const SubscriptionType = "subscription"

const subscriptionPrefix = SubscriptionType + "/"

// ResourceID is the pseudo-resource under which the subscription's fee ranges are recorded.
func (s Subscription) ResourceID() string { return fmt.Sprintf("%s%d", subscriptionPrefix, s.ID) }

// IsSubscriptionResource reports whether a resource id names a subscription's pseudo-resource.
func IsSubscriptionResource(resourceID string) bool {
	return strings.HasPrefix(resourceID, subscriptionPrefix)
}

// Payment is money received from a customer.
type Payment struct {
	ID         int64
	CustomerID string
	Amount     decimal.Decimal
	Currency   string
	ReceivedAt time.Time
	Reference  string
}

// Record is a trigger record: a span [Start, End) during which a resource existed with fixed
// attributes. A zero End means the resource still exists.
type Record struct {
	ID           int64
	ResourceKey  int64 // store surrogate for (customer, resource id)
	ResourceID   string
	ResourceType string
	CustomerID   string
	Start        time.Time
	End          time.Time
	Attributes   map[string]string
	Source       string // import, listener, gnocchi, demo…
	Version      int64  // bumped by the store on every change
	Settled      bool   // closed and wholly billed
}

// Range returns the record's half-open range.
func (r Record) Range() interval.Range { return interval.New(r.Start, r.End) }

// Ref identifies a record at one version, so the store settles only what was billed.
type Ref struct {
	ID      int64
	Version int64
}

// MeterTotal is one meter aggregated over a range for one customer, e.g. network.outgoing.bytes
// summed over October for one port, already converted to the billing unit (GB). A meter rule
// prices it; the store records its range under the pseudo-resource "meter/<meter>/<resource>" so
// that, like a span, it is never billed twice.
type MeterTotal struct {
	ID           string // the caller's id of a stored total (bilean import meters); empty from Gnocchi
	CustomerID   string
	Meter        string // e.g. network.outgoing.bytes
	ResourceID   string // the resource the meter belongs to; empty for a customer-wide total
	ResourceType string // e.g. instance_network_interface
	Range        interval.Range
	Quantity     decimal.Decimal
	Unit         string // after conversion, e.g. GB
	Aggregation  string // sum, mean, max, last, rate
	Attributes   map[string]string
	Source       string // gnocchi, import, …
}

// Discount scopes.
const (
	DiscountLine    = "line"    // every line of one resource (ResourceID)
	DiscountRule    = "rule"    // every line priced by one rule type (RuleType)
	DiscountInvoice = "invoice" // the invoice subtotal
)

// Discount reduces what a customer pays, by a percentage or a fixed amount, for the lines in its
// scope whose time falls in its validity range [Start, End) (zero End: open).
type Discount struct {
	ID         int64
	CustomerID string
	Scope      string          // line, rule or invoice
	RuleType   string          // for scope rule, e.g. os.nova.server
	ResourceID string          // for scope line
	Percent    decimal.Decimal // e.g. 0.10 for 10 %; zero when Amount is set
	Amount     decimal.Decimal // fixed amount in Currency; zero when Percent is set
	Currency   string
	Start      time.Time
	End        time.Time
	Reason     string
}
