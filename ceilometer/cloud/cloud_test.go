package cloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bilean/bilean/ceilometer/cloud"
	"github.com/bilean/bilean/config"
)

// keystone is a fake Keystone v3 (Keystone cannot run here): it checks the credentials and
// answers a token whose catalog has a metric endpoint per region and interface.
type keystone struct {
	srv  *httptest.Server
	mu   sync.Mutex
	auth []map[string]any // identity sections received
}

func newKeystone(t *testing.T) *keystone {
	k := &keystone{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/auth/tokens" {
			http.NotFound(w, r)
			return
		}
		var body struct {
			Auth struct {
				Identity map[string]any `json:"identity"`
			} `json:"auth"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		k.mu.Lock()
		k.auth = append(k.auth, body.Auth.Identity)
		k.mu.Unlock()
		b, _ := json.Marshal(body.Auth.Identity)
		if !strings.Contains(string(b), `"secret"`) && !strings.Contains(string(b), `"s3cret"`) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error": {"code": 401, "message": "The request you have made requires authentication."}}`))
			return
		}
		var eps []map[string]string
		for _, region := range []string{"RegionOne", "RegionTwo"} {
			for _, iface := range []string{"public", "internal"} {
				eps = append(eps, map[string]string{"id": region + iface, "interface": iface, "region": region, "region_id": region,
					"url": fmt.Sprintf("http://gnocchi-%s-%s.example:8041", strings.ToLower(region), iface)})
			}
		}
		w.Header().Set("X-Subject-Token", "tok")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
			"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"catalog":    []any{map[string]any{"type": "metric", "name": "gnocchi", "id": "m", "endpoints": eps}},
		}})
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func TestCloudsYAMLPasswordRegionInterface(t *testing.T) {
	k := newKeystone(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "clouds.yaml")
	yaml := fmt.Sprintf(`clouds:
  billing:
    auth:
      auth_url: %s/v3
      username: bilean
      password: s3cret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
`, k.srv.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		region, iface string
		want          string
	}{
		{"", "", "http://gnocchi-regionone-public.example:8041/v1/"},
		{"RegionTwo", "internal", "http://gnocchi-regiontwo-internal.example:8041/v1/"},
	}
	for _, tc := range tests {
		c, err := cloud.Connect(context.Background(), config.OpenStack{Cloud: "billing", CloudsFile: file, Region: tc.region,
			Interface: tc.iface, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if c.Mode != config.AuthClouds || !c.Keystone() {
			t.Errorf("mode = %s", c.Mode)
		}
		sc, err := c.Metric()
		if err != nil {
			t.Fatal(err)
		}
		if sc.ResourceBaseURL() != tc.want {
			t.Errorf("region %q interface %q: metric endpoint %s, want %s", tc.region, tc.iface, sc.ResourceBaseURL(), tc.want)
		}
	}
	k.mu.Lock()
	first, _ := json.Marshal(k.auth[0])
	k.mu.Unlock()
	if !strings.Contains(string(first), `"password"`) || !strings.Contains(string(first), `"bilean"`) {
		t.Errorf("password auth not sent: %s", first)
	}

	// A wrong password fails at Connect, naming what to check and never echoing the password.
	bad := strings.Replace(yaml, "s3cret", "wrong-pass", 1)
	_ = os.WriteFile(file, []byte(bad), 0o600)
	_, err := cloud.Connect(context.Background(), config.OpenStack{Cloud: "billing", CloudsFile: file, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "clouds.yaml") || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("wrong password: %v", err)
	}
	// An unknown region says which settings to check.
	_ = os.WriteFile(file, []byte(yaml), 0o600)
	c, err := cloud.Connect(context.Background(), config.OpenStack{Cloud: "billing", CloudsFile: file, Region: "Mars", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Metric(); err == nil || !strings.Contains(err.Error(), "openstack.region") {
		t.Errorf("unknown region: %v", err)
	}
}

func TestEnvApplicationCredential(t *testing.T) {
	k := newKeystone(t)
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", k.srv.URL+"/v3")
	t.Setenv("OS_APPLICATION_CREDENTIAL_ID", "appcred-1")
	t.Setenv("OS_APPLICATION_CREDENTIAL_SECRET", "secret")
	t.Setenv("OS_REGION_NAME", "RegionTwo")
	t.Setenv("OS_INTERFACE", "internal")
	c, err := cloud.Connect(context.Background(), config.OpenStack{Auth: config.AuthAuto, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != config.AuthEnv {
		t.Errorf("mode = %s, want env", c.Mode)
	}
	sc, err := c.Metric()
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://gnocchi-regiontwo-internal.example:8041/v1/"; sc.ResourceBaseURL() != want {
		t.Errorf("endpoint = %s, want %s", sc.ResourceBaseURL(), want)
	}
	k.mu.Lock()
	got, _ := json.Marshal(k.auth[len(k.auth)-1])
	k.mu.Unlock()
	if !strings.Contains(string(got), `"application_credential"`) || !strings.Contains(string(got), `"appcred-1"`) {
		t.Errorf("application credential not sent: %s", got)
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	o := config.OpenStack{Auth: config.AuthBasic, GnocchiURL: "http://g:8041", Username: "admin", Password: "hunter2"}
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%v %+v %#v %s", o, o, o, o), o.LogValue().String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
}
