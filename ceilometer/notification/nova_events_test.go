package notification_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bilean/bilean/ceilometer/notification"
)

// novaEvents is Nova's list of instance notifications (nova.objects.fields.NotificationAction, the
// versioned instance.<action>.<phase> samples) and their legacy compute.instance.* twins, each
// with what etc/events.yaml does with it: open, change, close or "" (deliberately ignored).
var novaEvents = map[string]notification.Action{
	"instance.create.end": notification.Open, "compute.instance.create.end": notification.Open,
	"instance.delete.end": notification.Close, "compute.instance.delete.end": notification.Close,
	"instance.force_delete.end": notification.Close, "compute.instance.force_delete.end": notification.Close,
	"instance.soft_delete.end": notification.Change, "compute.instance.soft_delete.end": notification.Change,
	"instance.restore.end": notification.Change, "compute.instance.restore.end": notification.Change,
	"instance.power_on.end": notification.Change, "compute.instance.power_on.end": notification.Change,
	"instance.power_off.end": notification.Change, "compute.instance.power_off.end": notification.Change,
	"instance.rebuild.end": notification.Change, "compute.instance.rebuild.end": notification.Change,
	"instance.resize_finish.end": notification.Change, "compute.instance.finish_resize.end": notification.Change,
	"instance.resize_confirm.end": notification.Change, "compute.instance.resize.confirm.end": notification.Change,
	"instance.resize_revert.end": notification.Change, "compute.instance.resize.revert.end": notification.Change,
	"instance.shelve.end": notification.Change, "compute.instance.shelve.end": notification.Change,
	"instance.shelve_offload.end": notification.Change, "compute.instance.shelve_offload.end": notification.Change,
	"instance.unshelve.end": notification.Change, "compute.instance.unshelve.end": notification.Change,
	"instance.suspend.end": notification.Change, "compute.instance.suspend.end": notification.Change,
	"instance.resume.end": notification.Change, "compute.instance.resume.end": notification.Change,
	"instance.pause.end": notification.Change, "compute.instance.pause.end": notification.Change,
	"instance.unpause.end": notification.Change, "compute.instance.unpause.end": notification.Change,
	"instance.rescue.end": notification.Change, "compute.instance.rescue.end": notification.Change,
	"instance.unrescue.end": notification.Change, "compute.instance.unrescue.end": notification.Change,

	"instance.update": "", "compute.instance.update": "", "instance.exists": "", "compute.instance.exists": "",
	"instance.reboot.end": "", "compute.instance.reboot.end": "", "instance.rebuild_scheduled": "",
	"instance.resize.end": "", "compute.instance.resize.end": "", "instance.resize_prep.end": "",
	"compute.instance.resize.prep.end": "", "instance.shutdown.end": "", "compute.instance.shutdown.end": "",
	"instance.snapshot.end": "", "compute.instance.snapshot.end": "",
	"instance.interface_attach.end": "", "instance.interface_detach.end": "",
	"compute.instance.create_ip.end": "", "compute.instance.delete_ip.end": "",
	"instance.volume_attach.end": "", "instance.volume_detach.end": "", "instance.volume_swap.end": "",
	"compute.instance.volume.attach": "", "compute.instance.volume.detach": "",
	"instance.share_attach.end": "", "instance.share_detach.end": "", "instance.trigger_crash_dump.end": "",
	"instance.lock": "", "instance.unlock": "", "instance.evacuate": "", "compute.instance.evacuate": "",
	"instance.live_migration_pre.end": "", "instance.live_migration_post.end": "",
	"instance.live_migration_post_dest.end": "", "instance.live_migration_rollback.end": "",
	"instance.live_migration_rollback_dest.end": "", "instance.live_migration_abort.end": "",
	"instance.live_migration_force_complete.end": "",
	"compute.instance.live_migration.pre.end":    "", "compute.instance.live_migration._post.end": "",
	"compute.instance.live_migration.post.dest.end": "", "compute.instance.live_migration._rollback.end": "",
	"compute.instance.live_migration.rollback.dest.end": "", "compute.instance.live.migration.force.complete.end": "",
	// not about one server
	"compute.metrics.update": "", "compute_task.build_instances.error": "", "scheduler.select_destinations.end": "",
	"aggregate.add_host.end": "", "keypair.create.end": "", "flavor.update": "", "service.update": "",
	"server_group.add_member": "", "libvirt.connect.error": "", "metrics.update": "",
}

// Every Nova instance event, in every phase, is decided: mapped to an action or deliberately
// ignored, never unknown (which would quarantine it) and never swallowed by a pattern by
// accident (the instance.* pattern hid soft_delete and restore: issue 12, 2).
func TestEveryNovaEventIsDecided(t *testing.T) {
	defs := shipped(t)
	check := func(typ string, want notification.Action) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"event_type": typ, "timestamp": "2026-10-03 08:00:00", "payload": map[string]any{
			"instance_id": "srv", "tenant_id": "p", "state": "active", "launched_at": "2026-10-03T08:00:00"}})
		m, err := notification.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := defs.Event(m)
		switch {
		case want == "" && !errors.Is(err, notification.ErrIgnored):
			t.Errorf("%s: %+v, %v; want deliberately ignored", typ, ev.Action, err)
		case want != "" && (err != nil || ev.Action != want):
			t.Errorf("%s: %q, %v; want %s", typ, ev.Action, err, want)
		}
	}
	for typ, want := range novaEvents {
		check(typ, want)
	}
	// Whatever the action, its start and error phases are ignored.
	for _, base := range []string{"instance.soft_delete", "compute.instance.soft_delete", "instance.restore",
		"instance.create", "instance.delete", "instance.resize_finish", "compute.instance.live_migration.pre"} {
		check(base+".start", "")
		check(base+".error", "")
	}
	// A Nova instance event nobody listed is seen (quarantined as unknown), not swallowed.
	for _, typ := range []string{"instance.brand_new_action.end", "compute.instance.brand_new_action.end"} {
		m, _ := notification.Parse([]byte(`{"event_type":"` + typ + `","payload":{"instance_id":"s","tenant_id":"p"}}`))
		if _, err := defs.Event(m); notification.ReasonOf(err) != notification.ReasonUnknownEvent {
			t.Errorf("%s: %v, want unknown_event", typ, err)
		}
	}
}

// A soft delete makes the server soft_deleted (priced at 0 unless the policy says otherwise), a
// restore makes it run again; versioned (state "soft-delete" in the Nova object) and legacy alike.
func TestSoftDeleteAndRestoreBecomeStateChanges(t *testing.T) {
	defs := shipped(t)
	var versioned map[string]any
	if err := json.Unmarshal(read(t, "nova-versioned/instance-power_off-end.json"), &versioned); err != nil {
		t.Fatal(err)
	}
	var legacy map[string]any
	if err := json.Unmarshal(read(t, "legacy/compute.instance.create.end.json"), &legacy); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc        map[string]any
		typ, state string
		wantState  string
	}{
		{versioned, "instance.soft_delete.end", "soft-delete", "soft_deleted"},
		{versioned, "instance.restore.end", "active", "active"},
		{legacy, "compute.instance.soft_delete.end", "soft-delete", "soft_deleted"},
		{legacy, "compute.instance.restore.end", "active", "active"},
	} {
		tc.doc["event_type"] = tc.typ
		tc.doc["timestamp"] = "2026-10-05 10:00:00.123"
		p := tc.doc["payload"].(map[string]any)
		if d, ok := p["nova_object.data"].(map[string]any); ok {
			d["state"] = tc.state
		} else {
			p["state"] = tc.state
		}
		body, _ := json.Marshal(tc.doc)
		m, err := notification.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := defs.Event(m)
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		if ev.Action != notification.Change || ev.Attributes["state"] != tc.wantState || !ev.Time.Equal(utc("2026-10-05T10:00:00Z")) ||
			ev.Attributes["flavor"] == "" {
			t.Errorf("%s = %+v; want a change to state %s at the envelope's second, flavor kept", tc.typ, ev, tc.wantState)
		}
	}
}

// The table of ceilometer/README.md says what the shipped definitions do, row by row.
func TestREADMETableMatchesDefinitions(t *testing.T) {
	defs := shipped(t)
	text, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{
		"instance_id": "r", "tenant_id": "p", "volume_id": "r", "snapshot_id": "r", "id": "r", "owner": "p",
		"floatingip": map[string]any{"id": "r", "project_id": "p"}, "router": map[string]any{"id": "r", "project_id": "p"},
		"resource_info": "p", "state": "active", "launched_at": "2026-10-03T08:00:00", "created_at": "2026-10-03T08:00:00",
		"updated_at": "2026-10-03T08:00:00", "deleted_at": "2026-10-03T09:00:00",
	}
	rows := 0
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			t.Fatalf("row %q: want | events | does | at | why |", line)
		}
		want := strings.TrimSpace(cells[1])
		for _, part := range strings.Split(cells[0], "`") {
			typ := strings.TrimSpace(part)
			if typ == "" || typ == "|" || strings.HasPrefix(typ, ",") || strings.Contains(typ, " ") {
				continue
			}
			rows++
			body, _ := json.Marshal(map[string]any{"event_type": typ, "timestamp": "2026-10-03 08:30:00", "payload": payload})
			m, err := notification.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := defs.Event(m)
			got := string(ev.Action)
			if errors.Is(err, notification.ErrIgnored) {
				got = "ignored"
			} else if err != nil {
				got = err.Error()
			}
			if got != want {
				t.Errorf("README says %s does %q; the definitions: %q", typ, want, got)
			}
		}
	}
	if rows < 100 {
		t.Errorf("only %d event types read from the README table", rows)
	}
}
