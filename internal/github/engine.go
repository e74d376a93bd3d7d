package github

import (
	"context"
	"errors"
	"fmt"

	"github.com/offshoot-dev/offshoot/internal/engine"
)

// Settings choose how offshoot authenticates to GitHub: a GitHub App
// (AppID with its private key) or a token. Zero settings: no GitHub.
type Settings struct {
	BaseURL        string // REST API URL ("" is github.com)
	Token          string // a personal access token or GITHUB_TOKEN
	AppID          int64
	InstallationID int64  // 0: looked up for the repository
	AppKeyPEM      []byte // the App's private key
}

// ErrNoAppKey: a GitHub App was asked for without its private key.
var ErrNoAppKey = errors.New("a GitHub App needs its private key")

// NewClientFor is a client for repo with the settings' credentials, or nil
// when the settings name none. An App is preferred to a token.
func NewClientFor(s Settings, repo Repo) (*Client, error) {
	var auth Auth
	switch {
	case s.AppID != 0:
		if len(s.AppKeyPEM) == 0 {
			return nil, ErrNoAppKey
		}
		a, err := NewAppAuth(AppOptions{AppID: s.AppID, InstallationID: s.InstallationID, PrivateKeyPEM: s.AppKeyPEM, BaseURL: s.BaseURL, Repo: repo})
		if err != nil {
			return nil, err
		}
		auth = a
	case s.Token != "":
		auth = StaticToken(s.Token)
	default:
		return nil, nil
	}
	return New(Options{BaseURL: s.BaseURL, Auth: auth})
}

// classify marks what a retry can fix: a rate limit or a 5xx (a network
// failure is one already, engine.IsTemporary); a 4xx stays terminal (bad
// credentials, a missing repository…).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *RateLimitError
	if code := StatusCode(err); code >= 500 || code == 429 || errors.As(err, &rl) {
		return engine.Temporary(err)
	}
	return err
}

// Reviewer is the environments repo's pull requests, as the engine's
// pull-request mode needs them.
type Reviewer struct {
	c    *Client
	repo Repo
}

var _ engine.Reviewer = (*Reviewer)(nil)

// NewReviewer is the pull requests of repo through c.
func NewReviewer(c *Client, repo Repo) *Reviewer { return &Reviewer{c: c, repo: repo} }

func (r *Reviewer) OpenPR(ctx context.Context, head string) (*engine.PullRequest, error) {
	pr, err := r.c.FindPR(ctx, r.repo, head, "open")
	if err != nil || pr == nil {
		return nil, classify(err)
	}
	return &engine.PullRequest{Number: pr.Number, URL: pr.URL}, nil
}

func (r *Reviewer) UpsertPR(ctx context.Context, p engine.PRRequest) (*engine.PullRequest, bool, bool, error) {
	pr, created, changed, err := r.c.UpsertPR(ctx, PRSpec{
		Repo: r.repo, Head: p.Head, Base: p.Base, Title: p.Title, Body: p.Body, Labels: p.Labels, AutoMerge: p.AutoMerge,
	})
	if err != nil {
		return nil, false, false, classify(err)
	}
	return &engine.PullRequest{Number: pr.Number, URL: pr.URL}, created, changed && !created, nil
}

func (r *Reviewer) ClosePR(ctx context.Context, n int) error {
	return classify(r.c.ClosePR(ctx, r.repo, n))
}

// Reporter is the app repo's commit statuses and pull-request comments.
type Reporter struct {
	c    *Client
	repo Repo
}

var _ engine.Reporter = (*Reporter)(nil)

// NewReporter reports on repo through c.
func NewReporter(c *Client, repo Repo) *Reporter { return &Reporter{c: c, repo: repo} }

func (r *Reporter) SetStatus(ctx context.Context, sha, statusContext, state, desc, url string) error {
	return classify(r.c.SetStatus(ctx, r.repo, sha, statusContext, state, desc, url))
}

func (r *Reporter) UpsertBranchComment(ctx context.Context, branch, marker, body string) error {
	pr, err := r.c.FindPRForBranch(ctx, r.repo, branch)
	if err != nil || pr == nil {
		return classify(err)
	}
	_, _, err = r.c.UpsertComment(ctx, r.repo, pr.Number, marker, body)
	return classify(err)
}

// CommitURL is the web page of a commit of repo on host ("" is github.com).
func CommitURL(host string, repo Repo, commit string) string {
	if host == "" {
		host = "github.com"
	}
	return fmt.Sprintf("https://%s/%s/commit/%s", host, repo, commit)
}
