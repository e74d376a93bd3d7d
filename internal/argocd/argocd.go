// Package argocd is offshoot's one adapter to Argo CD: it reads the
// Applications of offshoot's environments through the Argo CD API server
// (github.com/argoproj/argo-cd/v2/pkg/apiclient, token auth) and maps them to
// offshoot's own AppStatus. No other package imports argo-cd.
package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Labels and annotations the offshoot ApplicationSet puts on every
// Application (manifests/argocd/applicationset.yaml).
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelEnv            = "offshoot.dev/env"
	AnnotationBranch    = "offshoot.dev/branch"
	AnnotationParent    = "offshoot.dev/parent-branch"
	AnnotationSHA       = "offshoot.dev/sha"
	AnnotationExtLink   = "link.argocd.argoproj.io/external-link"
	ManagedBySelector   = LabelManagedBy + "=offshoot"
	controlPlaneNSInURL = "argocd"
)

// Sync and health values, as Argo CD reports them.
const (
	SyncSynced       = "Synced"
	SyncOutOfSync    = "OutOfSync"
	HealthHealthy    = "Healthy"
	HealthDegraded   = "Degraded"
	HealthMissing    = "Missing"
	PhaseRunning     = "Running"
	PhaseTerminating = "Terminating"
	PhaseFailed      = "Failed"
	PhaseError       = "Error"
	PhaseSucceeded   = "Succeeded"
)

// ErrNotFound is returned by Get and Refresh for an unknown Application.
var ErrNotFound = errors.New("application not found")

// AppStatus is what offshoot shows of one environment's Application.
type AppStatus struct {
	Name   string `json:"name"`             // the Application, = the env's namespace
	Env    string `json:"env"`              // offshoot.dev/env label
	Branch string `json:"branch"`           // offshoot.dev/branch annotation (raw branch name)
	Parent string `json:"parent,omitempty"` // offshoot.dev/parent-branch annotation
	// SHA is the app commit the Application was generated for (its
	// offshoot.dev/sha annotation, from env.yaml at the revision Argo CD read).
	SHA    string `json:"sha"`
	Sync   string `json:"sync"`   // Synced, OutOfSync, Unknown
	Health string `json:"health"` // Healthy, Progressing, Degraded, Suspended, Missing, Unknown
	// Revision is the environments-repo commit Argo CD compared (and, once
	// Synced, applied).
	Revision string `json:"revision"`
	// Images are the images of the live workloads (Deployments,
	// StatefulSets, DaemonSets) and Pods of the Application.
	Images []string `json:"images,omitempty"`
	// Operation is the phase of the current or last sync (Running, Succeeded,
	// Failed, Error, Terminating), empty if there was none.
	Operation string `json:"operation,omitempty"`
	// Message explains a failure or a wait: error conditions, the failed
	// operation's message, or a non-healthy health message.
	Message string `json:"message,omitempty"`
	// URL is the Application in the Argo CD UI; PreviewURL the env's own.
	URL          string     `json:"url"`
	PreviewURL   string     `json:"previewURL,omitempty"`
	ReconciledAt *time.Time `json:"reconciledAt,omitempty"`
}

// DeployedTag is the tag of the live image of repository repo (e.g.
// "ghcr.io/acme/shop"), or, with repo empty, the tag of the only live
// image; "" when there is none (or several and no repo given).
func (s AppStatus) DeployedTag(repo string) string {
	var tags []string
	for _, img := range s.Images {
		name, tag := splitImage(img)
		if tag == "" || (repo != "" && name != repo) {
			continue
		}
		tags = append(tags, tag)
	}
	if len(tags) == 1 {
		return tags[0]
	}
	return ""
}

// Runs reports whether the live image of the Application is sha.
func (s AppStatus) Runs(sha string) bool {
	for _, img := range s.Images {
		if _, tag := splitImage(img); tag == sha {
			return true
		}
	}
	return false
}

// Done reports whether the environment has converged: Synced, Healthy, no
// sync running, and, when sha is given, generated for sha and running it.
// With syncOnly, health is not required (clusters that run no workloads).
func (s AppStatus) Done(sha string, syncOnly bool) bool {
	if s.Sync != SyncSynced || s.Operation == PhaseRunning || s.Operation == PhaseTerminating {
		return false
	}
	if !syncOnly && s.Health != HealthHealthy {
		return false
	}
	return sha == "" || (s.SHA == sha && s.Runs(sha))
}

// Failed reports whether Argo CD gave up on the last sync or cannot compare.
func (s AppStatus) Failed() bool {
	return s.Operation == PhaseFailed || s.Operation == PhaseError || s.Health == HealthDegraded ||
		strings.Contains(s.Message, "ComparisonError") || strings.Contains(s.Message, "SyncError")
}

func splitImage(img string) (name, tag string) {
	if i := strings.Index(img, "@"); i >= 0 {
		img = img[:i]
	}
	slash := strings.LastIndex(img, "/")
	if i := strings.LastIndex(img, ":"); i > slash {
		return img[:i], img[i+1:]
	}
	return img, ""
}

// Options say how to reach the Argo CD API server.
type Options struct {
	// Server is host[:port] of the API server (a scheme is accepted and
	// stripped; http:// implies PlainText).
	Server string
	// Token is a bearer token: an account's API key or a session token.
	Token string
	// Insecure skips TLS verification (self-signed certificates).
	Insecure bool
	// PlainText talks HTTP/2 without TLS (an API server started --insecure).
	PlainText bool
	// GRPCWeb tunnels gRPC over HTTP/1 (for proxies that break HTTP/2).
	GRPCWeb bool
	// UserAgent is sent with every request.
	UserAgent string
}

// Client reads offshoot's Applications from an Argo CD API server.
type Client struct {
	conn io.Closer
	apps applicationpkg.ApplicationServiceClient
	ui   string // base URL of the UI
}

// New connects to the API server; apiclient asks it for its version to
// choose between gRPC and gRPC-web, so an unreachable server fails here.
func New(o Options) (*Client, error) {
	server, plain, err := normaliseServer(o.Server)
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
	return &Client{conn: conn, apps: apps, ui: UIBase(server, o.PlainText)}, nil
}

// normaliseServer strips a scheme and a trailing slash from addr.
func normaliseServer(addr string) (server string, plain bool, err error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", false, errors.New("no Argo CD server: set --argocd-server or $ARGOCD_SERVER (host[:port])")
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" {
			return "", false, fmt.Errorf("invalid Argo CD server %q: want host[:port]", addr)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false, fmt.Errorf("invalid Argo CD server %q: scheme must be http or https", addr)
		}
		return u.Host, u.Scheme == "http", nil
	}
	return strings.TrimRight(addr, "/"), false, nil
}

// UIBase is the base URL of the Argo CD UI served by server.
func UIBase(server string, plainText bool) string {
	scheme := "https"
	if plainText {
		scheme = "http"
	}
	return scheme + "://" + server
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// AppURL is the Application's page in the Argo CD UI.
func (c *Client) AppURL(name string) string { return AppURL(c.ui, name) }

// AppURL is the page of Application name (in Argo CD's own namespace) in
// the UI at base.
func AppURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/applications/" + controlPlaneNSInURL + "/" + url.PathEscape(name)
}

// List returns the Applications matching the label selector (ManagedBySelector
// when empty), sorted by name.
func (c *Client) List(ctx context.Context, selector string) ([]AppStatus, error) {
	if selector == "" {
		selector = ManagedBySelector
	}
	list, err := c.apps.List(ctx, &applicationpkg.ApplicationQuery{Selector: &selector})
	if err != nil {
		return nil, fmt.Errorf("list applications (%s): %w", selector, err)
	}
	out := make([]AppStatus, 0, len(list.Items))
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
func (c *Client) Get(ctx context.Context, name string) (*AppStatus, error) {
	return c.get(ctx, name, "")
}

// Refresh asks Argo CD to compare the Application with git again now
// (a "normal" refresh: the repo is fetched, manifests are regenerated if the
// revision changed) and returns its status.
func (c *Client) Refresh(ctx context.Context, name string) (*AppStatus, error) {
	return c.get(ctx, name, "normal")
}

func (c *Client) get(ctx context.Context, name, refresh string) (*AppStatus, error) {
	q := &applicationpkg.ApplicationQuery{Name: &name}
	if refresh != "" {
		q.Refresh = &refresh
	}
	app, err := c.apps.Get(ctx, q)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		// Argo CD answers PermissionDenied for apps that do not exist, too,
		// so as not to reveal them.
		if status.Code(err) == codes.PermissionDenied {
			return nil, fmt.Errorf("%s: %w (or the token may not read it)", name, ErrNotFound)
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
func (c *Client) addLiveImages(ctx context.Context, s *AppStatus) error {
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
		for _, img := range WorkloadImages(r.Kind, r.LiveState) {
			if !seen[img] {
				seen[img] = true
				s.Images = append(s.Images, img)
			}
		}
	}
	sort.Strings(s.Images)
	return nil
}

// WorkloadImages returns the container images of a live Deployment,
// StatefulSet or DaemonSet given as JSON (nothing for other kinds, or when
// the object does not exist: live state "null").
func WorkloadImages(kind, liveJSON string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
	default:
		return nil
	}
	var obj struct {
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers []struct{ Image string } `json:"initContainers"`
					Containers     []struct{ Image string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if liveJSON == "" || json.Unmarshal([]byte(liveJSON), &obj) != nil {
		return nil
	}
	var out []string
	for _, c := range append(obj.Spec.Template.Spec.InitContainers, obj.Spec.Template.Spec.Containers...) {
		if c.Image != "" {
			out = append(out, c.Image)
		}
	}
	return out
}

// FromApplication maps an Argo CD Application to offshoot's AppStatus; uiBase
// is the UI's base URL (see UIBase).
func FromApplication(app *v1alpha1.Application, uiBase string) AppStatus {
	st := app.Status
	s := AppStatus{
		Name:       app.Name,
		Env:        app.Labels[LabelEnv],
		Branch:     app.Annotations[AnnotationBranch],
		Parent:     app.Annotations[AnnotationParent],
		SHA:        app.Annotations[AnnotationSHA],
		PreviewURL: app.Annotations[AnnotationExtLink],
		Sync:       string(st.Sync.Status),
		Health:     string(st.Health.Status),
		Revision:   st.Sync.Revision,
		Images:     append([]string(nil), st.Summary.Images...),
		URL:        AppURL(uiBase, app.Name),
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
		s.Operation = PhaseRunning // requested, not started yet
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
			parts = append(parts, c.Type+": "+oneLine(c.Message))
		}
	}
	if op := app.Status.OperationState; op != nil && op.Message != "" && op.Phase != PhaseSucceeded {
		parts = append(parts, string(op.Phase)+": "+oneLine(op.Message))
	}
	if h := app.Status.Health; h.Status != "" && h.Status != HealthHealthy {
		if h.Message != "" {
			parts = append(parts, string(h.Status)+": "+oneLine(h.Message))
		}
		n := 0
		for _, r := range app.Status.Resources {
			if r.Health == nil || r.Health.Status == HealthHealthy || r.Health.Message == "" || n == 2 {
				continue
			}
			n++
			parts = append(parts, fmt.Sprintf("%s %s: %s: %s", r.Kind, r.Name, r.Health.Status, oneLine(r.Health.Message)))
		}
	}
	return strings.Join(parts, "; ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
