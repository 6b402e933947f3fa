// Package cloud connects Bilean to an OpenStack cloud the way the openstack CLI does: a
// clouds.yaml entry or OS_* environment variables, password or application-credential auth
// against Keystone through gophercloud v2, with the region and interface applied to every
// endpoint taken from the catalog. For a standalone Gnocchi (no Keystone) it builds the same
// gophercloud clients against a direct URL with HTTP basic auth or none.
//
// Every request is bounded by the configured timeout; credentials never reach a log line.
package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	osconfig "github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// MetricType is the catalog service type of Gnocchi.
const MetricType = "metric"

// Cloud is an authenticated connection. Provider carries the Keystone token (renewed when it
// expires) and Endpoint the region and interface; build any service client from them, e.g.
// openstack.NewComputeV2(c.Provider, c.Endpoint).
type Cloud struct {
	Provider *gophercloud.ProviderClient
	Endpoint gophercloud.EndpointOpts
	// Mode is the resolved auth mode: clouds, env, basic or none.
	Mode string
	// gnocchiURL is the standalone Gnocchi or the override of the catalog's metric endpoint.
	gnocchiURL string
}

// Keystone reports whether the connection holds a Keystone token and catalog.
func (c *Cloud) Keystone() bool { return c.Mode == config.AuthClouds || c.Mode == config.AuthEnv }

// Connect authenticates as the configuration says. With Keystone it obtains a token (so a wrong
// password fails here, naming the setting to check); a standalone Gnocchi is not contacted.
func Connect(ctx context.Context, cfg config.OpenStack) (*Cloud, error) {
	mode, err := cfg.Mode()
	if err != nil {
		return nil, err
	}
	c := &Cloud{Mode: mode, gnocchiURL: normalize(cfg.GnocchiURL)}
	switch mode {
	case config.AuthBasic, config.AuthNone:
		pc := &gophercloud.ProviderClient{}
		pc.UseTokenLock()
		pc.HTTPClient = *httpClient(cfg, nil)
		if mode == config.AuthBasic {
			pc.HTTPClient.Transport = &basicAuth{user: cfg.Username, password: cfg.Password, next: pc.HTTPClient.Transport}
		}
		c.Provider = pc
		return c, nil
	case config.AuthClouds, config.AuthEnv:
	default:
		return nil, fmt.Errorf("openstack.auth %q: want auto, clouds, env, basic or none", mode)
	}

	var (
		ao     gophercloud.AuthOptions
		tlsCfg *tls.Config
		where  string
	)
	if mode == config.AuthClouds {
		var opts []clouds.ParseOption
		if cfg.Cloud != "" {
			opts = append(opts, clouds.WithCloudName(cfg.Cloud))
		}
		if cfg.CloudsFile != "" {
			opts = append(opts, clouds.WithLocations(cfg.CloudsFile))
		}
		if cfg.Region != "" {
			opts = append(opts, clouds.WithRegion(cfg.Region))
		}
		if cfg.Interface != "" {
			opts = append(opts, clouds.WithEndpointType(cfg.Interface))
		}
		if cfg.Insecure {
			opts = append(opts, clouds.WithInsecure(true))
		}
		var eo gophercloud.EndpointOpts
		ao, eo, tlsCfg, err = clouds.Parse(opts...)
		if err != nil {
			return nil, fmt.Errorf("openstack.cloud %q (clouds.yaml): %w", cfg.Cloud, err)
		}
		c.Endpoint = eo
		where = fmt.Sprintf("the credentials of cloud %q in clouds.yaml (openstack.cloud, openstack.clouds_file)", firstOf(cfg.Cloud, "$OS_CLOUD"))
	} else {
		ao, err = openstack.AuthOptionsFromEnv()
		if err != nil {
			return nil, fmt.Errorf("openstack auth env: %w (set OS_AUTH_URL and OS_USERNAME/OS_PASSWORD or OS_APPLICATION_CREDENTIAL_ID/OS_APPLICATION_CREDENTIAL_SECRET)", err)
		}
		c.Endpoint = gophercloud.EndpointOpts{
			Region:       firstOf(cfg.Region, getenv("OS_REGION_NAME")),
			Availability: availability(firstOf(cfg.Interface, getenv("OS_INTERFACE"))),
		}
		if cfg.Insecure {
			tlsCfg = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for in config
		}
		where = "the OS_* variables (OS_AUTH_URL, OS_USERNAME/OS_PASSWORD or OS_APPLICATION_CREDENTIAL_*)"
	}
	if ao.IdentityEndpoint == "" {
		return nil, fmt.Errorf("openstack: no Keystone URL: set auth_url in %s", where)
	}
	// Long runs outlive a token: let gophercloud authenticate again on a 401.
	ao.AllowReauth = true
	hc := httpClient(cfg, tlsCfg)
	pc, err := osconfig.NewProviderClient(ctx, ao, osconfig.WithHTTPClient(*hc))
	if err != nil {
		return nil, fmt.Errorf("openstack: authenticate at %s: %w (check %s)", ao.IdentityEndpoint, redact(err), where)
	}
	c.Provider = pc
	return c, nil
}

// Metric returns a service client for Gnocchi's v1 API: the standalone URL, the override, or
// the catalog's "metric" endpoint in the configured region and interface.
func (c *Cloud) Metric() (*gophercloud.ServiceClient, error) {
	endpoint := c.gnocchiURL
	if endpoint == "" {
		if !c.Keystone() {
			return nil, errors.New("openstack.gnocchi_url is required without Keystone")
		}
		eo := c.Endpoint
		eo.ApplyDefaults(MetricType)
		u, err := c.Provider.EndpointLocator(eo)
		if err != nil {
			return nil, fmt.Errorf("find the %q endpoint in the catalog (region %q, interface %q): %w; check openstack.region and openstack.interface, or set openstack.gnocchi_url",
				MetricType, eo.Region, eo.Availability, err)
		}
		endpoint = normalize(u)
	}
	sc := &gophercloud.ServiceClient{ProviderClient: c.Provider, Endpoint: endpoint, Type: MetricType}
	sc.ResourceBase = endpoint + "v1/"
	if strings.HasSuffix(endpoint, "/v1/") {
		sc.ResourceBase = endpoint
	}
	return sc, nil
}

// httpClient bounds every request by the configured timeout.
func httpClient(cfg config.OpenStack, tlsCfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = cfg.Timeout
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	} else if cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for in config
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// basicAuth adds HTTP basic credentials to every request of a standalone Gnocchi.
type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b *basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

func availability(iface string) gophercloud.Availability {
	switch strings.TrimSuffix(iface, "URL") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

func normalize(u string) string {
	if u == "" {
		return ""
	}
	return gophercloud.NormalizeURL(u)
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// redact keeps gophercloud's error but drops a response body that might echo a request.
func redact(err error) error {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return fmt.Errorf("Keystone answered %d %s", ue.Actual, http.StatusText(ue.Actual))
	}
	return err
}

func getenv(k string) string { return os.Getenv(k) }
