package argocd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/offshoot-dev/offshoot/internal/engine"
)

// NotifySettings say how to tell Argo CD about a commit right after it is
// pushed, so that push → Synced takes seconds instead of a 3-minute poll.
type NotifySettings struct {
	// AppSetWebhook is the ApplicationSet controller's webhook (e.g.
	// http://argocd-applicationset-controller.argocd.svc:7000/api/webhook):
	// it gets a GitHub push event for the environments repo, so new
	// environments' Applications appear and removed ones go at once.
	AppSetWebhook string
	// APIWebhook is the API server's (e.g.
	// https://argocd-server.argocd.svc/api/webhook): the same event, listing
	// the environment directories the commit changed, refreshes those
	// environments' Applications. It needs no Argo CD token.
	APIWebhook string
	// Secret signs both (argocd-secret's webhook.github.secret).
	Secret string
	// Server and Token: each changed environment's Application is also
	// refreshed through the API (needs NewClient: the CLI build).
	Server, Token string
	// Insecure accepts a self-signed certificate.
	Insecure  bool
	UserAgent string
	// RepoURL and Branch are the environments repo the events are about.
	RepoURL, Branch string
	// NewClient connects to the API server (nil: no API refresh).
	NewClient func(Options) (Client, error)
}

// Notifier tells Argo CD about pushed commits (engine.Notifier).
type Notifier struct {
	s     NotifySettings
	hooks []*Webhook
}

var _ engine.Notifier = (*Notifier)(nil)

// NewNotifier is the notifier of the settings, or nil when they name no way
// to reach Argo CD.
func NewNotifier(s NotifySettings) *Notifier {
	var client *http.Client
	if s.Insecure {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with ARGOCD_INSECURE=true
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	n := &Notifier{s: s}
	for _, u := range []string{s.AppSetWebhook, s.APIWebhook} {
		if u != "" {
			n.hooks = append(n.hooks, &Webhook{URL: u, Secret: s.Secret, UserAgent: s.UserAgent, HTTP: client})
		}
	}
	if !n.api() {
		n.s.Server, n.s.Token = "", ""
	}
	if len(n.hooks) == 0 && !n.api() {
		return nil
	}
	return n
}

func (n *Notifier) api() bool { return n.s.Server != "" && n.s.Token != "" && n.s.NewClient != nil }

// Notify sends the push event to the webhooks and, with API access,
// refreshes the touched Applications (one that does not exist yet is
// skipped). Every way is tried; the failures are returned together.
func (n *Notifier) Notify(ctx context.Context, p engine.Pushed) error {
	var errs []error
	for _, hook := range n.hooks {
		if err := hook.Notify(ctx, Push{RepoURL: n.s.RepoURL, Branch: n.s.Branch, Before: p.Previous, Commit: p.Commit, Paths: p.Paths}); err != nil {
			errs = append(errs, err)
		}
	}
	if !n.api() || len(p.Apps) == 0 {
		return errors.Join(errs...)
	}
	c, err := n.s.NewClient(Options{Server: n.s.Server, Token: n.s.Token, Insecure: n.s.Insecure, UserAgent: n.s.UserAgent})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer c.Close()
	for _, app := range p.Apps {
		if _, err := c.Refresh(ctx, app); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("refresh %s: %w", app, err))
		}
	}
	return errors.Join(errs...)
}
