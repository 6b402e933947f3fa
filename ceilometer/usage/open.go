package usage

import (
	"context"
	"errors"
	"fmt"

	"github.com/bilean/bilean/ceilometer/cloud"
	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/config"
)

// Open connects to the Gnocchi the configuration names (openstack section) and returns a
// source reading as the gnocchi section says. It checks that Gnocchi answers, so a wrong URL or
// credentials fail here with the setting to check.
func Open(ctx context.Context, cfg *config.Config) (*Source, error) {
	if cfg == nil {
		return nil, errors.New("gnocchi: no configuration")
	}
	c, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		return nil, err
	}
	sc, err := c.Metric()
	if err != nil {
		return nil, err
	}
	gn := gnocchi.New(sc, gnocchi.Options{
		Retries:  cfg.OpenStack.RetryCount(),
		Backoff:  cfg.OpenStack.RetryWait,
		Timeout:  cfg.OpenStack.Timeout,
		PageSize: cfg.Gnocchi.PageSize,
	})
	if cfg.OpenStack.Retries < 0 {
		gn = gnocchi.New(sc, gnocchi.Options{Retries: -1, Timeout: cfg.OpenStack.Timeout, PageSize: cfg.Gnocchi.PageSize})
	}
	if err := gn.Status(ctx); err != nil {
		return nil, fmt.Errorf("connect to Gnocchi at %s: %w", gn.Endpoint(), err)
	}
	return New(gn, cfg.Gnocchi), nil
}
