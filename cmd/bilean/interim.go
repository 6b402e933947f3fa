package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/spf13/cobra"
)

func (a *app) interimCmd() *cobra.Command {
	var at, output string
	cmd := &cobra.Command{
		Use:   "interim CUSTOMER",
		Short: "Show what a customer owes from the period start to now (nothing is stored or sent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "csv"); err != nil {
				return err
			}
			t := time.Now()
			if at != "" {
				var err error
				if t, err = interval.ParseTime(at); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			t = interval.Norm(t)
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var item *pipeline.Item
			_, err = pipeline.Execute(cmd.Context(), a.env(st), pipeline.Options{
				Mode: pipeline.Interim, Period: interval.MonthOf(t, a.cfg.Location()), Until: t,
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	title := "Interim invoice"
	if inv.Number != "" {
		title = "Invoice " + inv.Number
	}
	fmt.Fprintf(tw, "%s\t%s\n", title, inv.Status)
	fmt.Fprintf(tw, "Customer\t%s %s\n", inv.CustomerID, inv.CustomerName)
	fmt.Fprintf(tw, "Period\t%s\n", inv.Period)
	if inv.Replaces != "" {
		fmt.Fprintf(tw, "Replaces\t%s\n", inv.Replaces)
	}
	if inv.ReplacedBy != "" {
		fmt.Fprintf(tw, "Replaced by\t%s\n", inv.ReplacedBy)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SECTION\tTYPE\tRESOURCE\tSTART\tEND\tQUANTITY\tUNIT\tUNIT PRICE\tAMOUNT")
	for _, l := range inv.Lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Section, l.ResourceType, l.ResourceID,
			l.Start.Format(time.RFC3339), l.End.Format(time.RFC3339), l.Quantity.Round(6).Trim(0), l.Unit, l.UnitPrice, l.Amount)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "Subtotal\t%s %s\n", inv.Subtotal, inv.Currency)
	fmt.Fprintf(tw, "Tax %s%%\t%s %s\n", pct(inv), inv.Tax, inv.Currency)
	fmt.Fprintf(tw, "Total\t%s %s\n", inv.Total, inv.Currency)
	fmt.Fprintf(tw, "Previous balance\t%s %s\n", inv.PreviousBalance, inv.Currency)
	fmt.Fprintf(tw, "Payments received\t%s %s\n", inv.Payments, inv.Currency)
	fmt.Fprintf(tw, "Balance due\t%s %s\n", inv.BalanceDue, inv.Currency)
	return tw.Flush()
}

func pct(inv *invoice.Invoice) string {
	p, err := inv.TaxRate.Mul(invoice.Hundred)
	if err != nil {
		return inv.TaxRate.String()
	}
	return p.Trim(0).String()
}
