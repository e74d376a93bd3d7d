package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

// refreshArgoCD asks Argo CD to re-read git for an environment's
// Application right after its commit, so that push → Synced takes seconds
// instead of a 3-minute polling cycle. It runs when $ARGOCD_SERVER and
// $ARGOCD_AUTH_TOKEN are set ($ARGOCD_INSECURE=true for self-signed
// certificates); failures are reported, never fatal: the commit is made.
// A new environment's Application does not exist until the ApplicationSet
// regenerates; that is not an error.
func (f *factory) refreshArgoCD(ctx context.Context, app string) {
	server, token := f.Getenv("ARGOCD_SERVER"), f.Getenv("ARGOCD_AUTH_TOKEN")
	if server == "" || token == "" || app == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := argocd.New(argocd.Options{Server: server, Token: token, Insecure: f.Getenv("ARGOCD_INSECURE") == "true", UserAgent: "offshoot/" + version})
	if err != nil {
		fmt.Fprintf(f.Err, "offshoot: Argo CD refresh skipped: %v\n", err)
		return
	}
	defer c.Close()
	if _, err := c.Refresh(ctx, app); err != nil && !errors.Is(err, argocd.ErrNotFound) {
		fmt.Fprintf(f.Err, "offshoot: Argo CD refresh of %s failed: %v\n", app, err)
		return
	}
	fmt.Fprintf(f.Out, "  asked Argo CD to refresh %s\n", app)
}
