package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/bilean/bilean/balance"
	"github.com/bilean/bilean/billing"
	"github.com/bilean/bilean/ceilometer/listener"
	"github.com/bilean/bilean/ceilometer/notification"
	"github.com/bilean/bilean/config"
	"github.com/bilean/bilean/etc"
	"github.com/bilean/bilean/store"
)

func init() { register(func(a *app) *cobra.Command { return a.listenCmd() }) }

func (a *app) listenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "listen",
		Short: "Record OpenStack notifications from RabbitMQ as trigger records, until SIGTERM",
		Long: `Consumes the notifications of the exchanges in listener.exchanges through the durable queue
listener.queue, turns them into events with the definitions of listener.events (etc/events.yaml by
default), and writes them in batches, acknowledged only after commit. Messages that cannot be read
are quarantined with their reason. SIGTERM or Ctrl-C drains: the batch in hand is committed and
acknowledged before exit. Prometheus metrics are served on listener.metrics_address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			lc := a.cfg.Listener
			// The listener's heap is small and short-lived (a batch of messages): a lazier GC
			// saves about 15 % of its CPU per message. GOGC, when set, wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			defs, err := loadEventDefinitions(lc)
			if err != nil {
				return err
			}
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			var es store.Events = st
			reg := prometheus.NewRegistry()
			m := listener.NewMetrics(reg)
			if lc.MetricsAddress != "off" {
				if err := listener.ServeMetrics(ctx, lc.MetricsAddress, reg, a.log); err != nil {
					return fmt.Errorf("listener.metrics_address %s: %w", lc.MetricsAddress, err)
				}
			}
			l := listener.New(listenerConfig(lc), defs, es, a.log, m)
			// Prepaid balances: each committed batch queues its customers for a burn-state refresh
			// (off the commit path), and the balance jobs run every balance.job_interval; their
			// notices are emailed when mail.host is set (kept and retried by the next pass when the
			// mail server is down).
			svc, err := balance.New(st, a.cfg, a.log)
			if err == nil {
				if merr := svc.UseMail(); merr != nil {
					a.log.Warn("balance notices are logged, not emailed", "err", merr)
				}
				svc.Cloud = a.balanceCloud(ctx)
				r := balance.NewRefresher(svc)
				l.OnCommitted = r.OnCommitted
				go r.Run(ctx)
				go svc.Loop(ctx)
			} else {
				a.log.Warn("prepaid balances are off", "err", err)
			}
			return l.Run(ctx)
		},
	}
}

// loadEventDefinitions reads listener.events, or the shipped definitions when it is empty.
func loadEventDefinitions(lc config.Listener) (*notification.Definitions, error) {
	if lc.Events != "" {
		return notification.LoadDefinitions(lc.Events)
	}
	return notification.ParseDefinitions("built-in etc/events.yaml", etc.Events)
}

// listenerConfig maps the configuration section onto the listener's settings.
func listenerConfig(lc config.Listener) listener.Config {
	c := listener.Config{
		URL: lc.URL, Exchanges: lc.Exchanges, Durable: lc.Durable, Queue: lc.Queue, RoutingKeys: lc.RoutingKeys,
		Prefetch: lc.Prefetch, BatchSize: lc.BatchSize, BatchWait: lc.BatchWait,
		MinEventTime: lc.MinEventTime, MaxEventAhead: lc.MaxEventAhead,
	}
	if lc.UnknownProjects.Mode == "create" {
		c.NewCustomer = &billing.Customer{Currency: lc.UnknownProjects.Currency, Policy: lc.UnknownProjects.Policy, Status: billing.Active}
	}
	return c
}
