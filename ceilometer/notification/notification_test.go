package notification_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/notification"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// The shipped definitions read every real sample into the event a billing clerk would write down
// from the payload: resource, project, the second it happened, the priced attributes.
func TestSamplesBecomeEvents(t *testing.T) {
	defs := shipped(t)
	const proj = "8f4c3b2a1d0e4f5a9b8c7d6e5f4a3b2c"
	const novaProj = "6f70656e737461636b20342065766572"
	const srv = "178b0921-8f85-4257-88b6-2e743b5a975c"
	testFlavor := map[string]string{"flavor": "test_flavor", "flavor_id": "a22d5517-147c-4147-a0d1-e698df5cd4e3",
		"vcpus": "1", "memory_mb": "512", "root_gb": "1"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range m {
			if a != k {
				out[a] = b
			}
		}
		return out
	}
	tests := []struct {
		file string
		want notification.Event
	}{
		{"legacy/compute.instance.create.end.json", notification.Event{
			EventType: "compute.instance.create.end", ResourceType: "os.nova.server",
			ResourceID: "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", ProjectID: proj, Action: notification.Open,
			Time: utc("2026-10-03T08:15:41Z"), // launched_at, not created_at nor the read time
			Attributes: map[string]string{"flavor": "m1.small", "flavor_id": "2", "vcpus": "1", "memory_mb": "2048",
				"root_gb": "20", "state": "active"}}},
		{"legacy/compute.instance.delete.end.json", notification.Event{
			EventType: "compute.instance.delete.end", ResourceType: "os.nova.server",
			ResourceID: "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", ProjectID: proj, Action: notification.Close,
			Time: utc("2026-10-21T17:02:09Z"),
			Attributes: map[string]string{"flavor": "m1.large", "flavor_id": "4", "vcpus": "4", "memory_mb": "8192",
				"root_gb": "80", "state": "deleted"}}},
		{"legacy/volume.create.end.json", notification.Event{
			EventType: "volume.create.end", ResourceType: "os.cinder.volume",
			ResourceID: "9a1f6e3d-2c4b-4a7e-8f1d-3b5c7e9a2d04", ProjectID: proj, Action: notification.Open,
			Time:       utc("2026-10-05T12:00:03Z"),
			Attributes: map[string]string{"size": "100", "volume_type": "b1c2d3e4-0000-4000-8000-00000000ssd1"}}},
		{"legacy/floatingip.create.end.json", notification.Event{
			EventType: "floatingip.create.end", ResourceType: "os.neutron.floatingip",
			ResourceID: "7e3a9c1b-5d2f-4e8a-b1c3-9f6d2a4e8c07", ProjectID: proj, Action: notification.Open,
			Time: utc("2026-10-07T16:20:11Z")}},
		{"legacy/image.upload.json", notification.Event{
			EventType: "image.upload", ResourceType: "os.glance.image",
			ResourceID: "4b9d2f6a-8c1e-4a3b-9e5d-2f7c1a8b6e09", ProjectID: proj, Action: notification.Open,
			Time: utc("2026-10-09T13:04:40Z"), Attributes: map[string]string{"size": "2361393152"}}},
		{"nova-versioned/instance-create-end.json", notification.Event{
			EventType: "instance.create.end", ResourceType: "os.nova.server", ResourceID: srv, ProjectID: novaProj,
			Action: notification.Open, Time: utc("2012-10-29T13:42:11Z"), Attributes: with(testFlavor, "state", "active")}},
		{"nova-versioned/instance-power_off-end.json", notification.Event{
			EventType: "instance.power_off.end", ResourceType: "os.nova.server", ResourceID: srv, ProjectID: novaProj,
			Action: notification.Change, Time: time.Time{}, Attributes: with(testFlavor, "state", "stopped")}},
		{"nova-versioned/instance-resize_finish-end.json", notification.Event{
			EventType: "instance.resize_finish.end", ResourceType: "os.nova.server", ResourceID: srv, ProjectID: novaProj,
			Action: notification.Change, Time: time.Time{},
			Attributes: map[string]string{"flavor": "other_flavor", "flavor_id": "d5a8bb54-365a-45ae-abdb-38d249df7845",
				"vcpus": "1", "memory_mb": "256", "root_gb": "1", "state": "active"}}},
		{"nova-versioned/instance-delete-end.json", notification.Event{
			EventType: "instance.delete.end", ResourceType: "os.nova.server", ResourceID: srv, ProjectID: novaProj,
			Action: notification.Close, Time: utc("2012-10-29T13:42:11Z"), Attributes: with(testFlavor, "state", "deleted")}},
		{"wire/legacy-compute.instance.create.end.json", notification.Event{
			MessageID: "6a1d3c5e-7f9b-4d2e-8a4c-1e3b5d7f9a0c", Sent: utc("2026-10-03T08:15:42Z"),
			EventType: "compute.instance.create.end", ResourceType: "os.nova.server",
			ResourceID: "3c8e1a52-7f0b-4c8e-9d1a-6b2f4e8a9c01", ProjectID: proj, Action: notification.Open,
			Time: utc("2026-10-03T08:15:41Z"),
			Attributes: map[string]string{"flavor": "m1.small", "flavor_id": "2", "vcpus": "1", "memory_mb": "2048",
				"root_gb": "20", "state": "active"}}},
		{"wire/versioned-instance-create-end.json", notification.Event{
			MessageID: "0b7c2e8a-5a0f-4a51-9d4e-1f3c1e7a8b01", Sent: utc("2026-10-03T08:15:42Z"),
			EventType: "instance.create.end", ResourceType: "os.nova.server", ResourceID: srv, ProjectID: novaProj,
			Action: notification.Open, Time: utc("2012-10-29T13:42:11Z"), Attributes: with(testFlavor, "state", "active")}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := read(t, tc.file)
			m, err := notification.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Time.IsZero() {
				// A bare sample without an envelope timestamp: a change has no time of its own.
				_, err := defs.Event(m)
				if notification.ReasonOf(err) != notification.ReasonMissingField || !strings.Contains(err.Error(), "time") {
					t.Fatalf("Event = %v, want missing_field time (no envelope timestamp)", err)
				}
				// In its oslo envelope, the envelope's timestamp is the second it happened.
				body = envelope(t, body, "mid-"+tc.file, "2012-10-29 14:00:07.513291")
				tc.want.Time = utc("2012-10-29T14:00:07Z")
				tc.want.Sent = tc.want.Time
				tc.want.MessageID = "mid-" + tc.file
				if m, err = notification.Parse(body); err != nil {
					t.Fatal(err)
				}
			}
			got, err := defs.Event(m)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.MessageID == "" {
				if !strings.HasPrefix(got.MessageID, "sha256:") {
					t.Errorf("bare message without message_id: id %q, want a sha256 digest", got.MessageID)
				}
				tc.want.MessageID = got.MessageID
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("event =\n %+v\nwant\n %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// envelope wraps a bare notification as oslo.messaging's RabbitMQ driver publishes it.
func envelope(t testing.TB, bare []byte, messageID, timestamp string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(bare, &m); err != nil {
		t.Fatal(err)
	}
	m["message_id"] = messageID
	m["timestamp"] = timestamp
	m["_unique_id"] = "0123456789abcdef"
	inner, _ := json.Marshal(m)
	out, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(inner)})
	return out
}

// Event types match exactly or by pattern, never by substring: a NIC attached to a server is not
// a server born (the original Bilean stopped billing running servers on a NIC detach).
func TestMatchingNeverBySubstring(t *testing.T) {
	defs := shipped(t)
	base := read(t, "legacy/compute.instance.create.end.json")
	for _, typ := range []string{"compute.instance.create_ip.end", "compute.instance.delete_ip.end",
		"compute.instance.create.start", "compute.instance.create.end.extra", "xcompute.instance.create.end",
		"compute.instance.delete.end2", "instance.interface_attach.end"} {
		body := []byte(strings.Replace(string(base), "compute.instance.create.end", typ, 1))
		m, err := notification.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = defs.Event(m)
		if err == nil {
			t.Errorf("%s became an event", typ)
			continue
		}
		if !errors.Is(err, notification.ErrIgnored) && notification.ReasonOf(err) != notification.ReasonUnknownEvent {
			t.Errorf("%s: %v, want ignored or unknown_event", typ, err)
		}
	}
	if got := defs.ResourceType("compute.instance.create.end"); got != "os.nova.server" {
		t.Errorf("compute.instance.create.end → %q", got)
	}
	// A family nobody listed is quarantined as unknown, so that it is seen.
	m, _ := notification.Parse([]byte(`{"event_type":"orchestration.stack.create.end","payload":{}}`))
	if _, err := defs.Event(m); notification.ReasonOf(err) != notification.ReasonUnknownEvent {
		t.Errorf("orchestration.stack.create.end: %v, want unknown_event", err)
	}
}

func TestGlobPatterns(t *testing.T) {
	defs, err := notification.ParseDefinitions("t.yaml", []byte(`
resources:
  - type: os.test.thing
    id: payload.id
    project: payload.project
    events:
      - types: ["thing.create.end"]
        action: open
      - types: ["thing.*.changed"]
        action: change
ignore: ["thing.*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]string{
		"thing.create.end":   "os.test.thing",
		"thing.size.changed": "os.test.thing",
		"thing.create.endx":  "", // ignored by thing.*, not matched by the exact type
		"thing.changed":      "",
	} {
		if got := defs.ResourceType(typ); got != want {
			t.Errorf("ResourceType(%s) = %q, want %q", typ, got, want)
		}
	}
}

func TestTimeFormats(t *testing.T) {
	want := utc("2026-10-03T08:15:41Z")
	for _, s := range []string{
		"2026-10-03T08:15:41.000000", "2026-10-03 08:15:41.999999", "2026-10-03T08:15:41Z",
		"2026-10-03 08:15:41+00:00", "2026-10-03T10:15:41.5+02:00", "2026-10-03T08:15:41", "2026-10-03T08:15:41.000000+0000",
	} {
		got, err := notification.ParseTime(s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (UTC, whole second)", s, got, err, want)
		}
	}
	for _, s := range []string{"", "yesterday", "2026-13-03T08:15:41Z", "1696320941"} {
		if _, err := notification.ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted", s)
		}
	}
}

func TestBadMessages(t *testing.T) {
	defs := shipped(t)
	tests := []struct {
		name, body, reason string
	}{
		{"garbage bytes", "\x00\x01\xfe not json", notification.ReasonUnparseable},
		{"json array", `[1,2]`, notification.ReasonUnparseable},
		{"null", `null`, notification.ReasonUnparseable},
		{"no event type", `{"payload": {}}`, notification.ReasonUnparseable},
		{"no payload", `{"event_type": "volume.create.end"}`, notification.ReasonUnparseable},
		{"oslo 1.0", `{"oslo.version": "1.0", "oslo.message": "{}"}`, notification.ReasonUnparseable},
		{"oslo message not a string", `{"oslo.version": "2.0", "oslo.message": {"event_type": "x"}}`, notification.ReasonUnparseable},
		{"oslo message not json", `{"oslo.version": "2.0", "oslo.message": "{nope"}`, notification.ReasonUnparseable},
		{"unknown event type", `{"oslo.version": "2.0", "oslo.message": "{\"event_type\": \"magnum.cluster.create\", \"payload\": {}}"}`, notification.ReasonUnknownEvent},
		{"missing project", `{"event_type": "volume.create.end", "timestamp": "2026-10-05 12:00:03", "payload": {"volume_id": "v1", "size": 1}}`, notification.ReasonMissingField},
		{"missing resource id", `{"event_type": "volume.create.end", "timestamp": "2026-10-05 12:00:03", "payload": {"tenant_id": "p", "size": 1}}`, notification.ReasonMissingField},
		{"bad time", `{"event_type": "volume.create.end", "payload": {"volume_id": "v1", "tenant_id": "p", "launched_at": "soon"}}`, notification.ReasonBadField},
		{"event type not a string", `{"event_type": 7, "payload": {}}`, notification.ReasonUnparseable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := notification.Parse([]byte(tc.body))
			if err == nil {
				_, err = defs.Event(m)
			}
			if err == nil || notification.ReasonOf(err) != tc.reason {
				t.Errorf("got %v, want reason %s", err, tc.reason)
			}
		})
	}
	// A close may lack its project: Neutron's delete carries only the id.
	m, err := notification.Parse([]byte(`{"event_type": "floatingip.delete.end", "timestamp": "2026-10-08 09:00:00.1", "payload": {"floatingip_id": "f1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := defs.Event(m)
	if err != nil || e.ResourceID != "f1" || e.ProjectID != "" || e.Action != notification.Close || !e.Time.Equal(utc("2026-10-08T09:00:00Z")) {
		t.Errorf("floatingip.delete.end = %+v, %v; want a close of f1 at 09:00:00 without project", e, err)
	}
}

// Definition errors name the file and the line of the problem.
func TestDefinitionErrorsNameFileAndLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "resources:\n  - type: x\n    idd: payload.id\n", "bad.yaml: yaml: unmarshal errors:\n  line 3: field idd not found"},
		{"bad action", "resources:\n  - type: x\n    id: payload.id\n    project: payload.p\n    events:\n      - types: [a.b]\n        action: opne\n", `bad.yaml:6: resources[0].events[0].action: "opne": want open, change or close`},
		{"bad path", "resources:\n  - type: x\n    id: \"payload['a\"\n    project: payload.p\n    events:\n      - types: [a.b]\n        action: open\n", "bad.yaml:2: resources[0].id: path"},
		{"duplicate type", "resources:\n  - type: x\n    id: payload.id\n    project: payload.p\n    events:\n      - types: [a.b]\n        action: open\n      - types: [a.b]\n        action: close\n", `bad.yaml:8: resources[0].events[1].types: event type "a.b" is already defined at bad.yaml:6`},
		{"bad pattern", "resources:\n  - type: x\n    id: payload.id\n    project: payload.p\n    events:\n      - types: [\"a.[b\"]\n        action: open\n", `bad.yaml:6: resources[0].events[0].types: pattern "a.[b"`},
		{"missing project", "resources:\n  - type: x\n    id: payload.id\n    events:\n      - types: [a.b]\n        action: open\n", "bad.yaml:2: resources[0].project: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notification.ParseDefinitions("bad.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	m, err := notification.Parse([]byte(`{"event_type": "e", "payload": {"a.b": {"c": [10, {"d": "x"}]}, "n": 2361393152, "t": true, "z": null, "e": ""}}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"payload['a.b'].c[1].d": "x", `$.payload["a.b"].c[0]`: "10", "payload.n": "2361393152", "payload.t": "true",
		"payload.z": "", "payload.e": "", "payload.missing": "", "payload['a.b'].c[7]": "", "event_type": "e",
	} {
		p, err := notification.ParsePath(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got, _ := m.LookupString(p); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	for _, bad := range []string{"", "payload..a", "[0].a", "payload[x]", "payload['a", ".a"} {
		if _, err := notification.ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}
