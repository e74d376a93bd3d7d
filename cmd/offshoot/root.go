package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/offshoot-dev/offshoot/internal/engine"
)

// version is set with -ldflags "-X main.version=…".
var version = "dev"

// factory carries the IO streams and the settings, and builds the
// engine only when a command needs it.
type factory struct {
	Out, Err io.Writer
	Getenv   func(string) string
	settings
}

// Engine wires the engine for a command; its log lines (warnings) go to
// stderr.
func (f *factory) Engine(ctx context.Context) (*engine.Engine, error) {
	return f.engine(ctx, slog.New(slog.NewTextHandler(f.Err, &slog.HandlerOptions{Level: slog.LevelWarn})))
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
--github-* flags. Credentials are never sent over plain http:// except to
this machine (loopback), unless $OFFSHOOT_ALLOW_INSECURE_HTTP=true.

Exit codes: 0 success; 1 the work failed (git, validation, an invalid
offshoot.yaml); 2 the invocation is wrong (flags, arguments, branch names,
unknown parent, protected branch); 3 refused by a data-safety rule; 4 not
ready yet (status: environments not ready, or not within --timeout; --at: its
WAL cannot be archived yet, retry at the time the message names).`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return f.load(f.Getenv) },
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err} })
	f.register(cmd)
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
