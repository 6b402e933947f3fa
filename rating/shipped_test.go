package rating_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/importer"
	"github.com/bilean/bilean/rating"
)

// TestShippedPoliciesCompile reads every policy file under etc/policies as `bilean import
// policies` does, with the rules validated, and compiles them into one catalog.
func TestShippedPoliciesCompile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "etc", "policies", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no policy files: %v", err)
	}
	var all []billing.Policy
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := importer.Policies(path, f, rating.ValidateRuleNode)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ps...)
	}
	cat, err := rating.CompileCatalog(all)
	if err != nil {
		t.Fatal(err)
	}
	m := cat.Policies()["metered"]
	if m == nil {
		t.Fatal("no metered policy")
	}
	for _, typ := range []string{rating.ServerType, rating.VolumeType, rating.SnapshotType, rating.ImageType, rating.FloatingIPType, rating.RouterType} {
		if _, ok := m.Rule(typ); !ok {
			t.Errorf("metered prices no %s", typ)
		}
	}
	for _, meter := range []string{"network.outgoing.bytes", "instance.hours"} {
		if _, ok := m.MeterRule(meter); !ok {
			t.Errorf("metered prices no meter %s", meter)
		}
	}
	if q := m.Included("network.outgoing.bytes"); q.String() != "100" {
		t.Errorf("included traffic = %s", q)
	}
}

// TestPolicyFileErrorsNameTheFileLine checks that a bad rule spec in a policy file is reported at
// the line of the file where the bad field is, not at a line of the re-encoded spec.
func TestPolicyFileErrorsNameTheFileLine(t *testing.T) {
	doc := `# comment lines push the spec down the file
name: p
currency: EUR
rules:
  - type: os.neutron.floatingip
    spec:
      # the price below is negative
      price_per_hour: "-0.01"
`
	_, err := importer.Policies("p.yaml", strings.NewReader(doc), rating.ValidateRuleNode)
	if err == nil || !strings.Contains(err.Error(), "line 8:") {
		t.Fatalf("error %v: want it to name line 8 of p.yaml", err)
	}
}
