// Package github is offshoot's GitHub adapter: pull requests in the
// environments repo, commit statuses and one comment per environment on the
// app repo, behind offshoot's own types. It uses go-github for the REST calls
// and adds GitHub's rate-limit rules, bounded retries, idempotent upserts and
// errors that name the call and never carry a credential.
package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// DefaultBaseURL is the REST API of github.com.
const DefaultBaseURL = "https://api.github.com/"

// Options configures a Client.
type Options struct {
	// BaseURL of the REST API: GITHUB_API_URL or --github-api-url
	// (https://HOST/api/v3 for GitHub Enterprise Server); default DefaultBaseURL.
	BaseURL string
	// GraphQLURL (GITHUB_GRAPHQL_URL); default derived from BaseURL:
	// …/api/v3/ → …/api/graphql, otherwise BaseURL + "graphql".
	GraphQLURL string
	Auth       Auth
	// HTTPClient's Transport and redirect policy are used, and its Timeout
	// (if set) bounds each attempt instead of DefaultRequestTimeout (waits
	// between attempts are not cut short by it). The client is not modified.
	HTTPClient *http.Client
	// MaxRetries for 5xx answers, transport errors and rate limits; 0 means
	// DefaultMaxRetries, a negative value none.
	MaxRetries int
	// MaxRateLimitWait bounds a wait for a rate limit; 0 means DefaultMaxRateLimitWait.
	MaxRateLimitWait time.Duration
	Sleep            func(time.Duration) // tests; default a context-aware timer
	Now              func() time.Time    // tests; default time.Now
	Logger           *slog.Logger        // retries and waits at Warn; default discards
	UserAgent        string              // default "offshoot"
}

// Client talks to one GitHub (github.com or an Enterprise Server).
type Client struct {
	gh         *gh.Client
	graphqlURL string
	secrets    *redactor
	maxRetries int
	sleepCtx   func(context.Context, time.Duration) error
	logger     *slog.Logger
}

// New returns a Client. It makes no request.
func New(o Options) (*Client, error) {
	if o.Auth == nil {
		return nil, errors.New("github: no authentication: set GITHUB_TOKEN or configure a GitHub App")
	}
	secrets := &redactor{}
	auth := o.Auth
	if st, ok := o.Auth.(staticToken); ok && st.tok == "" {
		return nil, errors.New("github: empty token (set GITHUB_TOKEN or configure a GitHub App)")
	}
	t, err := newTransport(transportOptions{
		base: baseTransport(o.HTTPClient), attemptTimeout: requestTimeout(o.HTTPClient),
		authorize: func(ctx context.Context) (string, error) {
			tok, err := auth.Token(ctx)
			if err != nil {
				return "", err
			}
			if tok == "" {
				return "", errors.New("github: the credential source returned an empty token")
			}
			secrets.add(tok)
			return "Bearer " + tok, nil
		},
		maxRetries: o.MaxRetries, maxWait: o.MaxRateLimitWait, sleep: o.Sleep, now: o.Now,
		logger: o.Logger, secrets: secrets,
	})
	if err != nil {
		return nil, err
	}
	g, err := newGitHubClient(o.BaseURL, o.HTTPClient, t)
	if err != nil {
		return nil, err
	}
	if o.UserAgent != "" {
		g.UserAgent = o.UserAgent
	}
	gql := o.GraphQLURL
	if gql == "" {
		gql = graphQLURLFor(g.BaseURL)
	} else if u, err := url.Parse(gql); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("github: GraphQL URL %q: want http(s)://HOST/PATH without credentials", redactURL(gql))
	}
	return &Client{gh: g, graphqlURL: gql, secrets: secrets, maxRetries: t.maxRetries, sleepCtx: t.sleepCtx, logger: t.logger}, nil
}

func requestTimeout(hc *http.Client) time.Duration {
	if hc != nil {
		return hc.Timeout
	}
	return 0
}

func baseTransport(hc *http.Client) http.RoundTripper {
	if hc != nil && hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

func newGitHubClient(baseURL string, hc *http.Client, t http.RoundTripper) (*gh.Client, error) {
	u, err := normalizeBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: t}
	if hc != nil {
		c.CheckRedirect, c.Jar = hc.CheckRedirect, hc.Jar
	}
	g := gh.NewClient(c)
	g.BaseURL, g.UploadURL = u, u
	g.UserAgent = "offshoot"
	return g, nil
}

func normalizeBaseURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultBaseURL
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github: API URL %q: want http(s)://HOST[/PATH]", redactURL(s))
	}
	if u.User != nil {
		return nil, fmt.Errorf("github: API URL %q: credentials do not belong in the URL", redactURL(s))
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// graphQLURLFor: api.github.com/ → api.github.com/graphql;
// HOST/api/v3/ (Enterprise Server) → HOST/api/graphql.
func graphQLURLFor(base *url.URL) string {
	u := *base
	if strings.HasSuffix(u.Path, "/api/v3/") {
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "graphql"
	} else {
		u.Path += "graphql"
	}
	return u.String()
}

// APIError is what every operation returns on failure: the call, GitHub's
// status and message (with its validation details), never a credential.
type APIError struct {
	Op         string // e.g. "create pull request acme/shop-environments offshoot/feature-1"
	StatusCode int    // HTTP status; 0 when no answer was received
	Message    string
	Attempts   int // > 1 when the call was retried
	Err        error
}

func (e *APIError) Error() string { return "github: " + e.Op + ": " + e.detail() }

func (e *APIError) detail() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(" ")
	}
	b.WriteString(e.Message)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// StatusCode returns the HTTP status of a failed call, or 0.
func StatusCode(err error) int {
	for ; err != nil; err = errors.Unwrap(err) {
		if ae, ok := err.(*APIError); ok && ae.StatusCode != 0 {
			return ae.StatusCode
		}
	}
	return 0
}

// wrapErr turns whatever go-github or the transport returned into an
// *APIError naming op, with every known secret scrubbed from the text.
func wrapErr(op string, err error, secrets *redactor) error {
	if err == nil {
		return nil
	}
	ae := &APIError{Op: op, Err: err}
	var (
		inner *APIError
		rl    *RateLimitError
		er    *gh.ErrorResponse
		grl   *gh.RateLimitError
		gab   *gh.AbuseRateLimitError
		ue    *url.Error
	)
	switch {
	case errors.As(err, &inner):
		// A failure inside another call (fetching a token): say which. The
		// status stays on the inner error (StatusCode finds it).
		ae.Message = inner.Op + ": " + inner.detail()
	case errors.As(err, &rl):
		ae.StatusCode, ae.Message = http.StatusForbidden, rl.Error()
	case errors.As(err, &er):
		if er.Response != nil {
			ae.StatusCode = er.Response.StatusCode
			ae.Attempts, _ = strconv.Atoi(er.Response.Header.Get(attemptsHeader))
		}
		ae.Message = describe(er)
	case errors.As(err, &grl):
		ae.StatusCode = http.StatusForbidden
		ae.Message = fmt.Sprintf("primary rate limit exhausted until %s: %s", grl.Rate.Reset.UTC().Format(time.RFC3339), grl.Message)
	case errors.As(err, &gab):
		ae.StatusCode = http.StatusForbidden
		ae.Message = "secondary rate limit: " + gab.Message
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		ae.Message = err.Error()
	case errors.As(err, &ue):
		ae.Message = ue.Err.Error() // without the URL: the op names the call
	default:
		ae.Message = err.Error()
	}
	ae.Message = secrets.scrub(ae.Message)
	return ae
}

// describe renders "Validation Failed: A pull request already exists for …"
// or "Validation Failed: PullRequest.head invalid".
func describe(er *gh.ErrorResponse) string {
	msg := er.Message
	if msg == "" && er.Response != nil {
		msg = http.StatusText(er.Response.StatusCode)
	}
	var details []string
	for _, e := range er.Errors {
		switch {
		case e.Message != "":
			details = append(details, e.Message)
		case e.Field != "":
			details = append(details, fmt.Sprintf("%s.%s %s", e.Resource, e.Field, e.Code))
		case e.Code != "":
			details = append(details, strings.TrimSpace(e.Resource+" "+e.Code))
		}
	}
	if len(details) > 0 {
		msg += ": " + strings.Join(details, "; ")
	}
	return msg
}

// isAmbiguous: the write may or may not have happened (5xx, lost connection).
func isAmbiguous(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) {
		return er.Response != nil && er.Response.StatusCode >= 500
	}
	var (
		rl *RateLimitError
		ae *APIError
		ue *url.Error
	)
	if errors.As(err, &rl) || errors.As(err, &ae) {
		return false
	}
	return errors.As(err, &ue)
}

// ambiguousWrite performs a write that must not be duplicated (a comment, a
// PR): a 5xx or lost connection is followed by a re-read (recheck) rather
// than a blind repeat; only when the write is verifiably absent is it tried
// again, with backoff, up to MaxRetries times.
func (c *Client) ambiguousWrite(ctx context.Context, op string, write func(context.Context) error, recheck func(context.Context) (bool, error)) error {
	for attempt := 1; ; attempt++ {
		err := write(noBlindRetry(ctx))
		if err == nil {
			return nil
		}
		if !isAmbiguous(ctx, err) || attempt > c.maxRetries {
			werr := wrapErr(op, err, c.secrets)
			if ae, ok := werr.(*APIError); ok && attempt > 1 {
				ae.Attempts = attempt
			}
			return werr
		}
		wait := backoff(attempt)
		c.logger.Warn("github: write failed ambiguously; re-reading before retrying", "op", op, "attempt", attempt, "wait", wait.String())
		if err := c.sleepCtx(ctx, wait); err != nil {
			return wrapErr(op, err, c.secrets)
		}
		found, err := recheck(ctx)
		if err != nil {
			return err
		}
		if found {
			return nil
		}
	}
}
