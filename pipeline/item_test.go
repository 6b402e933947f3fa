package pipeline

import (
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
)

func TestItemPolicyName(t *testing.T) {
	oct := func(d int) time.Time { return time.Date(2026, 10, d, 0, 0, 0, 0, time.UTC) }
	subs := []billing.Subscription{
		{Policy: "standard", Start: oct(1), End: oct(15)},
		{Policy: "business", Start: oct(15)},
	}
	tests := []struct {
		name     string
		subs     []billing.Subscription
		own      string
		fallback string
		at       time.Time
		want     string
	}{
		{"subscription in force", subs, "own", "default", oct(3), "standard"},
		{"the later subscription from its first second", subs, "own", "default", oct(15), "business"},
		{"before any subscription: the customer's own", subs[1:], "own", "default", oct(3), "own"},
		{"nothing of its own: the default", nil, "", "default", oct(3), "default"},
		{"nothing at all", nil, "", "", oct(3), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := &Item{Subscriptions: tt.subs, Customer: billing.Customer{Policy: tt.own}}
			if got := it.PolicyName(tt.at, tt.fallback); got != tt.want {
				t.Errorf("PolicyName(%s) = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
}
