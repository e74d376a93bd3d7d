package gitrepo

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// memTree builds a treeFS over an in-memory object database, with the same
// code that builds the trees offshoot commits.
func memTree(t *testing.T, c *Change) treeFS {
	t.Helper()
	s := memory.NewStorage()
	trie, err := buildTrie(c)
	if err != nil {
		t.Fatal(err)
	}
	h, err := writeTree(s, plumbing.ZeroHash, trie)
	if err != nil {
		t.Fatal(err)
	}
	root, err := object.GetTree(s, h)
	if err != nil {
		t.Fatal(err)
	}
	return treeFS{s: s, root: root}
}

var smallTree = &Change{
	Files: files(
		"README.md", "# envs\n",
		"empty", "",
		"a b.txt", "spaces",
		"foo-bar", "1",
		"foo.txt", "2",
		"foo/inner.txt", "3",
		"foo0", "4",
	),
	Dirs: map[string]map[string][]byte{
		"envs/pr-1": files("kustomization.yaml", "resources: [db]\n", "db/cluster.yaml", "kind: Cluster\n"),
		"envs/pr-2": files("kustomization.yaml", "resources: []\n"),
	},
}

func smallTreeFiles() []string {
	var out []string
	for p := range smallTree.Files {
		out = append(out, p)
	}
	for d, m := range smallTree.Dirs {
		for p := range m {
			out = append(out, d+"/"+p)
		}
	}
	slices.Sort(out)
	return out
}

func TestTreeFSConformance(t *testing.T) {
	t.Parallel()
	if err := fstest.TestFS(memTree(t, smallTree), smallTreeFiles()...); err != nil {
		t.Fatal(err)
	}
}

// The same on a snapshot fetched from the real git server.
func TestTreeFSConformanceSnapshot(t *testing.T) {
	t.Parallel()
	rm := newRemote(t)
	rm.seed(t, smallTree)
	fsys, _, err := rm.open(t).Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, smallTreeFiles()...); err != nil {
		t.Fatal(err)
	}
}

func TestTreeFSEmptyRepository(t *testing.T) {
	t.Parallel()
	fsys := treeFS{s: memory.NewStorage()}
	if err := fstest.TestFS(fsys); err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil || len(entries) != 0 {
		t.Errorf("ReadDir(.) = %v, %v; want empty", entries, err)
	}
	if _, err := fsys.Open("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(x) = %v, want ErrNotExist", err)
	}
	if _, err := fsys.ReadFile("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(x) = %v, want ErrNotExist", err)
	}
}

func TestTreeFSReadsAndErrors(t *testing.T) {
	t.Parallel()
	fsys := memTree(t, smallTree)

	data, err := fsys.ReadFile("envs/pr-1/db/cluster.yaml")
	if err != nil || string(data) != "kind: Cluster\n" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	if data, err := fsys.ReadFile("empty"); err != nil || len(data) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v", data, err)
	}

	// ReadDir is sorted by name (not in git's tree order).
	entries, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README.md", "a b.txt", "empty", "envs", "foo", "foo-bar", "foo.txt", "foo0"}; !slices.Equal(names, want) {
		t.Errorf("ReadDir(.) = %v, want %v", names, want)
	}

	// Stat and entry info agree on everything, sizes included.
	st, err := fs.Stat(fsys, "README.md")
	if err != nil || st.Size() != int64(len("# envs\n")) || st.IsDir() || st.Mode() != 0o644 || st.Name() != "README.md" {
		t.Errorf("Stat(README.md) = %v, %v", st, err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatalf("%s: Info: %v", e.Name(), err)
		}
		st, err := fs.Stat(fsys, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != st.Size() || info.Mode() != st.Mode() || info.IsDir() != st.IsDir() || e.Type() != st.Mode().Type() {
			t.Errorf("%s: DirEntry.Info() = %v size %d, Stat = %v size %d", e.Name(), info.Mode(), info.Size(), st.Mode(), st.Size())
		}
	}
	if st, err := fs.Stat(fsys, "envs/pr-1"); err != nil || !st.IsDir() || st.Name() != "pr-1" {
		t.Errorf("Stat(envs/pr-1) = %v, %v", st, err)
	}

	for _, tc := range []struct {
		name string
		op   func() error
		want error // nil: any error but ErrNotExist
	}{
		{"ReadFile missing", func() error { _, err := fsys.ReadFile("nope"); return err }, fs.ErrNotExist},
		{"ReadFile missing nested", func() error { _, err := fsys.ReadFile("envs/pr-9/x"); return err }, fs.ErrNotExist},
		{"ReadFile under a file", func() error { _, err := fsys.ReadFile("README.md/x"); return err }, fs.ErrNotExist},
		{"Open missing", func() error { _, err := fsys.Open("envs/nope"); return err }, fs.ErrNotExist},
		{"ReadDir missing", func() error { _, err := fsys.ReadDir("nope"); return err }, fs.ErrNotExist},
		{"ReadFile absolute", func() error { _, err := fsys.ReadFile("/README.md"); return err }, fs.ErrInvalid},
		{"ReadFile dot-dot", func() error { _, err := fsys.ReadFile("envs/../README.md"); return err }, fs.ErrInvalid},
		{"Open trailing slash", func() error { _, err := fsys.Open("envs/"); return err }, fs.ErrInvalid},
		{"ReadDir empty name", func() error { _, err := fsys.ReadDir(""); return err }, fs.ErrInvalid},
		{"ReadFile of a directory", func() error { _, err := fsys.ReadFile("envs"); return err }, nil},
		{"ReadDir of a file", func() error { _, err := fsys.ReadDir("README.md"); return err }, nil},
	} {
		err := tc.op()
		var pe *fs.PathError
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case !errors.As(err, &pe):
			t.Errorf("%s: %v is not a *fs.PathError", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case tc.want == nil && errors.Is(err, fs.ErrNotExist):
			t.Errorf("%s: %v, want an error other than ErrNotExist", tc.name, err)
		}
	}

	// A directory opened as a file: Read fails, ReadDir pages then io.EOF.
	f, err := fsys.Open("envs")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 1)); err == nil {
		t.Error("Read on a directory succeeded")
	}
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		t.Fatal("a directory is not a fs.ReadDirFile")
	}
	var paged []string
	for {
		es, err := d.ReadDir(1)
		if err == io.EOF {
			if len(es) != 0 {
				t.Errorf("entries returned with io.EOF: %v", es)
			}
			break
		}
		if err != nil || len(es) != 1 {
			t.Fatalf("ReadDir(1) = %v, %v", es, err)
		}
		paged = append(paged, es[0].Name())
	}
	if !slices.Equal(paged, []string{"pr-1", "pr-2"}) {
		t.Errorf("paged ReadDir = %v", paged)
	}
	if es, err := d.ReadDir(-1); err != nil || len(es) != 0 {
		t.Errorf("ReadDir(-1) at the end = %v, %v; want empty, nil", es, err)
	}

	// A file opened reads fully and can seek.
	ff, err := fsys.Open("foo/inner.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	if b, err := io.ReadAll(ff); err != nil || string(b) != "3" {
		t.Errorf("read foo/inner.txt = %q, %v", b, err)
	}
	if st, err := ff.Stat(); err != nil || st.Name() != "inner.txt" || st.Size() != 1 {
		t.Errorf("Stat of the open file = %v, %v", st, err)
	}
}

// fs.Sub and fs.Glob work on top of treeFS.
func TestTreeFSSubAndGlob(t *testing.T) {
	t.Parallel()
	fsys := memTree(t, smallTree)
	sub, err := fs.Sub(fsys, "envs/pr-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "kustomization.yaml", "db/cluster.yaml"); err != nil {
		t.Fatal(err)
	}
	m, err := fs.Glob(fsys, "envs/*/kustomization.yaml")
	if err != nil || !slices.Equal(m, []string{"envs/pr-1/kustomization.yaml", "envs/pr-2/kustomization.yaml"}) {
		t.Errorf("Glob = %v, %v", m, err)
	}
}
