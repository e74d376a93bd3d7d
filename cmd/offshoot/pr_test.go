package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/offshoot-dev/offshoot/internal/github/githubtest"
)

// The demo scenario in pull-request mode, against the real git server and
// the GitHub REST test server: one open PR per environment with the right
// body, a status and one comment on the app side, and a re-run that writes
// nothing at all.
func TestPullRequestModeScenario(t *testing.T) {
	srv, url := envServer(t)
	gh := githubtest.New(t)
	const envRepo, appRepo = "acme/shop-environments", "acme/shop"
	gh.GitBacked(envRepo, srv.Dir("shop-environments"))
	shas := map[string]string{"master": strings.Repeat("a", 40), "staging": strings.Repeat("b", 40), "feature_1": strings.Repeat("c", 40)}
	for b, sha := range shas {
		gh.AddBranch(appRepo, b, sha)
	}
	appPR := gh.OpenPR(appRepo, "feature_1", "master", "Feature 1")
	t.Setenv("GITHUB_TOKEN", gh.Token)
	t.Setenv("GITHUB_API_URL", gh.URL)
	c := &cli{t: t, repo: url, cache: t.TempDir(), gitDir: srv.Dir("shop-environments")}
	gflags := []string{"--mode", "pr", "--github-repo", envRepo, "--app-github-repo", appRepo, "--argocd-url", "https://argocd.example.com"}
	c.ok("init", url, "--root-branch", "master")
	scenario := func() []string {
		var outs []string
		outs = append(outs, c.ok(append([]string{"sync", "master", "--sha", shas["master"]}, gflags...)...))
		outs = append(outs, c.ok(append([]string{"sync", "staging", "--parent", "master", "--sha", shas["staging"]}, gflags...)...))
		outs = append(outs, c.ok(append([]string{"sync", "feature_1", "--parent", "staging", "--sha", shas["feature_1"]}, gflags...)...))
		return outs
	}
	outs := scenario()
	for _, o := range outs {
		if !strings.Contains(o, "opened pull request #") {
			t.Fatalf("want a new PR per environment:\n%s", strings.Join(outs, ""))
		}
	}
	prs := gh.PRs(envRepo)
	if len(prs) != 3 {
		t.Fatalf("%d PRs, want 3", len(prs))
	}
	for _, p := range prs {
		if p.State != "open" || p.Base != "main" || !strings.HasPrefix(p.Head, "offshoot/") {
			t.Fatalf("PR %+v", p)
		}
	}
	byTitle := map[string]githubtest.PR{}
	for _, p := range prs {
		byTitle[p.Title] = p
	}
	f1 := byTitle["offshoot: create environment feature_1"]
	for _, want := range []string{"Depends on #", "| Branch | `feature_1` |", "| Parent | `staging` |", shas["feature_1"],
		"cloned from `staging`", "https://feature-1-", "<details>", "+kind: Cluster"} {
		if !strings.Contains(f1.Body, want) {
			t.Fatalf("feature_1's PR body lacks %q:\n%s", want, f1.Body)
		}
	}
	labels := strings.Join(f1.Labels, ",")
	if !strings.Contains(labels, "offshoot") || !strings.Contains(labels, "env:feature-1-") {
		t.Fatalf("labels %v", f1.Labels)
	}
	// main is untouched until the PRs are merged.
	if n := c.commits(); n != 1 {
		t.Fatalf("main has %d commits, want only the init one", n)
	}
	// Reported back on the app repo: a status on the commit, one comment on its PR.
	st := gh.Statuses(appRepo, shas["feature_1"])
	if len(st) != 1 || st[0].State != "success" || !strings.HasPrefix(st[0].Context, "offshoot/feature-1-") ||
		!strings.Contains(st[0].Description, "opened for review") || !strings.HasPrefix(st[0].TargetURL, "https://argocd.example.com/applications/argocd/shop-feature-1-") {
		t.Fatalf("statuses: %+v", st)
	}
	comments := gh.Comments(appRepo, appPR)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "Preview: https://feature-1-") || !strings.Contains(comments[0].Body, "pull request [#") {
		t.Fatalf("comments: %+v", comments)
	}

	// Re-running the whole scenario changes nothing: no push, no API write.
	writes := len(gh.Writes())
	pushes := srv.Pushes()
	for _, o := range scenario() {
		if !strings.Contains(o, "up to date") {
			t.Fatalf("re-run must be up to date:\n%s", o)
		}
	}
	if len(gh.Writes()) != writes || srv.Pushes() != pushes {
		t.Fatalf("re-run wrote: %d API writes, %d pushes", len(gh.Writes())-writes, srv.Pushes()-pushes)
	}

	// A new SHA updates the same PR.
	gh.AddCommit(appRepo, strings.Repeat("d", 40))
	out := c.ok(append([]string{"sync", "feature_1", "--sha", strings.Repeat("d", 40)}, gflags...)...)
	if !strings.Contains(out, "updated pull request #"+itoa(f1.Number)) || len(gh.PRs(envRepo)) != 3 {
		t.Fatalf("new SHA:\n%s", out)
	}
	// Deleted before merge: its PR is closed and its branch deleted.
	out = c.ok(append([]string{"delete", "feature_1"}, gflags...)...)
	if !strings.Contains(out, "closed pull request") {
		t.Fatalf("delete before merge:\n%s", out)
	}
	if p, _ := gh.PR(envRepo, f1.Number); p.State != "closed" || gh.HasBranch(envRepo, f1.Head) {
		t.Fatalf("PR %+v, branch still there: %v", p, gh.HasBranch(envRepo, f1.Head))
	}
	// Tokens never appear in output.
	var all bytes.Buffer
	code := run(context.Background(), append([]string{"--env-repo", url, "--cache-dir", c.cache, "list"}, gflags...), &all, &all)
	if code != 0 || strings.Contains(all.String()+c.lastOut, gh.Token) {
		t.Fatal("token leaked or list failed")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
