package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"
)

// OpenStack auth modes.
const (
	AuthAuto   = "auto"   // pick from what is set: see OpenStack.Mode
	AuthClouds = "clouds" // a clouds.yaml entry (like `openstack --os-cloud NAME`)
	AuthEnv    = "env"    // OS_* environment variables (like a sourced openrc)
	AuthBasic  = "basic"  // a standalone Gnocchi at gnocchi_url with HTTP basic auth
	AuthNone   = "none"   // a standalone Gnocchi at gnocchi_url without credentials
)

// OpenStack configures how Bilean authenticates to Keystone (clouds.yaml, OS_* environment) or
// reaches a standalone Gnocchi. The password is never logged (LogValue redacts it).
//
//	openstack:
//	  cloud: mycloud            # clouds.yaml entry; OS_CLOUD when empty
//	  region: RegionOne
//	  interface: internal
//
//	openstack:                  # a standalone Gnocchi, no Keystone
//	  gnocchi_url: http://127.0.0.1:8041
//	  username: admin
type OpenStack struct {
	// Auth is auto, clouds, env, basic or none. Defaults to auto: basic when gnocchi_url and
	// username are set, clouds when cloud (or OS_CLOUD) is set, env when OS_AUTH_URL is set, none
	// when only gnocchi_url is set.
	Auth string `yaml:"auth"`
	// Cloud is the entry of clouds.yaml to use. Defaults to OS_CLOUD.
	Cloud string `yaml:"cloud"`
	// CloudsFile is the clouds.yaml to read. Defaults to OS_CLIENT_CONFIG_FILE, then ./clouds.yaml,
	// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml (like the openstack CLI).
	CloudsFile string `yaml:"clouds_file"`
	// Region of the endpoints. Defaults to the cloud's region_name or OS_REGION_NAME.
	Region string `yaml:"region"`
	// Interface of the endpoints: public, internal or admin. Defaults to the cloud's interface,
	// OS_INTERFACE, then public.
	Interface string `yaml:"interface"`
	// GnocchiURL is a standalone Gnocchi (auth basic or none), or, with Keystone auth, overrides
	// the catalog's metric endpoint. E.g. http://127.0.0.1:8041.
	GnocchiURL string `yaml:"gnocchi_url"`
	// Username and Password are the basic-auth credentials of a standalone Gnocchi (Gnocchi's
	// basic mode takes the user name as the identity; "admin" has the admin role).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Timeout bounds one HTTP request (connect, send, read the whole answer). Defaults to 2m:
	// an aggregates call over a batch of projects can take seconds to minutes.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a request that failed with a 5xx, a timeout or a lost connection
	// is retried, with exponential backoff from RetryWait. Defaults to 3; -1 means none.
	Retries int `yaml:"retries"`
	// RetryWait is the first backoff; it doubles per attempt up to 30s. Defaults to 1s.
	RetryWait time.Duration `yaml:"retry_wait"`
	// Insecure skips TLS certificate checks (test clouds only). Defaults to false.
	Insecure bool `yaml:"insecure"`
}

func (s *OpenStack) defaults() {
	if s.Auth == "" {
		s.Auth = AuthAuto
	}
	if s.Timeout == 0 {
		s.Timeout = 2 * time.Minute
	}
	if s.Retries == 0 {
		s.Retries = 3
	}
	if s.RetryWait == 0 {
		s.RetryWait = time.Second
	}
}

func (s *OpenStack) validate(add func(field string, err error)) {
	switch s.Auth {
	case AuthAuto, AuthClouds, AuthEnv, AuthBasic, AuthNone:
	default:
		add("openstack.auth", fmt.Errorf("%q: want auto, clouds, env, basic or none", s.Auth))
	}
	switch s.Interface {
	case "", "public", "internal", "admin", "publicURL", "internalURL", "adminURL":
	default:
		add("openstack.interface", fmt.Errorf("%q: want public, internal or admin", s.Interface))
	}
	if s.GnocchiURL != "" {
		u, err := url.Parse(s.GnocchiURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add("openstack.gnocchi_url", fmt.Errorf("%q: want an http(s) URL such as http://127.0.0.1:8041", s.GnocchiURL))
		case u.User != nil:
			add("openstack.gnocchi_url", errors.New("put credentials in openstack.username and openstack.password, not in the URL"))
		}
	}
	if (s.Auth == AuthBasic || s.Auth == AuthNone) && s.GnocchiURL == "" {
		add("openstack.gnocchi_url", fmt.Errorf("required with auth %s (the standalone Gnocchi to read)", s.Auth))
	}
	if s.Auth == AuthBasic && s.Username == "" {
		add("openstack.username", errors.New("required with auth basic"))
	}
	if s.Timeout < 0 {
		add("openstack.timeout", fmt.Errorf("%s: want a positive duration such as 2m", s.Timeout))
	}
	if s.RetryWait < 0 {
		add("openstack.retry_wait", fmt.Errorf("%s: want a positive duration such as 1s", s.RetryWait))
	}
	if s.Retries < -1 || s.Retries > 20 {
		add("openstack.retries", fmt.Errorf("%d: want 1 to 20, or -1 for none", s.Retries))
	}
}

// RetryCount is the number of retries after a failed attempt (Retries, with -1 meaning 0).
func (s OpenStack) RetryCount() int { return max(s.Retries, 0) }

// Mode resolves auth "auto" against what is configured and the environment; other modes are
// returned as they are.
func (s OpenStack) Mode() (string, error) {
	if s.Auth != "" && s.Auth != AuthAuto {
		return s.Auth, nil
	}
	switch {
	case s.GnocchiURL != "" && s.Username != "":
		return AuthBasic, nil
	case s.Cloud != "" || os.Getenv("OS_CLOUD") != "":
		return AuthClouds, nil
	case os.Getenv("OS_AUTH_URL") != "":
		return AuthEnv, nil
	case s.GnocchiURL != "":
		return AuthNone, nil
	}
	return "", errors.New("no way to reach OpenStack: set openstack.cloud (a clouds.yaml entry) or OS_CLOUD, " +
		"source an openrc (OS_AUTH_URL…), or set openstack.gnocchi_url for a standalone Gnocchi")
}

// LogValue shows the section in logs with the password redacted.
func (s OpenStack) LogValue() slog.Value {
	pw := ""
	if s.Password != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("auth", s.Auth), slog.String("cloud", s.Cloud), slog.String("region", s.Region),
		slog.String("interface", s.Interface), slog.String("gnocchi_url", s.GnocchiURL),
		slog.String("username", s.Username), slog.String("password", pw),
		slog.Duration("timeout", s.Timeout), slog.Int("retries", s.Retries))
}

// String is LogValue for %v and %s: the password never appears.
func (s OpenStack) String() string { return s.LogValue().String() }

// GoString keeps %#v from printing the password either.
func (s OpenStack) GoString() string { return "config.OpenStack" + s.String() }
