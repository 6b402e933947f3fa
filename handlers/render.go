package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/invoice/render"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"gopkg.in/yaml.v3"
)

// RenderConfig is the render handler's configuration.
type RenderConfig struct {
	// Formats to write: csv, pdf, xlsx. Defaults to [csv]. PDF and XLSX take their issuer
	// block, payment terms and locales from the documents section.
	Formats []string `yaml:"formats"`
	// Dir is the output folder, created when missing. Defaults to var/invoices.
	Dir string `yaml:"dir"`
	// Filename is the file name template (see render.FileName). Defaults to
	// {customer}-{start}-{end}-{number}.{ext}. The invoice number is always part of the name:
	// a template without {number} gets "-{number}" before its extension (render.FileTemplate);
	// a template without {ext} is refused when several formats are written.
	Filename string `yaml:"filename"`
	// CSV configures the CSV documents.
	CSV struct {
		Columns   []string `yaml:"columns"`
		Delimiter string   `yaml:"delimiter"`
	} `yaml:"csv"`
}

// Render writes each finished invoice's documents. Files are written to a temporary name and
// then linked into place without replacing anything, so a reader never sees half a document and
// no document is ever overwritten.
//
// # One file, one invoice
//
// File names are unique by construction: the invoice number is always part of the name (see
// render.FileTemplate). As a second line of defence, every document has an owner record,
// OwnersDir/NAME holding the number of the invoice it belongs to, created (atomically, with a
// hard link that fails when the record exists) before the document is written. A path whose
// record names another invoice — in this run, an earlier one, or another process sharing the
// folder — or that holds a file with no record which is not this invoice's document byte for
// byte, fails the customer with a CollisionError before any of its documents is written. Such a
// customer is not emailed; a rerun finds the same record and fails it again, until an operator
// changes the template or moves the file away.
//
// A run that stopped after storing invoices but before writing their documents is completed by
// the next run: for a customer already invoiced for the period whose document is missing, the
// stored invoice is rendered again (the same stored invoice renders the same bytes). A document
// already there whose record names the invoice is left as it is.
type Render struct {
	invoices  store.Invoices
	dir       string
	filename  string
	loc       *time.Location
	renderers []render.Renderer
}

// OwnersDir is the hidden folder, inside the output folder, of the documents' owner records.
const OwnersDir = ".bilean-owners"

var _ pipeline.Handler = (*Render)(nil)

func init() {
	pipeline.RegisterIn("render", []string{pipeline.ScheduledChain}, func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
		var c RenderConfig
		if err := pipeline.DecodeNode(node, &c); err != nil {
			return nil, err
		}
		if len(c.Formats) == 0 {
			c.Formats = []string{"csv"}
		}
		if c.Dir == "" {
			c.Dir = "var/invoices"
		}
		if env.OutputDir != "" {
			c.Dir = env.OutputDir
		}
		loc := env.Config.Location()
		var docs config.Documents
		if env.Config != nil {
			docs = env.Config.Documents
		}
		reg, err := RenderersFor(c, docs, loc)
		if err != nil {
			return nil, err
		}
		h := &Render{invoices: env.Store, dir: c.Dir, loc: loc}
		var exts []string
		for _, f := range c.Formats {
			r, err := reg.Lookup(f)
			if err != nil {
				return nil, fmt.Errorf("formats: %w", err)
			}
			h.renderers = append(h.renderers, r)
			exts = append(exts, r.Extension())
		}
		if h.filename, err = render.FileTemplate(c.Filename, exts...); err != nil {
			return nil, fmt.Errorf("filename: %w", err)
		}
		return h, nil
	})
}

// Renderers builds the renderers a render configuration describes, with PDF and XLSX documents
// that have no issuer block (see RenderersFor).
func Renderers(c RenderConfig) (*render.Registry, error) {
	var docs config.Documents
	return RenderersFor(c, docs, time.UTC)
}

// RenderersFor builds the renderers of a render configuration: CSV from its csv block, PDF and
// XLSX from the documents section, with dates in the billing timezone loc.
func RenderersFor(c RenderConfig, docs config.Documents, loc *time.Location) (*render.Registry, error) {
	opts := render.CSVOptions{Columns: c.CSV.Columns, Timezone: time.UTC}
	if c.CSV.Delimiter != "" {
		rs := []rune(c.CSV.Delimiter)
		if len(rs) != 1 {
			return nil, fmt.Errorf("csv.delimiter %q: want one character", c.CSV.Delimiter)
		}
		opts.Delimiter = rs[0]
	}
	csv, err := render.NewCSV(opts)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	do, err := documentOptions(docs)
	if err != nil {
		return nil, err
	}
	do.Timezone = loc
	pdf, err := render.NewPDF(do)
	if err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	xlsx, err := render.NewXLSX(do)
	if err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	return render.NewRegistry(csv, pdf, xlsx)
}

// Handle writes the documents of the batch's finished invoices, and the missing documents of
// invoices an earlier run stored.
func (h *Render) Handle(ctx context.Context, b *pipeline.Batch) error {
	if err := os.MkdirAll(filepath.Join(h.dir, OwnersDir), 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	for _, it := range b.Items {
		switch {
		case it.Active() && it.Invoice != nil:
			if err := h.write(it, it.Invoice, false); err != nil {
				return err
			}
		case it.Invoiced != "" && it.Err == nil && b.Run.Mode == pipeline.Scheduled:
			// Only the fields file names use: the invoice itself is loaded if a file is missing.
			head := &invoice.Invoice{Number: it.Invoiced, CustomerID: it.CustomerID, CustomerName: it.Customer.Name, Period: b.Run.Period}
			if !h.missing(head) {
				continue
			}
			inv, err := h.invoices.GetInvoice(ctx, it.Invoiced)
			if err != nil {
				return fmt.Errorf("render missing documents of %s: %w", it.Invoiced, err)
			}
			if err := h.write(it, inv, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// missing reports whether any document of the invoice is absent from the output folder, or is
// not recorded as the invoice's own.
func (h *Render) missing(inv *invoice.Invoice) bool {
	for _, r := range h.renderers {
		name, err := render.FileName(h.filename, inv, r.Extension(), h.loc)
		if err != nil {
			return true // write reports it
		}
		if o, err := h.owner(name); err != nil || o != inv.Number {
			return true
		}
		if _, err := os.Lstat(filepath.Join(h.dir, name)); err != nil {
			return true
		}
	}
	return false
}

// owner returns the invoice number the owner record of the document name holds, "" when there
// is none.
func (h *Render) owner(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(h.dir, OwnersDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// claim creates the owner record of the document name for the invoice number, unless there is
// one; it returns the number the record holds afterwards.
func (h *Render) claim(name, number string) (string, error) {
	ok, err := createNew(filepath.Join(h.dir, OwnersDir, name), []byte(number+"\n"))
	if err != nil || ok {
		return number, err
	}
	return h.owner(name)
}

// document is one file of an invoice about to be written.
type document struct {
	name, path string
	data       []byte
	claim      bool // the owner record is to be created
	write      bool // the file is to be written
}

// CollisionError says that a document of an invoice would be written to a path that belongs to
// another invoice, or holds a file that is not the invoice's document.
type CollisionError struct {
	Path string
	// Invoice and Customer are the invoice being rendered; Other is the invoice the path's owner
	// record names, empty when the path holds a file with no record.
	Invoice, Customer, Other string
}

func (e *CollisionError) Error() string {
	if e.Other != "" {
		return fmt.Sprintf("render %s (customer %s): %s is the document of %s: two invoices get one file name; "+
			"nothing written, no document overwritten: make the render step's filename tell them apart (e.g. end it in -{number}.{ext})",
			e.Invoice, e.Customer, e.Path, e.Other)
	}
	return fmt.Sprintf("render %s (customer %s): %s already exists and is not this invoice's document; "+
		"nothing written, no document overwritten: move it away and run again", e.Invoice, e.Customer, e.Path)
}

// write renders every format of inv; with onlyMissing it leaves alone the documents that are
// there and recorded as the invoice's. Every check — names, owner records, files already in the
// folder — is made before the first record or file is written; a failed check fails the item.
func (h *Render) write(it *pipeline.Item, inv *invoice.Invoice, onlyMissing bool) error {
	docs := make([]document, 0, len(h.renderers))
	for _, r := range h.renderers {
		name, err := render.FileName(h.filename, inv, r.Extension(), h.loc)
		if err != nil {
			it.Err = fmt.Errorf("render %s for %s: %w", r.Format(), it.CustomerID, err)
			return nil
		}
		docs = append(docs, document{name: name, path: filepath.Join(h.dir, name), write: true})
	}
	collision := func(d document, other string) error {
		it.Err = &CollisionError{Path: d.path, Invoice: inv.Number, Customer: inv.CustomerID, Other: other}
		return nil
	}
	for i := range docs {
		d := &docs[i]
		o, err := h.owner(d.name)
		if err != nil {
			return fmt.Errorf("render %s: owner record: %w", d.path, err)
		}
		if o != "" && o != inv.Number {
			return collision(*d, o)
		}
		d.claim = o == ""
		_, err = os.Lstat(d.path)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("render %s: %w", d.path, err)
		}
		if exists && !d.claim {
			d.write = false // recorded as this invoice's: left as it is
			continue
		}
		if d.data, err = h.render(h.renderers[i], inv); err != nil {
			return fmt.Errorf("render %s: %w", d.path, err)
		}
		if exists {
			// No record (a file put there, or a folder from before owner records): it is
			// this invoice's only if it holds exactly this invoice's document.
			same, err := sameFile(d.path, d.data)
			if err != nil {
				return fmt.Errorf("render %s: %w", d.path, err)
			}
			if !same {
				return collision(*d, "")
			}
			d.write = false
		}
	}
	for _, d := range docs {
		if d.claim {
			o, err := h.claim(d.name, inv.Number)
			if err != nil {
				return fmt.Errorf("render %s: owner record: %w", d.path, err)
			}
			if o != inv.Number {
				return collision(d, o) // claimed by another invoice since the check above
			}
		}
		if !d.write {
			if !onlyMissing {
				it.Files = append(it.Files, d.path)
			}
			continue
		}
		same, err := createNew(d.path, d.data)
		if err != nil {
			return fmt.Errorf("render %s: %w", d.path, err)
		}
		if !same {
			return collision(d, "") // a file appeared since the check above, and was left alone
		}
		it.Files = append(it.Files, d.path)
	}
	return nil
}

// render renders one document of inv in memory.
func (h *Render) render(r render.Renderer, inv *invoice.Invoice) ([]byte, error) {
	var buf bytes.Buffer
	if err := r.Render(&buf, inv); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// createNew writes data to path through a temporary file in the same folder, then links it into
// place, which fails rather than replace a file that appeared meanwhile. It reports whether path
// holds data afterwards: false means another file was there, and was left as it is.
func createNew(path string, data []byte) (bool, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	err = os.Link(tmp, path)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		// No hard links here (some network or FUSE file systems): rename, which replaces, so
		// look first; the window between the two is what such a file system allows.
		if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
			return sameFile(path, data)
		}
		return true, os.Rename(tmp, path)
	}
	return sameFile(path, data)
}

// sameFile reports whether the file at path holds data.
func sameFile(path string, data []byte) (bool, error) {
	existing, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return bytes.Equal(existing, data), nil
}

// documentOptions turns the documents settings into the renderers' options, reading the logo.
func documentOptions(s config.Documents) (render.DocumentOptions, error) {
	logo, err := s.LogoImage()
	if err != nil {
		return render.DocumentOptions{}, fmt.Errorf("documents.issuer.logo: %w", err)
	}
	is := s.Issuer
	o := render.DocumentOptions{
		Issuer: render.Issuer{Name: is.Name, Address: is.Address, TaxID: is.TaxID, Registration: is.Registration,
			Email: is.Email, Phone: is.Phone, Website: is.Website, Logo: logo,
			Bank: render.Bank{Name: is.Bank.Name, Holder: is.Bank.Holder, IBAN: is.Bank.IBAN, BIC: is.Bank.BIC, Account: is.Bank.Account}},
		DueDays: s.DueDays,
		Locale:  s.Locale,
		Terms:   s.Terms,
	}
	if s.DueOnReceipt {
		o.DueDays = -1
	}
	if len(s.Customers) > 0 {
		o.Customers = make(map[string]render.CustomerDetails, len(s.Customers))
		for id, c := range s.Customers {
			o.Customers[id] = render.CustomerDetails{Locale: c.Locale, Address: c.Address, TaxID: c.TaxID, Reference: c.Reference}
		}
	}
	return o, nil
}
