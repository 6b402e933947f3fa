package balance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// fakeOpenStack is an httptest server speaking just enough of Keystone v3 (a token with a
// service catalog), Nova, Cinder, Neutron and Glance for the balance jobs and reconciliation.
// It cannot run here for real, so it stands in; everything else in these tests is real.
type fakeOpenStack struct {
	srv *httptest.Server

	mu      sync.Mutex
	servers []map[string]any // Nova server bodies
	volumes []map[string]any
	fips    []map[string]any
	images  []map[string]any
	actions []string // "stop srv-1", "os-start srv-1"…, in call order
	queries []string // query strings of server listings
}

func newFakeOpenStack(t *testing.T) *fakeOpenStack {
	f := &fakeOpenStack{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		base := f.srv.URL
		ep := func(typ, url string) map[string]any {
			return map[string]any{"type": typ, "name": typ, "endpoints": []map[string]any{
				{"id": typ, "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url}}}
		}
		w.Header().Set("X-Subject-Token", "fake-token")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
			"expires_at": "2099-01-01T00:00:00.000000Z",
			"catalog": []any{
				ep("compute", base+"/compute/v2.1/"),
				ep("volumev3", base+"/volume/v3/admin/"),
				ep("network", base+"/network/"),
				ep("image", base+"/image/"),
			},
		}})
	})
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Auth-Token") != "fake-token" {
				http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	list := func(key string, items func() []map[string]any, filter string) http.HandlerFunc {
		return auth(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if key == "servers" {
				f.queries = append(f.queries, r.URL.RawQuery)
			}
			want := r.URL.Query().Get(filter)
			out := []map[string]any{}
			for _, it := range items() {
				if want == "" || it[projectKey(key)] == want {
					out = append(out, it)
				}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{key: out})
		})
	}
	mux.HandleFunc("GET /compute/v2.1/servers/detail", list("servers", func() []map[string]any { return f.servers }, "tenant_id"))
	mux.HandleFunc("POST /compute/v2.1/servers/{id}/action", auth(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		defer f.mu.Unlock()
		for k := range body {
			f.actions = append(f.actions, k+" "+r.PathValue("id"))
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("GET /volume/v3/admin/volumes/detail", list("volumes", func() []map[string]any { return f.volumes }, "project_id"))
	mux.HandleFunc("GET /network/v2.0/floatingips", list("floatingips", func() []map[string]any { return f.fips }, "project_id"))
	mux.HandleFunc("GET /image/v2/images", list("images", func() []map[string]any { return f.images }, "owner"))
	// Version discovery documents, as gophercloud reads them before the first call.
	for _, v := range []struct{ path, id string }{{"/network/", "v2.0"}, {"/image/", "v2.0"}} {
		mux.HandleFunc("GET "+v.path+"{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"versions": []map[string]any{{"id": v.id, "status": "CURRENT",
				"links": []map[string]any{{"rel": "self", "href": f.srv.URL + v.path + strings.Split(v.id, ".")[0] + "/"}}}}})
		})
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func projectKey(list string) string {
	switch list {
	case "servers":
		return "tenant_id"
	case "volumes":
		return "os-vol-tenant-attr:tenant_id"
	case "images":
		return "owner"
	}
	return "project_id"
}

// cloud authenticates against the fake Keystone and returns the gophercloud-backed Cloud.
func (f *fakeOpenStack) cloud(t *testing.T) *OpenStack {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: f.srv.URL + "/v3/", Username: "admin", Password: "secret", DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		t.Fatalf("authenticate against the fake Keystone: %v", err)
	}
	return NewOpenStack(pc, gophercloud.EndpointOpts{Region: "RegionOne", Availability: gophercloud.AvailabilityPublic})
}

func (f *fakeOpenStack) addServer(id, project, status, flavor, created string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = append(f.servers, map[string]any{"id": id, "name": "vm-" + id, "tenant_id": project, "status": status,
		"created": created, "flavor": map[string]any{"original_name": flavor}})
}

func (f *fakeOpenStack) setStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.servers {
		if s["id"] == id {
			s["status"] = status
		}
	}
}

func (f *fakeOpenStack) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

func (f *fakeOpenStack) count(prefix string) int {
	n := 0
	for _, a := range f.calls() {
		if strings.HasPrefix(a, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeOpenStack) String() string { return fmt.Sprint(f.calls()) }
