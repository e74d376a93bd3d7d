package github_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/offshoot-dev/offshoot/internal/github"
	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

const (
	envRepoName = "acme/shop-environments"
	appRepoName = "acme/shop"
	sha1        = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	sha2        = "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
)

var (
	envRepo = github.Repo{Owner: "acme", Name: "shop-environments"}
	appRepo = github.Repo{Owner: "acme", Name: "shop"}
)

// fakeClock is the injected clock: Sleep advances it and records the wait.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

type env struct {
	s   *githubtest.Server
	c   *github.Client
	clk *fakeClock
	log *strings.Builder
}

// setup starts a fake GitHub with the environments repo (main,
// offshoot/feature-1) and the app repo, and a Client on it with a fake clock.
func setup(t *testing.T, settings githubtest.RepoSettings, mod ...func(*github.Options)) *env {
	t.Helper()
	s := githubtest.New(t)
	clk := newClock()
	s.SetNow(clk.Now)
	s.AddRepo(envRepoName, settings)
	s.AddBranch(envRepoName, "main", "0000000000000000000000000000000000000001")
	s.AddBranch(envRepoName, "offshoot/feature-1", sha1)
	s.AddRepo(appRepoName, githubtest.RepoSettings{})
	s.AddBranch(appRepoName, "main", "0000000000000000000000000000000000000002")
	s.AddBranch(appRepoName, "feature_1", sha1)
	log := &strings.Builder{}
	o := github.Options{
		BaseURL: s.URL, Auth: github.StaticToken(s.Token), Sleep: clk.Sleep, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{b: log}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := github.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{s: s, c: c, clk: clk, log: log}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func spec(body string) github.PRSpec {
	return github.PRSpec{
		Repo: envRepo, Head: "offshoot/feature-1", Base: "main",
		Title: "offshoot: environment feature-1 (feature_1 @ 1a2b3c4)", Body: body,
		Labels: []string{"offshoot", "env:feature-1"},
	}
}

func writes(s *githubtest.Server) []string {
	var out []string
	for _, c := range s.Writes() {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

func count(s *githubtest.Server, method, pathSuffix string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Method == method && strings.HasSuffix(c.Path, pathSuffix) {
			n++
		}
	}
	return n
}

func TestUpsertPROpensOnceUpdatesInPlaceAndIsIdempotent(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()

	pr, created, changed, err := e.c.UpsertPR(ctx, spec("body v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !created || !changed || pr.Number != 1 || pr.State != "open" || pr.HeadSHA != sha1 || pr.NodeID == "" {
		t.Fatalf("first upsert: created=%v changed=%v pr=%+v", created, changed, pr)
	}
	if pr.URL != "https://github.com/acme/shop-environments/pull/1" {
		t.Errorf("URL = %q", pr.URL)
	}
	got := e.s.PRs(envRepoName)
	if len(got) != 1 || got[0].Body != "body v1" || got[0].Head != "offshoot/feature-1" || got[0].Base != "main" ||
		strings.Join(got[0].Labels, ",") != "offshoot,env:feature-1" {
		t.Fatalf("server state after create: %+v", got)
	}
	if n := count(e.s, "POST", "/issues/1/labels"); n != 1 {
		t.Errorf("labels added %d times, want 1", n)
	}

	// The same spec again: reads only.
	e.s.ResetCalls()
	pr2, created, changed, err := e.c.UpsertPR(ctx, spec("body v1"))
	if err != nil {
		t.Fatal(err)
	}
	if created || changed || pr2.Number != 1 {
		t.Errorf("second upsert: created=%v changed=%v number=%d", created, changed, pr2.Number)
	}
	if w := writes(e.s); len(w) != 0 {
		t.Errorf("API writes with nothing changed: %v", w)
	}

	// A new SHA is force-pushed and the body changes: one PATCH of the body only, same PR.
	e.s.AddBranch(envRepoName, "offshoot/feature-1", sha2)
	e.s.ResetCalls()
	pr3, created, changed, err := e.c.UpsertPR(ctx, spec("body v2"))
	if err != nil {
		t.Fatal(err)
	}
	if created || !changed || pr3.Number != 1 || pr3.HeadSHA != sha2 || pr3.Body != "body v2" {
		t.Errorf("third upsert: created=%v changed=%v pr=%+v", created, changed, pr3)
	}
	w := e.s.Writes()
	if len(w) != 1 || w[0].Method != "PATCH" || w[0].Path != "/repos/acme/shop-environments/pulls/1" {
		t.Fatalf("writes = %v, want one PATCH of PR 1", w)
	}
	if strings.Contains(w[0].Body, `"title"`) || !strings.Contains(w[0].Body, `"body":"body v2"`) {
		t.Errorf("PATCH sent %s; want the body only", w[0].Body)
	}
	if prs := e.s.PRs(envRepoName); len(prs) != 1 || prs[0].Body != "body v2" {
		t.Errorf("server PRs = %+v", prs)
	}

	// A label a person removed is put back, one they added is kept.
	e.s.ResetCalls()
	spec4 := spec("body v2")
	spec4.Labels = append(spec4.Labels, "Needs-Review")
	if _, _, changed, err = e.c.UpsertPR(ctx, spec4); err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if w := writes(e.s); len(w) != 1 || w[0] != "POST /repos/acme/shop-environments/issues/1/labels" {
		t.Errorf("writes = %v", w)
	}
	spec4.Labels = []string{"OFFSHOOT"} // label names are case-insensitive: nothing to add
	e.s.ResetCalls()
	if _, _, changed, err = e.c.UpsertPR(ctx, spec4); err != nil || changed || len(e.s.Writes()) != 0 {
		t.Errorf("changed=%v err=%v writes=%v", changed, err, writes(e.s))
	}
	if prs := e.s.PRs(envRepoName); strings.Join(prs[0].Labels, ",") != "offshoot,env:feature-1,Needs-Review" {
		t.Errorf("labels = %v", prs[0].Labels)
	}

	// The head filter was sent as OWNER:BRANCH.
	for _, c := range e.s.Calls() {
		if c.Method == "GET" && strings.HasSuffix(c.Path, "/pulls") && !strings.Contains(c.Query, "head=acme%3Aoffshoot%2Ffeature-1") {
			t.Errorf("list query %q", c.Query)
		}
	}
}

func TestUpsertPRAdoptsAPRSomeoneElseOpened(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	n := e.s.OpenPR(envRepoName, "offshoot/feature-1", "main", "hand-made")
	pr, created, changed, err := e.c.UpsertPR(context.Background(), spec("ours"))
	if err != nil {
		t.Fatal(err)
	}
	if created || !changed || pr.Number != n || pr.Title != spec("").Title {
		t.Errorf("created=%v changed=%v pr=%+v", created, changed, pr)
	}
	if len(e.s.PRs(envRepoName)) != 1 {
		t.Errorf("a second PR was opened")
	}
}

func TestClosePRAndDeleteBranch(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()
	pr, _, _, err := e.c.UpsertPR(ctx, spec("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.ClosePR(ctx, envRepo, pr.Number); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.s.PR(envRepoName, pr.Number); p.State != "closed" || p.Merged {
		t.Errorf("after ClosePR: %+v", p)
	}
	e.s.ResetCalls()
	if err := e.c.ClosePR(ctx, envRepo, pr.Number); err != nil || len(e.s.Writes()) != 0 {
		t.Errorf("closing a closed PR: err=%v writes=%v", err, writes(e.s))
	}
	if err := e.c.DeleteBranch(ctx, envRepo, "offshoot/feature-1"); err != nil {
		t.Fatal(err)
	}
	if e.s.HasBranch(envRepoName, "offshoot/feature-1") {
		t.Error("branch still exists")
	}
	if count(e.s, "DELETE", "/git/refs/heads/offshoot/feature-1") != 1 {
		t.Errorf("calls: %v", e.s.Calls())
	}
	// Already gone (422 Reference does not exist): success.
	if err := e.c.DeleteBranch(ctx, envRepo, "offshoot/feature-1"); err != nil {
		t.Errorf("deleting a deleted branch: %v", err)
	}
	if p, err := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "open"); err != nil || p != nil {
		t.Errorf("FindPR(open) after close = %+v, %v", p, err)
	}
	if err := e.c.ClosePR(ctx, envRepo, 99); github.StatusCode(err) != http.StatusNotFound ||
		!strings.Contains(err.Error(), "github: close pull request acme/shop-environments#99: 404 Not Found") {
		t.Errorf("closing a missing PR: %v", err)
	}
}

func TestFindPRAfterAHumanMerged(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()
	pr, _, _, err := e.c.UpsertPR(ctx, spec("b"))
	if err != nil {
		t.Fatal(err)
	}
	e.s.MergePR(envRepoName, pr.Number)

	if p, err := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "open"); err != nil || p != nil {
		t.Errorf("FindPR(open) = %+v, %v", p, err)
	}
	p, err := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "all")
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || !p.Merged || p.State != "closed" || p.Number != pr.Number {
		t.Fatalf("FindPR(all) = %+v", p)
	}
	// A later PR for the same branch (the removal PR): "all" prefers the open one.
	e.s.AddBranch(envRepoName, "offshoot/feature-1", sha2)
	pr2, created, _, err := e.c.UpsertPR(ctx, spec("remove feature-1"))
	if err != nil || !created || pr2.Number == pr.Number {
		t.Fatalf("removal PR: %+v created=%v err=%v", pr2, created, err)
	}
	if p, _ := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "all"); p == nil || p.Number != pr2.Number || p.Merged {
		t.Errorf("FindPR(all) with an open and a merged PR = %+v", p)
	}
	if _, err := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "merged"); err == nil {
		t.Error("an invalid state was accepted")
	}
}

func TestAutoMergeEnabledThroughGraphQL(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{AllowAutoMerge: true, RequireChecks: true})
	ctx := context.Background()
	sp := spec("b")
	sp.AutoMerge, sp.MergeMethod = true, "squash"
	pr, created, changed, err := e.c.UpsertPR(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if !created || !changed || !pr.AutoMerge || pr.Merged {
		t.Fatalf("pr=%+v created=%v changed=%v", pr, created, changed)
	}
	if p, _ := e.s.PR(envRepoName, pr.Number); !p.AutoMerge || p.AutoMergeMethod != "SQUASH" {
		t.Errorf("server: %+v", p)
	}
	if n := count(e.s, "POST", "/graphql"); n != 1 {
		t.Errorf("graphql calls = %d", n)
	}
	if n := count(e.s, "PUT", "/merge"); n != 0 {
		t.Errorf("merged directly although auto-merge was armed")
	}
	// Armed already: nothing to write.
	e.s.ResetCalls()
	if pr, _, changed, err = e.c.UpsertPR(ctx, sp); err != nil || changed || !pr.AutoMerge || len(e.s.Writes()) != 0 {
		t.Errorf("second run: pr=%+v changed=%v err=%v writes=%v", pr, changed, err, writes(e.s))
	}
	// The checks pass: GitHub merges it.
	e.s.SetMergeState(envRepoName, pr.Number, "clean")
	if p, _ := e.c.FindPR(ctx, envRepo, "offshoot/feature-1", "all"); p == nil || !p.Merged {
		t.Errorf("after checks passed: %+v", p)
	}
}

func TestAutoMergeFallsBackToMergingWhenMergeable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings githubtest.RepoSettings
	}{
		{"auto-merge not allowed on the repo", githubtest.RepoSettings{AllowAutoMerge: false}},
		{"PR already in clean status", githubtest.RepoSettings{AllowAutoMerge: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.settings)
			sp := spec("b")
			sp.AutoMerge = true
			pr, created, changed, err := e.c.UpsertPR(context.Background(), sp)
			if err != nil {
				t.Fatal(err)
			}
			if !created || !changed || !pr.Merged || pr.State != "closed" || pr.AutoMerge {
				t.Fatalf("pr=%+v", pr)
			}
			p, _ := e.s.PR(envRepoName, pr.Number)
			if !p.Merged || p.MergeMethod != "merge" {
				t.Errorf("server: %+v", p)
			}
			merges := 0
			for _, c := range e.s.Calls() {
				if c.Method == "PUT" && strings.HasSuffix(c.Path, "/pulls/1/merge") {
					merges++
					if !strings.Contains(c.Body, `"sha":"`+sha1+`"`) {
						t.Errorf("merge not guarded by the head SHA: %s", c.Body)
					}
				}
			}
			if merges != 1 || count(e.s, "POST", "/graphql") != 1 {
				t.Errorf("calls: %v", e.s.Calls())
			}
		})
	}
}

func TestAutoMergeNotAllowedAndNotMergeableYetWaits(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{AllowAutoMerge: false, RequireChecks: true})
	sp := spec("b")
	sp.AutoMerge = true
	pr, _, _, err := e.c.UpsertPR(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Merged || pr.AutoMerge || pr.State != "open" || count(e.s, "PUT", "/merge") != 0 {
		t.Errorf("pr=%+v calls=%v", pr, e.s.Calls())
	}
	// Checks pass; the next run merges it.
	e.s.SetMergeState(envRepoName, pr.Number, "clean")
	pr, _, changed, err := e.c.UpsertPR(context.Background(), sp)
	if err != nil || !pr.Merged || !changed {
		t.Errorf("next run: pr=%+v changed=%v err=%v", pr, changed, err)
	}
}

func TestUpsertCommentAcrossPagesCreatedOnceEditedInPlace(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()
	n := e.s.OpenPR(appRepoName, "feature_1", "main", "Feature 1")
	for i := 0; i < 150; i++ {
		e.s.AddComment(appRepoName, n, "a-developer", fmt.Sprintf("comment %d", i))
	}

	created, changed, err := e.c.UpsertComment(ctx, appRepo, n, "env/feature-1", "preview: https://feature-1.example.com")
	if err != nil || !created || !changed {
		t.Fatalf("created=%v changed=%v err=%v", created, changed, err)
	}
	cs := e.s.Comments(appRepoName, n)
	if len(cs) != 151 || cs[150].Body != "<!-- offshoot:env/feature-1 -->\npreview: https://feature-1.example.com" || cs[150].User != "offshoot-bot" {
		t.Fatalf("comments: %d, last %+v", len(cs), cs[len(cs)-1])
	}
	ours := cs[150].ID

	// Equal: two pages read (ours is on page 2 of 100), nothing written.
	e.s.ResetCalls()
	created, changed, err = e.c.UpsertComment(ctx, appRepo, n, "env/feature-1", "preview: https://feature-1.example.com")
	if err != nil || created || changed || len(e.s.Writes()) != 0 {
		t.Fatalf("unchanged: created=%v changed=%v err=%v writes=%v", created, changed, err, writes(e.s))
	}
	if got := count(e.s, "GET", "/comments"); got != 2 {
		t.Errorf("comment pages read = %d, want 2", got)
	}

	// Different: one PATCH of our comment.
	e.s.ResetCalls()
	created, changed, err = e.c.UpsertComment(ctx, appRepo, n, "env/feature-1", "preview: https://feature-1.example.com\nnew SHA")
	if err != nil || created || !changed {
		t.Fatalf("changed: created=%v changed=%v err=%v", created, changed, err)
	}
	if w := writes(e.s); len(w) != 1 || w[0] != fmt.Sprintf("PATCH /repos/acme/shop/issues/comments/%d", ours) {
		t.Errorf("writes = %v", w)
	}
	cs = e.s.Comments(appRepoName, n)
	if len(cs) != 151 || !strings.HasSuffix(cs[150].Body, "new SHA") {
		t.Errorf("after edit: %d comments, ours %q", len(cs), cs[150].Body)
	}

	// A person quoting our marker inside their comment does not make it ours.
	e.s.AddComment(appRepoName, n, "a-developer", "see\n<!-- offshoot:env/staging -->")
	// Another marker is another comment; the first is untouched.
	if created, _, err := e.c.UpsertComment(ctx, appRepo, n, "env/staging", "x"); err != nil || !created {
		t.Errorf("second marker: created=%v err=%v", created, err)
	}
	if got := len(e.s.Comments(appRepoName, n)); got != 153 {
		t.Errorf("comments = %d", got)
	}
	if _, _, err := e.c.UpsertComment(ctx, appRepo, n, "bad--marker", "x"); err == nil {
		t.Error("a marker with -- was accepted")
	}
}

func TestUpsertCommentNeverDuplicatesAfterAnAmbiguousFailure(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	n := e.s.OpenPR(appRepoName, "feature_1", "main", "Feature 1")
	// The comment is stored, but the client sees a 502.
	e.s.Inject(githubtest.Fault{Method: "POST", Path: "/repos/acme/shop/issues/", Status: http.StatusBadGateway, After: true})
	created, _, err := e.c.UpsertComment(context.Background(), appRepo, n, "env/feature-1", "hello")
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if cs := e.s.Comments(appRepoName, n); len(cs) != 1 {
		t.Fatalf("%d comments, want exactly 1", len(cs))
	}
	if n := count(e.s, "POST", "/comments"); n != 1 {
		t.Errorf("POSTed %d times; the write must be verified by a re-read, not repeated", n)
	}
	// A 502 before processing: re-read finds nothing, so it is created then.
	n2 := e.s.OpenPR(appRepoName, "feature_1", "main", "again")
	e.s.Inject(githubtest.Fault{Method: "POST", Path: "/repos/acme/shop/issues/", Status: http.StatusBadGateway})
	if created, _, err := e.c.UpsertComment(context.Background(), appRepo, n2, "env/feature-1", "hello"); err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if cs := e.s.Comments(appRepoName, n2); len(cs) != 1 {
		t.Errorf("%d comments", len(cs))
	}
}

func TestFindPRForBranch(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()
	if p, err := e.c.FindPRForBranch(ctx, appRepo, "feature_1"); err != nil || p != nil {
		t.Fatalf("no PR yet: %+v %v", p, err)
	}
	n := e.s.OpenPR(appRepoName, "feature_1", "main", "Feature 1")
	p, err := e.c.FindPRForBranch(ctx, appRepo, "feature_1")
	if err != nil || p == nil || p.Number != n || p.Head != "feature_1" || p.Base != "main" || p.HeadSHA != sha1 {
		t.Errorf("FindPRForBranch = %+v, %v", p, err)
	}
}

func TestSetStatusCutsTheDescription(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	ctx := context.Background()
	e.s.AddCommit(appRepoName, sha2)
	long := strings.Repeat("é", 200) // 200 characters, 400 bytes
	if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/feature-1", "failure", long, "https://argocd.example.com/applications/feature-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/feature-1", "success", "PR #12 opened for review", ""); err != nil {
		t.Fatal(err)
	}
	st := e.s.Statuses(appRepoName, sha2)
	if len(st) != 2 {
		t.Fatalf("statuses: %+v", st)
	}
	if n := utf8.RuneCountInString(st[0].Description); n != 140 || !strings.HasPrefix(st[0].Description, "éé") ||
		st[0].State != "failure" || st[0].Context != "offshoot/feature-1" || st[0].TargetURL != "https://argocd.example.com/applications/feature-1" {
		t.Errorf("status 0: %d characters, %+v", n, st[0])
	}
	if st[1].State != "success" || st[1].Description != "PR #12 opened for review" || st[1].TargetURL != "" {
		t.Errorf("status 1: %+v", st[1])
	}
	e.s.ResetCalls()
	if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/feature-1", "done", "", ""); err == nil || len(e.s.Calls()) != 0 {
		t.Errorf("invalid state: err=%v calls=%v", err, e.s.Calls())
	}
	err := e.c.SetStatus(ctx, appRepo, "ffffffffffffffffffffffffffffffffffffffff", "offshoot/feature-1", "pending", "", "")
	if want := "github: set status offshoot/feature-1 on acme/shop@ffffffffffff: 422 No commit found for SHA"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("unknown commit: %v", err)
	}
}

func TestSecondaryRateLimitHonoursRetryAfter(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	e.s.AddCommit(appRepoName, sha2)
	e.s.RateLimitOnce(time.Second)
	if err := e.c.SetStatus(context.Background(), appRepo, sha2, "offshoot/x", "pending", "", ""); err != nil {
		t.Fatal(err)
	}
	if s := e.clk.Slept(); len(s) != 1 || s[0] != time.Second {
		t.Errorf("slept %v, want [1s]", s)
	}
	// The first call (reading the current statuses) is rate limited and
	// retried; then the status is posted.
	calls := e.s.Calls()
	if len(calls) != 3 || calls[0].Status != 403 || calls[1].Status != 200 || calls[2].Status != 201 {
		t.Errorf("calls: %+v", calls)
	}
	if len(e.s.Statuses(appRepoName, sha2)) != 1 {
		t.Error("status not set exactly once")
	}
	if !strings.Contains(e.log.String(), "rate limited") {
		t.Errorf("log: %s", e.log)
	}
}

func TestPrimaryRateLimitWaitsForReset(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	e.s.AddCommit(appRepoName, sha2)
	e.s.PrimaryRateLimitOnce(e.clk.Now().Add(30 * time.Second))
	if err := e.c.SetStatus(context.Background(), appRepo, sha2, "offshoot/x", "pending", "", ""); err != nil {
		t.Fatal(err)
	}
	if s := e.clk.Slept(); len(s) != 1 || s[0] != 31*time.Second {
		t.Errorf("slept %v, want [31s] (until the reset, plus its second)", s)
	}

	// Too far away: a clear error, no waiting, no retry.
	e.s.ResetCalls()
	e.s.PrimaryRateLimitOnce(e.clk.Now().Add(2 * time.Hour))
	err := e.c.SetStatus(context.Background(), appRepo, sha2, "offshoot/x", "pending", "", "")
	if err == nil || !strings.Contains(err.Error(), "github: set status offshoot/x on acme/shop@"+sha2[:12]+": 403 primary rate limit exhausted: resets at") ||
		!strings.Contains(err.Error(), "longer than the 15m0s offshoot waits") {
		t.Errorf("err = %v", err)
	}
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Secondary {
		t.Errorf("not a *RateLimitError: %#v", err)
	}
	if len(e.s.Calls()) != 1 || len(e.clk.Slept()) != 1 {
		t.Errorf("calls=%v slept=%v", e.s.Calls(), e.clk.Slept())
	}
}

func TestExhaustedQuotaOnASuccessWaitsBeforeTheNextRequest(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	e.s.AddCommit(appRepoName, sha2)
	e.s.SetRateLimit(5000, 1, e.clk.Now().Add(10*time.Second))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/x", "pending", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range e.s.Calls() {
		if c.Status == 403 {
			t.Errorf("a request was sent into an exhausted quota: %+v", c)
		}
	}
	if s := e.clk.Slept(); len(s) != 1 || s[0] != 11*time.Second {
		t.Errorf("slept %v, want [11s]", s)
	}
}

func TestServerErrorsAreRetriedWithBackoff(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	e.s.FailNext(2, http.StatusBadGateway)
	pr, created, _, err := e.c.UpsertPR(context.Background(), spec("b"))
	if err != nil || !created || pr.Number != 1 {
		t.Fatalf("pr=%+v err=%v", pr, err)
	}
	if s := e.clk.Slept(); len(s) != 2 || s[0] != time.Second || s[1] != 2*time.Second {
		t.Errorf("slept %v, want [1s 2s]", s)
	}
	if len(e.s.PRs(envRepoName)) != 1 {
		t.Error("not exactly one PR")
	}

	// Persistent: MaxRetries (4) retries, then an error naming the call.
	e.s.ResetCalls()
	e.s.FailNext(100, http.StatusBadGateway)
	err = e.c.SetStatus(context.Background(), appRepo, sha1, "offshoot/x", "pending", "", "")
	want := "github: set status offshoot/x on acme/shop@" + sha1[:12] + ": 502 Bad Gateway (after 5 attempts)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	if n := len(e.s.Calls()); n != 5 {
		t.Errorf("%d calls, want 5", n)
	}
	if github.StatusCode(err) != 502 {
		t.Errorf("StatusCode = %d", github.StatusCode(err))
	}
}

func TestClientErrorsAreNotRetriedAndNameTheCall(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	sp := spec("b")
	sp.Head = "offshoot/missing"
	_, _, _, err := e.c.UpsertPR(context.Background(), sp)
	want := "github: create pull request acme/shop-environments offshoot/missing: 422 Validation Failed: PullRequest.head invalid"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if n := count(e.s, "POST", "/pulls"); n != 1 {
		t.Errorf("POST /pulls sent %d times", n)
	}
	if len(e.clk.Slept()) != 0 {
		t.Errorf("slept %v", e.clk.Slept())
	}
	var ae *github.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 422 {
		t.Errorf("%#v", err)
	}

	// A 403 that is not a rate limit (permissions) is not retried either.
	e.s.ResetCalls()
	e.s.Inject(githubtest.Fault{Status: http.StatusForbidden, Message: "Resource not accessible by integration"})
	err = e.c.DeleteBranch(context.Background(), envRepo, "offshoot/feature-1")
	if err == nil || err.Error() != "github: delete branch acme/shop-environments offshoot/feature-1: 403 Resource not accessible by integration" || len(e.s.Calls()) != 1 {
		t.Errorf("err=%v calls=%v", err, e.s.Calls())
	}
}

func TestTransportErrorsAreRetriedThenReported(t *testing.T) {
	clk := newClock()
	// Nothing listens there.
	c, err := github.New(github.Options{BaseURL: "http://127.0.0.1:1/", Auth: github.StaticToken("ghp_unused_token_123"), Sleep: clk.Sleep, Now: clk.Now, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.FindPR(context.Background(), envRepo, "offshoot/feature-1", "open")
	if err == nil || !strings.HasPrefix(err.Error(), "github: find pull request acme/shop-environments offshoot/feature-1: ") ||
		!strings.Contains(err.Error(), "(attempt 3)") {
		t.Errorf("err = %v", err)
	}
	if s := clk.Slept(); len(s) != 2 {
		t.Errorf("slept %v", s)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for _, o := range []github.Options{
		{},
		{Auth: github.StaticToken("x"), BaseURL: "ftp://example.com"},
		{Auth: github.StaticToken("x"), BaseURL: "https://user:secret@example.com/api/v3"},
	} {
		if _, err := github.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("credential in error: %v", err)
		}
	}
}

func TestSetStatusTwiceWritesOnce(t *testing.T) {
	e := setup(t, githubtest.RepoSettings{})
	e.s.AddCommit(appRepoName, sha2)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/f", "success", "environment committed", "https://argocd/x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.s.Statuses(appRepoName, sha2)); n != 1 {
		t.Fatalf("the same status twice made %d statuses", n)
	}
	if err := e.c.SetStatus(ctx, appRepo, sha2, "offshoot/f", "failure", "render failed", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(e.s.Statuses(appRepoName, sha2)); n != 2 {
		t.Fatalf("a changed status must be posted, got %d", n)
	}
}
