package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/internal/apprepo"
	"github.com/offshoot-dev/offshoot/internal/argocd"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitcache"
	"github.com/offshoot-dev/offshoot/internal/github"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

// settings are everything the commands read from flags and the
// environment, read once (load) before a command runs.
type settings struct {
	EnvRepo, AppRepo, EnvBranch, CacheDir string
	GitUser, GitToken                     string
	AuthorName, AuthorEmail               string
	AllowInsecureHTTP                     bool

	Mode              string
	AutoMerge         bool
	GitHubRepo        string // the environments repo on GitHub (OWNER/NAME)
	AppGitHubRepo     string // the app repo on GitHub
	GitHub            github.Settings
	appID             string
	appKeyFile        string
	ArgoCDURL         string
	Notify            argocd.NotifySettings
	ArgoServer, Token string
	WebhookSecret     string

	now func() time.Time
}

// register binds the persistent flags.
func (s *settings) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&s.EnvRepo, "env-repo", "", "environments repo: git URL or local path (default $OFFSHOOT_ENV_REPO)")
	pf.StringVar(&s.AppRepo, "app-repo", "", "the app repo (git URL or path), for parent detection and reconcile (default $OFFSHOOT_APP_REPO)")
	pf.StringVar(&s.EnvBranch, "env-branch", "main", "branch of the environments repo to write")
	pf.StringVar(&s.CacheDir, "cache-dir", "", "where cached clones of remote repos live (default: the user cache dir)")
	pf.StringVar(&s.Mode, "mode", "", "direct (push to the environments repo) or pr (open a pull request); default from offshoot.yaml's review section")
	pf.BoolVar(&s.AutoMerge, "auto-merge", false, "in pr mode, merge the pull request once GitHub allows it")
	pf.StringVar(&s.GitHubRepo, "github-repo", "", "the environments repo on GitHub as OWNER/NAME (default: from --env-repo's URL)")
	pf.StringVar(&s.AppGitHubRepo, "app-github-repo", "", "the app repo on GitHub as OWNER/NAME, to report a commit status and a PR comment (default: from --app-repo's URL)")
	pf.StringVar(&s.GitHub.BaseURL, "github-api-url", "", "GitHub REST API URL (default $GITHUB_API_URL or https://api.github.com/)")
	pf.StringVar(&s.appID, "github-app-id", "", "authenticate as this GitHub App instead of $GITHUB_TOKEN (default $OFFSHOOT_GITHUB_APP_ID; key from --github-app-key-file or $OFFSHOOT_GITHUB_APP_PRIVATE_KEY)")
	pf.Int64Var(&s.GitHub.InstallationID, "github-installation-id", 0, "the GitHub App's installation (default: looked up for the repo)")
	pf.StringVar(&s.appKeyFile, "github-app-key-file", "", "PEM private key of the GitHub App")
	pf.StringVar(&s.ArgoCDURL, "argocd-url", "", "Argo CD UI URL, for links in statuses and comments (default $OFFSHOOT_ARGOCD_URL)")
}

// load completes the flags from the environment; it is the only place
// that reads it.
func (s *settings) load(getenv func(string) string) error {
	or := func(v *string, names ...string) {
		for _, n := range names {
			if *v == "" {
				*v = getenv(n)
			}
		}
	}
	or(&s.EnvRepo, "OFFSHOOT_ENV_REPO")
	or(&s.AppRepo, "OFFSHOOT_APP_REPO")
	or(&s.GitUser, "OFFSHOOT_GIT_USERNAME")
	or(&s.GitToken, "OFFSHOOT_GIT_TOKEN", "GITHUB_TOKEN")
	or(&s.AuthorName, "OFFSHOOT_AUTHOR_NAME")
	or(&s.AuthorEmail, "OFFSHOOT_AUTHOR_EMAIL")
	or(&s.GitHub.BaseURL, "GITHUB_API_URL")
	or(&s.GitHub.Token, "GITHUB_TOKEN")
	or(&s.appID, "OFFSHOOT_GITHUB_APP_ID")
	or(&s.ArgoCDURL, "OFFSHOOT_ARGOCD_URL")
	or(&s.ArgoServer, "ARGOCD_SERVER")
	or(&s.Token, "ARGOCD_AUTH_TOKEN")
	or(&s.WebhookSecret, "OFFSHOOT_WEBHOOK_SECRET")
	s.AllowInsecureHTTP = getenv("OFFSHOOT_ALLOW_INSECURE_HTTP") == "true"
	if s.appID != "" {
		id, err := strconv.ParseInt(s.appID, 10, 64)
		if err != nil || id <= 0 {
			return &flagError{fmt.Errorf("invalid GitHub App id %q: want a positive number", s.appID)}
		}
		s.GitHub.AppID = id
		s.GitHub.AppKeyPEM = []byte(getenv("OFFSHOOT_GITHUB_APP_PRIVATE_KEY"))
		if s.appKeyFile != "" {
			b, err := os.ReadFile(s.appKeyFile)
			if err != nil {
				return &flagError{err}
			}
			s.GitHub.AppKeyPEM = b
		}
		if len(s.GitHub.AppKeyPEM) == 0 {
			return &flagError{errors.New("a GitHub App needs its private key: --github-app-key-file or OFFSHOOT_GITHUB_APP_PRIVATE_KEY")}
		}
	}
	// No token over plain http:// to another host: the git remotes are
	// checked when opened; GitHub's API and Argo CD's here.
	if s.GitHub.BaseURL != "" && (s.GitHub.Token != "" || s.GitHub.AppID != 0) {
		if err := gitcache.CheckTransport(s.GitHub.BaseURL, true, s.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("GitHub API: %w", err)
		}
	}
	if s.Token != "" {
		if err := gitcache.CheckTransport(s.ArgoServer, true, s.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("Argo CD API: %w", err)
		}
	}
	s.Notify = argocd.NotifySettings{
		AppSetWebhook: getenv("ARGOCD_APPSET_WEBHOOK"), APIWebhook: getenv("ARGOCD_WEBHOOK"), Secret: getenv("ARGOCD_WEBHOOK_SECRET"),
		Server: s.ArgoServer, Token: s.Token, Insecure: getenv("ARGOCD_INSECURE") == "true", UserAgent: "offshoot/" + version,
		RepoURL: s.EnvRepo, Branch: s.EnvBranch, NewClient: newArgoClient,
	}
	return nil
}

func (s *settings) repoOptions(location string) gitrepo.Options {
	return gitrepo.Options{
		Location: location, Branch: s.EnvBranch, CacheDir: s.CacheDir, Auth: gitrepo.BasicAuth(s.GitUser, s.GitToken),
		AllowInsecureHTTP: s.AllowInsecureHTTP, AuthorName: s.AuthorName, AuthorEmail: s.AuthorEmail, Now: s.now,
	}
}

// engine wires the engine with every adapter the settings configure.
func (s *settings) engine(ctx context.Context, logger *slog.Logger) (*engine.Engine, error) {
	repo, err := gitrepo.Open(ctx, s.repoOptions(s.EnvRepo))
	if err != nil {
		return nil, err
	}
	e := &engine.Engine{Repo: repo, Mode: s.Mode, AutoMerge: s.AutoMerge, Logger: logger, Now: s.now}
	if !gitrepo.IsLocalWorkingCopy(s.EnvRepo) {
		e.Review = repo
	}
	if s.AppRepo != "" {
		o := s.repoOptions(s.AppRepo)
		app, err := apprepo.Open(ctx, apprepo.Options{URL: s.AppRepo, CacheDir: s.CacheDir, Auth: o.Auth, AllowInsecureHTTP: s.AllowInsecureHTTP})
		if err != nil {
			return nil, err
		}
		e.App = app
	}
	if repo, c, err := s.gitHub(s.GitHubRepo, s.EnvRepo); err != nil {
		return nil, err
	} else if c != nil {
		e.PRs = github.NewReviewer(c, repo)
		host, fromURL, err := github.ParseRemote(s.EnvRepo)
		if err != nil || fromURL != repo {
			host = "" // named by --github-repo only: github.com
		}
		e.CommitURL = func(commit string) string { return github.CommitURL(host, repo, commit) }
	}
	if repo, c, err := s.gitHub(s.AppGitHubRepo, s.AppRepo); err != nil {
		return nil, err
	} else if c != nil {
		e.Reporter = github.NewReporter(c, repo)
	}
	if s.ArgoCDURL != "" {
		e.AppURL = func(app string) string { return argocd.AppURL(s.ArgoCDURL, app) }
	}
	if n := argocd.NewNotifier(s.Notify); n != nil {
		e.Notifier = n
	}
	return e, nil
}

// gitHub is the GitHub repository (flag, else from the remote's URL) and a
// client for it, or a nil client when there is no repository or no
// credentials.
func (s *settings) gitHub(flag, remote string) (github.Repo, *github.Client, error) {
	var repo github.Repo
	switch {
	case flag != "":
		r, err := github.ParseRepo(flag)
		if err != nil {
			return repo, nil, &flagError{err}
		}
		repo = r
	case remote != "":
		repo, _ = github.RepoFromRemote(remote) // not a GitHub URL: no GitHub
	}
	if repo.IsZero() {
		return repo, nil, nil
	}
	c, err := github.NewClientFor(s.GitHub, repo)
	return repo, c, err
}
