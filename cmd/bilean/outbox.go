package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/handlers"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
)

func init() { register(func(a *app) *cobra.Command { return a.outboxCmd() }) }

func (a *app) outboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Show and resend the email deliveries of invoices",
		Long: `Every issued invoice gets one outbox entry when the email step runs; its state says where its
delivery stands:

  pending    waits to be sent (after a transient failure: from its next attempt on)
  sending    being sent now; found by a later run, it was interrupted and becomes unknown
  sent       accepted by the SMTP server
  failed     refused for good (5xx, bad address, no billing contact, too many attempts)
  unknown    interrupted after the server may have accepted it: never resent automatically.
             Look for its Message-ID in the mail server's log; resend with --force only if it
             is not there
  cancelled  the invoice was voided before it was sent`,
	}
	cmd.AddCommand(a.outboxListCmd(), a.outboxRetryCmd())
	return cmd
}

func (a *app) outboxListCmd() *cobra.Command {
	var states []string
	var invoiceNo, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List outbox entries, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			f := store.DeliveryFilter{Invoice: invoiceNo, Limit: limit}
			for _, s := range states {
				st := store.DeliveryState(s)
				if !slices.Contains(store.DeliveryStates, st) {
					return fmt.Errorf("--state %q: want one of %s", s, joinStates())
				}
				f.States = append(f.States, st)
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var ob store.Outbox = st
			ds, err := ob.Deliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			if output == "json" {
				if ds == nil {
					ds = []store.Delivery{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ds)
			}
			return printDeliveries(cmd.OutOrStdout(), ds)
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (repeatable): "+joinStates())
	cmd.Flags().StringVar(&invoiceNo, "invoice", "", "only this invoice number")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func (a *app) outboxRetryCmd() *cobra.Command {
	var all, force, queueOnly bool
	cmd := &cobra.Command{
		Use:   "retry ID | --all",
		Short: "Resend failed deliveries (--force: an unknown one) with the customer's current contacts",
		Long: `Puts a failed delivery back to pending, with the customer's current billing contacts, and sends
what is pending now (unless --queue-only: the next run sends it).

An unknown delivery may already be in the customer's mailbox: look for its Message-ID in the mail
server's log first, and resend it with --force only if it is not there. The resent message keeps
the same Message-ID. --force applies to one ID at a time, never to --all.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return errors.New("give an ID or --all, not both")
			case all && force:
				return errors.New("--force applies to one ID at a time: check each Message-ID in the mail server's log first")
			case !all && len(args) != 1:
				return errors.New("give one outbox ID (see `bilean outbox list --state failed`) or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			var ob store.Outbox = st
			var sender *handlers.Email
			if !queueOnly {
				if sender, err = a.emailSender(st); err != nil {
					return err
				}
			}
			var ids []int64
			if all {
				ds, err := ob.Deliveries(ctx, store.DeliveryFilter{States: []store.DeliveryState{store.DeliveryFailed}})
				if err != nil {
					return err
				}
				for _, d := range ds {
					ids = append(ids, d.ID)
				}
			} else {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || id < 1 {
					return fmt.Errorf("outbox ID %q: want a positive number (see `bilean outbox list`)", args[0])
				}
				ids = []int64{id}
			}
			for _, id := range ids {
				if err := retryOne(ctx, st, ob, id, force); err != nil {
					return err
				}
			}
			if sender != nil && len(ids) > 0 {
				if err := sender.Flush(ctx); err != nil {
					return err
				}
			}
			var ds []store.Delivery
			notSent := 0
			for _, id := range ids {
				d, err := ob.GetDelivery(ctx, id)
				if err != nil {
					return err
				}
				ds = append(ds, d)
				if d.State != store.DeliverySent {
					notSent++
				}
			}
			if err := printDeliveries(cmd.OutOrStdout(), ds); err != nil {
				return err
			}
			if notSent > 0 && !queueOnly {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d not sent: see LAST ERROR above\n", notSent, len(ds))
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "retry every failed delivery")
	cmd.Flags().BoolVar(&force, "force", false, "resend an unknown delivery (after checking its Message-ID in the mail server's log)")
	cmd.Flags().BoolVar(&queueOnly, "queue-only", false, "only mark pending; the next run sends")
	return cmd
}

// retryOne puts one entry back to pending with its customer's current contacts (the old ones
// when the customer has none any more); a pending entry is left as it is.
func retryOne(ctx context.Context, st store.Store, ob store.Outbox, id int64, force bool) error {
	d, err := ob.GetDelivery(ctx, id)
	if err != nil {
		return err
	}
	if d.State == store.DeliveryPending {
		return nil // already queued: the flush that follows sends it
	}
	var to []string
	cs, err := st.GetCustomers(ctx, []string{d.CustomerID})
	if err != nil {
		return err
	}
	if len(cs) == 1 && len(cs[0].Contacts) > 0 {
		to = cs[0].Contacts
	}
	if _, err := ob.RetryDelivery(ctx, id, force, to, time.Now()); err != nil {
		return err
	}
	return nil
}

// emailSender builds the email handler as the scheduled chain configures it.
func (a *app) emailSender(st store.Store) (*handlers.Email, error) {
	var c handlers.EmailConfig
	if _, err := pipeline.StepConfig(a.cfg, "email", &c); err != nil {
		return nil, err
	}
	h, err := handlers.NewEmail(a.env(st), c)
	if err != nil {
		return nil, fmt.Errorf("cannot send: %w (use --queue-only to leave it for the next run)", err)
	}
	return h, nil
}

func joinStates() string {
	s := make([]string, len(store.DeliveryStates))
	for i, st := range store.DeliveryStates {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func printDeliveries(w io.Writer, ds []store.Delivery) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINVOICE\tCUSTOMER\tSTATE\tATTEMPTS\tUPDATED\tTO\tMESSAGE-ID\tLAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.Invoice, d.CustomerID, d.State, d.Attempts,
			d.UpdatedAt.UTC().Format(time.RFC3339), strings.Join(d.To, ", "), d.MessageID, oneLine(d.LastError))
	}
	return tw.Flush()
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
