package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Documents configures the PDF and XLSX invoices: who issues them, payment terms and how amounts
// and dates are written per customer.
//
//	documents:
//	  issuer: {name: Nimbus Cloud GmbH, address: [Friedrichstraße 123, 10117 Berlin], tax_id: DE123456789,
//	           logo: etc/logo.png, email: billing@nimbus.example,
//	           bank: {name: Berliner Sparkasse, iban: DE89…, bic: COBADEFFXXX}}
//	  due_days: 14
//	  locale: en-GB
//	  customers:
//	    4f2a9c0e…: {locale: de-DE, address: [Hauptstraße 1, 80331 München], tax_id: DE987654321}
type Documents struct {
	Issuer DocumentIssuer `yaml:"issuer"`
	// DueDays is the payment term in days after the issue date. Defaults to 30.
	DueDays int `yaml:"due_days"`
	// DueOnReceipt makes the due date the issue date.
	DueOnReceipt bool `yaml:"due_on_receipt"`
	// Terms replaces the "Please pay … by …" sentence under the payment details.
	Terms string `yaml:"terms"`
	// Locale is the default locale: en-US, en-GB, de-DE, fr-FR or ja-JP. Defaults to en-GB.
	Locale string `yaml:"locale"`
	// Customers holds per-customer details by customer (Keystone project) id.
	Customers map[string]DocumentCustomer `yaml:"customers"`
}

// DocumentIssuer is the issuer block of the documents.
type DocumentIssuer struct {
	Name         string   `yaml:"name"`
	Address      []string `yaml:"address"`
	TaxID        string   `yaml:"tax_id"`
	Registration string   `yaml:"registration"`
	Email        string   `yaml:"email"`
	Phone        string   `yaml:"phone"`
	Website      string   `yaml:"website"`
	// Logo is the path of a PNG or JPEG image, relative to the working directory.
	Logo string       `yaml:"logo"`
	Bank DocumentBank `yaml:"bank"`
}

// DocumentBank holds the bank details printed for payment by transfer.
type DocumentBank struct {
	Name    string `yaml:"name"`
	Holder  string `yaml:"holder"`
	IBAN    string `yaml:"iban"`
	BIC     string `yaml:"bic"`
	Account string `yaml:"account"`
}

// DocumentCustomer holds what the documents print about one customer.
type DocumentCustomer struct {
	Locale    string   `yaml:"locale"`
	Address   []string `yaml:"address"`
	TaxID     string   `yaml:"tax_id"`
	Reference string   `yaml:"reference"`
}

// DefaultLocale is the documents' locale when none is configured.
const DefaultLocale = "en-GB"

// Locales are the locale tags the documents can be written in (invoice/render has one table per
// tag; a test there keeps this list equal to it), sorted.
var Locales = []string{"de-DE", "en-GB", "en-US", "fr-FR", "ja-JP"}

// checkLocale refuses a tag the documents cannot be written in.
func checkLocale(tag string) error {
	if !slices.Contains(Locales, tag) {
		return fmt.Errorf("locale %q: want one of %s", tag, strings.Join(Locales, ", "))
	}
	return nil
}

func (s *Documents) defaults() {
	if s.Locale == "" {
		s.Locale = DefaultLocale
	}
	if s.DueDays == 0 && !s.DueOnReceipt {
		s.DueDays = 30
	}
}

func (s *Documents) validate(add func(field string, err error)) {
	if err := checkLocale(s.Locale); err != nil {
		add("documents.locale", err)
	}
	if s.DueDays < 0 || s.DueDays > 365 {
		add("documents.due_days", fmt.Errorf("%d: want 0 to 365 days", s.DueDays))
	}
	if s.DueOnReceipt && s.DueDays != 0 {
		add("documents.due_on_receipt", fmt.Errorf("set together with due_days %d: choose one", s.DueDays))
	}
	ids := make([]string, 0, len(s.Customers))
	for id := range s.Customers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if l := s.Customers[id].Locale; l != "" {
			if err := checkLocale(l); err != nil {
				add("documents.customers."+id+".locale", err)
			}
		}
	}
	if s.Issuer.Logo != "" {
		if _, err := s.LogoImage(); err != nil {
			add("documents.issuer.logo", err)
		}
	}
}

// LogoImage reads the issuer's logo; nil when none is configured.
func (s *Documents) LogoImage() ([]byte, error) {
	if s.Issuer.Logo == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.Issuer.Logo)
	if err != nil {
		return nil, err
	}
	if !(strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") || strings.HasPrefix(string(b), "\xff\xd8\xff")) {
		return nil, fmt.Errorf("%s: want a PNG or JPEG image", s.Issuer.Logo)
	}
	return b, nil
}
