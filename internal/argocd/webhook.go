package argocd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Webhook tells Argo CD that the environments repo moved, the way a git host
// does: a GitHub "push" event POSTed to a webhook endpoint Argo CD serves.
// Pointed at the ApplicationSet controller's endpoint (--webhook-addr,
// default :7000, path /api/webhook), it makes the controller re-read git now
// for every ApplicationSet whose Git generator uses the repo and branch, so a
// new environment's Application appears (and a deleted one goes) in seconds
// instead of at the next 3-minute poll. Pointed at the API server's
// /api/webhook, the same event refreshes the Applications whose paths it
// changed (see Push.Paths).
type Webhook struct {
	// URL of the endpoint, e.g.
	// http://argocd-applicationset-controller.argocd.svc:7000/api/webhook.
	URL string
	// Secret is argocd-secret's webhook.github.secret; when set, the body is
	// signed (X-Hub-Signature-256) as GitHub does. Argo CD rejects unsigned
	// events when it has a secret, and accepts any event when it has none.
	Secret string
	// HTTP is the client (default: one with a 10 s timeout).
	HTTP *http.Client
	// Attempts bounds the tries on a network error or 5xx (default 3).
	Attempts int
	// UserAgent names the sender.
	UserAgent string
}

// Push describes one commit pushed to a branch of the environments repo.
type Push struct {
	RepoURL string // the clone URL, as the ApplicationSet's generator names it
	Branch  string // the branch the commit was pushed to
	Before  string // the previous head (optional)
	Commit  string // the new head
	// Paths the commit changed, repo-relative (files or directories, e.g.
	// envs/feature-1-94cc62). The API server's webhook refreshes only the
	// Applications whose argocd.argoproj.io/manifest-generate-paths cover
	// one of them (and, given Before, moves the others' cached manifests to
	// the new revision); empty refreshes every Application of the repo.
	Paths []string
}

// pushEvent is the subset of GitHub's push event payload Argo CD reads
// (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push).
type pushEvent struct {
	Ref        string         `json:"ref"`
	Before     string         `json:"before,omitempty"`
	After      string         `json:"after"`
	Repository pushRepository `json:"repository"`
	HeadCommit *pushCommit    `json:"head_commit,omitempty"`
	Commits    []pushCommit   `json:"commits"`
}

type pushRepository struct {
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	HTMLURL       string `json:"html_url"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

type pushCommit struct {
	ID       string   `json:"id"`
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

// WebURL turns a git remote URL (https, http, ssh or scp-like) into the web
// URL a git host would put in html_url: scheme://host[:port]/path without
// ".git" and without credentials. Argo CD matches it against the generator's
// repoURL by host and path, so the scheme does not matter.
func WebURL(remote string) (string, error) {
	r := strings.TrimSpace(remote)
	var host, path, scheme string
	switch {
	case strings.HasPrefix(r, "http://"), strings.HasPrefix(r, "https://"), strings.HasPrefix(r, "ssh://"):
		u, err := url.Parse(r)
		if err != nil {
			return "", fmt.Errorf("environments repo URL %q: %w", redactURL(r), err)
		}
		host, path, scheme = u.Host, u.Path, u.Scheme
		if scheme == "ssh" {
			scheme, host = "https", u.Hostname()
		}
	case !strings.Contains(r, "://") && strings.Contains(r, ":") && !strings.HasPrefix(r, "/"):
		// scp-like: [user@]host:path
		hp := r[strings.LastIndex(r[:strings.Index(r, ":")], "@")+1:]
		i := strings.Index(hp, ":")
		host, path, scheme = hp[:i], "/"+strings.TrimPrefix(hp[i+1:], "/"), "https"
	default:
		return "", fmt.Errorf("environments repo %q is not a remote URL (http, https, ssh): Argo CD cannot be told about pushes to it", redactURL(r))
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	if host == "" || path == "" || path == "/" {
		return "", fmt.Errorf("environments repo URL %q has no host or path", redactURL(r))
	}
	return scheme + "://" + host + path, nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// Notify sends the push event, retrying network errors and 5xx (Argo CD
// answers 503 when its webhook queue is full). Any other non-2xx is an error
// naming the endpoint and Argo CD's answer.
func (w *Webhook) Notify(ctx context.Context, p Push) error {
	if w.URL == "" {
		return errors.New("no Argo CD webhook URL")
	}
	web, err := WebURL(p.RepoURL)
	if err != nil {
		return err
	}
	if p.Branch == "" || p.Commit == "" {
		return errors.New("push event without branch or commit")
	}
	wu, err := url.Parse(web)
	if err != nil {
		return err
	}
	full := strings.TrimPrefix(wu.Path, "/")
	name := full[strings.LastIndex(full, "/")+1:]
	ev := pushEvent{
		Ref: "refs/heads/" + p.Branch, Before: p.Before, After: p.Commit,
		// The environments branch is what the generator tracks; calling it
		// the default branch also refreshes generators whose revision is HEAD.
		Repository: pushRepository{Name: name, FullName: full, HTMLURL: web, CloneURL: web + ".git", DefaultBranch: p.Branch},
		HeadCommit: &pushCommit{ID: p.Commit, Added: []string{}, Modified: p.Paths, Removed: []string{}},
		Commits:    []pushCommit{{ID: p.Commit, Added: []string{}, Modified: p.Paths, Removed: []string{}}},
	}
	if p.Paths == nil {
		ev.HeadCommit.Modified, ev.Commits[0].Modified = []string{}, []string{}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	client := w.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts := w.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	delivery := make([]byte, 16)
	_, _ = rand.Read(delivery)
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("Argo CD webhook %s: %w (last: %v)", redactURL(w.URL), ctx.Err(), last)
			case <-time.After(time.Duration(i) * 300 * time.Millisecond):
			}
		}
		retry, err := w.post(ctx, client, body, hex.EncodeToString(delivery))
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return last
}

func (w *Webhook) post(ctx context.Context, client *http.Client, body []byte, delivery string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("Argo CD webhook URL %q: %w", redactURL(w.URL), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	if w.UserAgent != "" {
		req.Header.Set("User-Agent", w.UserAgent)
	}
	if w.Secret != "" {
		mac := hmac.New(sha256.New, []byte(w.Secret))
		mac.Write(body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("Argo CD webhook %s: %w", redactURL(w.URL), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500, fmt.Errorf("Argo CD webhook %s: %s: %s", redactURL(w.URL), resp.Status, strings.TrimSpace(string(msg)))
}
