package store

import (
	"context"
	"errors"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
)

// Policy versions, subscription changes, discounts and credit notes.
//
// Invariants every implementation keeps:
//   - a policy's versions are numbered 1, 2, … and their effective times strictly increase with
//     the number; version N applies from its EffectiveFrom until version N+1's (half-open); a
//     zero EffectiveFrom (only possible for version 1) means since ever;
//   - every change (add-rule, remove-rule, a new fee) is a new version: a version once used for
//     billing is only replaced by re-importing it with the very same effective time;
//   - a policy's currency never changes (a price list per currency is a policy per currency);
//   - Feed.Policies returns the latest version of each policy;
//   - a customer has at most one subscription in force at any second when it is changed or
//     cancelled through SubscriptionChanges;
//   - credit note numbers are gapless per series, and a voided invoice has at most one credit
//     note, issued in the same transaction that voids it when it is voided through CreditNotes.

// ErrVersionOrder is returned when a policy version's effective time is not after the latest
// version's.
var ErrVersionOrder = errors.New("effective time must be after the latest version's")

// PolicyVersions keeps every version of every policy.
type PolicyVersions interface {
	// PolicyVersions returns every version of every policy, by name then version (what a run
	// compiles into its catalog).
	PolicyVersions(ctx context.Context) ([]billing.Policy, error)
	// PolicyHistory returns the versions of one policy, oldest first, or an error wrapping
	// ErrNotFound when it has none.
	PolicyHistory(ctx context.Context, name string) ([]billing.Policy, error)
	// AddPolicyVersion stores p as the next version of p.Name (version 1 when the policy is new)
	// and returns it with Version set. p.EffectiveFrom must be after the latest version's
	// (ErrVersionOrder); the currency must be the latest version's.
	AddPolicyVersion(ctx context.Context, p billing.Policy) (billing.Policy, error)
	// AddRule stores a new version of the policy: the latest version with rule added (replacing
	// the rule of the same key, if any: its type, or meter:<name> for a meter rule — see
	// billing.RuleSpec.Key), effective at the given second.
	AddRule(ctx context.Context, name string, rule billing.RuleSpec, effective time.Time) (billing.Policy, error)
	// RemoveRule stores a new version of the policy: the latest version without its rule of the
	// given key (the type, or meter:<name> for a meter rule), effective at the given second. An error wraps ErrNotFound when there is no
	// such rule.
	RemoveRule(ctx context.Context, name, ruleType string, effective time.Time) (billing.Policy, error)
}

// BilledSets are the live billed ranges of one resource.
type BilledSets struct {
	Charged  interval.Set
	Credited interval.Set
}

// SubscriptionChanges moves customers between policies and reads what their fees billed.
type SubscriptionChanges interface {
	// ChangeSubscription ends the customer's subscription in force at `at` at that second and
	// starts one to policy from that second (open), in one transaction. A customer with no
	// subscription in force simply gets the new one. The policy must exist.
	ChangeSubscription(ctx context.Context, customerID, policy string, at time.Time) (billing.Subscription, error)
	// CancelSubscription ends the customer's subscription in force at `at` at that second and
	// returns it; an error wraps ErrNotFound when none is in force.
	CancelSubscription(ctx context.Context, customerID string, at time.Time) (billing.Subscription, error)
	// SubscriptionRanges returns the live billed ranges of the subscription pseudo-resources of
	// these customers (what their fees charged and credited), by resource id
	// (billing.Subscription.ResourceID). Subscriptions never billed are absent.
	SubscriptionRanges(ctx context.Context, customerIDs []string) (map[string]BilledSets, error)
}

// Discounts stores discounts.
type Discounts interface {
	// AddDiscounts validates and stores discounts, all or nothing, and returns them with ids.
	AddDiscounts(ctx context.Context, ds []billing.Discount) ([]billing.Discount, error)
	// Discounts returns the discounts of these customers valid for some second of r, sorted by
	// customer then id.
	Discounts(ctx context.Context, customerIDs []string, r interval.Range) ([]billing.Discount, error)
}

// CreditNoteNumbering is a credit-note numbering series, as for invoices: Series is the key,
// e.g. "CN-2026-|", and Format builds the number, e.g. CN-2026-000001. The series key must
// differ from every invoice series.
type CreditNoteNumbering struct {
	Series string
	Format func(series string, seq int64) string
}

// CreditNotes voids invoices with a credit note.
type CreditNotes interface {
	// IssueCreditNote voids an issued invoice (as VoidInvoice does) and issues the credit note
	// that cancels it, numbered next in its series, in one transaction. For an invoice already
	// void without a credit note (voided by a regeneration before credit notes were numbered),
	// it only issues the credit note. Refused when the invoice already has one.
	IssueCreditNote(ctx context.Context, number, reason string, n CreditNoteNumbering) (*invoice.CreditNote, error)
	// GetCreditNote returns one credit note, or an error wrapping ErrNotFound.
	GetCreditNote(ctx context.Context, number string) (*invoice.CreditNote, error)
	// ListCreditNotes returns the credit notes of a customer (all when empty), newest first.
	ListCreditNotes(ctx context.Context, customerID string) ([]invoice.CreditNote, error)
}
