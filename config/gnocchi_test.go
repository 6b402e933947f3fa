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

	_, err = Parse("bad.yaml", []byte(gnocchiBase+`openstack:
  auth: basic
  gnocchi_url: "http://user:pw@host:8041"
gnocchi:
  meters:
    - {metric: a, resource_type: instance, aggregation: median, convert: furlongs}
    - {name: a, metric: b, resource_type: instance, factor: "-1", granularity: 1500ms}
    - {metric: c, convert: bytes_to_gb, factor: "2"}
  spans:
    - {resource_type: instance, billed_as: os.nova.server, source: ceilometer}
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
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("error echoes the URL's password: %v", err)
	}
}
