package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/templates"
	"github.com/spf13/cobra"
)

func (a *app) interimCmd() *cobra.Command {
	var at, period, output string
	cmd := &cobra.Command{
		Use:   "interim CUSTOMER",
		Short: "Show what a customer owes from the period start to now (nothing is stored or sent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "csv"); err != nil {
				return err
			}
			if at != "" && period != "" {
				return fmt.Errorf("--at and --period: give one (--period 2026-10 prices the whole month)")
			}
			t := time.Now()
			if at != "" {
				var err error
				if t, err = interval.ParseTime(at); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			t = interval.Norm(t)
			month := interval.MonthOf(t, a.cfg.Location())
			if period != "" {
				var err error
				if month, err = interval.Month(period, a.cfg.Location()); err != nil {
					return fmt.Errorf("--period: %w", err)
				}
				t = month.End
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if period != "" {
				// A month already invoiced has nothing left to show but late usage: say so.
				done, err := st.Invoiced(cmd.Context(), args, month)
				if err != nil {
					return err
				}
				if n := done[args[0]]; n != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is already invoiced on %s; this shows only what it did not bill\n", period, n)
				}
			}
			var item *pipeline.Item
			_, err = pipeline.Execute(cmd.Context(), a.env(st), pipeline.Options{
				Mode: pipeline.Interim, Period: month, Until: t,
				CustomerIDs: args, OnItem: func(it *pipeline.Item) { item = it },
			})
			if err != nil {
				return err
			}
			if item == nil || item.Err != nil {
				if item != nil {
					return item.Err
				}
				return fmt.Errorf("customer %s: no result", args[0])
			}
			if output == "table" {
				fmt.Fprintf(cmd.OutOrStdout(), "Priced up to %s (interim: not stored, not sent)\n", t.Format(time.RFC3339))
			}
			return writeInvoice(cmd.OutOrStdout(), item.Invoice, output, a)
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "price usage up to this moment instead of now (RFC 3339)")
	cmd.Flags().StringVar(&period, "period", "", "price a whole month (e.g. 2026-10) up to its end, as its scheduled run would, without storing it")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or csv")
	return cmd
}

func checkOutput(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return fmt.Errorf("--output %q: want one of %v", got, allowed)
}

// writeInvoice prints one invoice as a table, JSON or CSV.
func writeInvoice(w io.Writer, inv *invoice.Invoice, format string, a *app) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	case "csv":
		return writeCSV(w, inv, a)
	}
	return templates.InvoiceText(w, inv)
}
