package engine_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/generator"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"github.com/offshoot-dev/offshoot/internal/gitrepo"
	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

// prs is an in-memory Reviewer: the engine's own interface, recording
// every write so tests can assert "nothing written".
type prs struct {
	open   map[string]*engine.PullRequest
	bodies map[int]engine.PRRequest
	writes []string
	next   int
}

func newPRs() *prs {
	return &prs{open: map[string]*engine.PullRequest{}, bodies: map[int]engine.PRRequest{}, next: 1}
}

func (p *prs) OpenPR(_ context.Context, head string) (*engine.PullRequest, error) {
	return p.open[head], nil
}
func (p *prs) UpsertPR(_ context.Context, r engine.PRRequest) (*engine.PullRequest, bool, bool, error) {
	if pr, ok := p.open[r.Head]; ok {
		old := p.bodies[pr.Number]
		if old.Title == r.Title && old.Body == r.Body {
			return pr, false, false, nil
		}
		p.bodies[pr.Number] = r
		p.writes = append(p.writes, "edit #"+strconv.Itoa(pr.Number))
		return pr, false, true, nil
	}
	pr := &engine.PullRequest{Number: p.next, URL: "https://github.example/pull/" + strconv.Itoa(p.next)}
	p.next++
	p.open[r.Head], p.bodies[pr.Number] = pr, r
	p.writes = append(p.writes, "open #"+strconv.Itoa(pr.Number))
	return pr, true, false, nil
}
func (p *prs) ClosePR(_ context.Context, n int) error {
	for h, pr := range p.open {
		if pr.Number == n {
			delete(p.open, h)
		}
	}
	p.writes = append(p.writes, "close #"+strconv.Itoa(n))
	return nil
}

// merge merges the review branch into main with the git CLI, as GitHub would.
func merge(t *testing.T, bare, branch string) {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = bare
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	head := run("rev-parse", "refs/heads/"+branch)
	run("update-ref", "refs/heads/main", head) // the review commit sits on main's head: a fast-forward
	run("update-ref", "-d", "refs/heads/"+branch)
}

func TestPullRequestMode(t *testing.T) {
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url, _ := srv.CreateBare("envs")
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Location: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	eng := &engine.Engine{Repo: repo}
	files, _ := generator.Scaffold(generator.InitOptions{})
	if _, err := eng.Init(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(eng, generator.Request{Op: generator.OpSync, Branch: "main", SHA: "1111111"}); err != nil {
		t.Fatal(err)
	}
	rv := newPRs()
	ctx := context.Background()
	sync := func(sha string) *engine.ReviewOutcome {
		t.Helper()
		out, err := propose(t, eng, rv, generator.Request{Op: generator.OpSync, Branch: "feature_1", Parent: "main", SHA: sha})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := sync("2222222")
	if !first.Created || !first.Pushed || first.PR.Number != 1 || !strings.HasPrefix(first.Branch, "offshoot/feature-1-") {
		t.Fatalf("first sync: %+v", first)
	}
	body := rv.bodies[1]
	for _, want := range []string{"create environment feature_1"} {
		if !strings.Contains(body.Title, want) {
			t.Fatalf("title %q lacks %q", body.Title, want)
		}
	}
	for _, want := range []string{"| Branch | `feature_1` |", "| Parent | `main` |", "`2222222`", "https://feature-1-", "cloned from `main`", "<details>", "+kind: Cluster"} {
		if !strings.Contains(body.Body, want) {
			t.Fatalf("body lacks %q:\n%s", want, body.Body)
		}
	}
	if body.Labels[0] != "offshoot" || !strings.HasPrefix(body.Labels[1], "env:feature-1-") {
		t.Fatalf("labels %v", body.Labels)
	}
	// main is untouched until the PR is merged.
	if _, err := eng.Render(ctx, "feature_1"); err == nil {
		t.Fatal("main must not have the environment before the merge")
	}
	// The same event again: no push, no API write.
	writes := len(rv.writes)
	if again := sync("2222222"); again.Pushed || again.Created || again.Changed || len(rv.writes) != writes {
		t.Fatalf("repeat changed something: %+v %v", again, rv.writes)
	}
	// A new SHA updates the same PR and keeps the database incarnation.
	second := sync("3333333")
	if !second.Pushed || second.Created || !second.Changed || second.PR.Number != 1 || len(rv.open) != 1 {
		t.Fatalf("new SHA: %+v", second)
	}
	if second.Plan.Env.Database.ServerName != first.Plan.Env.Database.ServerName {
		t.Fatal("a new SHA on an unmerged environment must keep its database incarnation")
	}
	// Deleted before merge: the PR is closed and its branch deleted.
	del, err := propose(t, eng, rv, generator.Request{Op: generator.OpDelete, Branch: "feature_1"})
	if err != nil || !del.Closed || len(rv.open) != 0 {
		t.Fatalf("delete before merge: %+v %v", del, err)
	}
	if _, _, found, _ := repo.SnapshotBranch(ctx, first.Branch); found {
		t.Fatal("review branch not deleted")
	}
	// Created again, merged, then deleted: a removal PR.
	again := sync("4444444")
	merge(t, srv.Dir("envs"), again.Branch)
	delete(rv.open, again.Branch)
	if _, err := eng.Render(ctx, "feature_1"); err != nil {
		t.Fatalf("after merge: %v", err)
	}
	if up := sync("4444444"); up.Pushed || up.PR != nil {
		t.Fatalf("merged and unchanged: %+v", up)
	}
	rm, err := propose(t, eng, rv, generator.Request{Op: generator.OpDelete, Branch: "feature_1"})
	if err != nil || !rm.Created || !strings.Contains(rv.bodies[rm.PR.Number].Title, "delete environment feature_1") {
		t.Fatalf("removal PR: %+v %v", rm, err)
	}
	if _, err := eng.Render(ctx, "feature_1"); err != nil {
		t.Fatal("main keeps the environment until the removal PR is merged")
	}
	// Protected environments are refused in PR mode too.
	if _, err := propose(t, eng, rv, generator.Request{Op: generator.OpDelete, Branch: "main"}); err == nil {
		t.Fatal("deleting the root must be refused")
	}
}
