package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/audit"
	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
)

func init() { register(func(a *app) *cobra.Command { return a.verifyCmd() }) }

func (a *app) verifyCmd() *cobra.Command {
	var period, output string
	cmd := &cobra.Command{
		Use:   "verify --period 2026-10",
		Short: "Re-derive every issued invoice of a month and check the store's invariants (exit 1 on a finding)",
		Long: `Re-derives every issued invoice of the period from the stored records, meters, policies and
billed ranges through the same calculator the scheduled run uses (the regenerate path, stopped
before finalizing: nothing is stored), and reports every line whose quantity, unit price or amount
differs, and every line only one side has. Then checks the invariants: the lines add up to the
subtotal and the total is subtotal + tax; no two live billed ranges of a customer's resource
overlap; what is billed of a resource (charged less credited) lies within its trigger records;
invoice and credit-note numbers are gapless in each series.

Errors exit 1. Notes do not: a span closed after its month was invoiced is billed beyond its
record until the next invoice credits it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			if period == "" {
				return fmt.Errorf("--period: required, e.g. --period 2026-10")
			}
			p, err := interval.Month(period, a.cfg.Location())
			if err != nil {
				return fmt.Errorf("--period: %w", err)
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			started := time.Now()
			rep, err := verifyPeriod(cmd, a, st, p)
			if err != nil {
				return err
			}
			rep.Period, rep.Took = period, time.Since(started).Round(time.Millisecond).String()
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				writeVerify(cmd.OutOrStdout(), rep)
			}
			if rep.Errors > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "month to verify, e.g. 2026-10")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// verifyReport is what `bilean verify` prints.
type verifyReport struct {
	Period   string          `json:"period"`
	Invoices int             `json:"invoices"`
	Errors   int             `json:"errors"`
	Notes    int             `json:"notes"`
	Took     string          `json:"took"`
	Findings []audit.Finding `json:"findings"`
}

func verifyPeriod(cmd *cobra.Command, a *app, st store.Store, p interval.Range) (*verifyReport, error) {
	ctx := cmd.Context()
	list, err := st.ListInvoices(ctx, store.InvoiceFilter{Period: &p, Status: invoice.Issued})
	if err != nil {
		return nil, fmt.Errorf("list invoices of %s: %w", p, err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Number < list[j].Number })
	rep := &verifyReport{Invoices: len(list), Findings: []audit.Finding{}}
	env := a.env(st)
	env.Log = slog.New(slog.DiscardHandler) // one quiet run per invoice; failures are findings
	customers := map[string]bool{}
	for _, head := range list {
		if head.Kind != invoice.Scheduled {
			continue
		}
		inv, err := st.GetInvoice(ctx, head.Number)
		if err != nil {
			return nil, err
		}
		customers[inv.CustomerID] = true
		var item *pipeline.Item
		_, err = pipeline.Execute(ctx, env, pipeline.Options{Mode: pipeline.Verify, Period: inv.Period, CustomerIDs: []string{inv.CustomerID},
			Replacing: inv, OnItem: func(it *pipeline.Item) { item = it }})
		switch {
		case err != nil:
			return nil, fmt.Errorf("re-derive %s: %w", inv.Number, err)
		case item == nil || item.Invoice == nil || item.Err != nil:
			why := "no invoice was derived"
			if item != nil && item.Err != nil {
				why = item.Err.Error()
			}
			rep.Findings = append(rep.Findings, audit.Finding{Severity: audit.Error, Invoice: inv.Number, Check: "derive", Detail: why})
		default:
			rep.Findings = append(rep.Findings, audit.CompareLines(inv.Number, inv.Lines, item.Invoice.Lines)...)
		}
		rep.Findings = append(rep.Findings, audit.CheckTotals(inv)...)
	}
	ids := make([]string, 0, len(customers))
	for id := range customers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fs, err := customerInvariants(cmd, st, id)
		if err != nil {
			return nil, err
		}
		rep.Findings = append(rep.Findings, fs...)
	}
	all, err := st.ListInvoices(ctx, store.InvoiceFilter{})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	var invNumbers, cnNumbers []string
	for _, inv := range all {
		invNumbers = append(invNumbers, inv.Number)
		if inv.CreditNote != "" {
			cnNumbers = append(cnNumbers, inv.CreditNote)
		}
	}
	rep.Findings = append(rep.Findings, audit.CheckNumbering(invNumbers)...)
	rep.Findings = append(rep.Findings, audit.CheckNumbering(cnNumbers)...)
	for _, f := range rep.Findings {
		if f.Severity == audit.Error {
			rep.Errors++
		} else {
			rep.Notes++
		}
	}
	return rep, nil
}

// customerInvariants checks one customer's live invoices together: no overlapping ranges, and
// billed seconds within the resources' records.
func customerInvariants(cmd *cobra.Command, st store.Store, customer string) ([]audit.Finding, error) {
	ctx := cmd.Context()
	heads, err := st.ListInvoices(ctx, store.InvoiceFilter{CustomerID: customer, Status: invoice.Issued})
	if err != nil {
		return nil, fmt.Errorf("list invoices of %s: %w", customer, err)
	}
	invs := make([]*invoice.Invoice, 0, len(heads))
	seen := map[string]bool{}
	var rids []string
	for _, h := range heads {
		inv, err := st.GetInvoice(ctx, h.Number)
		if err != nil {
			return nil, err
		}
		invs = append(invs, inv)
		for _, br := range inv.Ranges {
			if !seen[br.ResourceID] {
				seen[br.ResourceID] = true
				rids = append(rids, br.ResourceID)
			}
		}
	}
	sort.Strings(rids)
	hist, err := st.ResourceHistory(ctx, customer, rids)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", customer, err)
	}
	records := map[string][]billing.Record{}
	for _, ru := range hist {
		records[ru.ResourceID] = ru.Records
	}
	return append(audit.CheckOverlaps(invs), audit.CheckCoverage(invs, records)...), nil
}

func writeVerify(w io.Writer, rep *verifyReport) {
	if len(rep.Findings) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tDOCUMENT\tCHECK\tLINE\tRESOURCE\tRANGE\tFIELD\tSTORED\tDERIVED\tDETAIL")
		for _, f := range rep.Findings {
			line, rng := "", ""
			if f.Line > 0 {
				line = fmt.Sprint(f.Line)
			}
			if !f.Start.IsZero() {
				rng = interval.New(f.Start, f.End).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.Invoice, f.Check, line, f.Resource, rng, f.Field, f.Stored, f.Derived, f.Detail)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "verified %d invoices of %s in %s: %d errors, %d notes\n", rep.Invoices, rep.Period, rep.Took, rep.Errors, rep.Notes)
}
