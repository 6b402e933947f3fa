// Package gnocchi is a client for the parts of Gnocchi's v1 API that billing reads (and the few
// it writes to seed tests), built on gophercloud's ServiceClient so that Keystone tokens, the
// catalog and re-authentication work as for every other OpenStack service.
//
// What it guarantees:
//   - every request is bounded by a deadline (the context's, and the HTTP client's timeout);
//   - reads are retried with exponential backoff on 5xx, 429, timeouts and lost connections,
//     never on 4xx; writes are not retried (a create that half-happened must not happen twice);
//   - an error names the request, Gnocchi's own message, and for 401, 403 and 404 the setting
//     to check;
//   - lists are read page by page (marker and limit, following Gnocchi's Link header), so
//     memory is bounded by a page.
package gnocchi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Options tune a Client. Zero values take the documented defaults.
type Options struct {
	// Retries after a failed read attempt. Defaults to 3; negative means none.
	Retries int
	// Backoff is the first wait between attempts; it doubles up to MaxBackoff, with jitter.
	// Defaults to 1s.
	Backoff time.Duration
	// MaxBackoff caps the wait. Defaults to 30s.
	MaxBackoff time.Duration
	// Timeout bounds one attempt (0: only the context and the HTTP client bound it).
	Timeout time.Duration
	// PageSize is the limit of each page of a listing. Defaults to 1000.
	PageSize int
}

// Client talks to one Gnocchi. It is safe for concurrent use.
type Client struct {
	sc       *gophercloud.ServiceClient
	opts     Options
	requests atomic.Int64
}

// New returns a client on a service client whose ResourceBase is Gnocchi's /v1/ (see
// cloud.Cloud.Metric).
func New(sc *gophercloud.ServiceClient, o Options) *Client {
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	return &Client{sc: sc, opts: o}
}

// Requests returns the number of HTTP requests sent so far (attempts, pages and retries
// included).
func (c *Client) Requests() int64 { return c.requests.Load() }

// Endpoint returns the base URL of the v1 API.
func (c *Client) Endpoint() string { return c.sc.ResourceBaseURL() }

// Error is a failed Gnocchi request.
type Error struct {
	Method string
	// Path is the request's path below the endpoint, with its query.
	Path string
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Cause is Gnocchi's own description of the problem, when it gave one.
	Cause string
	// Hint says which setting to check.
	Hint     string
	Attempts int
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gnocchi %s %s: ", e.Method, e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if e.Cause != "" {
			b.WriteString(": " + e.Cause)
		}
	} else {
		b.WriteString(e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsStatus reports whether err is a Gnocchi answer with this HTTP status.
func IsStatus(err error, status int) bool {
	var ge *Error
	return errors.As(err, &ge) && ge.Status == status
}

// request is one call.
type request struct {
	method string
	path   string // below the v1 base, with query
	body   any
	out    any
	ok     []int
	// read marks an idempotent call that may be retried.
	read bool
}

// do sends a request, retrying reads, and returns the response headers.
func (c *Client) do(ctx context.Context, r request) (http.Header, error) {
	url := c.sc.ServiceURL(r.path)
	attempts := 1 + c.opts.Retries
	if !r.read {
		attempts = 1
	}
	wait := c.opts.Backoff
	var last error
	for i := 1; ; i++ {
		h, err := c.once(ctx, url, r)
		if err == nil {
			return h, nil
		}
		last = err
		if !retryable(ctx, err) || i >= attempts {
			return nil, c.wrap(r, err, i)
		}
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil, c.wrap(r, errors.Join(last, ctx.Err()), i)
		case <-time.After(d):
		}
		wait = min(2*wait, c.opts.MaxBackoff)
	}
}

func (c *Client) once(ctx context.Context, url string, r request) (http.Header, error) {
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	c.requests.Add(1)
	opts := &gophercloud.RequestOpts{JSONBody: r.body, JSONResponse: r.out, OkCodes: r.ok}
	var resp *http.Response
	var err error
	switch r.method {
	case http.MethodGet:
		resp, err = c.sc.Get(ctx, url, r.out, opts)
	case http.MethodPost:
		resp, err = c.sc.Post(ctx, url, r.body, r.out, opts)
	case http.MethodDelete:
		resp, err = c.sc.Delete(ctx, url, opts)
	default:
		resp, err = c.sc.Request(ctx, r.method, url, opts)
	}
	if err != nil {
		return nil, err
	}
	if r.out == nil && resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if resp == nil {
		return nil, nil
	}
	return resp.Header, nil
}

// retryable reports whether a failed read may succeed when sent again: 5xx, 429 and 408
// answers, timeouts of one attempt, lost or refused connections. Not when the caller's own
// context is done.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if code, ok := statusOf(err); ok {
		return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

func statusOf(err error) (int, bool) {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual, true
	}
	var up *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &up) {
		return up.Actual, true
	}
	return 0, false
}

// wrap turns a gophercloud or transport error into an *Error with Gnocchi's cause and a hint.
func (c *Client) wrap(r request, err error, attempts int) error {
	e := &Error{Method: r.method, Path: "/v1/" + r.path, Attempts: attempts, Err: err}
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		var up *gophercloud.ErrUnexpectedResponseCode
		if errors.As(err, &up) {
			ue = *up
		}
	}
	if ue.Actual != 0 {
		e.Status = ue.Actual
		e.Cause = cause(ue.Body)
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		e.Hint = "Gnocchi refused the credentials: check openstack.username and openstack.password (standalone Gnocchi, basic auth) " +
			"or the Keystone credentials (openstack.cloud in clouds.yaml, or the OS_* variables)"
	case e.Status == http.StatusForbidden:
		e.Hint = "the account may not read this: billing reads every project's usage, so it needs Gnocchi's admin role " +
			"(Keystone: a user with the admin role in openstack.cloud / OS_*; basic auth: openstack.username admin)"
	case e.Status == http.StatusNotFound && strings.Contains(e.Cause, "aggregation"):
		e.Hint = "the metric's archive policy lacks this aggregation method: check gnocchi.meters[].method and .granularity"
	case e.Status == http.StatusNotFound:
		e.Hint = "check openstack.gnocchi_url (or the catalog's metric endpoint: openstack.region, openstack.interface) " +
			"and the resource types and metrics named in gnocchi.meters and gnocchi.spans"
	case e.Status == http.StatusBadRequest && strings.Contains(e.Cause, "Resource type"):
		e.Hint = "check the resource_type of gnocchi.meters and gnocchi.spans (Ceilometer creates instance, volume, instance_network_interface…)"
	case e.Status == http.StatusBadRequest && strings.Contains(e.Cause, "Granularities"):
		e.Hint = "the metric's archive policy has no such granularity: check gnocchi.meters[].granularity"
	case e.Status >= 500:
		e.Hint = "Gnocchi failed: see its API log"
	case e.Status == 0 && ctxDone(err):
		e.Hint = "the request ran out of time: raise openstack.timeout or lower gnocchi.batch_size"
	case e.Status == 0:
		e.Hint = "Gnocchi did not answer: check that it runs and openstack.gnocchi_url (or the catalog's metric endpoint)"
	}
	return e
}

func ctxDone(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout())
}

// cause extracts Gnocchi's description from an error body ({"description": …} or an HTML page).
func cause(body []byte) string {
	var v struct {
		Description json.RawMessage `json:"description"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Description) > 0 {
		var s string
		if json.Unmarshal(v.Description, &s) == nil {
			return s
		}
		var d struct {
			Cause  string          `json:"cause"`
			Reason string          `json:"reason"`
			Detail json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(v.Description, &d) == nil && d.Cause != "" {
			out := d.Cause
			if d.Reason != "" {
				out += ": " + d.Reason
			}
			if len(d.Detail) > 0 && string(d.Detail) != "null" {
				out += " " + truncate(string(d.Detail), 200)
			}
			return out
		}
		return truncate(string(v.Description), 300)
	}
	return truncate(strings.TrimSpace(string(body)), 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// query builds a query string; zero values are left out.
type query url.Values

func (q query) set(k, v string) {
	if v != "" {
		url.Values(q).Set(k, v)
	}
}

func (q query) add(k, v string) { url.Values(q).Add(k, v) }

func (q query) encode(path string) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + url.Values(q).Encode()
}

// Timestamp formats a time for Gnocchi's query strings (UTC, seconds).
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// nextMarker returns the marker of the next page from Gnocchi's Link header (rel="next").
func nextMarker(h http.Header) string {
	for _, l := range h.Values("Link") {
		for _, part := range strings.Split(l, ",") {
			if !strings.Contains(part, `rel="next"`) {
				continue
			}
			i, j := strings.Index(part, "<"), strings.Index(part, ">")
			if i < 0 || j < i {
				continue
			}
			u, err := url.Parse(part[i+1 : j])
			if err != nil {
				continue
			}
			return u.Query().Get("marker")
		}
	}
	return ""
}
