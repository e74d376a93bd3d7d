package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

// argoNotifier tells Argo CD about a commit right after it is pushed, so that
// push → Synced takes seconds instead of a 3-minute polling cycle:
//
//   - $ARGOCD_APPSET_WEBHOOK (the ApplicationSet controller's webhook, e.g.
//     http://argocd-applicationset-controller.argocd.svc:7000/api/webhook;
//     $ARGOCD_WEBHOOK_SECRET = argocd-secret's webhook.github.secret) gets a
//     GitHub push event for the environments repo: the ApplicationSet re-reads
//     git, so new environments' Applications appear, removed ones go, and
//     changed metadata lands at once;
//   - with $ARGOCD_SERVER and $ARGOCD_AUTH_TOKEN ($ARGOCD_INSECURE=true for
//     self-signed certificates), each changed environment's Application is
//     refreshed through the API (one that does not exist yet is skipped).
//
// It is nil when neither is configured. Failures are returned, never fatal to
// the caller: the commit is made either way.
func (f *factory) argoNotifier() func(ctx context.Context, commit string, apps []string) error {
	hookURL := f.Getenv("ARGOCD_APPSET_WEBHOOK")
	server, token := f.Getenv("ARGOCD_SERVER"), f.Getenv("ARGOCD_AUTH_TOKEN")
	if !hasArgoAPI && server != "" && token != "" {
		fmt.Fprintf(f.Err, "offshoot: $ARGOCD_SERVER is ignored: %v\n", errNoArgoAPI)
		server, token = "", ""
	}
	if hookURL == "" && (server == "" || token == "") {
		return nil
	}
	ua := "offshoot/" + version
	return func(ctx context.Context, commit string, apps []string) error {
		var errs []error
		if hookURL != "" {
			hook := &argocd.Webhook{URL: hookURL, Secret: f.Getenv("ARGOCD_WEBHOOK_SECRET"), UserAgent: ua}
			if err := hook.Notify(ctx, argocd.Push{RepoURL: f.EnvRepo, Branch: f.EnvBranch, Commit: commit}); err != nil {
				errs = append(errs, fmt.Errorf("ApplicationSet webhook: %w", err))
			}
		}
		if server == "" || token == "" || len(apps) == 0 {
			return errors.Join(errs...)
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := newArgoClient(argocd.Options{Server: server, Token: token, Insecure: f.Getenv("ARGOCD_INSECURE") == "true", UserAgent: ua})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		defer c.Close()
		for _, app := range apps {
			if _, err := c.Refresh(ctx, app); err != nil && !errors.Is(err, argocd.ErrNotFound) {
				errs = append(errs, fmt.Errorf("refresh %s: %w", app, err))
			}
		}
		return errors.Join(errs...)
	}
}

// errNoArgoAPI is what needs Argo CD's API in a build without its client.
var errNoArgoAPI = errors.New("this offshoot was built without Argo CD's API client (-tags noargocdapi, as the server image is): " +
	"run offshoot status from a full build; serve tells Argo CD through $ARGOCD_APPSET_WEBHOOK")

// notifyArgoCD tells Argo CD about a CLI commit; a failure is reported, never
// fatal: the commit is made.
func (f *factory) notifyArgoCD(ctx context.Context, commit, app string) {
	notify := f.argoNotifier()
	if notify == nil || commit == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := notify(ctx, commit, []string{app}); err != nil {
		fmt.Fprintf(f.Err, "offshoot: telling Argo CD about %s failed: %v\n", short(commit), err)
		return
	}
	fmt.Fprintf(f.Out, "  asked Argo CD to refresh %s\n", app)
}
