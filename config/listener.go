package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Listener configures bilean listen: AMQP connection, exchanges, queue, event definitions, metrics address.
type Listener struct {
	// URL of RabbitMQ; the password is never logged. Defaults to amqp://guest:guest@127.0.0.1:5672/.
	URL string `yaml:"url"`
	// Exchanges are the services' topic exchanges to bind to. Defaults to nova, openstack (Cinder's
	// default), cinder, neutron, glance and keystone.
	Exchanges []string `yaml:"exchanges"`
	// Durable must match how the cloud declares its exchanges (oslo.messaging's
	// amqp_durable_queues): a mismatch is refused by RabbitMQ with PRECONDITION_FAILED. Defaults
	// to false, OpenStack's default.
	Durable bool `yaml:"durable"`
	// Queue is Bilean's own durable queue; several listeners may consume it. Defaults to
	// bilean.notifications.
	Queue string `yaml:"queue"`
	// RoutingKeys bind the queue to each exchange. Defaults to notifications.info and
	// versioned_notifications.info.
	RoutingKeys []string `yaml:"routing_keys"`
	// Prefetch is the number of unacknowledged messages RabbitMQ sends ahead. Defaults to 2000.
	Prefetch int `yaml:"prefetch"`
	// BatchSize is the number of messages written per transaction and acknowledged with one
	// multiple-ack after its commit; at most prefetch/2 so one batch is read while the last is
	// written. Defaults to 1000.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long a partial batch waits for more messages before it is written.
	// Defaults to 200ms.
	BatchWait time.Duration `yaml:"batch_wait"`
	// Events is the event definitions file; empty uses the shipped etc/events.yaml.
	Events string `yaml:"events"`
	// MetricsAddress serves Prometheus metrics at /metrics; "off" disables. Defaults to
	// 127.0.0.1:9465.
	MetricsAddress string `yaml:"metrics_address"`
	// UnknownProjects says what happens to events of projects that are not customers yet.
	UnknownProjects UnknownProjects `yaml:"unknown_projects"`
	// MinEventTime is the earliest event time taken as real; an event before it is quarantined
	// (bad_field). Defaults to 2000-01-01T00:00:00Z.
	MinEventTime time.Time `yaml:"min_event_time"`
	// MaxEventAhead is how far past this host's clock an event time may be; later is
	// quarantined (bad_field). Defaults to 24h.
	MaxEventAhead time.Duration `yaml:"max_event_ahead"`
}

// UnknownProjects configures customers created from notifications.
type UnknownProjects struct {
	// Mode is create (the project becomes a customer on its first event or on
	// identity.project.created, with the currency and policy below) or quarantine (its events are
	// quarantined with reason unknown_project). Defaults to create.
	Mode string `yaml:"mode"`
	// Currency of created customers. Defaults to EUR.
	Currency string `yaml:"currency"`
	// Policy of created customers; empty leaves billing.default_policy in charge.
	Policy string `yaml:"policy"`
}

func (s *Listener) defaults() {
	if s.URL == "" {
		s.URL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if s.Exchanges == nil {
		s.Exchanges = []string{"nova", "openstack", "cinder", "neutron", "glance", "keystone"}
	}
	if s.Queue == "" {
		s.Queue = "bilean.notifications"
	}
	if s.RoutingKeys == nil {
		s.RoutingKeys = []string{"notifications.info", "versioned_notifications.info"}
	}
	if s.Prefetch == 0 {
		s.Prefetch = 2000
	}
	if s.BatchSize == 0 {
		s.BatchSize = min(1000, max(1, s.Prefetch/2))
	}
	if s.BatchWait == 0 {
		s.BatchWait = 200 * time.Millisecond
	}
	if s.MetricsAddress == "" {
		s.MetricsAddress = "127.0.0.1:9465"
	}
	if s.UnknownProjects.Mode == "" {
		s.UnknownProjects.Mode = "create"
	}
	if s.UnknownProjects.Currency == "" {
		s.UnknownProjects.Currency = "EUR"
	}
	if s.MinEventTime.IsZero() {
		s.MinEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if s.MaxEventAhead == 0 {
		s.MaxEventAhead = 24 * time.Hour
	}
}

func (s *Listener) validate(add func(field string, err error)) {
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		add("listener.url", errors.New("not a URL, want amqp://user:password@host:5672/vhost"))
	case u.Scheme != "amqp" && u.Scheme != "amqps":
		add("listener.url", fmt.Errorf("%s: scheme %q, want amqp or amqps", s.RedactedURL(), u.Scheme))
	}
	if len(s.Exchanges) == 0 {
		add("listener.exchanges", errors.New("none: list at least one, e.g. nova"))
	}
	for i, e := range s.Exchanges {
		if e == "" {
			add(fmt.Sprintf("listener.exchanges[%d]", i), errors.New("empty name"))
		}
	}
	if s.Queue == "" {
		add("listener.queue", errors.New("empty name"))
	}
	if len(s.RoutingKeys) == 0 {
		add("listener.routing_keys", errors.New("none: list at least notifications.info"))
	}
	if s.Prefetch < 1 || s.Prefetch > 65535 {
		add("listener.prefetch", fmt.Errorf("%d: want 1 to 65535", s.Prefetch))
	}
	if s.BatchSize < 1 || s.BatchSize > s.Prefetch {
		add("listener.batch_size", fmt.Errorf("%d: want 1 to prefetch (%d)", s.BatchSize, s.Prefetch))
	}
	if s.BatchWait <= 0 || s.BatchWait > time.Minute {
		add("listener.batch_wait", fmt.Errorf("%s: want a duration from 1ms to 1m, e.g. 200ms", s.BatchWait))
	}
	if s.MetricsAddress != "off" {
		if _, _, err := net.SplitHostPort(s.MetricsAddress); err != nil {
			add("listener.metrics_address", fmt.Errorf("%q: want host:port (e.g. 127.0.0.1:9465) or off", s.MetricsAddress))
		}
	}
	switch s.UnknownProjects.Mode {
	case "create", "quarantine":
	default:
		add("listener.unknown_projects.mode", fmt.Errorf("%q: want create or quarantine", s.UnknownProjects.Mode))
	}
	if s.MaxEventAhead < 0 {
		add("listener.max_event_ahead", fmt.Errorf("%s: want a positive duration, e.g. 24h", s.MaxEventAhead))
	}
	if c := s.UnknownProjects.Currency; len(c) != 3 {
		add("listener.unknown_projects.currency", fmt.Errorf("%q: want a 3-letter ISO 4217 code", c))
	}
}

// RedactedURL returns the URL with its password masked, for logs and errors.
func (s *Listener) RedactedURL() string {
	u, err := url.Parse(s.URL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
