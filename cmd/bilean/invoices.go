package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) invoicesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "invoices", Short: "List, show, void and regenerate stored invoices"}
	cmd.AddCommand(a.invoicesListCmd(), a.invoicesShowCmd(), a.invoicesVoidCmd(), a.invoicesRegenerateCmd())
	return cmd
}

func (a *app) invoicesListCmd() *cobra.Command {
	var customer, period, status, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List invoices, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			f := store.InvoiceFilter{CustomerID: customer, Status: invoice.Status(status), Limit: limit}
			if period != "" {
				p, err := interval.Month(period, a.cfg.Location())
				if err != nil {
					return err
				}
				f.Period = &interval.Range{Start: p.Start, End: p.Start.Add(1)}
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			invs, err := st.ListInvoices(cmd.Context(), f)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(invs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NUMBER\tSTATUS\tCUSTOMER\tPERIOD\tTOTAL\tCURRENCY\tBALANCE DUE\tNOTE")
			for _, inv := range invs {
				var notes []string
				if inv.Replaces != "" {
					notes = append(notes, "replaces "+inv.Replaces)
				}
				if inv.CreditNote != "" {
					notes = append(notes, "cancelled by "+inv.CreditNote)
				}
				if inv.ReplacedBy != "" {
					notes = append(notes, "replaced by "+inv.ReplacedBy)
				}
				note := strings.Join(notes, ", ")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inv.Number, inv.Status, inv.CustomerID,
					interval.MonthName(inv.Period, a.cfg.Location()), inv.Total, inv.Currency, inv.BalanceDue, note)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&customer, "customer", "", "only this customer")
	cmd.Flags().StringVar(&period, "period", "", "only this month, YYYY-MM")
	cmd.Flags().StringVar(&status, "status", "", "only issued or void")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func (a *app) invoicesShowCmd() *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "show NUMBER",
		Short: "Show one invoice, or render it again as CSV, PDF or XLSX",
		Long: `Shows a stored invoice as a table or JSON, or renders its document again with the render step's
and the documents section's settings:

  bilean invoices show INV-2026-000001 --format pdf -o INV-2026-000001.pdf

The same invoice always renders to the same bytes (the documents' creation dates are the
invoice's issue date). PDF and XLSX need -o FILE unless stdout is redirected; "-o -" forces
stdout. For compatibility, -o table|json|csv without --format selects the format.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, output = showTarget(format, output)
			if err := checkOutput(format, "table", "json", "csv", "pdf", "xlsx"); err != nil {
				return fmt.Errorf("--format %q: want one of table, json, csv, pdf, xlsx", format)
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			inv, err := st.GetInvoice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.writeDocument(cmd, inv, format, output)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "table, json, csv, pdf or xlsx (default table)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout (\"-\" is stdout)")
	return cmd
}

// showTarget resolves the format and output file of `invoices show`: without --format, an -o
// of table, json or csv is the format, as before --format existed.
func showTarget(format, output string) (string, string) {
	if format == "" {
		switch output {
		case "table", "json", "csv":
			return output, ""
		}
		format = "table"
	}
	return format, output
}

// writeDocument writes inv in format to the file output ("" or "-" for stdout). A file is
// written through a temporary name, so it is whole or absent.
func (a *app) writeDocument(cmd *cobra.Command, inv *invoice.Invoice, format, output string) error {
	write := func(w io.Writer) error {
		switch format {
		case "pdf", "xlsx":
			return renderDocument(w, inv, format, a)
		}
		return writeInvoice(w, inv, format, a)
	}
	if output == "" || output == "-" {
		if (format == "pdf" || format == "xlsx") && output == "" {
			if f, ok := cmd.OutOrStdout().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return fmt.Errorf("--format %s writes binary data: give -o FILE (or -o - to force stdout)", format)
			}
		}
		return write(cmd.OutOrStdout())
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	dir := filepath.Dir(output)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(output)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", output, buf.Len())
	return nil
}

// renderDocument renders inv as PDF or XLSX with the render step of the scheduled chain and
// the documents section.
func renderDocument(w io.Writer, inv *invoice.Invoice, format string, a *app) error {
	var c handlers.RenderConfig
	if _, err := pipeline.StepConfig(a.cfg, "render", &c); err != nil {
		return err
	}
	reg, err := handlers.RenderersFor(c, a.cfg.Documents, a.cfg.Location())
	if err != nil {
		return err
	}
	r, err := reg.Lookup(format)
	if err != nil {
		return err
	}
	return r.Render(w, inv)
}

func (a *app) invoicesVoidCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "void NUMBER",
		Short: "Void an issued invoice with a credit note; its ranges become billable again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return fmt.Errorf("--reason is required: an accountant will ask why")
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := a.creditNoteNumbering(time.Now())
			if err != nil {
				return err
			}
			cn, err := st.IssueCreditNote(cmd.Context(), args[0], reason, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "voided %s with credit note %s (%s %s)\n", args[0], cn.Number, cn.Total, cn.Currency)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the invoice is voided (required)")
	return cmd
}

// creditNoteNumbering is the credit-note series of the year of `at` in the billing timezone.
func (a *app) creditNoteNumbering(at time.Time) (store.CreditNoteNumbering, error) {
	nf, err := a.cfg.CreditNoteNumbering()
	if err != nil {
		return store.CreditNoteNumbering{}, fmt.Errorf("billing.credit_note_format: %w", err)
	}
	return store.CreditNoteNumbering{Series: nf.Series(at.In(a.cfg.Location()).Year()), Format: nf.Format}, nil
}

func (a *app) invoicesRegenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "regenerate NUMBER",
		Short: "Void an issued invoice and issue a new one for exactly the same ranges, re-priced with today's data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			old, err := st.GetInvoice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if old.Status != invoice.Issued {
				return fmt.Errorf("invoice %s is %s: only an issued invoice can be regenerated", old.Number, old.Status)
			}
			var item *pipeline.Item
			run, err := pipeline.Execute(cmd.Context(), a.env(st), pipeline.Options{
				Mode: pipeline.Regenerate, Period: old.Period, CustomerIDs: []string{old.CustomerID},
				Replacing: old, OnItem: func(it *pipeline.Item) { item = it },
			})
			if err != nil {
				return err
			}
			if item == nil || item.Err != nil || item.Invoice == nil || item.Invoice.Number == "" {
				why := "no invoice was produced"
				if item != nil && item.Err != nil {
					why = item.Err.Error()
				} else if item != nil && item.Skip != "" {
					why = item.Skip
				}
				return fmt.Errorf("regenerate %s: %s (run %s)", old.Number, why, run.ID)
			}
			// The chain old → credit note → new: issue the credit note now unless finalizing did.
			voided, err := st.GetInvoice(cmd.Context(), old.Number)
			if err != nil {
				return err
			}
			cnText := voided.CreditNote
			if cnText == "" {
				n, err := a.creditNoteNumbering(time.Now())
				if err != nil {
					return err
				}
				cn, err := st.IssueCreditNote(cmd.Context(), old.Number, "regenerated as "+item.Invoice.Number, n)
				if err != nil {
					return fmt.Errorf("regenerated %s as %s, but its credit note failed (run bilean invoices void %s --reason … to issue it): %w",
						old.Number, item.Invoice.Number, old.Number, err)
				}
				cnText = cn.Number
			}
			cnText = " with credit note " + cnText
			fmt.Fprintf(cmd.OutOrStdout(), "voided %s%s, issued %s (total %s %s, was %s)\n", old.Number, cnText, item.Invoice.Number, item.Invoice.Total, item.Invoice.Currency, old.Total)
			return nil
		},
	}
}
