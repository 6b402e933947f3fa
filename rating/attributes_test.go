package rating

import (
	"fmt"
	"testing"
)

// TestCheckAttributesNeedsWhatMeasureNeeds: each resource type's required attributes and the
// non-negative quantities, as Measure would refuse them at billing time.
func TestCheckAttributesNeedsWhatMeasureNeeds(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		attrs map[string]string
		want  string
	}{
		{ServerType, map[string]string{"flavor": "m1.small"}, "[]"},
		{ServerType, map[string]string{"flavor_id": "42"}, "[]"},
		{ServerType, nil, "[{flavor : required for os.nova.server (or flavor_id)}]"},
		{ServerType, map[string]string{"flavor": "m1", "vcpus": "-2", "memory_mb": "x"}, `[{memory_mb  "x": want a non-negative number} {vcpus  "-2": want a non-negative number}]`},
		{VolumeType, map[string]string{"size": "0"}, "[]"},
		{VolumeType, map[string]string{"size": "-100"}, `[{size  "-100": want a non-negative number}]`},
		{SnapshotType, map[string]string{}, "[{size : required for os.cinder.snapshot}]"},
		{ImageType, map[string]string{"size": "2147483648"}, "[]"},
		{ImageType, map[string]string{"size": "2 GiB"}, `[{size  "2 GiB": want a non-negative number}]`},
		{FloatingIPType, nil, "[]"},
		{"custom.thing", map[string]string{"size": "-1"}, `[{size  "-1": want a non-negative number}]`},
	} {
		if got := fmt.Sprint(CheckAttributes(tc.typ, tc.attrs)); got != tc.want {
			t.Errorf("CheckAttributes(%s, %v) = %s, want %s", tc.typ, tc.attrs, got, tc.want)
		}
	}
}
