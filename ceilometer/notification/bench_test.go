package notification_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bilean/bilean/ceilometer/notification"
)

// BenchmarkParseEvent measures what the listener does per message before the store: unwrap the
// envelope and read the event through the shipped definitions.
//
//	go test ./ceilometer/notification -run '^$' -bench ParseEvent -benchmem
func BenchmarkParseEvent(b *testing.B) {
	defs := shipped(b)
	for _, name := range []string{"wire/legacy-compute.instance.create.end.json", "wire/versioned-instance-create-end.json"} {
		body, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(name), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				m, err := notification.Parse(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := defs.Event(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
