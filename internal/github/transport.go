package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultMaxRetries is used when Options.MaxRetries is 0.
	DefaultMaxRetries = 4
	// DefaultRequestTimeout bounds one attempt of one request (a hung
	// connection is a transport error, retried like the others).
	DefaultRequestTimeout = time.Minute
	// DefaultMaxRateLimitWait bounds a wait for a rate limit to reset; a
	// longer wait fails with *RateLimitError instead.
	DefaultMaxRateLimitWait = 15 * time.Minute
	// secondaryDefaultWait: GitHub's advice when a secondary limit names no Retry-After.
	secondaryDefaultWait = time.Minute
	backoffBase          = time.Second
	backoffCap           = 30 * time.Second
	// attemptsHeader is added to a failed response handed back after
	// retries, so that the error can say how often it was tried.
	attemptsHeader = "X-Offshoot-Attempts"
)

// RateLimitError: GitHub's rate limit was hit and offshoot did not wait it
// out, because the wait exceeded the bound or the attempts were used up.
type RateLimitError struct {
	Secondary bool          // secondary ("abuse") limit rather than the hourly quota
	Wait      time.Duration // how long GitHub asked us to wait
	Reset     time.Time     // primary: when the quota resets
	MaxWait   time.Duration // the bound (Options.MaxRateLimitWait)
	Attempts  int
}

func (e *RateLimitError) Error() string {
	kind := "primary rate limit exhausted"
	if e.Secondary {
		kind = "secondary rate limit hit"
	}
	when := fmt.Sprintf("retry after %s", e.Wait.Round(time.Second))
	if !e.Reset.IsZero() {
		when = fmt.Sprintf("resets at %s (in %s)", e.Reset.UTC().Format(time.RFC3339), e.Wait.Round(time.Second))
	}
	if e.Wait > e.MaxWait {
		return fmt.Sprintf("%s: %s, longer than the %s offshoot waits", kind, when, e.MaxWait)
	}
	return fmt.Sprintf("%s: %s; gave up after %d attempts", kind, when, e.Attempts)
}

type transportOptions struct {
	base           http.RoundTripper
	attemptTimeout time.Duration                         // per attempt, including reading the body
	authorize      func(context.Context) (string, error) // the Authorization header value
	maxRetries     int
	maxWait        time.Duration
	sleep          func(time.Duration)
	now            func() time.Time
	logger         *slog.Logger
	secrets        *redactor
}

// transport authenticates every request and applies GitHub's rate-limit
// rules and the retry policy below go-github, so that go-github (whose own
// rate-limit memory uses the wall clock) only ever sees final answers.
type transport struct {
	transportOptions
	mu        sync.Mutex
	exhausted map[string]time.Time // resource → our-clock time the primary quota resets
}

func newTransport(o transportOptions) (*transport, error) {
	if o.base == nil {
		o.base = http.DefaultTransport
	}
	switch {
	case o.maxRetries == 0:
		o.maxRetries = DefaultMaxRetries
	case o.maxRetries < 0:
		o.maxRetries = 0
	}
	if o.maxWait <= 0 {
		o.maxWait = DefaultMaxRateLimitWait
	}
	if o.attemptTimeout <= 0 {
		o.attemptTimeout = DefaultRequestTimeout
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.secrets == nil {
		o.secrets = &redactor{}
	}
	if o.authorize == nil {
		return nil, errors.New("github: no authentication configured")
	}
	return &transport{transportOptions: o, exhausted: map[string]time.Time{}}, nil
}

// ambiguousWriteKey marks a request whose repetition could duplicate a
// write (creating a comment or a PR): a 5xx or a transport error is not
// retried blindly; the caller re-reads and decides.
type ambiguousWriteKey struct{}

func noBlindRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, ambiguousWriteKey{}, true)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	blind := ctx.Value(ambiguousWriteKey{}) == nil
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		if err := t.waitQuota(ctx, resourceOf(req), attempt); err != nil {
			closeBody(req)
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, t.attemptTimeout)
		r := req.Clone(actx)
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				cancel()
				return nil, err
			}
			r.Body = body
		}
		h, err := t.authorize(ctx)
		if err != nil {
			cancel()
			closeBody(req)
			return nil, err
		}
		r.Header.Set("Authorization", h)
		canRetry := attempt <= t.maxRetries && replayable

		resp, err := t.base.RoundTrip(r)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !canRetry || !blind {
				return nil, fmt.Errorf("%w (attempt %d)", err, attempt)
			}
			wait := backoff(attempt)
			t.logRetry(req, 0, err.Error(), attempt, wait)
			if err := t.sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}

		// The attempt's deadline also covers reading the body: released on Close.
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}

		switch c := resp.StatusCode; {
		case c == http.StatusForbidden || c == http.StatusTooManyRequests:
			rl := t.rateLimit(resp)
			if rl == nil {
				return resp, nil // an ordinary 403: permissions
			}
			rl.Attempts, rl.MaxWait = attempt, t.maxWait
			discard(resp)
			if rl.Wait > t.maxWait || !canRetry {
				return nil, rl
			}
			t.logRetry(req, c, "rate limited", attempt, rl.Wait)
			if err := t.sleepCtx(ctx, rl.Wait); err != nil {
				return nil, err
			}
		case c == 500 || c == 502 || c == 503 || c == 504:
			if !canRetry || !blind {
				resp.Header.Set(attemptsHeader, strconv.Itoa(attempt))
				return resp, nil
			}
			wait := backoff(attempt)
			if ra, ok := retryAfter(resp, t.now()); ok && ra > wait && ra <= t.maxWait {
				wait = ra
			}
			discard(resp)
			t.logRetry(req, c, "server error", attempt, wait)
			if err := t.sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
		default:
			t.noteQuota(resp)
			return resp, nil
		}
	}
}

// rateLimit recognises GitHub's rate-limit answers (documented under
// "Exceeding the rate limit"): Retry-After → wait that long; remaining 0 →
// wait until X-RateLimit-Reset; a 429 or a "secondary rate limit" message
// without either → wait a minute. nil: not a rate limit.
func (t *transport) rateLimit(resp *http.Response) *RateLimitError {
	now := t.now()
	if ra, ok := retryAfter(resp, now); ok {
		return &RateLimitError{Secondary: true, Wait: ra}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, ok := resetTime(resp, now); ok {
			wait := reset.Sub(now) + time.Second // the quota resets during that second
			if wait < time.Second {
				wait = time.Second
			}
			return &RateLimitError{Wait: wait, Reset: reset}
		}
		return &RateLimitError{Wait: secondaryDefaultWait}
	}
	// Peek at the message, keeping the body readable for go-github.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	msg := strings.ToLower(string(body))
	if resp.StatusCode == http.StatusTooManyRequests || strings.Contains(msg, "secondary rate limit") || strings.Contains(msg, "abuse detection") {
		return &RateLimitError{Secondary: true, Wait: secondaryDefaultWait}
	}
	return nil
}

// noteQuota remembers an exhausted primary quota announced by a successful
// response, so the next request waits for the reset (with our clock) instead
// of failing; go-github is kept from short-circuiting with its wall clock.
func (t *transport) noteQuota(resp *http.Response) {
	if resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	if reset, ok := resetTime(resp, t.now()); ok {
		res := resp.Header.Get("X-RateLimit-Resource")
		if res == "" {
			res = "core"
		}
		t.mu.Lock()
		t.exhausted[res] = reset
		t.mu.Unlock()
	}
	resp.Header.Del("X-RateLimit-Remaining")
	resp.Header.Del("X-RateLimit-Reset")
}

func (t *transport) waitQuota(ctx context.Context, resource string, attempt int) error {
	t.mu.Lock()
	until, ok := t.exhausted[resource]
	delete(t.exhausted, resource)
	t.mu.Unlock()
	if !ok {
		return nil
	}
	wait := until.Sub(t.now())
	if wait <= 0 {
		return nil
	}
	wait += time.Second
	if wait > t.maxWait {
		return &RateLimitError{Wait: wait, Reset: until, MaxWait: t.maxWait, Attempts: attempt - 1}
	}
	t.logger.Warn("github: rate limit quota exhausted; waiting for the reset", "resource", resource, "wait", wait.String())
	return t.sleepCtx(ctx, wait)
}

func (t *transport) sleepCtx(ctx context.Context, d time.Duration) error {
	if t.sleep != nil {
		t.sleep(d)
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (t *transport) logRetry(req *http.Request, status int, reason string, attempt int, wait time.Duration) {
	t.logger.Warn("github: retrying request", "method", req.Method, "path", req.URL.Path,
		"status", status, "reason", t.secrets.scrub(reason), "attempt", attempt, "wait", wait.String())
}

func backoff(attempt int) time.Duration {
	d := backoffBase << (attempt - 1)
	if d > backoffCap || d <= 0 {
		d = backoffCap
	}
	return d
}

func resourceOf(req *http.Request) string {
	if strings.HasSuffix(req.URL.Path, "/graphql") {
		return "graphql"
	}
	return "core"
}

// retryAfter parses Retry-After (delay-seconds or an HTTP date).
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(serverNow(resp, now)); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// resetTime converts X-RateLimit-Reset (epoch seconds, GitHub's clock) to
// our clock, using the response's Date header to cancel clock skew.
func resetTime(resp *http.Response, now time.Time) (time.Time, bool) {
	n, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return now.Add(time.Unix(n, 0).Sub(serverNow(resp, now))), true
}

func serverNow(resp *http.Response, now time.Time) time.Time {
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		return d
	}
	return now
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// redactor replaces known secrets in text that leaves the package.
type redactor struct {
	mu      sync.Mutex
	secrets []string
}

func (r *redactor) add(s string) {
	if r == nil || len(s) < 8 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.secrets {
		if x == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	if len(r.secrets) > 64 {
		r.secrets = r.secrets[len(r.secrets)-64:]
	}
}

func (r *redactor) scrub(s string) string {
	if r == nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.secrets {
		s = strings.ReplaceAll(s, x, "REDACTED")
	}
	return s
}
