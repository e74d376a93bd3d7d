package serve_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/serve"
	"github.com/offshoot-dev/offshoot/internal/webhook"
)

// One batch reads the environments repo once, parent detection included.
func TestOneFetchPerBatch(t *testing.T) {
	w := newWorld(t)
	s := w.server(time.Millisecond)
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stagingSHA := w.branch("staging", "main", 1)
	f1SHA := w.branch("feature_1", "staging", 1)
	before := w.srv.Fetches("shop-environments")
	for _, ev := range []webhook.Event{
		{Source: "push", Kind: webhook.KindSync, Branch: "staging", SHA: stagingSHA}, // parent detected
		{Source: "create", Kind: webhook.KindSync, Branch: "feature_1"},              // SHA looked up, parent detected
		{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA},
	} {
		if err := s.Offer(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := w.srv.Fetches("shop-environments") - before; n != 1 {
		t.Fatalf("%d fetches of the environments repo for one batch, want 1", n)
	}
	envs := w.envs()
	if envs["feature_1"] == nil || envs["feature_1"].SHA != f1SHA || envs["feature_1"].Parent != "staging" {
		t.Fatalf("feature_1: %+v", envs["feature_1"])
	}
}

// A temporary failure (the git server down) is retried with backoff and
// lands once the server is back; nothing is lost.
func TestTemporaryFailureIsRetried(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	m := serve.NewMetrics(reg)
	s := serve.New(serve.Options{Engine: w.engine(t.TempDir()), Window: time.Millisecond, Metrics: m,
		Retry: engine.Backoff{Base: 20 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 100}, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
	w.srv.SetDown(true)
	defer runWorker(s)()
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failed attempts", func() bool { return counter(m.Failures.WithLabelValues("temporary")) >= 2 })
	w.srv.SetDown(false)
	waitFor(t, "main's environment after the outage", func() bool { return w.envs()["main"] != nil })
	if n := counter(m.Failures.WithLabelValues("terminal")); n != 0 {
		t.Fatalf("an outage counted %v terminal failures", n)
	}
}

// A terminal failure (a broken offshoot.yaml) is not retried: it is counted,
// reported on the app commit, and the queue moves on.
func TestTerminalFailureIsNotRetried(t *testing.T) {
	w := newWorld(t)
	// Break offshoot.yaml in the environments repo.
	dir := t.TempDir()
	w.git("", "clone", "-q", w.envURL, dir)
	w.git(dir, "config", "user.email", "x@x")
	w.git(dir, "config", "user.name", "x")
	if err := writeFile(dir+"/offshoot.yaml", "app: [not, a, mapping\n"); err != nil {
		t.Fatal(err)
	}
	w.git(dir, "commit", "-qam", "break it")
	w.git(dir, "push", "-q", "origin", "main")

	reg := prometheus.NewRegistry()
	m := serve.NewMetrics(reg)
	rep := &statuses{}
	eng := w.engine(t.TempDir())
	eng.Reporter = rep
	s := serve.New(serve.Options{Engine: eng, Window: time.Millisecond, Metrics: m, Retry: engine.Backoff{Base: time.Millisecond, Attempts: 100}})
	mainSHA := w.git(w.appDir, "rev-parse", "main")
	if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: mainSHA}); err != nil {
		t.Fatal(err)
	}
	stop := runWorker(s)
	waitFor(t, "the terminal failure", func() bool { return counter(m.Failures.WithLabelValues("terminal")) == 1 })
	time.Sleep(100 * time.Millisecond) // a retry would show now
	stop()
	if n := counter(m.Failures.WithLabelValues("temporary")); n != 0 {
		t.Fatalf("a broken offshoot.yaml was retried (%v temporary failures)", n)
	}
	if n := counter(m.Failures.WithLabelValues("terminal")); n != 1 {
		t.Fatalf("%v terminal failures, want 1 (no retry)", n)
	}
	if s.Pending() != 0 {
		t.Fatal("the failed event is still queued")
	}
	if got := rep.get(mainSHA); got == "" || !strings.HasPrefix(got, "failure: offshoot: ") || !strings.Contains(got, "offshoot.yaml") {
		t.Fatalf("commit status %q, want the failure with its cause", got)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// statuses is an in-memory Reporter.
type statuses struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *statuses) SetStatus(_ context.Context, sha, _, state, desc, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[sha] = state + ": " + desc
	return nil
}

func (s *statuses) UpsertBranchComment(context.Context, string, string, string) error { return nil }

func (s *statuses) get(sha string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[sha]
}

func counter(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

// flakyPRs answers the first OpenPR with a passing failure (a GitHub 5xx),
// then opens pull requests in memory.
type flakyPRs struct {
	mu     sync.Mutex
	failed bool
	opened []string
}

func (f *flakyPRs) OpenPR(context.Context, string) (*engine.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return nil, engine.Temporary(errors.New("github: 502 Bad Gateway"))
	}
	return nil, nil
}
func (f *flakyPRs) UpsertPR(_ context.Context, r engine.PRRequest) (*engine.PullRequest, bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, r.Head)
	return &engine.PullRequest{Number: len(f.opened)}, true, false, nil
}
func (f *flakyPRs) ClosePR(context.Context, int) error { return nil }
func (f *flakyPRs) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.opened)
}

// A request that fails for a passing reason inside a batch (GitHub's 5xx
// while proposing) is retried, not dropped.
func TestTemporaryRequestFailureIsRetried(t *testing.T) {
	w := newWorld(t)
	eng := w.engine(t.TempDir())
	prs := &flakyPRs{}
	eng.Review, eng.PRs, eng.Mode = eng.Repo.(engine.ReviewRepo), prs, "pr"
	s := serve.New(serve.Options{Engine: eng, Window: time.Millisecond, Retry: engine.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	defer runWorker(s)()
	if err := s.Offer(webhook.Event{Source: "push", Kind: webhook.KindSync, Branch: "main", SHA: w.git(w.appDir, "rev-parse", "main")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pull request after GitHub's 502", func() bool { return prs.count() == 1 })
}

// runWorker runs s's worker until the returned stop is called.
func runWorker(s *serve.Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 0); close(done) }()
	return func() { cancel(); <-done }
}
