package gnocchi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/cloud"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/ceilometer/gnocchi/gnocchitest"
	"github.com/bilean/bilean/config"
)

// TestErrorsNameTheSettingToCheck: errors from the real Gnocchi carry its cause and a hint.
func TestErrorsNameTheSettingToCheck(t *testing.T) {
	ctx := context.Background()
	gn := gnocchitest.Client(t, gnocchi.Options{Retries: -1})
	_, err := gn.Measures(ctx, gnocchitest.UUID(), gnocchi.MeasuresOpts{})
	if !gnocchi.IsStatus(err, http.StatusNotFound) || !strings.Contains(err.Error(), "openstack.gnocchi_url") {
		t.Errorf("unknown metric: %v", err)
	}
	_, err = gn.AggregatesOf(ctx, gnocchi.AggregatesOpts{Operations: "(metric (vcpus mean))", ResourceType: "no_such_type"})
	if !gnocchi.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "Resource type does not exist") ||
		!strings.Contains(err.Error(), "resource_type of gnocchi.meters") {
		t.Errorf("unknown resource type: %v", err)
	}
	// Gnocchi's "Metrics not found" is an error the caller tells apart (usage.Source.Check
	// decides whether it means "no usage" or "misspelled metric"), never an empty answer here.
	_, err = gn.AggregatesOf(ctx, gnocchi.AggregatesOpts{Operations: "(metric (no.such.metric mean))", ResourceType: "instance",
		Search: map[string]any{"=": map[string]any{"project_id": "nobody-" + gnocchitest.UUID()}}})
	if !gnocchi.IsNoSuchMetric(err) {
		t.Errorf("no metrics: %v, want Metrics not found", err)
	}

	// A user without the admin role (Gnocchi's basic mode: the user name is the identity).
	cfg := gnocchitest.Config(gnocchitest.URL())
	cfg.Username = "not-admin"
	c, err := cloud.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.Metric()
	bob := gnocchi.New(sc, gnocchi.Options{Retries: -1})
	err = bob.CreateResourceType(ctx, "bilean_forbidden_"+gnocchitest.UUID()[:8], map[string]gnocchi.AttributeType{})
	if !gnocchi.IsStatus(err, http.StatusForbidden) || !strings.Contains(err.Error(), "admin role") {
		t.Errorf("non-admin: %v", err)
	}
}

// TestRetriesThenGivesUp: a 5xx is retried with backoff, a 4xx is not; 401 says which
// credentials to check. An httptest server stands in for a Keystone-protected Gnocchi, which
// cannot run here.
func TestRetriesThenGivesUp(t *testing.T) {
	var calls atomic.Int64
	status := atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if s := status.Load(); s != 0 {
			w.WriteHeader(int(s))
			_, _ = w.Write([]byte(`{"code": 401, "title": "Unauthorized", "description": "The request you have made requires authentication."}`))
			return
		}
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"storage": {}}`))
	}))
	defer srv.Close()
	c, err := cloud.Connect(context.Background(), config.OpenStack{Auth: config.AuthNone, GnocchiURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.Metric()
	gn := gnocchi.New(sc, gnocchi.Options{Retries: 3, Backoff: time.Millisecond})
	if err := gn.Status(context.Background()); err != nil {
		t.Fatalf("status after two 503s: %v", err)
	}
	if calls.Load() != 3 || gn.Requests() != 3 {
		t.Errorf("calls = %d, requests = %d, want 3", calls.Load(), gn.Requests())
	}
	status.Store(http.StatusUnauthorized)
	calls.Store(0)
	err = gn.Status(context.Background())
	if calls.Load() != 1 {
		t.Errorf("a 401 was sent %d times, want once", calls.Load())
	}
	if !gnocchi.IsStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "openstack.username and openstack.password") {
		t.Errorf("401: %v", err)
	}
	// Retries stop at the context's deadline.
	status.Store(http.StatusBadGateway)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	slow := gnocchi.New(sc, gnocchi.Options{Retries: 20, Backoff: 20 * time.Millisecond})
	start := time.Now()
	if err := slow.Status(ctx); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("retries past the deadline: %v after %s", err, time.Since(start))
	}
}
