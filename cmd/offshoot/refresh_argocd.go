package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

// argoRefresher asks Argo CD to re-read git for an environment's
// Application right after its commit, so that push → Synced takes seconds
// instead of a 3-minute polling cycle. It exists when $ARGOCD_SERVER and
// $ARGOCD_AUTH_TOKEN are set ($ARGOCD_INSECURE=true for self-signed
// certificates). A new environment's Application does not exist until the
// ApplicationSet regenerates; that is not an error.
func (f *factory) argoRefresher() func(ctx context.Context, app string) error {
	server, token := f.Getenv("ARGOCD_SERVER"), f.Getenv("ARGOCD_AUTH_TOKEN")
	if server == "" || token == "" {
		return nil
	}
	return func(ctx context.Context, app string) error {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := argocd.New(argocd.Options{Server: server, Token: token, Insecure: f.Getenv("ARGOCD_INSECURE") == "true", UserAgent: "offshoot/" + version})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Refresh(ctx, app); err != nil && !errors.Is(err, argocd.ErrNotFound) {
			return err
		}
		return nil
	}
}

// refreshArgoCD refreshes one Application after a CLI commit; a failure is
// reported, never fatal: the commit is made.
func (f *factory) refreshArgoCD(ctx context.Context, app string) {
	refresh := f.argoRefresher()
	if refresh == nil || app == "" {
		return
	}
	if err := refresh(ctx, app); err != nil {
		fmt.Fprintf(f.Err, "offshoot: Argo CD refresh of %s failed: %v\n", app, err)
		return
	}
	fmt.Fprintf(f.Out, "  asked Argo CD to refresh %s\n", app)
}
