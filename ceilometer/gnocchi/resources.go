package gnocchi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Resource is one revision of a Gnocchi resource. Attributes holds the type's own attributes
// (flavor_name, display_name…) as Gnocchi gave them.
type Resource struct {
	ID                 string
	Type               string
	ProjectID          string
	UserID             string
	OriginalResourceID string
	StartedAt          time.Time
	// EndedAt is nil while the resource lives.
	EndedAt       *time.Time
	RevisionStart time.Time
	// RevisionEnd is nil for the current revision.
	RevisionEnd *time.Time
	// Metrics maps metric names to metric ids.
	Metrics    map[string]string
	Attributes map[string]any
}

var resourceFields = map[string]bool{
	"id": true, "type": true, "project_id": true, "user_id": true, "original_resource_id": true,
	"started_at": true, "ended_at": true, "revision_start": true, "revision_end": true,
	"metrics": true, "creator": true, "created_by_user_id": true, "created_by_project_id": true,
}

// UnmarshalJSON reads a resource; unknown fields become Attributes.
func (r *Resource) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	str := func(k string) string {
		var s *string
		_ = json.Unmarshal(raw[k], &s)
		if s == nil {
			return ""
		}
		return *s
	}
	*r = Resource{ID: str("id"), Type: str("type"), ProjectID: str("project_id"), UserID: str("user_id"),
		OriginalResourceID: str("original_resource_id"), Attributes: map[string]any{}}
	var err error
	parse := func(k string, dst **time.Time) {
		s := str(k)
		if err != nil || s == "" {
			return
		}
		t, e := ParseTime(s)
		if e != nil {
			err = fmt.Errorf("resource %s: %s %q: %w", r.ID, k, s, e)
			return
		}
		*dst = &t
	}
	var started, revStart *time.Time
	parse("started_at", &started)
	parse("ended_at", &r.EndedAt)
	parse("revision_start", &revStart)
	parse("revision_end", &r.RevisionEnd)
	if err != nil {
		return err
	}
	if started != nil {
		r.StartedAt = *started
	}
	if revStart != nil {
		r.RevisionStart = *revStart
	}
	if m := raw["metrics"]; len(m) > 0 && string(m) != "null" {
		// A search answers name → id; a single resource may list metric objects.
		if json.Unmarshal(m, &r.Metrics) != nil {
			r.Metrics = nil
		}
	}
	for k, v := range raw {
		if resourceFields[k] {
			continue
		}
		var a any
		if err := json.Unmarshal(v, &a); err == nil {
			r.Attributes[k] = a
		}
	}
	return nil
}

// Attr returns a type attribute as text ("" when absent or null).
func (r Resource) Attr(name string) string {
	switch v := r.Attributes[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// ParseTime reads Gnocchi's timestamps (ISO 8601 with offset, optional fraction; naive means UTC).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 timestamp")
}

// SearchOpts narrows a resource search.
type SearchOpts struct {
	// Filter is Gnocchi's search expression, e.g. {"=": {"project_id": "…"}}; nil matches all.
	Filter any
	// History lists every revision of each resource instead of the current one.
	History bool
	// Sort keys, e.g. "id:asc". Defaults to Gnocchi's (revision_start, started_at).
	Sort []string
	// PageSize overrides the client's page size.
	PageSize int
}

// SearchResources searches the resources of a type (POST /v1/search/resource/TYPE), page by
// page, calling fn with each page. It stops at the first error fn returns.
func (c *Client) SearchResources(ctx context.Context, resourceType string, o SearchOpts, fn func([]Resource) error) error {
	limit := o.PageSize
	if limit <= 0 {
		limit = c.opts.PageSize
	}
	body := o.Filter
	if body == nil {
		body = map[string]any{}
	}
	marker := ""
	for {
		q := query{}
		q.set("limit", strconv.Itoa(limit))
		q.set("marker", marker)
		if o.History {
			q.set("history", "true")
		}
		for _, s := range o.Sort {
			q.add("sort", s)
		}
		var page []Resource
		h, err := c.do(ctx, request{method: http.MethodPost, path: q.encode("search/resource/" + url.PathEscape(resourceType)),
			body: body, out: &page, ok: []int{http.StatusOK}, read: true})
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		next := nextMarker(h)
		if next == "" || len(page) < limit || next == marker {
			return nil
		}
		marker = next
	}
}

// ListResources is SearchResources collecting every page.
func (c *Client) ListResources(ctx context.Context, resourceType string, o SearchOpts) ([]Resource, error) {
	var out []Resource
	err := c.SearchResources(ctx, resourceType, o, func(p []Resource) error {
		out = append(out, p...)
		return nil
	})
	return out, err
}

// ResourceHistory returns every revision of one resource, oldest first
// (GET /v1/resource/TYPE/ID/history), page by page.
func (c *Client) ResourceHistory(ctx context.Context, resourceType, id string) ([]Resource, error) {
	var out []Resource
	marker := ""
	for {
		q := query{}
		q.set("limit", strconv.Itoa(c.opts.PageSize))
		q.set("marker", marker)
		var page []Resource
		h, err := c.do(ctx, request{method: http.MethodGet,
			path: q.encode("resource/" + url.PathEscape(resourceType) + "/" + url.PathEscape(id) + "/history"),
			out:  &page, ok: []int{http.StatusOK}, read: true})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		next := nextMarker(h)
		if next == "" || len(page) < c.opts.PageSize || next == marker {
			return out, nil
		}
		marker = next
	}
}

// GetResource returns the current revision of one resource.
func (c *Client) GetResource(ctx context.Context, resourceType, id string) (Resource, error) {
	var r Resource
	_, err := c.do(ctx, request{method: http.MethodGet, path: "resource/" + url.PathEscape(resourceType) + "/" + url.PathEscape(id),
		out: &r, ok: []int{http.StatusOK}, read: true})
	return r, err
}
