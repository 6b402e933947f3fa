package config

import (
	"strings"
	"testing"
)

const gnocchiBase = `pipeline:
  scheduled: [subscription_feeding, finalizing]
  interim: [subscription_feeding]
`

func TestGnocchiSectionDefaultsAndErrors(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(gnocchiBase+`openstack:
  gnocchi_url: http://127.0.0.1:8041
  username: admin
gnocchi:
  enabled: true
  meters:
    - {metric: network.outgoing.bytes, resource_type: instance_network_interface, aggregation: rate, convert: bytes_to_gb}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Gnocchi.Meters[0]
	if m.Name != "network.outgoing.bytes" || m.Method != "max" || m.Unit != "GB" || m.Rule != "meter" || m.Granularity.Hours() != 1 {
		t.Errorf("meter defaults = %+v", m)
	}
	if mode, _ := c.OpenStack.Mode(); mode != AuthBasic {
		t.Errorf("mode = %s, want basic", mode)
	}
	if sp, ok := c.Gnocchi.Span("instance"); !ok || sp.Source != SourceStore || sp.Attributes["flavor"] != "flavor_name" {
		t.Errorf("default span = %+v", sp)
	}
	// A volume's size is a metric in Gnocchi, not an attribute.
	if sp, ok := c.Gnocchi.Span("volume"); !ok || sp.AttributesFromMetrics["size"] != "volume.size" || sp.MetricsGranularity.Hours() != 1 ||
		sp.MetricsMethod != "mean" {
		t.Errorf("default volume span = %+v", sp)
	}

	_, err = Parse("bad.yaml", []byte(gnocchiBase+`openstack:
  auth: basic
  gnocchi_url: "http://user:pw@host:8041"
gnocchi:
  meters:
    - {metric: a, resource_type: instance, aggregation: median, convert: furlongs}
    - {name: a, metric: b, resource_type: instance, factor: "-1", granularity: 1500ms}
    - {metric: c, convert: bytes_to_gb, factor: "2", rule: hashmap}
    - {metric: d, resource_type: instance, rule: os.nova.server}
  spans:
    - {resource_type: instance, billed_as: os.nova.server, source: ceilometer}
    - resource_type: volume
      billed_as: os.cinder.volume
      source: gnocchi
      attributes: {volume_type: volume_type}
      attributes_from_metrics: {size: "", volume_type: volume.type}
      metrics_granularity: 90ms
`))
	if err == nil {
		t.Fatal("bad section accepted")
	}
	for _, want := range []string{
		"openstack.gnocchi_url: put credentials in openstack.username",
		"openstack.username: required with auth basic",
		`gnocchi.meters[0].aggregation: "median"`,
		`gnocchi.meters[0].convert: "furlongs"`,
		`gnocchi.meters[1].name: "a" is already the name of gnocchi.meters[0]`,
		`gnocchi.meters[1].factor: "-1"`,
		"gnocchi.meters[1].granularity",
		"gnocchi.meters[2].resource_type: required",
		"gnocchi.meters[2]: set convert or factor, not both",
		`gnocchi.spans[0].source: "ceilometer"`,
		// gnocchi.meters[].rule must be a rule type that prices meters.
		`gnocchi.meters[2].rule: "hashmap": no registered rule type prices a meter (meter rule types: meter)`,
		`gnocchi.meters[3].rule: "os.nova.server": no registered rule type prices a meter`,
		"gnocchi.spans[1].attributes_from_metrics.size: required: the Gnocchi metric name",
		`gnocchi.spans[1].attributes_from_metrics.volume_type: "volume_type" is also in attributes`,
		"gnocchi.spans[1].metrics_granularity: 90ms: want whole seconds",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("error echoes the URL's password: %v", err)
	}
}
