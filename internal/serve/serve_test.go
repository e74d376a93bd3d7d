package serve_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/apprepo"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
	"github.com/offshoot-dev/offshoot/internal/gitserver"
	"github.com/offshoot-dev/offshoot/internal/serve"
	"github.com/offshoot-dev/offshoot/internal/webhook"
)

var secret = []byte("s3cr3t-webhook")

// tlog sends the server's logs to the test's log (shown on failure or -v).
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// world is an app repo and an environments repo on a real git server.
type world struct {
	t       *testing.T
	srv     *gitserver.Server
	appURL  string
	envURL  string
	appDir  string // working clone of the app repo
	envBare string
	deliver int
	mu      sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	w := &world{t: t, srv: srv}
	if w.appURL, err = srv.CreateBare("shop"); err != nil {
		t.Fatal(err)
	}
	if w.envURL, err = srv.CreateBare("shop-environments"); err != nil {
		t.Fatal(err)
	}
	w.envBare = srv.Dir("shop-environments")
	w.appDir = filepath.Join(t.TempDir(), "shop")
	w.git("", "init", "-q", "-b", "main", w.appDir)
	w.commit("first")
	w.git(w.appDir, "push", "-q", w.appURL, "main")
	// Initialise the environments repo.
	files, err := generator.Scaffold(generator.InitOptions{Protected: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.engine(t.TempDir()).Init(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) git(dir string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@x",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (w *world) commit(msg string) string {
	f := filepath.Join(w.appDir, "log.txt")
	old, _ := os.ReadFile(f)
	if err := os.WriteFile(f, append(old, []byte(msg+"\n")...), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.git(w.appDir, "add", ".")
	w.git(w.appDir, "commit", "-qm", msg)
	return w.git(w.appDir, "rev-parse", "HEAD")
}

// branch cuts a branch from `from`, adds n commits and pushes it.
func (w *world) branch(name, from string, n int) string {
	w.git(w.appDir, "checkout", "-q", "-b", name, from)
	for i := 0; i < n; i++ {
		w.commit(fmt.Sprintf("%s %d", name, i))
	}
	w.git(w.appDir, "push", "-q", w.appURL, name)
	return w.git(w.appDir, "rev-parse", name)
}

func (w *world) engine(cache string) *engine.Engine {
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Location: w.envURL, CacheDir: cache})
	if err != nil {
		w.t.Fatal(err)
	}
	return &engine.Engine{Repo: repo}
}

func (w *world) server(window time.Duration) *serve.Server {
	cache := w.t.TempDir()
	app, err := apprepo.Open(context.Background(), apprepo.Options{URL: w.appURL, CacheDir: cache})
	if err != nil {
		w.t.Fatal(err)
	}
	eng := w.engine(cache)
	eng.App = app
	return serve.New(serve.Options{Engine: eng, Window: window, Retry: engine.Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(tlog{w.t}, nil))})
}

func (w *world) envs() map[string]*generator.Environment {
	w.t.Helper()
	dir := filepath.Join(w.t.TempDir(), "envs")
	w.git("", "clone", "-q", w.envURL, dir)
	envs, err := generator.ListEnvs(os.DirFS(dir))
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]*generator.Environment{}
	for _, e := range envs {
		out[e.Branch] = e
	}
	return out
}

func (w *world) commits() int {
	n, _ := strconv.Atoi(w.git(w.envBare, "rev-list", "--count", "main"))
	return n
}

// post sends a signed webhook in GitHub's shape.
func (w *world) post(url, event string, payload any) *http.Response {
	w.t.Helper()
	body, _ := json.Marshal(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	w.mu.Lock()
	w.deliver++
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", w.deliver))
	w.mu.Unlock()
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

var repoJSON = map[string]any{"full_name": "acme/shop", "name": "shop", "owner": map[string]any{"login": "acme"}}

func push(branch, before, after string) map[string]any {
	return map[string]any{"ref": "refs/heads/" + branch, "before": before, "after": after, "created": before == zero, "deleted": after == zero,
		"forced": false, "repository": repoJSON, "sender": map[string]any{"login": "dev"}, "head_commit": map[string]any{"id": after}}
}

var zero = strings.Repeat("0", 40)

func startHTTP(t *testing.T, s *serve.Server) (string, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s.Engine().Config(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Mux(serve.HTTPOptions{Secret: secret}))
	done := make(chan struct{})
	go func() { s.Run(ctx, 0); close(done) }()
	stop := func() { hs.Close(); cancel(); <-done }
	t.Cleanup(stop)
	return hs.URL, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestWebhooksDriveTheEnvironmentsRepo(t *testing.T) {
	w := newWorld(t)
	s := w.server(300 * time.Millisecond)
	url, _ := startHTTP(t, s)
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if resp := w.post(url, "push", push("main", zero, mainSHA)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	waitFor(t, "main's environment", func() bool { return w.envs()["main"] != nil })

	// staging and feature_1 (cut from staging) arrive in one burst: one commit,
	// with feature_1's parent detected as staging from history.
	stagingSHA := w.branch("staging", "main", 2)
	f1SHA := w.branch("feature_1", "staging", 3)
	before := w.commits()
	w.post(url, "create", map[string]any{"ref": "staging", "ref_type": "branch", "master_branch": "main", "repository": repoJSON})
	w.post(url, "push", push("staging", zero, stagingSHA))
	w.post(url, "push", push("feature_1", zero, f1SHA))
	waitFor(t, "staging and feature_1", func() bool { e := w.envs(); return e["staging"] != nil && e["feature_1"] != nil })
	if got := w.commits() - before; got != 1 {
		t.Fatalf("a burst of two environments made %d commits, want 1", got)
	}
	envs := w.envs()
	if envs["staging"].Parent != "main" || envs["feature_1"].Parent != "staging" || !strings.Contains(envs["feature_1"].ParentReason, "staging") {
		t.Fatalf("parents: staging←%q feature_1←%q (%s)", envs["staging"].Parent, envs["feature_1"].Parent, envs["feature_1"].ParentReason)
	}
	if envs["feature_1"].SHA != f1SHA || envs["feature_1"].Database.Source.ServerName != envs["staging"].Database.ServerName {
		t.Fatalf("feature_1: %+v", envs["feature_1"])
	}

	// 200 pushes to one branch: few commits, the final SHA wins.
	before = w.commits()
	var last string
	prev := f1SHA
	for i := 0; i < 200; i++ {
		last = fmt.Sprintf("%040x", i+1)
		if resp := w.post(url, "push", push("feature_1", prev, last)); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push %d: %d", i, resp.StatusCode)
		}
		prev = last
	}
	waitFor(t, "the last SHA", func() bool { return w.envs()["feature_1"].SHA == last })
	time.Sleep(500 * time.Millisecond) // nothing more may follow
	if got := w.commits() - before; got < 1 || got > 5 {
		t.Fatalf("200 pushes made %d commits, want a few", got)
	}
	if w.envs()["feature_1"].SHA != last {
		t.Fatal("a stale SHA was applied after the last one")
	}

	// Deleting the branch removes the environment; a protected one stays.
	w.post(url, "delete", map[string]any{"ref": "feature_1", "ref_type": "branch", "repository": repoJSON})
	w.post(url, "delete", map[string]any{"ref": "staging", "ref_type": "branch", "repository": repoJSON})
	waitFor(t, "feature_1 removed", func() bool { return w.envs()["feature_1"] == nil })
	if w.envs()["staging"] == nil {
		t.Fatal("a protected environment was removed")
	}
}

func TestReconcileHealsMissedEvents(t *testing.T) {
	w := newWorld(t)
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	w.branch("staging", "main", 1)
	f1 := w.branch("feature_1", "staging", 2)
	f2 := w.branch("feature_2", "feature_1", 1) // cut from a feature branch

	// serve accepted an event (202) and was killed before committing it.
	dead := w.server(time.Hour)
	if err := dead.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
		t.Fatal(err)
	}
	if w.commits() != 1 {
		t.Fatal("nothing may be committed yet")
	}
	// The next process reconciles: everything converges.
	s := w.server(time.Millisecond)
	res, err := s.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	envs := w.envs()
	if len(envs) != 4 || envs["feature_2"].Parent != "feature_1" || envs["feature_1"].Parent != "staging" || envs["staging"].Parent != "main" {
		t.Fatalf("after reconcile: %v (%+v)", keys(envs), res)
	}
	if envs["feature_1"].SHA != f1 || envs["feature_2"].SHA != f2 {
		t.Fatal("wrong SHAs")
	}
	// Reconciling again changes nothing.
	n := w.commits()
	if _, err := s.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.commits() != n {
		t.Fatal("a second reconcile committed")
	}
	// A new commit and a deleted branch are picked up.
	w.git(w.appDir, "checkout", "-q", "feature_1")
	f1b := w.commit("more")
	w.git(w.appDir, "push", "-q", w.appURL, "feature_1")
	w.git(w.appDir, "push", "-q", w.appURL, "--delete", "feature_2")
	if _, err := s.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	envs = w.envs()
	if envs["feature_1"].SHA != f1b || envs["feature_2"] != nil {
		t.Fatalf("after changes: feature_1 at %s, feature_2 %v", envs["feature_1"].SHA, envs["feature_2"] != nil)
	}
}

func TestFailedListingRemovesNothing(t *testing.T) {
	w := newWorld(t)
	w.branch("feature_1", "main", 1)
	s := w.server(time.Millisecond)
	if _, err := s.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := w.commits()
	// The app repo is unreachable: an outage is not "every branch deleted".
	w.srv.SetDown(true)
	_, err := s.Reconcile(context.Background())
	w.srv.SetDown(false)
	if err == nil {
		t.Fatal("reconcile must fail when the listing fails")
	}
	if w.commits() != n || len(w.envs()) != 2 {
		t.Fatal("a failed listing changed the environments")
	}
	// An app repo with no branches at all: nothing removed either.
	w.git(w.srv.Dir("shop"), "symbolic-ref", "HEAD", "refs/heads/none")
	w.git(w.appDir, "push", "-q", w.appURL, "--delete", "feature_1", "main")
	if _, err := s.Reconcile(context.Background()); err == nil {
		t.Fatal("an empty listing must be an error")
	}
	if w.commits() != n {
		t.Fatal("an empty listing changed the environments")
	}
}

func TestTwoServersOneRepo(t *testing.T) {
	w := newWorld(t)
	a, b := w.server(20*time.Millisecond), w.server(20*time.Millisecond)
	urlA, _ := startHTTP(t, a)
	urlB, _ := startHTTP(t, b)
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	w.post(urlA, "push", push("main", zero, mainSHA))
	waitFor(t, "main", func() bool { return w.envs()["main"] != nil })
	want := map[string]string{}
	for i := 0; i < 6; i++ {
		want[fmt.Sprintf("feat-%d", i)] = w.branch(fmt.Sprintf("feat-%d", i), "main", 1)
	}
	before := w.commits()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			url := urlA
			if i%2 == 1 {
				url = urlB
			}
			br := fmt.Sprintf("feat-%d", i)
			w.post(url, "push", push(br, zero, want[br]))
			w.post(url, "push", push(br, zero, want[br])) // the same event twice, different delivery
		}(i)
	}
	wg.Wait()
	waitFor(t, "all six environments", func() bool {
		e := w.envs()
		for br, sha := range want {
			if e[br] == nil || e[br].SHA != sha {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	if got := w.commits() - before; got > 6 {
		t.Fatalf("%d commits for 6 new environments: duplicates", got)
	}
	// Linear history, every environment created exactly once.
	envs := w.envs()
	for br := range want {
		added := w.git(w.envBare, "log", "--format=%H", "--diff-filter=A", "main", "--", "envs/"+envs[br].Name+"/env.yaml")
		if n := len(strings.Fields(added)); n != 1 {
			t.Fatalf("%s's environment was created in %d commits, want 1", br, n)
		}
	}
	if merges := w.git(w.envBare, "rev-list", "--merges", "--count", "main"); merges != "0" {
		t.Fatal("history is not linear")
	}
}

func keys(m map[string]*generator.Environment) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// /readyz answers 503 until the worker has warmed up (Run builds one
// environment first), without committing anything; events offered meanwhile
// wait in the queue and are then applied.
func TestReadyAfterWarmUp(t *testing.T) {
	w := newWorld(t)
	s := serve.New(serve.Options{Engine: w.engine(t.TempDir()), Window: time.Millisecond})
	mux := s.Mux(serve.HTTPOptions{Secret: secret})
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec
	}
	if rec := get(); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "warming up") {
		t.Fatalf("/readyz before the worker ran: %d %q", rec.Code, rec.Body.String())
	}
	before := w.git(w.envBare, "rev-parse", "main")
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
		t.Fatal(err)
	}
	defer runWorker(s)()
	for deadline := time.Now().Add(30 * time.Second); !s.Warmed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not warmed up after 30 s")
		}
	}
	if rec := get(); rec.Code != http.StatusOK {
		t.Fatalf("/readyz after the warm-up: %d %q", rec.Code, rec.Body.String())
	}
	for deadline := time.Now().Add(30 * time.Second); w.envs()["main"] == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the event queued during the warm-up was not applied")
		}
	}
	if after := w.git(w.envBare, "rev-list", "--count", before+"..main"); after != "1" {
		t.Errorf("commits after warm-up + one event: %s, want 1 (the warm-up commits nothing)", after)
	}
}

func TestHTTPEndpointsAndGracefulShutdown(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	s := serve.New(serve.Options{Engine: w.engine(t.TempDir()), Window: time.Hour, Metrics: serve.NewMetrics(reg)}) // events wait: only the shutdown drain commits them
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(ctx, serve.HTTPOptions{Listen: "127.0.0.1:0", Secret: secret, Registry: reg, Ready: func(a string) { addrc <- a }})
	}()
	url := "http://" + <-addrc
	// Ready once the worker has warmed up (one build, nothing committed).
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("/readyz: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		resp, err := http.Get(url + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if resp := w.post(url, "push", push("main", zero, mainSHA)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	if w.envs()["main"] != nil {
		t.Fatal("committed before the window closed")
	}
	// SIGTERM: stop accepting, finish the queued work.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e := w.envs()["main"]; e == nil || e.SHA != mainSHA {
		t.Fatal("the queued event was lost on shutdown")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("still accepting requests after shutdown")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, m := range []string{"offshoot_webhook_requests_total", "offshoot_queue_depth", "offshoot_commit_seconds"} {
		if !seen[m] {
			t.Errorf("metric %s not exported", m)
		}
	}
}

// After a commit, serve asks Argo CD to refresh each changed environment's
// Application (here a recorder stands in for the Argo CD API).
func TestRefreshAfterCommit(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var refreshed, paths []string
	eng := w.engine(t.TempDir())
	eng.Notifier = notifyFunc(func(_ context.Context, p engine.Pushed) error {
		mu.Lock()
		defer mu.Unlock()
		if len(p.Commit) != 40 || p.Commit != w.git(w.envBare, "rev-parse", "main") {
			t.Errorf("notified of commit %q, want the new head", p.Commit)
		}
		if p.Previous == "" || p.Previous != w.git(w.envBare, "rev-parse", "main^") {
			t.Errorf("notified of previous head %q, want main^", p.Previous)
		}
		refreshed = append(refreshed, p.Apps...)
		paths = append(paths, p.Paths...)
		return nil
	})
	s := serve.New(serve.Options{Engine: eng, Window: time.Millisecond})
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	for range 2 { // the same event twice
		if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refreshed) != 1 || refreshed[0] != "shop-main" {
		t.Fatalf("refreshed %v, want [shop-main] (once: the repeat changed nothing)", refreshed)
	}
	if len(paths) != 1 || paths[0] != "envs/main" {
		t.Fatalf("changed paths %v, want [envs/main]", paths)
	}
}

// Telling Argo CD is bounded: a Notify that would hang gets a deadline, and
// the next batch is committed and notified as usual.
func TestNotifyIsBounded(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var deadlines []bool
	eng := w.engine(t.TempDir())
	eng.NotifyTimeout = 50 * time.Millisecond
	eng.Notifier = notifyFunc(func(ctx context.Context, _ engine.Pushed) error {
		_, has := ctx.Deadline()
		<-ctx.Done() // an Argo CD that never answers
		mu.Lock()
		defer mu.Unlock()
		deadlines = append(deadlines, has)
		return ctx.Err()
	})
	s := serve.New(serve.Options{Engine: eng, Window: time.Millisecond})
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	for _, sha := range []string{mainSHA, "0123456789abcdef0123456789abcdef01234567"} {
		if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: sha}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deadlines) != 2 || !deadlines[0] || !deadlines[1] {
		t.Fatalf("notifications %v, want two, each with a deadline", deadlines)
	}
}

type notifyFunc func(context.Context, engine.Pushed) error

func (f notifyFunc) Notify(ctx context.Context, p engine.Pushed) error { return f(ctx, p) }
