package billing

import "time"

// Limits on what Bilean stores. They are checked where data enters (the importer, and the
// listener's store validation may share them), so a value that is accepted can always be stored,
// rendered and billed later; lengths are in bytes of UTF-8.
const (
	// MaxIDLen bounds identifiers: customer, resource and policy ids, resource types, sources,
	// payment references, regions and timezone names.
	MaxIDLen = 255
	// MaxNameLen bounds a customer's name as printed on its invoices.
	MaxNameLen = 255
	// MaxDescriptionLen bounds a policy's description (the only text that may span lines).
	MaxDescriptionLen = 4096
	// MaxContactLen bounds one billing contact (an email address, RFC 5321 allows 254).
	MaxContactLen = 254
	// MaxContacts bounds the billing contacts of one customer.
	MaxContacts = 32
	// MaxAttributes bounds the attributes of one trigger record.
	MaxAttributes = 64
	// MaxAttrKeyLen and MaxAttrValueLen bound an attribute's name and value.
	MaxAttrKeyLen   = 64
	MaxAttrValueLen = 255
)

// Bounds of a time that was observed (a span's start or end, a payment's receipt): not before
// EarliestTime, and not later than the present plus MaxFutureSkew (clocks of the cloud drift). A
// planned time (a subscription's end, a policy version's effective time) may be later, up to
// LatestPlannedTime.
var (
	EarliestTime      = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestPlannedTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// MaxFutureSkew is how far past the present an observed time may be.
const MaxFutureSkew = 24 * time.Hour
