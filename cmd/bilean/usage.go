package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/calc"
	"github.com/bilean/bilean/ceilometer/usage"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/interval"
	"github.com/bilean/bilean/invoice"
	"github.com/bilean/bilean/pipeline"
	"github.com/bilean/bilean/store"
	"github.com/spf13/cobra"
)

func init() { register(func(a *app) *cobra.Command { return a.usageCmd() }) }

func (a *app) usageCmd() *cobra.Command {
	var period, source, output string
	cmd := &cobra.Command{
		Use:   "usage CUSTOMER",
		Short: "Show what a run would bill a customer for a month, by resource and meter",
		Long: `Shows the usage a run would bill one customer (a Keystone project id) for one month: the
spans of each resource (trigger records, clipped to the month) and the meter totals of each
resource: those stored by 'bilean import meters' and, from Gnocchi, those gnocchi.meters defines.
Meters are priced when the customer's policy has a rule for them. Nothing is stored.

  --source store    (default) the trigger records in the store (listener, imports), the meter
                    totals in the store that overlap the month, and the meters from Gnocchi when
                    gnocchi.enabled is true
  --source gnocchi  spans of every type in gnocchi.spans and the meters, read from Gnocchi
                    (openstack section: clouds.yaml, OS_* or a standalone gnocchi_url)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			if source != "gnocchi" && source != "store" {
				return fmt.Errorf("--source %q: want gnocchi or store", source)
			}
			loc := a.cfg.Location()
			if period == "" {
				period = time.Now().In(loc).Format("2006-01")
			}
			p, err := interval.Month(period, loc)
			if err != nil {
				return fmt.Errorf("--period: %w", err)
			}
			ctx := cmd.Context()
			customer := args[0]
			var (
				recs   []billing.Record
				meters []billing.MeterTotal
			)
			if source == "gnocchi" || a.cfg.Gnocchi.Enabled {
				src, err := usage.Open(ctx, a.cfg)
				if err != nil {
					return err
				}
				o := usage.Options{Spans: a.cfg.Gnocchi.Spans, NoSpans: source != "gnocchi"}
				u, err := src.Fetch(ctx, []string{customer}, p, o)
				if err != nil {
					return err
				}
				recs, meters = u.Records, u.Meters
				a.log.Debug("gnocchi usage read", "requests", src.Client().Requests(), "openstack", a.cfg.OpenStack)
			}
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			if source == "store" {
				us, err := st.Usage(ctx, []string{customer}, p.End)
				if err != nil {
					return fmt.Errorf("load usage of %s: %w", customer, err)
				}
				for _, ru := range us {
					recs = append(recs, ru.Records...)
				}
				stored, err := st.MeterTotals(ctx, []string{customer}, p)
				if err != nil {
					return fmt.Errorf("load meter totals of %s: %w", customer, err)
				}
				meters = append(meters, stored...)
			}
			rep := usage.NewReport(customer, p, source, recs, meters)
			if len(meters) > 0 {
				if err := priceMeters(cmd, st, a.cfg, rep, meters); err != nil {
					return err
				}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "month, e.g. 2026-10 (default: the current month)")
	cmd.Flags().StringVar(&source, "source", "store", "where spans and meter totals come from: store or gnocchi")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// priceMeters prices the report's meter totals through the calculator, exactly as a run prices
// them (calc.Price): each piece under the policy version in force for it (subscription, else the
// customer's policy, else billing.default_policy), split pro rata at version and subscription
// changes, tiers and included quantities on the period total. What live invoices billed already
// is not subtracted: the report shows what the period's usage costs. A customer the store does
// not know is shown unpriced; a meter no rule prices is listed as unpriced.
func priceMeters(cmd *cobra.Command, st store.Store, cfg *config.Config, rep *usage.Report, meters []billing.MeterTotal) error {
	ctx := cmd.Context()
	cs, err := st.GetCustomers(ctx, []string{rep.Customer})
	if err != nil {
		return fmt.Errorf("load customer %s: %w", rep.Customer, err)
	}
	if len(cs) == 0 {
		rep.Unpriced = append(rep.Unpriced, meterNames(rep)...)
		return nil
	}
	c := cs[0]
	subs, err := st.Subscriptions(ctx, []string{c.ID}, rep.Period)
	if err != nil {
		return fmt.Errorf("load subscriptions of %s: %w", c.ID, err)
	}
	pols, err := calc.Catalog(ctx, st)
	if err != nil {
		return err
	}
	run := &pipeline.Run{Mode: pipeline.Interim, Period: rep.Period, Until: rep.Period.End, Now: rep.Period.End,
		Policies: pols, Stats: pipeline.NewStats()}
	it := &pipeline.Item{CustomerID: c.ID, Customer: c, Subscriptions: subs, Meters: meters,
		Invoice: &invoice.Invoice{CustomerID: c.ID, Currency: c.Currency, Period: rep.Period}}
	if err := calc.Price(run, it, calc.Options{Rounding: cfg.Billing.Rounding, DefaultPolicy: cfg.Billing.DefaultPolicy}); err != nil {
		return fmt.Errorf("price meters of %s: %w", c.ID, err)
	}
	rep.Currency = c.Currency
	if name := it.PolicyName(rep.Period.Start, cfg.Billing.DefaultPolicy); name != "" {
		rep.Policy = name
	}
	for _, l := range it.Invoice.Lines {
		if l.ResourceType != calc.MeterLineType {
			continue
		}
		rep.Prices = append(rep.Prices, usage.PriceLine{Meter: l.Attributes["meter"], Description: l.Description,
			Quantity: l.Quantity, Unit: l.Unit, UnitPrice: l.UnitPrice, Amount: l.Amount})
	}
	for k := range run.Stats.Unpriced {
		if m, ok := strings.CutPrefix(k, calc.MeterLineType+" "); ok {
			rep.Unpriced = append(rep.Unpriced, m)
		}
	}
	sort.Strings(rep.Unpriced)
	return nil
}

// meterNames returns the report's meters, each once, in order.
func meterNames(rep *usage.Report) []string {
	var out []string
	for _, m := range rep.Meters {
		if n := len(out); n == 0 || out[n-1] != m.Meter {
			out = append(out, m.Meter)
		}
	}
	return out
}
