package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
)

// October's traffic, worked out by hand from the seeded increments (seedOctober):
//
//	A: a1 744 h × 2,000,123,456 B = 1,488,091,851,264 B (the reset on Oct 15 restarts the
//	   counter from zero: the value after it counts whole, so every hour still adds its increment)
//	   a2 228 h × 500,000,000 B = 114,000,000,000 B (it started in October: its first value counts)
//	   = 1602.091851264 GB
//	B: b1 744 h × 250,000,999 B = 186.000743256 GB; b2 ended in September: nothing
//	C: c1 744 h × 1,000,000,000 B = 744 GB
const (
	octGBA = "1602.091851264"
	octGBB = "186.000743256"
	octGBC = "744"
)

// October's meter lines, priced by meteredPolicy: 100 GB included, then per GB 0.05 up to
// 1,000, 0.03 up to 1,500, 0.02 above, over the customer's traffic beyond the included 100.
var (
	// A: 1602.091851264 − 100 = 1502.091851264 GB beyond the included:
	//   1000 × 0.05 = 50.00; 500 × 0.03 = 15.00; 2.091851264 × 0.02 = 0.04183702528 → 0.04.
	octLinesA = []meterLine{
		{"Outgoing traffic, included in the policy", "100", "0", "0.00"},
		{"tier 1 (0 to 1000 GB)", "1000", "0.05", "50.00"},
		{"tier 2 (1000 to 1500 GB)", "500", "0.03", "15.00"},
		{"tier 3 (above 1500 GB)", "2.091851", "0.02", "0.04"},
	}
	// B: 186.000743256 − 100 = 86.000743256 GB × 0.05 = 4.3000371628 → 4.30.
	octLinesB = []meterLine{
		{"Outgoing traffic, included in the policy", "100", "0", "0.00"},
		{"tier 1 (0 to 1000 GB)", "86.000743", "0.05", "4.30"},
	}
	// C: 744 − 100 = 644 GB × 0.05 = 32.20.
	octLinesC = []meterLine{
		{"Outgoing traffic, included in the policy", "100", "0", "0.00"},
		{"tier 1 (0 to 1000 GB)", "644", "0.05", "32.20"},
	}
)

// October invoice totals with 20 % tax:
//
//	A: traffic 65.04 + server m1.large Oct 10 12:00 → Oct 20 00:00, 228 h × 0.08 = 18.24;
//	   subtotal 83.28, tax 16.656 → 16.66, total 99.94
//	B: traffic 4.30 + server m1.small all October (it started Sep 30 18:00, but B was never
//	   invoiced before: billing starts Oct 1), 744 h × 0.02 = 14.88; subtotal 19.18,
//	   tax 3.836 → 3.84, total 23.02
//	C: 32.20, tax 6.44, total 38.64
var octTotals = map[string]string{"a": "99.94", "b": "23.02", "c": "38.64"}

// serverLines returns the invoice's server lines.
func serverLines(inv *invoice.Invoice) []invoice.Line {
	var out []invoice.Line
	for _, l := range inv.Lines {
		if l.ResourceType == "os.nova.server" {
			out = append(out, l)
		}
	}
	return out
}

// checkServerLine checks that the invoice has one server line, for r, costing amount.
func checkServerLine(t *testing.T, inv *invoice.Invoice, id, flavor string, r interval.Range, amount string) {
	t.Helper()
	ls := serverLines(inv)
	if len(ls) != 1 || ls[0].ResourceID != id || ls[0].Attributes["flavor"] != flavor || !ls[0].Start.Equal(r.Start) ||
		!ls[0].End.Equal(r.End) || ls[0].Seconds != r.Seconds() || ls[0].Amount.String() != amount {
		t.Errorf("%s server lines = %+v, want one of %s %s %s (%d s) for %s", inv.CustomerID, ls, id, flavor, r, r.Seconds(), amount)
	}
}

// checkSeeded checks that the independently computed traffic of the seed is the hand-worked one:
// a guard on the seeding helper, so the literals above are about the same data.
func checkSeeded(t *testing.T, d *octoberTraffic) {
	t.Helper()
	for _, c := range []struct {
		s    trafficSeed
		want string
	}{{d.a, octGBA}, {d.b, octGBB}, {d.c, octGBC}} {
		if c.s.oct.Cmp(dec(c.want)) != 0 {
			t.Fatalf("seeded traffic of %s = %s GB, worked out by hand %s GB", c.s.project, c.s.oct, c.want)
		}
	}
}

// invoiceFor returns the stored invoice a run issued to a customer.
func (h *harness) invoiceFor(run *pipeline.Run, customer string) *invoice.Invoice {
	h.t.Helper()
	o := outcome(h.t, run, customer)
	if o.Err != "" || o.Number == "" {
		h.t.Fatalf("%s: outcome %+v", customer, o)
	}
	inv, err := h.st.GetInvoice(context.Background(), o.Number)
	if err != nil {
		h.t.Fatal(err)
	}
	return inv
}

// TestGnocchiMetersBilled: a scheduled October run fed by Gnocchi bills each project's outgoing
// traffic with the tiers and the included quantity, and the server Gnocchi saw; a second run
// bills nothing twice; the November run bills November's two hours of traffic only; regenerating
// the October invoice re-prices exactly its ranges from Gnocchi.
func TestGnocchiMetersBilled(t *testing.T) {
	d := seedOctober(t)
	checkSeeded(t, d)
	h, _ := newGnocchiHarness(t, gnocchitest.URL())
	a, b := d.a.project, d.b.project
	h.seedMetered(a, b)

	run := h.run("2026-10", a, b)
	if run.Stats.Invoices != 2 || run.Stats.Failed != 0 {
		t.Fatalf("October run: %d invoices, %d failed: %+v", run.Stats.Invoices, run.Stats.Failed, run.Stats.Outcomes)
	}
	invA, invB := h.invoiceFor(run, a), h.invoiceFor(run, b)
	checkMeterLines(t, invA, octLinesA)
	checkMeterLines(t, invB, octLinesB)
	// The servers, from Gnocchi's lifespans: A's 820,800 s = 228 h × 0.08 = 18.24; B's
	// 2,678,400 s = 744 h × 0.02 = 14.88.
	checkServerLine(t, invA, d.a.instance, "m1.large", interval.New(ts("2026-10-10T12:00:00Z"), ts("2026-10-20T00:00:00Z")), "18.24")
	checkServerLine(t, invB, d.b.instance, "m1.small", month(t, "2026-10"), "14.88")
	if len(invA.Lines) != len(octLinesA)+1 || len(invB.Lines) != len(octLinesB)+1 {
		t.Errorf("lines: A %d, B %d; want %d and %d", len(invA.Lines), len(invB.Lines), len(octLinesA)+1, len(octLinesB)+1)
	}
	for name, inv := range map[string]*invoice.Invoice{"a": invA, "b": invB} {
		if inv.Total.String() != octTotals[name] {
			t.Errorf("%s total = %s, want %s", inv.CustomerID, inv.Total, octTotals[name])
		}
	}
	// Each interface's October total is recorded as billed; b's September interface is not.
	for _, s := range []trafficSeed{d.a, d.b} {
		n := h.count(`SELECT count(*) FROM billed_ranges br JOIN resources r ON r.key = br.resource_key
			WHERE r.customer_id = ? AND r.resource_id LIKE 'meter/network.outgoing.bytes/%' AND br.void = 0`, s.project)
		if n != len(s.nicOct) {
			t.Errorf("%s: %d billed meter ranges, want %d", s.project, n, len(s.nicOct))
		}
	}

	// Run again: nothing is billed twice.
	again := h.run("2026-10", a, b)
	if again.Stats.Invoices != 0 || again.Stats.Skipped != 2 {
		t.Errorf("second October run: %d invoices, %d skipped", again.Stats.Invoices, again.Stats.Skipped)
	}
	for _, id := range []string{a, b} {
		if o := outcome(t, again, id); !strings.Contains(o.Skip, "already invoiced") {
			t.Errorf("second run, %s: %+v", id, o)
		}
		if n := h.count(`SELECT count(*) FROM invoices WHERE customer_id = ? AND status <> 'void'`, id); n != 1 {
			t.Errorf("%s has %d invoices after the second run", id, n)
		}
	}

	// November: the traffic is only the two hours Gnocchi holds for November (00:30 and 01:30
	// on Nov 1), within the included 100 GB:
	//   A: a1 2 × 2,000,123,456 B = 4.000246912 GB (a2 ended in October)
	//   B: b1 2 × 250,000,999 B = 0.500001998 GB
	// (a re-billed October would show about 1,606 GB here). B's server, still alive, is billed
	// for November only: 720 h × 0.02 = 14.40, tax 2.88, total 17.28; October is not billed again
	// though Gnocchi's span starts on Sep 30. A's server ended in October: nothing.
	nov := h.run("2026-11", a, b)
	for _, c := range []struct {
		s       trafficSeed
		traffic string
		total   string
	}{{d.a, "4.000247", "0.00"}, {d.b, "0.500002", "17.28"}} {
		if got := c.s.nov.Round(6).Trim(0).String(); got != c.traffic {
			t.Fatalf("seeded November traffic of %s = %s GB, worked out by hand %s", c.s.project, c.s.nov, c.traffic)
		}
		inv := h.invoiceFor(nov, c.s.project)
		checkMeterLines(t, inv, []meterLine{{"Outgoing traffic, included in the policy", c.traffic, "0", "0.00"}})
		if inv.Total.String() != c.total {
			t.Errorf("%s November total = %s, want %s", c.s.project, inv.Total, c.total)
		}
		for _, l := range inv.Lines {
			if l.Section != invoice.Usage || l.Start.Before(novStart) {
				t.Errorf("%s November line %s %s from %s: want November usage only", c.s.project, l.Section, l.Description, l.Start)
			}
		}
	}
	checkServerLine(t, h.invoiceFor(nov, b), d.b.instance, "m1.small", month(t, "2026-11"), "14.40")
	if ls := serverLines(h.invoiceFor(nov, a)); len(ls) != 0 {
		t.Errorf("A's server billed again in November: %+v", ls)
	}

	// Regenerating A's October invoice re-reads Gnocchi for exactly its ranges: the same lines,
	// the same total, a new number; the old invoice is void.
	var item *pipeline.Item
	if _, err := pipeline.Execute(context.Background(), h.env(), pipeline.Options{Mode: pipeline.Regenerate, Period: invA.Period,
		CustomerIDs: []string{a}, Replacing: invA, OnItem: func(it *pipeline.Item) { item = it }}); err != nil {
		t.Fatal(err)
	}
	if item == nil || item.Err != nil || item.Invoice == nil || item.Invoice.Number == invA.Number {
		t.Fatalf("regenerate %s: %+v", invA.Number, item)
	}
	fresh, err := h.st.GetInvoice(context.Background(), item.Invoice.Number)
	if err != nil {
		t.Fatal(err)
	}
	checkMeterLines(t, fresh, octLinesA)
	checkServerLine(t, fresh, d.a.instance, "m1.large", interval.New(ts("2026-10-10T12:00:00Z"), ts("2026-10-20T00:00:00Z")), "18.24")
	if fresh.Total.String() != octTotals["a"] || fresh.Replaces != invA.Number || len(fresh.Ranges) != len(invA.Ranges) {
		t.Errorf("regenerated: total %s replaces %q, %d ranges; want %s, %s, %d", fresh.Total, fresh.Replaces, len(fresh.Ranges),
			octTotals["a"], invA.Number, len(invA.Ranges))
	}
}

// TestGnocchiSpansWithFlavorChange: a server whose flavor changed (a revision in Gnocchi's
// history) is billed as two server lines, each priced by its flavor, cut at the revision.
//
// Gnocchi stamps a revision with the time the change is made and accepts no other, so a change
// can only be seeded "now": this test bills the current month. The server starts 10 hours
// before the change (or at the month's start when that is closer), is resized to m1.large now
// and deleted one hour later (ended_at in the future; the end of the month at the latest), so:
//
//	m1.small [started_at, revision) ≈ 36,000 s × 0.02 / 3600 = 0.20
//	m1.large [revision, ended_at)   =  3,600 s × 0.08 / 3600 = 0.08
//
// A rename in between is a revision too, but changes no billed attribute: it must not split the
// span. The listener's records of servers in the store are replaced by Gnocchi's (gnocchi is
// the authoritative source of os.nova.server here); a floating IP's are still billed.
func TestGnocchiSpansWithFlavorChange(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	now := time.Now().UTC()
	month := interval.MonthOf(now, time.UTC)
	if now.Sub(month.Start) < time.Minute || month.End.Sub(now) < time.Minute {
		t.Skip("within a minute of a month's edge: the revision would not fall inside the month")
	}
	project := "e2e-" + gnocchitest.UUID()[:8] + "-resize"
	started := interval.Norm(now.Add(-10 * time.Hour))
	if started.Before(month.Start) {
		started = month.Start
	}
	id := gnocchitest.UUID()
	if _, err := gn.CreateResource(ctx, "instance", gnocchi.NewResource{ID: id, ProjectID: project, StartedAt: started,
		Attributes: map[string]any{"flavor_name": "m1.small", "flavor_id": "2", "display_name": "db"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"display_name": "db-1"}); err != nil {
		t.Fatal(err)
	}
	resized, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"flavor_name": "m1.large", "flavor_id": "3"})
	if err != nil {
		t.Fatal(err)
	}
	at := interval.Norm(resized.RevisionStart)
	ended := at.Add(time.Hour)
	if ended.After(month.End) {
		ended = month.End
	}
	if _, err := gn.UpdateResource(ctx, "instance", id, map[string]any{"ended_at": gnocchi.Timestamp(ended)}); err != nil {
		t.Fatal(err)
	}

	h, _ := newGnocchiHarness(t, gnocchitest.URL())
	h.seedMetered(project)
	h.addRecords(
		billing.Record{CustomerID: project, ResourceID: "vm-from-listener", ResourceType: "os.nova.server", Start: month.Start,
			End: month.Start.Add(time.Hour), Attributes: map[string]string{"flavor": "m1.large"}},
		billing.Record{CustomerID: project, ResourceID: "fip-1", ResourceType: "os.neutron.floatingip", Start: month.Start,
			End: month.Start.Add(2 * time.Hour)},
	)
	o := pipeline.Options{Mode: pipeline.Scheduled, Period: month, CustomerIDs: []string{project}}
	run, err := pipeline.Execute(ctx, h.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	inv := h.invoiceFor(run, project)

	small := interval.Range{Start: started, End: at}
	large := interval.Range{Start: at, End: ended}
	amount := func(r interval.Range, price string) string {
		a, _ := decimal.MustNew(r.Seconds(), 0).Mul(dec(price))
		a, _ = a.Quo(decimal.MustNew(3600, 0))
		return a.Round(2).String()
	}
	want := []struct {
		id     string
		flavor string
		r      interval.Range
		amount string
	}{
		{"fip-1", "", interval.Range{Start: month.Start, End: month.Start.Add(2 * time.Hour)}, "0.01"}, // 2 h × 0.005
		{id, "m1.small", small, amount(small, "0.02")},
		{id, "m1.large", large, amount(large, "0.08")},
	}
	if len(inv.Lines) != len(want) {
		for _, l := range inv.Lines {
			t.Logf("line: %s %s [%s, %s) %s", l.ResourceType, l.ResourceID, l.Start, l.End, l.Amount)
		}
		t.Fatalf("%d lines, want %d", len(inv.Lines), len(want))
	}
	for _, w := range want {
		found := false
		for _, l := range inv.Lines {
			if l.ResourceID != w.id || !l.Start.Equal(w.r.Start) {
				continue
			}
			found = true
			if !l.End.Equal(w.r.End) || l.Seconds != w.r.Seconds() || l.Amount.String() != w.amount || l.Attributes["flavor"] != w.flavor {
				t.Errorf("line %s [%s, %s) %d s %s %v, want [%s, %s) %d s %s flavor %q", l.ResourceID, l.Start, l.End, l.Seconds,
					l.Amount, l.Attributes, w.r.Start, w.r.End, w.r.Seconds(), w.amount, w.flavor)
			}
		}
		if !found {
			t.Errorf("no line for %s from %s", w.id, w.r.Start)
		}
	}
	t.Logf("resized at %s: m1.small %d s = %s, m1.large %d s = %s", at.Format(time.RFC3339), small.Seconds(), want[1].amount,
		large.Seconds(), want[2].amount)

	// Billed once: a second run of the month issues nothing.
	again, err := pipeline.Execute(ctx, h.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.Invoices != 0 || again.Stats.Skipped != 1 {
		t.Errorf("second run: %d invoices, %d skipped", again.Stats.Invoices, again.Stats.Skipped)
	}
}

// TestGnocchiLateChangesReachTheNextInvoice: what Gnocchi learns after a period was invoiced is
// settled on the next invoice, as with the listener's records: a server billed to the end of
// October because it was alive at the run, whose ended_at Gnocchi sets later to Oct 25 12:00,
// is credited the unused time; a server Gnocchi only learns of after the run, which lived two
// days of October, is billed as late usage. Neither is billed in December.
//
//	October:  m1.small all month, 744 h × 0.02 = 14.88; tax 2.976 → 2.98; total 17.86
//	November: credit [Oct 25 12:00, Nov 1) = 156 h × 0.02 = −3.12
//	          late m1.large [Oct 28 00:00, Oct 30 00:00) = 48 h × 0.08 = 3.84
//	          subtotal 0.72, tax 0.144 → 0.14, total 0.86
func TestGnocchiLateChangesReachTheNextInvoice(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{})
	project := "e2e-" + gnocchitest.UUID()[:8] + "-late"
	s := &seeder{t: t, gn: gn}
	early := s.create("instance", project, octStart, time.Time{}, map[string]any{"flavor_name": "m1.small", "flavor_id": "2"})
	h, _ := newGnocchiHarness(t, gnocchitest.URL())
	h.seedMetered(project)

	oct := h.invoiceFor(h.run("2026-10", project), project)
	checkServerLine(t, oct, early, "m1.small", month(t, "2026-10"), "14.88")
	if oct.Total.String() != "17.86" {
		t.Errorf("October total = %s, want 17.86", oct.Total)
	}

	if _, err := gn.UpdateResource(ctx, "instance", early, map[string]any{"ended_at": gnocchi.Timestamp(ts("2026-10-25T12:00:00Z"))}); err != nil {
		t.Fatal(err)
	}
	late := s.create("instance", project, ts("2026-10-28T00:00:00Z"), ts("2026-10-30T00:00:00Z"), map[string]any{"flavor_name": "m1.large", "flavor_id": "3"})

	nov := h.invoiceFor(h.run("2026-11", project), project)
	want := []struct {
		section    invoice.Section
		id         string
		start, end string
		amount     string
	}{
		{invoice.Adjustment, late, "2026-10-28T00:00:00Z", "2026-10-30T00:00:00Z", "3.84"},
		{invoice.Credit, early, "2026-10-25T12:00:00Z", "2026-11-01T00:00:00Z", "-3.12"},
	}
	got := serverLines(nov)
	if len(got) != len(want) {
		t.Fatalf("November server lines = %+v, want %d", got, len(want))
	}
	for _, w := range want {
		ok := false
		for _, l := range got {
			if l.ResourceID == w.id && l.Section == w.section && l.Start.Equal(ts(w.start)) && l.End.Equal(ts(w.end)) && l.Amount.String() == w.amount {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no %s line of %s [%s, %s) for %s in %+v", w.section, w.id, w.start, w.end, w.amount, got)
		}
	}
	if nov.Total.String() != "0.86" {
		t.Errorf("November total = %s, want 0.86", nov.Total)
	}

	// December: both servers are gone. Gnocchi's history still holds the revisions of the first
	// from before its ended_at was set (ended_at null then): they must not bill it again.
	december := h.run("2026-12", project)
	if o := outcome(t, december, project); o.Err != "" {
		t.Fatalf("December: %+v", o)
	} else if o.Number != "" {
		if ls := serverLines(h.invoiceFor(december, project)); len(ls) != 0 {
			t.Errorf("December bills servers that ended in October: %+v", ls)
		}
	}
}

// TestGnocchiDownMidRun: Gnocchi goes away after the first batch of a run (one customer a
// batch). The run fails with an error that names the batch, the handler and what to check; the
// customers of the failed batch have no invoice and no billed range; once Gnocchi is back, the
// same run again invoices them, and the first batch's customer only once. Both for a run of
// listed customers and for the monthly run of every customer, which is shared through the store
// (its failed batch is released for the rerun to claim).
func TestGnocchiDownMidRun(t *testing.T) {
	d := seedOctober(t)
	checkSeeded(t, d)
	target := strings.TrimPrefix(gnocchitest.URL(), "http://")
	ids := []string{d.a.project, d.b.project, d.c.project}
	for _, tt := range []struct {
		name      string
		customers []string
	}{{"listed customers", ids}, {"every customer, shared run", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			p := startTCPProxy(t, target, "")
			h, _ := newGnocchiHarness(t, "http://"+p.addr)
			h.cfg.Pipeline.BatchSize, h.cfg.Pipeline.Workers = 1, 1
			h.seedMetered(ids...)

			o := pipeline.Options{Mode: pipeline.Scheduled, Period: month(t, "2026-10"), CustomerIDs: tt.customers,
				OnItem: func(*pipeline.Item) { p.stop() }} // Gnocchi goes down once the first batch is done
			run, err := pipeline.Execute(context.Background(), h.env(), o)
			if err == nil {
				t.Fatalf("a run with Gnocchi down succeeded: %+v", run.Stats.Outcomes)
			}
			t.Logf("error seen by the operator: %v", err)
			for _, w := range []string{"batch 1", "subscription_feeding", "Gnocchi did not answer", "openstack.gnocchi_url"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if run.Stats.Invoices != 1 || outcome(t, run, d.a.project).Number == "" {
				t.Errorf("invoices before Gnocchi went down = %d, want 1 (A's): %+v", run.Stats.Invoices, run.Stats.Outcomes)
			}
			for _, id := range ids[1:] {
				if n := h.count(`SELECT count(*) FROM invoices WHERE customer_id = ?`, id); n != 0 {
					t.Errorf("%s has %d invoices after the failed batch", id, n)
				}
				if n := h.count(`SELECT count(*) FROM billed_ranges WHERE customer_id = ?`, id); n != 0 {
					t.Errorf("%s has %d billed ranges after the failed batch", id, n)
				}
			}

			// Gnocchi is back on the same address: the rerun completes.
			startTCPProxy(t, target, p.addr)
			o.OnItem = nil
			rerun, err := pipeline.Execute(context.Background(), h.env(), o)
			if err != nil {
				t.Fatalf("rerun: %v", err)
			}
			if rerun.Stats.Invoices != 2 || rerun.Stats.Skipped+rerun.Stats.Invoices != len(rerun.Stats.Outcomes) {
				t.Errorf("rerun: %d invoices, %d skipped: %+v", rerun.Stats.Invoices, rerun.Stats.Skipped, rerun.Stats.Outcomes)
			}
			checkMeterLines(t, h.invoiceFor(rerun, d.b.project), octLinesB)
			checkMeterLines(t, h.invoiceFor(rerun, d.c.project), octLinesC)
			for name, id := range map[string]string{"a": d.a.project, "b": d.b.project, "c": d.c.project} {
				var total string
				if err := h.st.DB().QueryRow(`SELECT total FROM invoices WHERE customer_id = ? AND status <> 'void'`, id).Scan(&total); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if total != octTotals[name] {
					t.Errorf("%s total = %s, want %s", id, total, octTotals[name])
				}
				if n := h.count(`SELECT count(*) FROM invoices WHERE customer_id = ?`, id); n != 1 {
					t.Errorf("%s has %d invoices, want 1", id, n)
				}
			}
		})
	}
}

// TestGnocchiUsageCommand: `bilean usage A --period 2026-10 --source gnocchi -o json` shows the
// traffic the run bills, per interface and in total, priced by the meter rule with the same
// lines (before rounding) as the invoice, and the server's span.
func TestGnocchiUsageCommand(t *testing.T) {
	d := seedOctober(t)
	checkSeeded(t, d)
	h, cfgPath := newGnocchiHarness(t, gnocchitest.URL())
	h.seedMetered(d.a.project, d.b.project)
	bin := filepath.Join(t.TempDir(), "bilean")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bilean/bilean/cmd/bilean").CombinedOutput(); err != nil {
		t.Fatalf("build bilean: %v\n%s", err, out)
	}
	for _, c := range []struct {
		s     trafficSeed
		lines []meterLine
	}{{d.a, octLinesA}, {d.b, octLinesB}} {
		cmd := exec.Command(bin, "--config", cfgPath, "--log-level", "warn", "usage", c.s.project, "--period", "2026-10", "--source", "gnocchi", "-o", "json")
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("bilean usage %s: %v\n%s", c.s.project, err, stderr)
		}
		var rep usage.Report
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("bilean usage %s: %v\n%s", c.s.project, err, out)
		}
		if rep.Customer != c.s.project || rep.Source != "gnocchi" || rep.Policy != meteredPolicy.Name || rep.Currency != "EUR" {
			t.Errorf("report header = %s %s %s %s", rep.Customer, rep.Source, rep.Policy, rep.Currency)
		}
		// Per interface, as seeded (b's September interface absent).
		if len(rep.Meters) != len(c.s.nicOct) {
			t.Errorf("%s: %d meter rows, want %d: %+v", c.s.project, len(rep.Meters), len(c.s.nicOct), rep.Meters)
		}
		for _, m := range rep.Meters {
			if want, ok := c.s.nicOct[m.ResourceID]; !ok || m.Quantity.Cmp(want) != 0 || m.Unit != "GB" {
				t.Errorf("%s: meter row %s %s %s, want %s GB", c.s.project, m.ResourceID, m.Quantity, m.Unit, want)
			}
		}
		totals := rep.MeterTotals()
		if len(totals) != 1 || totals[0].Quantity.Cmp(c.s.oct) != 0 {
			t.Errorf("%s: meter totals %+v, want %s GB", c.s.project, totals, c.s.oct)
		}
		// The priced lines are the invoice's, before rounding.
		if len(rep.Prices) != len(c.lines) {
			t.Fatalf("%s: %d priced lines, want %d: %+v", c.s.project, len(rep.Prices), len(c.lines), rep.Prices)
		}
		for i, w := range c.lines {
			p := rep.Prices[i]
			if !strings.HasSuffix(p.Description, w.description) || p.Quantity.Round(6).Trim(0).String() != w.quantity ||
				p.UnitPrice.String() != w.unitPrice || p.Amount.Round(2).Cmp(dec(w.amount)) != 0 {
				t.Errorf("%s: priced line %d = %q %s × %s = %s, want …%q %s × %s = %s", c.s.project, i, p.Description, p.Quantity,
					p.UnitPrice, p.Amount, w.description, w.quantity, w.unitPrice, w.amount)
			}
		}
		// The server, from Gnocchi, clipped to October.
		if len(rep.Spans) != 1 || rep.Spans[0].ResourceID != c.s.instance || rep.Spans[0].Hours.String() != c.s.octHours ||
			rep.Spans[0].Attributes["flavor"] != c.s.flavor || rep.Spans[0].Source != "gnocchi" {
			t.Errorf("%s: spans %+v, want the %s server for %s h", c.s.project, rep.Spans, c.s.flavor, c.s.octHours)
		}
	}
}

// flavorConfig is the gnocchi section of the per-flavor and volume tests: instance-hours as a
// meter (an hourly instance gauge of 1: the sum of hourly means is hours), priced by flavor in
// the policy; volumes as spans from Gnocchi, their size read from the volume.size metric.
const flavorConfig = `
openstack:
  auth: basic
  gnocchi_url: %s
  username: admin
  timeout: 30s
  retries: 1
  retry_wait: 50ms
gnocchi:
  enabled: true
  meters:
%s
  spans:
    - {resource_type: volume, billed_as: os.cinder.volume, source: gnocchi, attributes_from_metrics: {size: volume.size}}
`

const instanceHoursMeter = `    - {name: instance.hours, metric: instance, resource_type: instance, aggregation: sum, method: mean, unit: hour, rule: meter}`

// flavorPolicy prices instance-hours by flavor (no default: another flavor is an error) and
// volumes per GB-hour.
var flavorPolicy = billing.Policy{Name: "flavor-e2e", Currency: "EUR", Fee: dec("0"), Rules: []billing.RuleSpec{
	{Type: "meter", Spec: `meter: instance.hours
unit: hour
description: Instance
group_by: [flavor_name]
prices: {m1.small: "0.02", m1.large: "0.08"}`},
	{Type: "os.cinder.volume", Spec: `price_per_gb_hour: "0.0005"`},
}}

// newFlavorHarness is newGnocchiHarness with flavorConfig (meters as given).
func newFlavorHarness(t *testing.T, meters string) *harness {
	t.Helper()
	h, _ := newConfiguredHarness(t, fmt.Sprintf(flavorConfig, gnocchitest.URL(), meters))
	return h
}

// subscribe stores flavorPolicy and the customers (20 % tax), each on it since January.
func (h *harness) subscribe(customers ...string) { h.seedOn(flavorPolicy, customers...) }

// hourly returns a measure of v at HH:20 of every hour of [from, to).
func hourly(from, to time.Time, v func(time.Time) float64) []gnocchi.Measure {
	var out []gnocchi.Measure
	for at := from.Truncate(time.Hour).Add(20 * time.Minute); at.Before(to); at = at.Add(time.Hour) {
		out = append(out, gnocchi.NewMeasure(at, v(at)))
	}
	return out
}

func always(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }

// TestGnocchiMeterPricedByFlavor: an instance-hours meter from Gnocchi is priced per flavor by
// the instance's flavor_name (CloudKitty's price per instance-hour by flavor). Worked by hand:
//
//	P: small m1.small lives from Sep 30 18:00 on: October's 744 hourly means of 1 = 744 h × 0.02 = 14.88
//	   large m1.large lives Oct 10 12:00 → Oct 20 00:00: 228 h × 0.08 = 18.24
//	   subtotal 33.12, tax 6.624 → 6.62, total 39.74
//	Q: an m1.tiny instance, which the policy does not price and has no default for: Q fails,
//	   with an error naming the meter, the resource and the flavor; P is invoiced all the same.
func TestGnocchiMeterPricedByFlavor(t *testing.T) {
	gn := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	p, q := "e2e-"+run+"-flavor-p", "e2e-"+run+"-flavor-q"
	s := &seeder{t: t, gn: gn, measures: map[string]map[string][]gnocchi.Measure{}}
	small := s.create("instance", p, ts("2026-09-30T18:00:00Z"), time.Time{}, map[string]any{"flavor_name": "m1.small", "flavor_id": "2"}, "instance")
	large := s.create("instance", p, ts("2026-10-10T12:00:00Z"), ts("2026-10-20T00:00:00Z"), map[string]any{"flavor_name": "m1.large", "flavor_id": "3"}, "instance")
	tiny := s.create("instance", q, ts("2026-10-01T00:00:00Z"), time.Time{}, map[string]any{"flavor_name": "m1.tiny", "flavor_id": "1"}, "instance")
	s.measures[small] = map[string][]gnocchi.Measure{"instance": hourly(ts("2026-09-30T18:00:00Z"), seedStop, always(1))}
	s.measures[large] = map[string][]gnocchi.Measure{"instance": hourly(ts("2026-10-10T12:00:00Z"), ts("2026-10-20T00:00:00Z"), always(1))}
	s.measures[tiny] = map[string][]gnocchi.Measure{"instance": hourly(ts("2026-10-01T00:00:00Z"), seedStop, always(1))}
	s.post()
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)

	h := newFlavorHarness(t, instanceHoursMeter)
	h.subscribe(p, q)
	r := h.run("2026-10", p, q)
	if r.Stats.Invoices != 1 || r.Stats.Failed != 1 {
		t.Fatalf("October run: %d invoices, %d failed, want 1 and 1: %+v", r.Stats.Invoices, r.Stats.Failed, r.Stats.Outcomes)
	}
	inv := h.invoiceFor(r, p)
	want := map[string]struct{ desc, qty, price, amount string }{
		small: {"Instance m1.small (" + small + ")", "744", "0.02", "14.88"},
		large: {"Instance m1.large (" + large + ")", "228", "0.08", "18.24"},
	}
	ls := meterLines(inv)
	if len(ls) != len(want) {
		t.Fatalf("meter lines = %+v, want %d", ls, len(want))
	}
	for _, l := range ls {
		w, ok := want[l.ResourceID]
		if !ok || l.Description != w.desc || l.Quantity.String() != w.qty || l.Unit != "hour" || l.UnitPrice.String() != w.price ||
			l.Amount.String() != w.amount {
			t.Errorf("line %q %s %s × %s = %s (%s), want %+v", l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount, l.ResourceID, w)
		}
	}
	if inv.Total.String() != "39.74" {
		t.Errorf("P total = %s, want 39.74", inv.Total)
	}
	o := outcome(t, r, q)
	t.Logf("Q's error: %s", o.Err)
	for _, w := range []string{"instance.hours", tiny, `flavor_name "m1.tiny"`, "no default"} {
		if !strings.Contains(o.Err, w) {
			t.Errorf("Q's error %q does not name %q", o.Err, w)
		}
	}
	if n := h.count(`SELECT count(*) FROM invoices WHERE customer_id = ?`, q); n != 0 {
		t.Errorf("Q has %d invoices, want none", n)
	}
}

// TestGnocchiVolumeSpansWithSizeFromMetric: a volume is billed from Gnocchi as a span whose size
// comes from its volume.size metric; the resize on Oct 15 (20 GB from the 12:20 sample on) cuts
// it. Worked by hand at 0.0005 per GB-hour:
//
//	[Oct 1 00:00, Oct 15 12:00)  348 h × 10 GB = 3,480 GB-h × 0.0005 = 1.74
//	[Oct 15 12:00, Nov 1 00:00)  396 h × 20 GB = 7,920 GB-h × 0.0005 = 3.96
//	subtotal 5.70, tax 1.14, total 6.84
//
// A volume with no size sample at all fails its customer (W) instead of being billed at a
// guessed (or zero) size.
func TestGnocchiVolumeSpansWithSizeFromMetric(t *testing.T) {
	gn := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	v, w := "e2e-"+run+"-vol-v", "e2e-"+run+"-vol-w"
	s := &seeder{t: t, gn: gn, measures: map[string]map[string][]gnocchi.Measure{}}
	vol := s.create("volume", v, ts("2026-09-30T18:00:00Z"), time.Time{}, map[string]any{"volume_type": "ssd", "display_name": "data"}, "volume.size")
	bare := s.create("volume", w, ts("2026-10-02T00:00:00Z"), time.Time{}, map[string]any{"volume_type": "ssd"}, "volume.size")
	resize := ts("2026-10-15T12:00:00Z")
	s.measures[vol] = map[string][]gnocchi.Measure{"volume.size": hourly(ts("2026-09-30T18:00:00Z"), seedStop, func(at time.Time) float64 {
		if at.Before(resize) {
			return 10
		}
		return 20
	})}
	s.post()
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)

	h := newFlavorHarness(t, instanceHoursMeter)
	h.subscribe(v, w)
	r := h.run("2026-10", v, w)
	if r.Stats.Invoices != 1 || r.Stats.Failed != 1 {
		t.Fatalf("October run: %d invoices, %d failed, want 1 and 1: %+v", r.Stats.Invoices, r.Stats.Failed, r.Stats.Outcomes)
	}
	inv := h.invoiceFor(r, v)
	var vols []invoice.Line
	for _, l := range inv.Lines {
		if l.ResourceType == "os.cinder.volume" {
			vols = append(vols, l)
		}
	}
	want := []struct {
		start, end   time.Time
		size, amount string
	}{{octStart, resize, "10", "1.74"}, {resize, novStart, "20", "3.96"}}
	if len(vols) != len(want) {
		t.Fatalf("volume lines = %+v, want %d", vols, len(want))
	}
	for i, wl := range want {
		l := vols[i]
		if l.ResourceID != vol || !l.Start.Equal(wl.start) || !l.End.Equal(wl.end) || l.Attributes["size"] != wl.size || l.Amount.String() != wl.amount {
			t.Errorf("volume line %d = %q [%s, %s) size %q = %s, want [%s, %s) size %s = %s", i, l.Description, l.Start, l.End,
				l.Attributes["size"], l.Amount, wl.start, wl.end, wl.size, wl.amount)
		}
	}
	if inv.Total.String() != "6.84" {
		t.Errorf("V total = %s, want 6.84", inv.Total)
	}
	t.Logf("W's error: %s", outcome(t, r, w).Err)
	if o := outcome(t, r, w); !strings.Contains(o.Err, bare) || !strings.Contains(o.Err, "size") {
		t.Errorf("W's error %q does not name its volume %s and the missing size", o.Err, bare)
	}
}

// TestGnocchiMisspelledMetricFailsTheRun (issue 11): gnocchi.meters[].metric volume.sizeX used
// to bill nothing and exit 0. Now the run fails before anything is billed, naming the setting
// and the metrics volumes do carry; no invoice is stored.
func TestGnocchiMisspelledMetricFailsTheRun(t *testing.T) {
	gn := gnocchitest.Client(t, gnocchi.Options{})
	run := gnocchitest.UUID()[:8]
	v := "e2e-" + run + "-typo"
	s := &seeder{t: t, gn: gn, measures: map[string]map[string][]gnocchi.Measure{}}
	vol := s.create("volume", v, ts("2026-09-30T18:00:00Z"), time.Time{}, map[string]any{"volume_type": "ssd"}, "volume.size")
	s.measures[vol] = map[string][]gnocchi.Measure{"volume.size": hourly(ts("2026-09-30T18:00:00Z"), seedStop, always(10))}
	s.post()
	gnocchitest.WaitProcessed(t, gnocchitest.URL(), 2*time.Minute)

	h := newFlavorHarness(t, instanceHoursMeter+"\n"+
		`    - {name: volume.gb, metric: volume.sizeX, resource_type: volume, aggregation: mean, unit: GB}`)
	h.subscribe(v)
	_, err := pipeline.Execute(context.Background(), h.env(), pipeline.Options{Mode: pipeline.Scheduled, Period: month(t, "2026-10"),
		CustomerIDs: []string{v}})
	if err == nil || !strings.Contains(err.Error(), "gnocchi.meters[1].metric") || !strings.Contains(err.Error(), `"volume.sizeX"`) ||
		!strings.Contains(err.Error(), "volume.size,") && !strings.Contains(err.Error(), "volume.size)") {
		t.Fatalf("run error = %v, want one naming gnocchi.meters[1].metric, volume.sizeX and volume.size", err)
	}
	t.Logf("run error: %v", err)
	if n := h.count(`SELECT count(*) FROM invoices`); n != 0 {
		t.Errorf("%d invoices stored by a misconfigured run", n)
	}
}
