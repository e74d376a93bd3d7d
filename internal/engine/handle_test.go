package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
)

// memRepo is an in-memory environments repo (the engine's Repo port).
type memRepo struct {
	mu        sync.Mutex
	files     map[string][]byte
	commits   int
	snapshots int
	failPush  error // returned by the next Update
}

func newMemRepo(t *testing.T, edit func(map[string][]byte)) *memRepo {
	files, err := generator.Scaffold(generator.InitOptions{Protected: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(files)
	}
	return &memRepo{files: files, commits: 1}
}

func (r *memRepo) head() string { return fmt.Sprintf("%040x", r.commits) }

func (r *memRepo) fs() fs.FS {
	m := fstest.MapFS{}
	for p, b := range r.files {
		m[p] = &fstest.MapFile{Data: b}
	}
	return m
}

func (r *memRepo) Snapshot(context.Context) (fs.FS, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshots++
	return r.fs(), r.head(), nil
}

func (r *memRepo) Update(_ context.Context, fn engine.ChangeFunc, _ engine.UpdateOptions) (engine.Update, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := fn(r.fs(), r.head())
	if err != nil {
		return engine.Update{}, err
	}
	if c.Empty() {
		return engine.Update{Commit: r.head(), Attempts: 1}, nil
	}
	if err := r.failPush; err != nil {
		r.failPush = nil
		return engine.Update{}, err
	}
	prev := r.head()
	for dir, files := range c.Dirs {
		for p := range r.files {
			if strings.HasPrefix(p, dir+"/") {
				delete(r.files, p)
			}
		}
		for rel, b := range files {
			r.files[dir+"/"+rel] = b
		}
	}
	for p, b := range c.Files {
		r.files[p] = b
	}
	r.commits++
	return engine.Update{Commit: r.head(), Changed: true, Previous: prev, Attempts: 1}, nil
}

// memApp is an app repo whose history says every branch was cut from main.
type memApp struct{ heads map[string]string }

func (a *memApp) Branches(context.Context) (map[string]string, error) { return a.heads, nil }
func (a *memApp) DetectParent(_ context.Context, branch, _ string, cands []engine.Candidate, root string) (engine.Choice, error) {
	for _, c := range cands {
		if c.Branch == root {
			return engine.Choice{Parent: root, Reason: "cut from " + root}, nil
		}
	}
	return engine.Choice{}, errors.New("no candidates for " + branch)
}

// memReporter records statuses and comments.
type memReporter struct {
	statuses map[string]string // sha → "state: description"
	comments map[string]string // branch → body
}

func (m *memReporter) SetStatus(_ context.Context, sha, _, state, desc, _ string) error {
	if m.statuses == nil {
		m.statuses = map[string]string{}
	}
	m.statuses[sha] = state + ": " + desc
	return nil
}
func (m *memReporter) UpsertBranchComment(_ context.Context, branch, _, body string) error {
	if m.comments == nil {
		m.comments = map[string]string{}
	}
	m.comments[branch] = body
	return nil
}

func sync1(branch, sha string) engine.Request {
	return engine.Request{Request: generator.Request{Op: generator.OpSync, Branch: branch, SHA: sha}, Source: "test"}
}

// The one path on in-memory ports: one snapshot per batch, the parent
// detected, the SHA looked up, the report with lineage and commit link
// taken from the batch itself.
func TestHandleOnePathInMemory(t *testing.T) {
	repo := newMemRepo(t, nil)
	app := &memApp{heads: map[string]string{"main": "1111111111111111111111111111111111111111", "feature/x": "2222222222222222222222222222222222222222"}}
	rep := &memReporter{}
	eng := &engine.Engine{Repo: repo, App: app, Reporter: rep, CommitURL: func(c string) string { return "https://git.example/commit/" + c }}
	ctx := context.Background()
	out, err := eng.Handle(ctx, []engine.Request{sync1("main", app.heads["main"])})
	if err != nil || out.Items[0].Err != nil || !out.Changed {
		t.Fatalf("root: %v %+v", err, out)
	}
	before := repo.snapshots
	feature := sync1("feature/x", "") // a create event: no SHA in it
	feature.FromEvent = true
	out, err = eng.Handle(ctx, []engine.Request{feature})
	if err != nil {
		t.Fatal(err)
	}
	it := out.Items[0]
	if it.Err != nil || it.Request.Parent != "main" || it.Request.SHA != app.heads["feature/x"] {
		t.Fatalf("feature/x: %+v", it)
	}
	if repo.snapshots-before != 1 {
		t.Fatalf("%d snapshots for one batch, want 1", repo.snapshots-before)
	}
	if got := rep.statuses[app.heads["feature/x"]]; got != "success: environment committed" {
		t.Fatalf("status %q", got)
	}
	body := rep.comments["feature/x"]
	for _, want := range []string{"Database lineage: main → feature/x", "https://git.example/commit/" + out.Commit} {
		if !strings.Contains(body, want) {
			t.Fatalf("comment lacks %q:\n%s", want, body)
		}
	}
}

// A deleted branch whose environment is protected: skipped when the code
// host says so, refused when a person asks.
func TestHandleProtectedDelete(t *testing.T) {
	repo := newMemRepo(t, nil)
	eng := &engine.Engine{Repo: repo}
	if _, err := apply(eng, generator.Request{Op: generator.OpSync, Branch: "main", SHA: "1111111"}); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(eng, generator.Request{Op: generator.OpSync, Branch: "staging", Parent: "main", SHA: "2222222"}); err != nil {
		t.Fatal(err)
	}
	del := engine.Request{Request: generator.Request{Op: generator.OpDelete, Branch: "staging"}, FromEvent: true}
	out, err := eng.Handle(context.Background(), []engine.Request{del})
	if err != nil || out.Items[0].Skipped == "" || out.Changed {
		t.Fatalf("event delete of a protected env: %v %+v", err, out.Items[0])
	}
	var ue *generator.UsageError
	if _, err := apply(eng, generator.Request{Op: generator.OpDelete, Branch: "staging"}); !errors.As(err, &ue) {
		t.Fatalf("a person's delete of a protected env: %v, want a usage error", err)
	}
}

// Failures: a temporary one is left to the caller to retry (no report
// unless the caller does not retry); a terminal one is reported at once.
func TestHandleFailureClasses(t *testing.T) {
	ctx := context.Background()
	sha := "3333333333333333333333333333333333333333"

	repo := newMemRepo(t, nil)
	rep := &memReporter{}
	eng := &engine.Engine{Repo: repo, Reporter: rep}
	repo.failPush = engine.Temporary(errors.New("connection reset"))
	if _, err := eng.Handle(ctx, []engine.Request{sync1("main", sha)}); !engine.IsTemporary(err) {
		t.Fatalf("push failure: %v, want temporary", err)
	}
	if rep.statuses[sha] != "" {
		t.Fatalf("a temporary failure was reported before the caller gave up: %q", rep.statuses[sha])
	}
	eng.NoRetry = true
	repo.failPush = engine.Temporary(errors.New("connection reset"))
	if _, err := eng.Handle(ctx, []engine.Request{sync1("main", sha)}); !engine.IsTemporary(err) {
		t.Fatalf("push failure: %v", err)
	}
	if !strings.HasPrefix(rep.statuses[sha], "failure: offshoot: connection reset") {
		t.Fatalf("NoRetry: status %q, want the failure", rep.statuses[sha])
	}

	broken := newMemRepo(t, func(f map[string][]byte) { f[generator.ConfigFile] = []byte("app: [\n") })
	rep = &memReporter{}
	eng = &engine.Engine{Repo: broken, Reporter: rep}
	_, err := eng.Handle(ctx, []engine.Request{sync1("main", sha)})
	if err == nil || engine.IsTemporary(err) {
		t.Fatalf("broken offshoot.yaml: %v, want a terminal error", err)
	}
	if !strings.HasPrefix(rep.statuses[sha], "failure: ") || broken.commits != 1 {
		t.Fatalf("terminal failure: status %q, %d commits", rep.statuses[sha], broken.commits)
	}
}

// Pull-request mode without GitHub access is refused with the reason, and
// nothing is committed.
func TestHandlePRModeNeedsGitHub(t *testing.T) {
	repo := newMemRepo(t, nil)
	eng := &engine.Engine{Repo: repo, Mode: generator.ModePR}
	_, err := apply(eng, generator.Request{Op: generator.OpSync, Branch: "main", SHA: "1111111"})
	if err == nil || !strings.Contains(err.Error(), "pull requests") || repo.commits != 1 {
		t.Fatalf("%v (%d commits)", err, repo.commits)
	}
}

func TestBackoff(t *testing.T) {
	b := engine.Backoff{Base: 100 * 1e6, Max: 1e9, Attempts: 3}
	for attempt, want := range map[int]int64{1: 100e6, 2: 200e6, 3: 400e6, 4: 800e6, 5: 1e9, 9: 1e9} {
		for range 20 {
			d := int64(b.Delay(attempt))
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %d, want in [%d, %d]", attempt, d, want/2, want)
			}
		}
	}
	if b.GiveUp(2) || !b.GiveUp(3) {
		t.Fatal("GiveUp must say yes at the third attempt, not before")
	}
}
