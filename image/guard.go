package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The registry client's own guards. go-containerregistry (v0.22) already
// retries 408, 429, 5xx and temporary network errors three times (1 s,
// then 3 s: remote/options.go defaultRetryBackoff), keeps a token or
// Basic credentials to requests for the registry's own host
// (transport/bearer.go matchesHost), and verifies a blob's size and digest
// as it streams (internal/verify). It leaves these to its caller: a
// manifest may be 100 MiB (remote/fetcher.go manifestLimit) and is read
// before its size is judged; a redirect chain has no length limit (its
// CheckRedirect, checkRedirectSSRF, replaces net/http's 10-hop default);
// and a registry that stops sending holds a transfer forever.

// Errors of the registry client's guards.
var (
	ErrStalled   = errors.New("no progress")
	ErrRedirects = errors.New("redirect refused")
)

const (
	// DefaultStallTimeout is how long a transfer may make no progress.
	DefaultStallTimeout = 60 * time.Second
	// maxRedirects bounds a redirect chain: a registry sends a blob to its
	// storage (S3, a CDN), which may redirect once more.
	maxRedirects = 5
)

// guard is the innermost http.RoundTripper of every registry request:
// go-containerregistry's retry, auth and user agent wrap it.
type guard struct {
	inner http.RoundTripper
	stall time.Duration
}

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	r, err := checkRedirect(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(r.Context())
	w := &watchdog{cancel: cancel, stall: g.stall}
	w.timer = time.AfterFunc(g.stall, w.fire)
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody { // an upload makes progress as it is read
		r.Body = &uploadBody{ReadCloser: r.Body, w: w}
	}
	resp, err := g.inner.RoundTrip(r)
	if err != nil {
		w.stop()
		return nil, w.explain(err)
	}
	if r.Method == http.MethodGet && resp.StatusCode == http.StatusOK && strings.Contains(r.URL.Path, "/manifests/") {
		if resp.ContentLength > maxJSON {
			resp.Body.Close()
			w.stop()
			return nil, fmt.Errorf("manifest %s: %d bytes, over the %d MiB limit: %w", r.URL.Path, resp.ContentLength, maxJSON>>20, ErrTooLarge)
		}
		resp.Body = &capped{ReadCloser: resp.Body, left: maxJSON, what: r.URL.Path}
	}
	w.body = resp.Body
	resp.Body = w
	return resp, nil
}

// checkRedirect refuses a redirect chain longer than maxRedirects or to a
// scheme other than http(s) (net/http would refuse most others, but with
// a message that does not say a redirect led there), and takes any
// Authorization header off a request redirected to another host (net/http
// strips the headers it copied; this covers one a transport set).
func checkRedirect(r *http.Request) (*http.Request, error) {
	hops, first := 0, r
	for first.Response != nil && first.Response.Request != nil {
		hops++
		first = first.Response.Request
	}
	if hops == 0 {
		return r, nil
	}
	if hops > maxRedirects {
		return nil, fmt.Errorf("%s: more than %d redirects: %w", first.URL.Redacted(), maxRedirects, ErrRedirects)
	}
	if s := r.URL.Scheme; s != "http" && s != "https" {
		return nil, fmt.Errorf("%s: redirected to a %q URL: %w", first.URL.Redacted(), s, ErrRedirects)
	}
	if r.URL.Host != first.URL.Host && r.Header.Get("Authorization") != "" {
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
	}
	return r, nil
}

// watchdog cancels a request that makes no progress for stall: no
// response headers, or no body bytes, for that long.
type watchdog struct {
	body    io.ReadCloser
	cancel  context.CancelFunc
	stall   time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func (w *watchdog) fire() {
	w.stalled.Store(true)
	w.cancel()
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel()
}

// explain says a transfer stalled rather than that it was canceled.
func (w *watchdog) explain(err error) error {
	if w.stalled.Load() {
		return fmt.Errorf("%w for %s", ErrStalled, w.stall)
	}
	return err
}

func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if n > 0 {
		w.progress()
	}
	if err != nil && err != io.EOF {
		err = w.explain(err)
	}
	return n, err
}

// progress puts off the stall for another period.
func (w *watchdog) progress() {
	if !w.stalled.Load() {
		w.timer.Reset(w.stall)
	}
}

// uploadBody is a request body: each read of it is progress.
type uploadBody struct {
	io.ReadCloser
	w *watchdog
}

func (u *uploadBody) Read(p []byte) (int, error) {
	n, err := u.ReadCloser.Read(p)
	if n > 0 {
		u.w.progress()
	}
	return n, err
}

func (w *watchdog) Close() error {
	err := w.body.Close()
	w.stop()
	return err
}

// capped fails a read past left bytes, whatever Content-Length said.
type capped struct {
	io.ReadCloser
	left int64
	what string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("manifest %s: over the %d MiB limit: %w", c.what, maxJSON>>20, ErrTooLarge)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left+1] // one byte more tells a body of exactly the limit from a longer one
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("manifest %s: over the %d MiB limit: %w", c.what, maxJSON>>20, ErrTooLarge)
	}
	return n, err
}
