package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/github"
)

// githubFlags are the settings of pull-request mode and of reporting back.
type githubFlags struct {
	mode         string
	autoMerge    bool
	repo         string // the environments repo on GitHub (OWNER/NAME)
	appRepo      string // the app repo on GitHub, for statuses and comments
	apiURL       string
	appID        int64
	installation int64
	appKeyFile   string
	argoCDURL    string
}

func (g *githubFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&g.mode, "mode", "", "direct (push to the environments repo) or pr (open a pull request); default from offshoot.yaml's review section")
	fl.BoolVar(&g.autoMerge, "auto-merge", false, "in pr mode, merge the pull request once GitHub allows it")
	fl.StringVar(&g.repo, "github-repo", "", "the environments repo on GitHub as OWNER/NAME (default: from --env-repo's URL)")
	fl.StringVar(&g.appRepo, "app-github-repo", "", "the app repo on GitHub as OWNER/NAME, to report a commit status and a PR comment (default: from --app-repo's URL)")
	fl.StringVar(&g.apiURL, "github-api-url", "", "GitHub REST API URL (default $GITHUB_API_URL or https://api.github.com/)")
	fl.Int64Var(&g.appID, "github-app-id", 0, "authenticate as this GitHub App instead of $GITHUB_TOKEN (key from --github-app-key-file or $OFFSHOOT_GITHUB_APP_PRIVATE_KEY)")
	fl.Int64Var(&g.installation, "github-installation-id", 0, "the GitHub App's installation (default: looked up for the repo)")
	fl.StringVar(&g.appKeyFile, "github-app-key-file", "", "PEM private key of the GitHub App")
	fl.StringVar(&g.argoCDURL, "argocd-url", "", "Argo CD UI URL, for links in statuses and comments (default $OFFSHOOT_ARGOCD_URL)")
}

// githubClient builds a client for repo, or nil when no credentials are set.
func (f *factory) githubClient(ctx context.Context, repo github.Repo) (*github.Client, error) {
	g := &f.gh
	base := g.apiURL
	if base == "" {
		base = f.Getenv("GITHUB_API_URL")
	}
	var auth github.Auth
	appID := g.appID
	if appID == 0 {
		if s := f.Getenv("OFFSHOOT_GITHUB_APP_ID"); s != "" {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, &flagError{fmt.Errorf("invalid OFFSHOOT_GITHUB_APP_ID %q", s)}
			}
			appID = id
		}
	}
	switch {
	case appID != 0:
		key := []byte(f.Getenv("OFFSHOOT_GITHUB_APP_PRIVATE_KEY"))
		if g.appKeyFile != "" {
			b, err := os.ReadFile(g.appKeyFile)
			if err != nil {
				return nil, err
			}
			key = b
		}
		if len(key) == 0 {
			return nil, &flagError{errors.New("a GitHub App needs its private key: --github-app-key-file or OFFSHOOT_GITHUB_APP_PRIVATE_KEY")}
		}
		a, err := github.NewAppAuth(github.AppOptions{AppID: appID, InstallationID: g.installation, PrivateKeyPEM: key, BaseURL: base, Repo: repo})
		if err != nil {
			return nil, err
		}
		auth = a
	case f.Getenv("GITHUB_TOKEN") != "":
		auth = github.StaticToken(f.Getenv("GITHUB_TOKEN"))
	default:
		return nil, nil
	}
	return github.New(github.Options{BaseURL: base, Auth: auth})
}

func resolveRepo(flag, remote string) (github.Repo, error) {
	if flag != "" {
		r, err := github.ParseRepo(flag)
		if err != nil {
			return github.Repo{}, &flagError{err}
		}
		return r, nil
	}
	if remote == "" {
		return github.Repo{}, nil
	}
	r, err := github.RepoFromRemote(remote)
	if err != nil {
		return github.Repo{}, nil // not a GitHub URL: the caller says what is missing
	}
	return r, nil
}

// reviewer is the GitHub pull requests of the environments repo, or nil.
func (f *factory) reviewer(ctx context.Context) (engine.Reviewer, error) {
	repo, err := resolveRepo(f.gh.repo, f.EnvRepo)
	if err != nil || repo.IsZero() {
		return nil, err
	}
	c, err := f.githubClient(ctx, repo)
	if err != nil || c == nil {
		return nil, err
	}
	return &ghReviewer{c: c, repo: repo}, nil
}

// reporter is the GitHub app repo's statuses and comments, or nil.
func (f *factory) reporter(ctx context.Context) (engine.Reporter, error) {
	repo, err := resolveRepo(f.gh.appRepo, f.AppRepo)
	if err != nil || repo.IsZero() {
		return nil, err
	}
	c, err := f.githubClient(ctx, repo)
	if err != nil || c == nil {
		return nil, err
	}
	return &ghReporter{c: c, repo: repo}, nil
}

type ghReviewer struct {
	c    *github.Client
	repo github.Repo
}

func (r *ghReviewer) OpenPR(ctx context.Context, head string) (*engine.PullRequest, error) {
	pr, err := r.c.FindPR(ctx, r.repo, head, "open")
	if err != nil || pr == nil {
		return nil, err
	}
	return &engine.PullRequest{Number: pr.Number, URL: pr.URL}, nil
}

func (r *ghReviewer) UpsertPR(ctx context.Context, p engine.PRRequest) (*engine.PullRequest, bool, bool, error) {
	pr, created, changed, err := r.c.UpsertPR(ctx, github.PRSpec{
		Repo: r.repo, Head: p.Head, Base: p.Base, Title: p.Title,
		Body: github.Truncate(p.Body, github.MaxBodyLength, "\n… truncated\n"), Labels: p.Labels, AutoMerge: p.AutoMerge,
	})
	if err != nil {
		return nil, false, false, err
	}
	return &engine.PullRequest{Number: pr.Number, URL: pr.URL}, created, changed && !created, nil
}

func (r *ghReviewer) ClosePR(ctx context.Context, n int) error { return r.c.ClosePR(ctx, r.repo, n) }

type ghReporter struct {
	c    *github.Client
	repo github.Repo
}

func (r *ghReporter) SetStatus(ctx context.Context, sha, statusContext, state, desc, url string) error {
	return r.c.SetStatus(ctx, r.repo, sha, statusContext, state, desc, url)
}

func (r *ghReporter) UpsertBranchComment(ctx context.Context, branch, marker, body string) error {
	pr, err := r.c.FindPRForBranch(ctx, r.repo, branch)
	if err != nil || pr == nil {
		return err
	}
	_, _, err = r.c.UpsertComment(ctx, r.repo, pr.Number, marker, body)
	return err
}
