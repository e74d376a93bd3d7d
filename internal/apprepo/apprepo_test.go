package apprepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

// These tests build a real app repository with the git CLI, push it to a
// real git smart-HTTP server (git http-backend behind internal/gitserver)
// and check the adapter's answers against the git CLI's own (ls-remote,
// merge-base, rev-list --count).

// gitEnv is a hermetic environment for the git CLI: no system or global
// configuration, a fixed identity, no prompts.
var gitEnv = append(os.Environ(),
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_GLOBAL="+os.DevNull,
	"GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=App Dev",
	"GIT_AUTHOR_EMAIL=dev@app.invalid",
	"GIT_COMMITTER_NAME=App Dev",
	"GIT_COMMITTER_EMAIL=dev@app.invalid",
	"LC_ALL=C",
)

func gitCLIErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

func gitCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitCLIErr(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// app is an app repository: a working clone made with the git CLI and the
// bare repository it pushes to on a real git server.
type app struct {
	srv  *gitserver.Server
	url  string // the bare repository over smart HTTP
	bare string // the bare repository on disk
	work string // the developer's working clone
	n    int
}

func newApp(t *testing.T) *app {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatalf("start git server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, err := srv.CreateBare("app")
	if err != nil {
		t.Fatalf("create bare: %v", err)
	}
	a := &app{srv: srv, url: url, bare: srv.Dir("app"), work: t.TempDir()}
	a.git(t, "init", "--quiet", "--initial-branch=main")
	return a
}

func (a *app) git(t testing.TB, args ...string) string {
	t.Helper()
	return gitCLI(t, a.work, args...)
}

// commit adds one commit on the current branch and returns its SHA.
func (a *app) commit(t testing.TB, msg string) string {
	t.Helper()
	a.git(t, "commit", "--quiet", "--allow-empty", "-m", msg)
	return a.git(t, "rev-parse", "HEAD")
}

// commits adds n commits to the current branch and returns the last SHA.
func (a *app) commits(t testing.TB, prefix string, n int) string {
	t.Helper()
	for i := 1; i <= n; i++ {
		a.git(t, "commit", "--quiet", "--allow-empty", "-m", fmt.Sprintf("%s %d", prefix, i))
	}
	return a.git(t, "rev-parse", "HEAD")
}

// fastImport feeds a git fast-import stream to the working clone: many
// commits for the price of one process.
func (a *app) fastImport(t testing.TB, stream string) {
	t.Helper()
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env, cmd.Stdin = a.work, gitEnv, strings.NewReader(stream)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v: %s", err, out)
	}
}

// importer writes a fast-import stream: commit appends a commit to branch
// (starting it at from, a mark like ":3", when given) and returns its mark.
type importer struct {
	b    strings.Builder
	mark int
}

func (im *importer) commit(branch, msg, from string) string {
	im.mark++
	fmt.Fprintf(&im.b, "commit refs/heads/%s\nmark :%d\ncommitter App Dev <dev@app.invalid> %d +0000\ndata %d\n%s\n",
		branch, im.mark, 1700000000+im.mark, len(msg), msg)
	if from != "" {
		fmt.Fprintf(&im.b, "from %s\n", from)
	}
	im.b.WriteString("\n")
	return fmt.Sprintf(":%d", im.mark)
}

func (im *importer) commits(branch, prefix, from string, n int) string {
	var m string
	for i := 1; i <= n; i++ {
		m = im.commit(branch, fmt.Sprintf("%s %d", prefix, i), from)
		from = ""
	}
	return m
}

// cut creates branch name at from and switches to it.
func (a *app) cut(t testing.TB, name, from string) {
	t.Helper()
	a.git(t, "checkout", "--quiet", "-b", name, from)
}

func (a *app) checkout(t testing.TB, name string) {
	t.Helper()
	a.git(t, "checkout", "--quiet", name)
}

func (a *app) head(t testing.TB, branch string) string {
	t.Helper()
	return a.git(t, "rev-parse", "refs/heads/"+branch)
}

// heads maps every local branch to its head.
func (a *app) heads(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(a.git(t, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/"), "\n") {
		b, sha, _ := strings.Cut(line, " ")
		out[b] = sha
	}
	return out
}

// push mirrors every local branch to the server over smart HTTP.
func (a *app) push(t testing.TB) {
	t.Helper()
	a.git(t, "push", "--quiet", "--force", "--prune", a.url, "refs/heads/*:refs/heads/*")
}

// mergeBase and behind are the git CLI's answers, for cross-checking.
func (a *app) mergeBase(t testing.TB, x, y string) string {
	t.Helper()
	return a.git(t, "merge-base", x, y)
}

func (a *app) revCount(t testing.TB, rng string) int {
	t.Helper()
	n, err := strconv.Atoi(a.git(t, "rev-list", "--count", rng))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (a *app) open(t *testing.T) *Repo {
	t.Helper()
	return openAt(t, a.url, t.TempDir())
}

func openAt(t *testing.T, url, cache string) *Repo {
	t.Helper()
	r, err := Open(t.Context(), Options{URL: url, CacheDir: cache})
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func (a *app) cand(t testing.TB, branches ...string) []Candidate {
	t.Helper()
	heads := a.heads(t)
	var cs []Candidate
	for _, b := range branches {
		if heads[b] == "" {
			t.Fatalf("no branch %s", b)
		}
		cs = append(cs, Candidate{Branch: b, SHA: heads[b]})
	}
	return cs
}

// topology builds:
//
//	main      M1-M2-M3
//	staging            \-S1-S2                 (cut from main)
//	feature_1                 \-F1-F2-F3       (cut from staging)
//	feature_2                           \-G1   (cut from feature_1)
//	hotfix             \-H1                    (cut from main)
func topology(t *testing.T) *app {
	t.Helper()
	a := newApp(t)
	var im importer
	m3 := im.commits("main", "main", "", 3)
	s2 := im.commits("staging", "staging", m3, 2)
	f3 := im.commits("feature_1", "feature_1", s2, 3)
	im.commits("feature_2", "feature_2", f3, 1)
	im.commits("hotfix", "hotfix", m3, 1)
	a.fastImport(t, im.b.String())
	a.push(t)
	return a
}

func detect(t *testing.T, r *Repo, a *app, branch string, cands []Candidate, root string) Choice {
	t.Helper()
	ch, err := r.Nearest(t.Context(), branch, a.head(t, branch), cands, root)
	if err != nil {
		t.Fatalf("DetectParent(%s): %v", branch, err)
	}
	t.Logf("%s → %s", branch, ch.Reason)
	return ch
}

// checkWithCLI verifies the choice's merge base and Behind against git.
func checkWithCLI(t *testing.T, a *app, branch string, ch Choice) {
	t.Helper()
	parentSHA := a.head(t, ch.Parent)
	if mb := a.mergeBase(t, branch, parentSHA); ch.MergeBase != mb {
		t.Errorf("%s: merge base %s, git merge-base says %s", branch, ch.MergeBase, mb)
	}
	if n := a.revCount(t, ch.MergeBase+".."+a.head(t, branch)); ch.Behind != n {
		t.Errorf("%s: Behind %d, git rev-list --count says %d", branch, ch.Behind, n)
	}
	if n := a.revCount(t, ch.MergeBase+".."+parentSHA); ch.Ahead != n {
		t.Errorf("%s: Ahead %d, git rev-list --count says %d", branch, ch.Ahead, n)
	}
}

func TestDetectParentTopology(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	if err := r.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	envs := a.cand(t, "main", "staging", "feature_1")

	// A branch cut from a feature branch: feature_1, not staging or main.
	ch := detect(t, r, a, "feature_2", envs, "main")
	if ch.Parent != "feature_1" || ch.Behind != 1 || ch.Ahead != 0 {
		t.Errorf("feature_2: got %+v, want feature_1 behind 1", ch)
	}
	checkWithCLI(t, a, "feature_2", ch)

	// Cut from main: staging shares the same merge base but moved on.
	ch = detect(t, r, a, "hotfix", envs, "main")
	if ch.Parent != "main" || ch.Behind != 1 || ch.Ahead != 0 {
		t.Errorf("hotfix: got %+v, want main behind 1", ch)
	}
	checkWithCLI(t, a, "hotfix", ch)
	// Even when main is not the root, being at the merge base wins the tie.
	if ch := detect(t, r, a, "hotfix", envs, ""); ch.Parent != "main" {
		t.Errorf("hotfix without root: parent %s, want main", ch.Parent)
	}

	ch = detect(t, r, a, "feature_1", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "staging" || ch.Behind != 3 {
		t.Errorf("feature_1: got %+v, want staging behind 3", ch)
	}
	if !strings.Contains(ch.Reason, "3 commits") || !strings.Contains(ch.Reason, "staging") {
		t.Errorf("feature_1: reason %q should name staging and 3 commits", ch.Reason)
	}
	checkWithCLI(t, a, "feature_1", ch)

	// The branch itself is never a candidate, even at a perfect match.
	ch = detect(t, r, a, "feature_1", a.cand(t, "main", "staging", "feature_1"), "main")
	if ch.Parent != "staging" {
		t.Errorf("feature_1 among its own env: parent %s, want staging", ch.Parent)
	}
	// A branch cut FROM feature_1 is never feature_1's parent, even though
	// feature_1's head is its merge base with it (0 commits behind): no loops.
	ch = detect(t, r, a, "feature_1", a.cand(t, "main", "staging", "feature_2"), "main")
	if ch.Parent != "staging" || !strings.Contains(ch.Reason, "feature_2 (cut from feature_1)") {
		t.Errorf("feature_1 with its child as a candidate: got %+v, want staging", ch)
	}
	// Candidate order does not matter.
	ch = detect(t, r, a, "feature_2", a.cand(t, "feature_1", "staging", "main"), "main")
	if ch.Parent != "feature_1" {
		t.Errorf("feature_2 reordered: parent %s, want feature_1", ch.Parent)
	}
}

func TestDetectParentParentMovedOn(t *testing.T) {
	t.Parallel()
	a := topology(t)
	// staging moves on after feature_1 was cut from it.
	a.checkout(t, "staging")
	a.commits(t, "staging later", 2)
	a.push(t)
	r := a.open(t)
	envs := a.cand(t, "main", "staging")

	ch := detect(t, r, a, "feature_1", envs, "main")
	if ch.Parent != "staging" || ch.Behind != 3 || ch.Ahead != 2 {
		t.Errorf("feature_1: got %+v, want staging behind 3 ahead 2", ch)
	}
	checkWithCLI(t, a, "feature_1", ch)

	// feature_1 then merges staging back in: the merge base moves to
	// staging's head and the merge commit counts as one of feature_1's own.
	a.checkout(t, "feature_1")
	a.git(t, "merge", "--quiet", "--no-ff", "--no-edit", "staging")
	a.push(t)
	ch = detect(t, r, a, "feature_1", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "staging" || ch.Behind != 4 || ch.Ahead != 0 || ch.MergeBase != a.head(t, "staging") {
		t.Errorf("feature_1 after merge: got %+v, want staging behind 4 at staging's head", ch)
	}
	checkWithCLI(t, a, "feature_1", ch)
}

func TestDetectParentSameCommitTies(t *testing.T) {
	t.Parallel()
	a := topology(t)
	a.cut(t, "fresh", "main") // no commits of its own
	a.cut(t, "alpha", "main") // another environment at main's head
	a.push(t)
	r := a.open(t)

	ch := detect(t, r, a, "fresh", a.cand(t, "main", "staging", "hotfix"), "main")
	if ch.Parent != "main" || ch.Behind != 0 || ch.Ahead != 0 || ch.MergeBase != a.head(t, "main") {
		t.Errorf("fresh: got %+v, want main behind 0", ch)
	}
	// Same merge base, no root involved: the candidate at the merge base
	// beats the one that moved on, whatever the names.
	ch = detect(t, r, a, "fresh", a.cand(t, "hotfix", "main"), "")
	if ch.Parent != "main" || ch.Behind != 0 || ch.Ahead != 0 {
		t.Errorf("fresh vs hotfix, no root: got %+v, want main", ch)
	}
	// alpha and main are at the same commit: the root wins the tie...
	ch = detect(t, r, a, "fresh", a.cand(t, "alpha", "main", "staging"), "main")
	if ch.Parent != "main" || ch.Behind != 0 {
		t.Errorf("fresh with alpha: got %+v, want main (root)", ch)
	}
	if !strings.Contains(ch.Reason, "root") {
		t.Errorf("reason %q should say the tie went to the root", ch.Reason)
	}
	// ...and without a root in the tie, the smaller name does.
	ch = detect(t, r, a, "fresh", a.cand(t, "main", "alpha", "staging"), "staging")
	if ch.Parent != "alpha" {
		t.Errorf("fresh, root staging: parent %s, want alpha", ch.Parent)
	}
}

func TestDetectParentOrphan(t *testing.T) {
	t.Parallel()
	a := topology(t)
	a.git(t, "checkout", "--quiet", "--orphan", "lonely")
	a.commits(t, "lonely", 2)
	a.push(t)
	r := a.open(t)

	_, err := r.Nearest(t.Context(), "lonely", a.head(t, "lonely"), a.cand(t, "main", "staging", "feature_1"), "main")
	if !errors.Is(err, ErrNoParent) {
		t.Fatalf("orphan: err %v, want ErrNoParent", err)
	}
	if !strings.Contains(err.Error(), "no common history") {
		t.Errorf("orphan error %q should say why", err)
	}
	// An unrelated candidate next to a related one is just ignored.
	ch := detect(t, r, a, "feature_2", a.cand(t, "lonely", "staging"), "main")
	if ch.Parent != "staging" || ch.Behind != 4 {
		t.Errorf("feature_2 with lonely: got %+v, want staging behind 4", ch)
	}
	if !strings.Contains(ch.Reason, "lonely") {
		t.Errorf("reason %q should mention the ignored lonely", ch.Reason)
	}
	// No candidates at all.
	if _, err := r.Nearest(t.Context(), "feature_2", a.head(t, "feature_2"), nil, "main"); !errors.Is(err, ErrNoParent) {
		t.Errorf("no candidates: err %v, want ErrNoParent", err)
	}
}

func TestDetectParentWalkLimit(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	// feature_2 is 2 commits from feature_1's head but 5 from staging's
	// merge base: with a window of 4 commits only feature_1 is related.
	r.walkLimit = 4
	ch := detect(t, r, a, "feature_2", a.cand(t, "feature_1"), "main")
	if ch.Parent != "feature_1" || ch.Behind != 1 {
		t.Errorf("limit 4: got %+v, want feature_1 behind 1", ch)
	}
	if _, err := r.Nearest(t.Context(), "feature_2", a.head(t, "feature_2"), a.cand(t, "main"), "main"); !errors.Is(err, ErrNoParent) {
		t.Errorf("limit 4, main 7 commits back: err %v, want ErrNoParent", err)
	}
	// A candidate too far ahead of the merge base counts as unrelated too.
	r.walkLimit = 2
	if _, err := r.Nearest(t.Context(), "hotfix", a.head(t, "hotfix"), a.cand(t, "feature_2"), "main"); !errors.Is(err, ErrNoParent) {
		t.Errorf("limit 2, feature_2 6 commits past the base: err %v, want ErrNoParent", err)
	}
}

func TestDetectParentBadInput(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	head := a.head(t, "feature_2")
	if _, err := r.Nearest(t.Context(), "feature_2", "not-a-sha", a.cand(t, "main"), "main"); err == nil || errors.Is(err, ErrNoParent) {
		t.Errorf("bad head: err %v, want a plain error", err)
	}
	if _, err := r.Nearest(t.Context(), "feature_2", head, []Candidate{{Branch: "main", SHA: "xyz"}}, "main"); err == nil || errors.Is(err, ErrNoParent) {
		t.Errorf("bad candidate SHA: err %v, want a plain error", err)
	}
	unknown := strings.Repeat("ab", 20)
	_, err := r.Nearest(t.Context(), "ghost", unknown, a.cand(t, "main"), "main")
	if err == nil || errors.Is(err, ErrNoParent) || !strings.Contains(err.Error(), unknown) {
		t.Errorf("unknown head: err %v, want not-found error naming it", err)
	}
	// A candidate whose commit the remote does not have is ignored, not fatal.
	cands := append(a.cand(t, "staging"), Candidate{Branch: "gone", SHA: unknown})
	ch := detect(t, r, a, "feature_2", cands, "main")
	if ch.Parent != "staging" || !strings.Contains(ch.Reason, "gone") {
		t.Errorf("with a gone candidate: got %+v", ch)
	}
	// Uppercase SHAs are commit SHAs too.
	ch = detect(t, r, a, "feature_2", []Candidate{{Branch: "feature_1", SHA: strings.ToUpper(a.head(t, "feature_1"))}}, "main")
	if ch.Parent != "feature_1" {
		t.Errorf("uppercase SHA: got %+v", ch)
	}
}

// lsRemote is the git CLI's view of the remote's branches.
func lsRemote(t *testing.T, url string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(gitCLI(t, "", "ls-remote", "--heads", url), "\n") {
		sha, ref, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("ls-remote line %q", line)
		}
		out[strings.TrimPrefix(ref, "refs/heads/")] = sha
	}
	return out
}

func TestBranches(t *testing.T) {
	t.Parallel()
	a := topology(t)
	a.cut(t, "feature/nested-name", "staging")
	a.commit(t, "nested")
	a.push(t)
	r := a.open(t)

	got, err := r.Branches(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := lsRemote(t, a.url)
	if len(want) != 6 {
		t.Fatalf("fixture: git ls-remote shows %d branches: %v", len(want), want)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Branches = %v\ngit ls-remote = %v", got, want)
	}
	for b, sha := range got {
		if sha != a.head(t, b) {
			t.Errorf("branch %s: %s, local head %s", b, sha, a.head(t, b))
		}
	}
	// Listing does not fetch.
	if _, err := gitCLIErr("", "--git-dir="+r.Dir(), "rev-parse", "--verify", "--quiet", "refs/remotes/origin/main"); err == nil {
		t.Error("Branches fetched into the cache")
	}

	// An outage is an error, never an empty listing.
	a.srv.SetDown(true)
	got, err = r.Branches(t.Context())
	if err == nil || got != nil || errors.Is(err, ErrNoBranches) {
		t.Errorf("server down: Branches = %v, %v; want a nil map and a non-ErrNoBranches error", got, err)
	}
	if err := r.Fetch(t.Context()); err == nil || errors.Is(err, ErrNoBranches) {
		t.Errorf("server down: Fetch err %v", err)
	}
	a.srv.SetDown(false)
	if got, err := r.Branches(t.Context()); err != nil || len(got) != 6 {
		t.Errorf("server back: %v, %v", got, err)
	}

	// A repository that does not exist is an error too.
	r404 := openAt(t, a.srv.URL+"/missing.git", t.TempDir())
	if got, err := r404.Branches(t.Context()); err == nil || got != nil || errors.Is(err, ErrNoBranches) {
		t.Errorf("missing repo: Branches = %v, %v", got, err)
	}
}

func TestBranchesEmptyRepo(t *testing.T) {
	t.Parallel()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, err := srv.CreateBare("empty")
	if err != nil {
		t.Fatal(err)
	}
	r := openAt(t, url, t.TempDir())
	got, err := r.Branches(t.Context())
	if !errors.Is(err, ErrNoBranches) || got != nil {
		t.Errorf("empty repo: Branches = %v, %v; want ErrNoBranches", got, err)
	}
	if err := r.Fetch(t.Context()); !errors.Is(err, ErrNoBranches) {
		t.Errorf("empty repo: Fetch err %v, want ErrNoBranches", err)
	}
}

// trackingRefs lists the cached clone's remote-tracking branches with the
// git CLI.
func trackingRefs(t *testing.T, r *Repo) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := gitCLI(t, "", "--git-dir="+r.Dir(), "for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/origin/")
	for _, line := range strings.Split(list, "\n") {
		if line == "" {
			continue
		}
		ref, sha, _ := strings.Cut(line, " ")
		out[strings.TrimPrefix(ref, "refs/remotes/origin/")] = sha
	}
	return out
}

func TestFetchIncremental(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	if err := r.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := trackingRefs(t, r), lsRemote(t, a.url); !maps.Equal(got, want) {
		t.Fatalf("after Fetch: cache %v, remote %v", got, want)
	}
	packs := func() int {
		m, _ := filepath.Glob(filepath.Join(r.Dir(), "objects", "pack", "*.pack"))
		return len(m)
	}
	first := packs()

	// One new commit on main, one branch deleted: a second fetch brings the
	// commit in a new small pack (the first pack is kept) and prunes.
	a.checkout(t, "main")
	newMain := a.commit(t, "main 4")
	a.git(t, "branch", "-D", "hotfix")
	a.push(t)
	if err := r.Fetch(t.Context()); err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	refs := trackingRefs(t, r)
	if refs["main"] != newMain {
		t.Errorf("after second Fetch main is %s, want %s", refs["main"], newMain)
	}
	if _, ok := refs["hotfix"]; ok {
		t.Error("deleted branch hotfix was not pruned")
	}
	if got, want := refs, lsRemote(t, a.url); !maps.Equal(got, want) {
		t.Errorf("after second Fetch: cache %v, remote %v", got, want)
	}
	if packs() != first+1 {
		t.Errorf("packs: %d then %d; the second fetch should add exactly one", first, packs())
	}
	// The new commit only has the new file: the pack holds commit, tree, blob.
	if n := gitCLI(t, "", "--git-dir="+r.Dir(), "cat-file", "-t", newMain); n != "commit" {
		t.Errorf("new commit in cache: %s", n)
	}
	if err := r.Fetch(t.Context()); err != nil {
		t.Errorf("up-to-date Fetch: %v", err)
	}

	// A branch pushed after the last Fetch: DetectParent fetches its head.
	a.cut(t, "late", "main")
	a.commit(t, "late 1")
	a.push(t)
	ch := detect(t, r, a, "late", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "main" || ch.Behind != 1 || ch.MergeBase != newMain {
		t.Errorf("late: got %+v, want main behind 1 at %s", ch, newMain)
	}
	// And a candidate that moved on after the last fetch (its SHA unknown
	// to the cache) is fetched as well.
	a.checkout(t, "staging")
	a.commit(t, "staging 3")
	a.cut(t, "late2", "staging")
	a.commit(t, "late2 1")
	a.push(t)
	ch = detect(t, r, a, "late2", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "staging" || ch.Behind != 1 {
		t.Errorf("late2: got %+v, want staging behind 1", ch)
	}
	checkWithCLI(t, a, "late2", ch)
}

func TestFetchWhenDownDuringDetect(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	a.srv.SetDown(true)
	_, err := r.Nearest(t.Context(), "feature_2", a.head(t, "feature_2"), a.cand(t, "feature_1"), "main")
	if err == nil || errors.Is(err, ErrNoParent) {
		t.Errorf("down, nothing cached: err %v, want a fetch error", err)
	}
	a.srv.SetDown(false)
	if err := r.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Everything is cached: no network needed.
	a.srv.SetDown(true)
	ch := detect(t, r, a, "feature_2", a.cand(t, "feature_1", "main"), "main")
	if ch.Parent != "feature_1" {
		t.Errorf("down, cached: got %+v", ch)
	}
}

func TestLocalPathAndFileURL(t *testing.T) {
	t.Parallel()
	a := topology(t)
	for _, url := range []string{a.bare, "file://" + a.bare} {
		r := openAt(t, url, t.TempDir())
		got, err := r.Branches(t.Context())
		if err != nil {
			t.Fatalf("%s: Branches: %v", url, err)
		}
		if want := lsRemote(t, a.url); !maps.Equal(got, want) {
			t.Errorf("%s: Branches = %v, want %v", url, got, want)
		}
		ch := detect(t, r, a, "feature_2", a.cand(t, "main", "staging", "feature_1"), "main")
		if ch.Parent != "feature_1" || ch.Behind != 1 {
			t.Errorf("%s: got %+v", url, ch)
		}
	}
	if _, err := Open(t.Context(), Options{URL: filepath.Join(t.TempDir(), "nope"), CacheDir: t.TempDir()}); err == nil {
		t.Error("Open of a missing local path succeeded")
	}
	if _, err := Open(t.Context(), Options{CacheDir: t.TempDir()}); err == nil {
		t.Error("Open without URL succeeded")
	}
}

func TestCacheKeyedByURL(t *testing.T) {
	t.Parallel()
	a := topology(t)
	cache := t.TempDir()
	r1 := openAt(t, a.url, cache)
	r2 := openAt(t, a.url, cache)
	r3 := openAt(t, a.bare, cache)
	if r1.Dir() != r2.Dir() || r1.Dir() == r3.Dir() {
		t.Errorf("cache dirs: %s %s %s", r1.Dir(), r2.Dir(), r3.Dir())
	}
	if filepath.Dir(r1.Dir()) != filepath.Join(cache, "apprepos") {
		t.Errorf("cache dir %s not under %s/apprepos", r1.Dir(), cache)
	}
}

func TestRedactsCredentials(t *testing.T) {
	t.Parallel()
	a := topology(t)
	url := strings.Replace(a.srv.URL, "http://", "http://user:s3cret@", 1) + "/missing.git"
	r := openAt(t, url, t.TempDir())
	_, err := r.Branches(t.Context())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Branches error leaks or is nil: %v", err)
	}
	err = r.Fetch(t.Context())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Fetch error leaks or is nil: %v", err)
	}
	if got := redact("https://tok:abc@host/x.git"); got != "https://***@host/x.git" {
		t.Errorf("redact = %s", got)
	}
}

// Two handles on one cache (as two processes would have) and several
// goroutines per handle: the file lock and the mutex keep them apart.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	a := topology(t)
	cache := t.TempDir()
	repos := []*Repo{openAt(t, a.url, cache), openAt(t, a.url, cache)}
	envs := a.cand(t, "main", "staging", "feature_1")
	head := a.head(t, "feature_2")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		r := repos[i%2]
		wg.Go(func() {
			ctx := context.Background()
			if i%3 == 0 {
				if err := r.Fetch(ctx); err != nil {
					errs <- err
					return
				}
			}
			ch, err := r.Nearest(ctx, "feature_2", head, envs, "main")
			if err != nil {
				errs <- err
				return
			}
			if ch.Parent != "feature_1" || ch.Behind != 1 {
				errs <- fmt.Errorf("goroutine %d: %+v", i, ch)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if fsck, err := gitCLIErr("", "--git-dir="+repos[0].Dir(), "fsck", "--no-dangling", "--no-progress"); err != nil {
		t.Errorf("cache fsck: %v %s", err, fsck)
	}
}

// A longer history: the walk is exact over the whole history when it fits
// the window, and still finds a near merge base when the window is smaller
// than the history (the far one then counts as unrelated).
func TestDetectParentLongHistory(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	var im importer
	m := im.commits("main", "main", "", 1500)
	im.commits("staging", "staging", ":500", 2)
	im.commits("feature", "feature", ":1490", 2)
	im.commits("old", "old", ":499", 1)
	a.fastImport(t, im.b.String())
	a.push(t)
	r := a.open(t)
	if err := r.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	ch := detect(t, r, a, "feature", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "main" || ch.Behind != 2 || ch.Ahead != 10 {
		t.Errorf("feature: got %+v, want main behind 2 ahead 10", ch)
	}
	checkWithCLI(t, a, "feature", ch)
	if want := a.git(t, "rev-parse", "main~10"); ch.MergeBase != want || m != ":1500" {
		t.Errorf("merge base %s, want main~10 %s", ch.MergeBase, want)
	}
	// staging vs old, 1000 commits back: both related, staging nearer.
	ch = detect(t, r, a, "feature", a.cand(t, "staging", "old"), "main")
	if ch.Parent != "staging" || ch.Behind != 992 || ch.Ahead != 2 {
		t.Errorf("feature vs staging/old: got %+v, want staging behind 992", ch)
	}
	checkWithCLI(t, a, "feature", ch)

	// A 100-commit window: main's merge base is inside, staging's is not.
	r.walkLimit = 100
	ch = detect(t, r, a, "feature", a.cand(t, "main", "staging"), "main")
	if ch.Parent != "main" || ch.Behind != 2 || ch.Ahead != 10 {
		t.Errorf("feature, window 100: got %+v, want main behind 2 ahead 10", ch)
	}
	if _, err := r.Nearest(t.Context(), "feature", a.head(t, "feature"), a.cand(t, "staging", "old"), "main"); !errors.Is(err, ErrNoParent) {
		t.Errorf("window 100, merge bases 1000 back: err %v, want ErrNoParent", err)
	}
}

// Another handle (another process) fetched new packs into the shared cache:
// this handle must see them instead of trusting its stale pack index.
func TestSharedCacheSeesOtherFetches(t *testing.T) {
	t.Parallel()
	a := topology(t)
	cache := t.TempDir()
	r1, r2 := openAt(t, a.url, cache), openAt(t, a.url, cache)
	detect(t, r2, a, "feature_2", a.cand(t, "feature_1"), "main") // loads r2's index
	a.checkout(t, "main")
	a.commit(t, "main 4")
	a.cut(t, "late", "main")
	a.commit(t, "late 1")
	a.push(t)
	if err := r1.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// r2 finds the commits r1 fetched without going to the server.
	cands := a.cand(t, "main", "staging")
	a.srv.SetDown(true)
	ch := detect(t, r2, a, "late", cands, "main")
	a.srv.SetDown(false)
	if ch.Parent != "main" || ch.Behind != 1 {
		t.Errorf("late via r2: got %+v", ch)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Fetch(t.Context()); err == nil {
		t.Error("Fetch after Close succeeded")
	}
}

// An environment synced with an abbreviated SHA (as the README's examples
// do) is still a candidate: the short SHA is resolved in the app repo. An
// unknown one is ignored, not fatal to the whole list.
func TestDetectParentAbbreviatedSHA(t *testing.T) {
	t.Parallel()
	a := topology(t)
	r := a.open(t)
	envs := a.cand(t, "main", "staging", "feature_1")
	for i := range envs {
		envs[i].SHA = envs[i].SHA[:7]
	}
	envs = append(envs, Candidate{Branch: "elsewhere", SHA: "0000000"})
	ch, err := r.DetectParent(t.Context(), "feature_2", a.head(t, "feature_2"), envs, "main")
	if err != nil {
		t.Fatalf("DetectParent with short SHAs: %v", err)
	}
	if ch.Parent != "feature_1" {
		t.Errorf("parent %q, want feature_1 (%s)", ch.Parent, ch.Reason)
	}
	if !strings.Contains(ch.Reason, "elsewhere (commit 0000000 not found)") {
		t.Errorf("the unknown short SHA is not said to be ignored: %s", ch.Reason)
	}
}
