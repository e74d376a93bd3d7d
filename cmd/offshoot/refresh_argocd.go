package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/internal/argocd"
	"github.com/offshoot-dev/offshoot/internal/engine"
)

// argoNotifier tells Argo CD about a commit right after it is pushed, so that
// push → Synced takes seconds instead of a 3-minute polling cycle:
//
//   - $ARGOCD_APPSET_WEBHOOK (the ApplicationSet controller's webhook, e.g.
//     http://argocd-applicationset-controller.argocd.svc:7000/api/webhook)
//     gets a GitHub push event for the environments repo: the ApplicationSet
//     re-reads git, so new environments' Applications appear, removed ones
//     go, and changed metadata lands at once;
//   - $ARGOCD_WEBHOOK (the API server's, e.g.
//     https://argocd-server.argocd.svc/api/webhook) gets the same event,
//     listing the environment directories the commit changed: Argo CD
//     refreshes those environments' Applications (offshoot's ApplicationSet
//     gives each its manifest-generate-paths) and moves the others' cached
//     manifests to the new revision. It needs no Argo CD token;
//   - with $ARGOCD_SERVER and $ARGOCD_AUTH_TOKEN (CLI build), each changed
//     environment's Application is refreshed through the API (one that does
//     not exist yet is skipped).
//
// Both webhooks are signed with $ARGOCD_WEBHOOK_SECRET (argocd-secret's
// webhook.github.secret); $ARGOCD_INSECURE=true accepts a self-signed
// certificate. It is nil when nothing is configured. Failures are returned,
// never fatal to the caller: the commit is made either way.
func (f *factory) argoNotifier() func(ctx context.Context, p engine.Pushed) error {
	var hooks []*argocd.Webhook
	insecure := f.Getenv("ARGOCD_INSECURE") == "true"
	var client *http.Client
	if insecure {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with ARGOCD_INSECURE=true
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	ua := "offshoot/" + version
	for _, name := range []string{"ARGOCD_APPSET_WEBHOOK", "ARGOCD_WEBHOOK"} {
		if u := f.Getenv(name); u != "" {
			hooks = append(hooks, &argocd.Webhook{URL: u, Secret: f.Getenv("ARGOCD_WEBHOOK_SECRET"), UserAgent: ua, HTTP: client})
		}
	}
	server, token := f.Getenv("ARGOCD_SERVER"), f.Getenv("ARGOCD_AUTH_TOKEN")
	if !hasArgoAPI && server != "" && token != "" {
		fmt.Fprintf(f.Err, "offshoot: $ARGOCD_SERVER is ignored: %v\n", errNoArgoAPI)
		server, token = "", ""
	}
	if len(hooks) == 0 && (server == "" || token == "") {
		return nil
	}
	return func(ctx context.Context, p engine.Pushed) error {
		var errs []error
		for _, hook := range hooks {
			err := hook.Notify(ctx, argocd.Push{RepoURL: f.EnvRepo, Branch: f.EnvBranch, Before: p.Previous, Commit: p.Commit, Paths: p.Paths})
			if err != nil {
				errs = append(errs, err)
			}
		}
		if server == "" || token == "" || len(p.Apps) == 0 {
			return errors.Join(errs...)
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := newArgoClient(argocd.Options{Server: server, Token: token, Insecure: insecure, UserAgent: ua})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		defer c.Close()
		for _, app := range p.Apps {
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
func (f *factory) notifyArgoCD(ctx context.Context, p engine.Pushed) {
	notify := f.argoNotifier()
	if notify == nil || p.Commit == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := notify(ctx, p); err != nil {
		fmt.Fprintf(f.Err, "offshoot: telling Argo CD about %s failed: %v\n", short(p.Commit), err)
		return
	}
	fmt.Fprintf(f.Out, "  asked Argo CD to refresh %s\n", strings.Join(p.Apps, ", "))
}
