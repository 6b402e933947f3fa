package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) runCmd() *cobra.Command {
	var (
		period     string
		customers  []string
		workers    int
		staleAfter time.Duration
		local      bool
		allowEmpty bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "The scheduled run: invoice every customer (or some) for one month, store and render",
		Long: `Invoices every customer for one calendar month in the billing timezone, stores the invoices
with the ranges they bill, and renders them. Running the same period again bills nothing twice:
customers already invoiced are reported and the command exits 0. Usage that arrived late for an
earlier, invoiced period is billed once, as adjustment lines on this invoice.

A run of every customer is shared through the store: it is split into batches of
pipeline.batch_size customers recorded in the database, and each of the --workers workers claims
one batch at a time (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL), heartbeats it and marks it
done. The same command started on other hosts against the same PostgreSQL database joins the same
run (a run is identified by its mode and period) and claims batches too; a batch whose heartbeat
is older than --stale-after (its worker died) is taken over. The command returns when every batch
of the run is done. ` + "`bilean runs list|show`" + ` shows the progress.

A store without a single customer is reported on stderr and the command exits 1 (it is usually
the wrong store: check database.url), unless --allow-empty.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc := a.cfg.Location()
			if period == "" {
				period = time.Now().In(loc).AddDate(0, -1, 0).Format("2006-01")
			}
			p, err := interval.Month(period, loc)
			if err != nil {
				return err
			}
			if p.End.After(time.Now()) {
				return fmt.Errorf("period %s has not ended yet: use `bilean interim` for an interim invoice", period)
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if workers > 0 {
				if workers > 64 {
					return fmt.Errorf("--workers %d: want 1 to 64", workers)
				}
				a.cfg.Pipeline.Workers = workers
			}
			opts := pipeline.Options{Mode: pipeline.Scheduled, Period: p, StaleAfter: staleAfter, Local: local}
			if len(customers) > 0 {
				opts.CustomerIDs = customers
			}
			progress, done := newProgress(cmd.ErrOrStderr(), "invoicing "+period)
			opts.Progress = progress
			run, err := pipeline.Execute(cmd.Context(), a.env(st), opts)
			done()
			if run != nil {
				printSummary(cmd.OutOrStdout(), run, period)
			}
			if err != nil {
				return err
			}
			if len(customers) == 0 && run.Stats.Customers == 0 && !allowEmpty {
				// A store with no customer at all is more often the wrong store (a mistyped
				// database.url) than a cloud with nobody to bill: say so, unless told.
				ids, err := st.CustomerIDs(cmd.Context(), store.CustomerFilter{})
				if err != nil {
					return fmt.Errorf("list customers: %w", err)
				}
				if len(ids) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "bilean: the store %s has no customers: nothing to invoice for %s.\n"+
						"Check database.url (or BILEAN_DATABASE_URL), import customers (bilean import customers FILE), or pass --allow-empty.\n",
						displayURL(a.cfg.Database.URL), period)
					return exitCode(1)
				}
			}
			if run.Stats.Failed > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "month to invoice, YYYY-MM (default: last month)")
	cmd.Flags().StringSliceVar(&customers, "customer", nil, "invoice only these customers (repeatable)")
	cmd.Flags().IntVar(&workers, "workers", 0, "batches processed at once by this process (default pipeline.workers)")
	cmd.Flags().DurationVar(&staleAfter, "stale-after", pipeline.DefaultStaleAfter, "take over a claimed batch whose heartbeat is older than this")
	cmd.Flags().BoolVar(&local, "local", false, "do not share the run with other processes through the store")
	cmd.Flags().BoolVar(&allowEmpty, "allow-empty", false, "exit 0 when the store has no customers at all (else it is an error: probably the wrong store)")
	return cmd
}

// newProgress shows a progress bar on a terminal and periodic log lines otherwise.
func newProgress(w io.Writer, what string) (func(done, total int), func()) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int) {
				if bar == nil {
					bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
						progressbar.OptionShowCount(), progressbar.OptionSetItsString("customers"), progressbar.OptionShowIts(),
						progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
				}
				_ = bar.Set(done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	last := time.Now()
	return func(done, total int) {
		if time.Since(last) > 5*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(w, "%s: %d/%d customers\n", what, done, total)
		}
	}, func() {}
}

// printSummary prints the run's summary table and the customers that need attention.
func printSummary(w io.Writer, run *pipeline.Run, period string) {
	s := run.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	took := s.FinishedAt.Sub(s.StartedAt)
	fmt.Fprintf(tw, "Run\t%s (%s)\n", run.ID, run.Mode)
	fmt.Fprintf(tw, "Period\t%s %s\n", period, run.Period)
	fmt.Fprintf(tw, "Customers\t%d\n", s.Customers)
	fmt.Fprintf(tw, "Invoices issued\t%d\n", s.Invoices)
	already, empty := 0, 0
	for _, o := range s.Outcomes {
		switch {
		case o.Invoiced != "":
			already++
		case o.Skip != "":
			empty++
		}
	}
	fmt.Fprintf(tw, "Already invoiced\t%d\n", already)
	fmt.Fprintf(tw, "Nothing to bill\t%d\n", empty)
	fmt.Fprintf(tw, "Failed\t%d\n", s.Failed)
	fmt.Fprintf(tw, "Spans billed\t%d\n", s.Spans)
	fmt.Fprintf(tw, "Lines\t%d\n", s.Lines)
	for _, c := range slices.Sorted(maps.Keys(s.Totals)) {
		fmt.Fprintf(tw, "Total %s\t%s\n", c, s.Totals[c])
	}
	for _, t := range slices.Sorted(maps.Keys(s.Unpriced)) {
		fmt.Fprintf(tw, "Unpriced %s\t%d pieces (no rule in the policy)\n", t, s.Unpriced[t])
	}
	secs := took.Seconds()
	if secs > 0 {
		fmt.Fprintf(tw, "Took\t%s (%.0f customers/s, %.0f spans/s)\n", took.Round(time.Millisecond), float64(s.Customers)/secs, float64(s.Spans)/secs)
	}
	_ = tw.Flush()
	for _, o := range s.SortedOutcomes() {
		switch {
		case o.Err != "":
			fmt.Fprintf(w, "FAILED  %s: %s\n", o.CustomerID, o.Err)
		case o.Invoiced != "":
			fmt.Fprintf(w, "skipped %s: %s\n", o.CustomerID, o.Skip)
		}
	}
}
