package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
)

func init() { register(func(a *app) *cobra.Command { return a.runsCmd() }) }

func (a *app) runsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Show pipeline runs and the progress of their batches",
	}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the latest runs: status, batches done/claimed/pending, customers, invoices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, done, err := a.batches(cmd)
			if err != nil {
				return err
			}
			defer done()
			runs, err := bs.ListRuns(cmd.Context(), limit)
			if err != nil {
				return err
			}
			printRuns(cmd.OutOrStdout(), runs)
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "number of runs to list")
	show := &cobra.Command{
		Use:   "show RUN-ID",
		Short: "Show one run with every batch: status, worker, heartbeat, invoices",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, done, err := a.batches(cmd)
			if err != nil {
				return err
			}
			defer done()
			p, err := bs.GetRunProgress(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			printRun(cmd.OutOrStdout(), p, time.Now())
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

// batches opens the store as a store.Batches.
func (a *app) batches(cmd *cobra.Command) (store.Batches, func(), error) {
	st, err := a.openStore(cmd.Context())
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}

func printRuns(w io.Writer, runs []store.RunProgress) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tMODE\tPERIOD\tSTATUS\tSTARTED\tBATCHES done/claimed/pending\tCUSTOMERS done/all\tINVOICES\tFAILED")
	for _, r := range runs {
		batches, customers := "-", "-"
		if r.Batches > 0 {
			batches = fmt.Sprintf("%d/%d/%d", r.Done, r.Claimed, r.Pending)
			customers = fmt.Sprintf("%d/%d", r.CustomersDone, r.Customers)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.ID, r.Mode, r.Period.Start.Format("2006-01"), r.Status,
			r.StartedAt.Format(time.RFC3339), batches, customers, r.Invoices, r.Failed)
	}
	_ = tw.Flush()
}

func printRun(w io.Writer, p *store.RunProgress, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Run\t%s (%s)\n", p.ID, p.Mode)
	fmt.Fprintf(tw, "Period\t%s\n", p.Period)
	fmt.Fprintf(tw, "Status\t%s\n", p.Status)
	fmt.Fprintf(tw, "Started\t%s\n", p.StartedAt.Format(time.RFC3339))
	if !p.FinishedAt.IsZero() {
		fmt.Fprintf(tw, "Finished\t%s (%s)\n", p.FinishedAt.Format(time.RFC3339), p.FinishedAt.Sub(p.StartedAt).Round(time.Second))
	}
	if p.Batches > 0 {
		fmt.Fprintf(tw, "Batches\t%d: %d done, %d claimed, %d pending\n", p.Batches, p.Done, p.Claimed, p.Pending)
		fmt.Fprintf(tw, "Customers\t%d of %d done (%d skipped, %d failed)\n", p.CustomersDone, p.Customers, p.Skipped, p.Failed)
	}
	fmt.Fprintf(tw, "Invoices\t%d\n", p.Invoices)
	if len(p.Workers) > 0 {
		fmt.Fprintf(tw, "Workers\t%s\n", strings.Join(p.Workers, ", "))
	}
	if p.Summary != "" {
		fmt.Fprintf(tw, "Summary\t%s\n", p.Summary)
	}
	_ = tw.Flush()
	if len(p.List) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BATCH\tSTATUS\tCUSTOMERS\tATTEMPTS\tWORKER\tHEARTBEAT\tINVOICES\tSKIPPED\tFAILED")
	for _, b := range p.List {
		beat := "-"
		switch {
		case b.Status == "claimed" && !b.HeartbeatAt.IsZero():
			beat = now.Sub(b.HeartbeatAt).Round(time.Second).String() + " ago"
		case !b.FinishedAt.IsZero():
			beat = "done " + b.FinishedAt.Format("15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\n", b.N, b.Status, b.Customers, b.Attempts, b.Worker, beat, b.Invoices, b.Skipped, b.Failed)
	}
	_ = tw.Flush()
}
