package notification_test

import (
	"testing"

	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/etc"
)

func shipped(t testing.TB) *notification.Definitions {
	t.Helper()
	d, err := notification.ParseDefinitions("etc/events.yaml", etc.Events)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestShippedDefinitionsLoad(t *testing.T) { shipped(t) }
