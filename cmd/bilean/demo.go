package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/synthcloud"
	"github.com/spf13/cobra"
)

func (a *app) demoCmd() *cobra.Command {
	var (
		projects, spans int
		dir, period     string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Invoice a deterministic synthetic cloud on a fresh embedded store (what `make demo` runs)",
		Long: `Builds a synthetic OpenStack cloud (projects with servers of several flavors, volumes, floating
IPs and images; resizes and deletions mid-month; one project changing policy mid-month, one paying
during the month) in a fresh embedded store under DIR, runs the scheduled run for the period and
writes the invoices under DIR/invoices. The same generator feeds the tests and benchmarks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			month, err := interval.Month(period, a.cfg.Location())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			dbPath := filepath.Join(dir, "bilean.db")
			for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			out := filepath.Join(dir, "invoices")
			if err := os.RemoveAll(out); err != nil {
				return err
			}
			st, err := openStore(ctx, config.Database{URL: "sqlite:" + dbPath})
			if err != nil {
				return err
			}
			defer st.Close()
			opts := synthcloud.Options{Projects: projects, Month: month, Seed: 1, SpansPerProject: spans}
			stats, err := synthcloud.Load(ctx, st, opts)
			if err != nil {
				return fmt.Errorf("load the synthetic cloud: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "synthetic cloud: %d projects, %d trigger records in %s\n", stats.Customers, stats.Records, dbPath)
			env := a.env(st)
			env.OutputDir = out
			progress, done := newProgress(cmd.ErrOrStderr(), "invoicing "+period)
			run, err := pipeline.Execute(ctx, env, pipeline.Options{Mode: pipeline.Scheduled, Period: month, Progress: progress})
			done()
			if run != nil {
				printSummary(cmd.OutOrStdout(), run, period)
			}
			if err != nil {
				return err
			}
			all, _ := filepath.Glob(filepath.Join(out, "*"))
			var files []string
			for _, f := range all {
				if !strings.HasPrefix(filepath.Base(f), ".") { // .bilean-owners: render's bookkeeping
					files = append(files, f)
				}
			}
			sort.Strings(files)
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d invoice files in %s, e.g.:\n", len(files), out)
			for i, f := range files {
				if i == 5 {
					break
				}
				fmt.Fprintln(cmd.OutOrStdout(), "  "+f)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nTry: %s --database sqlite:%s invoices list\n", os.Args[0], dbPath)
			if run.Stats.Failed > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&projects, "projects", 20, "number of projects (customers)")
	cmd.Flags().IntVar(&spans, "spans", 12, "average trigger records per project")
	cmd.Flags().StringVar(&dir, "dir", "demo-out", "folder for the store and the invoices (recreated)")
	cmd.Flags().StringVar(&period, "period", "2026-10", "month to invoice")
	return cmd
}
