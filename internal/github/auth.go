package github

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"
)

// Auth supplies the credential sent as "Authorization: Bearer <token>".
// Implementations never log the token, and print as REDACTED with %v/%#v.
type Auth interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a fixed token: GITHUB_TOKEN, a personal access token, or an
// installation token obtained elsewhere.
func StaticToken(tok string) Auth { return staticToken{tok: tok} }

type staticToken struct{ tok string }

func (s staticToken) Token(context.Context) (string, error) {
	if s.tok == "" {
		return "", errors.New("github: empty token (set GITHUB_TOKEN or configure a GitHub App)")
	}
	return s.tok, nil
}
func (staticToken) String() string   { return "github.StaticToken(REDACTED)" }
func (staticToken) GoString() string { return "github.StaticToken(REDACTED)" }

// AppOptions configures a GitHub App installation-token source.
type AppOptions struct {
	AppID int64
	// InstallationID; 0 means: discover it with
	// GET /repos/{Repo.Owner}/{Repo.Name}/installation.
	InstallationID int64
	Repo           Repo
	// PrivateKeyPEM is the App's private key as GitHub issues it
	// ("RSA PRIVATE KEY", PKCS#1) or PKCS#8 ("PRIVATE KEY").
	PrivateKeyPEM []byte
	BaseURL       string       // as Options.BaseURL
	HTTPClient    *http.Client // as Options.HTTPClient
	MaxRetries    int          // as Options.MaxRetries
	Sleep         func(time.Duration)
	Now           func() time.Time // clock for JWT claims and token expiry; default time.Now
	Logger        *slog.Logger
}

// Refresh an installation token this long before it expires.
const tokenRefreshMargin = 5 * time.Minute

// NewAppAuth authenticates as a GitHub App installation: it signs a JWT
// (RS256; iat = now-60s, exp = now+9min, iss = appID), exchanges it with
// POST /app/installations/{id}/access_tokens, caches the installation token
// and fetches a new one 5 minutes before expires_at. Without an
// installation id it is looked up for o.Repo.
func NewAppAuth(o AppOptions) (Auth, error) {
	if o.AppID <= 0 {
		return nil, errors.New("github: GitHub App: app id must be positive")
	}
	if o.InstallationID < 0 {
		return nil, errors.New("github: GitHub App: installation id must not be negative")
	}
	if o.InstallationID == 0 {
		if o.Repo.IsZero() {
			return nil, errors.New("github: GitHub App: either an installation id or a repository to look the installation up is needed")
		}
		if err := o.Repo.validate(); err != nil {
			return nil, fmt.Errorf("github: GitHub App: %w", err)
		}
	}
	// Never wrap the parser's error: keep the message independent of the key's bytes.
	key, err := jwt.ParseRSAPrivateKeyFromPEM(o.PrivateKeyPEM)
	if err != nil {
		return nil, errors.New("github: GitHub App: the private key is not a PEM-encoded RSA private key (PKCS#1 or PKCS#8)")
	}
	a := &appAuth{appID: o.AppID, installationID: o.InstallationID, repo: o.Repo, key: key, now: o.Now, secrets: &redactor{}}
	if a.now == nil {
		a.now = time.Now
	}
	t, err := newTransport(transportOptions{
		base: baseTransport(o.HTTPClient), attemptTimeout: requestTimeout(o.HTTPClient), authorize: a.jwtHeader, maxRetries: o.MaxRetries,
		sleep: o.Sleep, now: a.now, logger: o.Logger, secrets: a.secrets,
	})
	if err != nil {
		return nil, err
	}
	a.gh, err = newGitHubClient(o.BaseURL, o.HTTPClient, t)
	if err != nil {
		return nil, err
	}
	return a, nil
}

type appAuth struct {
	appID          int64
	repo           Repo
	key            *rsa.PrivateKey
	now            func() time.Time
	gh             *gh.Client
	secrets        *redactor
	mu             sync.Mutex // held during an exchange: concurrent callers wait for one exchange
	installationID int64
	token          string
	expires        time.Time
}

func (a *appAuth) String() string {
	return fmt.Sprintf("github.AppAuth(app %d, key REDACTED)", a.appID)
}
func (a *appAuth) GoString() string { return a.String() }

// jwtHeader signs a fresh App JWT for each request (so a retried request
// never carries an expired one).
func (a *appAuth) jwtHeader(context.Context) (string, error) {
	now := a.now()
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.appID, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-60 * time.Second)), // GitHub: allow for clock drift
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),   // GitHub: at most 10 minutes
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
	if err != nil {
		return "", errors.New("github: GitHub App: signing the JWT failed")
	}
	a.secrets.add(s)
	return "Bearer " + s, nil
}

func (a *appAuth) Token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && a.now().Before(a.expires.Add(-tokenRefreshMargin)) {
		return a.token, nil
	}
	if a.installationID == 0 {
		op := fmt.Sprintf("find the installation of GitHub App %d on %s", a.appID, a.repo)
		inst, _, err := a.gh.Apps.FindRepositoryInstallation(ctx, a.repo.Owner, a.repo.Name)
		if err != nil {
			return "", wrapErr(op, err, a.secrets)
		}
		if inst.GetID() == 0 {
			return "", &APIError{Op: op, Message: "the response has no installation id"}
		}
		a.installationID = inst.GetID()
	}
	op := fmt.Sprintf("create an installation token for GitHub App %d installation %d", a.appID, a.installationID)
	tok, _, err := a.gh.Apps.CreateInstallationToken(ctx, a.installationID, nil)
	if err != nil {
		return "", wrapErr(op, err, a.secrets)
	}
	if tok.GetToken() == "" {
		return "", &APIError{Op: op, Message: "the response has no token"}
	}
	a.secrets.add(tok.GetToken())
	a.token = tok.GetToken()
	a.expires = tok.GetExpiresAt().Time
	if a.expires.IsZero() {
		a.expires = a.now().Add(time.Hour) // GitHub's documented lifetime
	}
	return a.token, nil
}
