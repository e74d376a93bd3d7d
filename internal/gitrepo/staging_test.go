package gitrepo

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// cacheObjects counts the loose objects and packs of the one cache clone
// under cacheDir.
func cacheObjects(t *testing.T, cacheDir string) (loose, packs int, dir string) {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(cacheDir, "*", "*", "objects"))
	if err != nil || len(m) != 1 {
		t.Fatalf("cache clone under %s: %v %v", cacheDir, m, err)
	}
	err = filepath.WalkDir(m[0], func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch rel, _ := filepath.Rel(m[0], p); {
		case strings.HasPrefix(rel, "pack/") && strings.HasSuffix(rel, ".pack"):
			packs++
		case len(filepath.Base(filepath.Dir(rel))) == 2 && len(filepath.Base(rel)) == 38:
			loose++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loose, packs, filepath.Dir(m[0])
}

// A large update reaches the cache as the one pack it pushed, small ones as
// loose objects; both read back (in this Repo and in another sharing the
// cache), and the cache is a sound git repository.
func TestUpdateCachesLargeUpdatesAsAPack(t *testing.T) {
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	cacheDir := t.TempDir()
	r := rm.open(t, func(o *Options) { o.CacheDir = cacheDir })
	mustUpdate(t, r, &Change{Message: "small", Files: files("README.md", "r", "small.txt", "s")})
	loose0, packs0, gitDir := cacheObjects(t, cacheDir)
	if loose0 == 0 {
		t.Fatalf("a small update left no loose objects (%d packs)", packs0)
	}

	dirs := map[string]map[string][]byte{}
	for i := 0; i < packThreshold; i++ {
		dirs[fmt.Sprintf("envs/e%03d", i)] = files("env.yaml", fmt.Sprintf("n: %d\n", i))
	}
	res := mustUpdate(t, r, &Change{Message: "large", Dirs: dirs})
	loose1, packs1, _ := cacheObjects(t, cacheDir)
	if packs1 != packs0+1 || loose1 != loose0 {
		t.Fatalf("after a large update: %d loose, %d packs; want %d loose, %d packs", loose1, packs1, loose0, packs0+1)
	}
	if out := gitCLI(t, "", "--git-dir="+gitDir, "fsck", "--no-dangling", "--connectivity-only"); strings.Contains(out, "missing") {
		t.Fatalf("cache fsck: %s", out)
	}
	other := rm.open(t, func(o *Options) { o.CacheDir = cacheDir })
	for _, repo := range []*Repo{r, other} {
		fsys, head, err := repo.Snapshot(t.Context())
		if err != nil || head != res.Commit {
			t.Fatalf("snapshot: %s, %v; want %s", head, err, res.Commit)
		}
		if b, err := fs.ReadFile(fsys, "envs/e123/env.yaml"); err != nil || string(b) != "n: 123\n" {
			t.Fatalf("envs/e123/env.yaml: %q, %v", b, err)
		}
	}
	// The next update builds on the packed trees.
	mustUpdate(t, r, &Change{Message: "after", Dirs: map[string]map[string][]byte{"envs/e001": files("env.yaml", "n: one\n")}})
	if got := rm.files(t); got["envs/e001/env.yaml"] != "n: one\n" || got["envs/e002/env.yaml"] != "n: 2\n" {
		t.Fatalf("remote after the next update: e001 %q, e002 %q", got["envs/e001/env.yaml"], got["envs/e002/env.yaml"])
	}
}

// A push that fails writes nothing into the cache.
func TestFailedPushLeavesNoObjects(t *testing.T) {
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r")})
	cacheDir := t.TempDir()
	r := rm.open(t, func(o *Options) { o.CacheDir = cacheDir })
	if _, _, err := r.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	loose0, packs0, _ := cacheObjects(t, cacheDir)
	dirs := map[string]map[string][]byte{}
	for i := 0; i < packThreshold; i++ {
		dirs[fmt.Sprintf("envs/e%03d", i)] = files("env.yaml", fmt.Sprintf("n: %d\n", i))
	}
	for _, c := range []*Change{{Message: "small", Files: files("lost.txt", "x")}, {Message: "large", Dirs: dirs}} {
		_, err := r.Update(t.Context(), func(fs.FS, string) (*Change, error) {
			rm.srv.SetDown(true)
			return c, nil
		}, UpdateOptions{})
		rm.srv.SetDown(false)
		if err == nil {
			t.Fatalf("%s: push during an outage succeeded", c.Message)
		}
	}
	if loose, packs, _ := cacheObjects(t, cacheDir); loose != loose0 || packs != packs0 {
		t.Fatalf("after failed pushes: %d loose, %d packs; before %d, %d", loose, packs, loose0, packs0)
	}
}

// Updates merge their entries into the existing sorted tree: new names land
// in git's order among the old ones (a directory sorting as if its name
// ended in '/'), a file replaced by a directory of the same name moves to
// the directory's place, removed directories go, and real git computes the
// very same trees.
func TestUpdateMergesIntoTheSortedTree(t *testing.T) {
	rm := newRemote(t)
	rm.seed(t, &Change{Message: "init", Files: files("README.md", "r", "foo-bar", "1", "foo.txt", "2", "foo0", "3", "x/y", "4", "x0/z", "5")})
	r := rm.open(t)
	steps := []*Change{
		{Message: "add", Files: files("foo.a", "6", "foo/inner", "7", "a", "8", "zz", "9")},
		{Message: "file to dir", Files: files("foo0/sub", "10")},
		{Message: "remove a dir", Dirs: map[string]map[string][]byte{"x": nil}},
		{Message: "dir in dir", Dirs: map[string]map[string][]byte{"envs/b": files("env.yaml", "b"), "envs/a-b": files("env.yaml", "ab"), "envs/a": files("env.yaml", "a")}},
		{Message: "replace one", Dirs: map[string]map[string][]byte{"envs/a-b": files("env.yaml", "ab2")}},
	}
	work := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, "", "clone", "--quiet", rm.url, work)
	for _, c := range steps {
		res := mustUpdate(t, r, c)
		rm.fsck(t)
		gitCLI(t, work, "pull", "--quiet", "--ff-only")
		gitCLI(t, work, "rm", "-r", "-q", "--cached", ".")
		gitCLI(t, work, "add", "-A")
		if gitTree, ourTree := gitCLI(t, work, "write-tree"), rm.git(t, "rev-parse", res.Commit+"^{tree}"); gitTree != ourTree {
			t.Fatalf("%s: git write-tree = %s, offshoot's tree = %s", c.Message, gitTree, ourTree)
		}
	}
	got := rm.files(t)
	if got["foo0/sub"] != "10" || got["x/y"] != "" || got["envs/a-b/env.yaml"] != "ab2" || got["foo0"] != "" {
		t.Fatalf("files after the steps: %v", got)
	}
}
