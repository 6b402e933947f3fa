package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportMetersAndUsageFromTheStore: with the shipped configuration (no Gnocchi), `bilean
// usage` reads the store by default and shows the imported meter totals, priced by the policy.
func TestImportMetersAndUsageFromTheStore(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	run := func(args ...string) string {
		t.Helper()
		out, err := cli(t, dir, append([]string{"--config", cfg}, args...)...)
		if err != nil {
			t.Fatalf("bilean %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	const acme = "3f2a9c1e5b7d4e08a1c2b3d4e5f60718"
	subs := filepath.Join(dir, "subscriptions.csv")
	os.WriteFile(subs, []byte("customer_id,policy,start,end\n"+acme+",metered,2026-01-01T00:00:00Z,\n"), 0o644)
	run("import", "policies", "../../etc/policies/metered.yaml")
	run("import", "customers", "../../etc/examples/customers.csv")
	run("import", "subscriptions", subs)
	for range 2 {
		if out := run("import", "meters", "../../etc/examples/meters.csv"); !strings.Contains(out, "imported 3 meters from") {
			t.Fatalf("import meters: %s", out)
		}
	}
	bad := filepath.Join(dir, "meters.csv")
	os.WriteFile(bad, []byte("id,customer_id,meter,start,end,quantity,unit\n"+
		"x1,"+acme+",network.outgoing.bytes,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,1.5,GB\n"+
		"x2,"+acme+",network.outgoing.bytes,2026-12-01T00:00:00Z,2027-01-01T00:00:00Z,-1,GB\n"), 0o644)
	if _, err := cli(t, dir, "--config", cfg, "import", "meters", bad); err == nil ||
		!strings.Contains(err.Error(), "meters.csv:3: quantity \"-1\": must not be negative") {
		t.Fatalf("bad file: err = %v, want it to name meters.csv:3 and the field quantity", err)
	}

	// A third port's total in GB: totals of one meter in two units are converted, then summed.
	gb := filepath.Join(dir, "gb.jsonl")
	os.WriteFile(gb, []byte(`{"id":"x3","customer_id":"`+acme+`","meter":"network.outgoing.bytes","resource_id":"port-9",`+
		`"start":"2026-10-01T00:00:00Z","end":"2026-11-01T00:00:00Z","quantity":10,"unit":"GB"}`+"\n"), 0o644)
	run("import", "meters", gb)
	out := run("usage", acme, "--period", "2026-10", "-o", "json")
	var rep struct {
		Source string `json:"source"`
		Meters []struct {
			ResourceID string `json:"resource_id"`
			Quantity   string `json:"quantity"`
		} `json:"meters"`
		Prices []struct {
			Amount string `json:"amount"`
		} `json:"prices"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// 1322.222211123 GB + 10 GB: 100 included, 1000 × 0.05 = 50.00, 232.222211123 × 0.03 =
	// 6.9666… → 6.97, rounded once per line exactly as the invoice's line (one calculator).
	if rep.Source != "store" || len(rep.Meters) != 3 || rep.Meters[0].Quantity != "1234567890123" ||
		len(rep.Prices) != 3 || rep.Prices[1].Amount != "50.00" || rep.Prices[2].Amount != "6.97" {
		t.Errorf("usage report:\n%s", out)
	}
}
