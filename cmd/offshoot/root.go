package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/internal/apprepo"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
)

// version is set with -ldflags "-X main.version=…".
var version = "dev"

// factory carries the IO streams and builds clients only when a command
// needs them.
type factory struct {
	Out, Err io.Writer
	Getenv   func(string) string

	EnvRepo   string
	AppRepo   string
	EnvBranch string
	CacheDir  string
	gh        githubFlags
	now       func() time.Time
}

func (f *factory) repoOptions(location string) gitrepo.Options {
	user := f.Getenv("OFFSHOOT_GIT_USERNAME")
	token := f.Getenv("OFFSHOOT_GIT_TOKEN")
	if token == "" {
		token = f.Getenv("GITHUB_TOKEN")
	}
	return gitrepo.Options{
		Location:    location,
		Branch:      f.EnvBranch,
		CacheDir:    f.CacheDir,
		Auth:        gitrepo.BasicAuth(user, token),
		AuthorName:  f.Getenv("OFFSHOOT_AUTHOR_NAME"),
		AuthorEmail: f.Getenv("OFFSHOOT_AUTHOR_EMAIL"),
		Now:         f.now,
	}
}

// App opens the app repo named by --app-repo, or returns nil when none is.
func (f *factory) App(ctx context.Context) (*apprepo.Repo, error) {
	if f.AppRepo == "" {
		return nil, nil
	}
	o := f.repoOptions(f.AppRepo)
	return apprepo.Open(ctx, apprepo.Options{URL: f.AppRepo, CacheDir: f.CacheDir, Auth: o.Auth})
}

// Engine opens the environments repo named by --env-repo.
func (f *factory) Engine(ctx context.Context) (*engine.Engine, error) {
	repo, err := gitrepo.Open(ctx, f.repoOptions(f.EnvRepo))
	if err != nil {
		return nil, err
	}
	return &engine.Engine{Repo: repo, Now: f.now}, nil
}

func newRootCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offshoot",
		Short: "One environment per git branch: the app and a clone of its parent's PostgreSQL data, the GitOps way",
		Long: `offshoot gives every branch of an app repo its own environment: a Kustomize
overlay for the app (namespace, image tag = commit SHA, hostname, labels) and a
CloudNativePG Cluster bootstrapped from the parent branch's backups. It commits
them to an environments repo, which Argo CD deploys.

The environments repo is --env-repo or $OFFSHOOT_ENV_REPO: a git URL (http(s),
ssh, file://) or a local path. Credentials for http(s) remotes come from
$OFFSHOOT_GIT_TOKEN (or $GITHUB_TOKEN) and $OFFSHOOT_GIT_USERNAME.

After each commit offshoot tells Argo CD (seconds, not a 3-minute poll):
$ARGOCD_APPSET_WEBHOOK (the ApplicationSet controller's webhook URL, signed
with $ARGOCD_WEBHOOK_SECRET = argocd-secret's webhook.github.secret) gets a
push event, so new environments' Applications appear and deleted ones go;
$ARGOCD_WEBHOOK (the API server's, same secret) gets it listing the changed
environment directories, and Argo CD refreshes those Applications; with
$ARGOCD_SERVER and $ARGOCD_AUTH_TOKEN the environment's Application is
refreshed through the API (not in the server build, -tags noargocdapi).
$ARGOCD_INSECURE=true accepts a self-signed certificate. GitHub pull-request mode and reporting: see --mode and the
--github-* flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if f.EnvRepo == "" {
				f.EnvRepo = f.Getenv("OFFSHOOT_ENV_REPO")
			}
			if f.AppRepo == "" {
				f.AppRepo = f.Getenv("OFFSHOOT_APP_REPO")
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err} })
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.EnvRepo, "env-repo", "", "environments repo: git URL or local path (default $OFFSHOOT_ENV_REPO)")
	pf.StringVar(&f.AppRepo, "app-repo", "", "the app repo (git URL or path), for parent detection and reconcile (default $OFFSHOOT_APP_REPO)")
	pf.StringVar(&f.EnvBranch, "env-branch", "main", "branch of the environments repo to write")
	pf.StringVar(&f.CacheDir, "cache-dir", "", "where cached clones of remote environments repos live (default: the user cache dir)")
	f.gh.register(cmd)
	cmd.AddCommand(
		newInitCmd(f),
		newSyncCmd(f),
		newRefreshCmd(f),
		newDeleteCmd(f),
		newListCmd(f),
		newTreeCmd(f),
		newRenderCmd(f),
		newServeCmd(f),
		newReconcileCmd(f),
		newStatusCmd(f),
	)
	return cmd
}

// args wraps a cobra positional-args check so that its errors are usage errors.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &flagError{err}
		}
		return nil
	}
}

func (f *factory) argoCDURL() string {
	if f.gh.argoCDURL != "" {
		return f.gh.argoCDURL
	}
	return f.Getenv("OFFSHOOT_ARGOCD_URL")
}
