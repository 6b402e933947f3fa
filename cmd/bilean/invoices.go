package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
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
				note := ""
				switch {
				case inv.ReplacedBy != "":
					note = "replaced by " + inv.ReplacedBy
				case inv.Replaces != "":
					note = "replaces " + inv.Replaces
				}
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
	var output string
	cmd := &cobra.Command{
		Use:   "show NUMBER",
		Short: "Show one invoice with its lines",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "csv"); err != nil {
				return err
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
			return writeInvoice(cmd.OutOrStdout(), inv, output, a)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or csv")
	return cmd
}

func (a *app) invoicesVoidCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "void NUMBER",
		Short: "Void an issued invoice; its ranges become billable again",
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
			if err := st.VoidInvoice(cmd.Context(), args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "voided %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the invoice is voided (required)")
	return cmd
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
			fmt.Fprintf(cmd.OutOrStdout(), "voided %s, issued %s (total %s %s, was %s)\n", old.Number, item.Invoice.Number, item.Invoice.Total, item.Invoice.Currency, old.Total)
			return nil
		},
	}
}
