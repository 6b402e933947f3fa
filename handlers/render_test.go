package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/invoice/render"
	"github.com/bilean/bilean/mailer/smtptest"
	"github.com/bilean/bilean/pipeline"
	"github.com/govalues/decimal"
	"gopkg.in/yaml.v3"
)

// customer is a customer of the flat policy with one billing contact.
func customer(id, name string) billing.Customer {
	return billing.Customer{ID: id, Name: name, Currency: "EUR", TaxRate: decimal.MustParse("0.20"), Status: billing.Active,
		Contacts: []string{"ap@" + id + ".example"}}
}

// The documented placeholder of the issue: customer names are not unique.
const byName = `formats: [csv, pdf], filename: "{customer_name}-{period}.{ext}",
  csv: {columns: [invoice, customer, customer_name, description, amount]}`

// outcomes indexes a run's outcomes by customer.
func outcomes(run *pipeline.Run) map[string]pipeline.Outcome {
	out := map[string]pipeline.Outcome{}
	for _, o := range run.Stats.Outcomes {
		out[o.CustomerID] = o
	}
	return out
}

// readFiles returns the contents of every document in dir (owner records aside), by name.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Name() == handlers.OwnersDir {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestRenderAndEmailKeepNamesakesApart: customers whose names are equal, or sanitise to the same
// file name text, each get their own documents, and each customer's email carries its own
// invoice, in this run and when a later run sends it.
func TestRenderAndEmailKeepNamesakesApart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		names  [2]string
		prefix string // what both file names start with
	}{
		{"one name", [2]string{"Acme Ltd", "Acme Ltd"}, "Acme_Ltd-2026-10-"},
		{"names that sanitise alike", [2]string{"=1+1", "1+1"}, "1_1-2026-10-"},
		{"path-like names", [2]string{"a/b", "a_b"}, "a_b-2026-10-"},
	} {
		for _, later := range []bool{false, true} {
			name := tc.name
			if later {
				name += ", sent by a later run"
			}
			t.Run(name, func(t *testing.T) {
				srv := smtptest.Start(t)
				if later {
					srv = smtptest.Down(t)
				}
				h := newMailHarnessWith(t, srv.Port, harnessOptions{render: byName,
					customers: []billing.Customer{customer("acme-one", tc.names[0]), customer("acme-two", tc.names[1])}})
				run := h.mustRun()
				if run.Stats.Invoices != 2 || run.Stats.Failed != 0 {
					t.Fatalf("run: %d invoices, %d failed: %+v", run.Stats.Invoices, run.Stats.Failed, run.Stats.Outcomes)
				}
				if later {
					srv.Up()
					h.mustRun()
				}
				out := outcomes(run)
				number := map[string]string{"acme-one": h.invoiceOf("acme-one"), "acme-two": h.invoiceOf("acme-two")}
				other := map[string]string{"acme-one": "acme-two", "acme-two": "acme-one"}
				msgs := byInvoice(t, srv.Messages())
				if len(msgs) != 2 {
					t.Fatalf("server received %d messages, want 2", len(srv.Messages()))
				}
				var paths []string
				for _, c := range []string{"acme-one", "acme-two"} {
					n, o := number[c], number[other[c]]
					files := out[c].Files
					if len(files) != 2 {
						t.Fatalf("%s: files %v, want csv and pdf", c, files)
					}
					paths = append(paths, files...)
					csvPath := files[0]
					if want := tc.prefix + n + ".csv"; filepath.Base(csvPath) != want {
						t.Errorf("%s: CSV written to %s, want %s", c, filepath.Base(csvPath), want)
					}
					onDisk, err := os.ReadFile(csvPath)
					if err != nil {
						t.Fatal(err)
					}
					// Its own invoice, every row: "INV-…,acme-one,…".
					if !strings.Contains(string(onDisk), n+","+c+",") || strings.Contains(string(onDisk), o) || strings.Contains(string(onDisk), other[c]) {
						t.Errorf("%s: %s holds another invoice:\n%s", c, csvPath, onDisk)
					}
					m, ok := msgs[n]
					if !ok {
						t.Fatalf("%s: no email for %s", c, n)
					}
					if want := []string{"ap@" + c + ".example", "ledger@acme.example"}; !reflect.DeepEqual(m.Rcpt, want) {
						t.Errorf("%s: %s sent to %v, want %v", c, n, m.Rcpt, want)
					}
					p := smtptest.Parse(t, m.Data)
					csvs, pdfs := p.PartsOf("text/csv"), p.PartsOf("application/pdf")
					if len(csvs) != 1 || len(pdfs) != 1 {
						t.Fatalf("%s: %d CSV and %d PDF attachments, want one each", c, len(csvs), len(pdfs))
					}
					att := csvs[0]
					if att.Filename != filepath.Base(csvPath) || !bytes.Equal(att.Body, onDisk) {
						t.Errorf("%s: attachment %s differs from its document %s", c, att.Filename, csvPath)
					}
					if !bytes.Contains(att.Body, []byte(n+","+c+",")) || bytes.Contains(att.Body, []byte(o)) || bytes.Contains(att.Body, []byte(other[c])) {
						t.Errorf("%s's email carries another invoice:\n%s", c, att.Body)
					}
					if pdf, err := os.ReadFile(files[1]); err != nil || pdfs[0].Filename != filepath.Base(files[1]) || !bytes.Equal(pdfs[0].Body, pdf) {
						t.Errorf("%s: PDF attachment %s differs from its document %s (%v)", c, pdfs[0].Filename, files[1], err)
					}
				}
				if slices.Sort(paths); len(slices.Compact(paths)) != 4 {
					t.Errorf("two invoices share a file: %v", paths)
				}
				// A rerun bills, writes and sends nothing, and fails no one.
				docs := readFiles(t, filepath.Join(h.dir, "invoices"))
				again := h.mustRun()
				if again.Stats.Invoices != 0 || again.Stats.Failed != 0 || len(srv.Messages()) != 2 {
					t.Errorf("rerun: %d invoices, %d failed, %d messages: %+v", again.Stats.Invoices, again.Stats.Failed, len(srv.Messages()), again.Stats.Outcomes)
				}
				if after := readFiles(t, filepath.Join(h.dir, "invoices")); !reflect.DeepEqual(after, docs) {
					t.Error("the rerun changed the documents")
				}
			})
		}
	}
}

func init() {
	// test_tamper replaces every document the render step wrote, as anyone with access to the
	// shared output folder could.
	pipeline.Register("test_tamper", func(pipeline.Env, *yaml.Node) (pipeline.Handler, error) {
		return pipeline.HandlerFunc(func(_ context.Context, b *pipeline.Batch) error {
			for _, it := range b.Items {
				for _, f := range it.Files {
					if err := os.WriteFile(f, []byte("tampered\n"), 0o644); err != nil {
						return err
					}
				}
			}
			return nil
		}), nil
	})
}

// TestEmailAttachesTheStoredInvoiceNotTheFolder: the email step renders its attachments from
// the stored invoice; what lies in the output folder does not reach the customer.
func TestEmailAttachesTheStoredInvoiceNotTheFolder(t *testing.T) {
	srv := smtptest.Start(t)
	h := newMailHarnessWith(t, srv.Port, harnessOptions{render: byName, afterRender: "test_tamper",
		customers: []billing.Customer{customer("acme-one", "Acme Ltd"), customer("acme-two", "Acme Ltd")}})
	run := h.mustRun()
	msgs := byInvoice(t, srv.Messages())
	for _, c := range []string{"acme-one", "acme-two"} {
		n := h.invoiceOf(c)
		files := outcomes(run)[c].Files
		if b, err := os.ReadFile(files[0]); err != nil || string(b) != "tampered\n" {
			t.Fatalf("%s was not tampered with (%v)", files[0], err)
		}
		csvs := smtptest.Parse(t, msgs[n].Data).PartsOf("text/csv")
		if len(csvs) != 1 || csvs[0].Filename != filepath.Base(files[0]) || !bytes.Contains(csvs[0].Body, []byte(n+","+c+",")) {
			t.Errorf("%s: attachment %+v, want %s rendered from the stored %s", c, csvs, filepath.Base(files[0]), n)
		}
	}
}

// TestRenderCollisionFailsTheCustomerAndOverwritesNothing: a path that belongs to another
// invoice, or holds a file that is not the invoice's document, fails the customer before any of
// its documents is written; nothing is overwritten, the customer is not emailed, and a rerun
// fails it again rather than take the file for its own.
func TestRenderCollisionFailsTheCustomerAndOverwritesNothing(t *testing.T) {
	// Eleven customers numbered 1…11 in order; c11's name ends where c01's number does.
	var eleven []billing.Customer
	for i := 1; i <= 11; i++ {
		eleven = append(eleven, customer(fmt.Sprintf("c%02d", i), "filler"))
	}
	eleven[0].Name, eleven[10].Name = "1x", "x"
	for _, tc := range []struct {
		name string
		o    harnessOptions
		// setup runs before the run that collides; it returns the colliding path.
		setup   func(t *testing.T, h *mailHarness) string
		victim  string // the customer that fails
		want    string // in its error
		holds   string // what the colliding path holds, before and after
		fixedBy func(t *testing.T, h *mailHarness, path string)
	}{
		{
			name: "a file put into the folder",
			o:    harnessOptions{render: byName, customers: []billing.Customer{customer("acme-one", "Acme Ltd")}},
			setup: func(t *testing.T, h *mailHarness) string {
				path := filepath.Join(h.dir, "invoices", "Acme_Ltd-2026-10-INV-2026-000001.csv")
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("someone else's invoice\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
			victim: "acme-one", want: "already exists and is not this invoice's document", holds: "someone else's invoice\n",
			fixedBy: func(t *testing.T, h *mailHarness, path string) {
				if err := os.Rename(path, path+".moved"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// {number}{customer_name} with unpadded numbers: "1"+"1x" and "11"+"x".
			name: "two invoices of one run",
			o: harnessOptions{render: `formats: [csv, pdf], filename: "{number}{customer_name}.{ext}", csv: {columns: [invoice, customer, amount]}`,
				numbering: "{seq}", customers: eleven},
			setup: func(t *testing.T, h *mailHarness) string {
				return filepath.Join(h.dir, "invoices", "11x.csv")
			},
			victim: "c11", want: "is the document of 1: two invoices get one file name", holds: "\n1,c01,",
		},
		{
			// The numbering format changed between two runs: "A+001" and "A_001" sanitise alike.
			name: "an invoice of an earlier run",
			o: harnessOptions{render: byName, numbering: "A+{seq:03}",
				customers: []billing.Customer{customer("acme-one", "Acme Ltd"), customer("acme-two", "Acme Ltd")}},
			setup: func(t *testing.T, h *mailHarness) string {
				if _, err := pipeline.Execute(context.Background(), h.env(), pipeline.Options{Mode: pipeline.Scheduled, Period: october,
					CustomerIDs: []string{"acme-one"}}); err != nil {
					t.Fatal(err)
				}
				h.cfg.Numbering.Format = "A_{seq:03}"
				return filepath.Join(h.dir, "invoices", "Acme_Ltd-2026-10-A_001.csv")
			},
			victim: "acme-two", want: "is the document of A+001", holds: "\nA+001,acme-one,",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			h := newMailHarnessWith(t, srv.Port, tc.o)
			path := tc.setup(t, h)
			dir := filepath.Join(h.dir, "invoices")
			before := readFiles(t, dir)
			for attempt := range 2 { // the run, then a rerun
				run := h.mustRun()
				o := outcomes(run)[tc.victim]
				if run.Stats.Failed != 1 || !strings.Contains(o.Err, tc.want) || !strings.Contains(o.Err, path) {
					t.Fatalf("run %d: %d failed; %s: %q, want an error with %q and %s", attempt, run.Stats.Failed, tc.victim, o.Err, tc.want, path)
				}
				if len(o.Files) != 0 {
					t.Errorf("run %d: %s wrote %v", attempt, tc.victim, o.Files)
				}
				after := readFiles(t, dir)
				for name, content := range before {
					if after[name] != content {
						t.Errorf("run %d: %s was overwritten", attempt, name)
					}
				}
				if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), tc.holds) {
					t.Errorf("run %d: %s holds %q (%v), want %q", attempt, path, b, err, tc.holds)
				}
				if _, ok := byInvoice(t, srv.Messages())[h.invoiceOf(tc.victim)]; ok {
					t.Errorf("run %d: %s was emailed", attempt, tc.victim)
				}
				before = after
			}
			if len(srv.Messages()) != len(tc.o.customers)-1 {
				t.Errorf("server holds %d messages, want every other customer's", len(srv.Messages()))
			}
			if tc.fixedBy == nil {
				return
			}
			// The operator moves the file away: the next run writes the document and sends it.
			tc.fixedBy(t, h, path)
			run := h.mustRun()
			n := h.invoiceOf(tc.victim)
			if run.Stats.Failed != 0 || len(outcomes(run)[tc.victim].Files) != 2 {
				t.Fatalf("after the fix: %+v", run.Stats.Outcomes)
			}
			if b, err := os.ReadFile(path); err != nil || !bytes.Contains(b, []byte(n+","+tc.victim+",")) {
				t.Errorf("after the fix %s holds %q (%v)", path, b, err)
			}
			if _, ok := byInvoice(t, srv.Messages())[n]; !ok {
				t.Errorf("after the fix %s was not emailed", n)
			}
		})
	}
}

// TestRenderAdoptsItsOwnDocumentsWithoutOwnerRecords: a folder whose owner records are gone (or
// that predates them) is taken over document by document when each file is byte for byte the
// invoice's own, and refused when it is not.
func TestRenderAdoptsItsOwnDocumentsWithoutOwnerRecords(t *testing.T) {
	srv := smtptest.Start(t)
	h := newMailHarnessWith(t, srv.Port, harnessOptions{render: byName,
		customers: []billing.Customer{customer("acme-one", "Acme Ltd"), customer("acme-two", "Acme Ltd")}})
	run := h.mustRun()
	dir := filepath.Join(h.dir, "invoices")
	docs := readFiles(t, dir)
	if err := os.RemoveAll(filepath.Join(dir, handlers.OwnersDir)); err != nil {
		t.Fatal(err)
	}
	two := outcomes(run)["acme-two"].Files[0]
	if err := os.WriteFile(two, []byte("not acme-two's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := h.mustRun()
	out := outcomes(again)
	if out["acme-one"].Err != "" || len(out["acme-one"].Files) != 0 {
		t.Errorf("acme-one's own documents were not adopted as they are: %+v", out["acme-one"])
	}
	if !strings.Contains(out["acme-two"].Err, two+" already exists and is not this invoice's document") {
		t.Errorf("acme-two: %q, want a collision on %s", out["acme-two"].Err, two)
	}
	docs[filepath.Base(two)] = "not acme-two's\n"
	if after := readFiles(t, dir); !reflect.DeepEqual(after, docs) {
		t.Error("a document was rewritten")
	}
	for _, f := range outcomes(run)["acme-one"].Files {
		b, err := os.ReadFile(filepath.Join(dir, handlers.OwnersDir, filepath.Base(f)))
		if want := h.invoiceOf("acme-one") + "\n"; err != nil || string(b) != want {
			t.Errorf("owner record of %s: %q (%v), want %q", f, b, err, want)
		}
	}
}

// TestRenderRefusesAFileNameTemplateAtStartUp: a template that would put an invoice's formats
// into one file, or that cannot make a safe name, stops start-up naming the file, the line and
// the field; one without {number} gets it.
func TestRenderRefusesAFileNameTemplateAtStartUp(t *testing.T) {
	for _, tc := range []struct{ render, want string }{
		{`formats: [csv, pdf], filename: "{customer_name}.csv"`, `has no {ext}: the csv, pdf documents of an invoice would all be written to one file`},
		{`formats: [csv], filename: "{customer}-{month}.{ext}"`, `unknown placeholder {month}`},
		{`formats: [csv], filename: "../{customer}.{ext}"`, `"../" has a path separator`},
	} {
		srv := smtptest.Start(t)
		h := newMailHarnessWith(t, srv.Port, harnessOptions{render: tc.render})
		_, err := h.run()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "email_test.yaml:") ||
			!strings.Contains(err.Error(), "render: filename: ") {
			t.Errorf("%s: run error %v, want email_test.yaml:LINE … render: filename: … %s", tc.render, err, tc.want)
		}
		if n, _ := h.st.Invoiced(context.Background(), []string{"p1", "p2"}, october); len(n) != 0 {
			t.Errorf("%s: invoices issued: %v", tc.render, n)
		}
	}
	// Without {number}, {customer}.csv of a single format is unique all the same.
	srv := smtptest.Start(t)
	h := newMailHarnessWith(t, srv.Port, harnessOptions{render: `formats: [csv], filename: "{customer}.csv"`})
	run := h.mustRun()
	for _, c := range []string{"p1", "p2"} {
		if got, want := outcomes(run)[c].Files, []string{filepath.Join(h.dir, "invoices", c+"-"+h.invoiceOf(c)+".csv")}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: files %v, want %v", c, got, want)
		}
	}
}

// config validates locales without importing the renderers: its list must be theirs.
func TestConfigLocalesAreTheRenderersLocales(t *testing.T) {
	if got, want := strings.Join(config.Locales, ","), strings.Join(render.LocaleTags(), ","); got != want {
		t.Fatalf("config.Locales = %s, the renderers have %s", got, want)
	}
	if config.DefaultLocale != render.DefaultLocale {
		t.Fatalf("config.DefaultLocale = %s, render.DefaultLocale = %s", config.DefaultLocale, render.DefaultLocale)
	}
}
