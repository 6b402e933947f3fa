package handlers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// {customer}-{start}-{end}.{ext}.
	Filename string `yaml:"filename"`
	// CSV configures the CSV documents.
	CSV struct {
		Columns   []string `yaml:"columns"`
		Delimiter string   `yaml:"delimiter"`
	} `yaml:"csv"`
}

// Render writes each finished invoice's documents. Files are written to a temporary name and
// renamed, so a reader never sees half a document.
//
// A run that stopped after storing invoices but before writing their documents is completed by
// the next run: for a customer already invoiced for the period whose document is missing, the
// stored invoice is rendered again.
type Render struct {
	invoices  store.Invoices
	dir       string
	filename  string
	loc       *time.Location
	renderers []render.Renderer
}

var _ pipeline.Handler = (*Render)(nil)

func init() {
	pipeline.Register("render", func(env pipeline.Env, node *yaml.Node) (pipeline.Handler, error) {
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
		h := &Render{invoices: env.Store, dir: c.Dir, filename: c.Filename, loc: loc}
		for _, f := range c.Formats {
			r, err := reg.Lookup(f)
			if err != nil {
				return nil, fmt.Errorf("formats: %w", err)
			}
			h.renderers = append(h.renderers, r)
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
	do, err := docs.Options()
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
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
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

// missing reports whether any document of the invoice is absent from the output folder.
func (h *Render) missing(inv *invoice.Invoice) bool {
	for _, r := range h.renderers {
		name, err := render.FileName(h.filename, inv, r.Extension(), h.loc)
		if err != nil {
			return false
		}
		if _, err := os.Stat(filepath.Join(h.dir, name)); errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// write renders every format of inv; with onlyMissing it leaves existing files alone.
func (h *Render) write(it *pipeline.Item, inv *invoice.Invoice, onlyMissing bool) error {
	for _, r := range h.renderers {
		name, err := render.FileName(h.filename, inv, r.Extension(), h.loc)
		if err != nil {
			it.Err = fmt.Errorf("render %s for %s: %w", r.Format(), it.CustomerID, err)
			return nil
		}
		path := filepath.Join(h.dir, name)
		if onlyMissing {
			if _, err := os.Stat(path); err == nil {
				continue
			}
		}
		if err := writeAtomic(path, func(f *os.File) error { return r.Render(f, inv) }); err != nil {
			return fmt.Errorf("render %s: %w", path, err)
		}
		it.Files = append(it.Files, path)
	}
	return nil
}

// writeAtomic writes a file through a temporary name in the same folder and renames it.
func writeAtomic(path string, write func(*os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
