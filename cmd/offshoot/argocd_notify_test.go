package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// After each commit the CLI sends the ApplicationSet webhook a signed GitHub
// push event naming the environments repo, its branch and the new head; a
// command that commits nothing sends nothing. (internal/argocd tests the same
// event against Argo CD's own handler.)
func TestCLITellsArgoCDAfterEachCommit(t *testing.T) {
	type push struct {
		Path       string `json:"-"`
		Ref, After string
		Before     string
		Repository struct {
			HTMLURL string `json:"html_url"`
		}
		Commits []struct {
			Modified []string
		}
	}
	var mu sync.Mutex
	var got []push
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("hook-secret"))
		mac.Write(body)
		if r.Header.Get("X-GitHub-Event") != "push" || r.Header.Get("X-Hub-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("event %q with signature %q", r.Header.Get("X-GitHub-Event"), r.Header.Get("X-Hub-Signature-256"))
		}
		var p push
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		p.Path = r.URL.Path
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	defer hook.Close()
	t.Setenv("ARGOCD_APPSET_WEBHOOK", hook.URL+"/appset/api/webhook")
	t.Setenv("ARGOCD_WEBHOOK", hook.URL+"/api/webhook")
	t.Setenv("ARGOCD_WEBHOOK_SECRET", "hook-secret")
	t.Setenv("ARGOCD_SERVER", "")

	srv, url := envServer(t)
	c := &cli{t: t, repo: url, cache: t.TempDir(), gitDir: srv.Dir("shop-environments")}
	c.ok("init", url)
	var heads []string
	c.ok("sync", "main", "--sha", "1a2b3c4")
	heads = append(heads, c.git("rev-parse", "main"))
	c.ok("sync", "main", "--sha", "1a2b3c4") // up to date: no commit, no event
	c.ok("sync", "feature_1", "--parent", "main", "--sha", "5d6e7f8")
	heads = append(heads, c.git("rev-parse", "main"))
	c.ok("delete", "feature_1")
	heads = append(heads, c.git("rev-parse", "main"))

	mu.Lock()
	defer mu.Unlock()
	// Each commit goes to both webhooks, the ApplicationSet controller's first.
	if len(got) != 2*len(heads) {
		t.Fatalf("%d push events, want %d (sync, sync, delete, to two webhooks): %+v", len(got), 2*len(heads), got)
	}
	web := strings.TrimSuffix(url, ".git")
	envs := []string{"envs/main", "envs/feature-1-94cc62", "envs/feature-1-94cc62"}
	for i, want := range heads {
		for j, path := range []string{"/appset/api/webhook", "/api/webhook"} {
			ev := got[2*i+j]
			if ev.Path != path || ev.Ref != "refs/heads/main" || ev.After != want || ev.Repository.HTMLURL != web {
				t.Errorf("event %d to %s = %+v, want ref refs/heads/main, after %s, html_url %s", i, path, ev, want, web)
			}
			if len(ev.Commits) != 1 || strings.Join(ev.Commits[0].Modified, ",") != envs[i] {
				t.Errorf("event %d to %s lists %+v as changed, want %s", i, path, ev.Commits, envs[i])
			}
			if i > 0 && ev.Before != heads[i-1] {
				t.Errorf("event %d to %s: before %s, want the previous head %s", i, path, ev.Before, heads[i-1])
			}
		}
	}
}
