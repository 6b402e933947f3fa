package usage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bilean/bilean/ceilometer/gnocchi"
	"github.com/bilean/bilean/config"
)

// ConfigError is a gnocchi section that does not match what Gnocchi holds: a resource type it
// does not know, a metric no resource of that type carries. It fails the whole run, before
// anything is billed: the same mistake would bill every customer wrong (a misspelled metric
// bills nothing, silently), and a run of the customers it happens not to touch would leave the
// others to a second run for no reason. Field names the setting, e.g. gnocchi.meters[0].metric.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// metricUse is one (resource type, metric) pair the configuration reads, and the setting that
// names it.
type metricUse struct {
	resourceType, metric string
	typeField, field     string
}

// uses lists what the configuration reads: every meter, and the metrics of the spans whose
// source is gnocchi.
func (s *Source) uses() []metricUse {
	var out []metricUse
	for i, m := range s.cfg.Meters {
		f := fmt.Sprintf("gnocchi.meters[%d]", i)
		out = append(out, metricUse{m.ResourceType, m.Metric, f + ".resource_type", f + ".metric"})
	}
	for i, sp := range s.cfg.Spans {
		f := fmt.Sprintf("gnocchi.spans[%d]", i)
		if sp.Source != config.SourceGnocchi {
			continue
		}
		out = append(out, metricUse{sp.ResourceType, "", f + ".resource_type", ""})
		for _, k := range sortedKeys(sp.AttributesFromMetrics) {
			out = append(out, metricUse{sp.ResourceType, sp.AttributesFromMetrics[k], f + ".resource_type", f + ".attributes_from_metrics." + k})
		}
	}
	return out
}

// Check makes sure, once per Source, that what the gnocchi section names exists in Gnocchi:
// every resource type, and every metric on at least one resource of its type (a type with no
// resource at all yet has nothing to bill, and is not checked further). It is what tells a
// misspelled metric (a *ConfigError: the run fails) from a resource with no measures in the
// window (legitimately nothing to bill): Gnocchi answers both with the same "Metrics not found".
// Fetch calls it first.
// A Gnocchi that does not answer is not remembered: the next call checks again.
func (s *Source) Check(ctx context.Context) error {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if s.checked {
		return s.checkErr
	}
	err := s.check(ctx)
	var ce *ConfigError
	if err == nil || errors.As(err, &ce) {
		s.checked, s.checkErr = true, err
	}
	return err
}

func (s *Source) check(ctx context.Context) error {
	types := map[string]*typeInfo{}
	checked := map[[2]string]bool{}
	var errs []error
	for _, u := range s.uses() {
		ti, ok := types[u.resourceType]
		if !ok {
			var err error
			if ti, err = s.typeInfo(ctx, u.resourceType); err != nil {
				return fmt.Errorf("check %s: %w", u.typeField, err)
			}
			types[u.resourceType] = ti
			if !ti.exists {
				names, err := s.gn.ResourceTypeNames(ctx)
				if err != nil {
					return fmt.Errorf("check %s: %w", u.typeField, err)
				}
				errs = append(errs, &ConfigError{Field: u.typeField, Msg: fmt.Sprintf("Gnocchi has no resource type %q (it has: %s)",
					u.resourceType, strings.Join(names, ", "))})
			}
		}
		if !ti.exists || u.metric == "" || ti.empty || checked[[2]string{u.resourceType, u.metric}] {
			continue
		}
		checked[[2]string{u.resourceType, u.metric}] = true
		if ti.metrics[u.metric] {
			continue
		}
		found, err := s.metricOnType(ctx, u.resourceType, u.metric)
		if err != nil {
			return fmt.Errorf("check %s: %w", u.field, err)
		}
		if !found {
			errs = append(errs, &ConfigError{Field: u.field, Msg: fmt.Sprintf(
				"no %s resource in Gnocchi has a metric %q (metrics seen on %s resources: %s): a misspelled metric would bill nothing",
				u.resourceType, u.metric, u.resourceType, strings.Join(sortedKeys(ti.metrics), ", "))})
		}
	}
	return errors.Join(errs...)
}

// typeInfo is what a look at a resource type found: whether Gnocchi knows it, whether it has
// any resource, and the metric names of a first page of its resources.
type typeInfo struct {
	exists, empty bool
	metrics       map[string]bool
}

// sampleSize is how many resources of a type Check looks at before asking by metric name.
const sampleSize = 50

func (s *Source) typeInfo(ctx context.Context, typ string) (*typeInfo, error) {
	ok, err := s.gn.HasResourceType(ctx, typ)
	if err != nil || !ok {
		return &typeInfo{}, err
	}
	ti := &typeInfo{exists: true, metrics: map[string]bool{}}
	var page []gnocchi.Resource
	err = s.gn.SearchResources(ctx, typ, gnocchi.SearchOpts{PageSize: sampleSize}, func(p []gnocchi.Resource) error {
		page = p
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	ti.empty = len(page) == 0
	for _, r := range page {
		for m := range r.Metrics {
			ti.metrics[m] = true
		}
	}
	return ti, nil
}

var errStop = errors.New("stop")

// metricOnType reports whether some resource of the type has a metric of this name: the metrics
// of that name (over all resource types), page by page, and whether any of their resources is
// of the type.
func (s *Source) metricOnType(ctx context.Context, typ, metric string) (bool, error) {
	found := false
	err := s.gn.MetricsNamed(ctx, metric, func(ms []gnocchi.Metric) (bool, error) {
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			if m.ResourceID != "" {
				ids = append(ids, m.ResourceID)
			}
		}
		if len(ids) == 0 {
			return true, nil
		}
		err := s.gn.SearchResources(ctx, typ, gnocchi.SearchOpts{PageSize: 1,
			Filter: map[string]any{"in": map[string]any{"id": ids}}}, func(p []gnocchi.Resource) error {
			found = len(p) > 0
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return false, err
		}
		return !found, nil
	})
	return found, err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
