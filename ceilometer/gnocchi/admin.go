package gnocchi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

func asError(err error, target **Error) bool { return errors.As(err, target) }

// Status reads GET /v1/status: a cheap check that the API answers and the credentials work.
func (c *Client) Status(ctx context.Context) error {
	var v map[string]any
	_, err := c.do(ctx, request{method: http.MethodGet, path: "status", out: &v, ok: []int{http.StatusOK}, read: true})
	return err
}

// ArchivePolicyDefinition is one granularity of an archive policy.
type ArchivePolicyDefinition struct {
	Granularity string `json:"granularity"` // e.g. "1h"
	Timespan    string `json:"timespan"`    // e.g. "400 days"
}

// ArchivePolicy says which granularities and aggregation methods a metric keeps.
type ArchivePolicy struct {
	Name               string                    `json:"name"`
	BackWindow         int                       `json:"back_window"`
	Definition         []ArchivePolicyDefinition `json:"definition"`
	AggregationMethods []string                  `json:"aggregation_methods"`
}

// CreateArchivePolicy creates a policy; an existing one with that name is not an error.
func (c *Client) CreateArchivePolicy(ctx context.Context, p ArchivePolicy) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "archive_policy", body: p, ok: []int{http.StatusCreated},
		read: true}) // a repeat answers 409, which is success here
	if IsStatus(err, http.StatusConflict) {
		return nil
	}
	return err
}

// AttributeType is one attribute of a resource type.
type AttributeType struct {
	Type      string `json:"type"` // string, number, bool, uuid, datetime
	Required  bool   `json:"required"`
	MaxLength int    `json:"max_length,omitempty"`
}

// CreateResourceType creates a resource type; an existing one is not an error.
func (c *Client) CreateResourceType(ctx context.Context, name string, attrs map[string]AttributeType) error {
	body := map[string]any{"name": name, "attributes": attrs}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "resource_type", body: body, ok: []int{http.StatusCreated},
		read: true}) // a repeat answers 409, which is success here
	if IsStatus(err, http.StatusConflict) {
		return nil
	}
	return err
}

// NewResource is the body of a resource creation. Leave EndedAt nil for a living resource:
// Gnocchi 4.4 answers a JSON null there with a 500.
type NewResource struct {
	ID        string
	ProjectID string
	UserID    string
	StartedAt time.Time
	EndedAt   *time.Time
	// Metrics to create with the resource: name → archive policy name.
	Metrics    map[string]string
	Attributes map[string]any
}

func (r NewResource) body() map[string]any {
	b := map[string]any{"id": r.ID}
	if r.ProjectID != "" {
		b["project_id"] = r.ProjectID
	}
	if r.UserID != "" {
		b["user_id"] = r.UserID
	}
	if !r.StartedAt.IsZero() {
		b["started_at"] = Timestamp(r.StartedAt)
	}
	if r.EndedAt != nil {
		b["ended_at"] = Timestamp(*r.EndedAt)
	}
	if len(r.Metrics) > 0 {
		ms := map[string]any{}
		for name, policy := range r.Metrics {
			ms[name] = map[string]string{"archive_policy_name": policy}
		}
		b["metrics"] = ms
	}
	for k, v := range r.Attributes {
		b[k] = v
	}
	return b
}

// CreateResource creates a resource of a type (POST /v1/resource/TYPE).
func (c *Client) CreateResource(ctx context.Context, resourceType string, r NewResource) (Resource, error) {
	var out Resource
	_, err := c.do(ctx, request{method: http.MethodPost, path: "resource/" + url.PathEscape(resourceType), body: r.body(),
		out: &out, ok: []int{http.StatusCreated}})
	return out, err
}

// UpdateResource changes attributes of a resource (PATCH /v1/resource/TYPE/ID); Gnocchi keeps
// the previous values as a revision in the resource's history.
func (c *Client) UpdateResource(ctx context.Context, resourceType, id string, attrs map[string]any) (Resource, error) {
	var out Resource
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "resource/" + url.PathEscape(resourceType) + "/" + url.PathEscape(id),
		body: attrs, out: &out, ok: []int{http.StatusOK}})
	return out, err
}

// Measure is one raw value posted to Gnocchi.
type Measure struct {
	Timestamp string  `json:"timestamp"`
	Value     float64 `json:"value"`
}

// NewMeasure builds a measure at t.
func NewMeasure(t time.Time, v float64) Measure { return Measure{Timestamp: Timestamp(t), Value: v} }

// PostResourceMeasures posts measures for many resources' metrics in one call
// (POST /v1/batch/resources/metrics/measures): resource id → metric name → measures.
func (c *Client) PostResourceMeasures(ctx context.Context, measures map[string]map[string][]Measure) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "batch/resources/metrics/measures", body: measures,
		ok: []int{http.StatusAccepted}})
	return err
}
