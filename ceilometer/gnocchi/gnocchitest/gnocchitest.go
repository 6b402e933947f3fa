// Package gnocchitest connects tests to the real Gnocchi that .ci/gnocchi.sh starts and seeds it
// the way Ceilometer would: the resource types instance, volume and instance_network_interface
// with Ceilometer's attributes, and an hourly archive policy that keeps every aggregation
// method billing reads.
//
// Tests read BILEAN_TEST_GNOCCHI_URL (default http://127.0.0.1:8041) with basic auth "admin"
// and an empty password. When Gnocchi does not answer they skip, unless CI=true, where they fail.
package gnocchitest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/cloud"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/servicetest"
)

// Policy is the archive policy the seeded metrics use: 1h and 1d buckets for 400 days.
const Policy = "bilean-test"

// URL returns the Gnocchi the tests use.
func URL() string {
	if u := os.Getenv("BILEAN_TEST_GNOCCHI_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:8041"
}

// Config returns an openstack section for the test Gnocchi at url (basic auth, admin).
func Config(url string) config.OpenStack {
	c := config.OpenStack{Auth: config.AuthBasic, GnocchiURL: url, Username: "admin",
		Timeout: 60 * time.Second, Retries: 2, RetryWait: 50 * time.Millisecond}
	return c
}

// Client returns a client of the test Gnocchi with the types and policy in place, or skips the
// test (fails it with CI=true) when Gnocchi is down.
func Client(tb testing.TB, o gnocchi.Options) *gnocchi.Client {
	tb.Helper()
	return ClientAt(tb, URL(), o)
}

// ClientAt is Client for another URL (a proxy in front of the test Gnocchi).
func ClientAt(tb testing.TB, url string, o gnocchi.Options) *gnocchi.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cloud.Connect(ctx, Config(url))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	sc, err := c.Metric()
	if err != nil {
		tb.Fatalf("metric client: %v", err)
	}
	if o.Backoff == 0 {
		o.Backoff = 50 * time.Millisecond
	}
	gn := gnocchi.New(sc, o)
	probe := gnocchi.New(sc, gnocchi.Options{Retries: -1, Timeout: 5 * time.Second})
	servicetest.Require(tb, probe.Status(ctx), "Gnocchi at "+url, "run .ci/gnocchi.sh")
	if err := Prepare(ctx, gn); err != nil {
		tb.Fatalf("prepare Gnocchi: %v", err)
	}
	return gn
}

// Prepare creates the archive policy and Ceilometer's resource types when they are missing.
func Prepare(ctx context.Context, c *gnocchi.Client) error {
	err := c.CreateArchivePolicy(ctx, gnocchi.ArchivePolicy{
		Name: Policy,
		Definition: []gnocchi.ArchivePolicyDefinition{
			{Granularity: "1h", Timespan: "400 days"},
			{Granularity: "1d", Timespan: "400 days"},
		},
		AggregationMethods: []string{"mean", "sum", "max", "min", "last", "count"},
	})
	if err != nil {
		return err
	}
	str := gnocchi.AttributeType{Type: "string", MaxLength: 255}
	types := map[string]map[string]gnocchi.AttributeType{
		// Ceilometer's gnocchi_resources.yaml attributes.
		"instance": {"flavor_id": str, "flavor_name": str, "display_name": str, "host": str,
			"image_ref": str, "server_group": str},
		"volume":                     {"display_name": str, "volume_type": str, "volume_type_id": str},
		"instance_network_interface": {"name": str, "instance_id": {Type: "uuid"}},
	}
	for name, attrs := range types {
		if err := c.CreateResourceType(ctx, name, attrs); err != nil {
			return fmt.Errorf("resource type %s: %w", name, err)
		}
	}
	return nil
}

// UUID returns a random version-4 UUID.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// WaitProcessed waits until metricd has processed every posted measure.
func WaitProcessed(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := pending(url)
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("metricd did not process the measures within %s (pending %d, err %v)", timeout, n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func pending(url string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/status?details=false", nil)
	req.SetBasicAuth("admin", "")
	req.Header.Set("Accept", "application/json")
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	var v struct {
		Storage struct {
			Summary struct {
				Measures int `json:"measures"`
			} `json:"summary"`
		} `json:"storage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return -1, err
	}
	return v.Storage.Summary.Measures, nil
}
