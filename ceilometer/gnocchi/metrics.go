package gnocchi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Metric is one metric as GET /v1/metric lists it.
type Metric struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Unit       string `json:"unit"`
	ResourceID string `json:"resource_id"`
}

// MetricsNamed lists the metrics with this name over every resource, page by page (GET
// /v1/metric?name=…), calling fn with each page; it stops when fn returns false or an error.
func (c *Client) MetricsNamed(ctx context.Context, name string, fn func([]Metric) (bool, error)) error {
	marker := ""
	for {
		q := query{}
		q.set("name", name)
		q.set("limit", strconv.Itoa(c.opts.PageSize))
		q.set("marker", marker)
		var page []Metric
		h, err := c.do(ctx, request{method: http.MethodGet, path: q.encode("metric"), out: &page, ok: []int{http.StatusOK}, read: true})
		if err != nil {
			return err
		}
		if len(page) > 0 {
			more, err := fn(page)
			if err != nil || !more {
				return err
			}
		}
		next := nextMarker(h)
		if next == "" || len(page) < c.opts.PageSize || next == marker {
			return nil
		}
		marker = next
	}
}

// ResourceTypeNames lists the resource types Gnocchi knows (GET /v1/resource_type).
func (c *Client) ResourceTypeNames(ctx context.Context) ([]string, error) {
	var out []struct {
		Name string `json:"name"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "resource_type", out: &out, ok: []int{http.StatusOK}, read: true}); err != nil {
		return nil, err
	}
	names := make([]string, len(out))
	for i, t := range out {
		names[i] = t.Name
	}
	return names, nil
}

// HasResourceType reports whether Gnocchi knows a resource type (GET /v1/resource_type/NAME).
func (c *Client) HasResourceType(ctx context.Context, name string) (bool, error) {
	var v map[string]any
	_, err := c.do(ctx, request{method: http.MethodGet, path: "resource_type/" + url.PathEscape(name), out: &v, ok: []int{http.StatusOK}, read: true})
	if IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return err == nil, err
}
