package importer

import (
	"io"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
)

var subscriptionSpec = spec{
	top:      "subscriptions",
	fields:   []string{"customer_id", "policy", "start", "end"},
	required: []string{"customer_id", "policy", "start"},
	aliases:  map[string]string{"customer": "customer_id"},
}

// Subscriptions parses a subscription file: CSV with columns customer_id, policy, start and an
// optional end, or YAML (`subscriptions: [{customer, policy, start, end}, …]`; customer_id is
// accepted for customer). An empty or absent end means open; an end must be after its start.
// Two subscriptions of one customer to the same policy must not overlap.
func Subscriptions(path string, r io.Reader) ([]billing.Subscription, error) {
	ss, _, err := subscriptions(path, r)
	return ss, err
}

// subscriptions is Subscriptions that also returns the entry of each subscription.
func subscriptions(path string, r io.Reader) ([]billing.Subscription, []*entry, error) {
	f := formatOf(path)
	if f != formatCSV && f != formatYAML {
		return nil, nil, unsupported(path, ".csv, .yaml or .yml")
	}
	el := &errList{file: path}
	entries, err := readEntries(el, f, r, &subscriptionSpec)
	if err != nil {
		return nil, nil, err
	}
	out := make([]billing.Subscription, 0, len(entries))
	ents := make([]*entry, 0, len(entries))
	type key struct{ customer, policy string }
	type prev struct {
		r    interval.Range
		line int
	}
	seen := map[key][]prev{}
	for i := range entries {
		e := &entries[i]
		s, ok := subscription(el, e)
		if !ok {
			continue
		}
		k := key{s.CustomerID, s.Policy}
		for _, p := range seen[k] {
			if p.r.Overlaps(s.Range()) {
				e.failf(el, "start", " %q: overlaps the subscription of customer %q to policy %q on line %d %s",
					e.get("start"), s.CustomerID, s.Policy, p.line, p.r)
				ok = false
				break
			}
		}
		if ok {
			seen[k] = append(seen[k], prev{s.Range(), e.line})
			out = append(out, s)
			ents = append(ents, e)
		}
	}
	if err := el.err(); err != nil {
		return nil, nil, err
	}
	return out, ents, nil
}

func subscription(el *errList, e *entry) (billing.Subscription, bool) {
	n := el.count()
	s := billing.Subscription{CustomerID: e.get("customer_id"), Policy: e.get("policy")}
	if msg := idMsg(s.CustomerID); msg != "" {
		e.fail(el, "customer_id", msg)
	}
	if msg := idMsg(s.Policy); msg != "" {
		e.fail(el, "policy", msg)
	}
	s.Start, s.End = readSpan(el, e, "start", "end", true)
	return s, el.count() == n
}

// readSpan reads a [start, end) pair of fields; end may be empty (open) when open is true.
func readSpan(el *errList, e *entry, startF, endF string, open bool) (start, end time.Time) {
	var msg string
	ss, es := e.get(startF), e.get(endF)
	okStart := false
	if ss == "" {
		e.fail(el, startF, ": required")
	} else if start, msg = parseTime(ss, planned); msg != "" {
		e.fail(el, startF, msg)
	} else {
		okStart = true
	}
	if es == "" {
		if !open {
			e.fail(el, endF, ": required")
		}
		return start, time.Time{}
	}
	if end, msg = parseTime(es, planned); msg != "" {
		e.fail(el, endF, msg)
		return start, time.Time{}
	}
	if okStart && !end.After(start) {
		e.failf(el, endF, " %q: must be after %s %q", es, startF, ss)
	}
	return start, end
}
