// Package config loads etc/bilean.yaml: decoded strictly (unknown keys are errors naming their
// line), defaults applied in one place (WithDefaults), every problem reported at once (Validate).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // billing.timezone and customers' zones resolve even without the system's zoneinfo

	"github.com/bilean/bilean/invoice"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// Config is the whole of bilean.yaml.
type Config struct {
	// Path is the file the config was read from (empty for the built-in default).
	Path      string    `yaml:"-"`
	Database  Database  `yaml:"database"`
	Billing   Billing   `yaml:"billing"`
	Numbering Numbering `yaml:"numbering"`
	Pipeline  Pipeline  `yaml:"pipeline"`
	Log       Log       `yaml:"log"`
	// Documents configures the PDF and XLSX invoices (issuer block, locale): documents.go.
	Documents Documents `yaml:"documents"`
	// Mail configures invoice delivery by SMTP: mail.go.
	Mail Mail `yaml:"mail"`
	// Listener configures `bilean listen` (AMQP, event definitions, metrics): listener.go.
	Listener Listener `yaml:"listener"`
	// Balance configures prepaid balances, warnings and freezing: balance.go.
	Balance Balance `yaml:"balance"`
	// OpenStack says how to reach Keystone and the service catalog: openstack.go.
	OpenStack OpenStack `yaml:"openstack"`
	// Gnocchi configures usage read from Gnocchi/Ceilometer (meters, span sources): gnocchi.go.
	Gnocchi Gnocchi `yaml:"gnocchi"`
}

// section is a configuration block owned by its own file: it fills its defaults and reports its
// problems through add(fieldPath, err), with field paths relative to the whole file.
type section interface {
	defaults()
	validate(add func(field string, err error))
}

func (c *Config) sections() []section {
	return []section{&c.Documents, &c.Mail, &c.Listener, &c.Balance, &c.OpenStack, &c.Gnocchi}
}

// Database says where the store lives and how long PostgreSQL may wait for it.
type Database struct {
	// URL is "sqlite:PATH" for the embedded store, or postgres://…, postgresql://… or a
	// PostgreSQL keyword string (host=… dbname=…) for PostgreSQL. BILEAN_DATABASE_URL
	// overrides it. Defaults to sqlite:var/bilean.db. See ParseDatabaseURL.
	URL string `yaml:"url"`
	// LockTimeout bounds a PostgreSQL statement's wait for a lock (lock_timeout): a finalize
	// that waited that long is rolled back and retried, so a worker stuck while holding the
	// invoice-number counter cannot stall the others forever. 0 disables. Defaults to 10s.
	LockTimeout *time.Duration `yaml:"lock_timeout"`
	// IdleInTransactionSessionTimeout ends a PostgreSQL session that sat idle inside a
	// transaction that long (idle_in_transaction_session_timeout): the locks of a frozen
	// worker are released and its late commit fails. 0 disables. Defaults to 60s.
	IdleInTransactionSessionTimeout *time.Duration `yaml:"idle_in_transaction_session_timeout"`
	// StatementTimeout bounds one PostgreSQL statement (statement_timeout); migrations are
	// exempt. 0 disables. Defaults to 5m.
	StatementTimeout *time.Duration `yaml:"statement_timeout"`
	// TCPKeepAlive is the idle time before TCP keepalive probes, on Bilean's connections and
	// (tcp_keepalives_idle) on the server's end, so a vanished host's session is noticed.
	// 0 leaves the system defaults. Defaults to 30s.
	TCPKeepAlive *time.Duration `yaml:"tcp_keepalive"`
}

// Defaults of the database section's PostgreSQL settings.
const (
	DefaultLockTimeout                     = 10 * time.Second
	DefaultIdleInTransactionSessionTimeout = 60 * time.Second
	DefaultStatementTimeout                = 5 * time.Minute
	DefaultTCPKeepAlive                    = 30 * time.Second
)

func (d *Database) defaults() {
	if d.URL == "" {
		d.URL = "sqlite:var/bilean.db"
	}
	for _, f := range []struct {
		p   **time.Duration
		def time.Duration
	}{
		{&d.LockTimeout, DefaultLockTimeout},
		{&d.IdleInTransactionSessionTimeout, DefaultIdleInTransactionSessionTimeout},
		{&d.StatementTimeout, DefaultStatementTimeout},
		{&d.TCPKeepAlive, DefaultTCPKeepAlive},
	} {
		if *f.p == nil {
			v := f.def
			*f.p = &v
		}
	}
}

func (d *Database) validate(add func(field string, err error)) {
	if _, err := d.Driver(); err != nil {
		add("database.url", err)
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
	}{
		{"lock_timeout", d.LockTimeout},
		{"idle_in_transaction_session_timeout", d.IdleInTransactionSessionTimeout},
		{"statement_timeout", d.StatementTimeout},
		{"tcp_keepalive", d.TCPKeepAlive},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < 0 || (*f.v > 0 && *f.v < time.Millisecond) {
			add("database."+f.name, fmt.Errorf("%s: want 0 (off) or a duration of 1ms or more, e.g. 10s", *f.v))
		}
	}
}

// Timeouts returns lock_timeout, idle_in_transaction_session_timeout, statement_timeout and the
// TCP keepalive idle time, defaults applied (0 is off).
func (d Database) Timeouts() (lock, idleInTx, statement, keepAlive time.Duration) {
	get := func(p *time.Duration, def time.Duration) time.Duration {
		if p == nil {
			return def
		}
		return *p
	}
	return get(d.LockTimeout, DefaultLockTimeout), get(d.IdleInTransactionSessionTimeout, DefaultIdleInTransactionSessionTimeout),
		get(d.StatementTimeout, DefaultStatementTimeout), get(d.TCPKeepAlive, DefaultTCPKeepAlive)
}

// Billing holds the money and time rules.
type Billing struct {
	// Timezone of the billing periods (IANA name). Defaults to UTC.
	Timezone string `yaml:"timezone"`
	// Rounding applied once per line and to tax. Defaults to half_up, 2 decimals.
	Rounding invoice.Rounding `yaml:"rounding"`
	// DefaultPolicy prices usage no subscription covers. Optional.
	DefaultPolicy string `yaml:"default_policy"`
	// BackBillingMonths bounds how far before the period a scheduled invoice reaches for usage
	// and fees never billed: 0 (the default) is unlimited, so a customer's first invoice bills
	// every unbilled second since its billing start; N bills nothing that started before the
	// period start minus N calendar months.
	BackBillingMonths int `yaml:"back_billing_months"`
	// TaxRate applies to customers with no rate of their own, e.g. "0.20". Defaults to 0.
	TaxRate string `yaml:"tax_rate"`
	// TaxRegions maps a customer's region (billing.Customer.Region) to its tax rate, e.g.
	// {CH: "0.081", DE: "0.19"}. A customer's own non-zero rate wins; an exempt customer pays
	// none; a customer with neither a rate nor a listed region pays TaxRate. Optional.
	TaxRegions map[string]string `yaml:"tax_regions"`
	// CreditNoteFormat numbers credit notes in their own gapless series, with the same
	// placeholders as numbering.format ({year} is the year of issue in the billing timezone).
	// Defaults to CN-{year}-{seq:06}.
	CreditNoteFormat string `yaml:"credit_note_format"`
}

// Numbering formats invoice numbers.
type Numbering struct {
	// Format with {year} (of the period start, billing timezone) and {seq} or {seq:0N}; the series
	// is everything but {seq}, so numbers are gapless per year. Defaults to INV-{year}-{seq:06}.
	Format string `yaml:"format"`
}

// Pipeline configures the handler chains.
type Pipeline struct {
	// BatchSize is the number of customers per batch. Defaults to 500.
	BatchSize int `yaml:"batch_size"`
	// Workers is the number of batches processed at once. Defaults to 2.
	Workers int `yaml:"workers"`
	// MemoryLimit is the Go runtime's soft memory limit (e.g. 256MiB), applied unless the
	// GOMEMLIMIT environment variable is set: the garbage collector works harder near it rather
	// than growing the heap. "off" disables it. Defaults to 256MiB.
	MemoryLimit string `yaml:"memory_limit"`
	// Scheduled is the chain of the monthly run.
	Scheduled []Step `yaml:"scheduled"`
	// Interim is the chain of the on-demand run (no finalizing, no email).
	Interim []Step `yaml:"interim"`
}

// Step is one handler of a chain: a name, optionally with its own configuration node.
//
//   - subscription_feeding
//   - render: {formats: [csv], dir: var/invoices}
type Step struct {
	Name string
	Node *yaml.Node // nil when the step has no configuration
	Line int
}

// UnmarshalYAML reads a step written as a name or as a one-key mapping.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	s.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		s.Name = n.Value
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fmt.Errorf("line %d: a step is a handler name or a mapping with one key, the handler name", n.Line)
		}
		s.Name = n.Content[0].Value
		s.Node = n.Content[1]
	default:
		return fmt.Errorf("line %d: a step is a handler name or a mapping with one key, the handler name", n.Line)
	}
	if s.Name == "" {
		return fmt.Errorf("line %d: empty handler name", n.Line)
	}
	return nil
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string `yaml:"level"`
	// Format is text or json. Defaults to text.
	Format string `yaml:"format"`
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes config text strictly, applies defaults and the environment, and validates.
func Parse(name string, b []byte) (*Config, error) {
	c := &Config{Path: name}
	c.Billing.Rounding = invoice.DefaultRounding
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	c.WithDefaults()
	if u := os.Getenv("BILEAN_DATABASE_URL"); u != "" {
		c.Database.URL = u
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// WithDefaults fills every unset field with its documented default.
func (c *Config) WithDefaults() {
	c.Database.defaults()
	if c.Billing.Timezone == "" {
		c.Billing.Timezone = "UTC"
	}
	if c.Billing.Rounding.Mode == "" {
		// Set in Go without a mode: no scale means the cent too (YAML always has a mode here).
		if c.Billing.Rounding.Scale == 0 {
			c.Billing.Rounding.Scale = invoice.DefaultRounding.Scale
		}
		c.Billing.Rounding.Mode = invoice.DefaultRounding.Mode
	}
	if c.Billing.TaxRate == "" {
		c.Billing.TaxRate = "0"
	}
	if c.Billing.CreditNoteFormat == "" {
		c.Billing.CreditNoteFormat = "CN-{year}-{seq:06}"
	}
	if c.Numbering.Format == "" {
		c.Numbering.Format = "INV-{year}-{seq:06}"
	}
	if c.Pipeline.BatchSize == 0 {
		c.Pipeline.BatchSize = 500
	}
	if c.Pipeline.Workers == 0 {
		c.Pipeline.Workers = 2
	}
	if c.Pipeline.MemoryLimit == "" {
		c.Pipeline.MemoryLimit = "256MiB"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for _, s := range c.sections() {
		s.defaults()
	}
}

// Validate reports every problem, each prefixed with its field path.
func (c *Config) Validate() error {
	var errs []error
	add := func(field string, err error) { errs = append(errs, fmt.Errorf("%s: %w", field, err)) }
	if _, err := time.LoadLocation(c.Billing.Timezone); err != nil {
		add("billing.timezone", fmt.Errorf("unknown IANA zone %q", c.Billing.Timezone))
	}
	if c.Billing.BackBillingMonths < 0 {
		errs = append(errs, fmt.Errorf("billing.back_billing_months %d: want 0 (unlimited) or more", c.Billing.BackBillingMonths))
	}
	if err := c.Billing.Rounding.Validate(); err != nil {
		add("billing", err)
	}
	if r, err := decimal.Parse(c.Billing.TaxRate); err != nil || r.IsNeg() || r.Cmp(decimal.One) > 0 {
		add("billing.tax_rate", fmt.Errorf("%q: want a fraction from 0 to 1, e.g. \"0.20\"", c.Billing.TaxRate))
	}
	for _, region := range slices.Sorted(maps.Keys(c.Billing.TaxRegions)) {
		v := c.Billing.TaxRegions[region]
		if r, err := decimal.Parse(v); err != nil || r.IsNeg() || r.Cmp(decimal.One) > 0 {
			add("billing.tax_regions."+region, fmt.Errorf("%q: want a fraction from 0 to 1, e.g. \"0.20\"", v))
		}
		if region == "" {
			add("billing.tax_regions", errors.New("empty region name"))
		}
	}
	cnf, cnErr := ParseNumberFormat(c.Billing.CreditNoteFormat)
	if cnErr != nil {
		add("billing.credit_note_format", cnErr)
	}
	if nf, err := ParseNumberFormat(c.Numbering.Format); err != nil {
		add("numbering.format", err)
	} else if cnErr == nil && nf.Series(2026) == cnf.Series(2026) {
		add("billing.credit_note_format", fmt.Errorf("%q: must differ from numbering.format %q outside {seq}, so credit notes have a series of their own", c.Billing.CreditNoteFormat, c.Numbering.Format))
	}
	if c.Pipeline.BatchSize < 1 {
		add("pipeline.batch_size", fmt.Errorf("%d: want 1 or more", c.Pipeline.BatchSize))
	}
	if c.Pipeline.Workers < 1 || c.Pipeline.Workers > 64 {
		add("pipeline.workers", fmt.Errorf("%d: want 1 to 64", c.Pipeline.Workers))
	}
	if _, err := ParseBytes(c.Pipeline.MemoryLimit); err != nil {
		add("pipeline.memory_limit", err)
	}
	if len(c.Pipeline.Scheduled) == 0 {
		add("pipeline.scheduled", errors.New("no handlers: list at least subscription_feeding … finalizing"))
	}
	if len(c.Pipeline.Interim) == 0 {
		add("pipeline.interim", errors.New("no handlers"))
	}
	for i, s := range c.Pipeline.Interim {
		if s.Name == "finalizing" || s.Name == "email" {
			add(fmt.Sprintf("pipeline.interim[%d] (line %d)", i, s.Line), fmt.Errorf("%s must not run in an interim run: interim invoices are never stored or emailed", s.Name))
		}
	}
	if len(c.Pipeline.Scheduled) > 0 && !slices.ContainsFunc(c.Pipeline.Scheduled, func(s Step) bool { return s.Name == "finalizing" }) {
		add("pipeline.scheduled", errors.New("no finalizing handler: the invoices would not be stored"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Errorf("%q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", fmt.Errorf("%q: want text or json", c.Log.Format))
	}
	c.Database.validate(add)
	for _, s := range c.sections() {
		s.validate(add)
	}
	return errors.Join(errs...)
}

// Location returns the billing timezone.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Billing.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// DefaultTaxRate returns billing.tax_rate as a decimal.
func (c *Config) DefaultTaxRate() decimal.Decimal {
	d, err := decimal.Parse(c.Billing.TaxRate)
	if err != nil {
		return decimal.Zero
	}
	return d
}

// TaxRateFor returns the tax rate of a customer with the given own rate, exemption and region,
// and the region whose rate applied (empty when none did): exempt → 0; an own non-zero rate;
// the rate of the region in billing.tax_regions; else billing.tax_rate.
func (c *Config) TaxRateFor(own decimal.Decimal, exempt bool, region string) (decimal.Decimal, string) {
	switch {
	case exempt:
		return decimal.Zero, ""
	case !own.IsZero():
		return own, ""
	}
	if v, ok := c.Billing.TaxRegions[region]; ok && region != "" {
		if d, err := decimal.Parse(v); err == nil {
			return d, region
		}
	}
	return c.DefaultTaxRate(), ""
}

// CreditNoteNumbering returns the parsed credit-note format (validated by Validate).
func (c *Config) CreditNoteNumbering() (NumberFormat, error) {
	return ParseNumberFormat(c.Billing.CreditNoteFormat)
}

// Driver returns "sqlite" for the embedded store and "postgres" for PostgreSQL (see
// ParseDatabaseURL).
func (d Database) Driver() (string, error) {
	driver, _, err := ParseDatabaseURL(d.URL)
	return driver, err
}

// SQLitePath returns the file of an embedded-store URL, and false for any other URL.
func (d Database) SQLitePath() (string, bool) {
	driver, path, err := ParseDatabaseURL(d.URL)
	if err != nil || driver != "sqlite" {
		return "", false
	}
	return path, true
}

// Redacted returns the URL fit for a message or a log (see RedactDatabaseURL).
func (d Database) Redacted() string { return RedactDatabaseURL(d.URL) }

// NumberFormat turns a numbering format into a series key and a number formatter.
type NumberFormat struct {
	prefix, suffix string
	width          int
}

var seqRe = regexp.MustCompile(`\{seq(?::0(\d+))?\}`)

// ParseNumberFormat checks a format such as INV-{year}-{seq:06}.
func ParseNumberFormat(f string) (NumberFormat, error) {
	locs := seqRe.FindAllStringSubmatchIndex(f, -1)
	if len(locs) != 1 {
		return NumberFormat{}, fmt.Errorf("%q: want exactly one {seq} or {seq:0N}, e.g. INV-{year}-{seq:06}", f)
	}
	l := locs[0]
	nf := NumberFormat{prefix: f[:l[0]], suffix: f[l[1]:]}
	if l[2] >= 0 {
		nf.width, _ = strconv.Atoi(f[l[2]:l[3]])
	}
	rest := strings.ReplaceAll(nf.prefix+nf.suffix, "{year}", "")
	if strings.ContainsAny(rest, "{}") {
		return NumberFormat{}, fmt.Errorf("%q: only {year} and {seq} are known placeholders", f)
	}
	return nf, nil
}

// Series returns the series key for a period starting in year.
func (nf NumberFormat) Series(year int) string {
	y := strconv.Itoa(year)
	return strings.ReplaceAll(nf.prefix, "{year}", y) + "|" + strings.ReplaceAll(nf.suffix, "{year}", y)
}

// Format builds the invoice number for a series and sequence number.
func (nf NumberFormat) Format(series string, seq int64) string {
	pre, suf, _ := strings.Cut(series, "|")
	return fmt.Sprintf("%s%0*d%s", pre, nf.width, seq, suf)
}

// ParseBytes reads a size such as 256MiB, 1GiB, 512MB or 1048576; "off" is -1.
func ParseBytes(s string) (int64, error) {
	if s == "off" {
		return -1, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 256MiB or 1GiB, or off", s)
	}
	return n * mult, nil
}
