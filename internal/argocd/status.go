// Package argocd holds offshoot's own view of Argo CD: the status of an
// environment's Application (AppStatus), the Client interface that reads it,
// and the webhooks that tell Argo CD the environments repo moved. It does
// not import Argo CD: the one adapter that does is argocd/argoapi (Argo CD's
// API client), so binaries built without it (-tags noargocdapi, the server
// image) do not carry Argo CD's client and its Kubernetes dependencies.
package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/offshoot-dev/offshoot/generator"
)

// Labels and annotations the offshoot ApplicationSet puts on every
// Application (manifests/argocd/applicationset.yaml).
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelEnv            = generator.AppLabel
	AnnotationBranch    = generator.AnnotationBranch
	AnnotationParent    = generator.AnnotationParent
	AnnotationSHA       = generator.AnnotationSHA
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

// Client reads offshoot's Applications from Argo CD (argoapi.New).
type Client interface {
	// List returns the Applications matching the label selector
	// (ManagedBySelector when empty), sorted by name.
	List(ctx context.Context, selector string) ([]AppStatus, error)
	// Get returns one Application's status (ErrNotFound if unknown).
	Get(ctx context.Context, name string) (*AppStatus, error)
	// Refresh asks Argo CD to compare the Application with git now and
	// returns its status (ErrNotFound if unknown).
	Refresh(ctx context.Context, name string) (*AppStatus, error)
	// AppURL is the Application's page in the Argo CD UI.
	AppURL(name string) string
	Close() error
}

// NormaliseServer strips a scheme and a trailing slash from addr; plain
// reports an http:// scheme.
func NormaliseServer(addr string) (server string, plain bool, err error) {
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

// AppURL is the page of Application name (in Argo CD's own namespace) in
// the UI at base.
func AppURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/applications/" + controlPlaneNSInURL + "/" + url.PathEscape(name)
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

// OneLine folds s onto one line of at most 300 characters.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
