package pipeline

import (
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
)

// Mode is the kind of run.
type Mode string

// Run modes.
const (
	Scheduled  Mode = "scheduled"
	Interim    Mode = "interim"
	Regenerate Mode = "regenerate"
	// Verify re-derives an issued invoice (Options.Replacing) exactly as Regenerate prices it, with
	// the scheduled chain cut before finalizing: nothing is stored, rendered or sent.
	Verify Mode = "verify"
)

// Run is the context of one pass of the pipeline, shared by all its batches.
type Run struct {
	ID   string
	Mode Mode
	// Period is the billing period [start, end) in UTC.
	Period interval.Range
	// Until is the moment usage is priced up to: Period.End for scheduled runs, the requested
	// moment for interim runs.
	Until time.Time
	// Now is the run's clock (issue date of its invoices).
	Now time.Time
	// Replacing is the voided-to-be invoice a regenerate run re-prices, with its ranges.
	Replacing *invoice.Invoice
	// Policies are compiled once per run by the feeding handler.
	Policies map[string]*rating.Policy
	Log      *slog.Logger
	Stats    *Stats
}

// Replaying reports whether the run prices exactly the ranges of an issued invoice
// (Options.Replacing): a regenerate or a verify run.
func (r *Run) Replaying() bool { return r.Mode == Regenerate || r.Mode == Verify }

// Item is one customer's work in a batch.
type Item struct {
	CustomerID    string
	Customer      billing.Customer
	Subscriptions []billing.Subscription
	Usage         []store.ResourceUsage
	// Meters are the meter totals of the period (e.g. from Gnocchi), priced by meter rules.
	Meters []billing.MeterTotal
	// MeterBilled holds the live billed ranges of the customer's meters, by pseudo-resource id
	// ("meter/<meter>/<resource>"): what a total already billed is not billed again.
	MeterBilled map[string]store.BilledSets
	// Discounts valid for any second of the period.
	Discounts       []billing.Discount
	Payments        []billing.Payment
	PreviousBalance decimal.Decimal
	// BillingStart is the earliest second that may still be billed for this customer.
	BillingStart time.Time
	Invoice      *invoice.Invoice
	// Settle lists the records that this invoice bills completely.
	Settle []billing.Ref
	// Spans is the number of priced usage pieces.
	Spans int
	// Skip says why the customer gets no invoice in this run (not an error).
	Skip string
	// Invoiced is the number of the live invoice that already covers the period, when that is
	// why the item is skipped.
	Invoiced string
	// Err is the reason the customer failed; other customers go on.
	Err   error
	Files []string
}

// SkipInvoiced skips the item because the live invoice number already covers the period.
func (it *Item) SkipInvoiced(number string) {
	it.Skip, it.Invoiced = "already invoiced on "+number, number
}

// Active reports whether later handlers should still work on the item.
func (it *Item) Active() bool { return it.Skip == "" && it.Err == nil }

// Batch is a slice of the run's customers.
type Batch struct {
	Run   *Run
	Index int
	Items []*Item
}

// Active returns the items still in play.
func (b *Batch) Active() []*Item {
	out := make([]*Item, 0, len(b.Items))
	for _, it := range b.Items {
		if it.Active() {
			out = append(out, it)
		}
	}
	return out
}

// CustomerIDs returns the ids of the active items.
func (b *Batch) CustomerIDs() []string {
	ids := make([]string, 0, len(b.Items))
	for _, it := range b.Active() {
		ids = append(ids, it.CustomerID)
	}
	return ids
}

// Outcome is what became of one customer, kept for the run's report.
type Outcome struct {
	CustomerID string
	Number     string
	Currency   string
	Total      decimal.Decimal
	Lines      int
	Spans      int
	Skip       string
	Invoiced   string // number of the invoice that already covered the period, when skipped for it
	Err        string
	Files      []string
}

// Stats accumulates a run's figures; safe for concurrent batches.
type Stats struct {
	mu         sync.Mutex
	Customers  int
	Invoices   int
	Skipped    int
	Failed     int
	Spans      int
	Lines      int
	Totals     map[string]decimal.Decimal // per currency
	Unpriced   map[string]int             // resource type → pieces with no rule
	Handlers   map[string]time.Duration
	Outcomes   []Outcome
	StartedAt  time.Time
	FinishedAt time.Time
}

// NewStats returns empty statistics.
func NewStats() *Stats {
	return &Stats{Totals: map[string]decimal.Decimal{}, Unpriced: map[string]int{}, Handlers: map[string]time.Duration{}}
}

// AddHandlerTime adds d to the handler's total.
func (s *Stats) AddHandlerTime(name string, d time.Duration) {
	s.mu.Lock()
	s.Handlers[name] += d
	s.mu.Unlock()
}

// AddUnpriced counts a usage piece no rule prices.
func (s *Stats) AddUnpriced(resourceType string) {
	s.mu.Lock()
	s.Unpriced[resourceType]++
	s.mu.Unlock()
}

// record folds a finished item into the statistics.
func (s *Stats) record(it *Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Customers++
	o := Outcome{CustomerID: it.CustomerID, Skip: it.Skip, Invoiced: it.Invoiced, Files: it.Files, Spans: it.Spans}
	switch {
	case it.Err != nil:
		s.Failed++
		o.Err = it.Err.Error()
	case it.Skip != "":
		s.Skipped++
	case it.Invoice != nil:
		s.Invoices++
		s.Spans += it.Spans
		s.Lines += len(it.Invoice.Lines)
		o.Number, o.Currency, o.Total, o.Lines = it.Invoice.Number, it.Invoice.Currency, it.Invoice.Total, len(it.Invoice.Lines)
		t, err := s.Totals[o.Currency].Add(o.Total)
		if err == nil {
			s.Totals[o.Currency] = t
		}
	}
	s.Outcomes = append(s.Outcomes, o)
}

// SortedOutcomes returns the outcomes ordered by customer id.
func (s *Stats) SortedOutcomes() []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Outcome(nil), s.Outcomes...)
	sort.Slice(out, func(i, j int) bool { return out[i].CustomerID < out[j].CustomerID })
	return out
}

// PolicyName names the policy that prices second t for the item's customer: the subscription in
// force then, else the customer's own policy, else fallback (billing.default_policy). It is empty
// when none applies.
func (it *Item) PolicyName(t time.Time, fallback string) string {
	name := ""
	for _, s := range it.Subscriptions {
		if s.Range().Contains(t) {
			name = s.Policy
		}
	}
	if name == "" {
		name = it.Customer.Policy
	}
	if name == "" {
		name = fallback
	}
	return name
}
