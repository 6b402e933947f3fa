package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bilean/bilean/balance"
	"github.com/bilean/bilean/ceilometer/cloud"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
	"github.com/spf13/cobra"
)

func init() {
	register(func(a *app) *cobra.Command { return a.rechargeCmd() })
	register(func(a *app) *cobra.Command { return a.balanceCmd() })
	register(func(a *app) *cobra.Command { return a.jobsCmd() })
	register(func(a *app) *cobra.Command { return a.reconcileCmd() })
}

// balanceService opens the store and builds the balance service; withCloud also connects to
// OpenStack (needed by the stop/suspend escalation, a lifted freeze and reconciliation). With
// mail.host set, its notices are emailed to the customers' billing contacts; otherwise logged.
func (a *app) balanceService(ctx context.Context, withCloud bool) (*balance.Service, func(), error) {
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	svc, err := balance.New(st, a.cfg, a.log)
	if err == nil {
		err = svc.UseMail()
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if withCloud {
		c, err := cloud.Connect(ctx, a.cfg.OpenStack)
		switch {
		case err != nil:
			st.Close()
			return nil, nil, fmt.Errorf("connect to OpenStack: %w", err)
		case !c.Keystone():
			st.Close()
			return nil, nil, fmt.Errorf("connect to OpenStack: openstack.auth %s has no Keystone catalog: Nova, Cinder, Neutron and Glance cannot be reached", c.Mode)
		}
		svc.Cloud = balance.NewOpenStack(c.Provider, c.Endpoint)
	}
	return svc, func() { st.Close() }, nil
}

func (a *app) rechargeCmd() *cobra.Command {
	var note, currency string
	var offline bool
	cmd := &cobra.Command{
		Use:   "recharge CUSTOMER AMOUNT",
		Short: "Record a prepaid payment; lifts a freeze when the balance is positive again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := decimal.Parse(args[1])
			if err != nil {
				return fmt.Errorf("amount %q: want a decimal number such as 50 or 12.50", args[1])
			}
			ctx := cmd.Context()
			svc, done, err := a.balanceService(ctx, false)
			if err != nil {
				return err
			}
			defer done()
			// A frozen customer needs OpenStack to restart its servers: connect only then.
			if fs, err := svc.Balances.GetFreezes(ctx, args[:1]); err == nil && fs[args[0]].State == store.FreezeFrozen && !fs[args[0]].DryRun && !offline {
				full, done2, err := a.balanceService(ctx, true)
				if err != nil {
					return fmt.Errorf("customer %s is frozen and its servers must be restarted: %w (use --offline to record the payment anyway)", args[0], err)
				}
				defer done2()
				svc = full
			}
			res, err := svc.Recharge(ctx, args[0], amount, currency, note)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Recharged %s %s %s (payment %s)\n", res.Payment.CustomerID, res.Payment.Amount, res.Payment.Currency, res.Payment.Reference)
			fmt.Fprintf(w, "Balance now: %s %s\n", res.Status.Rounded, res.Status.Currency)
			for _, m := range res.Messages {
				fmt.Fprintln(w, m)
			}
			if res.Lifted {
				fmt.Fprintf(w, "Freeze lifted: customer %s is active again\n", res.Payment.CustomerID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "free text kept with the payment (e.g. the bank reference)")
	cmd.Flags().StringVar(&currency, "currency", "", "currency of the payment (default: the customer's)")
	cmd.Flags().BoolVar(&offline, "offline", false, "record the payment without contacting OpenStack; a frozen customer's servers stay stopped until `bilean jobs run`")
	return cmd
}

func (a *app) balanceCmd() *cobra.Command {
	var output, at string
	cmd := &cobra.Command{
		Use:   "balance CUSTOMER",
		Short: "Show a prepaid balance at this second, the burn rate and the time left",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			t := time.Now()
			if at != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, at); err != nil {
					return fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-10-15T12:00:00Z", at)
				}
			}
			svc, done, err := a.balanceService(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			st, err := svc.Balance(cmd.Context(), args[0], t)
			if err != nil {
				return err
			}
			return writeBalance(cmd.OutOrStdout(), st, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&at, "at", "", "the balance at this second instead of now (RFC 3339, not before the last refresh)")
	return cmd
}

func writeBalance(w io.Writer, st balance.Status, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "Customer:    %s\n", st.CustomerID)
	fmt.Fprintf(w, "At:          %s\n", st.At.Format(time.RFC3339))
	fmt.Fprintf(w, "Balance:     %s %s (exact %s)\n", st.Rounded, st.Currency, st.Balance)
	fmt.Fprintf(w, "Burn rate:   %s %s per hour, tax included (%d open spans)\n", st.Rate, st.Currency, st.OpenSpans)
	switch {
	case st.TimeLeft == nil:
		fmt.Fprintln(w, "Time left:   unlimited (nothing burns)")
	case *st.TimeLeft == 0:
		fmt.Fprintf(w, "Time left:   none: ran out at %s\n", st.RunsOutAt.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "Time left:   %s (runs out at %s)\n", *st.TimeLeft, st.RunsOutAt.Format(time.RFC3339))
	}
	if st.Freeze != "" {
		fmt.Fprintf(w, "Status:      %s\n", st.Freeze)
	}
	fmt.Fprintf(w, "Computed at: %s\n", st.AsOf.Format(time.RFC3339))
	return nil
}

func (a *app) jobsCmd() *cobra.Command {
	jobs := &cobra.Command{Use: "jobs", Short: "Scheduled balance jobs (bilean listen runs them every balance.job_interval)"}
	var noCloud bool
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the balance jobs once: refresh stale balances, warn, escalate, lift",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			needCloud := a.cfg.Balance.Escalation != "notify" && !a.cfg.Balance.DryRun && !noCloud
			svc, done, err := a.balanceService(cmd.Context(), needCloud)
			if err != nil {
				return err
			}
			defer done()
			// RunPass first retries the notices earlier passes could not email, then runs the jobs.
			rep, err := svc.RunPass(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "refreshed %d, checked %d, warned %d, depleted %d, frozen %d, lifted %d, errors %d\n",
				rep.Refreshed, rep.Checked, rep.Warned, rep.Depleted, rep.Frozen, rep.Lifted, len(rep.Errors))
			for _, e := range rep.Errors {
				fmt.Fprintln(cmd.ErrOrStderr(), "error:", e)
			}
			if len(rep.Errors) > 0 {
				return fmt.Errorf("%d balance job error(s)", len(rep.Errors))
			}
			return nil
		},
	}
	run.Flags().BoolVar(&noCloud, "no-cloud", false, "do not connect to OpenStack (stop/suspend escalations then fail and are retried)")
	jobs.AddCommand(run)
	return jobs
}

func (a *app) reconcileCmd() *cobra.Command {
	var project string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Open or close spans so they match what Nova, Cinder, Neutron and Glance list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := a.balanceService(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer done()
			fixes, err := svc.Reconcile(cmd.Context(), project, dryRun)
			w := cmd.OutOrStdout()
			verb := map[bool]string{true: "would ", false: ""}[dryRun]
			for _, f := range fixes {
				when := f.Start.Format(time.RFC3339)
				if f.Action == "close" {
					when = f.End.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s%s %s %s of %s at %s: %s\n", verb, f.Action, f.ResourceType, f.ResourceID, f.CustomerID, when, f.Reason)
			}
			fmt.Fprintf(w, "%d span(s) %sfixed\n", len(fixes), map[bool]string{true: "to be ", false: ""}[dryRun])
			return err
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "reconcile this project only (default: every customer)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show (and audit) what would change without writing")
	return cmd
}

// balanceCloud connects to OpenStack for the listener's balance jobs when the escalation needs it
// (stop or suspend, not in dry run). Without a connection the jobs still warn and audit; the
// escalation fails, is logged and is retried on the next pass.
func (a *app) balanceCloud(ctx context.Context) balance.Cloud {
	if a.cfg.Balance.Escalation == "notify" || a.cfg.Balance.DryRun {
		return nil
	}
	c, err := cloud.Connect(ctx, a.cfg.OpenStack)
	if err == nil && !c.Keystone() {
		err = fmt.Errorf("openstack.auth %s has no Keystone catalog", c.Mode)
	}
	if err != nil {
		a.log.Warn("balance escalation cannot reach Nova", "err", err)
		return nil
	}
	return balance.NewOpenStack(c.Provider, c.Endpoint)
}
