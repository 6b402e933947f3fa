package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bilean/bilean/billing"
	"github.com/govalues/decimal"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// parseAny parses path as kind (default: the kind its base name starts with).
func parseAny(kind, path string, r io.Reader) (any, error) {
	if kind == "" {
		kind = filepath.Base(path)
	}
	switch {
	case strings.HasPrefix(kind, "customers"):
		return Customers(path, r)
	case strings.HasPrefix(kind, "polic"):
		return Policies(path, r, nil)
	case strings.HasPrefix(kind, "subscriptions"):
		return Subscriptions(path, r)
	case strings.HasPrefix(kind, "payments"):
		return Payments(path, r)
	case strings.HasPrefix(kind, "usage"):
		return Usage(path, r)
	}
	return nil, fmt.Errorf("no parser for %s", path)
}

func TestCustomers(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []billing.Customer
	}{
		{"testdata/customers.csv", []billing.Customer{
			{ID: "p1", Name: "ACME, GmbH", Currency: "EUR", Contacts: []string{"billing@acme.example", "ops@acme.example"},
				TaxRate: dec("0.20"), Status: billing.Active, Policy: "standard"},
			{ID: "p2", Name: "Beta", Currency: "USD", TaxExempt: true},
		}},
		{"testdata/customers.yaml", []billing.Customer{
			{ID: "4f2a9c0e1b7d4e8f9a6b3c2d1e0f9a8b", Name: "ACME GmbH", Currency: "EUR", Timezone: "Europe/Berlin",
				Contacts: []string{"billing@acme.example", "Jane Doe <jane@acme.example>"},
				TaxRate:  dec("0.19"), Policy: "standard"},
			{ID: "p2", Name: "Beta Ltd", Currency: "GBP", Contacts: []string{"ops@beta.example"},
				TaxRate: dec("0"), TaxExempt: true, Status: billing.Frozen},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Customers(tc.file, open(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tc.want); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	var seen []billing.RuleSpec
	got, err := Policies("testdata/policies.yaml", open(t, "testdata/policies.yaml"), func(rs billing.RuleSpec, _ *yaml.Node) error {
		seen = append(seen, rs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(seen) != 3 {
		t.Fatalf("got %d policies, %d rules validated; want 2 and 3", len(got), len(seen))
	}
	std := got[0]
	if std.Name != "standard" || std.Currency != "EUR" || std.Fee.String() != "10.00" ||
		std.Description != "Pay as you go" || len(std.Rules) != 2 {
		t.Errorf("standard = %+v", std)
	}
	// The spec keeps the decimal text exactly as written.
	wantSpec := "unit: hour\nprices:\n    m1.small: 0.0250\n    m1.large: \"0.1000\"\n"
	if std.Rules[0].Type != "os.nova.server" || std.Rules[0].Spec != wantSpec {
		t.Errorf("rule 0 = %q, want %q", std.Rules[0].Spec, wantSpec)
	}
	// Aliases and merge keys are expanded; explicit keys win over merged ones.
	wantMerged := "unit: second\nprices:\n    m1.small: 0.0250\n    m1.large: \"0.1000\"\n"
	if prem := got[1]; !prem.Fee.IsZero() || len(prem.Rules) != 1 || prem.Rules[0].Spec != wantMerged {
		t.Errorf("premium = %+v, want spec %q", prem, wantMerged)
	}

	single, err := Policies("testdata/policy_single.yaml", open(t, "testdata/policy_single.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(single) != 1 || single[0].Name != "free" || single[0].Currency != "USD" {
		t.Errorf("single = %+v", single)
	}
}

func TestPoliciesValidateRule(t *testing.T) {
	doc := "name: p\ncurrency: EUR\nrules:\n  - type: os.nova.server\n    spec: {price: 1}\n  - type: os.unknown\n    spec: {price: 1}\n"
	_, err := Policies("p.yaml", strings.NewReader(doc), func(rs billing.RuleSpec, spec *yaml.Node) error {
		if rs.Type != "os.nova.server" {
			return errors.New("unknown rule type\nwant one of os.nova.server")
		}
		if spec == nil || spec.Line != 5 {
			return fmt.Errorf("spec node %+v: want the file's line 5", spec)
		}
		if rs.Spec != "price: 1\n" {
			return fmt.Errorf("spec %q", rs.Spec)
		}
		return nil
	})
	want := "p.yaml:6: rules[1] (os.unknown): unknown rule type; want one of os.nova.server"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestSubscriptions(t *testing.T) {
	want := "[{ID:0 CustomerID:p1 Policy:standard Start:2026-10-01 00:00:00 +0000 UTC End:2026-10-15 12:00:00 +0000 UTC} " +
		"{ID:0 CustomerID:p1 Policy:premium Start:2026-10-15 10:00:00 +0000 UTC End:0001-01-01 00:00:00 +0000 UTC}]"
	got, err := Subscriptions("testdata/subscriptions.yaml", open(t, "testdata/subscriptions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if g := fmt.Sprintf("%+v", got); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
	got, err = Subscriptions("testdata/subscriptions.csv", open(t, "testdata/subscriptions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[1].End.IsZero() || !got[2].Start.Equal(ts("2026-09-01T00:00:00Z")) {
		t.Errorf("got %+v", got)
	}
}

func TestPayments(t *testing.T) {
	got, err := Payments("testdata/payments.csv", open(t, "testdata/payments.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Amount.String() != "120.50" || got[0].Reference != "SEPA-0001" ||
		got[1].Currency != "GBP" || got[1].Amount.String() != "100" || !got[1].ReceivedAt.Equal(ts("2026-10-04T00:00:00Z")) {
		t.Errorf("got %+v", got)
	}
	y, err := Payments("testdata/payments.yaml", open(t, "testdata/payments.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(y) != fmt.Sprint(got[:1]) {
		t.Errorf("yaml %+v != csv %+v", y, got[:1])
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"testdata/usage.csv", []string{
			"p1 vm-1 os.nova.server [2026-10-01T00:00:00Z, 2026-10-03T08:15:41Z) map[flavor:m1.small region:RegionOne] import",
			"p1 vm-1 os.nova.server [2026-10-03T08:15:41Z, open) map[flavor:m1.large region:RegionOne] listener",
			"p1 vol-1 os.cinder.volume [2026-10-02T10:00:00Z, 2026-10-20T00:00:00Z) map[region:RegionOne size:100] import",
		}},
		{"testdata/usage.jsonl", []string{
			"p1 vm-1 os.nova.server [2026-10-01T00:00:00Z, 2026-10-03T08:15:41Z) map[flavor:m1.small region:RegionOne] import",
			"p1 vm-1 os.nova.server [2026-10-03T08:15:41Z, open) map[flavor:m1.large vcpus:4] import",
			// Numbers keep their decimal text.
			"p1 vol-1 os.cinder.volume [2026-10-02T10:00:00Z, open) map[gb:2.50 size:100] gnocchi",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Usage(tc.file, open(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range got {
				lines = append(lines, fmt.Sprintf("%s %s %s %s %v %s", r.CustomerID, r.ResourceID, r.ResourceType,
					r.Range(), r.Attributes, r.Source))
			}
			if g, w := strings.Join(lines, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestErrors checks the exact report, one problem per line, for bad inputs of every kind.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string // a testdata file, or a file name for inline content
		kind    string // for inline content
		content string
		want    []string
	}{
		{name: "testdata/usage_bad.csv", want: []string{
			// bad date
			`testdata/usage_bad.csv:2: end "2026-10-32T00:00:00Z": time has day out of range, want RFC 3339 such as 2026-10-03T08:15:41Z`,
			// missing required field; end before start
			`testdata/usage_bad.csv:3: customer_id: required`,
			`testdata/usage_bad.csv:3: end "2026-10-04T00:00:00Z": must be after start "2026-10-05T00:00:00Z"`,
			// overlapping spans of one resource
			`testdata/usage_bad.csv:5: start "2026-10-10T00:00:00Z": overlaps the span [2026-10-01T00:00:00Z, open) on line 4 of resource "vm-3" of customer "p1"`,
			`testdata/usage_bad.csv:7: resource_type "os.neutron.floatingip": resource "vm-4" of customer "p1" has type "os.nova.server" on line 6`,
			`testdata/usage_bad.csv:7: start "2026-10-01T00:00:00Z": same start as the span on line 6 of resource "vm-4" of customer "p1"`,
			`testdata/usage_bad.csv:8: start "yesterday": time not understood, want RFC 3339 such as 2026-10-03T08:15:41Z or a date YYYY-MM-DD`,
			`testdata/usage_bad.csv:9: row has 3 fields, the header has 6`,
		}},
		{name: "testdata/usage_bad_header.csv", want: []string{
			`testdata/usage_bad_header.csv:1: flavor: column given twice in the header (columns 5 and 6)`,
			`testdata/usage_bad_header.csv:1: customer_id: required column missing from the header`,
		}},
		{name: "testdata/usage_bad.jsonl", want: []string{
			`testdata/usage_bad.jsonl:1: colour: unknown key, want resource_id, resource_type, customer_id, start, end, source, attributes`,
			`testdata/usage_bad.jsonl:2: start: want a string, got 1696320000`,
			`testdata/usage_bad.jsonl:3: invalid JSON: invalid character 'o' in literal null (expecting 'u'); want one object per line`,
			`testdata/usage_bad.jsonl:4: attributes.gpu: want a string or a number, got true`,
			`testdata/usage_bad.jsonl:5: end "2026-10-01T00:00:00Z": must be after start "2026-10-02T00:00:00Z"`,
			`testdata/usage_bad.jsonl:5: attributes.flavor: required for os.nova.server (or flavor_id)`,
		}},
		{name: "testdata/customers_bad.csv", want: []string{
			// unknown column
			`testdata/customers_bad.csv:1: colour: unknown column, want id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start`,
			`testdata/customers_bad.csv:2: currency "EURO": want a 3-letter ISO 4217 code`,
			// duplicate id
			`testdata/customers_bad.csv:3: id "p1": duplicate, first on line 2`,
			`testdata/customers_bad.csv:4: id: required`,
		}},
		{name: "testdata/customers_bad.yaml", want: []string{
			// unknown YAML key
			`testdata/customers_bad.yaml:3: customers[0].nmae: unknown key, want id, name, currency, timezone, contacts, tax_rate, tax_exempt, status, policy, region, billing_start`,
			`testdata/customers_bad.yaml:5: customers[0].tax_rate 1.5: want a fraction from 0 to 1, e.g. 0.20`,
			`testdata/customers_bad.yaml:8: customers[1].timezone "Mars/Olympus": unknown IANA zone`,
			`testdata/customers_bad.yaml:9: customers[1].contacts "not-an-email": want an email address such as billing@example.com`,
			`testdata/customers_bad.yaml:10: customers[1].status "sleeping": want active, frozen or closed`,
		}},
		{name: "testdata/payments_bad.csv", want: []string{
			// negative amount
			`testdata/payments_bad.csv:2: amount "-12.50": want a positive amount such as 12.50`,
			`testdata/payments_bad.csv:3: amount "0": want a positive amount such as 12.50`,
			`testdata/payments_bad.csv:4: amount "abc": want a decimal number such as 12.50`,
			`testdata/payments_bad.csv:4: currency "EU": want a 3-letter ISO 4217 code such as EUR`,
			`testdata/payments_bad.csv:4: received_at "yesterday": time not understood, want RFC 3339 such as 2026-10-03T08:15:41Z or a date YYYY-MM-DD`,
			`testdata/payments_bad.csv:6: reference "r4": duplicate for customer "p1", first on line 5`,
			`testdata/payments_bad.csv:7: row has 3 fields, the header has 5`,
		}},
		{name: "testdata/policies_bad.yaml", want: []string{
			`testdata/policies_bad.yaml:3: policies[0].currency "EURO": want a 3-letter ISO 4217 code such as EUR`,
			`testdata/policies_bad.yaml:4: policies[0].fee "-5": must not be negative`,
			`testdata/policies_bad.yaml:5: policies[0].colour: unknown key, want name, version, effective_from, currency, description, fee, fee_interval, fee_timing, included, rules`,
			`testdata/policies_bad.yaml:10: policies[0].rules[1].type: required, e.g. os.nova.server`,
			`testdata/policies_bad.yaml:11: policies[1].name "standard": duplicate, first on line 2 (give each version its own effective_from)`,
		}},
		{name: "testdata/subscriptions_bad.csv", want: []string{
			`testdata/subscriptions_bad.csv:2: end "2026-10-01": must be after start "2026-10-15"`,
			`testdata/subscriptions_bad.csv:4: start "2026-10-05": overlaps the subscription of customer "p1" to policy "standard" on line 3 [2026-10-01T00:00:00Z, open)`,
			`testdata/subscriptions_bad.csv:5: customer_id: required`,
		}},
		{name: "subs.yaml", kind: "subscriptions", content: "subscriptions:\n  - customer: p1\n    customer_id: p1\n    policy: x\n    start: 2026-10-01\n    ends: 2026-11-01\n", want: []string{
			`subs.yaml:3: subscriptions[0].customer_id: same field as customer, give only one`,
			`subs.yaml:6: subscriptions[0].ends: unknown key, want customer_id, policy, start, end, customer`,
		}},
		{name: "p.yaml", kind: "policies", content: "name: x\nname: y\ncurrency: EUR\nrules: {type: a}\n", want: []string{
			`p.yaml:2: name: key given twice (first on line 1)`,
			`p.yaml:4: rules: want a list, got a mapping`,
		}},
		{name: "c.yaml", kind: "customers", content: "customers:\n  - id: [p1]\n    currency: EUR\n", want: []string{
			`c.yaml:2: customers[0].id: want a single value, got a list`,
			`c.yaml:2: customers[0].id: required`,
		}},
		{name: "c.yml", kind: "customers", content: "customers:\n  - id: p1\n   currency: EUR\n", want: []string{
			`c.yml:1: invalid YAML: did not find expected '-' indicator (in the block starting on this line; check the indentation below it)`,
		}},
		{name: "c.yaml", kind: "customers", content: "", want: []string{`c.yaml: empty file: want a YAML document`}},
		{name: "c.csv", kind: "customers", content: "", want: []string{`c.csv: empty file: want a header row`}},
		{name: "c.txt", kind: "customers", content: "id\n", want: []string{`c.txt: cannot tell the format from the extension ".txt": want .csv, .yaml or .yml`}},
		{name: "u.csv", kind: "usage", content: "resource_id,resource_type,customer_id,start,\n", want: []string{`u.csv:1: column 5: empty name in the header`}},
		{name: "u.csv", kind: "usage", content: "resource_id,resource_type,customer_id,start\nx,t,c,\"2026-10-01\n", want: []string{
			`u.csv:2: malformed CSV: extraneous or missing " in quoted-field`,
		}},
		{name: "u.ndjson", kind: "usage", content: `{"resource_id":"v","resource_type":"t","customer_id":"c","start":"2026-10-01","attributes":{"n":1e400}}`, want: []string{
			`u.ndjson:1: attributes.n 1e400: want a number of at most 19 digits`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.kind == "" {
				_, err = parseAny("", tc.name, open(t, tc.name))
			} else {
				_, err = parseAny(tc.kind, tc.name, strings.NewReader(tc.content))
			}
			if err == nil {
				t.Fatal("no error")
			}
			if g, w := err.Error(), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestErrorIsInspectable(t *testing.T) {
	_, err := Payments("pay.csv", strings.NewReader("customer_id,amount,currency,received_at\np1,-1,EUR,2026-10-01\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	if e.File != "pay.csv" || e.Line != 2 || e.Field != "amount" {
		t.Errorf("got %+v", e)
	}
}

func TestErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("customer_id,amount,currency,received_at\n")
	for i := 0; i < MaxErrors+20; i++ {
		b.WriteString("p1,-1,EUR,2026-10-01\n")
	}
	_, err := Payments("pay.csv", strings.NewReader(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxErrors+1 {
		t.Fatalf("got %d lines, want %d", len(lines), MaxErrors+1)
	}
	if want := "pay.csv: … and 20 more problems (first 50 shown)"; lines[MaxErrors] != want {
		t.Errorf("last line %q, want %q", lines[MaxErrors], want)
	}
}

func TestStreamUsage(t *testing.T) {
	var sizes []int
	err := StreamUsage("testdata/usage.csv", open(t, "testdata/usage.csv"), 2, func(rs []billing.Record) error {
		sizes = append(sizes, len(rs))
		return nil
	})
	if err != nil || fmt.Sprint(sizes) != "[2 1]" {
		t.Errorf("chunks %v, err %v; want [2 1]", sizes, err)
	}

	// A validation-only pass.
	if err := StreamUsage("testdata/usage.jsonl", open(t, "testdata/usage.jsonl"), 0, nil); err != nil {
		t.Error(err)
	}

	// No chunk is passed on once a problem is found, but earlier ones were: hence the dry pass.
	sizes = nil
	err = StreamUsage("testdata/usage_bad.csv", open(t, "testdata/usage_bad.csv"), 1, func(rs []billing.Record) error {
		sizes = append(sizes, len(rs))
		return nil
	})
	if err == nil || len(sizes) != 0 {
		t.Errorf("chunks %v, err %v; want none and an error", sizes, err)
	}
	csv := "resource_id,resource_type,customer_id,start\na,t,c,2026-10-01\nb,t,c,2026-10-01\nc,t,,2026-10-01\n"
	sizes = nil
	err = StreamUsage("u.csv", strings.NewReader(csv), 1, func(rs []billing.Record) error {
		sizes = append(sizes, len(rs))
		return nil
	})
	if err == nil || fmt.Sprint(sizes) != "[1 1]" {
		t.Errorf("chunks %v, err %v; want [1 1] and an error", sizes, err)
	}

	// An error from fn stops the parse.
	boom := errors.New("boom")
	err = StreamUsage("testdata/usage.csv", open(t, "testdata/usage.csv"), 1, func([]billing.Record) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want boom", err)
	}
}

// memStore records what ImportFile stores.
type memStore struct {
	customers []billing.Customer
	policies  []billing.Policy
	subs      []billing.Subscription
	payments  []billing.Payment
	records   [][]billing.Record
}

func (m *memStore) PutCustomers(_ context.Context, cs []billing.Customer) error {
	m.customers = append(m.customers, cs...)
	return nil
}
func (m *memStore) PutPolicies(_ context.Context, ps []billing.Policy) error {
	m.policies = append(m.policies, ps...)
	return nil
}
func (m *memStore) AddSubscriptions(_ context.Context, ss []billing.Subscription) ([]billing.Subscription, error) {
	m.subs = append(m.subs, ss...)
	return ss, nil
}
func (m *memStore) AddPayments(_ context.Context, ps []billing.Payment) error {
	m.payments = append(m.payments, ps...)
	return nil
}
func (m *memStore) AddRecords(_ context.Context, rs []billing.Record) error {
	m.records = append(m.records, append([]billing.Record(nil), rs...))
	return nil
}

func TestImportFile(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	for _, tc := range []struct {
		kind, file string
		chunk, n   int
	}{
		{"customers", "testdata/customers.yaml", 0, 2},
		{"policies", "testdata/policies.yaml", 0, 2},
		{"subscriptions", "testdata/subscriptions.csv", 0, 3},
		{"payments", "testdata/payments.csv", 0, 2},
		{"usage", "testdata/usage.csv", 0, 3},
		{"usage", "testdata/usage.jsonl", 2, 3},
	} {
		n, err := ImportFile(ctx, st, tc.kind, tc.file, Options{Chunk: tc.chunk})
		if err != nil || n != tc.n {
			t.Errorf("%s %s: n=%d err=%v, want %d", tc.kind, tc.file, n, err, tc.n)
		}
	}
	if len(st.customers) != 2 || len(st.policies) != 2 || len(st.subs) != 3 || len(st.payments) != 2 ||
		fmt.Sprint(len(st.records), len(st.records[0]), len(st.records[1]), len(st.records[2])) != "3 3 2 1" {
		t.Errorf("stored %+v", st)
	}

	// An invalid file stores nothing, in either mode.
	st = &memStore{}
	for _, chunk := range []int{0, 1} {
		if _, err := ImportFile(ctx, st, "usage", "testdata/usage_bad.csv", Options{Chunk: chunk}); err == nil {
			t.Error("no error")
		}
	}
	if _, err := ImportFile(ctx, st, "payments", "testdata/payments_bad.csv", Options{}); err == nil {
		t.Error("no error")
	}
	if len(st.records) != 0 || len(st.payments) != 0 {
		t.Errorf("stored from an invalid file: %+v", st)
	}
	if _, err := ImportFile(ctx, st, "invoices", "testdata/usage.csv", Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
}

func dec(s string) decimal.Decimal { return decimal.MustParse(s) }

// usageCSV returns n rows: n/4 resources of four consecutive spans each, the last one open.
func usageCSV(n int) []byte {
	var b strings.Builder
	b.WriteString("resource_id,resource_type,customer_id,start,end,flavor,region\n")
	base := ts("2026-10-01T00:00:00Z")
	for i := 0; i < n; i++ {
		res, k := i/4, i%4
		start := base.Add(time.Duration(k) * 6 * time.Hour)
		end := start.Add(6 * time.Hour).Format(time.RFC3339)
		if k == 3 {
			end = ""
		}
		fmt.Fprintf(&b, "vm-%08d,os.nova.server,project-%04d,%s,%s,m1.small,RegionOne\n",
			res, res%10000, start.Format(time.RFC3339), end)
	}
	return []byte(b.String())
}

func BenchmarkStreamUsage(b *testing.B) {
	data := usageCSV(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := StreamUsage("bench.csv", strings.NewReader(string(data)), 0, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// AddRecordStream hands each chunk to AddRecords (the fake has no transactions).
func (m *memStore) AddRecordStream(ctx context.Context, stream func(add func([]billing.Record) error) error) error {
	return stream(func(rs []billing.Record) error { return m.AddRecords(ctx, rs) })
}
