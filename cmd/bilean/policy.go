package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/rating"
	"github.com/bilean/bilean/store"
	"github.com/govalues/decimal"
	"github.com/spf13/cobra"
)

func init() {
	register(func(a *app) *cobra.Command { return a.policyCmd() })
	register(func(a *app) *cobra.Command { return a.discountCmd() })
	register(func(a *app) *cobra.Command { return a.subscriptionCmd() })
}

// capabilityOf returns the store as capability T, or a clear error when the backend lacks it.
func capabilityOf[T any](st store.Store, what string) (T, error) {
	c, ok := st.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("the %T store does not keep %s", st, what)
	}
	return c, nil
}

// withCapability opens the store, hands it to f as capability T (what names T in the error when
// the backend lacks it) and closes it when f returns.
func withCapability[T any](ctx context.Context, a *app, what string, f func(T, store.Store) error) error {
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := capabilityOf[T](st, what)
	if err != nil {
		return err
	}
	return f(c, st)
}

func parseEffective(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("--effective is required: the second from which the change applies, e.g. 2026-11-01T00:00:00Z")
	}
	t, err := interval.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--effective %q: want RFC 3339 such as 2026-11-01T00:00:00Z or a date YYYY-MM-DD", s)
	}
	return t, nil
}

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "List and show policies; add and remove rules as new versions with an effective time"}
	cmd.AddCommand(a.policyListCmd(), a.policyShowCmd(), a.policyAddRuleCmd(), a.policyRemoveRuleCmd())
	return cmd
}

func (a *app) policyListCmd() *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List policies with their latest version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ps, err := st.Policies(cmd.Context())
			if err != nil {
				return err
			}
			names := make([]string, 0, len(ps))
			for n := range ps {
				names = append(names, n)
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tEFFECTIVE\tCURRENCY\tFEE\tINTERVAL\tTIMING\tRULES")
			for _, n := range names {
				p := ps[n]
				types := make([]string, len(p.Rules))
				for i, r := range p.Rules {
					types[i] = r.Type
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Version, store.FormatTime(p.EffectiveFrom), p.Currency,
					p.Fee, p.Interval(), p.Timing(), strings.Join(types, ", "))
			}
			return tw.Flush()
		},
	}
}

func (a *app) policyShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: "Show every version of a policy with its effective time, fee and rules", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCapability(cmd.Context(), a, "policy versions", func(pv store.PolicyVersions, _ store.Store) error {
				vs, err := pv.PolicyHistory(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for i, v := range vs {
					until := "until now"
					if i+1 < len(vs) {
						until = "until " + store.FormatTime(vs[i+1].EffectiveFrom)
					}
					fmt.Fprintf(w, "%s version %d: effective %s, %s\n", v.Name, v.Version, store.FormatTime(v.EffectiveFrom), until)
					fmt.Fprintf(w, "  currency %s, fee %s %s in %s", v.Currency, v.Fee, v.Interval(), v.Timing())
					if v.Description != "" {
						fmt.Fprintf(w, " — %s", v.Description)
					}
					fmt.Fprintln(w)
					keys := make([]string, 0, len(v.Included))
					for k := range v.Included {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(w, "  included %s: %s\n", k, v.Included[k])
					}
					for _, r := range v.Rules {
						fmt.Fprintf(w, "  rule %s:\n", r.Type)
						for _, line := range strings.Split(strings.TrimRight(r.Spec, "\n"), "\n") {
							fmt.Fprintf(w, "    %s\n", line)
						}
					}
				}
				return nil
			})
		},
	}
}

func (a *app) policyAddRuleCmd() *cobra.Command {
	var typ, spec, specFile, effective string
	cmd := &cobra.Command{
		Use:   "add-rule POLICY --type TYPE (--spec YAML | --spec-file FILE) --effective TIME",
		Short: "Add a rule (or replace the rule of that type) in a new version of the policy, effective at a second",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at, err := parseEffective(effective)
			if err != nil {
				return err
			}
			if typ == "" {
				return fmt.Errorf("--type is required, one of: %s", strings.Join(rating.Types(), ", "))
			}
			if (spec == "") == (specFile == "") {
				return fmt.Errorf("give the rule's spec with exactly one of --spec or --spec-file")
			}
			if specFile != "" {
				var b []byte
				if specFile == "-" {
					b, err = io.ReadAll(cmd.InOrStdin())
				} else {
					b, err = os.ReadFile(specFile)
				}
				if err != nil {
					return fmt.Errorf("--spec-file: %w", err)
				}
				spec = string(b)
			}
			rs := billing.RuleSpec{Type: typ, Spec: spec}
			if err := rating.Validate(rs); err != nil {
				return fmt.Errorf("rule %s: %w", typ, err)
			}
			return withCapability(cmd.Context(), a, "policy versions", func(pv store.PolicyVersions, _ store.Store) error {
				p, err := pv.AddRule(cmd.Context(), args[0], rs, at)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "policy %s version %d: rule %s, effective %s\n", p.Name, p.Version, typ, store.FormatTime(p.EffectiveFrom))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "rule type, e.g. os.nova.server")
	cmd.Flags().StringVar(&spec, "spec", "", "the rule's spec as YAML")
	cmd.Flags().StringVar(&specFile, "spec-file", "", "file holding the rule's spec as YAML (- for stdin)")
	cmd.Flags().StringVar(&effective, "effective", "", "first second the new version applies (required)")
	return cmd
}

func (a *app) policyRemoveRuleCmd() *cobra.Command {
	var typ, effective string
	cmd := &cobra.Command{
		Use:   "remove-rule POLICY --type TYPE --effective TIME",
		Short: "Remove a rule in a new version of the policy, effective at a second",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at, err := parseEffective(effective)
			if err != nil {
				return err
			}
			if typ == "" {
				return fmt.Errorf("--type is required")
			}
			return withCapability(cmd.Context(), a, "policy versions", func(pv store.PolicyVersions, _ store.Store) error {
				p, err := pv.RemoveRule(cmd.Context(), args[0], typ, at)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "policy %s version %d: without rule %s, effective %s\n", p.Name, p.Version, typ, store.FormatTime(p.EffectiveFrom))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "rule to remove: its type, e.g. os.glance.image, or meter:NAME for a meter rule")
	cmd.Flags().StringVar(&effective, "effective", "", "first second the new version applies (required)")
	return cmd
}

func (a *app) discountCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "discount", Short: "Add and list customer discounts (percentage or fixed, on a line, a rule or the invoice)"}
	var d billing.Discount
	var pct, amount, start, end string
	add := &cobra.Command{
		Use:   "add --customer ID --scope invoice|rule|line (--percent 0.10 | --amount 5.00) --start TIME [--end TIME]",
		Short: "Add a discount valid over [start, end)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if pct != "" {
				if d.Percent, err = decimal.Parse(pct); err != nil {
					return fmt.Errorf("--percent %q: want a fraction such as 0.10", pct)
				}
			}
			if amount != "" {
				if d.Amount, err = decimal.Parse(amount); err != nil {
					return fmt.Errorf("--amount %q: want an amount such as 5.00", amount)
				}
			}
			if d.Start, err = interval.ParseTime(start); err != nil {
				return fmt.Errorf("--start %q: want RFC 3339 or a date YYYY-MM-DD", start)
			}
			if end != "" {
				if d.End, err = interval.ParseTime(end); err != nil {
					return fmt.Errorf("--end %q: want RFC 3339 or a date YYYY-MM-DD", end)
				}
			}
			return withCapability(cmd.Context(), a, "discounts", func(ds store.Discounts, st store.Store) error {
				if d.Amount.IsPos() && d.Currency == "" {
					cs, err := st.GetCustomers(cmd.Context(), []string{d.CustomerID})
					if err == nil && len(cs) == 1 {
						d.Currency = cs[0].Currency
					}
				}
				out, err := ds.AddDiscounts(cmd.Context(), []billing.Discount{d})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "discount %d added for %s\n", out[0].ID, d.CustomerID)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&d.CustomerID, "customer", "", "customer id (required)")
	f.StringVar(&d.Scope, "scope", billing.DiscountInvoice, "invoice, rule or line")
	f.StringVar(&d.RuleType, "rule-type", "", "for scope rule: the rule type, e.g. os.nova.server")
	f.StringVar(&d.ResourceID, "resource", "", "for scope line: the resource id")
	f.StringVar(&pct, "percent", "", "a fraction, e.g. 0.10 for 10 %")
	f.StringVar(&amount, "amount", "", "a fixed amount in the customer's currency")
	f.StringVar(&start, "start", "", "first second of validity (required)")
	f.StringVar(&end, "end", "", "end of validity, exclusive (default: open)")
	f.StringVar(&d.Reason, "reason", "", "shown on the invoice line")
	var customer, period string
	list := &cobra.Command{
		Use: "list --customer ID [--period YYYY-MM]", Short: "List a customer's discounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := interval.Range{Start: time.Unix(0, 0).UTC(), End: interval.Forever}
			if period != "" {
				var err error
				if r, err = interval.Month(period, a.cfg.Location()); err != nil {
					return err
				}
			}
			return withCapability(cmd.Context(), a, "discounts", func(ds store.Discounts, _ store.Store) error {
				list, err := ds.Discounts(cmd.Context(), []string{customer}, r)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCUSTOMER\tSCOPE\tON\tPERCENT\tAMOUNT\tSTART\tEND\tREASON")
				for _, d := range list {
					on := d.RuleType + d.ResourceID
					endText := "open"
					if !d.End.IsZero() {
						endText = d.End.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", d.ID, d.CustomerID, d.Scope, on, d.Percent, d.Amount, d.Currency,
						d.Start.Format(time.RFC3339), endText, d.Reason)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&customer, "customer", "", "customer id (required)")
	list.Flags().StringVar(&period, "period", "", "only discounts valid in this month")
	cmd.AddCommand(add, list)
	return cmd
}

func (a *app) subscriptionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "subscription", Short: "Change or cancel a customer's subscription at a second (prorated on the next invoice)"}
	var at string
	change := &cobra.Command{
		Use: "change CUSTOMER POLICY --at TIME", Short: "End the subscription in force at TIME and start one to POLICY", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseEffective(at)
			if err != nil {
				return err
			}
			return withCapability(cmd.Context(), a, "subscription changes", func(sc store.SubscriptionChanges, _ store.Store) error {
				s, err := sc.ChangeSubscription(cmd.Context(), args[0], args[1], t)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "subscription %d: %s on %s from %s\n", s.ID, s.CustomerID, s.Policy, store.FormatTime(s.Start))
				return nil
			})
		},
	}
	cancel := &cobra.Command{
		Use: "cancel CUSTOMER --at TIME", Short: "End the subscription in force at TIME at that second", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseEffective(at)
			if err != nil {
				return err
			}
			return withCapability(cmd.Context(), a, "subscription changes", func(sc store.SubscriptionChanges, _ store.Store) error {
				s, err := sc.CancelSubscription(cmd.Context(), args[0], t)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "subscription %d: %s on %s ends %s\n", s.ID, s.CustomerID, s.Policy, store.FormatTime(s.End))
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{change, cancel} {
		c.Flags().StringVar(&at, "at", "", "the second of the change (required)")
	}
	cmd.AddCommand(change, cancel)
	return cmd
}
