package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/offshoot-dev/offshoot/internal/engine"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/offshoot-dev/offshoot/internal/gitserver"
)

// These tests talk to a real git smart-HTTP server (git http-backend behind
// internal/gitserver) and check every result with the real git CLI as well,
// so go-git is not the only witness.

const (
	testAuthor = "Offshoot Test"
	testEmail  = "test@offshoot.invalid"
)

// gitCLI runs the real git with a hermetic configuration (no system or
// global config, fixed identity) and returns its trimmed stdout.
func gitCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitCLIErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitCLIErr(dir string, args ...string) (string, error) {
	out, err := gitCLIRaw(dir, "", args...)
	return strings.TrimRight(out, "\n"), err
}

// gitCLIRaw feeds stdin to git and returns its stdout untouched.
func gitCLIRaw(dir, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=CLI User",
		"GIT_AUTHOR_EMAIL=cli@offshoot.invalid",
		"GIT_COMMITTER_NAME=CLI User",
		"GIT_COMMITTER_EMAIL=cli@offshoot.invalid",
		"LC_ALL=C",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// remote is one bare repository on its own real git server.
type remote struct {
	srv *gitserver.Server
	url string
	dir string // the bare repository on disk
}

func newRemote(t *testing.T) *remote {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir(), "")
	if err != nil {
		t.Fatalf("start git server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	url, err := srv.CreateBare("envs")
	if err != nil {
		t.Fatalf("create bare: %v", err)
	}
	return &remote{srv: srv, url: url, dir: srv.Dir("envs")}
}

// open opens the remote with a fresh cache directory of its own.
func (rm *remote) open(t *testing.T, mods ...func(*Options)) *Repo {
	t.Helper()
	o := Options{
		Location:    rm.url,
		CacheDir:    t.TempDir(),
		AuthorName:  testAuthor,
		AuthorEmail: testEmail,
	}
	for _, m := range mods {
		m(&o)
	}
	r, err := Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", o.Location, err)
	}
	return r
}

// git runs the git CLI on the bare repository.
func (rm *remote) git(t testing.TB, args ...string) string {
	t.Helper()
	return gitCLI(t, "", append([]string{"--git-dir=" + rm.dir}, args...)...)
}

func (rm *remote) head(t testing.TB) string {
	return rm.git(t, "rev-parse", "--verify", "refs/heads/main")
}

func (rm *remote) count(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(rm.git(t, "rev-list", "--count", "refs/heads/main"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (rm *remote) hasBranch() bool {
	_, err := gitCLIErr("", "--git-dir="+rm.dir, "rev-parse", "--verify", "--quiet", "refs/heads/main")
	return err == nil
}

// files reads every file at the head of main with the git CLI.
func (rm *remote) files(t testing.TB) map[string]string {
	t.Helper()
	return treeFiles(t, "", "--git-dir="+rm.dir, "refs/heads/main")
}

// treeFiles reads every file of rev with the git CLI (in dir, or with
// gitDirFlag such as --git-dir=...): blobs (and symlinks) map to their
// content, gitlinks to "gitlink:<hash>".
func treeFiles(t testing.TB, dir, gitDirFlag, rev string) map[string]string {
	t.Helper()
	var pre []string
	if gitDirFlag != "" {
		pre = []string{gitDirFlag}
	}
	list, err := gitCLIRaw(dir, "", append(pre, "ls-tree", "-r", "-z", "--full-tree", rev)...)
	if err != nil {
		t.Fatalf("git ls-tree %s: %v", rev, err)
	}
	out := map[string]string{}
	var paths, hashes []string
	for _, line := range strings.Split(list, "\x00") {
		if line == "" {
			continue
		}
		meta, p, ok := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			t.Fatalf("ls-tree line %q", line)
		}
		if f[1] == "commit" {
			out[p] = "gitlink:" + f[2]
			continue
		}
		paths, hashes = append(paths, p), append(hashes, f[2])
	}
	if len(hashes) == 0 {
		return out
	}
	batch, err := gitCLIRaw(dir, strings.Join(hashes, "\n")+"\n", append(pre, "cat-file", "--batch")...)
	if err != nil {
		t.Fatalf("git cat-file --batch: %v", err)
	}
	for i, p := range paths {
		header, rest, ok := strings.Cut(batch, "\n")
		f := strings.Fields(header)
		if !ok || len(f) != 3 || f[0] != hashes[i] {
			t.Fatalf("cat-file --batch header %q for %s", header, p)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || len(rest) < size+1 {
			t.Fatalf("cat-file --batch size %q for %s", header, p)
		}
		out[p] = rest[:size]
		batch = rest[size+1:]
	}
	return out
}

// fsck checks the bare repository with git fsck --strict: every object must
// be well formed (tree entries in git's order, sane modes, ...).
func (rm *remote) fsck(t testing.TB) {
	t.Helper()
	out, err := gitCLIErr("", "--git-dir="+rm.dir, "fsck", "--strict", "--no-dangling", "--no-progress")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("git fsck --strict on the server repository: %v\n%s", err, out)
	}
}

// linear asserts main has no merge commits.
func (rm *remote) linear(t testing.TB) {
	t.Helper()
	if merges := rm.git(t, "rev-list", "--min-parents=2", "refs/heads/main"); merges != "" {
		t.Fatalf("history is not linear, merges: %s", merges)
	}
}

func files(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func constChange(c *Change) ChangeFunc {
	return func(fs.FS, string) (*Change, error) { return c, nil }
}

// seed creates main with one commit through its own Repo.
func (rm *remote) seed(t *testing.T, c *Change) string {
	t.Helper()
	res, err := rm.open(t).Update(t.Context(), constChange(c), UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if !res.Changed || res.Commit != rm.head(t) {
		t.Fatalf("seed: result %+v, server head %s", res, rm.head(t))
	}
	return res.Commit
}

func mustUpdate(t *testing.T, r *Repo, c *Change) Result {
	t.Helper()
	res, err := r.Update(t.Context(), constChange(c), UpdateOptions{})
	if err != nil {
		t.Fatalf("Update(%q): %v", c.Message, err)
	}
	return res
}

func assertFiles(t testing.TB, got map[string]string, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s", p))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s", p))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("files differ:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// 1. Empty remote.

func TestUpdateEmptyRemoteWithoutAllowEmptyRepo(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	r := rm.open(t)
	called := false
	res, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		called = true
		return &Change{Message: "x", Files: files("a", "b")}, nil
	}, UpdateOptions{})
	if !errors.Is(err, ErrNoBranch) {
		t.Fatalf("Update on an empty remote: err = %v, want ErrNoBranch", err)
	}
	if errors.Is(err, ErrConflict) {
		t.Fatalf("ErrNoBranch must not also be a conflict: %v", err)
	}
	if called {
		t.Error("the ChangeFunc was called although the branch does not exist")
	}
	if res.Changed || res.Commit != "" || res.Attempts != 1 {
		t.Errorf("result = %+v, want unchanged, no commit, 1 attempt", res)
	}
	if n := rm.srv.Pushes(); n != 0 {
		t.Errorf("%d pushes reached the server, want 0", n)
	}
	if rm.hasBranch() {
		t.Error("main was created on the server")
	}
	if refs := rm.git(t, "for-each-ref"); refs != "" {
		t.Errorf("server has refs: %s", refs)
	}
	if _, _, err := r.Snapshot(t.Context()); !errors.Is(err, ErrNoBranch) {
		t.Errorf("Snapshot on an empty remote: err = %v, want ErrNoBranch", err)
	}
}

func TestUpdateEmptyRemoteAllowEmptyRepoCreatesMain(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	r := rm.open(t, func(o *Options) {
		o.AuthorName, o.AuthorEmail = "Env Bot", "env-bot@example.invalid"
		o.Now = func() time.Time { return when }
	})
	const msg = "offshoot: initialise environments repo"
	var sawEntries = -1
	res, err := r.Update(t.Context(), func(cur fs.FS, _ string) (*Change, error) {
		entries, err := fs.ReadDir(cur, ".")
		if err != nil {
			return nil, err
		}
		sawEntries = len(entries)
		return &Change{Message: msg, Files: files(
			"README.md", "# environments\n",
			"envs/.keep", "",
			"config/offshoot.yaml", "branch: main\n",
		)}, nil
	}, UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		t.Fatalf("Update with AllowEmptyRepo: %v", err)
	}
	if sawEntries != 0 {
		t.Errorf("the ChangeFunc saw %d entries in the empty repo, want 0", sawEntries)
	}
	if !res.Changed || res.Attempts != 1 || len(res.Commit) != 40 {
		t.Fatalf("result = %+v", res)
	}
	if got := rm.head(t); got != res.Commit {
		t.Fatalf("server main = %s, Result.Commit = %s", got, res.Commit)
	}
	if n := rm.count(t); n != 1 {
		t.Fatalf("server history has %d commits, want exactly 1", n)
	}
	if n := rm.srv.Pushes(); n != 1 {
		t.Errorf("%d pushes, want 1", n)
	}
	if refs := rm.git(t, "for-each-ref", "--format=%(refname)"); refs != "refs/heads/main" {
		t.Errorf("server refs = %q, want only refs/heads/main", refs)
	}
	if h := rm.git(t, "symbolic-ref", "HEAD"); h != "refs/heads/main" {
		t.Errorf("server HEAD = %s", h)
	}
	log := rm.git(t, "log", "-1", "--format=%an|%ae|%cn|%ce|%at|%ct|%P|%B", "refs/heads/main")
	want := fmt.Sprintf("Env Bot|env-bot@example.invalid|Env Bot|env-bot@example.invalid|%d|%d||%s", when.Unix(), when.Unix(), msg)
	if strings.TrimSpace(log) != want {
		t.Errorf("git log:\n got %q\nwant %q", log, want)
	}
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":            "# environments\n",
		"envs/.keep":           "",
		"config/offshoot.yaml": "branch: main\n",
	})
	rm.fsck(t)

	// A plain git clone over HTTP sees the same thing, checked out on main.
	work := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, "", "clone", "--quiet", rm.url, work)
	if b := gitCLI(t, work, "rev-parse", "--abbrev-ref", "HEAD"); b != "main" {
		t.Errorf("clone checked out %q, want main", b)
	}
	data, err := os.ReadFile(filepath.Join(work, "config", "offshoot.yaml"))
	if err != nil || string(data) != "branch: main\n" {
		t.Errorf("cloned config/offshoot.yaml = %q, %v", data, err)
	}

	// A second AllowEmptyRepo update on the now existing branch builds on it.
	res2 := mustUpdate(t, r, &Change{Message: "second", Files: files("b.txt", "b")})
	if parent := rm.git(t, "rev-parse", "refs/heads/main^"); parent != res.Commit {
		t.Errorf("second commit's parent = %s, want %s", parent, res.Commit)
	}
	if rm.head(t) != res2.Commit || rm.count(t) != 2 {
		t.Errorf("after the second update: head %s count %d", rm.head(t), rm.count(t))
	}
}

func TestUpdateMissingRepository(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	r := rm.open(t, func(o *Options) { o.Location = rm.srv.URL + "/does-not-exist.git" })
	_, err := r.Update(t.Context(), constChange(&Change{Message: "x", Files: files("a", "b")}), UpdateOptions{AllowEmptyRepo: true})
	if !errors.Is(err, ErrNoBranch) {
		t.Fatalf("Update on a missing repository: err = %v, want ErrNoBranch", err)
	}
	if errors.Is(err, ErrConflict) {
		t.Fatalf("a missing repository is not a conflict: %v", err)
	}
}

// 2. Dirs and Files.

func TestUpdateDirsAndFiles(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "readme\n"), Dirs: map[string]map[string][]byte{
		"envs/a":  files("x.yaml", "x", "sub/y.yaml", "y"),
		"envs/b":  files("z.yaml", "z"),
		"other/c": files("c.yaml", "c"),
	}})
	r := rm.open(t)
	treeOf := func(p string) string { return rm.git(t, "rev-parse", "refs/heads/main:"+p) }
	envsB, otherC := treeOf("envs/b"), treeOf("other/c")

	// Replacing envs/a: stale x.yaml and sub/ are gone, neighbours untouched.
	res := mustUpdate(t, r, &Change{Message: "replace a", Dirs: map[string]map[string][]byte{
		"envs/a": files("new.yaml", "new", "sub/deep/w.yaml", "w"),
	}})
	if !res.Changed || rm.head(t) != res.Commit {
		t.Fatalf("replace a: %+v", res)
	}
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":              "readme\n",
		"envs/a/new.yaml":        "new",
		"envs/a/sub/deep/w.yaml": "w",
		"envs/b/z.yaml":          "z",
		"other/c/c.yaml":         "c",
	})
	if treeOf("envs/b") != envsB || treeOf("other/c") != otherC {
		t.Error("the neighbour directories' trees changed")
	}
	if msg := rm.git(t, "log", "-1", "--format=%s", "refs/heads/main"); msg != "replace a" {
		t.Errorf("message = %q", msg)
	}

	// A nil map removes the directory; envs stays because envs/b is left.
	mustUpdate(t, r, &Change{Message: "remove a", Dirs: map[string]map[string][]byte{"envs/a": nil}})
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":      "readme\n",
		"envs/b/z.yaml":  "z",
		"other/c/c.yaml": "c",
	})
	if treeOf("envs/b") != envsB {
		t.Error("envs/b changed when envs/a was removed")
	}

	// Removing the last directory of envs removes the now empty envs too.
	mustUpdate(t, r, &Change{Message: "remove b", Dirs: map[string]map[string][]byte{"envs/b": nil}})
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":      "readme\n",
		"other/c/c.yaml": "c",
	})
	if out := rm.git(t, "ls-tree", "refs/heads/main", "envs"); out != "" {
		t.Errorf("empty parent envs is still in the tree: %s", out)
	}

	// Files writes single files (nested paths create directories) and
	// leaves neighbours alone, including in a directory it writes into.
	mustUpdate(t, r, &Change{Message: "files", Files: files(
		"other/c/extra.yaml", "extra",
		"deep/er/and/deeper/f.txt", "f",
		"README.md", "readme v2\n",
	)})
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":                "readme v2\n",
		"other/c/c.yaml":           "c",
		"other/c/extra.yaml":       "extra",
		"deep/er/and/deeper/f.txt": "f",
	})

	// Dirs and Files in one change, a parent and its child in Dirs: the
	// parent's replacement does not hide the nested write.
	mustUpdate(t, r, &Change{Message: "mixed", Dirs: map[string]map[string][]byte{
		"other":       files("top.yaml", "top"),
		"other/c/sub": files("s.yaml", "s"),
	}, Files: files("other/extra.txt", "e")})
	assertFiles(t, rm.files(t), map[string]string{
		"README.md":                "readme v2\n",
		"deep/er/and/deeper/f.txt": "f",
		"other/top.yaml":           "top",
		"other/c/sub/s.yaml":       "s",
		"other/extra.txt":          "e",
	})

	// A file may replace a directory and a directory a file.
	mustUpdate(t, r, &Change{Message: "swap", Files: files("deep/er", "now a file", "README.md/inside", "now a dir")})
	got := rm.files(t)
	if got["deep/er"] != "now a file" || got["README.md/inside"] != "now a dir" {
		t.Errorf("file/dir swap: %v", got)
	}
	if _, ok := got["deep/er/and/deeper/f.txt"]; ok {
		t.Error("the directory replaced by a file is still there")
	}

	rm.linear(t)
	if n := rm.count(t); n != 7 {
		t.Errorf("history has %d commits, want 7", n)
	}
	rm.fsck(t)
}

// Tree entries must be sorted the way git sorts them (a directory compares
// as if its name ended in '/'), or git fsck --strict complains and git
// itself computes a different tree for the same content.
func TestUpdateTreeOrderMatchesGit(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t)
	names := files(
		"foo-bar", "1", // '-' < '.' < '/' < '0'
		"foo.txt", "2",
		"foo/inner.txt", "3",
		"foo0", "4",
		"Foo", "5",
		"a b.txt", "6",
		"ünïcode.txt", "7",
		"x/y/z", "8",
		"x.y", "9",
		"x-y/z", "10",
		"x0/z", "11",
		"envs/pr-1/a.yaml", "12",
		"envs/pr-1.b/a.yaml", "13",
		"envs/pr-10/a.yaml", "14",
		"envs/pr-1-x", "15",
	)
	res := mustUpdate(t, r, &Change{Message: "order", Files: names})
	want := map[string]string{"README.md": "r"}
	for p, d := range names {
		want[p] = string(d)
	}
	assertFiles(t, rm.files(t), want)
	rm.fsck(t)

	// Top-level order as git lists it.
	top := strings.Split(strings.TrimSuffix(rm.git(t, "ls-tree", "-z", "--name-only", "refs/heads/main"), "\x00"), "\x00")
	wantTop := []string{"Foo", "README.md", "a b.txt", "envs", "foo-bar", "foo.txt", "foo", "foo0", "x-y", "x.y", "x", "x0", "ünïcode.txt"}
	if !slices.Equal(top, wantTop) {
		t.Errorf("git ls-tree order:\n got %q\nwant %q", top, wantTop)
	}

	// Real git computes the very same tree for the same content.
	work := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, "", "clone", "--quiet", rm.url, work)
	if st := gitCLI(t, work, "status", "--porcelain"); st != "" {
		t.Errorf("fresh clone is not clean: %s", st)
	}
	gitCLI(t, work, "rm", "-r", "-q", "--cached", ".")
	gitCLI(t, work, "add", "-A")
	if gitTree, ourTree := gitCLI(t, work, "write-tree"), rm.git(t, "rev-parse", res.Commit+"^{tree}"); gitTree != ourTree {
		t.Errorf("git write-tree = %s, offshoot's tree = %s", gitTree, ourTree)
	}
}

func TestUpdateRejectsBadChanges(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	head := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t)
	pushes := rm.srv.Pushes()
	for name, c := range map[string]*Change{
		"dir dot-dot":     {Dirs: map[string]map[string][]byte{"../x": nil}},
		"dir root":        {Dirs: map[string]map[string][]byte{".": files("a", "b")}},
		"dir absolute":    {Dirs: map[string]map[string][]byte{"/etc": nil}},
		"dir trailing /":  {Dirs: map[string]map[string][]byte{"envs/": nil}},
		"dir file escape": {Dirs: map[string]map[string][]byte{"envs": files("../x", "b")}},
		"file dot-dot":    {Files: files("a/../../x", "b")},
		"file absolute":   {Files: files("/x", "b")},
		"file empty":      {Files: files("", "b")},
		"file double /":   {Files: files("a//b", "b")},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := r.Update(t.Context(), constChange(c), UpdateOptions{})
			if err == nil {
				t.Fatalf("bad change accepted: %+v", res)
			}
			if errors.Is(err, ErrConflict) {
				t.Fatalf("bad change reported as a conflict: %v", err)
			}
		})
	}
	if rm.head(t) != head || rm.srv.Pushes() != pushes {
		t.Error("a rejected change reached the server")
	}
}

func TestUpdateRefusesEmptyTree(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	head := rm.seed(t, &Change{Message: "init", Dirs: map[string]map[string][]byte{"envs/a": files("a", "a")}})
	r := rm.open(t)
	_, err := r.Update(t.Context(), constChange(&Change{Message: "wipe", Dirs: map[string]map[string][]byte{"envs": nil}}), UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "empty tree") {
		t.Fatalf("removing every file: err = %v, want a refusal to commit an empty tree", err)
	}
	if rm.head(t) != head {
		t.Error("the empty tree was pushed")
	}
}

// Entries offshoot does not write itself (executables, symlinks, gitlinks
// made with the git CLI) survive an update of their directory untouched.
func TestUpdatePreservesForeignEntries(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	initC := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r", "vendor/keep.txt", "k")})
	work := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, "", "clone", "--quiet", rm.url, work)
	if err := os.WriteFile(filepath.Join(work, "vendor", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../README.md", filepath.Join(work, "vendor", "link")); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "update-index", "--add", "--cacheinfo", "160000,"+initC+",vendor/sub")
	gitCLI(t, work, "commit", "-q", "-m", "by hand")
	gitCLI(t, work, "push", "-q", "origin", "main")
	lsVendor := func() string { return rm.git(t, "ls-tree", "refs/heads/main", "vendor/") }
	before := lsVendor()
	for _, want := range []string{"100755 blob", "120000 blob", "160000 commit " + initC} {
		if !strings.Contains(before, want) {
			t.Fatalf("setup: vendor/ lacks %q:\n%s", want, before)
		}
	}

	r := rm.open(t)
	mustUpdate(t, r, &Change{Message: "write next to them", Files: files("vendor/new.txt", "n")})
	after := lsVendor()
	for _, line := range strings.Split(before, "\n") {
		if !strings.Contains(after, line) {
			t.Errorf("entry lost or changed by the update: %q\nafter:\n%s", line, after)
		}
	}
	if !strings.Contains(after, "vendor/new.txt") {
		t.Errorf("new file missing:\n%s", after)
	}
	rm.fsck(t)

	// The fs.FS offshoot reads skips the gitlink and walks fine.
	fsys, _, err := r.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var walked []string
	if err := fs.WalkDir(fsys, "vendor", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	}); err != nil {
		t.Fatalf("WalkDir: %v", err)
	}
	if want := []string{"vendor", "vendor/keep.txt", "vendor/link", "vendor/new.txt", "vendor/run.sh"}; !slices.Equal(walked, want) {
		t.Errorf("WalkDir(vendor) = %v, want %v", walked, want)
	}
	if data, err := fs.ReadFile(fsys, "vendor/run.sh"); err != nil || string(data) != "#!/bin/sh\n" {
		t.Errorf("ReadFile(run.sh) = %q, %v", data, err)
	}
}

// 3. Idempotency.

func TestUpdateIdempotent(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t)
	c := &Change{Message: "env pr-7", Dirs: map[string]map[string][]byte{
		"envs/pr-7": files("kustomization.yaml", "resources: []\n", "db/cluster.yaml", "kind: Cluster\n"),
	}, Files: files("index.yaml", "pr-7\n")}
	first := mustUpdate(t, r, c)
	if !first.Changed {
		t.Fatalf("first update: %+v", first)
	}
	count, pushes := rm.count(t), rm.srv.Pushes()

	second := mustUpdate(t, r, c)
	if second.Changed || second.Commit != first.Commit || second.Attempts != 1 {
		t.Errorf("same change again: %+v, want unchanged at %s", second, first.Commit)
	}
	// A different Repo (cold cache) agrees.
	third := mustUpdate(t, rm.open(t), c)
	if third.Changed || third.Commit != first.Commit {
		t.Errorf("same change from another cache: %+v", third)
	}
	// Same content, different message: still nothing to commit.
	fourth := mustUpdate(t, r, &Change{Message: "another message", Dirs: c.Dirs})
	if fourth.Changed || fourth.Commit != first.Commit {
		t.Errorf("same content with another message: %+v", fourth)
	}
	for name, fn := range map[string]ChangeFunc{
		"same file content":    constChange(&Change{Message: "again", Files: files("index.yaml", "pr-7\n")}),
		"remove a missing dir": constChange(&Change{Message: "rm", Dirs: map[string]map[string][]byte{"envs/pr-404": nil, "nope/nope": nil}}),
		"nil change":           constChange(nil),
		"empty change":         constChange(&Change{Message: "nothing"}),
		"empty maps":           constChange(&Change{Message: "nothing", Dirs: map[string]map[string][]byte{}, Files: map[string][]byte{}}),
	} {
		res, err := r.Update(t.Context(), fn, UpdateOptions{})
		if err != nil || res.Changed || res.Commit != first.Commit {
			t.Errorf("%s: %+v, %v; want unchanged at %s", name, res, err, first.Commit)
		}
	}
	if got := rm.count(t); got != count {
		t.Errorf("commit count went from %d to %d", count, got)
	}
	if got := rm.srv.Pushes(); got != pushes {
		t.Errorf("no-op updates pushed %d times", got-pushes)
	}
	if rm.head(t) != first.Commit {
		t.Error("server head moved")
	}

	// A ChangeFunc error is returned as is, without a retry or a push.
	boom := errors.New("boom")
	calls := 0
	res, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) { calls++; return nil, boom }, UpdateOptions{})
	if !errors.Is(err, boom) || calls != 1 || res.Changed {
		t.Errorf("failing ChangeFunc: %+v, %v, %d calls", res, err, calls)
	}
	if rm.srv.Pushes() != pushes {
		t.Error("a failing ChangeFunc pushed")
	}
}

// 4. Conflicts.

func TestUpdateConflictIsRetried(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	initC := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	a, b := rm.open(t), rm.open(t)
	var bCommit string
	var calls int
	var sawB []bool
	res, err := a.Update(t.Context(), func(cur fs.FS, _ string) (*Change, error) {
		calls++
		data, err := fs.ReadFile(cur, "from-b/file.txt")
		sawB = append(sawB, err == nil && string(data) == "b")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if calls == 1 {
			// Someone else pushes while A is working.
			bres := mustUpdate(t, b, &Change{Message: "from b", Files: files("from-b/file.txt", "b")})
			bCommit = bres.Commit
		}
		return &Change{Message: "from a", Files: files("from-a/file.txt", "a")}, nil
	}, UpdateOptions{})
	if err != nil {
		t.Fatalf("A's update: %v", err)
	}
	if res.Attempts != 2 || calls != 2 || !res.Changed {
		t.Fatalf("result %+v after %d ChangeFunc calls, want 2 attempts and 2 calls", res, calls)
	}
	if !slices.Equal(sawB, []bool{false, true}) {
		t.Errorf("ChangeFunc saw B's file: %v, want [false true]", sawB)
	}
	// Nothing lost: init ← B ← A.
	if rm.head(t) != res.Commit {
		t.Errorf("server head %s, A's result %s", rm.head(t), res.Commit)
	}
	chain := strings.Split(rm.git(t, "rev-list", "--first-parent", "refs/heads/main"), "\n")
	if !slices.Equal(chain, []string{res.Commit, bCommit, initC}) {
		t.Errorf("history = %v, want [A %s, B %s, init %s]", chain, res.Commit, bCommit, initC)
	}
	rm.linear(t)
	assertFiles(t, rm.files(t), map[string]string{"README.md": "r", "from-a/file.txt": "a", "from-b/file.txt": "b"})
	rm.fsck(t)

	// A's cache is usable afterwards: a further update is a fast-forward.
	res2 := mustUpdate(t, a, &Change{Message: "a again", Files: files("from-a/2.txt", "2")})
	if res2.Attempts != 1 || rm.git(t, "rev-parse", "refs/heads/main^") != res.Commit {
		t.Errorf("follow-up update: %+v", res2)
	}
}

func TestUpdateConflictOnBranchCreation(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	a, b := rm.open(t), rm.open(t)
	calls := 0
	var bCommit string
	res, err := a.Update(t.Context(), func(cur fs.FS, _ string) (*Change, error) {
		calls++
		if calls == 1 {
			bres, err := b.Update(t.Context(), constChange(&Change{Message: "b init", Files: files("b.txt", "b")}), UpdateOptions{AllowEmptyRepo: true})
			if err != nil {
				return nil, err
			}
			bCommit = bres.Commit
		} else if data, err := fs.ReadFile(cur, "b.txt"); err != nil || string(data) != "b" {
			t.Errorf("retry does not see B's initial commit: %q, %v", data, err)
		}
		return &Change{Message: "a init", Files: files("a.txt", "a")}, nil
	}, UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		t.Fatalf("A's update: %v", err)
	}
	if res.Attempts != 2 || calls != 2 {
		t.Fatalf("result %+v, %d calls; want 2 attempts", res, calls)
	}
	if rm.count(t) != 2 || rm.git(t, "rev-parse", "refs/heads/main^") != bCommit {
		t.Errorf("B's initial commit was not kept under A's: %s", rm.git(t, "log", "--oneline", "refs/heads/main"))
	}
	assertFiles(t, rm.files(t), map[string]string{"a.txt": "a", "b.txt": "b"})
}

func TestUpdateConflictGivesUp(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	a := rm.open(t, func(o *Options) { o.Attempts = 3 })
	b := rm.open(t)
	calls := 0
	res, err := a.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		calls++
		mustUpdate(t, b, &Change{Message: fmt.Sprintf("b %d", calls), Files: files(fmt.Sprintf("b/%d", calls), "b")})
		return &Change{Message: "a", Files: files("a.txt", "a")}, nil
	}, UpdateOptions{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if calls != 3 || res.Attempts != 3 || res.Changed {
		t.Errorf("result %+v after %d calls, want 3 attempts", res, calls)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error does not say how many attempts were made: %v", err)
	}
	if n := rm.count(t); n != 4 {
		t.Errorf("server has %d commits, want init + 3 from B", n)
	}
	if _, ok := rm.files(t)["a.txt"]; ok {
		t.Error("A's change reached the server")
	}
	rm.linear(t)
}

// The lease is enforced by the server, not only by go-git's look at the
// advertised refs: a pre-receive hook moves main after go-git has listed
// the refs and before receive-pack updates them, once.
func TestUpdateLeaseEnforcedByServer(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	initC := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	marker := filepath.Join(t.TempDir(), "moved")
	hook := `#!/bin/sh
[ -e "` + marker + `" ] && exit 0
: > "` + marker + `"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_AUTHOR_NAME=hook GIT_AUTHOR_EMAIL=hook@offshoot.invalid GIT_COMMITTER_NAME=hook GIT_COMMITTER_EMAIL=hook@offshoot.invalid
c=$(echo "sneaked in" | git commit-tree refs/heads/main^{tree} -p refs/heads/main) || exit 1
git update-ref refs/heads/main "$c" || exit 1
git rev-parse refs/heads/main > "` + marker + `"
`
	if err := os.WriteFile(filepath.Join(rm.dir, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rm.open(t)
	calls := 0
	res, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		calls++
		return &Change{Message: "a", Files: files("a.txt", "a")}, nil
	}, UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	sneaked, _ := os.ReadFile(marker)
	if len(bytes.TrimSpace(sneaked)) != 40 {
		t.Fatalf("the hook did not run or failed: marker = %q", sneaked)
	}
	if res.Attempts != 2 || calls != 2 {
		t.Fatalf("result %+v after %d calls: the server-side lease failure was not retried as a conflict", res, calls)
	}
	chain := strings.Split(rm.git(t, "rev-list", "refs/heads/main"), "\n")
	if !slices.Equal(chain, []string{res.Commit, string(bytes.TrimSpace(sneaked)), initC}) {
		t.Errorf("history = %v", chain)
	}
}

// 5. Concurrency.

func TestUpdateConcurrentWriters(t *testing.T) {
	t.Parallel()
	const n = 8
	rm := newRemote(t)
	initC := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	repos := make([]*Repo, n)
	for i := range repos {
		repos[i] = rm.open(t)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dir := fmt.Sprintf("envs/g%d", i)
			results[i], errs[i] = repos[i].Update(t.Context(), func(cur fs.FS, _ string) (*Change, error) {
				return &Change{Message: "write " + dir, Dirs: map[string]map[string][]byte{
					dir: files("values.yaml", fmt.Sprintf("id: %d\n", i)),
				}}, nil
			}, UpdateOptions{})
		}()
	}
	close(start)
	wg.Wait()
	attempts := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v (result %+v)", i, err, results[i])
		}
		attempts += results[i].Attempts
	}
	t.Logf("%d writers needed %d attempts in all", n, attempts)
	want := map[string]string{"README.md": "r"}
	for i := range n {
		want[fmt.Sprintf("envs/g%d/values.yaml", i)] = fmt.Sprintf("id: %d\n", i)
	}
	assertFiles(t, rm.files(t), want)
	if c := rm.count(t); c != n+1 {
		t.Errorf("history has %d commits, want %d", c, n+1)
	}
	rm.linear(t)
	if root := rm.git(t, "rev-list", "--max-parents=0", "refs/heads/main"); root != initC {
		t.Errorf("root commit = %s, want the init commit %s", root, initC)
	}
	// Every writer's commit is in the history.
	hist := rm.git(t, "rev-list", "refs/heads/main")
	for i, res := range results {
		if res.Commit == "" || !strings.Contains(hist, res.Commit) {
			t.Errorf("writer %d's commit %q is not in the history", i, res.Commit)
		}
	}
	rm.fsck(t)
}

// 6. Outage.

func TestUpdateServerDown(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	head := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t, func(o *Options) {
		// Credentials in the URL must not leak into errors.
		o.Location = strings.Replace(rm.url, "http://", "http://user:s3cr3t@", 1)
	})
	rm.srv.SetDown(true)
	calls := 0
	start := time.Now()
	res, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		calls++
		return &Change{Message: "a", Files: files("a.txt", "a")}, nil
	}, UpdateOptions{})
	if err == nil {
		t.Fatal("Update against a server answering 503 succeeded")
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNoBranch) || errors.Is(err, ErrDirty) {
		t.Errorf("an outage is reported as a typed error: %v", err)
	}
	if res.Attempts != 1 || res.Changed || calls != 0 {
		t.Errorf("outage: result %+v, %d calls; want one attempt, no ChangeFunc call", res, calls)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error leaks the password: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("an outage took %v to report", d)
	}
	if _, _, err := r.Snapshot(t.Context()); err == nil {
		t.Error("Snapshot succeeded while the server is down")
	}
	rm.srv.SetDown(false)
	if rm.head(t) != head || rm.count(t) != 1 {
		t.Fatal("the remote changed during the outage")
	}
	res = mustUpdate(t, r, &Change{Message: "after", Files: files("a.txt", "a")})
	if !res.Changed || rm.head(t) != res.Commit || rm.count(t) != 2 {
		t.Errorf("update after the outage: %+v", res)
	}
}

// The server goes down between the fetch and the push: the commit built
// locally must not stick in the cache and confuse the next update.
func TestUpdateServerDownDuringPush(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	head := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t)
	res, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		rm.srv.SetDown(true)
		return &Change{Message: "lost", Files: files("lost.txt", "x")}, nil
	}, UpdateOptions{})
	rm.srv.SetDown(false)
	if err == nil || errors.Is(err, ErrConflict) {
		t.Fatalf("push during an outage: %+v, %v; want a plain error", res, err)
	}
	if res.Attempts != 1 {
		t.Errorf("an outage was retried: %+v", res)
	}
	if rm.head(t) != head {
		t.Fatal("the remote changed")
	}
	res = mustUpdate(t, r, &Change{Message: "kept", Files: files("kept.txt", "y")})
	if !res.Changed || res.Attempts != 1 {
		t.Errorf("update after the failed push: %+v", res)
	}
	if rm.git(t, "rev-parse", "refs/heads/main^") != head || rm.count(t) != 2 {
		t.Errorf("history after the failed push: %s", rm.git(t, "log", "--oneline", "refs/heads/main"))
	}
	assertFiles(t, rm.files(t), map[string]string{"README.md": "r", "kept.txt": "y"})
}

// 7. Snapshot.

func TestSnapshot(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r\n"), Dirs: map[string]map[string][]byte{
		"envs/pr-1": files("kustomization.yaml", "k1", "db/cluster.yaml", "c1"),
		"envs/pr-2": files("kustomization.yaml", "k2"),
	}})
	r := rm.open(t)
	fsys, commit, err := r.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if commit != rm.head(t) {
		t.Errorf("Snapshot commit %s, server head %s", commit, rm.head(t))
	}
	data, err := fs.ReadFile(fsys, "envs/pr-1/db/cluster.yaml")
	if err != nil || string(data) != "c1" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	entries, err := fs.ReadDir(fsys, "envs")
	if err != nil {
		t.Fatalf("ReadDir(envs): %v", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("%s is not reported as a directory", e.Name())
		}
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"pr-1", "pr-2"}) {
		t.Errorf("ReadDir(envs) = %v", names)
	}
	got := map[string]string{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		got[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("WalkDir: %v", err)
	}
	assertFiles(t, got, rm.files(t))
	if _, err := fs.ReadFile(fsys, "envs/pr-3/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}

	// Snapshot fetches fresh: a change from elsewhere shows up, and the old
	// snapshot still reads its own commit.
	mustUpdate(t, rm.open(t), &Change{Message: "pr-3", Dirs: map[string]map[string][]byte{
		"envs/pr-3": files("kustomization.yaml", "k3"),
		"envs/pr-1": nil,
	}})
	fsys2, commit2, err := r.Snapshot(t.Context())
	if err != nil || commit2 != rm.head(t) || commit2 == commit {
		t.Fatalf("second Snapshot: %s, %v (server %s)", commit2, err, rm.head(t))
	}
	if data, err := fs.ReadFile(fsys2, "envs/pr-3/kustomization.yaml"); err != nil || string(data) != "k3" {
		t.Errorf("new file in the second snapshot: %q, %v", data, err)
	}
	if _, err := fs.Stat(fsys2, "envs/pr-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed directory in the second snapshot: %v", err)
	}
	if data, err := fs.ReadFile(fsys, "envs/pr-1/kustomization.yaml"); err != nil || string(data) != "k1" {
		t.Errorf("the first snapshot changed: %q, %v", data, err)
	}
}

// 8. Local working copy.

func TestLocalWorkingCopy(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "envs-repo")
	if IsLocalWorkingCopy(dir) {
		t.Fatal("a missing directory is a working copy")
	}
	if err := PrepareLocal(dir); err != nil {
		t.Fatalf("PrepareLocal: %v", err)
	}
	if !IsLocalWorkingCopy(dir) {
		t.Fatal("PrepareLocal did not make a working copy")
	}
	if h := gitCLI(t, dir, "symbolic-ref", "HEAD"); h != "refs/heads/main" {
		t.Errorf("HEAD = %s, want refs/heads/main", h)
	}
	// Preparing again leaves the repository alone.
	if err := PrepareLocal(dir); err != nil {
		t.Fatalf("PrepareLocal on a repository: %v", err)
	}

	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := Open(t.Context(), Options{Location: dir, AuthorName: testAuthor, AuthorEmail: testEmail, Now: func() time.Time { return when }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := r.Update(t.Context(), constChange(&Change{Message: "x", Files: files("a", "b")}), UpdateOptions{}); !errors.Is(err, ErrNoBranch) {
		t.Fatalf("Update on an unborn branch: %v, want ErrNoBranch", err)
	}
	res, err := r.Update(t.Context(), constChange(&Change{Message: "init", Files: files("README.md", "r\n"), Dirs: map[string]map[string][]byte{
		"envs/pr-1": files("a.yaml", "a1", "sub/b.yaml", "b1"),
	}}), UpdateOptions{AllowEmptyRepo: true})
	if err != nil || !res.Changed {
		t.Fatalf("init update: %+v, %v", res, err)
	}
	checkWorktree := func(want map[string]string) {
		t.Helper()
		if head := gitCLI(t, dir, "rev-parse", "HEAD"); head != res.Commit {
			t.Errorf("HEAD = %s, result %s", head, res.Commit)
		}
		if st := gitCLI(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
			t.Errorf("git status --porcelain is not empty:\n%s", st)
		}
		got := map[string]string{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = string(b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		assertFiles(t, got, want)
		assertFiles(t, treeFiles(t, dir, "", "HEAD"), want)
	}
	checkWorktree(map[string]string{"README.md": "r\n", "envs/pr-1/a.yaml": "a1", "envs/pr-1/sub/b.yaml": "b1"})
	if log := gitCLI(t, dir, "log", "--format=%an|%ae|%at|%s"); log != fmt.Sprintf("%s|%s|%d|init", testAuthor, testEmail, when.Unix()) {
		t.Errorf("git log = %q", log)
	}

	// Replacing a directory removes stale files from the working tree too.
	res, err = r.Update(t.Context(), constChange(&Change{Message: "replace", Dirs: map[string]map[string][]byte{
		"envs/pr-1": files("c.yaml", "c1"),
	}}), UpdateOptions{})
	if err != nil || !res.Changed || res.Attempts != 1 {
		t.Fatalf("replace: %+v, %v", res, err)
	}
	checkWorktree(map[string]string{"README.md": "r\n", "envs/pr-1/c.yaml": "c1"})
	if _, err := os.Stat(filepath.Join(dir, "envs", "pr-1", "sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale directory sub still on disk: %v", err)
	}
	if n := gitCLI(t, dir, "rev-list", "--count", "HEAD"); n != "2" {
		t.Errorf("%s commits, want 2", n)
	}

	// Idempotent locally too.
	again, err := r.Update(t.Context(), constChange(&Change{Message: "replace", Dirs: map[string]map[string][]byte{
		"envs/pr-1": files("c.yaml", "c1"),
	}}), UpdateOptions{})
	if err != nil || again.Changed || again.Commit != res.Commit {
		t.Errorf("same change again: %+v, %v", again, err)
	}

	// Snapshot of a local working copy.
	fsys, commit, err := r.Snapshot(t.Context())
	if err != nil || commit != res.Commit {
		t.Fatalf("Snapshot: %s, %v", commit, err)
	}
	if data, err := fs.ReadFile(fsys, "envs/pr-1/c.yaml"); err != nil || string(data) != "c1" {
		t.Errorf("Snapshot ReadFile = %q, %v", data, err)
	}

	// A commit made with the git CLI in between is built on, not lost.
	if err := os.WriteFile(filepath.Join(dir, "manual.txt"), []byte("by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, dir, "add", "manual.txt")
	gitCLI(t, dir, "commit", "-q", "-m", "manual")
	manual := gitCLI(t, dir, "rev-parse", "HEAD")
	res, err = r.Update(t.Context(), constChange(&Change{Message: "after manual", Files: files("envs/pr-2/a.yaml", "a2")}), UpdateOptions{})
	if err != nil || !res.Changed {
		t.Fatalf("update after a manual commit: %+v, %v", res, err)
	}
	if p := gitCLI(t, dir, "rev-parse", "HEAD^"); p != manual {
		t.Errorf("parent = %s, want the manual commit %s", p, manual)
	}
	checkWorktree(map[string]string{"README.md": "r\n", "envs/pr-1/c.yaml": "c1", "envs/pr-2/a.yaml": "a2", "manual.txt": "by hand\n"})
	if out, err := gitCLIErr(dir, "fsck", "--strict", "--no-dangling", "--no-progress"); err != nil || out != "" {
		t.Errorf("git fsck --strict: %v %s", err, out)
	}

	// A modified tracked file: ErrDirty, no commit, the edit is kept.
	before := gitCLI(t, dir, "rev-parse", "HEAD")
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	_, err = r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
		called = true
		return &Change{Message: "x", Files: files("y.txt", "y")}, nil
	}, UpdateOptions{})
	if !errors.Is(err, ErrDirty) {
		t.Fatalf("Update on a dirty working copy: %v, want ErrDirty", err)
	}
	if !strings.Contains(err.Error(), "README.md") {
		t.Errorf("ErrDirty does not name the modified file: %v", err)
	}
	if called {
		t.Error("the ChangeFunc was called on a dirty working copy")
	}
	if gitCLI(t, dir, "rev-parse", "HEAD") != before {
		t.Error("a commit was made on a dirty working copy")
	}
	if data, _ := os.ReadFile(readme); string(data) != "edited by hand\n" {
		t.Errorf("the local edit was lost: %q", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "y.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the change was written to the dirty working copy")
	}
	// Staged but uncommitted is dirty as well.
	gitCLI(t, dir, "add", "README.md")
	if _, err := r.Update(t.Context(), constChange(&Change{Message: "x", Files: files("y.txt", "y")}), UpdateOptions{}); !errors.Is(err, ErrDirty) {
		t.Errorf("staged change: %v, want ErrDirty", err)
	}
	// Clean again: updates go through.
	gitCLI(t, dir, "commit", "-q", "-m", "edit readme")
	res, err = r.Update(t.Context(), constChange(&Change{Message: "y", Files: files("y.txt", "y")}), UpdateOptions{})
	if err != nil || !res.Changed {
		t.Fatalf("update once clean: %+v, %v", res, err)
	}
	if st := gitCLI(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("status after the update: %s", st)
	}
}

func TestPrepareLocal(t *testing.T) {
	t.Parallel()
	t.Run("empty dir", func(t *testing.T) {
		dir := t.TempDir()
		if err := PrepareLocal(dir); err != nil {
			t.Fatal(err)
		}
		if !IsLocalWorkingCopy(dir) {
			t.Fatal("not a working copy")
		}
		if b := gitCLI(t, dir, "symbolic-ref", "--short", "HEAD"); b != "main" {
			t.Errorf("branch %s", b)
		}
	})
	t.Run("non-empty non-repo", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := PrepareLocal(dir); err == nil {
			t.Fatal("PrepareLocal accepted a non-empty directory")
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); !errors.Is(err, fs.ErrNotExist) {
			t.Error("a repository was created in a non-empty directory")
		}
	})
	t.Run("existing repo", func(t *testing.T) {
		dir := t.TempDir()
		gitCLI(t, dir, "init", "-q", "--initial-branch=trunk")
		if err := PrepareLocal(dir); err != nil {
			t.Fatal(err)
		}
		if b := gitCLI(t, dir, "symbolic-ref", "--short", "HEAD"); b != "trunk" {
			t.Errorf("existing repository changed: branch %s", b)
		}
	})
	t.Run("bare repo", func(t *testing.T) {
		dir := t.TempDir()
		gitCLI(t, dir, "init", "-q", "--bare")
		if err := PrepareLocal(dir); err != nil {
			t.Fatal(err)
		}
		if IsLocalWorkingCopy(dir) {
			t.Error("a bare repository is a working copy")
		}
	})
	t.Run("url", func(t *testing.T) {
		for _, u := range []string{"https://example.invalid/x.git", "git@example.invalid:org/x.git", "file:///nonexistent/x"} {
			if err := PrepareLocal(u); err != nil {
				t.Errorf("PrepareLocal(%s): %v", u, err)
			}
			if IsLocalWorkingCopy(u) {
				t.Errorf("%s is a local working copy", u)
			}
		}
	})
}

// A local bare repository given as a path is a remote like any other.
func TestLocalBarePathIsARemote(t *testing.T) {
	t.Parallel()
	bare := filepath.Join(t.TempDir(), "envs.git")
	gitCLI(t, "", "init", "-q", "--bare", "--initial-branch=main", bare)
	r, err := Open(t.Context(), Options{Location: bare, CacheDir: t.TempDir(), AuthorName: testAuthor, AuthorEmail: testEmail})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Update(t.Context(), constChange(&Change{Message: "init", Files: files("a.txt", "a")}), UpdateOptions{AllowEmptyRepo: true})
	if err != nil || !res.Changed {
		t.Fatalf("%+v, %v", res, err)
	}
	if got := gitCLI(t, "", "--git-dir="+bare, "rev-parse", "refs/heads/main"); got != res.Commit {
		t.Errorf("bare main = %s, want %s", got, res.Commit)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.Context(), Options{}); err == nil {
		t.Error("Open without a location succeeded")
	}
	if _, err := Open(t.Context(), Options{Location: filepath.Join(t.TempDir(), "missing"), CacheDir: t.TempDir()}); err == nil {
		t.Error("Open of a missing local path succeeded")
	}
}

func TestOpenDefaults(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	r, err := Open(t.Context(), Options{Location: rm.url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Branch() != "main" || r.Location() != rm.url {
		t.Errorf("Branch %q Location %q", r.Branch(), r.Location())
	}
	if _, err := r.Update(t.Context(), constChange(&Change{Message: "m", Files: files("a", "a")}), UpdateOptions{AllowEmptyRepo: true}); err != nil {
		t.Fatal(err)
	}
	if who := rm.git(t, "log", "-1", "--format=%an <%ae>", "refs/heads/main"); who != "offshoot <offshoot@localhost>" {
		t.Errorf("default author = %q", who)
	}
}

func TestOtherBranch(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	mainC := rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	r := rm.open(t, func(o *Options) { o.Branch = "staging" })
	if _, err := r.Update(t.Context(), constChange(&Change{Message: "s", Files: files("s", "s")}), UpdateOptions{}); !errors.Is(err, ErrNoBranch) {
		t.Fatalf("missing branch: %v, want ErrNoBranch", err)
	}
	res, err := r.Update(t.Context(), constChange(&Change{Message: "s", Files: files("s", "s")}), UpdateOptions{AllowEmptyRepo: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rm.git(t, "rev-parse", "refs/heads/staging"); got != res.Commit {
		t.Errorf("staging = %s, want %s", got, res.Commit)
	}
	if rm.head(t) != mainC {
		t.Error("main moved")
	}
}

// 9. Credentials.

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://user:secret@host/x.git", "https://***@host/x.git"},
		{"https://secret@host/x.git", "https://***@host/x.git"},
		{"https://user:secret@host", "https://***@host"},
		{"https://user:secret@host:8443/org/x.git", "https://***@host:8443/org/x.git"},
		{"https://host/x.git", "https://host/x.git"},
		{"https://host/org/x@y.git", "https://host/org/x@y.git"},
		{"git@github.com:org/x.git", "git@github.com:org/x.git"},
		{"/srv/envs", "/srv/envs"},
	} {
		got := redact(tc.in)
		if got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("redact(%q) = %q leaks the secret", tc.in, got)
		}
	}
}

func TestLooksLikeURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"https://h/x.git":      true,
		"ssh://git@h/x.git":    true,
		"file:///srv/x":        true,
		"git@github.com:o/x":   true,
		"/srv/envs":            false,
		"./envs":               false,
		"envs":                 false,
		"/srv/a@b:c":           false,
		"C:/not/scp/syntax":    false,
		"relative/user@h:path": false,
	} {
		if got := looksLikeURL(in); got != want {
			t.Errorf("looksLikeURL(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
	for _, msg := range []string{
		"non-fast-forward update: refs/heads/main",
		"command error on refs/heads/main: failed to update ref",
		"command error on refs/heads/main: cannot lock ref 'refs/heads/main'",
		"stale info",
	} {
		if err := classify(errors.New(msg)); !errors.Is(err, ErrConflict) {
			t.Errorf("classify(%q) = %v, want ErrConflict", msg, err)
		}
	}
	if err := classify(fmt.Errorf("x: %w", transport.ErrRepositoryNotFound)); !errors.Is(err, ErrNoBranch) {
		t.Errorf("repository not found: %v", err)
	}
	if err := classify(fmt.Errorf("x: %w", transport.ErrRepositoryNotFound)); engine.IsTemporary(err) {
		t.Errorf("a missing repository is not temporary: %v", err)
	}
	for _, auth := range []error{transport.ErrAuthenticationRequired, transport.ErrAuthorizationFailed} {
		if err := classify(fmt.Errorf("fetch: %w", auth)); engine.IsTemporary(err) || !errors.Is(err, auth) {
			t.Errorf("refused credentials are terminal and kept: %v", err)
		}
	}
	// What the transport could not get through (the network, the server)
	// may work next time: marked temporary, the cause kept.
	other := errors.New("connection refused")
	if err := classify(other); !errors.Is(err, other) || !engine.IsTemporary(err) {
		t.Errorf("a transport failure is temporary and keeps its cause: %v", err)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	if BasicAuth("u", "") != nil {
		t.Error("no password must mean no auth")
	}
	a, ok := BasicAuth("", "tok").(*http.BasicAuth)
	if !ok || a.Username != "x-access-token" || a.Password != "tok" {
		t.Errorf("BasicAuth(\"\", tok) = %#v", a)
	}
	a, ok = BasicAuth("me", "pw").(*http.BasicAuth)
	if !ok || a.Username != "me" || a.Password != "pw" {
		t.Errorf("BasicAuth(me, pw) = %#v", a)
	}
}
