// Package argoapi is offshoot's one adapter to Argo CD's Go code: it reads
// the Applications of offshoot's environments through the Argo CD API server
// (github.com/argoproj/argo-cd/v2/pkg/apiclient, token auth) and maps them to
// offshoot's own argocd.AppStatus. No other package of offshoot's binary
// imports argo-cd; it is left out of builds with -tags noargocdapi.
package argoapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/offshoot-dev/offshoot/internal/argocd"
)

var _ argocd.Client = (*Client)(nil)

// Client reads offshoot's Applications from an Argo CD API server.
type Client struct {
	conn io.Closer
	apps applicationpkg.ApplicationServiceClient
	ui   string // base URL of the UI
}

// New connects to the API server; apiclient asks it for its version to
// choose between gRPC and gRPC-web, so an unreachable server fails here.
func New(o argocd.Options) (*Client, error) {
	server, plain, err := argocd.NormaliseServer(o.Server)
	if err != nil {
		return nil, err
	}
	if plain {
		o.PlainText = true
	}
	if o.Token == "" {
		return nil, errors.New("no Argo CD token: set --argocd-token or $ARGOCD_AUTH_TOKEN (an API key: argocd account generate-token)")
	}
	c, err := apiclient.NewClient(&apiclient.ClientOptions{
		ServerAddr: server,
		AuthToken:  o.Token,
		Insecure:   o.Insecure,
		PlainText:  o.PlainText,
		GRPCWeb:    o.GRPCWeb,
		UserAgent:  o.UserAgent,
		// No ~/.config/argocd: everything comes from the options (an empty
		// path reads as "no config file").
		ConfigPath: "",
	})
	if err != nil {
		return nil, fmt.Errorf("argo cd client for %s: %w", server, err)
	}
	conn, apps, err := c.NewApplicationClient()
	if err != nil {
		return nil, fmt.Errorf("argo cd application client for %s: %w", server, err)
	}
	return &Client{conn: conn, apps: apps, ui: argocd.UIBase(server, o.PlainText)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// AppURL is the Application's page in the Argo CD UI.
func (c *Client) AppURL(name string) string { return argocd.AppURL(c.ui, name) }

// List returns the Applications matching the label selector (argocd.ManagedBySelector
// when empty), sorted by name.
func (c *Client) List(ctx context.Context, selector string) ([]argocd.AppStatus, error) {
	if selector == "" {
		selector = argocd.ManagedBySelector
	}
	list, err := c.apps.List(ctx, &applicationpkg.ApplicationQuery{Selector: &selector})
	if err != nil {
		return nil, fmt.Errorf("list applications (%s): %w", selector, err)
	}
	out := make([]argocd.AppStatus, 0, len(list.Items))
	for i := range list.Items {
		s := FromApplication(&list.Items[i], c.ui)
		if err := c.addLiveImages(ctx, &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns one Application's status.
func (c *Client) Get(ctx context.Context, name string) (*argocd.AppStatus, error) {
	return c.get(ctx, name, "")
}

// Refresh asks Argo CD to compare the Application with git again now
// (a "normal" refresh: the repo is fetched, manifests are regenerated if the
// revision changed) and returns its status.
func (c *Client) Refresh(ctx context.Context, name string) (*argocd.AppStatus, error) {
	return c.get(ctx, name, "normal")
}

func (c *Client) get(ctx context.Context, name, refresh string) (*argocd.AppStatus, error) {
	q := &applicationpkg.ApplicationQuery{Name: &name}
	if refresh != "" {
		q.Refresh = &refresh
	}
	app, err := c.apps.Get(ctx, q)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("%s: %w", name, argocd.ErrNotFound)
		}
		// Argo CD answers PermissionDenied for apps that do not exist, too,
		// so as not to reveal them.
		if status.Code(err) == codes.PermissionDenied {
			return nil, fmt.Errorf("%s: %w (or the token may not read it)", name, argocd.ErrNotFound)
		}
		return nil, fmt.Errorf("get application %s: %w", name, err)
	}
	s := FromApplication(app, c.ui)
	if err := c.addLiveImages(ctx, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// addLiveImages adds the images of the Application's live workloads: Argo
// CD's summary only lists the images of Pods, which need not exist (scaled
// to zero, not scheduled yet) while the Deployment already has the new tag.
func (c *Client) addLiveImages(ctx context.Context, s *argocd.AppStatus) error {
	group := "apps"
	res, err := c.apps.ManagedResources(ctx, &applicationpkg.ResourcesQuery{ApplicationName: &s.Name, Group: &group})
	if err != nil {
		return fmt.Errorf("live resources of application %s: %w", s.Name, err)
	}
	seen := map[string]bool{}
	for _, img := range s.Images {
		seen[img] = true
	}
	for _, r := range res.Items {
		for _, img := range argocd.WorkloadImages(r.Kind, r.LiveState) {
			if !seen[img] {
				seen[img] = true
				s.Images = append(s.Images, img)
			}
		}
	}
	sort.Strings(s.Images)
	return nil
}

// FromApplication maps an Argo CD Application to offshoot's argocd.AppStatus; uiBase
// is the UI's base URL (see UIBase).
func FromApplication(app *v1alpha1.Application, uiBase string) argocd.AppStatus {
	st := app.Status
	s := argocd.AppStatus{
		Name:       app.Name,
		Env:        app.Labels[argocd.LabelEnv],
		Branch:     app.Annotations[argocd.AnnotationBranch],
		Parent:     app.Annotations[argocd.AnnotationParent],
		SHA:        app.Annotations[argocd.AnnotationSHA],
		PreviewURL: app.Annotations[argocd.AnnotationExtLink],
		Sync:       string(st.Sync.Status),
		Health:     string(st.Health.Status),
		Revision:   st.Sync.Revision,
		Images:     append([]string(nil), st.Summary.Images...),
		URL:        argocd.AppURL(uiBase, app.Name),
	}
	if s.Sync == "" {
		s.Sync = "Unknown"
	}
	if s.Health == "" {
		s.Health = "Unknown"
	}
	if st.ReconciledAt != nil {
		t := st.ReconciledAt.UTC()
		s.ReconciledAt = &t
	}
	if op := st.OperationState; op != nil {
		s.Operation = string(op.Phase)
	}
	if app.Operation != nil && (st.OperationState == nil || st.OperationState.FinishedAt != nil) {
		s.Operation = argocd.PhaseRunning // requested, not started yet
	}
	s.Message = message(app)
	return s
}

// message says why an Application is not done: its error conditions, a
// failed or running operation's message, or the health message.
func message(app *v1alpha1.Application) string {
	var parts []string
	for _, c := range app.Status.Conditions {
		if c.IsError() {
			parts = append(parts, c.Type+": "+argocd.OneLine(c.Message))
		}
	}
	if op := app.Status.OperationState; op != nil && op.Message != "" && op.Phase != argocd.PhaseSucceeded {
		parts = append(parts, string(op.Phase)+": "+argocd.OneLine(op.Message))
	}
	if h := app.Status.Health; h.Status != "" && h.Status != argocd.HealthHealthy {
		if h.Message != "" {
			parts = append(parts, string(h.Status)+": "+argocd.OneLine(h.Message))
		}
		n := 0
		for _, r := range app.Status.Resources {
			if r.Health == nil || r.Health.Status == argocd.HealthHealthy || r.Health.Message == "" || n == 2 {
				continue
			}
			n++
			parts = append(parts, fmt.Sprintf("%s %s: %s: %s", r.Kind, r.Name, r.Health.Status, argocd.OneLine(r.Health.Message)))
		}
	}
	return strings.Join(parts, "; ")
}
